// SPDX-License-Identifier: GPL-2.0

//! The free-space allocator (T4): a bitmap cut into pages, summarised by a
//! tree of summary pages.
//!
//! Only the summaries stay resident: per bitmap page its free count and
//! longest free run (4 bytes), per summary page the same plus its content
//! CRC. Bitmap and summary pages are read on demand through a bounded
//! [`PageCache`]. A search for a free extent walks the resident summaries
//! (entries of one group, then up a level, then down again); it reads
//! exactly one bitmap page, the one that has the run.
//!
//! # Rules for callers (the B-tree and transaction layers)
//!
//! - Every method that may read takes the device; the allocator owns none.
//! - [`Allocator::alloc`] / [`Allocator::alloc_extent`] return blocks that
//!   no durable structure references; write them freely.
//! - [`Allocator::free`] is *deferred*: the blocks stay allocated until the
//!   next checkpoint completes, because the last checkpoint (and WAL records
//!   after it) may still reference them. Copy-on-write callers free the old
//!   copy of a shadowed block and need not care when it becomes reusable.
//! - [`Allocator::reserve`] marks a given extent allocated (WAL replay of an
//!   allocation, or fixed metadata); it fails if any block is in use.
//! - Extents never cross a bitmap page: at most [`BITS_PER_PAGE`] blocks
//!   (128 MiB) in one extent.
//! - Two copies of the map alternate per checkpoint generation; writing one
//!   is [`Allocator::write_copy`] (in `space/map_io.rs`), called by
//!   `crate::journal::meta_device::MetaDevice::checkpoint`, never directly.

use crate::error::{Error, Result};
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::space::bitmap::{self, PageSummary, BITS_PER_PAGE};
use crate::space::geometry::{Geometry, MAX_LEVELS};
use crate::space::page_cache::{Key, PageCache};
use crate::space::summary::FANOUT;

/// Where the two copies of a device's allocation map live.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AllocLayout {
    /// Blocks managed (the whole device).
    pub nr_blocks: u64,
    /// First block of copy 0 and of copy 1.
    pub copies: [u64; 2],
}

/// What a checkpoint records about the allocation map in the superblock.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AllocRoot {
    /// Copy written (0 or 1).
    pub copy: u32,
    /// Content CRC of that copy's top summary page.
    pub crc: u32,
    /// Free blocks.
    pub free: u64,
}

/// Counters for benchmarks and statistics.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Bitmap pages read from the device.
    pub bitmap_reads: u64,
    /// Summary pages read from the device.
    pub summary_reads: u64,
    /// Bitmap pages looked up (cache hits and misses).
    pub bitmap_touches: u64,
    /// Pages written by checkpoints.
    pub pages_written: u64,
}

/// The allocator of one device. See the module docs for the rules.
pub struct Allocator {
    pub(crate) geom: Geometry,
    pub(crate) layout: AllocLayout,
    /// Copy the last checkpoint wrote (what the device holds).
    pub(crate) live: usize,
    /// Generation of the last checkpoint.
    pub(crate) generation: u64,
    /// Per bitmap page: free count | longest run << 16.
    pub(crate) leaf: KVec<u32>,
    /// Per summary page (index = level ≥ 1): its totals.
    pub(crate) upper: [KVec<PageSummary>; MAX_LEVELS],
    /// Per summary page of the live copy: its content CRC.
    pub(crate) crcs: [KVec<u32>; MAX_LEVELS],
    pub(crate) cache: PageCache,
    /// Bitmap pages the last checkpoint wrote to the live copy only.
    pub(crate) carried: KVec<u32>,
    /// Whether the other copy must be rewritten whole (after mount/format).
    pub(crate) carry_all: bool,
    /// Frees waiting for the next checkpoint: (start, len).
    pub(crate) deferred: KVec<(u64, u32)>,
    pub(crate) stats: AllocStats,
}

pub(crate) fn pack(s: PageSummary) -> u32 {
    s.free | (s.longest << 16)
}

pub(crate) fn unpack(v: u32) -> PageSummary {
    PageSummary {
        free: v & 0xffff,
        longest: v >> 16,
    }
}

impl Allocator {
    /// An allocator with every block free and nothing loaded; `space/map_io.rs`
    /// fills it from the device or a fresh format.
    pub(crate) fn empty(layout: AllocLayout, cache_pages: usize) -> Result<Self> {
        let geom = Geometry::new(layout.nr_blocks)?;
        let mut upper: [KVec<PageSummary>; MAX_LEVELS] = core::array::from_fn(|_| KVec::new());
        let mut crcs: [KVec<u32>; MAX_LEVELS] = core::array::from_fn(|_| KVec::new());
        for k in 1..geom.levels() {
            let n = geom.count(k) as usize;
            upper[k] = KVec::from_elem(PageSummary::default(), n, GFP_KERNEL)?;
            crcs[k] = KVec::from_elem(0, n, GFP_KERNEL)?;
        }
        Ok(Self {
            leaf: KVec::from_elem(0, geom.count(0) as usize, GFP_KERNEL)?,
            geom,
            layout,
            live: 0,
            generation: 0,
            upper,
            crcs,
            cache: PageCache::new(cache_pages),
            carried: KVec::new(),
            carry_all: true,
            deferred: KVec::new(),
            stats: AllocStats::default(),
        })
    }

    /// Sets how many clean pages the cache keeps.
    pub fn set_cache_pages(&mut self, pages: usize) {
        self.cache.set_capacity(pages);
    }

    /// Blocks managed.
    pub fn nr_blocks(&self) -> u64 {
        self.geom.nr_blocks
    }

    /// Free blocks (deferred frees not yet counted).
    pub fn free_blocks(&self) -> u64 {
        let top = self.geom.top();
        self.upper[top].iter().map(|s| u64::from(s.free)).sum()
    }

    /// Blocks freed since the last checkpoint, reusable after the next one.
    pub fn deferred_blocks(&self) -> u64 {
        self.deferred.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    /// Counters since creation.
    pub fn stats(&self) -> AllocStats {
        self.stats
    }

    /// Whether enough dirty pages are pinned that a checkpoint is due.
    pub fn needs_checkpoint(&self) -> bool {
        self.cache.over_capacity()
    }

    /// Bytes of the resident summaries and CRCs alone (what grows with the
    /// device size; the cache and the per-generation lists do not).
    pub fn summary_bytes(&self) -> usize {
        let mut n = self.leaf.capacity() * 4;
        for k in 0..MAX_LEVELS {
            n += self.upper[k].capacity() * core::mem::size_of::<PageSummary>();
            n += self.crcs[k].capacity() * 4;
        }
        n
    }

    /// Bytes of resident state: summaries, CRCs, cache and bookkeeping.
    pub fn resident_bytes(&self) -> usize {
        let mut n = self.leaf.capacity() * 4 + self.cache.resident_bytes();
        for k in 0..MAX_LEVELS {
            n += self.upper[k].capacity() * core::mem::size_of::<PageSummary>();
            n += self.crcs[k].capacity() * 4;
        }
        n + self.carried.capacity() * 4
            + self.deferred.capacity() * 16
            + core::mem::size_of::<Self>()
    }

    /// Summary of entry `i` at `level` (0: bitmap pages).
    pub(crate) fn summary(&self, level: usize, i: u32) -> PageSummary {
        if level == 0 {
            self.leaf
                .get(i as usize)
                .map_or_else(Default::default, |&v| unpack(v))
        } else {
            self.upper[level]
                .get(i as usize)
                .copied()
                .unwrap_or_default()
        }
    }

    /// Recomputes the totals of summary page (`k`, `j`) from its children.
    pub(crate) fn propagate_one(&mut self, k: usize, j: u32) {
        let mut s = PageSummary::default();
        for c in self.geom.children(k, j) {
            let cs = self.summary(k - 1, c);
            s.free += cs.free;
            s.longest = s.longest.max(cs.longest);
        }
        if let Some(slot) = self.upper[k].get_mut(j as usize) {
            *slot = s;
        }
    }

    /// Recomputes the summaries above bitmap page `page`.
    pub(crate) fn propagate(&mut self, page: u32) {
        let mut i = page;
        for k in 1..self.geom.levels() {
            let j = i / FANOUT;
            self.propagate_one(k, j);
            i = j;
        }
    }

    /// First bitmap page at or after `start` whose longest run is at least
    /// `len`, found by walking the summaries.
    fn find_page_from(&self, start: u32, len: u32) -> Option<u32> {
        let (mut k, mut i) = (0usize, start);
        loop {
            let group_end = ((i / FANOUT + 1) * FANOUT).min(self.geom.count(k));
            if let Some(j) = (i..group_end).find(|&j| self.summary(k, j).longest >= len) {
                return Some(self.descend(k, j, len));
            }
            if k == self.geom.top() {
                return None;
            }
            i = i / FANOUT + 1;
            k += 1;
        }
    }

    fn descend(&self, mut k: usize, mut j: u32, len: u32) -> u32 {
        while k > 0 {
            let mut children = self.geom.children(k, j);
            // The summary says some child has the run; the first one wins.
            j = children
                .find(|&c| self.summary(k - 1, c).longest >= len)
                .unwrap_or(j * FANOUT);
            k -= 1;
        }
        j
    }

    fn find_page(&self, start: u32, len: u32) -> Option<u32> {
        self.find_page_from(start, len)
            .or_else(|| self.find_page_from(0, len))
    }

    /// Applies `f` to bitmap page `page` (loaded if needed), marks it dirty
    /// and refreshes the summaries. `f` gets the page's summary and returns
    /// the new one, or `None` to have the page rescanned.
    fn modify<T>(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
        page: u32,
        f: impl FnOnce(&mut [u8], PageSummary) -> Result<(T, Option<PageSummary>)>,
    ) -> Result<T> {
        let slot = self.load_bitmap(dev, page)?;
        let old = unpack(self.leaf[page as usize]);
        let buf = self.cache.page_mut(slot);
        let (out, new) = f(buf, old)?;
        let s = new.unwrap_or_else(|| bitmap::summarize(buf));
        self.leaf[page as usize] = pack(s);
        self.propagate(page);
        Ok(out)
    }

    /// Marks the free bits `bit .. bit + n` of `buf` allocated; the new
    /// summary if it follows from `old` without a rescan.
    fn take_bits(buf: &mut [u8], bit: u32, n: u32, old: PageSummary) -> Option<PageSummary> {
        let run = bitmap::run_around(buf, bit, n);
        bitmap::fill(buf, bit, n, true);
        // Only cutting a longest run can shorten the longest run.
        (run < old.longest).then_some(PageSummary {
            free: old.free - n,
            longest: old.longest,
        })
    }

    /// Marks the allocated bits `bit .. bit + n` of `buf` free; the new summary.
    fn give_bits(buf: &mut [u8], bit: u32, n: u32, old: PageSummary) -> PageSummary {
        bitmap::fill(buf, bit, n, false);
        let run = bitmap::run_around(buf, bit, n);
        PageSummary {
            free: old.free + n,
            longest: old.longest.max(run),
        }
    }

    /// Allocates one block, as near after `hint` as possible.
    pub fn alloc(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
        hint: u64,
    ) -> Result<u64> {
        self.alloc_extent(dev, hint, 1)
    }

    /// Allocates `len` contiguous blocks (1 ..= [`BITS_PER_PAGE`]): the first
    /// fit at or after `hint`, wrapping around; returns the first block.
    /// `Error::NoSpace` if no free run is that long.
    pub fn alloc_extent(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
        hint: u64,
        len: u32,
    ) -> Result<u64> {
        if len == 0 || len > BITS_PER_PAGE {
            return Err(Error::InvalidArgument);
        }
        let hint = if hint < self.geom.nr_blocks { hint } else { 0 };
        let hp = (hint / u64::from(BITS_PER_PAGE)) as u32;
        let page = self.find_page(hp, len).ok_or(Error::NoSpace)?;
        let from = if page == hp {
            (hint % u64::from(BITS_PER_PAGE)) as u32
        } else {
            0
        };
        let off = self.modify(dev, page, |buf, old| {
            let off = bitmap::find_run(buf, from, len)
                .or_else(|| bitmap::find_run(buf, 0, len))
                .ok_or(Error::Corrupt {
                    block: None,
                    what: "bitmap summary promises a run the page lacks",
                })?;
            Ok((off, Self::take_bits(buf, off, len, old)))
        })?;
        Ok(u64::from(page) * u64::from(BITS_PER_PAGE) + u64::from(off))
    }

    /// Splits `start .. start + len` into per-page spans (page, first bit, bits).
    fn spans(&self, start: u64, len: u64) -> Result<impl Iterator<Item = (u32, u32, u32)>> {
        let end = start.checked_add(len).ok_or(Error::InvalidArgument)?;
        if len == 0 || end > self.geom.nr_blocks {
            return Err(Error::InvalidArgument);
        }
        let bpp = u64::from(BITS_PER_PAGE);
        let mut b = start;
        Ok(core::iter::from_fn(move || {
            if b >= end {
                return None;
            }
            let page = b / bpp;
            let n = (end - b).min((page + 1) * bpp - b);
            let span = (page as u32, (b % bpp) as u32, n as u32);
            b += n;
            Some(span)
        }))
    }

    /// Whether every block of the extent is allocated (`value` true) or free.
    fn extent_is(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
        start: u64,
        len: u64,
        value: bool,
    ) -> Result<bool> {
        for (page, bit, n) in self.spans(start, len)? {
            let slot = self.load_bitmap(dev, page)?;
            if !bitmap::all(self.cache.page(slot), bit, n, value) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether `block` is allocated (deferred frees still count as allocated).
    pub fn is_allocated(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
        block: u64,
    ) -> Result<bool> {
        self.extent_is(dev, block, 1, true)
    }

    /// Marks `start .. start + len` allocated; `Error::InvalidArgument` if any
    /// block of it is already allocated or out of range (nothing changes then).
    pub fn reserve(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
        start: u64,
        len: u64,
    ) -> Result {
        if !self.extent_is(dev, start, len, false)? {
            return Err(Error::InvalidArgument);
        }
        for (page, bit, n) in self.spans(start, len)? {
            self.modify(dev, page, |buf, old| {
                Ok(((), Self::take_bits(buf, bit, n, old)))
            })?;
        }
        Ok(())
    }

    /// Frees `start .. start + len` at the next checkpoint (see the module
    /// docs); `Error::InvalidArgument` if any block of it is not allocated.
    /// Freeing the same block twice before a checkpoint makes that
    /// checkpoint fail with `Error::Corrupt`.
    pub fn free(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
        start: u64,
        len: u32,
    ) -> Result {
        if !self.extent_is(dev, start, u64::from(len), true)? {
            return Err(Error::InvalidArgument);
        }
        self.deferred.push((start, len), GFP_KERNEL)?;
        Ok(())
    }

    /// Makes the deferred frees effective; called by `write_copy`.
    pub(crate) fn apply_deferred(
        &mut self,
        dev: &mut dyn crate::io::device::BlockDevice,
    ) -> Result {
        crate::heap_sort::sort(&mut self.deferred);
        let double = self
            .deferred
            .windows(2)
            .any(|w| w[0].0 + u64::from(w[0].1) > w[1].0);
        if double {
            return Err(Error::Corrupt {
                block: None,
                what: "block freed twice in one generation",
            });
        }
        let deferred = core::mem::take(&mut self.deferred);
        for &(start, len) in deferred.iter() {
            for (page, bit, n) in self.spans(start, u64::from(len))? {
                self.modify(dev, page, |buf, old| {
                    Ok(((), Some(Self::give_bits(buf, bit, n, old))))
                })?;
            }
        }
        Ok(())
    }

    /// The cache key of bitmap page `page`.
    pub(crate) fn key(level: usize, index: u32) -> Key {
        Key {
            level: level as u8,
            index,
        }
    }
}
