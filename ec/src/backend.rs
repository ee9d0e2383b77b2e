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
use super::error::Result;
use super::limits::Row;

/// An implementation of the codec's hot loop.
pub trait GfKernel {
    /// For every `j < outputs.len()`: `outputs[j][..len] = Σ_i rows[j][i] ·
    /// inputs[i][..len]` over `i < inputs.len()` (`k`, at most
    /// [`super::limits::MAX_DATA_SHARDS`]). `rows.len()` equals
    /// `outputs.len()` (at most [`super::limits::MAX_PARITY_SHARDS`]), and
    /// every input and output holds at least `len` bytes; otherwise an
    /// error, and nothing is promised about the outputs.
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
