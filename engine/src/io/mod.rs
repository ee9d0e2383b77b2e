// SPDX-License-Identifier: GPL-2.0

//! Layer 1, devices: the one seam through which the engine does I/O.
//!
//! Rules every layer above relies on:
//!
//! - I/O is in whole [`device::BLOCK_SIZE`] blocks through
//!   [`device::BlockDevice`]; a write is durable only after a later
//!   `flush` has returned, and a write that was not flushed may be lost or
//!   torn at any 512-byte sector boundary by a power cut.
//! - Addresses stored on disk are [`paddr::PAddr`]s: one `u64` that names a
//!   block on the performance tier or in an erasure-coded stripe.
//! - The kernel implements the device with bios (`rust/bdev.rs`); userspace
//!   with memory, files (`file_device`, feature `std`) and, for crash tests,
//!   `crate::testing::fault_device`.

pub mod device;
#[cfg(feature = "std")]
pub mod file_device;
pub mod paddr;
