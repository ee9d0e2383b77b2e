// SPDX-License-Identifier: GPL-2.0

//! Who does the multiply-accumulate: the [`GfKernel`] interface between the
//! codec and an implementation of `out[j] = Σ_i rows[j][i] · in[i]`.
//!
//! [`Scalar`] is the portable one in this crate ([`super::apply`]), the only
//! one Rust code in the kernel can run. SIMD implementations live in C
//! (`ec/c/gf_simd.c`, under `kernel_fpu_begin()` in the kernel) and are
//! reached through `rust/ec_simd.rs` in `vtier.ko` and the `vtier-ec-simd`
//! crate (`ec/simd`) in userspace; both implement this trait, so the codec
//! itself stays free of `unsafe`.

use super::apply::apply;
use super::error::{Error, Result};
use super::limits::{Row, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};

/// An implementation of the codec's hot loop.
pub trait GfKernel {
    /// For every `j < outputs.len()`: `outputs[j][..len] = Σ_i rows[j][i] ·
    /// inputs[i][..len]` over `i < inputs.len()` (`k`, at most
    /// [`super::limits::MAX_DATA_SHARDS`]). `rows.len()` equals
    /// `outputs.len()` (at most [`super::limits::MAX_PARITY_SHARDS`]), and
    /// every input and output holds at least `len` bytes; otherwise an
    /// error ([`check_args`]), and nothing is promised about the outputs.
    fn apply(
        &self,
        rows: &[Row],
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        len: usize,
    ) -> Result;

    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
}

/// Checks the arguments of a [`GfKernel::apply`] (or of
/// [`super::apply::verify`], with the expected outputs as `outputs`), as
/// every implementation does before it touches a byte: 1 to
/// [`MAX_DATA_SHARDS`] inputs, at most [`MAX_PARITY_SHARDS`] rows and as
/// many outputs, each input and output at least `len` bytes long. The C
/// SIMD kernels rely on it for their pointers' bounds.
pub fn check_args<I: AsRef<[u8]>, O: AsRef<[u8]>>(
    rows: &[Row],
    inputs: &[I],
    outputs: &[O],
    len: usize,
) -> Result {
    if inputs.is_empty() || inputs.len() > MAX_DATA_SHARDS {
        return Err(Error::DataShardCount);
    }
    if rows.len() > MAX_PARITY_SHARDS {
        return Err(Error::ParityShardCount);
    }
    if inputs.iter().any(|i| i.as_ref().len() < len)
        || outputs.len() != rows.len()
        || outputs.iter().any(|o| o.as_ref().len() < len)
    {
        return Err(Error::ShardSizeMismatch);
    }
    Ok(())
}

/// The portable scalar implementation ([`super::apply::apply`]).
#[derive(Copy, Clone, Debug, Default)]
pub struct Scalar;

impl GfKernel for Scalar {
    fn apply(
        &self,
        rows: &[Row],
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        len: usize,
    ) -> Result {
        apply(rows, inputs, outputs, len)
    }

    fn name(&self) -> &'static str {
        "scalar"
    }
}
