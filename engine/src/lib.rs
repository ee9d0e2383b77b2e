// SPDX-License-Identifier: GPL-2.0

//! vtier's engine, userspace build.
//!
//! The engine is `no_std`, allocates fallibly and never panics on data read
//! from a device. The same source files are compiled into `vtier.ko`: the
//! module's crate root (`rust/vtier.rs`) mounts each layer below with one
//! `#[path]` line, next to a kernel version of [`kcompat`]. So engine code
//! refers to other layers as `crate::layer::file`, and to the allocation
//! API only through `crate::kcompat`.
//!
//! Adding a file: declare it in its layer's `mod.rs`. Adding a layer:
//! declare it here *and* in `rust/vtier.rs`.
//!
//! The layers, bottom-up (each `mod.rs` states the layer's rules;
//! `doc/FORMAT.md` gives the bytes):
//!
//! - [`io`]: the block-device seam and physical addresses.
//! - [`format`]: CRC32C, the checks every metadata block gets, superblocks.
//! - [`space`] (T4): the allocator, a bitmap under a summary tree.
//! - [`journal`] (T5): the write-ahead log and checkpoint generations.
//! - [`btree`] (T1): the copy-on-write B-tree of extents.
//! - [`map`] (T6): the LBA map, transactions over a versioned tuple cache.
//! - [`stripe`]: the capacity tier's erasure-coded stripes (Reed-Solomon is
//!   `ec/`, reached as [`ec`] in both builds).
//! - [`data`] (T3): the data path, an encrypted data log destaged into
//!   stripes.
//! - [`crypt`] (T3): AES-256-XTS with a fixed tweak, key check values.
//! - [`testing`]: power-cutting device, in-memory node store, tree checker;
//!   not in `vtier.ko`.
//!
//! Beside them: [`error`] (the engine's error type), [`kcompat`] (the
//! kernel's allocation names in userspace), [`kvec`] and [`heap_sort`].

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// Reed-Solomon (`ec/src`), at `crate::ec` as in the kernel crate root.
pub use vtier_ec as ec;

pub mod btree;
pub mod crypt;
pub mod data;
pub mod error;
pub mod format;
pub mod heap_sort;
pub mod io;
pub mod journal;
pub mod kcompat;
pub mod kvec;
pub mod map;
pub mod space;
pub mod stripe;
pub mod testing;
