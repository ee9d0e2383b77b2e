// SPDX-License-Identifier: GPL-2.0

//! The engine's error type.
//!
//! Every failure the engine can meet is a variant here; the kernel glue turns
//! them into errnos (and block statuses) only at its boundary, with the
//! `From` conversions of the module's `kcompat` (`rust/kcompat.rs`), built
//! from the kernel's own error codes. Damage found on disk is never a panic:
//! it is one of the `Bad*` variants (and `Corrupt`), which say what was
//! wrong and where.

use crate::kcompat::AllocError;

/// What went wrong.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// An allocation failed.
    NoMemory,
    /// The device reported an I/O error.
    Io,
    /// A block does not carry the magic of the structure expected there.
    BadMagic {
        /// Block number read.
        block: u64,
    },
    /// A block's checksum does not match its contents (torn or corrupt).
    BadChecksum {
        /// Block number read.
        block: u64,
    },
    /// A block verifies but says it belongs elsewhere (misdirected write).
    WrongLocation {
        /// Block number read.
        block: u64,
        /// Block number recorded inside it.
        recorded: u64,
    },
    /// A structure of a format version this engine does not read.
    BadVersion {
        /// Version found.
        found: u32,
    },
    /// A field is out of its valid range.
    Corrupt {
        /// Block number read; `None` when no one block is at fault (a
        /// count, a record sequence, a stripe that cannot be rebuilt).
        block: Option<u64>,
        /// Which field or rule.
        what: &'static str,
    },
    /// A caller passed an argument outside its valid range.
    InvalidArgument,
    /// No free space left.
    NoSpace,
    /// The device was failed earlier (sticky) and takes no more writes.
    ReadOnly,
    /// The key does not match the volume's key check value.
    WrongKey,
}

/// Result with the engine's [`Error`].
pub type Result<T = ()> = core::result::Result<T, Error>;

impl From<AllocError> for Error {
    fn from(_: AllocError) -> Self {
        Error::NoMemory
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Error::NoMemory => write!(f, "out of memory"),
            Error::Io => write!(f, "I/O error"),
            Error::BadMagic { block } => write!(f, "block {block}: bad magic"),
            Error::BadChecksum { block } => write!(f, "block {block}: checksum mismatch"),
            Error::WrongLocation { block, recorded } => {
                write!(f, "block {block}: claims to be block {recorded}")
            }
            Error::BadVersion { found } => write!(f, "unsupported format version {found}"),
            Error::Corrupt {
                block: Some(block),
                what,
            } => write!(f, "block {block}: corrupt {what}"),
            Error::Corrupt { block: None, what } => write!(f, "corrupt {what}"),
            Error::InvalidArgument => write!(f, "invalid argument"),
            Error::NoSpace => write!(f, "no space left"),
            Error::ReadOnly => write!(f, "device failed, read-only"),
            Error::WrongKey => write!(f, "wrong key (key check value differs)"),
        }
    }
}
