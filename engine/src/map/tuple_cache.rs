// SPDX-License-Identifier: GPL-2.0

//! The versioned tuple cache (T6).
//!
//! One sorted vector of tuples `(lba, txn id) → value or tombstone`: the
//! transaction id is the minor key, so versions of the same range written
//! by different transactions sit side by side. A tuple is *pending* (seq 0,
//! visible only to its transaction) or *committed* (seq = commit sequence
//! number, visible to everyone until a checkpoint moves it into the
//! B-tree).
//!
//! The tuples of one transaction never overlap each other, and committed
//! tuples never overlap each other: every write goes through
//! [`crate::btree::range_map::overlay`] on a [`Layer`] view, which cuts older
//! tuples of the same layer. So "the newest version" is simply "the one
//! tuple of the layer covering the LBA", found with a binary search and a
//! scan bounded by [`MAX_EXTENT_LEN`] (no tuple is longer).

use crate::btree::range_map::{RangeMap, RangeRead, RangeValue};
use crate::error::{Error, Result};
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::{Extent, MAX_EXTENT_LEN};

/// What a tuple says about its range.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TupleOp {
    /// The range maps to this extent.
    Map(Extent),
    /// Tombstone: the range is unmapped (discarded).
    Unmap {
        /// Blocks, 1..=[`MAX_EXTENT_LEN`].
        len: u32,
    },
}

impl TupleOp {
    /// Blocks covered.
    pub fn len(&self) -> u32 {
        match self {
            TupleOp::Map(e) => e.len,
            TupleOp::Unmap { len } => *len,
        }
    }

    /// True for an empty range (never stored).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tuple's value with its version: the writing transaction and, once
/// committed, its commit sequence number.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// Map or tombstone.
    pub op: TupleOp,
    /// Writing transaction.
    pub txn: u64,
    /// Commit sequence number, 0 while pending.
    pub seq: u64,
}

impl RangeValue for Version {
    fn blocks(&self) -> u32 {
        self.op.len()
    }

    fn slice(&self, skip: u32, len: u32) -> Result<Self> {
        let op = match self.op {
            TupleOp::Map(e) => TupleOp::Map(e.slice(skip, len)?),
            TupleOp::Unmap { len: all } => {
                if len == 0 || skip.checked_add(len).is_none_or(|end| end > all) {
                    return Err(Error::InvalidArgument);
                }
                TupleOp::Unmap { len }
            }
        };
        Ok(Self { op, ..*self })
    }

    fn merge(&self, next: &Self) -> Option<Self> {
        if (self.txn, self.seq) != (next.txn, next.seq) {
            return None;
        }
        let op = match (self.op, next.op) {
            (TupleOp::Map(a), TupleOp::Map(b)) => TupleOp::Map(a.merge(&b)?),
            (TupleOp::Unmap { len: a }, TupleOp::Unmap { len: b }) => {
                let len = a.checked_add(b).filter(|&l| l <= MAX_EXTENT_LEN)?;
                TupleOp::Unmap { len }
            }
            _ => return None,
        };
        Some(Self { op, ..*self })
    }
}

/// One tuple.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// First LBA (major key).
    pub lba: u64,
    /// Value and version (`txn` is the minor key).
    pub v: Version,
}

/// Which versions a [`Layer`] sees.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// The pending tuples of one transaction.
    Pending(u64),
    /// Every committed tuple.
    Committed,
}

impl Who {
    fn sees(self, t: &Tuple) -> bool {
        match self {
            Who::Pending(id) => t.v.seq == 0 && t.v.txn == id,
            Who::Committed => t.v.seq != 0,
        }
    }
}

/// The cache: tuples sorted by `(lba, txn)`.
#[derive(Debug)]
pub struct TupleCache {
    tuples: KVec<Tuple>,
}

impl Default for TupleCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TupleCache {
    /// An empty cache.
    pub const fn new() -> Self {
        Self {
            tuples: KVec::new(),
        }
    }

    /// Every tuple, sorted by `(lba, txn)`.
    pub fn tuples(&self) -> &[Tuple] {
        &self.tuples
    }

    /// A view of one layer, to read or (through [`RangeMap`]) to write.
    pub fn layer(&mut self, who: Who) -> Layer<'_> {
        Layer { cache: self, who }
    }

    /// Drops every tuple `f` selects (an abort, or a checkpoint's applied
    /// tuples): no I/O, no allocation.
    pub fn drop_where(&mut self, mut f: impl FnMut(&Tuple) -> bool) {
        self.tuples.retain(|t| !f(t));
    }

    /// Copies the tuples `f` selects, in `(lba, txn)` order, into `out`.
    pub fn collect_where(
        &self,
        out: &mut KVec<Tuple>,
        mut f: impl FnMut(&Tuple) -> bool,
    ) -> Result {
        for t in self.tuples.iter().filter(|t| f(t)) {
            out.push(*t, GFP_KERNEL)?;
        }
        Ok(())
    }

    fn position(&self, lba: u64, txn: u64) -> core::result::Result<usize, usize> {
        self.tuples
            .binary_search_by(|t| (t.lba, t.v.txn).cmp(&(lba, txn)))
    }
}

/// One layer of the cache seen as a range map.
pub struct Layer<'a> {
    cache: &'a mut TupleCache,
    who: Who,
}

impl Layer<'_> {
    fn floor_in(tuples: &[Tuple], who: Who, key: u64) -> Option<(u64, Version)> {
        let end = tuples.partition_point(|t| t.lba <= key);
        // No tuple is longer than MAX_EXTENT_LEN: older ones cannot reach `key`.
        tuples[..end]
            .iter()
            .rev()
            .take_while(|t| t.lba.saturating_add(u64::from(MAX_EXTENT_LEN)) > key)
            .find(|t| who.sees(t))
            .map(|t| (t.lba, t.v))
    }

    fn ceil_in(tuples: &[Tuple], who: Who, key: u64) -> Option<(u64, Version)> {
        let start = tuples.partition_point(|t| t.lba < key);
        tuples[start..]
            .iter()
            .find(|t| who.sees(t))
            .map(|t| (t.lba, t.v))
    }
}

/// Read-only lookups in one layer, without borrowing the cache mutably.
pub struct LayerRef<'a> {
    /// Tuples of the whole cache.
    pub tuples: &'a [Tuple],
    /// Layer.
    pub who: Who,
}

impl RangeRead<Version> for LayerRef<'_> {
    fn floor(&self, key: u64) -> Result<Option<(u64, Version)>> {
        Ok(Layer::floor_in(self.tuples, self.who, key))
    }
    fn ceil(&self, key: u64) -> Result<Option<(u64, Version)>> {
        Ok(Layer::ceil_in(self.tuples, self.who, key))
    }
}

impl RangeRead<Version> for Layer<'_> {
    /// May return `None` when the greatest key `<= key` is too far below
    /// `key` to reach it, which is all the range algorithms need.
    fn floor(&self, key: u64) -> Result<Option<(u64, Version)>> {
        Ok(Self::floor_in(&self.cache.tuples, self.who, key))
    }
    fn ceil(&self, key: u64) -> Result<Option<(u64, Version)>> {
        Ok(Self::ceil_in(&self.cache.tuples, self.who, key))
    }
}

impl RangeMap<Version> for Layer<'_> {
    fn put(&mut self, key: u64, v: Version) -> Result {
        if !self.who.sees(&Tuple { lba: key, v }) {
            return Err(Error::InvalidArgument);
        }
        let t = Tuple { lba: key, v };
        match self.cache.position(key, v.txn) {
            Ok(i) => self.cache.tuples[i] = t,
            Err(i) => crate::kvec::kvec_insert(&mut self.cache.tuples, i, t)?,
        }
        Ok(())
    }

    fn delete(&mut self, key: u64) -> Result {
        let from = self.cache.tuples.partition_point(|t| t.lba < key);
        let who = self.who;
        let i = self.cache.tuples[from..]
            .iter()
            .take_while(|t| t.lba == key)
            .position(|t| who.sees(t))
            .ok_or(Error::InvalidArgument)?;
        self.cache
            .tuples
            .remove(from + i)
            .map(|_| ())
            .map_err(|_| Error::InvalidArgument)
    }
}
