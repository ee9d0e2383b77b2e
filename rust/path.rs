// SPDX-License-Identifier: GPL-2.0

//! Device paths written to configfs attributes.

use kernel::ffi::c_char;

use kernel::prelude::*;
use kernel::str::BStr;

/// Longest path accepted for one device, in bytes.
pub(crate) const MAX_PATH_LEN: usize = 255;

/// An absolute device path: non-empty, at most [`MAX_PATH_LEN`] bytes, no
/// white space, no NUL.
///
/// # Invariants
///
/// `bytes` holds the path followed by exactly one NUL byte, its last.
pub(crate) struct DevPath {
    bytes: KVec<u8>,
}

impl DevPath {
    /// Validates one path token. `ENAMETOOLONG` if it is too long, `EINVAL`
    /// if it is empty, relative or holds a NUL byte.
    pub(crate) fn parse(token: &[u8]) -> Result<Self> {
        if token.len() > MAX_PATH_LEN {
            return Err(ENAMETOOLONG);
        }
        if token.first() != Some(&b'/') || token.contains(&0) {
            return Err(EINVAL);
        }
        let mut bytes = KVec::with_capacity(token.len() + 1, GFP_KERNEL)?;
        bytes.extend_from_slice(token, GFP_KERNEL)?;
        bytes.push(0, GFP_KERNEL)?;
        // INVARIANT: `token` holds no NUL and one NUL was appended.
        Ok(Self { bytes })
    }

    /// The path as a NUL-terminated C string.
    pub(crate) fn as_char_ptr(&self) -> *const c_char {
        self.bytes.as_ptr().cast()
    }

    /// The path without its NUL, for messages.
    pub(crate) fn as_bstr(&self) -> &BStr {
        let len = self.bytes.len() - 1;
        BStr::from_bytes(&self.bytes[..len])
    }
}

/// Splits an attribute write into white-space separated tokens.
pub(crate) fn tokens(page: &[u8]) -> impl Iterator<Item = &[u8]> {
    page.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty())
}
