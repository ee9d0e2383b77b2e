// SPDX-License-Identifier: GPL-2.0

//! Copy-on-write B-tree of extents, keyed by first LBA.
//!
//! Two handles, so that misuse does not compile:
//!
//! - [`ReadTree`] borrows the node manager shared (`&NodeTm`) and only
//!   reads: lookups, scans. Any root may be read, committed or not.
//! - [`WriteTree`] borrows it exclusively (`&mut NodeTm`) together with
//!   the root it changes. Every node on the path of a change is shadowed
//!   first ([`NodeTm::shadow`]); the copy-on-write rules are those of
//!   [`crate::btree::node_tm`].
//!
//! Shape: every internal key is exactly the smallest key of its child's
//! subtree, keys strictly increase within a node, every node but the root
//! holds between a third of its maximum and its maximum, an internal root
//! has at least two children. Changes run bottom-up over the path of
//! shadowed nodes kept in memory (at most [`MAX_HEIGHT`] of them): on
//! overflow, sharing with a sibling that has room, else a split; on
//! underflow, merging or redistribution with a sibling. Nothing recurses.

use crate::btree::node::{NodeData, INTERNAL_CAPACITY, LEAF_CAPACITY, MAX_HEIGHT, TREE_LBA_MAP};
use crate::btree::node_tm::{NodeStore, NodeTm, ReadNode, ShadowNode};
use crate::error::{Error, Result};
use crate::io::paddr::PAddr;
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::Extent;

/// Which tree and how full its nodes may get.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BTreeConfig {
    /// Tree id written in every node.
    pub tree: u32,
    /// Most entries per leaf, 3..=[`LEAF_CAPACITY`].
    pub leaf_max: usize,
    /// Most entries per internal node, 3..=[`INTERNAL_CAPACITY`].
    pub internal_max: usize,
}

impl BTreeConfig {
    /// The LBA map with full nodes.
    pub const LBA_MAP: Self = Self {
        tree: TREE_LBA_MAP,
        leaf_max: LEAF_CAPACITY,
        internal_max: INTERNAL_CAPACITY,
    };

    /// Checks the limits.
    pub fn validate(&self) -> Result {
        let ok = (3..=LEAF_CAPACITY).contains(&self.leaf_max)
            && (3..=INTERNAL_CAPACITY).contains(&self.internal_max);
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// Most entries of a node at `level`.
    pub fn max(&self, level: u8) -> usize {
        if level == 0 {
            self.leaf_max
        } else {
            self.internal_max
        }
    }

    /// Fewest entries of a non-root node at `level`: a third of the
    /// maximum, and at least two children for internal nodes (so every
    /// non-root node has a sibling to balance with).
    pub fn min(&self, level: u8) -> usize {
        (self.max(level) / 3).max(if level == 0 { 1 } else { 2 })
    }
}

/// Creates an empty tree (one empty leaf) and returns its root.
pub fn create<S: NodeStore>(tm: &mut NodeTm<S>, cfg: &BTreeConfig) -> Result<PAddr> {
    cfg.validate()?;
    let root = tm.new_node(cfg.tree, 0, None)?;
    tm.write(&root)?;
    root.addr()
}

pub(crate) fn corrupt(node: &NodeData, what: &'static str) -> Error {
    Error::Corrupt {
        block: node.addr.map(|a| a.error_block()),
        what,
    }
}

/// Checks that `child` may hang below `parent`.
pub(crate) fn check_child(parent: &NodeData, child: &NodeData) -> Result {
    if child.level + 1 != parent.level {
        return Err(corrupt(child, "btree child level"));
    }
    Ok(())
}

/// Index of the child to descend into for `key`: the last key `<= key`,
/// or the first child.
pub(crate) fn child_index(node: &NodeData) -> impl Fn(u64) -> usize + '_ {
    move |key| node.floor(key).unwrap_or(0)
}

/// Read-only access to a tree.
pub struct ReadTree<'a, S: NodeStore> {
    tm: &'a NodeTm<S>,
    cfg: BTreeConfig,
    root: PAddr,
}

impl<'a, S: NodeStore> ReadTree<'a, S> {
    /// A reader of the tree at `root`.
    pub fn new(tm: &'a NodeTm<S>, cfg: BTreeConfig, root: PAddr) -> Self {
        Self { tm, cfg, root }
    }

    fn read_child(&self, parent: &NodeData, i: usize) -> Result<ReadNode> {
        let addr = *parent
            .children
            .get(i)
            .ok_or(corrupt(parent, "btree child index"))?;
        let child = self.tm.read(addr, self.cfg.tree)?;
        check_child(parent, &child)?;
        Ok(child)
    }

    /// Descends to the leaf for `key`; also returns the smallest key of
    /// the subtrees to the right of the path (the next leaf's first key).
    fn leaf_for(&self, key: u64) -> Result<(ReadNode, Option<u64>)> {
        let mut node = self.tm.read(self.root, self.cfg.tree)?;
        let mut next = None;
        while !node.is_leaf() {
            let i = child_index(&node)(key);
            if let Some(&k) = node.keys.get(i + 1) {
                next = Some(k);
            }
            node = self.read_child(&node, i)?;
        }
        Ok((node, next))
    }

    /// Descends to the leaf for `key` without copying cached nodes and
    /// applies `at_leaf` to it; also returns the next leaf's first key.
    fn visit_leaf<R>(
        &self,
        key: u64,
        at_leaf: impl FnOnce(&NodeData) -> R,
    ) -> Result<(R, Option<u64>)> {
        enum Step<R> {
            Down(PAddr, u8, Option<u64>),
            Leaf(R),
        }
        let mut at_leaf = Some(at_leaf);
        let (mut addr, mut want, mut next) = (self.root, None, None);
        for _ in 0..=MAX_HEIGHT {
            let step = self.tm.visit(addr, self.cfg.tree, |n| {
                if want.is_some_and(|l| l != n.level) {
                    return Err(corrupt(n, "btree child level"));
                }
                if n.is_leaf() {
                    let f = at_leaf.take().ok_or(Error::InvalidArgument)?;
                    return Ok(Step::Leaf(f(n)));
                }
                let i = child_index(n)(key);
                let child = *n.children.get(i).ok_or(corrupt(n, "btree child index"))?;
                Ok(Step::Down(child, n.level - 1, n.keys.get(i + 1).copied()))
            })??;
            match step {
                Step::Leaf(r) => return Ok((r, next)),
                Step::Down(child, level, k) => {
                    (addr, want) = (child, Some(level));
                    next = k.or(next);
                }
            }
        }
        Err(Error::Corrupt {
            block: Some(self.root.error_block()),
            what: "btree deeper than its levels",
        })
    }

    /// The entry with the greatest key `<= key`.
    pub fn floor(&self, key: u64) -> Result<Option<(u64, Extent)>> {
        let (r, _) = self.visit_leaf(key, |leaf| {
            leaf.floor(key).map(|i| (leaf.keys[i], leaf.extents[i]))
        })?;
        Ok(r)
    }

    /// The entry with the smallest key `>= key`.
    pub fn ceil(&self, key: u64) -> Result<Option<(u64, Extent)>> {
        let (r, next) = self.visit_leaf(key, |leaf| {
            let i = leaf.keys.partition_point(|&k| k < key);
            (i < leaf.len()).then(|| (leaf.keys[i], leaf.extents[i]))
        })?;
        if r.is_some() {
            return Ok(r);
        }
        match next {
            // Separators are exact: `k` is a key, the first of the next leaf.
            Some(k) => self.floor(k),
            None => Ok(None),
        }
    }

    /// Calls `f` on every entry with key in `start..end`, in key order,
    /// reading each leaf once.
    pub fn scan(&self, start: u64, end: u64, mut f: impl FnMut(u64, &Extent) -> Result) -> Result {
        let mut cursor = start;
        while cursor < end {
            let (leaf, next) = self.leaf_for(cursor)?;
            let from = leaf.keys.partition_point(|&k| k < cursor);
            for (&k, e) in leaf.keys[from..].iter().zip(&leaf.extents[from..]) {
                if k >= end {
                    return Ok(());
                }
                f(k, e)?;
            }
            match next {
                Some(k) if k > cursor => cursor = k,
                Some(_) => return Err(corrupt(&leaf, "btree separator order")),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// The root this reader reads.
    pub fn root(&self) -> PAddr {
        self.root
    }

    /// The configuration.
    pub fn config(&self) -> &BTreeConfig {
        &self.cfg
    }

    /// The node manager.
    pub fn tm(&self) -> &'a NodeTm<S> {
        self.tm
    }
}

/// A shadowed node on the path of a change, with the index of the child
/// taken below it.
pub(crate) struct Frame {
    pub(crate) node: ShadowNode,
    pub(crate) idx: usize,
}

/// Shadowing access to a tree: the only way to change one.
pub struct WriteTree<'a, S: NodeStore> {
    pub(crate) tm: &'a mut NodeTm<S>,
    pub(crate) cfg: BTreeConfig,
    pub(crate) root: &'a mut PAddr,
}

impl<'a, S: NodeStore> WriteTree<'a, S> {
    /// A writer of the tree whose root is `*root`; every change stores the
    /// new root there.
    pub fn new(tm: &'a mut NodeTm<S>, cfg: BTreeConfig, root: &'a mut PAddr) -> Self {
        Self { tm, cfg, root }
    }

    /// A reader of the tree as it is now.
    pub fn reader(&self) -> ReadTree<'_, S> {
        ReadTree::new(self.tm, self.cfg, *self.root)
    }

    /// Shadows child `i` of `parent` and repoints `parent` at the copy.
    pub(crate) fn shadow_child(&mut self, parent: &mut ShadowNode, i: usize) -> Result<ShadowNode> {
        let addr = *parent
            .children
            .get(i)
            .ok_or(corrupt(parent, "btree child index"))?;
        let child = self.tm.shadow(addr, self.cfg.tree)?;
        check_child(parent, &child)?;
        parent.data_mut().children[i] = child.addr()?;
        Ok(child)
    }

    /// Shadows the path to the leaf for `key` into `path` and returns the
    /// leaf. With `lower_min`, keys smaller than a subtree's smallest
    /// become its separator (insertion).
    fn descend(&mut self, key: u64, lower_min: bool, path: &mut KVec<Frame>) -> Result<ShadowNode> {
        let mut node = self.tm.shadow(*self.root, self.cfg.tree)?;
        *self.root = node.addr()?;
        while !node.is_leaf() {
            let i = child_index(&node)(key);
            if lower_min && node.keys.first().is_some_and(|&k0| key < k0) {
                node.data_mut().keys[0] = key;
            }
            let child = self.shadow_child(&mut node, i)?;
            path.push(Frame { node, idx: i }, GFP_KERNEL)?;
            node = child;
        }
        Ok(node)
    }

    /// Inserts `key → ext`, returning the value it replaced.
    pub fn insert(&mut self, key: u64, ext: Extent) -> Result<Option<Extent>> {
        let mut path = KVec::with_capacity(MAX_HEIGHT, GFP_KERNEL)?;
        let mut leaf = self.descend(key, true, &mut path)?;
        let old = match leaf.keys.binary_search(&key) {
            Ok(j) => Some(core::mem::replace(&mut leaf.data_mut().extents[j], ext)),
            Err(j) => {
                leaf.data_mut().insert_extent(j, key, ext)?;
                None
            }
        };
        self.split_up(leaf, path)?;
        Ok(old)
    }

    /// Writes `cur` and the path above it, splitting overfull nodes.
    fn split_up(&mut self, mut cur: ShadowNode, mut path: KVec<Frame>) -> Result {
        loop {
            if cur.len() <= self.cfg.max(cur.level) {
                self.tm.write(&cur)?;
                while let Some(f) = path.pop() {
                    self.tm.write(&f.node)?;
                }
                return Ok(());
            }
            if let Some(f) = path.last_mut() {
                if self.share(&mut f.node, f.idx, &mut cur)? {
                    continue;
                }
            }
            let right = self.split(&mut cur)?;
            self.tm.write(&cur)?;
            self.tm.write(&right)?;
            let Some(Frame {
                node: mut parent,
                idx,
            }) = path.pop()
            else {
                return self.grow(&cur, &right);
            };
            let k = *right.keys.first().ok_or(corrupt(&right, "btree split"))?;
            parent.data_mut().insert_child(idx + 1, k, right.addr()?)?;
            cur = parent;
        }
    }

    /// Overfull child `idx` of `parent` gives entries to a sibling with
    /// room (at least an eighth of a node between them) instead of
    /// splitting, which keeps nodes fuller under random inserts. Returns
    /// whether it did; `cur` then fits.
    fn share(&mut self, parent: &mut ShadowNode, idx: usize, cur: &mut ShadowNode) -> Result<bool> {
        let (c, max) = (cur.len(), self.cfg.max(cur.level));
        let fits = |n: usize| n + c + (max / 8).max(1) <= 2 * max;
        let tree = self.cfg.tree;
        if idx > 0 {
            let l = self.tm.visit(parent.children[idx - 1], tree, |n| n.len())?;
            if fits(l) {
                let mut left = self.shadow_child(parent, idx - 1)?;
                let k = (l + c) / 2 - l;
                left.data_mut().append_from(cur, 0, k)?;
                cur.data_mut().remove_front(k)?;
                parent.data_mut().keys[idx] =
                    *cur.keys.first().ok_or(corrupt(cur, "btree share"))?;
                self.tm.write(&left)?;
                return Ok(true);
            }
        }
        if idx + 1 < parent.len() {
            let r = self.tm.visit(parent.children[idx + 1], tree, |n| n.len())?;
            if fits(r) {
                let mut right = self.shadow_child(parent, idx + 1)?;
                let k = c - (r + c).div_ceil(2);
                right.data_mut().append_from(cur, c - k, c)?;
                right.data_mut().rotate_right(k)?;
                cur.data_mut().truncate(c - k);
                parent.data_mut().keys[idx + 1] =
                    *right.keys.first().ok_or(corrupt(&right, "btree share"))?;
                self.tm.write(&right)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves the upper half of `node` into a new right sibling.
    fn split(&mut self, node: &mut ShadowNode) -> Result<ShadowNode> {
        let mut right = self.tm.new_node(self.cfg.tree, node.level, node.addr)?;
        let (mid, n) = (node.len() / 2, node.len());
        right.data_mut().append_from(node, mid, n)?;
        node.data_mut().truncate(mid);
        Ok(right)
    }

    /// The root split into `left` and `right`: adds a level.
    fn grow(&mut self, left: &ShadowNode, right: &ShadowNode) -> Result {
        let level = left.level + 1;
        if level as usize >= MAX_HEIGHT {
            return Err(Error::NoSpace);
        }
        let mut root = self.tm.new_node(self.cfg.tree, level, left.addr)?;
        for n in [left, right] {
            let k = *n.keys.first().ok_or(corrupt(n, "btree split"))?;
            let len = root.len();
            root.data_mut().insert_child(len, k, n.addr()?)?;
        }
        self.tm.write(&root)?;
        *self.root = root.addr()?;
        Ok(())
    }

    /// Removes `key`, returning its value; shadows nothing if it is absent.
    pub fn remove(&mut self, key: u64) -> Result<Option<Extent>> {
        match self.reader().floor(key)? {
            Some((k, _)) if k == key => {}
            _ => return Ok(None),
        }
        let mut path = KVec::with_capacity(MAX_HEIGHT, GFP_KERNEL)?;
        let mut leaf = self.descend(key, false, &mut path)?;
        let old = match leaf.keys.binary_search(&key) {
            Ok(j) => {
                let e = leaf.extents[j];
                leaf.data_mut().remove_at(j)?;
                Some(e)
            }
            Err(_) => None,
        };
        self.rebalance_up(leaf, path)?;
        Ok(old)
    }

    /// Writes `cur` and the path above it, fixing separators and merging
    /// or redistributing underfull nodes.
    fn rebalance_up(&mut self, mut cur: ShadowNode, mut path: KVec<Frame>) -> Result {
        while let Some(Frame {
            node: mut parent,
            idx,
        }) = path.pop()
        {
            if let Some(&k0) = cur.keys.first() {
                parent.data_mut().keys[idx] = k0;
            }
            if cur.len() < self.cfg.min(cur.level) && parent.len() >= 2 {
                self.rebalance(&mut parent, idx, cur)?;
            } else {
                self.tm.write(&cur)?;
            }
            cur = parent;
        }
        self.shrink(cur)
    }

    /// Balances underfull child `idx` of `parent` with a sibling.
    fn rebalance(&mut self, parent: &mut ShadowNode, idx: usize, cur: ShadowNode) -> Result {
        if idx > 0 {
            let left = self.shadow_child(parent, idx - 1)?;
            self.merge_or_share(parent, idx - 1, left, cur)
        } else {
            let right = self.shadow_child(parent, idx + 1)?;
            self.merge_or_share(parent, idx, cur, right)
        }
    }

    /// Merges children `li` and `li + 1` of `parent` if they fit in one
    /// node, else shares their entries evenly; writes what remains.
    fn merge_or_share(
        &mut self,
        parent: &mut ShadowNode,
        li: usize,
        mut left: ShadowNode,
        mut right: ShadowNode,
    ) -> Result {
        let (l, r) = (left.len(), right.len());
        if l + r <= self.cfg.max(left.level) {
            left.data_mut().append_from(&right, 0, r)?;
            parent.data_mut().remove_at(li + 1)?;
            self.tm.delete(right)?;
        } else {
            let want = (l + r) / 2;
            if l < want {
                left.data_mut().append_from(&right, 0, want - l)?;
                right.data_mut().remove_front(want - l)?;
            } else {
                right.data_mut().append_from(&left, want, l)?;
                right.data_mut().rotate_right(l - want)?;
                left.data_mut().truncate(want);
            }
            parent.data_mut().keys[li + 1] =
                *right.keys.first().ok_or(corrupt(&right, "btree share"))?;
            self.tm.write(&right)?;
        }
        if let Some(&k0) = left.keys.first() {
            parent.data_mut().keys[li] = k0;
        }
        self.tm.write(&left)
    }

    /// Writes the root, dropping levels that have a single child.
    fn shrink(&mut self, root: ShadowNode) -> Result {
        if root.is_leaf() || root.len() != 1 {
            return self.tm.write(&root);
        }
        let mut child = root.children[0];
        self.tm.delete(root)?;
        // A lower single-child node may surface with tiny fill limits.
        for _ in 0..MAX_HEIGHT {
            let node = self.tm.read(child, self.cfg.tree)?;
            if node.is_leaf() || node.len() != 1 {
                break;
            }
            self.tm.free_addr(child)?;
            child = node.children[0];
        }
        *self.root = child;
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &BTreeConfig {
        &self.cfg
    }

    /// The current root.
    pub fn root(&self) -> PAddr {
        *self.root
    }
}
