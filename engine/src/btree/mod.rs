// SPDX-License-Identifier: GPL-2.0

//! Layer 5, the copy-on-write B-tree of extents, keyed by first LBA.
//!
//! Bottom-up: [`node`] (one 4096-byte block, its layout and validator),
//! [`node_tm`] (the node transaction manager: the only way to get a
//! writable node is to shadow one), [`node_cache`], [`dev_node_store`]
//! (nodes on the performance device), [`tree`] (lookups, inserts, removes),
//! [`range_map`] (overwrite and punch over any map of ranges) and
//! [`move_leaf`] (leaves moving between tiers).
//!
//! Rules ([`node_tm`] states them in full):
//!
//! - No block of the tree committed by the last checkpoint is written again
//!   until a later checkpoint has replaced its root.
//! - A node written in the open generation may be changed in place; any
//!   other node is shadowed to a new block first, and the old block is
//!   freed only when the generation is durable.

pub mod dev_node_store;
pub mod move_leaf;
pub mod node;
pub mod node_cache;
pub mod node_tm;
pub mod range_map;
pub mod tree;
