// SPDX-License-Identifier: GPL-2.0

//! The SIMD GF(2^8) kernels of `ec/c/gf_simd.c` (AVX2 `vpshufb` tables, GFNI
//! on ymm and zmm registers, under `kernel_fpu_begin()`), as a
//! [`GfKernel`] for the erasure codec, and their self-test at module load.
//!
//! Rust in the kernel cannot use vector registers, so the codec's own hot
//! loop ([`Scalar`]) is scalar; the C side runs the same operation, `out[j]
//! = Σ_i rows[j][i] · in[i]`, with SIMD where the CPU has it. At load every
//! kind the CPU supports is checked against the scalar code on random
//! stripes of several shapes (encode, then reconstruct of lost shards); the
//! fastest kind that passes becomes [`best`], a kind that fails is never
//! used (an error is logged and the codec keeps the scalar loop). The log
//! line, which `qemu-test/tests/ec.sh` checks, reads for example
//!
//! ```text
//! vtier: ec: GF kernel self-test passed: avx2 gfni-ymm (2+1 4+1 4+2 8+3 10+4 16+4 24+8); using gfni-ymm
//! ```

use kernel::bindings;
use kernel::ffi::{c_int, c_uint};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};

use crate::ec::backend::{check_args, GfKernel, Scalar};
use crate::ec::codec::ReedSolomon;
use crate::ec::error::{Error as EcError, Result as EcResult};
use crate::ec::limits::{Row, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};
use crate::kcompat::KVec;

// `ec/c/gf_simd.h`.
unsafe extern "C" {
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

/// `enum vtier_ec_simd_kind`, slowest first, with the names the log uses.
const KINDS: [(u32, &str); 3] = [(0, "avx2"), (1, "gfni-ymm"), (2, "gfni-zmm")];

/// One kind of `gf_simd.c` that this CPU supports.
#[derive(Copy, Clone)]
pub(crate) struct CSimd {
    kind: u32,
    name: &'static str,
}

impl CSimd {
    /// The kinds this CPU supports, slowest first (`None` where not).
    fn supported() -> [Option<CSimd>; 3] {
        // SAFETY: Reads CPU feature flags only; callable in any context.
        let mask = unsafe { vtier_ec_simd_supported() };
        KINDS.map(|(kind, name)| (mask & (1 << kind) != 0).then_some(CSimd { kind, name }))
    }
}

impl GfKernel for CSimd {
    fn apply(
        &self,
        rows: &[Row],
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        len: usize,
    ) -> EcResult {
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
        // stride), of which C reads the first `k`; the first `k` input
        // pointers are readable and the first `m` output pointers writable
        // for `len` bytes; the outputs are `&mut`, so they overlap neither
        // each other nor an input. C keeps no pointer after it returns, and
        // the bounds on k and m are its limits too (`VTIER_EC_MAX_IN`/`OUT`). It never sleeps; `kernel_fpu_begin()`
        // disables preemption for at most 32 KiB of each shard at a time.
        let rc = unsafe {
            vtier_ec_simd_apply(
                self.kind,
                rows.as_ptr().cast(),
                MAX_DATA_SHARDS,
                k as c_uint,
                m as c_uint,
                ins.as_ptr(),
                outs.as_ptr(),
                len,
            )
        };
        match rc {
            0 => Ok(()),
            // Vector registers are unusable in this context (an interrupt
            // that interrupted other FPU use): the scalar loop does the job.
            rc if rc == -(bindings::EBUSY as c_int) => {
                Scalar.apply(rows, inputs, outputs, len)
            }
            _ => Err(EcError::Backend),
        }
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

/// The kind chosen at load, plus one; 0 for none (the scalar loop).
static CHOSEN: Atomic<u32> = Atomic::new(0);

/// The fastest C kernel that passed the self-test at load, if any.
pub(crate) fn best() -> Option<CSimd> {
    let chosen = CHOSEN.load(Relaxed);
    let (kind, name) = *KINDS.get(chosen.checked_sub(1)? as usize)?;
    Some(CSimd { kind, name })
}

/// The hot loop the capacity tier runs: the kind chosen at load
/// ([`best`]), or the scalar loop when none passed or the CPU has none.
pub(crate) struct Best;

/// What [`crate::volume`] hands to every stripe store.
pub(crate) static BEST: Best = Best;

impl GfKernel for Best {
    fn apply(
        &self,
        rows: &[Row],
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        len: usize,
    ) -> EcResult {
        match best() {
            Some(kind) => kind.apply(rows, inputs, outputs, len),
            None => Scalar.apply(rows, inputs, outputs, len),
        }
    }

    fn name(&self) -> &'static str {
        best().map_or("scalar", |k| k.name)
    }
}

/// Codes the self-test runs, and the shard length: a few 64-byte steps
/// and a tail of every kind.
const CODES: [(usize, usize); 7] = [(2, 1), (4, 1), (4, 2), (8, 3), (10, 4), (16, 4), (24, 8)];
const LEN: usize = 2 * 4096 + 77;

/// Why a kind failed.
enum Failure {
    /// No memory for the test buffers.
    NoMemory,
    /// The codec returned an error.
    Codec(EcError),
    /// Wrong bytes: code `k+m`, operation.
    Mismatch(usize, usize, &'static str),
}

impl From<EcError> for Failure {
    fn from(e: EcError) -> Self {
        Failure::Codec(e)
    }
}

/// A codec error in the kernel's formatting.
struct Shown(EcError);

impl kernel::fmt::Display for Shown {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

/// Random bytes (xorshift64): the test needs no secrets, only data that
/// differs everywhere.
fn fill(buf: &mut [u8], seed: &mut u64) {
    for b in buf {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *b = *seed as u8;
    }
}

/// One code: encode with `kern` and with the scalar loop, compare; lose the
/// first `m` shards, rebuild them with `kern`, compare with the originals.
fn check_code(kern: &CSimd, k: usize, m: usize, seed: &mut u64) -> Result<(), Failure> {
    let len = LEN;
    let rs = ReedSolomon::new(k, m)?;
    let mut buf = KVec::from_elem(0u8, (k + 3 * m) * len, GFP_KERNEL)
        .map_err(|_| Failure::NoMemory)?;
    let (stripe, rest) = buf.split_at_mut((k + m) * len);
    let (scalar, saved) = rest.split_at_mut(m * len);
    fill(&mut stripe[..k * len], seed);

    let mut shards: [&mut [u8]; MAX_DATA_SHARDS + MAX_PARITY_SHARDS] = Default::default();
    for (s, chunk) in shards.iter_mut().zip(stripe.chunks_mut(len)) {
        *s = chunk;
    }
    let shards = &mut shards[..k + m];
    {
        let (data, parity) = shards.split_at_mut(k);
        let mut sc: [&mut [u8]; MAX_PARITY_SHARDS] = Default::default();
        for (s, chunk) in sc.iter_mut().zip(scalar.chunks_mut(len)) {
            *s = chunk;
        }
        rs.encode_with(&Scalar, data, &mut sc[..m])?;
        rs.encode_with(kern, data, parity)?;
        if parity.iter().zip(&sc[..m]).any(|(a, b)| a[..] != b[..]) {
            return Err(Failure::Mismatch(k, m, "encode"));
        }
    }
    let mut present = [true; MAX_DATA_SHARDS + MAX_PARITY_SHARDS];
    for ((s, keep), p) in shards.iter_mut().zip(saved.chunks_mut(len)).zip(&mut present) {
        keep.copy_from_slice(s);
        s.fill(0);
        *p = false;
    }
    rs.reconstruct_with(kern, shards, &present[..k + m])?;
    if shards.iter().zip(saved.chunks(len)).any(|(s, keep)| s[..] != keep[..]) {
        return Err(Failure::Mismatch(k, m, "reconstruct"));
    }
    Ok(())
}

fn check_kind(kern: &CSimd) -> Result<(), Failure> {
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    for (k, m) in CODES {
        check_code(kern, k, m, &mut seed)?;
    }
    Ok(())
}

/// The self-test at module load: checks every supported kind, logs the
/// result in one line (errors in one more per failed kind) and chooses the
/// fastest kind that passed. Never fails the load: without a good C kernel
/// the codec uses its scalar loop.
pub(crate) fn check_at_load() {
    let mut passed: [&str; 3] = [""; 3];
    let mut n = 0;
    let mut chosen = 0;
    for kern in CSimd::supported().iter().flatten() {
        match check_kind(kern) {
            Ok(()) => {
                passed[n] = kern.name;
                n += 1;
                chosen = kern.kind + 1;
            }
            Err(Failure::NoMemory) => {
                pr_warn!("ec: GF kernel self-test of {}: no memory\n", kern.name);
            }
            Err(Failure::Codec(e)) => {
                pr_err!("ec: GF kernel {} self-test FAILED: {}\n", kern.name, Shown(e));
            }
            Err(Failure::Mismatch(k, m, op)) => {
                pr_err!(
                    "ec: GF kernel {} self-test FAILED: {}+{} {} differs from the scalar code\n",
                    kern.name,
                    k,
                    m,
                    op
                );
            }
        }
    }
    CHOSEN.store(chosen, Relaxed);
    let using = best().map_or("scalar", |b| b.name);
    if n == 0 {
        passed[0] = "none";
    }
    // Names separated by one space, however many passed.
    let sep = |s: &str| if s.is_empty() { "" } else { " " };
    pr_info!(
        "ec: GF kernel self-test passed: {}{}{}{}{} (2+1 4+1 4+2 8+3 10+4 16+4 24+8); using {}\n",
        passed[0],
        sep(passed[1]),
        passed[1],
        sep(passed[2]),
        passed[2],
        using
    );
}
