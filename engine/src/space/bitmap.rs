// SPDX-License-Identifier: GPL-2.0

//! Bitmap pages: one 4096-byte page holds the allocation bits of
//! [`BITS_PER_PAGE`] blocks, bit *i* (byte *i* / 8, bit *i* % 8, LSB
//! first) for block `page * BITS_PER_PAGE + i`; 1 means allocated.
//!
//! A bitmap page has no header: all 4096 bytes are bits. Its CRC32C is kept
//! in its parent summary entry (`crate::space::summary`), which is how a torn or
//! misdirected bitmap write is caught. Functions here work on one page and
//! never fail: ranges are clamped by the caller ([`crate::space::allocator`]).

use crate::io::device::BLOCK_SIZE;

/// Blocks described by one bitmap page.
pub const BITS_PER_PAGE: u32 = (BLOCK_SIZE * 8) as u32;
const WORDS: usize = BLOCK_SIZE / 8;

/// Free count and longest free run of one bitmap page (or of a subtree).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PageSummary {
    /// Free blocks.
    pub free: u32,
    /// Longest run of contiguous free blocks (within one page).
    pub longest: u32,
}

fn word(page: &[u8], w: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&page[w * 8..w * 8 + 8]);
    u64::from_le_bytes(b)
}

fn set_word(page: &mut [u8], w: usize, v: u64) {
    page[w * 8..w * 8 + 8].copy_from_slice(&v.to_le_bytes());
}

/// Whether bit `i` is set (block allocated).
pub fn is_set(page: &[u8], i: u32) -> bool {
    page[(i / 8) as usize] & (1 << (i % 8)) != 0
}

/// Longest run of ones in `x`.
fn longest_ones(mut x: u64) -> u32 {
    let mut n = 0;
    while x != 0 {
        x &= x << 1;
        n += 1;
    }
    n
}

/// Counts free blocks and the longest free run of `page`.
pub fn summarize(page: &[u8]) -> PageSummary {
    let (mut free, mut longest, mut cur) = (0u32, 0u32, 0u32);
    for w in 0..WORDS {
        let f = !word(page, w);
        free += f.count_ones();
        if f == u64::MAX {
            cur += 64;
            continue;
        }
        cur += f.trailing_ones();
        longest = longest.max(cur).max(longest_ones(f));
        cur = f.leading_ones();
    }
    PageSummary {
        free,
        longest: longest.max(cur),
    }
}

/// First run of at least `len` free blocks starting at or after bit
/// `from`; returns its first bit.
pub fn find_run(page: &[u8], from: u32, len: u32) -> Option<u32> {
    if len == 0 || len > BITS_PER_PAGE {
        return None;
    }
    let (mut start, mut run) = (from, 0u32);
    let mut i = from;
    while i < BITS_PER_PAGE {
        let w = word(page, (i / 64) as usize) >> (i % 64);
        let avail = 64 - i % 64;
        if w == 0 {
            // `avail` free bits to the end of this word.
            if run == 0 {
                start = i;
            }
            run += avail;
            i += avail;
        } else {
            let zeros = w.trailing_zeros();
            if zeros > 0 {
                if run == 0 {
                    start = i;
                }
                run += zeros;
                if run >= len {
                    return Some(start);
                }
            }
            i += zeros + (w >> zeros).trailing_ones();
            run = 0;
            continue;
        }
        if run >= len {
            return Some(start);
        }
    }
    None
}

/// Length of the maximal free run containing `start .. start + len`
/// (which must be free): extends both ways while bits are clear.
pub fn run_around(page: &[u8], start: u32, len: u32) -> u32 {
    let mut lo = start;
    while lo > 0 {
        if lo % 64 == 0 && lo >= 64 && word(page, (lo / 64 - 1) as usize) == 0 {
            lo -= 64;
        } else if !is_set(page, lo - 1) {
            lo -= 1;
        } else {
            break;
        }
    }
    let mut hi = start.saturating_add(len).min(BITS_PER_PAGE);
    while hi < BITS_PER_PAGE {
        if hi % 64 == 0 && word(page, (hi / 64) as usize) == 0 {
            hi += 64;
        } else if !is_set(page, hi) {
            hi += 1;
        } else {
            break;
        }
    }
    hi - lo
}

/// Sets (`value` true) or clears bits `start .. start + len`.
pub fn fill(page: &mut [u8], start: u32, len: u32, value: bool) {
    for (w, mask) in word_masks(start, len) {
        let old = word(page, w);
        set_word(page, w, if value { old | mask } else { old & !mask });
    }
}

/// The 64-bit words covering bits `start .. start + len` of a page (clipped
/// to the page), each with the mask of the range's bits in it.
fn word_masks(start: u32, len: u32) -> impl Iterator<Item = (usize, u64)> {
    let end = start.saturating_add(len).min(BITS_PER_PAGE);
    let mut i = start;
    core::iter::from_fn(move || {
        if i >= end {
            return None;
        }
        let (w, bit) = ((i / 64) as usize, i % 64);
        let n = (64 - bit).min(end - i);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << bit
        };
        i += n;
        Some((w, mask))
    })
}

/// Whether every bit in `start .. start + len` equals `value`.
pub fn all(page: &[u8], start: u32, len: u32, value: bool) -> bool {
    word_masks(start, len).all(|(w, mask)| word(page, w) & mask == if value { mask } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_summary(page: &[u8]) -> PageSummary {
        let (mut free, mut longest, mut cur) = (0, 0, 0);
        for i in 0..BITS_PER_PAGE {
            if is_set(page, i) {
                cur = 0;
            } else {
                free += 1;
                cur += 1;
                longest = longest.max(cur);
            }
        }
        PageSummary { free, longest }
    }

    fn naive_find(page: &[u8], from: u32, len: u32) -> Option<u32> {
        let mut run = 0;
        for i in from..BITS_PER_PAGE {
            if is_set(page, i) {
                run = 0;
            } else {
                run += 1;
                if run == len {
                    return Some(i + 1 - len);
                }
            }
        }
        None
    }

    fn pattern(seed: u64) -> [u8; BLOCK_SIZE] {
        let mut page = [0u8; BLOCK_SIZE];
        let mut s = seed | 1;
        let mut i = 0;
        while i < BITS_PER_PAGE {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let len = (s % 200) as u32;
            fill(&mut page, i, len, s & 0x100 != 0);
            i += len.max(1);
        }
        page
    }

    #[test]
    fn summary_and_search_match_naive_versions() {
        for seed in 0..40 {
            let page = pattern(seed);
            assert_eq!(summarize(&page), naive_summary(&page));
            for (from, len) in [(0, 1), (0, 7), (5, 64), (100, 150), (31000, 3)] {
                assert_eq!(
                    find_run(&page, from, len),
                    naive_find(&page, from, len),
                    "{seed} {from} {len}"
                );
            }
        }
    }

    #[test]
    fn run_around_matches_naive() {
        for seed in 0..20 {
            let page = pattern(seed);
            let mut i = 0;
            while i < BITS_PER_PAGE {
                if !is_set(&page, i) {
                    let (mut lo, mut hi) = (i, i + 1);
                    while lo > 0 && !is_set(&page, lo - 1) {
                        lo -= 1;
                    }
                    while hi < BITS_PER_PAGE && !is_set(&page, hi) {
                        hi += 1;
                    }
                    assert_eq!(run_around(&page, i, 1), hi - lo, "{seed} {i}");
                }
                i += 37;
            }
        }
    }

    #[test]
    fn fill_and_all() {
        let mut page = [0u8; BLOCK_SIZE];
        assert_eq!(summarize(&page).longest, BITS_PER_PAGE);
        fill(&mut page, 60, 10, true);
        assert!(all(&page, 60, 10, true));
        assert!(!all(&page, 59, 2, true));
        assert!(all(&page, 0, 60, false));
        assert_eq!(
            summarize(&page),
            PageSummary {
                free: 32758,
                longest: 32698
            }
        );
        fill(&mut page, 0, BITS_PER_PAGE, true);
        assert_eq!(find_run(&page, 0, 1), None);
        fill(&mut page, 32767, 1, false);
        assert_eq!(find_run(&page, 0, 1), Some(32767));
    }
}
