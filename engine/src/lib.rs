// SPDX-License-Identifier: GPL-2.0

//! vtier's metadata engine, userspace build.
//!
//! The engine is `no_std`, allocates fallibly and never panics on data read
//! from a device. The same source files are compiled into `vtier.ko`: the
//! module's crate root (`rust/vtier.rs`) declares each engine module with a
//! `#[path]` attribute, next to a kernel version of [`kcompat`]. So every
//! engine module refers to its siblings as `crate::name`, and to the
//! allocation API only through `crate::kcompat`.
//!
//! Adding a module: declare it here *and* in `rust/vtier.rs`.
//!
//! Lower layers, bottom-up (see `doc/FORMAT.md` for the bytes):
//!
//! - [`device::BlockDevice`]: the I/O seam (whole 4096-byte blocks, read,
//!   write, flush). [`device::MemDevice`], `file_device::FileDevice`
//!   (feature `std`), [`fault_device::FaultDevice`] (power cuts, torn and
//!   failing writes) in userspace; bios in the kernel.
//! - [`allocator::Allocator`] (T4): bitmap pages under a summary tree;
//!   `alloc`, `alloc_extent` (near a hint), deferred `free`, `reserve`;
//!   on-disk side in [`alloc_io`], [`summary`], [`bitmap`], [`alloc_geom`].
//! - [`wal::Wal`] (T5): the write-ahead log ([`wal_block`] for its blocks).
//! - [`checkpoint::Volume`] (T5): superblocks, allocator and WAL of the
//!   performance device tied together: `format`, `open` + `replay`
//!   (recovery), `append`, `commit`, `checkpoint(roots)`.
//! - [`stripe_store::StripeStore`] (capacity tier): erasure-coded stripes of
//!   `k` data + `m` parity chunks across the capacity devices, written whole;
//!   degraded reads, rebuild and scrub in [`stripe_repair`], placement in
//!   [`stripe_geom`], on-disk headers in [`stripe_chunk`] and [`stripe_meta`];
//!   Reed-Solomon is `ec/`, reached as [`ec`] in both builds.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// Reed-Solomon (`ec/src`), at `crate::ec` as in the kernel crate root.
pub use vtier_ec as ec;

pub mod alloc_geom;
pub mod alloc_io;
pub mod allocator;
pub mod bitmap;
pub mod block_check;
pub mod btree;
pub mod btree_cache;
pub mod btree_check;
pub mod btree_devstore;
pub mod btree_extent;
pub mod btree_map;
pub mod btree_memstore;
pub mod btree_move;
pub mod btree_node;
pub mod btree_tm;
pub mod checkpoint;
pub mod cipher;
pub mod cipher_kat;
#[cfg(feature = "std")]
pub mod cipher_soft;
pub mod crc32c;
pub mod datalog;
pub mod device;
pub mod encryption;
pub mod error;
pub mod fault_device;
#[cfg(feature = "std")]
pub mod file_device;
pub mod heap_sort;
pub mod kcompat;
pub mod paddr;
pub mod page_cache;
pub mod store;
pub mod stripe_chunk;
pub mod stripe_geom;
pub mod stripe_member;
pub mod stripe_meta;
pub mod stripe_repair;
pub mod stripe_store;
pub mod stripe_victims;
pub mod summary;
pub mod superblock;
pub mod txn;
pub mod txn_cache;
pub mod txn_map;
pub mod txn_redo;
pub mod wal;
pub mod wal_block;
pub mod xts_vectors;
