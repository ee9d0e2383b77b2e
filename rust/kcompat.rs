// SPDX-License-Identifier: GPL-2.0

//! The kernel's allocation names and CRC32C, under the paths the engine
//! uses, and the one boundary between the engine's errors and the kernel's.
//!
//! The engine refers to `crate::kcompat::{KVec, KBox, GFP_KERNEL, crc32c,
//! ...}`; in userspace `engine/src/kcompat.rs` provides stand-ins with the
//! same signatures, and here they are the real `kernel::alloc` types and
//! the kernel's `crc32c()`.
//!
//! Errors cross here and nowhere else, both ways, as `From` conversions:
//! kernel code calling the engine writes `engine_call()?` and gets an errno
//! ([`kernel::error::Error`]); engine code calling the kernel (member I/O,
//! the crypto API) gets a [`crate::error::Error`] the same way.

#![allow(unused_imports)]

pub(crate) use kernel::alloc::flags::{GFP_KERNEL, GFP_NOWAIT};
pub(crate) use kernel::alloc::{AllocError, Flags, KBox, KVVec, KVec};

use kernel::error::code::{EINVAL, EIO, EKEYREJECTED, ENOMEM, ENOSPC, EROFS, EUCLEAN};
use kernel::ffi::c_void;

use crate::error::Error as EngineError;

// `helpers.c`.
unsafe extern "C" {
    fn vtier_crc32c(crc: u32, p: *const c_void, len: usize) -> u32;
}

/// CRC32C of `data` (reflected, initial value and final xor `0xffff_ffff`,
/// as `crate::format::crc32c`), by the kernel's `crc32c()`, which takes and
/// returns the raw register: seeded with `!0` and inverted here.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // SAFETY: `data` is readable for `data.len()` bytes across the call;
    // `crc32c()` only reads them, keeps no pointer and may run in any
    // context.
    !unsafe { vtier_crc32c(!0, data.as_ptr().cast(), data.len()) }
}

/// The engine's error as the errno the kernel reports: `EUCLEAN` for
/// anything found damaged on disk, `EIO` for I/O, `EROFS` once the device
/// has failed, `EKEYREJECTED` for a key that does not match the volume.
impl From<EngineError> for kernel::error::Error {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NoMemory => ENOMEM,
            EngineError::Io => EIO,
            EngineError::BadMagic { .. }
            | EngineError::BadChecksum { .. }
            | EngineError::WrongLocation { .. }
            | EngineError::BadVersion { .. }
            | EngineError::Corrupt { .. } => EUCLEAN,
            EngineError::InvalidArgument => EINVAL,
            EngineError::NoSpace => ENOSPC,
            EngineError::ReadOnly => EROFS,
            EngineError::WrongKey => EKEYREJECTED,
        }
    }
}

/// A kernel error met by the engine (member I/O, the crypto API): `ENOMEM`
/// and `EINVAL` keep their meaning, anything else is an I/O error.
impl From<kernel::error::Error> for EngineError {
    fn from(e: kernel::error::Error) -> Self {
        if e == ENOMEM {
            EngineError::NoMemory
        } else if e == EINVAL {
            EngineError::InvalidArgument
        } else {
            EngineError::Io
        }
    }
}

/// Engine errors print in kernel messages as they do in userspace.
impl kernel::fmt::Display for EngineError {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}
