// SPDX-License-Identifier: GPL-2.0

//! Layer 6, the LBA map: abortable transactions over a versioned tuple
//! cache (T6) in front of the B-tree, made durable by redo records in the
//! WAL and by checkpoints.
//!
//! Rules:
//!
//! - A transaction's writes are pending tuples seen by it alone; commit
//!   validates optimistically (first committer wins), writes one redo
//!   record and only then makes the tuples visible ([`txn`]). An abort
//!   writes nothing.
//! - Recovery replays the redo records newer than the last checkpoint, so a
//!   write is durable exactly when its redo record is ([`lba_map`]).
//! - Values are [`extent::Extent`]s; gluing keeps their checksum exact,
//!   cutting drops it.

pub mod extent;
pub mod lba_map;
pub mod redo;
pub mod tuple_cache;
pub mod txn;
