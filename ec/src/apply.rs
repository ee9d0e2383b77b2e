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
//! # What a row costs, and how it is made cheaper
//!
//! A Horner step multiplies eight bytes by 2 ([`gf::double_word`], seven
//! integer operations) or by 2⁻¹ ([`gf::halve_word`], seven); a set
//! coefficient bit costs one XOR. Three choices per row, made by
//! `RowPlan::new` from an estimate of those costs:
//!
//! - **Direction.** Doubling from the top plane down needs as many steps as
//!   the highest set bit; halving from the bottom up, on the coefficients
//!   multiplied by 2⁷, as many as 7 minus the lowest. Small coefficients
//!   (the 4+1 and 4+2 parity rows are all below 32: four steps) double,
//!   coefficients whose low bits are clear halve.
//! - **A factor taken out.** `Σ c_i·d_i = f · Σ (c_i/f)·d_i`: of the 254
//!   candidates `f ≠ 1` the one that leaves the cheapest row is found, and
//!   the output is multiplied by `f` at the end through a 256-byte table.
//!   That costs about as much as three Horner steps, so it is taken only
//!   where it saves more: the decoding row of 4+1 that rebuilds the first
//!   data shard (`[166, 245, 210, 128]`, seven steps) becomes
//!   `128 · [28, 18, 20, 1]` (four).
//! - **Two steps per pass.** See below.
//!
//! No multiply instruction is used: on the machine this was measured on, a
//! 64-bit `imul` per word made a step slower than seven simple operations.
//!
//! # Passes
//!
//! The output itself is the accumulator. It is walked in blocks of
//! [`BLOCK`] bytes (1 KiB, so that `k` input blocks and the output block
//! stay in L1 cache), and a block gets one *pass* per Horner step or, where
//! both planes XOR at most four inputs, one pass per *two* steps: each
//! output word is loaded, stepped, XORed with its inputs and stored once per
//! pass. The passes are generic over the step and the number of inputs (one
//! function each), so their loops are straight-line code.
//!
//! A block is taken as [`LANES`] lanes of `BLOCK / LANES` bytes, and each
//! iteration of a pass works on the same word of every lane: eight
//! independent words, none adjacent to another. Together with the
//! `black_box` on the iteration's offset (a store and a load per eight
//! words) this keeps LLVM from vectorising the userspace build with SSE, so
//! that the tests and the benchmark measure the scalar code the kernel runs.
//! (Lanes of 2 KiB blocks are 256 bytes apart and collide in the L1 cache:
//! twice as slow.) The last `len % BLOCK` bytes of a shard go word by word,
//! then byte by byte.

use super::backend::check_args;
use super::error::{Error, Result};
use super::gf;
use super::limits::{Row, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};

/// Bytes of each shard handled per block.
pub const BLOCK: usize = 1024;

/// Words worked on side by side in a pass, one from each lane of a block.
pub const LANES: usize = 8;

/// Bytes of a lane.
const LANE: usize = BLOCK / LANES;

/// Rows of one call that may take a factor out (each needs a 256-byte
/// table on the stack).
const MAX_SCALED: usize = 2;

/// Shards shorter than this keep the factor in the row: finding the factor
/// costs about a microsecond per row.
const SCALE_MIN_LEN: usize = 16 << 10;

/// The estimated cost of taking a factor out (tenths of a cycle per output
/// word, as [`seq_cost`]): the table pass, measured at about 7 cycles per
/// word.
const SCALE_COST: u32 = 75;

/// Most inputs XORed by one pass per plane.
const MAX_PASS_INPUTS: usize = 4;

type Block = [u8; BLOCK];

static ZERO_BLOCK: Block = [0; BLOCK];

// What a pass does with the word it loads from the output block (const
// generic parameter of the passes).
/// The first plane: the word is not loaded, the inputs are its value.
const FIRST: u8 = 0;
/// Multiplied by 2⁻¹ before the inputs are XORed in.
const HALVE: u8 = 1;
/// Multiplied by 2 before the inputs are XORed in.
const DOUBLE: u8 = 2;
/// Kept: more inputs of the same plane.
const XOR: u8 = 3;

/// One row, ready to run.
#[derive(Copy, Clone)]
struct RowPlan {
    /// Input sets of the planes in evaluation order: bit `i` is input `i`.
    sets: [u32; 8],
    /// Planes in use.
    n: u8,
    /// Halving (planes ascending) rather than doubling (descending).
    halve: bool,
    /// The factor taken out; 1 for none.
    scale: u8,
}

/// `set[b]` has bit `i` set when bit `b` of `row[i]` is set.
fn planes_of(row: &[u8]) -> [u32; 8] {
    let mut set = [0u32; 8];
    for (i, &c) in row.iter().enumerate() {
        for (b, s) in set.iter_mut().enumerate() {
            if c & (1 << b) != 0 {
                *s |= 1 << i;
            }
        }
    }
    set
}

/// Estimated cost, in tenths of a cycle per output word, of running passes
/// over planes with these input sets, in order (pairing steps as [`eval`]
/// does). Measured on the development machine: a first pass costs about
/// 1 + 0.3 per input, a single step 2.8 + 0.4 per input, a double step
/// 4.2 + 0.4 per input.
fn seq_cost(sets: &[u32]) -> u32 {
    let extra = |n: u32| {
        if n as usize > MAX_PASS_INPUTS {
            11 * ((n - 1) / 4)
        } else {
            0
        }
    };
    let mut cost = 0;
    let mut t = 0;
    while let Some(&set) = sets.get(t) {
        let n = set.count_ones();
        let next = sets.get(t + 1).map(|s| s.count_ones());
        match next {
            _ if t == 0 => {
                cost += 10 + 3 * n + extra(n);
                t += 1;
            }
            Some(nb) if n as usize <= MAX_PASS_INPUTS && nb as usize <= MAX_PASS_INPUTS => {
                cost += 42 + 4 * (n + nb);
                t += 2;
            }
            _ => {
                cost += 28 + 4 * n + extra(n);
                t += 1;
            }
        }
    }
    cost
}

/// A row's plane sets in evaluation order for one direction, and how many.
fn ordered(row: &[u8], halve: bool) -> ([u32; 8], usize) {
    let mut out = [0u32; 8];
    let mut n = 0;
    let set = if halve {
        let mut h = [0u8; MAX_DATA_SHARDS];
        for (v, &c) in h.iter_mut().zip(row) {
            *v = gf::mul(c, 128);
        }
        planes_of(h.get(..row.len()).unwrap_or(&[]))
    } else {
        planes_of(row)
    };
    if halve {
        let lo = set.iter().position(|&s| s != 0).unwrap_or(7);
        for &s in &set[lo..] {
            out[n] = s;
            n += 1;
        }
    } else {
        let top = set.iter().rposition(|&s| s != 0).unwrap_or(0);
        for &s in set[..=top].iter().rev() {
            out[n] = s;
            n += 1;
        }
    }
    (out, n)
}

/// (cost, halve) of a row in the cheaper direction.
fn row_cost(row: &[u8]) -> (u32, bool) {
    let (d, nd) = ordered(row, false);
    let (h, nh) = ordered(row, true);
    let dc = seq_cost(&d[..nd]);
    let hc = seq_cost(&h[..nh]);
    if hc < dc {
        (hc, true)
    } else {
        (dc, false)
    }
}

/// The factor worth taking out of `row`, whose cost is `cost`, if any. Every
/// candidate is rated by its steps and set bits (a few operations per
/// coefficient), the best one by the full estimate.
#[inline(never)]
fn best_factor(row: &[u8], cost: u32) -> Option<u8> {
    if row.contains(&0) {
        // A zero stays zero under any factor; such rows (copies, the
        // identity parts of small codes) are cheap already.
        return None;
    }
    let mut logs = [0usize; MAX_DATA_SHARDS];
    for (l, &c) in logs.iter_mut().zip(row) {
        *l = gf::LOG[c as usize] as usize;
    }
    let logs = logs.get(..row.len())?;
    // c / f, and c / f · 2^7 for the halving direction, of each coefficient
    // for the factor whose log is `lf`.
    let scaled =
        |l: usize, lf: usize, up: usize| gf::EXP.get(l + 255 - lf + up).copied().unwrap_or(0);
    // Steps dominate the cost: first the fewest steps any factor leaves
    // (the highest bit of the OR of the doubling coefficients, the lowest
    // of the halving ones), then set bits among the factors that leave
    // that few.
    let steps_of = |lf: usize| {
        let (mut d, mut h) = (0u8, 0u8);
        for &l in logs {
            d |= scaled(l, lf, 0);
            h |= scaled(l, lf, 7);
        }
        let top = 7 - d.leading_zeros().min(7);
        let low = 7 - h.trailing_zeros().min(7);
        (top, low)
    };
    let fewest = (1..255)
        .map(|lf| {
            let (top, low) = steps_of(lf);
            top.min(low)
        })
        .min()?;
    let (mut best_lf, mut best) = (0usize, u32::MAX);
    for lf in 1..255 {
        let (top, low) = steps_of(lf);
        if top.min(low) > fewest + 1 {
            continue;
        }
        let (mut pd, mut ph) = (0u32, 0u32);
        for &l in logs {
            pd += scaled(l, lf, 0).count_ones();
            ph += scaled(l, lf, 7).count_ones();
        }
        let est = (10 + 21 * top + 4 * pd).min(10 + 21 * low + 4 * ph);
        if est < best {
            (best_lf, best) = (lf, est);
        }
    }
    if best_lf == 0 || best + SCALE_COST >= cost {
        return None;
    }
    let mut r = [0u8; MAX_DATA_SHARDS];
    for (d, &l) in r.iter_mut().zip(logs) {
        *d = gf::EXP.get(l + 255 - best_lf).copied().unwrap_or(0);
    }
    let (c, _) = row_cost(r.get(..row.len())?);
    if c + SCALE_COST < cost {
        gf::EXP.get(best_lf).copied()
    } else {
        None
    }
}

impl RowPlan {
    // Not inlined: its arrays stay out of the kernel stack frame of
    // `Plan::fill`.
    #[inline(never)]
    fn new(row: &[u8], may_scale: bool) -> Self {
        let scale = match may_scale {
            true => best_factor(row, row_cost(row).0).unwrap_or(1),
            false => 1,
        };
        let inv = gf::inv(scale).unwrap_or(1);
        let mut r = [0u8; MAX_DATA_SHARDS];
        for (d, &c) in r.iter_mut().zip(row) {
            *d = gf::mul(c, inv);
        }
        let r = r.get(..row.len()).unwrap_or(&[]);
        let (_, halve) = row_cost(r);
        let (sets, n) = ordered(r, halve);
        RowPlan {
            sets,
            n: n as u8,
            halve,
            scale,
        }
    }
}

/// Every row of a call, with the tables of the rows that took a factor out.
struct Plan {
    rows: [RowPlan; MAX_PARITY_SHARDS],
    /// `table[j]`: index into `tables` of row `j`'s factor, if it has one.
    table: [Option<usize>; MAX_PARITY_SHARDS],
    tables: [[u8; 256]; MAX_SCALED],
}

impl Plan {
    const EMPTY: Plan = Plan {
        rows: [RowPlan {
            sets: [0; 8],
            n: 0,
            halve: false,
            scale: 1,
        }; MAX_PARITY_SHARDS],
        table: [None; MAX_PARITY_SHARDS],
        tables: [[0; 256]; MAX_SCALED],
    };

    /// The plan of `rows` over `k` inputs of `len` bytes. Filled in place:
    /// the plan is about 800 bytes of kernel stack.
    fn fill(&mut self, rows: &[Row], k: usize, len: usize) {
        let plan = self;
        let mut scaled = 0;
        for (j, row) in rows.iter().enumerate().take(MAX_PARITY_SHARDS) {
            let may_scale = len >= SCALE_MIN_LEN && scaled < MAX_SCALED;
            let p = RowPlan::new(row.get(..k).unwrap_or(&[]), may_scale);
            if let Some(table) = plan.tables.get_mut(scaled).filter(|_| p.scale != 1) {
                for (x, t) in table.iter_mut().enumerate() {
                    *t = gf::mul(p.scale, x as u8);
                }
                plan.table[j] = Some(scaled);
                scaled += 1;
            }
            plan.rows[j] = p;
        }
    }

    fn table(&self, j: usize) -> Option<&[u8; 256]> {
        self.table
            .get(j)
            .copied()
            .flatten()
            .and_then(|t| self.tables.get(t))
    }
}

#[inline(always)]
fn rd(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        x.copy_from_slice(s);
    }
    u64::from_ne_bytes(x)
}

#[inline(always)]
fn wr(b: &mut [u8], at: usize, v: u64) {
    if let Some(d) = b.get_mut(at..at + 8) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

#[inline(always)]
fn step<const MODE: u8>(w: u64) -> u64 {
    match MODE {
        HALVE => gf::halve_word(w),
        DOUBLE => gf::double_word(w),
        _ => w,
    }
}

/// The byte offset, within its lane, of one iteration of a pass: hidden
/// from the optimiser (see the module documentation) and kept in range.
#[inline(always)]
fn lane_offset(s: usize) -> usize {
    core::hint::black_box(s) & (LANE - 8)
}

/// One step over a block: `acc = step(acc) ^ Σ ins[..N]` (`acc = Σ ins[..N]`
/// for the first plane).
#[inline(never)]
fn pass<const MODE: u8, const N: usize>(acc: &mut Block, ins: &[&Block; MAX_PASS_INPUTS]) {
    for s in (0..LANE).step_by(8) {
        let s = lane_offset(s);
        for l in 0..LANES {
            let at = l * LANE + s;
            let mut a = match MODE {
                FIRST => 0,
                _ => step::<MODE>(rd(acc, at)),
            };
            for i in ins.iter().take(N) {
                a ^= rd(*i, at);
            }
            wr(acc, at, a);
        }
    }
}

/// Two steps over a block: `acc = step(step(acc) ^ Σ a[..NA]) ^ Σ b[..NB]`.
#[inline(never)]
fn pass2<const MODE: u8, const NA: usize, const NB: usize>(
    acc: &mut Block,
    a: &[&Block; MAX_PASS_INPUTS],
    b: &[&Block; MAX_PASS_INPUTS],
) {
    for s in (0..LANE).step_by(8) {
        let s = lane_offset(s);
        for l in 0..LANES {
            let at = l * LANE + s;
            let mut x = step::<MODE>(rd(acc, at));
            for i in a.iter().take(NA) {
                x ^= rd(*i, at);
            }
            x = step::<MODE>(x);
            for i in b.iter().take(NB) {
                x ^= rd(*i, at);
            }
            wr(acc, at, x);
        }
    }
}

fn run<const MODE: u8>(acc: &mut Block, ins: &[&Block; MAX_PASS_INPUTS], n: usize) {
    match n {
        0 => pass::<MODE, 0>(acc, ins),
        1 => pass::<MODE, 1>(acc, ins),
        2 => pass::<MODE, 2>(acc, ins),
        3 => pass::<MODE, 3>(acc, ins),
        _ => pass::<MODE, 4>(acc, ins),
    }
}

fn run2<const MODE: u8>(
    acc: &mut Block,
    a: &[&Block; MAX_PASS_INPUTS],
    na: usize,
    b: &[&Block; MAX_PASS_INPUTS],
    nb: usize,
) {
    macro_rules! dispatch {
        ($($x:literal $y:literal),*) => {
            match (na, nb) {
                $(($x, $y) => pass2::<MODE, $x, $y>(acc, a, b),)*
                _ => {}
            }
        };
    }
    dispatch!(
        0 0, 0 1, 0 2, 0 3, 0 4, 1 0, 1 1, 1 2, 1 3, 1 4, 2 0, 2 1, 2 2, 2 3, 2 4,
        3 0, 3 1, 3 2, 3 3, 3 4, 4 0, 4 1, 4 2, 4 3, 4 4
    );
}

/// Up to [`MAX_PASS_INPUTS`] input blocks of `set`, removed from it.
fn take<'a>(blocks: &[&'a Block], set: &mut u32) -> ([&'a Block; MAX_PASS_INPUTS], usize) {
    let mut v: [&Block; MAX_PASS_INPUTS] = [&ZERO_BLOCK; MAX_PASS_INPUTS];
    let mut n = 0;
    while *set != 0 && n < MAX_PASS_INPUTS {
        v[n] = blocks
            .get(set.trailing_zeros() as usize)
            .copied()
            .unwrap_or(&ZERO_BLOCK);
        *set &= *set - 1;
        n += 1;
    }
    (v, n)
}

/// `acc = row · blocks` over one block.
fn eval(p: &RowPlan, blocks: &[&Block], acc: &mut Block) {
    let sets = p.sets.get(..p.n as usize).unwrap_or(&[]);
    let fits = |s: u32| s.count_ones() as usize <= MAX_PASS_INPUTS;
    let mut t = 0;
    while let Some(&set) = sets.get(t) {
        let next = sets.get(t + 1).copied();
        if let Some(next) = next.filter(|&n| t > 0 && fits(set) && fits(n)) {
            let (mut sa, mut sb) = (set, next);
            let (a, na) = take(blocks, &mut sa);
            let (b, nb) = take(blocks, &mut sb);
            match p.halve {
                true => run2::<HALVE>(acc, &a, na, &b, nb),
                false => run2::<DOUBLE>(acc, &a, na, &b, nb),
            }
            t += 2;
            continue;
        }
        let mut rest = set;
        let mut kind = match (t, p.halve) {
            (0, _) => FIRST,
            (_, true) => HALVE,
            (_, false) => DOUBLE,
        };
        loop {
            let (ins, n) = take(blocks, &mut rest);
            match kind {
                FIRST => run::<FIRST>(acc, &ins, n),
                HALVE => run::<HALVE>(acc, &ins, n),
                DOUBLE => run::<DOUBLE>(acc, &ins, n),
                _ => run::<XOR>(acc, &ins, n),
            }
            if rest == 0 {
                break;
            }
            kind = XOR;
        }
        t += 1;
    }
}

/// Multiplies every byte of `buf` through `table`, eight at a time (one
/// store per word: a byte-wise loop is bound by stores).
fn scale(buf: &mut [u8], table: &[u8; 256]) {
    for c in buf.chunks_exact_mut(8) {
        let mut w = 0u64;
        for (i, b) in c.iter().enumerate() {
            w |= u64::from(table[*b as usize]) << (8 * i);
        }
        c.copy_from_slice(&w.to_ne_bytes());
    }
}

/// One output word at byte `at` of the inputs (the tail).
fn eval_word<I: AsRef<[u8]>>(p: &RowPlan, inputs: &[I], at: usize) -> u64 {
    let mut acc = 0u64;
    for (t, &set) in p.sets.iter().take(p.n as usize).enumerate() {
        if t > 0 {
            acc = match p.halve {
                true => gf::halve_word(acc),
                false => gf::double_word(acc),
            };
        }
        for (i, input) in inputs.iter().enumerate() {
            if set & (1 << i) != 0 {
                acc ^= rd(input.as_ref(), at);
            }
        }
    }
    acc
}

/// One output byte at `at` (the last bytes of the tail).
fn eval_byte<I: AsRef<[u8]>>(row: &Row, inputs: &[I], at: usize) -> u8 {
    row.iter().zip(inputs).fold(0, |v, (c, input)| {
        v ^ gf::mul(*c, input.as_ref().get(at).copied().unwrap_or(0))
    })
}

/// One tail word of row `j`, as stored.
fn tail_word<I: AsRef<[u8]>>(plan: &Plan, j: usize, inputs: &[I], at: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    if let Some(p) = plan.rows.get(j) {
        w = eval_word(p, inputs, at).to_ne_bytes();
        if let Some(t) = plan.table(j) {
            scale(&mut w, t);
        }
    }
    w
}

/// The input blocks at byte `off`.
fn blocks_at<I: AsRef<[u8]>>(inputs: &[I], off: usize) -> Result<[&Block; MAX_DATA_SHARDS]> {
    let mut blocks: [&Block; MAX_DATA_SHARDS] = [&ZERO_BLOCK; MAX_DATA_SHARDS];
    for (blk, input) in blocks.iter_mut().zip(inputs) {
        *blk = input
            .as_ref()
            .get(off..off + BLOCK)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::ShardSizeMismatch)?;
    }
    Ok(blocks)
}

/// Computes `outputs[j][..len] = Σ_i rows[j][i] · inputs[i][..len]` for
/// every row.
///
/// `inputs.len()` is `k` (at most [`MAX_DATA_SHARDS`]; only the first `k`
/// coefficients of a row are used); `rows.len()` is at most
/// [`MAX_PARITY_SHARDS`] and equals `outputs.len()`; every input and output
/// holds at least `len` bytes. Otherwise an error, and nothing is written.
pub fn apply<I: AsRef<[u8]>, O: AsRef<[u8]> + AsMut<[u8]>>(
    rows: &[Row],
    inputs: &[I],
    outputs: &mut [O],
    len: usize,
) -> Result {
    check_args(rows, inputs, outputs, len)?;
    let k = inputs.len();
    let mut plan = Plan::EMPTY;
    plan.fill(rows, k, len);
    let full = len - len % BLOCK;
    for off in (0..full).step_by(BLOCK) {
        let blocks = blocks_at(inputs, off)?;
        for (j, (p, out)) in plan.rows.iter().zip(outputs.iter_mut()).enumerate() {
            let acc = out.as_mut().get_mut(off..off + BLOCK);
            if let Some(acc) = acc.and_then(|a| <&mut Block>::try_from(a).ok()) {
                eval(p, &blocks[..k], acc);
                if let Some(t) = plan.table(j) {
                    scale(acc, t);
                }
            }
        }
    }
    let words_end = len - (len - full) % 8;
    for (j, (row, out)) in rows.iter().zip(outputs.iter_mut()).enumerate() {
        let out = out.as_mut();
        for at in (full..words_end).step_by(8) {
            wr(out, at, u64::from_ne_bytes(tail_word(&plan, j, inputs, at)));
        }
        for at in words_end..len {
            if let Some(o) = out.get_mut(at) {
                *o = eval_byte(row, inputs, at);
            }
        }
    }
    Ok(())
}

/// Whether `expected[j][..len] == Σ_i rows[j][i] · inputs[i][..len]` for
/// every row; the arguments as for [`apply`], with `expected` in place of
/// the outputs.
pub fn verify<I: AsRef<[u8]>, E: AsRef<[u8]>>(
    rows: &[Row],
    inputs: &[I],
    expected: &[E],
    len: usize,
) -> Result<bool> {
    check_args(rows, inputs, expected, len)?;
    let mut plan = Plan::EMPTY;
    plan.fill(rows, inputs.len(), len);
    let full = len - len % BLOCK;
    if !verify_blocks(&plan, inputs, expected, full)? {
        return Ok(false);
    }
    let words_end = len - (len - full) % 8;
    for (j, (row, exp)) in rows.iter().zip(expected).enumerate() {
        let exp = exp.as_ref();
        for at in (full..words_end).step_by(8) {
            if exp.get(at..at + 8) != Some(&tail_word(&plan, j, inputs, at)[..]) {
                return Ok(false);
            }
        }
        for at in words_end..len {
            if exp.get(at) != Some(&eval_byte(row, inputs, at)) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// [`verify`] of the whole blocks below `full`, each computed into a buffer
/// on the stack (in a frame of its own, beside the plan's).
#[inline(never)]
fn verify_blocks<I: AsRef<[u8]>, E: AsRef<[u8]>>(
    plan: &Plan,
    inputs: &[I],
    expected: &[E],
    full: usize,
) -> Result<bool> {
    let k = inputs.len();
    let mut acc: Block = [0; BLOCK];
    for off in (0..full).step_by(BLOCK) {
        let blocks = blocks_at(inputs, off)?;
        for (j, (p, exp)) in plan.rows.iter().zip(expected).enumerate() {
            eval(p, &blocks[..k], &mut acc);
            if let Some(t) = plan.table(j) {
                scale(&mut acc, t);
            }
            if exp.as_ref().get(off..off + BLOCK) != Some(&acc[..]) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
