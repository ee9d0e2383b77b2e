// SPDX-License-Identifier: GPL-2.0

//! Shape of the bitmap summary tree for a device of a given size.
//!
//! Level 0 holds the bitmap pages (one per [`BITS_PER_PAGE`] blocks); level
//! *k* ≥ 1 holds summary pages of [`FANOUT`] entries each, one entry per
//! level *k − 1* page, up to a single top page. There is always at least
//! one summary level. One copy of the allocation map is the pages of every
//! level laid out level after level, index after index, from the copy's
//! first block ([`Geometry::offset`]).

use crate::error::{Error, Result};
use crate::space::bitmap::BITS_PER_PAGE;
use crate::space::summary::FANOUT;

/// Most levels (bitmap level included) a geometry may have.
pub const MAX_LEVELS: usize = 6;
/// Largest device the allocator manages, in blocks (16 TiB of 4 KiB).
pub const MAX_BLOCKS: u64 = 1 << 32;

/// Page counts per level for one device size.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Blocks managed.
    pub nr_blocks: u64,
    counts: [u32; MAX_LEVELS],
    levels: usize,
}

impl Geometry {
    /// The geometry for `nr_blocks` blocks (1 ..= [`MAX_BLOCKS`]).
    pub fn new(nr_blocks: u64) -> Result<Self> {
        if nr_blocks == 0 || nr_blocks > MAX_BLOCKS {
            return Err(Error::InvalidArgument);
        }
        let mut counts = [0u32; MAX_LEVELS];
        counts[0] = nr_blocks.div_ceil(u64::from(BITS_PER_PAGE)) as u32;
        let mut levels = 1;
        while levels == 1 || counts[levels - 1] > 1 {
            if levels == MAX_LEVELS {
                return Err(Error::InvalidArgument);
            }
            counts[levels] = counts[levels - 1].div_ceil(FANOUT);
            levels += 1;
        }
        Ok(Self {
            nr_blocks,
            counts,
            levels,
        })
    }

    /// Number of levels, bitmap level included.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// The top level (a single summary page).
    pub fn top(&self) -> usize {
        self.levels - 1
    }

    /// Pages at `level` (0 for levels the tree does not have).
    pub fn count(&self, level: usize) -> u32 {
        self.counts.get(level).copied().unwrap_or(0)
    }

    /// Blocks one copy of the allocation map occupies.
    pub fn copy_blocks(&self) -> u64 {
        self.counts[..self.levels]
            .iter()
            .map(|&c| u64::from(c))
            .sum()
    }

    /// Block of page (`level`, `index`) relative to the copy's first block.
    pub fn offset(&self, level: usize, index: u32) -> u64 {
        let before: u64 = self.counts[..level].iter().map(|&c| u64::from(c)).sum();
        before + u64::from(index)
    }

    /// The level `level - 1` pages summarised by page (`level`, `index`).
    pub fn children(&self, level: usize, index: u32) -> core::ops::Range<u32> {
        let start = index.saturating_mul(FANOUT);
        let end = start.saturating_add(FANOUT).min(self.count(level - 1));
        start.min(end)..end
    }

    /// Blocks covered by page (`level`, `index`): the most free blocks its
    /// entry may claim.
    pub fn capacity(&self, level: usize, index: u32) -> u64 {
        let mut span = u64::from(BITS_PER_PAGE);
        for _ in 0..level {
            span = span.saturating_mul(u64::from(FANOUT));
        }
        let start = u64::from(index).saturating_mul(span);
        self.nr_blocks.saturating_sub(start).min(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let g = Geometry::new(1000).unwrap();
        assert_eq!((g.levels(), g.count(0), g.count(1)), (2, 1, 1));
        assert_eq!(g.copy_blocks(), 2);
        let g = Geometry::new(MAX_BLOCKS).unwrap();
        assert_eq!(g.levels(), 4);
        assert_eq!(
            (g.count(0), g.count(1), g.count(2), g.count(3)),
            (131072, 521, 3, 1)
        );
        assert_eq!(g.children(1, 520), 131040..131072);
        assert_eq!(g.offset(2, 1), 131072 + 521 + 1);
        assert_eq!(g.capacity(3, 0), MAX_BLOCKS);
        assert!(Geometry::new(MAX_BLOCKS + 1).is_err());
        assert!(Geometry::new(0).is_err());
    }
}
