// SPDX-License-Identifier: GPL-2.0

//! Reading and writing the allocation map: on-demand page loads (verified
//! against the resident CRCs), mount, format, and writing one copy at a
//! checkpoint.
//!
//! # Writing a copy
//!
//! Checkpoint generation *G* writes copy *G* mod 2 while copy (*G* − 1)
//! mod 2, the live one, stays untouched. A copy is brought up to date by
//! rewriting the bitmap pages changed since it was last written: the pages
//! dirty now plus the pages dirty in the previous generation (`carried`),
//! then, level by level, every summary page above a rewritten
//! page. A summary page's entries for children not rewritten are taken from
//! the live copy: unchanged pages have the same content CRC in both copies.
//! After a mount the previous checkpoint's page set is unknown, so the first
//! checkpoint rewrites the whole copy (`carry_all`).

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::io::device::{BlockDevice, BLOCK_SIZE};
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::space::allocator::{pack, unpack, AllocLayout, AllocRoot, Allocator};
use crate::space::bitmap::{self, PageSummary, BITS_PER_PAGE};
use crate::space::summary::{self, Entry, PageId, FANOUT};

/// Default number of pages in an allocator's cache.
pub const DEFAULT_CACHE_PAGES: usize = 64;

fn page_buf() -> Result<KVec<u8>> {
    Ok(KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?)
}

/// Sets the bits of blocks past the end of the device in bitmap page `p`.
fn mark_tail(nr_blocks: u64, p: u32, buf: &mut [u8]) {
    let first = u64::from(p) * u64::from(BITS_PER_PAGE);
    let valid = nr_blocks
        .saturating_sub(first)
        .min(u64::from(BITS_PER_PAGE)) as u32;
    bitmap::fill(buf, valid, BITS_PER_PAGE - valid, true);
}

/// Finds `x` in a list of (index, crc) sorted by index.
fn lookup(list: &[(u32, u32)], x: u32) -> Option<u32> {
    list.binary_search_by_key(&x, |&(i, _)| i)
        .ok()
        .map(|i| list[i].1)
}

impl Allocator {
    fn block_of(&self, copy: usize, level: usize, index: u32) -> u64 {
        self.layout.copies[copy] + self.geom.offset(level, index)
    }

    fn page_id(&self, copy: usize, level: usize, index: u32) -> PageId {
        PageId {
            level: level as u32,
            index,
            copy: copy as u32,
            nr_entries: self.geom.children(level, index).len() as u32,
        }
    }

    /// The cache slot of live summary page (`level`, `index`), read and
    /// verified if not cached.
    pub(crate) fn load_summary(
        &mut self,
        dev: &mut dyn BlockDevice,
        level: usize,
        index: u32,
    ) -> Result<usize> {
        let key = Self::key(level, index);
        if let Some(slot) = self.cache.find(key) {
            return Ok(slot);
        }
        let mut buf = page_buf()?;
        let block = self.block_of(self.live, level, index);
        dev.read(block, &mut buf)?;
        self.stats.summary_reads += 1;
        summary::verify(
            &buf,
            block,
            self.page_id(self.live, level, index),
            self.generation,
        )?;
        let want = self.crcs[level].get(index as usize).copied();
        if want != Some(summary::content_crc(&buf, true)) {
            return Err(Error::BadChecksum { block });
        }
        self.cache.insert(key, &buf)
    }

    /// The cache slot of bitmap page `page`, read from the live copy and
    /// verified against its summary entry if not cached.
    pub(crate) fn load_bitmap(&mut self, dev: &mut dyn BlockDevice, page: u32) -> Result<usize> {
        self.stats.bitmap_touches += 1;
        let key = Self::key(0, page);
        if let Some(slot) = self.cache.find(key) {
            return Ok(slot);
        }
        let l1 = self.load_summary(dev, 1, page / FANOUT)?;
        let want = summary::entry(self.cache.page(l1), page % FANOUT).crc;
        let mut buf = page_buf()?;
        let block = self.block_of(self.live, 0, page);
        dev.read(block, &mut buf)?;
        self.stats.bitmap_reads += 1;
        self.check_bitmap(&buf, block, page, want)?;
        self.cache.insert(key, &buf)
    }

    fn check_bitmap(&self, buf: &[u8], block: u64, page: u32, want: u32) -> Result {
        if crc32c(buf) != want {
            return Err(Error::BadChecksum { block });
        }
        let mut tail = page_buf()?;
        tail.copy_from_slice(buf);
        mark_tail(self.geom.nr_blocks, page, &mut tail);
        if tail[..] != buf[..] {
            return Err(Error::Corrupt {
                block: Some(block),
                what: "bitmap bits past the device end",
            });
        }
        if pack(bitmap::summarize(buf)) != self.leaf[page as usize] {
            return Err(Error::Corrupt {
                block: Some(block),
                what: "bitmap page disagrees with its summary",
            });
        }
        Ok(())
    }

    /// Mounts the map copy `root.copy` written by checkpoint `generation`:
    /// reads and verifies every summary page (top down, each against its
    /// parent's entry, the top against `root.crc`) and keeps their totals.
    pub fn open(
        dev: &mut dyn BlockDevice,
        layout: AllocLayout,
        root: AllocRoot,
        generation: u64,
        cache_pages: usize,
    ) -> Result<Self> {
        let mut a = Self::empty(layout, cache_pages)?;
        a.live = (root.copy & 1) as usize;
        a.generation = generation;
        let top = a.geom.top();
        a.crcs[top][0] = root.crc;
        let mut buf = page_buf()?;
        for k in (1..=top).rev() {
            for j in 0..a.geom.count(k) {
                let block = a.block_of(a.live, k, j);
                dev.read(block, &mut buf)?;
                a.stats.summary_reads += 1;
                summary::verify(&buf, block, a.page_id(a.live, k, j), generation)?;
                if summary::content_crc(&buf, true) != a.crcs[k][j as usize] {
                    return Err(Error::BadChecksum { block });
                }
                a.take_entries(&buf, block, k, j)?;
            }
        }
        if a.free_blocks() != root.free {
            return Err(Error::Corrupt {
                block: None,
                what: "allocation map free count",
            });
        }
        Ok(a)
    }

    /// Records the entries of verified summary page (`k`, `j`) as the
    /// children's totals and CRCs, checking them against the page's own total.
    fn take_entries(&mut self, buf: &[u8], block: u64, k: usize, j: u32) -> Result {
        let corrupt = |what| Error::Corrupt {
            block: Some(block),
            what,
        };
        let mut total = PageSummary::default();
        for (n, c) in self.geom.children(k, j).enumerate() {
            let e = summary::entry(buf, n as u32);
            let cap = self.geom.capacity(k - 1, c);
            if u64::from(e.free) > cap || e.longest > BITS_PER_PAGE {
                return Err(corrupt("summary entry exceeds its child"));
            }
            let s = PageSummary {
                free: e.free,
                longest: e.longest,
            };
            // Each entry is within its child's capacity, but their sum can
            // still exceed 32 bits on the largest device: no map says that.
            total.free = total
                .free
                .checked_add(s.free)
                .ok_or(corrupt("summary totals exceed the page's capacity"))?;
            total.longest = total.longest.max(s.longest);
            if k == 1 {
                self.leaf[c as usize] = pack(s);
            } else {
                self.upper[k - 1][c as usize] = s;
                self.crcs[k - 1][c as usize] = e.crc;
            }
        }
        let top = k == self.geom.top();
        if !top && self.upper[k][j as usize] != total {
            return Err(corrupt("summary totals disagree with parent entry"));
        }
        self.upper[k][j as usize] = total;
        Ok(())
    }

    /// The entries of page (`k`, `j`) from the resident totals, with child
    /// CRCs from `new` (rewritten children) or from `old` (the live page).
    fn entries(
        &self,
        k: usize,
        j: u32,
        new: &[(u32, u32)],
        old: Option<&[u8]>,
        out: &mut KVec<Entry>,
    ) -> Result {
        out.clear();
        for (n, c) in self.geom.children(k, j).enumerate() {
            let s = self.summary(k - 1, c);
            let crc = match lookup(new, c) {
                Some(crc) => crc,
                None => old
                    .map(|p| summary::entry(p, n as u32).crc)
                    .ok_or(Error::InvalidArgument)?,
            };
            out.push(
                Entry {
                    crc,
                    free: s.free,
                    longest: s.longest,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(())
    }

    /// Writes summary levels 1..=top of `copy` above the level-0 pages in
    /// `new` (sorted (index, content CRC)); returns the top page's CRC.
    fn write_summaries(
        &mut self,
        dev: &mut dyn BlockDevice,
        copy: usize,
        generation: u64,
        mut new: KVec<(u32, u32)>,
    ) -> Result<u32> {
        let mut entries = KVec::with_capacity(FANOUT as usize, GFP_KERNEL)?;
        let mut buf = page_buf()?;
        for k in 1..self.geom.levels() {
            let mut next: KVec<(u32, u32)> = KVec::new();
            for &(c, _) in new.iter() {
                let j = c / FANOUT;
                if next.last().map(|&(x, _)| x) != Some(j) {
                    next.push((j, 0), GFP_KERNEL)?;
                }
            }
            for i in 0..next.len() {
                let j = next[i].0;
                let children = self.geom.children(k, j);
                let all_new = children.clone().all(|c| lookup(&new, c).is_some());
                let old = if all_new {
                    None
                } else {
                    Some(self.load_summary(dev, k, j)?)
                };
                let old_page = old.map(|s| self.cache.page(s));
                self.entries(k, j, &new, old_page, &mut entries)?;
                let block = self.block_of(copy, k, j);
                summary::encode(
                    self.page_id(copy, k, j),
                    generation,
                    block,
                    &entries,
                    &mut buf,
                )?;
                dev.write(block, &buf)?;
                self.stats.pages_written += 1;
                next[i].1 = summary::content_crc(&buf, true);
            }
            // The live pages of this level are superseded: drop their cached
            // copies before the CRCs that verify them change.
            for &(j, crc) in next.iter() {
                self.cache.remove(Self::key(k, j));
                self.crcs[k][j as usize] = crc;
            }
            if next.is_empty() {
                break;
            }
            new = next;
        }
        // Nothing rewritten: this copy already equals the live one.
        Ok(self.crcs[self.geom.top()][0])
    }

    /// The bitmap pages copy `copy` lacks: dirty, carried, or all.
    fn pages_to_write(&self, dirty: &[u32]) -> Result<KVec<u32>> {
        let mut set = KVec::new();
        if self.carry_all {
            for p in 0..self.geom.count(0) {
                set.push(p, GFP_KERNEL)?;
            }
            return Ok(set);
        }
        set.extend_from_slice(dirty, GFP_KERNEL)?;
        set.extend_from_slice(&self.carried, GFP_KERNEL)?;
        crate::heap_sort::sort(&mut set);
        let mut out: KVec<u32> = KVec::with_capacity(set.len(), GFP_KERNEL)?;
        for &p in set.iter() {
            if out.last() != Some(&p) {
                out.push(p, GFP_KERNEL)?;
            }
        }
        Ok(out)
    }

    /// Checkpoint step: applies the deferred frees, then writes the map copy
    /// for checkpoint `generation` (copy `generation` mod 2) without
    /// flushing. Afterwards that copy is the one the allocator reads: the
    /// caller must complete the checkpoint or treat the volume as failed.
    pub fn write_copy(&mut self, dev: &mut dyn BlockDevice, generation: u64) -> Result<AllocRoot> {
        self.apply_deferred(dev)?;
        let copy = (generation & 1) as usize;
        // Never the live copy: it is what recovery falls back to.
        if copy == self.live {
            return Err(Error::InvalidArgument);
        }
        // The live copy lacks exactly the pages changed in this generation:
        // they are what the next checkpoint carries over to it.
        let mut dirty = KVec::new();
        self.cache.dirty(0, &mut dirty)?;
        let set = self.pages_to_write(&dirty)?;
        let mut new: KVec<(u32, u32)> = KVec::with_capacity(set.len(), GFP_KERNEL)?;
        let mut buf = page_buf()?;
        for &p in set.iter() {
            let slot = self.load_bitmap(dev, p)?;
            buf.copy_from_slice(self.cache.page(slot));
            dev.write(self.block_of(copy, 0, p), &buf)?;
            self.stats.pages_written += 1;
            new.push((p, crc32c(&buf)), GFP_KERNEL)?;
        }
        let crc = self.write_summaries(dev, copy, generation, new)?;
        self.cache.mark_clean();
        self.carried = dirty;
        self.carry_all = false;
        self.live = copy;
        self.generation = generation;
        Ok(AllocRoot {
            copy: copy as u32,
            crc,
            free: self.free_blocks(),
        })
    }

    /// Writes both copies of a fresh map for `layout` with `used` extents
    /// (start, len) allocated, as checkpoint `generation`; returns the
    /// allocator (live copy `generation` mod 2) and its root.
    pub fn format(
        dev: &mut dyn BlockDevice,
        layout: AllocLayout,
        used: &[(u64, u64)],
        generation: u64,
    ) -> Result<(Self, AllocRoot)> {
        let mut a = Self::empty(layout, crate::space::map_io::DEFAULT_CACHE_PAGES)?;
        let mut buf = page_buf()?;
        let mut crcs: KVec<(u32, u32)> = KVec::with_capacity(a.geom.count(0) as usize, GFP_KERNEL)?;
        for p in 0..a.geom.count(0) {
            buf.fill(0);
            mark_tail(layout.nr_blocks, p, &mut buf);
            for &(start, len) in used {
                a.fill_used(&mut buf, p, start, len)?;
            }
            a.leaf[p as usize] = pack(bitmap::summarize(&buf));
            a.propagate(p);
            for copy in 0..2 {
                dev.write(a.block_of(copy, 0, p), &buf)?;
            }
            crcs.push((p, crc32c(&buf)), GFP_KERNEL)?;
        }
        let mut again = KVec::with_capacity(crcs.len(), GFP_KERNEL)?;
        again.extend_from_slice(&crcs, GFP_KERNEL)?;
        a.write_summaries(dev, 1 - (generation & 1) as usize, generation, crcs)?;
        let crc = a.write_summaries(dev, (generation & 1) as usize, generation, again)?;
        a.live = (generation & 1) as usize;
        a.generation = generation;
        a.carry_all = false;
        let root = AllocRoot {
            copy: a.live as u32,
            crc,
            free: a.free_blocks(),
        };
        Ok((a, root))
    }

    /// Rebuilds the summary pages of map copy `copy` (= `generation` mod 2)
    /// from its bitmap pages (which must be whole: bits past the device end
    /// set) as checkpoint `generation`, and mounts that copy. For offline repair and for
    /// building large test maps; the next checkpoint rewrites the other
    /// copy whole.
    pub fn rebuild(
        dev: &mut dyn BlockDevice,
        layout: AllocLayout,
        copy: u32,
        generation: u64,
        cache_pages: usize,
    ) -> Result<(Self, AllocRoot)> {
        if u64::from(copy) != generation & 1 {
            return Err(Error::InvalidArgument);
        }
        let mut a = Self::empty(layout, cache_pages)?;
        let copy = copy as usize;
        let mut buf = page_buf()?;
        let mut tail = page_buf()?;
        let mut crcs = KVec::with_capacity(a.geom.count(0) as usize, GFP_KERNEL)?;
        for p in 0..a.geom.count(0) {
            let block = a.block_of(copy, 0, p);
            dev.read(block, &mut buf)?;
            tail.copy_from_slice(&buf);
            mark_tail(layout.nr_blocks, p, &mut tail);
            if tail[..] != buf[..] {
                return Err(Error::Corrupt {
                    block: Some(block),
                    what: "bitmap bits past the device end",
                });
            }
            a.leaf[p as usize] = pack(bitmap::summarize(&buf));
            crcs.push((p, crc32c(&buf)), GFP_KERNEL)?;
        }
        for k in 1..a.geom.levels() {
            for j in 0..a.geom.count(k) {
                a.propagate_one(k, j);
            }
        }
        let crc = a.write_summaries(dev, copy, generation, crcs)?;
        a.live = copy;
        a.generation = generation;
        let root = AllocRoot {
            copy: copy as u32,
            crc,
            free: a.free_blocks(),
        };
        Ok((a, root))
    }

    /// Sets in bitmap page `p` the bits of extent (`start`, `len`).
    fn fill_used(&self, buf: &mut [u8], p: u32, start: u64, len: u64) -> Result {
        let end = start.checked_add(len).ok_or(Error::InvalidArgument)?;
        if end > self.geom.nr_blocks {
            return Err(Error::InvalidArgument);
        }
        let first = u64::from(p) * u64::from(BITS_PER_PAGE);
        let last = first + u64::from(BITS_PER_PAGE);
        let (s, e) = (start.max(first), end.min(last));
        if s < e {
            bitmap::fill(buf, (s - first) as u32, (e - s) as u32, true);
        }
        Ok(())
    }

    /// Reads and verifies every bitmap page of the live copy (offline check);
    /// returns the number of allocated blocks it found.
    pub fn verify_all(&mut self, dev: &mut dyn BlockDevice) -> Result<u64> {
        let mut used = 0u64;
        for p in 0..self.geom.count(0) {
            self.load_bitmap(dev, p)?;
            let s = unpack(self.leaf[p as usize]);
            used += u64::from(BITS_PER_PAGE - s.free);
        }
        Ok(used - (u64::from(self.geom.count(0)) * u64::from(BITS_PER_PAGE) - self.geom.nr_blocks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::geometry::{Geometry, MAX_BLOCKS};
    use alloc::collections::BTreeMap;

    /// A device of any size that keeps only the blocks written to it;
    /// the others read as zero.
    struct SparseDevice {
        nr_blocks: u64,
        blocks: BTreeMap<u64, alloc::vec::Vec<u8>>,
    }

    impl BlockDevice for SparseDevice {
        fn nr_blocks(&self) -> u64 {
            self.nr_blocks
        }
        fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
            crate::io::device::check_io(self.nr_blocks, block, buf.len())?;
            for (i, b) in buf.chunks_mut(BLOCK_SIZE).enumerate() {
                match self.blocks.get(&(block + i as u64)) {
                    Some(data) => b.copy_from_slice(data),
                    None => b.fill(0),
                }
            }
            Ok(())
        }
        fn write(&mut self, block: u64, buf: &[u8]) -> Result {
            crate::io::device::check_io(self.nr_blocks, block, buf.len())?;
            for (i, b) in buf.chunks(BLOCK_SIZE).enumerate() {
                self.blocks.insert(block + i as u64, b.to_vec());
            }
            Ok(())
        }
        fn flush(&mut self) -> Result {
            Ok(())
        }
    }

    /// The largest map whose top page says every block is free: the
    /// entries are each within their child's capacity, and their sum, the
    /// device size, does not fit the 32-bit total. Mounting it is
    /// `Corrupt`, not an arithmetic overflow.
    #[test]
    fn top_page_claiming_every_block_free_is_corrupt() {
        let geom = Geometry::new(MAX_BLOCKS).unwrap();
        let top = geom.top();
        let layout = AllocLayout {
            nr_blocks: MAX_BLOCKS,
            copies: [0, geom.copy_blocks()],
        };
        let entries: alloc::vec::Vec<Entry> = geom
            .children(top, 0)
            .map(|c| {
                let cap = geom.capacity(top - 1, c) as u32;
                Entry {
                    crc: 0,
                    free: cap,
                    longest: BITS_PER_PAGE,
                }
            })
            .collect();
        let id = PageId {
            level: top as u32,
            index: 0,
            copy: 0,
            nr_entries: entries.len() as u32,
        };
        let block = geom.offset(top, 0);
        let mut buf = alloc::vec![0u8; BLOCK_SIZE];
        summary::encode(id, 2, block, &entries, &mut buf).unwrap();
        let mut dev = SparseDevice {
            nr_blocks: 2 * geom.copy_blocks(),
            blocks: BTreeMap::new(),
        };
        dev.write(block, &buf).unwrap();
        let root = AllocRoot {
            copy: 0,
            crc: summary::content_crc(&buf, true),
            free: MAX_BLOCKS,
        };
        let r = Allocator::open(&mut dev, layout, root, 2, 4);
        assert!(matches!(r, Err(Error::Corrupt { .. })), "{:?}", r.err());
    }
}
