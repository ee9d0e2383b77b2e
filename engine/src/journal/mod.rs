// SPDX-License-Identifier: GPL-2.0

//! Layer 4, the write-ahead log and checkpoints (T5).
//!
//! Rules:
//!
//! - WAL records are buffered and written by a commit: flush (the data they
//!   name is durable first), write the sealed blocks, flush. WAL blocks are
//!   written once, never rewritten ([`wal`], [`wal_block`]).
//! - Checkpoint generation *G* writes allocation-map copy *G* mod 2 and
//!   superblock copy *G* mod 2, then an end marker for *G* into the WAL; a
//!   superblock copy counts only if its end marker is there
//!   ([`meta_device`]). Recovery replays the records after the newest
//!   complete checkpoint.

pub mod meta_device;
pub mod wal;
pub mod wal_block;
