// SPDX-License-Identifier: GPL-2.0

//! The SIMD GF(2^8) kernels of `vtier.ko` (`ec/c/gf_simd.c`: AVX2 `vpshufb`
//! tables, GFNI on ymm and zmm registers), built for userspace so that
//! tests and benchmarks run the very code the kernel runs, behind
//! [`vtier_ec::GfKernel`].
//!
//! This crate holds the `unsafe` FFI calls, so that `vtier-ec` stays
//! `forbid(unsafe_code)`; the kernel's counterpart is `rust/ec_simd.rs`.

use std::os::raw::{c_int, c_uint};

use vtier_ec::backend::check_args;
use vtier_ec::limits::{Row, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};
use vtier_ec::{Error, GfKernel, Result};

extern "C" {
    fn vtier_ec_simd_supported() -> c_uint;
    fn vtier_ec_simd_apply(
        kind: c_uint,
        coef: *const u8,
        stride: usize,
        k: c_uint,
        m: c_uint,
        inputs: *const *const u8,
        outputs: *const *mut u8,
        len: usize,
    ) -> c_int;
}

/// One implementation of `gf_simd.c` (`enum vtier_ec_simd_kind`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `vpshufb` on split 4-bit tables, ymm registers.
    Avx2 = 0,
    /// `vgf2p8affineqb`, ymm registers.
    GfniYmm = 1,
    /// `vgf2p8affineqb`, zmm registers.
    GfniZmm = 2,
}

impl Kind {
    /// Every kind, slowest first.
    pub const ALL: [Kind; 3] = [Kind::Avx2, Kind::GfniYmm, Kind::GfniZmm];

    /// The name the benchmark and the kernel log use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Avx2 => "avx2",
            Kind::GfniYmm => "gfni-ymm",
            Kind::GfniZmm => "gfni-zmm",
        }
    }
}

/// The kinds this CPU (and OS) supports, slowest first.
pub fn supported() -> Vec<Kind> {
    // SAFETY: reads CPUID through the compiler's runtime; no arguments.
    let mask = unsafe { vtier_ec_simd_supported() };
    Kind::ALL
        .into_iter()
        .filter(|k| mask & (1 << *k as u32) != 0)
        .collect()
}

/// A [`GfKernel`] running one supported [`Kind`].
#[derive(Copy, Clone, Debug)]
pub struct Simd(Kind);

impl Simd {
    /// The kernel of `kind`, if this CPU supports it.
    pub fn new(kind: Kind) -> Option<Self> {
        supported().contains(&kind).then_some(Simd(kind))
    }

    /// The fastest supported kind, if any.
    pub fn best() -> Option<Self> {
        supported().last().map(|k| Simd(*k))
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.0
    }
}

impl GfKernel for Simd {
    fn apply(
        &self,
        rows: &[Row],
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        len: usize,
    ) -> Result {
        check_args(rows, inputs, outputs, len)?;
        let (k, m) = (inputs.len(), outputs.len());
        if m == 0 {
            return Ok(());
        }
        let mut ins = [core::ptr::null::<u8>(); MAX_DATA_SHARDS];
        for (p, i) in ins.iter_mut().zip(inputs) {
            *p = i.as_ptr();
        }
        let mut outs = [core::ptr::null_mut::<u8>(); MAX_PARITY_SHARDS];
        for (p, o) in outs.iter_mut().zip(outputs.iter_mut()) {
            *p = o.as_mut_ptr();
        }
        // SAFETY: `check_args` and the test above give 1 <= k <= 24, `m`
        // rows and 1 <= m <= 8 outputs, every shard at least `len` bytes.
        // So `rows` is `m` contiguous rows of `MAX_DATA_SHARDS` bytes (the
        // stride), of which the C code reads the first `k`; the first `k`
        // input pointers are readable and the first `m` output pointers
        // writable for `len` bytes; outputs are `&mut`, so they overlap
        // neither each other nor the inputs. The C code keeps no pointer
        // after it returns. The bounds on k and m are the C side's limits
        // too (VTIER_EC_MAX_IN/OUT).
        let rc = unsafe {
            vtier_ec_simd_apply(
                self.0 as c_uint,
                rows.as_ptr().cast(),
                MAX_DATA_SHARDS,
                k as c_uint,
                m as c_uint,
                ins.as_ptr(),
                outs.as_ptr(),
                len,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Backend)
        }
    }

    fn name(&self) -> &'static str {
        self.0.name()
    }
}

const _: () = assert!(MAX_DATA_SHARDS == 24 && MAX_PARITY_SHARDS == 8);
