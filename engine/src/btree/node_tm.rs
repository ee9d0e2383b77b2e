// SPDX-License-Identifier: GPL-2.0

//! The node transaction manager: reads, shadows and writes B-tree nodes.
//!
//! This is the layer under the B-tree, after the kernel's
//! `dm-transaction-manager`: it hands out nodes as either a [`ReadNode`]
//! (read-only, validated) or a [`ShadowNode`] (writable), and only
//! [`NodeTm::shadow`] and [`NodeTm::new_node`] make the latter.
//!
//! # Copy-on-write rules
//!
//! - The tree reachable from the root recorded at the last checkpoint is
//!   *committed*: none of its blocks is ever written again until a later
//!   checkpoint has replaced that root.
//! - The *open generation* is the last checkpoint's generation plus one.
//!   A node whose generation field is the open generation was written in
//!   it, is reachable only from the tree being built, and may be changed in
//!   place. Any other node is *shadowed* before a change: copied to a newly
//!   allocated block, stamped with the open generation, and its old block
//!   freed. So a node is shadowed at most once per generation.
//! - Whoever shadows a child must store the child's new address in its
//!   (already shadowed) parent; the root's new address is the caller's to
//!   keep, and goes into the superblock at the next checkpoint.
//! - A freed block of an earlier generation is still part of the committed
//!   tree: the [`NodeStore`] must not hand it out again before the next
//!   checkpoint completes ([`NodeStore::checkpoint_done`]).
//! - Changed nodes stay in the node cache ([`crate::btree::node_cache`]) until
//!   evicted or a checkpoint; a checkpoint is: write back and flush
//!   ([`NodeTm::pre_checkpoint`]), write the superblock with the new root,
//!   then [`NodeTm::checkpoint_done`], which opens the next generation.

use crate::btree::node::NodeData;
use crate::btree::node_cache::NodeCache;
use crate::error::{Error, Result};
use crate::io::device::BLOCK_SIZE;
use crate::io::paddr::PAddr;
use crate::kcompat::{KVec, GFP_KERNEL};
use core::cell::{Cell, Ref, RefCell};
use core::ops::Deref;

/// Block storage and allocation for nodes: the B-tree's view of the block
/// manager and the space map. Implemented over the engine's device and
/// allocator, or in memory for tests.
pub trait NodeStore {
    /// Reads the block at `addr` into `buf` (`BLOCK_SIZE` bytes).
    fn read_block(&mut self, addr: PAddr, buf: &mut [u8]) -> Result;
    /// Writes `buf` (`BLOCK_SIZE` bytes) to the block at `addr`.
    fn write_block(&mut self, addr: PAddr, buf: &[u8]) -> Result;
    /// Allocates a block for a node, preferably near `hint`.
    fn alloc_block(&mut self, hint: Option<PAddr>) -> Result<PAddr>;
    /// Releases a block the tree being built no longer uses. It must stay
    /// allocated until [`NodeStore::checkpoint_done`] if it was allocated
    /// before the open generation.
    fn free_block(&mut self, addr: PAddr) -> Result;
    /// Makes every write so far durable.
    fn flush(&mut self) -> Result;
    /// A checkpoint completed: blocks freed before it may be reused.
    fn checkpoint_done(&mut self) -> Result {
        Ok(())
    }
}

/// Counters for tests and benchmarks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TmStats {
    /// Nodes read from the store and validated.
    pub reads: u64,
    /// Node reads served by the cache.
    pub cache_hits: u64,
    /// Node changes recorded (each reaches its block at eviction or checkpoint).
    pub writes: u64,
    /// Nodes copied to a new block (shadowed).
    pub shadows: u64,
    /// Node blocks allocated (new nodes and shadows).
    pub allocs: u64,
    /// Node blocks freed.
    pub frees: u64,
}

/// A validated node, read-only.
#[derive(Debug)]
pub struct ReadNode(NodeData);

impl Deref for ReadNode {
    type Target = NodeData;
    fn deref(&self) -> &NodeData {
        &self.0
    }
}

/// A node of the open generation, writable. Only [`NodeTm`] makes one.
///
/// # Invariants
///
/// `generation` is the open generation and `addr` is a block the tree
/// being built owns, so changing and rewriting it never touches the
/// committed tree.
#[derive(Debug)]
pub struct ShadowNode(NodeData);

impl Deref for ShadowNode {
    type Target = NodeData;
    fn deref(&self) -> &NodeData {
        &self.0
    }
}

impl ShadowNode {
    /// The node's contents, to change. Address and generation stay.
    pub(crate) fn data_mut(&mut self) -> &mut NodeData {
        &mut self.0
    }

    /// The node's own address.
    pub fn addr(&self) -> Result<PAddr> {
        self.0.addr.ok_or(Error::InvalidArgument)
    }
}

/// Reads, shadows and writes nodes of the open generation.
///
/// Reads take `&self`, so readers share the manager; the store sits in a
/// `RefCell` because device reads take `&mut`. The manager never holds a
/// store borrow across a call out, so a borrow conflict is a bug reported
/// as `Error::InvalidArgument`, not a panic.
pub struct NodeTm<S: NodeStore> {
    store: RefCell<S>,
    generation: u64,
    stats: TmStats,
    reads: Cell<u64>,
    cache: RefCell<NodeCache>,
}

/// Nodes cached by [`NodeTm::new`] (about 4 KiB each).
pub const DEFAULT_CACHE_NODES: usize = 1024;

/// Encodes `node` and writes it to its block.
fn write_node<S: NodeStore>(store: &RefCell<S>, node: &NodeData) -> Result {
    let addr = node.addr.ok_or(Error::InvalidArgument)?;
    let mut buf = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
    node.encode(&mut buf)?;
    store
        .try_borrow_mut()
        .map_err(|_| Error::InvalidArgument)?
        .write_block(addr, &buf)
}

impl<S: NodeStore> NodeTm<S> {
    /// A manager whose open generation is `generation` (the last
    /// checkpoint's plus one), caching [`DEFAULT_CACHE_NODES`] nodes.
    pub fn new(store: S, generation: u64) -> Result<Self> {
        Self::with_cache(store, generation, DEFAULT_CACHE_NODES)
    }

    /// Like [`NodeTm::new`] with a cache of `cache_nodes` nodes (0: none).
    pub fn with_cache(store: S, generation: u64, cache_nodes: usize) -> Result<Self> {
        Ok(Self {
            cache: RefCell::new(NodeCache::new(cache_nodes)?),
            store: RefCell::new(store),
            generation,
            stats: TmStats::default(),
            reads: Cell::new(0),
        })
    }

    /// The open generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Counters so far.
    pub fn stats(&self) -> TmStats {
        TmStats {
            reads: self.reads.get(),
            cache_hits: self.cache.try_borrow().map_or(0, |c| c.hits),
            ..self.stats
        }
    }

    /// The underlying store.
    pub fn store(&self) -> Result<Ref<'_, S>> {
        self.store.try_borrow().map_err(|_| Error::InvalidArgument)
    }

    /// The underlying store, mutable (tests inject faults through it).
    pub fn store_mut(&mut self) -> &mut S {
        self.store.get_mut()
    }

    /// Reads and validates the node at `addr` of tree `tree`.
    pub fn read(&self, addr: PAddr, tree: u32) -> Result<ReadNode> {
        let mut node = NodeData::default();
        let mut cache = self
            .cache
            .try_borrow_mut()
            .map_err(|_| Error::InvalidArgument)?;
        if cache.get(addr, &mut node)? {
            return Ok(ReadNode(node));
        }
        let mut buf = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
        self.store
            .try_borrow_mut()
            .map_err(|_| Error::InvalidArgument)?
            .read_block(addr, &mut buf)?;
        node.decode(&buf, addr, tree)?;
        self.reads.set(self.reads.get() + 1);
        if node.generation > self.generation {
            return Err(Error::Corrupt {
                block: Some(addr.error_block()),
                what: "btree node from a future generation",
            });
        }
        cache.put(&node, false, |victim| write_node(&self.store, victim))?;
        Ok(ReadNode(node))
    }

    /// Applies `f` to the validated node at `addr` of tree `tree`, without
    /// copying it when it is cached. `f` must not call back into the
    /// manager (the cache is borrowed while it runs).
    pub fn visit<R>(&self, addr: PAddr, tree: u32, f: impl FnOnce(&NodeData) -> R) -> Result<R> {
        {
            let mut cache = self
                .cache
                .try_borrow_mut()
                .map_err(|_| Error::InvalidArgument)?;
            if let Some(n) = cache.peek(addr) {
                if n.tree != tree {
                    return Err(Error::Corrupt {
                        block: Some(addr.error_block()),
                        what: "btree node tree id",
                    });
                }
                return Ok(f(n));
            }
        }
        let node = self.read(addr, tree)?;
        Ok(f(&node))
    }

    /// Makes the node at `addr` writable: itself if it was written in the
    /// open generation, else a copy in a new block (near the old one),
    /// freeing the old block. The caller repoints the parent if the
    /// address changed.
    pub fn shadow(&mut self, addr: PAddr, tree: u32) -> Result<ShadowNode> {
        let ReadNode(mut node) = self.read(addr, tree)?;
        if node.generation == self.generation {
            return Ok(ShadowNode(node));
        }
        let new = self.store.get_mut().alloc_block(Some(addr))?;
        self.stats.allocs += 1;
        self.stats.shadows += 1;
        self.free_addr(addr)?;
        node.addr = Some(new);
        node.generation = self.generation;
        Ok(ShadowNode(node))
    }

    /// Moves a node to block `to`, which the caller allocated (T1: a block
    /// of an erasure-coded stripe): stamps it with the open generation and
    /// frees its old block. The caller repoints the parent and writes it.
    pub fn relocate(&mut self, node: ReadNode, to: PAddr) -> Result<ShadowNode> {
        let ReadNode(mut node) = node;
        let old = node.addr.ok_or(Error::InvalidArgument)?;
        self.free_addr(old)?;
        node.addr = Some(to);
        node.generation = self.generation;
        Ok(ShadowNode(node))
    }

    /// A new empty node of `level` in tree `tree`, allocated near `hint`.
    pub fn new_node(&mut self, tree: u32, level: u8, hint: Option<PAddr>) -> Result<ShadowNode> {
        let addr = self.store.get_mut().alloc_block(hint)?;
        self.stats.allocs += 1;
        Ok(ShadowNode(NodeData {
            addr: Some(addr),
            generation: self.generation,
            tree,
            level,
            ..NodeData::default()
        }))
    }

    /// Records a shadowed node's new contents: in the cache, written to
    /// its block when evicted or at the next checkpoint.
    pub fn write(&mut self, node: &ShadowNode) -> Result {
        let store = &self.store;
        let cache = self.cache.get_mut();
        cache.put(&node.0, true, |victim| write_node(store, victim))?;
        self.stats.writes += 1;
        Ok(())
    }

    /// Writes every cached change to the store and forgets every cached
    /// node, so the next reads come from the store (tests that damage
    /// blocks, tools that verify the device).
    pub fn write_back_and_drop_cache(&mut self) -> Result {
        let store = &self.store;
        let cache = self.cache.get_mut();
        cache.flush(|n| write_node(store, n))?;
        cache.clear_clean();
        Ok(())
    }

    /// Drops a node from the tree being built and frees its block.
    pub fn delete(&mut self, node: ShadowNode) -> Result {
        self.free_addr(node.addr()?)
    }

    /// Frees the block of a node without reading it.
    pub(crate) fn free_addr(&mut self, addr: PAddr) -> Result {
        self.cache.get_mut().remove(addr);
        self.stats.frees += 1;
        self.store.get_mut().free_block(addr)
    }

    /// First half of a checkpoint: makes every node written so far durable.
    /// The caller then writes the superblock with the roots.
    pub fn pre_checkpoint(&mut self) -> Result {
        let store = &self.store;
        self.cache.get_mut().flush(|n| write_node(store, n))?;
        self.store.get_mut().flush()
    }

    /// Second half: the superblock is durable; opens the next generation.
    pub fn checkpoint_done(&mut self) -> Result {
        self.store.get_mut().checkpoint_done()?;
        self.generation = self
            .generation
            .checked_add(1)
            .ok_or(Error::InvalidArgument)?;
        Ok(())
    }

    /// Takes the store back. Cached changes not written back by a
    /// checkpoint are dropped, as a crash would.
    pub fn into_store(self) -> S {
        self.store.into_inner()
    }
}
