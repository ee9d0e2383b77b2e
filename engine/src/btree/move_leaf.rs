// SPDX-License-Identifier: GPL-2.0

//! Moving B-tree leaves between tiers (T1).
//!
//! When leaves migrate from the performance tier into an erasure-coded
//! stripe of the capacity tier, the leaf is rewritten at its new address
//! (its header records its own location) and the index node above it is
//! repointed; the ancestors are shadowed as for any change, so the move
//! obeys the copy-on-write rules of [`crate::btree::node_tm`] and becomes durable
//! with the next checkpoint. Index nodes stay on the performance tier.

use crate::btree::node::MAX_HEIGHT;
use crate::btree::node_tm::NodeStore;
use crate::btree::tree::{check_child, child_index, corrupt, Frame, WriteTree};
use crate::error::Result;
use crate::io::paddr::PAddr;
use crate::kcompat::{KVec, GFP_KERNEL};

impl<S: NodeStore> WriteTree<'_, S> {
    /// Moves the leaf that holds `key` (or would) to block `to`, which the
    /// caller allocated and the node store can write; returns the leaf's old
    /// address, now freed.
    pub fn move_leaf(&mut self, key: u64, to: PAddr) -> Result<PAddr> {
        let tree = self.cfg.tree;
        let top = self.tm.read(*self.root, tree)?;
        if top.is_leaf() {
            let old = *self.root;
            let moved = self.tm.relocate(top, to)?;
            self.tm.write(&moved)?;
            *self.root = to;
            return Ok(old);
        }
        drop(top);
        let mut path: KVec<Frame> = KVec::with_capacity(MAX_HEIGHT, GFP_KERNEL)?;
        let mut node = self.tm.shadow(*self.root, tree)?;
        *self.root = node.addr()?;
        while node.level > 1 {
            let i = child_index(&node)(key);
            let child = self.shadow_child(&mut node, i)?;
            path.push(Frame { node, idx: i }, GFP_KERNEL)?;
            node = child;
        }
        let i = child_index(&node)(key);
        let old = *node
            .children
            .get(i)
            .ok_or(corrupt(&node, "btree child index"))?;
        let leaf = self.tm.read(old, tree)?;
        check_child(&node, &leaf)?;
        let moved = self.tm.relocate(leaf, to)?;
        node.data_mut().children[i] = to;
        self.tm.write(&moved)?;
        self.tm.write(&node)?;
        while let Some(f) = path.pop() {
            self.tm.write(&f.node)?;
        }
        Ok(old)
    }
}
