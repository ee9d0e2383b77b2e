// SPDX-License-Identifier: GPL-2.0

//! A small bounded cache of 4096-byte metadata pages, keyed by
//! (level, index), with least-recently-used eviction of clean pages.
//!
//! Dirty pages are pinned until their owner writes them and calls
//! [`PageCache::mark_clean`]; if every slot is dirty the cache grows past its
//! capacity (fallibly) rather than lose a change, and
//! [`PageCache::over_capacity`] tells the owner to write back (checkpoint).

use crate::error::Result;
use crate::io::device::BLOCK_SIZE;
use crate::kcompat::{KVec, GFP_KERNEL};

/// Identifies a cached page.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Tree level (0 for bitmap pages).
    pub level: u8,
    /// Index within the level.
    pub index: u32,
}

struct Slot {
    key: Key,
    data: KVec<u8>,
    dirty: bool,
    used: u64,
}

/// The cache. Lookups are linear: the capacity is small (tens to a few
/// hundred pages), and the last hit is checked first.
pub struct PageCache {
    slots: KVec<Slot>,
    capacity: usize,
    clock: u64,
    last: usize,
}

impl PageCache {
    /// An empty cache holding up to `capacity` clean pages (at least 4).
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: KVec::new(),
            capacity: capacity.max(4),
            clock: 0,
            last: 0,
        }
    }

    /// Changes the capacity (at least 4); takes effect at the next insert.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(4);
    }

    /// The slot holding `key`, if cached; counts as a use.
    pub fn find(&mut self, key: Key) -> Option<usize> {
        let i = match self.slots.get(self.last) {
            Some(s) if s.key == key => self.last,
            _ => self.slots.iter().position(|s| s.key == key)?,
        };
        self.clock += 1;
        self.slots[i].used = self.clock;
        self.last = i;
        Some(i)
    }

    /// The page in slot `i` (from [`PageCache::find`] or [`PageCache::insert`]).
    pub fn page(&self, i: usize) -> &[u8] {
        &self.slots[i].data
    }

    /// The page in slot `i`, to be changed; marks it dirty.
    pub fn page_mut(&mut self, i: usize) -> &mut [u8] {
        self.slots[i].dirty = true;
        &mut self.slots[i].data
    }

    /// Inserts a copy of `page` under `key` (not already cached), evicting
    /// the least recently used clean page if full; returns its slot.
    pub fn insert(&mut self, key: Key, page: &[u8]) -> Result<usize> {
        self.clock += 1;
        if self.slots.len() >= self.capacity {
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.dirty)
                .min_by_key(|(_, s)| s.used)
                .map(|(i, _)| i);
            if let Some(i) = victim {
                let s = &mut self.slots[i];
                s.key = key;
                s.dirty = false;
                s.used = self.clock;
                s.data.copy_from_slice(page);
                self.last = i;
                return Ok(i);
            }
        }
        let mut data = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
        data.extend_from_slice(page, GFP_KERNEL)?;
        let slot = Slot {
            key,
            data,
            dirty: false,
            used: self.clock,
        };
        self.slots.push(slot, GFP_KERNEL)?;
        self.last = self.slots.len() - 1;
        Ok(self.last)
    }

    /// Drops `key` from the cache, dirty or not.
    pub fn remove(&mut self, key: Key) {
        if let Some(i) = self.slots.iter().position(|s| s.key == key) {
            let _ = self.slots.remove(i);
            self.last = 0;
        }
    }

    /// Appends the indices of the dirty pages at `level` to `out`.
    pub fn dirty(&self, level: u8, out: &mut KVec<u32>) -> Result {
        for s in self
            .slots
            .iter()
            .filter(|s| s.dirty && s.key.level == level)
        {
            out.push(s.key.index, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Number of dirty pages.
    pub fn nr_dirty(&self) -> usize {
        self.slots.iter().filter(|s| s.dirty).count()
    }

    /// Marks every page clean (after its owner wrote them all) and drops
    /// the least recently used ones beyond the capacity.
    pub fn mark_clean(&mut self) {
        for s in self.slots.iter_mut() {
            s.dirty = false;
        }
        if self.slots.len() > self.capacity {
            crate::heap_sort::sort_by_key(&mut self.slots, |s| core::cmp::Reverse(s.used));
            self.slots.truncate(self.capacity);
            self.last = 0;
        }
    }

    /// Whether pinned dirty pages have pushed the cache past its capacity.
    pub fn over_capacity(&self) -> bool {
        self.slots.len() > self.capacity
    }

    /// Bytes held by cached pages.
    pub fn resident_bytes(&self) -> usize {
        self.slots.len() * (BLOCK_SIZE + core::mem::size_of::<Slot>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_lru_clean_and_pins_dirty() {
        let mut c = PageCache::new(4);
        let page = [0u8; BLOCK_SIZE];
        for i in 0..4 {
            c.insert(Key { level: 0, index: i }, &page).unwrap();
        }
        let s = c.find(Key { level: 0, index: 0 }).unwrap();
        c.page_mut(s)[0] = 1;
        c.find(Key { level: 0, index: 1 }).unwrap();
        c.insert(Key { level: 0, index: 9 }, &page).unwrap();
        assert!(c.find(Key { level: 0, index: 2 }).is_none());
        assert!(c.find(Key { level: 0, index: 0 }).is_some());
        for i in [1, 3, 9] {
            let s = c.find(Key { level: 0, index: i }).unwrap();
            c.page_mut(s)[0] = 1;
        }
        c.insert(Key { level: 1, index: 0 }, &page).unwrap();
        assert!(c.over_capacity());
        let mut d = KVec::new();
        c.dirty(0, &mut d).unwrap();
        assert_eq!(d.len(), 4);
        c.mark_clean();
        assert_eq!(c.nr_dirty(), 0);
    }
}
