// SPDX-License-Identifier: GPL-2.0

//! The hot loop: combining `k` input shards into output shards through rows
//! of coefficients, `out[j] = Σ_i rows[j][i] · in[i]`.
//!
//! Kernel code cannot use SIMD registers, so this works on 64-bit words of
//! eight bytes each and evaluates every output by Horner's rule over the
//! *bits* of the coefficients (bit planes):
//!
//! ```text
//! out = Σ_i c_i·d_i = 2·(… 2·(2·P_7 + P_6) …) + P_0,   P_b = XOR of the d_i whose c_i has bit b set
//! ```
//!
//! Each output word costs at most seven doublings ([`gf::mul2_word`], six
//! integer operations for eight bytes) plus one XOR per set coefficient bit,
//! and no table. A row of 1s is a plain XOR (no doubling at all), a row of
//! small coefficients needs few doublings.
//!
//! # Block layout
//!
//! Inputs are walked in blocks of [`BLOCK`] bytes: [`WORDS`] cache lines,
//! taken one word per line per step, so that eight independent accumulators
//! keep the CPU busy and every input's block stays in L1 cache while all
//! output rows are computed from it. Taking the eight words from eight
//! *different* lines (rather than eight neighbours) changes nothing for the
//! kernel build, but it keeps LLVM from auto-vectorising the loop with SSE
//! in the userspace build: the kernel cannot use SSE, so the userspace tests
//! and benchmark then measure exactly the scalar code the kernel runs.
//! A shard's last `len % BLOCK` bytes go word by word, then byte by byte.

use super::error::{Error, Result};
use super::gf;
use super::limits::{Row, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};

/// Words computed side by side, one from each of `WORDS` cache lines.
pub const WORDS: usize = 8;

/// Bytes of a cache line.
pub const LINE: usize = 64;

/// Bytes of each shard handled per block.
pub const BLOCK: usize = WORDS * LINE;

/// Steps per block: each step takes word `step` of every line.
pub const STEPS: usize = LINE / 8;

/// Where computed output goes: stored into output shards, or compared with
/// them.
pub trait Sink {
    /// Output `j`, words at bytes `off + w * LINE + step * 8` for `w` in
    /// `0..WORDS`, where `off` is a multiple of [`BLOCK`].
    fn words(&mut self, j: usize, off: usize, step: usize, words: &[u64; WORDS]);
    /// Output `j`, bytes `off..off + bytes.len()` (in the tail).
    fn bytes(&mut self, j: usize, off: usize, bytes: &[u8]);
}

/// A coefficient row split into bit planes.
#[derive(Copy, Clone, Default)]
struct Planes {
    /// `set[b]` has bit `i` set when bit `b` of coefficient `i` is set.
    set: [u32; 8],
    /// One more than the highest plane in use; 0 for a row of zeros.
    top: usize,
}

impl Planes {
    fn new(row: &Row, k: usize) -> Self {
        let mut p = Planes::default();
        for (i, &c) in row.iter().take(k).enumerate() {
            for (b, set) in p.set.iter_mut().enumerate() {
                if c & (1 << b) != 0 {
                    *set |= 1 << i;
                    p.top = p.top.max(b + 1);
                }
            }
        }
        p
    }
}

/// Input blocks, indexed by a bit number of a `u32` shard set.
type Blocks<'a> = [&'a [u8; BLOCK]; 32];

#[inline(always)]
fn load(block: &[u8; BLOCK], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&block[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// One step of one output row: Horner's rule over the bit planes.
#[inline(always)]
fn step_row(p: &Planes, blocks: &Blocks<'_>, step: usize, reduce: u64) -> [u64; WORDS] {
    let mut acc = [0u64; WORDS];
    for b in (0..p.top).rev() {
        let mut set = p.set[b];
        while set != 0 {
            let blk = blocks[set.trailing_zeros() as usize & 31];
            set &= set - 1;
            for (w, a) in acc.iter_mut().enumerate() {
                *a ^= load(blk, w * LINE + step * 8);
            }
        }
        if b > 0 {
            for a in acc.iter_mut() {
                *a = gf::mul2_word(*a, reduce);
            }
        }
    }
    acc
}

/// One word of one output row at byte `off` of the (contiguous) inputs.
fn word_row<I: AsRef<[u8]>>(p: &Planes, inputs: &[I], off: usize) -> u64 {
    let mut acc = 0u64;
    for b in (0..p.top).rev() {
        for (i, input) in inputs.iter().enumerate() {
            if p.set[b] & (1 << i) != 0 {
                let mut w = [0u8; 8];
                if let Some(s) = input.as_ref().get(off..off + 8) {
                    w.copy_from_slice(s);
                }
                acc ^= u64::from_ne_bytes(w);
            }
        }
        if b > 0 {
            acc = gf::mul2_word(acc, gf::REDUCE);
        }
    }
    acc
}

static ZERO_BLOCK: [u8; BLOCK] = [0; BLOCK];

/// Computes `out[j] = Σ_i rows[j][i] · inputs[i]` over the first `len` bytes
/// of the inputs, for every row, and hands the results to `sink`.
///
/// `inputs.len()` is `k` (at most [`MAX_DATA_SHARDS`], and only the first `k`
/// coefficients of a row are used); `rows.len()` is at most
/// [`MAX_PARITY_SHARDS`]; every input must hold at least `len` bytes.
pub fn apply<I: AsRef<[u8]>, S: Sink>(
    rows: &[Row],
    inputs: &[I],
    len: usize,
    sink: &mut S,
) -> Result {
    let k = inputs.len();
    if k == 0 || k > MAX_DATA_SHARDS {
        return Err(Error::DataShardCount);
    }
    if rows.len() > MAX_PARITY_SHARDS {
        return Err(Error::ParityShardCount);
    }
    if inputs.iter().any(|d| d.as_ref().len() < len) {
        return Err(Error::ShardSizeMismatch);
    }
    let mut planes = [Planes::default(); MAX_PARITY_SHARDS];
    for (p, row) in planes.iter_mut().zip(rows) {
        *p = Planes::new(row, k);
    }
    let planes = &planes[..rows.len()];
    let reduce = core::hint::black_box(gf::REDUCE);

    let full = len - len % BLOCK;
    let mut blocks: Blocks<'_> = [&ZERO_BLOCK; 32];
    for off in (0..full).step_by(BLOCK) {
        for (blk, input) in blocks.iter_mut().zip(inputs) {
            let s = input.as_ref().get(off..off + BLOCK);
            *blk = s
                .and_then(|s| s.try_into().ok())
                .ok_or(Error::ShardSizeMismatch)?;
        }
        for step in 0..STEPS {
            for (j, p) in planes.iter().enumerate() {
                sink.words(j, off, step, &step_row(p, &blocks, step, reduce));
            }
        }
    }
    tail(rows, planes, inputs, full, len, sink);
    Ok(())
}

/// Bytes `off..len` (fewer than a block): whole words, then single bytes.
fn tail<I: AsRef<[u8]>, S: Sink>(
    rows: &[Row],
    planes: &[Planes],
    inputs: &[I],
    off: usize,
    len: usize,
    sink: &mut S,
) {
    let words_end = len - (len - off) % 8;
    for at in (off..words_end).step_by(8) {
        for (j, p) in planes.iter().enumerate() {
            sink.bytes(j, at, &word_row(p, inputs, at).to_ne_bytes());
        }
    }
    for at in words_end..len {
        for (j, row) in rows.iter().enumerate() {
            let mut v = 0u8;
            for (c, input) in row.iter().zip(inputs) {
                v ^= gf::mul(*c, input.as_ref().get(at).copied().unwrap_or(0));
            }
            sink.bytes(j, at, &[v]);
        }
    }
}

/// A [`Sink`] that stores into output shards, one per row.
pub struct Store<'a, O: AsMut<[u8]>> {
    /// The outputs, at least as long as the inputs.
    pub outputs: &'a mut [O],
}

impl<O: AsMut<[u8]>> Sink for Store<'_, O> {
    #[inline(always)]
    fn words(&mut self, j: usize, off: usize, step: usize, words: &[u64; WORDS]) {
        let dst = self.outputs.get_mut(j).map(|o| o.as_mut());
        let dst: Option<&mut [u8; BLOCK]> = dst
            .and_then(|d| d.get_mut(off..off + BLOCK))
            .and_then(|d| d.try_into().ok());
        if let Some(dst) = dst {
            for (w, word) in words.iter().enumerate() {
                let at = w * LINE + step * 8;
                dst[at..at + 8].copy_from_slice(&word.to_ne_bytes());
            }
        }
    }

    fn bytes(&mut self, j: usize, off: usize, bytes: &[u8]) {
        let dst = self.outputs.get_mut(j).map(|o| o.as_mut());
        if let Some(dst) = dst.and_then(|d| d.get_mut(off..off + bytes.len())) {
            dst.copy_from_slice(bytes);
        }
    }
}

/// A [`Sink`] that compares with existing shards, one per row, and
/// remembers whether all were equal.
pub struct Compare<'a, O: AsRef<[u8]>> {
    /// The shards to compare with.
    pub expected: &'a [O],
    /// Whether everything compared so far was equal.
    pub equal: bool,
}

impl<O: AsRef<[u8]>> Sink for Compare<'_, O> {
    #[inline(always)]
    fn words(&mut self, j: usize, off: usize, step: usize, words: &[u64; WORDS]) {
        let exp = self.expected.get(j).map(|o| o.as_ref());
        let exp: Option<&[u8; BLOCK]> = exp
            .and_then(|e| e.get(off..off + BLOCK))
            .and_then(|e| e.try_into().ok());
        match exp {
            Some(e) => {
                for (w, word) in words.iter().enumerate() {
                    let at = w * LINE + step * 8;
                    self.equal &= e[at..at + 8] == word.to_ne_bytes();
                }
            }
            None => self.equal = false,
        }
    }

    fn bytes(&mut self, j: usize, off: usize, bytes: &[u8]) {
        let exp = self.expected.get(j).map(|o| o.as_ref());
        self.equal &= exp.and_then(|e| e.get(off..off + bytes.len())) == Some(bytes);
    }
}
