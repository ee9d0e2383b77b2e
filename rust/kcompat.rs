// SPDX-License-Identifier: GPL-2.0

//! The kernel's allocation names, under the paths the engine uses.
//!
//! The engine refers to `crate::kcompat::{KVec, KBox, GFP_KERNEL, ...}`; in
//! userspace `engine/src/kcompat.rs` provides stand-ins with the same
//! signatures, and here they are the real `kernel::alloc` types.

#![allow(unused_imports)]

pub(crate) use kernel::alloc::flags::{GFP_KERNEL, GFP_NOWAIT};
pub(crate) use kernel::alloc::{AllocError, Flags, KBox, KVVec, KVec};

/// The engine's error as a kernel errno (`EUCLEAN` for corruption, `EIO`
/// for I/O, `ENOSPC` ...).
pub(crate) fn engine_errno(e: crate::error::Error) -> kernel::error::Error {
    kernel::error::Error::from_errno(-e.to_errno())
}

/// Engine errors print in kernel messages as they do in userspace.
impl kernel::fmt::Display for crate::error::Error {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}
