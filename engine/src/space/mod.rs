// SPDX-License-Identifier: GPL-2.0

//! Layer 3, free space (T4): a bitmap cut into pages, summarised by a tree
//! of summary pages up to one top page whose CRC the superblock holds.
//!
//! Rules:
//!
//! - Only the summaries are resident; bitmap and summary pages are read on
//!   demand through a bounded [`page_cache::PageCache`] and verified against
//!   their parent's content CRC ([`summary`]).
//! - Frees are deferred: a block freed in checkpoint generation *G* stays
//!   allocated until *G* is durable, so the committed state never points at
//!   a reused block ([`allocator`]).
//! - There are two copies of the allocation map; generation *G* writes copy
//!   *G* mod 2 while the live copy stays untouched ([`map_io`]).
//! - The same allocator hands out stripe ids on the capacity tier.

pub mod allocator;
pub mod bitmap;
pub mod geometry;
pub mod map_io;
pub mod page_cache;
pub mod summary;
