// SPDX-License-Identifier: GPL-2.0

//! A set-associative cache of decoded, validated B-tree nodes.
//!
//! The node manager keeps recently used nodes here so that a lookup does
//! not re-read, re-checksum and re-decode them, and keeps nodes written in
//! the open generation here *dirty* until they are evicted or a checkpoint
//! writes them back. Deferring those writes is safe because such nodes
//! belong only to the tree being built (see [`crate::btree::node_tm`]); a crash
//! loses them together with the generation. A freed block's entry is
//! dropped at once, so a stale dirty node can never overwrite a block that
//! was reused.
//!
//! Lookups hash the address into a set of [`WAYS`] slots and evict the
//! least recently used slot of that set: constant time, no allocation after
//! warm-up, no map types.

use crate::btree::node::NodeData;
use crate::error::Result;
use crate::io::paddr::PAddr;
use crate::kcompat::{KVec, GFP_KERNEL};

/// Slots per set.
pub const WAYS: usize = 8;

struct Slot {
    addr: Option<PAddr>,
    dirty: bool,
    used: u64,
    node: NodeData,
}

/// Cached nodes; capacity 0 disables caching (every write goes through).
pub struct NodeCache {
    slots: KVec<Slot>,
    tick: u64,
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
}

impl NodeCache {
    /// A cache of about `capacity` nodes (rounded down to whole sets).
    pub fn new(capacity: usize) -> Result<Self> {
        let n = capacity / WAYS * WAYS;
        let mut slots = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            slots.push(
                Slot {
                    addr: None,
                    dirty: false,
                    used: 0,
                    node: NodeData::default(),
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Self {
            slots,
            tick: 0,
            hits: 0,
            misses: 0,
        })
    }

    /// True if the cache holds nothing, ever.
    pub fn is_disabled(&self) -> bool {
        self.slots.is_empty()
    }

    fn set_of(&self, addr: PAddr) -> core::ops::Range<usize> {
        let sets = (self.slots.len() / WAYS) as u64;
        let h = addr.to_raw().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 17;
        let s = (h % sets.max(1)) as usize * WAYS;
        s..s + WAYS
    }

    fn find(&self, addr: PAddr) -> Option<usize> {
        if self.is_disabled() {
            return None;
        }
        self.set_of(addr)
            .find(|&i| self.slots[i].addr == Some(addr))
    }

    /// Copies the cached node at `addr` into `out`, if present.
    pub fn get(&mut self, addr: PAddr, out: &mut NodeData) -> Result<bool> {
        let Some(i) = self.find(addr) else {
            self.misses += 1;
            return Ok(false);
        };
        self.hits += 1;
        self.tick += 1;
        self.slots[i].used = self.tick;
        out.copy_from(&self.slots[i].node)?;
        Ok(true)
    }

    /// The cached node at `addr`, if present, without copying it (a miss
    /// is counted by the [`NodeCache::get`] that follows).
    pub fn peek(&mut self, addr: PAddr) -> Option<&NodeData> {
        let i = self.find(addr)?;
        self.hits += 1;
        self.tick += 1;
        self.slots[i].used = self.tick;
        Some(&self.slots[i].node)
    }

    /// Stores a copy of `node` (which has an address). A dirty victim is
    /// handed to `write_back` before its slot is reused; `dirty` marks the
    /// new entry as not yet written.
    pub fn put(
        &mut self,
        node: &NodeData,
        dirty: bool,
        write_back: impl FnOnce(&NodeData) -> Result,
    ) -> Result {
        let Some(addr) = node.addr else {
            return Ok(());
        };
        if self.is_disabled() {
            return if dirty { write_back(node) } else { Ok(()) };
        }
        let (i, was_dirty) = match self.find(addr) {
            Some(i) => (i, self.slots[i].dirty),
            None => {
                let set = self.set_of(addr);
                let victim = set
                    .min_by_key(|&i| (self.slots[i].addr.is_some(), self.slots[i].used))
                    .unwrap_or(0);
                if self.slots[victim].dirty {
                    write_back(&self.slots[victim].node)?;
                }
                (victim, false)
            }
        };
        self.tick += 1;
        let slot = &mut self.slots[i];
        slot.node.copy_from(node)?;
        slot.addr = Some(addr);
        // A clean copy never hides an unwritten one of the same block.
        slot.dirty = dirty || was_dirty;
        slot.used = self.tick;
        Ok(())
    }

    /// Forgets `addr` (its block was freed), dirty or not.
    pub fn remove(&mut self, addr: PAddr) {
        if let Some(i) = self.find(addr) {
            self.slots[i].addr = None;
            self.slots[i].dirty = false;
        }
    }

    /// Writes back every dirty node with `write_back` and marks it clean.
    pub fn flush(&mut self, mut write_back: impl FnMut(&NodeData) -> Result) -> Result {
        for s in self.slots.iter_mut().filter(|s| s.dirty) {
            write_back(&s.node)?;
            s.dirty = false;
        }
        Ok(())
    }

    /// Drops every clean entry (after a flush: everything), so that the
    /// next reads come from the store.
    pub fn clear_clean(&mut self) {
        for s in self.slots.iter_mut().filter(|s| !s.dirty) {
            s.addr = None;
        }
    }
}
