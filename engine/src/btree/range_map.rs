// SPDX-License-Identifier: GPL-2.0

//! Range operations over maps of non-overlapping ranges: overwrite with
//! cutting and gluing, punch (discard), piece lookup.
//!
//! The algorithms are written once over [`RangeRead`] / [`RangeMap`] and
//! serve both the B-tree (values are [`Extent`]s) and the transaction
//! layers of the tuple cache (values are extents or tombstones). A map
//! holds entries `key → value` covering `key..key + value.len()`, never
//! overlapping.

use crate::btree::node_tm::NodeStore;
use crate::btree::tree::{ReadTree, WriteTree};
use crate::error::{Error, Result};
use crate::map::extent::Extent;

/// A value that covers a run of keys and can be cut and glued.
pub trait RangeValue: Copy {
    /// Keys covered.
    fn blocks(&self) -> u32;
    /// The piece `skip..skip + len`.
    fn slice(&self, skip: u32, len: u32) -> Result<Self>;
    /// `self` followed by `next`, if they glue.
    fn merge(&self, next: &Self) -> Option<Self>;
}

impl RangeValue for Extent {
    fn blocks(&self) -> u32 {
        self.len
    }
    fn slice(&self, skip: u32, len: u32) -> Result<Self> {
        Extent::slice(self, skip, len)
    }
    fn merge(&self, next: &Self) -> Option<Self> {
        Extent::merge(self, next)
    }
}

/// Ordered lookups in a range map.
pub trait RangeRead<V: RangeValue> {
    /// The entry with the greatest key `<= key`.
    fn floor(&self, key: u64) -> Result<Option<(u64, V)>>;
    /// The entry with the smallest key `>= key`.
    fn ceil(&self, key: u64) -> Result<Option<(u64, V)>>;
}

/// Point updates of a range map; the range algorithms keep it non-overlapping.
pub trait RangeMap<V: RangeValue>: RangeRead<V> {
    /// Inserts or replaces `key → v`.
    fn put(&mut self, key: u64, v: V) -> Result;
    /// Removes `key`, which exists.
    fn delete(&mut self, key: u64) -> Result;
}

/// One piece of the key space: `len` keys from `start`, all covered by
/// `value` (sliced to begin at `start`) or all uncovered (`None`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Piece<V> {
    /// First key.
    pub start: u64,
    /// Keys in the piece, at least 1.
    pub len: u64,
    /// The value there, if any.
    pub value: Option<V>,
}

fn end_of<V: RangeValue>(key: u64, v: &V) -> Result<u64> {
    key.checked_add(u64::from(v.blocks()))
        .ok_or(Error::InvalidArgument)
}

/// Narrows a length already known to fit in a value's `u32` length.
fn len32(n: u64) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::InvalidArgument)
}

/// The piece that starts at `key`.
pub fn piece_at<V: RangeValue>(m: &impl RangeRead<V>, key: u64) -> Result<Piece<V>> {
    if let Some((k, v)) = m.floor(key)? {
        let end = end_of(k, &v)?;
        if end > key {
            let value = v.slice(len32(key - k)?, len32(end - key)?)?;
            return Ok(Piece {
                start: key,
                len: end - key,
                value: Some(value),
            });
        }
    }
    let next = m.ceil(key)?.map_or(u64::MAX, |(k, _)| k);
    Ok(Piece {
        start: key,
        len: next.saturating_sub(key).max(1),
        value: None,
    })
}

/// Removes every key of `start..end` from the map, cutting entries that
/// straddle its edges.
pub fn punch<V: RangeValue>(m: &mut impl RangeMap<V>, start: u64, end: u64) -> Result {
    if start >= end {
        return Ok(());
    }
    if let Some((k, v)) = m.floor(start)? {
        let e = end_of(k, &v)?;
        if k < start && e > start {
            m.put(k, v.slice(0, len32(start - k)?)?)?;
            if e > end {
                return m.put(end, v.slice(len32(end - k)?, len32(e - end)?)?);
            }
        }
    }
    while let Some((k, v)) = m.ceil(start)? {
        if k >= end {
            break;
        }
        m.delete(k)?;
        let e = end_of(k, &v)?;
        if e > end {
            return m.put(end, v.slice(len32(end - k)?, len32(e - end)?)?);
        }
    }
    Ok(())
}

/// Maps `key..key + v.blocks()` to `v`, replacing whatever was there, and
/// glues the result to neighbours that continue it.
pub fn overlay<V: RangeValue>(m: &mut impl RangeMap<V>, key: u64, v: V) -> Result {
    let end = end_of(key, &v)?;
    if v.blocks() == 0 {
        return Err(Error::InvalidArgument);
    }
    punch(m, key, end)?;
    let (mut k, mut cur) = (key, v);
    if key > 0 {
        if let Some((pk, pv)) = m.floor(key - 1)? {
            if end_of(pk, &pv)? == key {
                if let Some(glued) = pv.merge(&v) {
                    (k, cur) = (pk, glued);
                }
            }
        }
    }
    if let Some((nk, nv)) = m.ceil(end)? {
        if nk == end {
            if let Some(glued) = cur.merge(&nv) {
                m.delete(nk)?;
                cur = glued;
            }
        }
    }
    m.put(k, cur)
}

impl<S: NodeStore> RangeRead<Extent> for ReadTree<'_, S> {
    fn floor(&self, key: u64) -> Result<Option<(u64, Extent)>> {
        ReadTree::floor(self, key)
    }
    fn ceil(&self, key: u64) -> Result<Option<(u64, Extent)>> {
        ReadTree::ceil(self, key)
    }
}

impl<S: NodeStore> RangeRead<Extent> for WriteTree<'_, S> {
    fn floor(&self, key: u64) -> Result<Option<(u64, Extent)>> {
        self.reader().floor(key)
    }
    fn ceil(&self, key: u64) -> Result<Option<(u64, Extent)>> {
        self.reader().ceil(key)
    }
}

impl<S: NodeStore> RangeMap<Extent> for WriteTree<'_, S> {
    fn put(&mut self, key: u64, v: Extent) -> Result {
        self.insert(key, v).map(|_| ())
    }
    fn delete(&mut self, key: u64) -> Result {
        self.remove(key).map(|_| ())
    }
}

impl<S: NodeStore> WriteTree<'_, S> {
    /// Maps `lba..lba + ext.len` to `ext` (write or overwrite).
    pub fn map(&mut self, lba: u64, ext: Extent) -> Result {
        ext.validate(None).map_err(|_| Error::InvalidArgument)?;
        overlay(self, lba, ext)
    }

    /// Unmaps `lba..lba + len` (discard).
    pub fn unmap(&mut self, lba: u64, len: u64) -> Result {
        let end = lba.checked_add(len).ok_or(Error::InvalidArgument)?;
        punch(self, lba, end)
    }
}

impl<S: NodeStore> ReadTree<'_, S> {
    /// Where `lba` lives: the piece starting there.
    pub fn lookup(&self, lba: u64) -> Result<Piece<Extent>> {
        piece_at(self, lba)
    }

    /// Calls `f` with the pieces covering `lba..lba + len`, in order,
    /// holes included.
    pub fn lookup_range(
        &self,
        lba: u64,
        len: u64,
        mut f: impl FnMut(Piece<Extent>) -> Result,
    ) -> Result {
        let end = lba.checked_add(len).ok_or(Error::InvalidArgument)?;
        let mut at = lba;
        while at < end {
            let mut p = piece_at(self, at)?;
            p.len = p.len.min(end - at);
            if let Some(v) = p.value {
                p.value = Some(v.slice(0, len32(p.len)?)?);
            }
            at += p.len;
            f(p)?;
        }
        Ok(())
    }
}
