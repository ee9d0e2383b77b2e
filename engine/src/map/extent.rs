// SPDX-License-Identifier: GPL-2.0

//! Extents: the values of the LBA map.
//!
//! An extent says where `len` consecutive logical blocks live: `len`
//! consecutive physical blocks from [`Extent::paddr`], in one device or one
//! stripe. Overwrites cut extents ([`Extent::slice`]) and adjacent writes
//! glue them ([`Extent::merge`]); that is what keeps the map small for
//! sequential writes.
//!
//! The data checksum is the CRC32C of the extent's whole data as stored.
//! Gluing two checksummed extents combines their checksums exactly
//! ([`crc32c_combine`]); cutting an extent cannot, so a piece loses
//! [`EXTENT_CSUM`] (the data layer's own per-block headers still cover it).

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c_combine;
use crate::io::device::BLOCK_SIZE;
use crate::io::paddr::PAddr;

/// Flag: [`Extent::csum`] is the CRC32C of the extent's data.
pub const EXTENT_CSUM: u32 = 1 << 0;
/// Flag: the data is ciphertext (AES-XTS with the volume's fixed tweak, T3).
pub const EXTENT_ENCRYPTED: u32 = 1 << 1;
/// Flag: the block before [`Extent::paddr`] is the data log entry header
/// this extent's data was written with (see `crate::data::datalog`). A slice
/// keeps it only if it starts where the extent starts, so exactly one
/// piece of an entry owns its header, and whoever frees that piece frees
/// the header too.
pub const EXTENT_HEADED: u32 = 1 << 2;
/// Every flag this format version knows; others must be zero.
pub const EXTENT_KNOWN_FLAGS: u32 = EXTENT_CSUM | EXTENT_ENCRYPTED | EXTENT_HEADED;
/// Longest extent, in blocks (4 GiB): bounds merging and every range walk.
pub const MAX_EXTENT_LEN: u32 = 1 << 20;

/// Where a run of logical blocks lives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Physical address of the first block.
    pub paddr: PAddr,
    /// Length in blocks, 1..=[`MAX_EXTENT_LEN`].
    pub len: u32,
    /// CRC32C of the data, meaningful with [`EXTENT_CSUM`].
    pub csum: u32,
    /// `EXTENT_*` flags.
    pub flags: u32,
}

impl Extent {
    /// Checks the ranges of a caller's or a decoded extent; errors name
    /// `block`, the block it was read from, if any.
    pub fn validate(&self, block: Option<u64>) -> Result {
        let corrupt = |what| Error::Corrupt { block, what };
        if self.len == 0 || self.len > MAX_EXTENT_LEN {
            return Err(corrupt("extent length"));
        }
        if self.flags & !EXTENT_KNOWN_FLAGS != 0 {
            return Err(corrupt("extent flags"));
        }
        if self.paddr.offset_by(u64::from(self.len) - 1).is_none() {
            return Err(corrupt("extent crosses its device or stripe"));
        }
        Ok(())
    }

    /// The piece `skip..skip + len` of this extent. The piece keeps the
    /// checksum only if it is the whole extent, and [`EXTENT_HEADED`] only
    /// if it starts where the extent starts.
    pub fn slice(&self, skip: u32, len: u32) -> Result<Self> {
        let end = skip.checked_add(len).ok_or(Error::InvalidArgument)?;
        if len == 0 || end > self.len {
            return Err(Error::InvalidArgument);
        }
        if skip == 0 && len == self.len {
            return Ok(*self);
        }
        Ok(Self {
            paddr: self
                .paddr
                .offset_by(u64::from(skip))
                .ok_or(Error::InvalidArgument)?,
            len,
            csum: 0,
            flags: self.flags & !EXTENT_CSUM & if skip == 0 { !0 } else { !EXTENT_HEADED },
        })
    }

    /// `self` followed by `next` as one extent, if `next` starts where
    /// `self` ends physically, the flags agree and the result is not too long.
    pub fn merge(&self, next: &Extent) -> Option<Self> {
        let len = self.len.checked_add(next.len)?;
        if len > MAX_EXTENT_LEN
            || self.flags != next.flags
            || self.paddr.offset_by(u64::from(self.len)) != Some(next.paddr)
        {
            return None;
        }
        let csum = if self.flags & EXTENT_CSUM != 0 {
            crc32c_combine(
                self.csum,
                next.csum,
                u64::from(next.len) * BLOCK_SIZE as u64,
            )
        } else {
            0
        };
        Some(Self {
            paddr: self.paddr,
            len,
            csum,
            flags: self.flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_and_merge() {
        let e = Extent {
            paddr: PAddr::perf(100).unwrap(),
            len: 10,
            csum: 5,
            flags: EXTENT_CSUM,
        };
        let a = e.slice(0, 4).unwrap();
        let b = e.slice(4, 6).unwrap();
        assert_eq!(a.flags, 0);
        assert_eq!(b.paddr, PAddr::perf(104).unwrap());
        assert_eq!(a.merge(&b).map(|m| m.len), Some(10));
        assert_eq!(b.merge(&a), None);
        assert_eq!(e.slice(0, 10), Ok(e));
        assert!(e.slice(5, 6).is_err());
        assert!(e.slice(0, 0).is_err());
    }

    #[test]
    fn only_the_first_piece_owns_the_header() {
        let e = Extent {
            paddr: PAddr::perf(100).unwrap(),
            len: 10,
            csum: 5,
            flags: EXTENT_CSUM | EXTENT_HEADED | EXTENT_ENCRYPTED,
        };
        assert_eq!(
            e.slice(0, 3).unwrap().flags,
            EXTENT_HEADED | EXTENT_ENCRYPTED
        );
        assert_eq!(e.slice(3, 7).unwrap().flags, EXTENT_ENCRYPTED);
        assert_eq!(e.slice(0, 10).unwrap(), e);
        // Two pieces of one entry differ in flags and never glue back.
        assert_eq!(e.slice(0, 3).unwrap().merge(&e.slice(3, 7).unwrap()), None);
    }
}
