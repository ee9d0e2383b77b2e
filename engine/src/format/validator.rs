// SPDX-License-Identifier: GPL-2.0

//! The validator of every metadata block: one [`BlockKind`] per block type,
//! whose [`seal`](BlockKind::seal) prepares a block for writing and whose
//! [`check`](BlockKind::check) is the first thing done to a block read (the
//! two halves of a device-mapper persistent-data block validator,
//! `prepare_for_write` and `check`).
//!
//! Every metadata block starts with the same [`BlockHeader`]: checksum,
//! format version, magic, location. The block type's own fields follow from
//! [`HEADER_SIZE`], its generation or sequence number first; the checksum
//! covers everything after itself to the end of the block
//! ([`CHECKSUMMED`]). A block type lays out its raw header with a
//! `BlockHeader` first ([`BlockHeader::UNSEALED`] until sealed), writes its
//! own fields and seals. A reader checks before it decodes anything else,
//! in the order `doc/FORMAT.md` gives: magic (is this the structure expected
//! here at all), checksum (torn or corrupt), location (a misdirected
//! write), format version; its own field checks come after.

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::format::superblock::{BLOCK_SIZE, FORMAT_VERSION};
use core::mem::{offset_of, size_of};
use core::ops::Range;
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The first bytes of every metadata block, little-endian.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BlockHeader {
    /// 0x00: CRC32C of [`CHECKSUMMED`].
    pub checksum: U32,
    /// 0x04: [`FORMAT_VERSION`].
    pub version: U32,
    /// 0x08: the block type's magic ([`BlockKind::magic`]).
    pub magic: U64,
    /// 0x10: where the block belongs: its own block number on its device,
    /// or for a B-tree node its physical address (raw).
    pub location: U64,
}

/// Bytes of [`BlockHeader`]; a block type's own fields start here.
pub const HEADER_SIZE: usize = 0x18;
/// Bytes of a block the stored checksum covers: all after it.
pub const CHECKSUMMED: Range<usize> = size_of::<U32>()..BLOCK_SIZE;

const _: () = {
    assert!(size_of::<BlockHeader>() == HEADER_SIZE);
    assert!(offset_of!(BlockHeader, checksum) == 0x00);
    assert!(offset_of!(BlockHeader, version) == 0x04);
    assert!(offset_of!(BlockHeader, magic) == 0x08);
    assert!(offset_of!(BlockHeader, location) == 0x10);
    assert!(CHECKSUMMED.start == offset_of!(BlockHeader, version));
};

impl BlockHeader {
    /// All zero: the header of a raw block until [`BlockKind::seal`] fills
    /// it in.
    pub const UNSEALED: BlockHeader = BlockHeader {
        checksum: U32::ZERO,
        version: U32::ZERO,
        magic: U64::ZERO,
        location: U64::ZERO,
    };
}

/// One metadata block type, as its validator sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BlockKind {
    /// The type's magic: eight ASCII bytes read as a little-endian `u64`.
    pub magic: u64,
}

impl BlockKind {
    /// Prepares `block` for writing at `location`: writes the common header
    /// (format version, magic, location), then the checksum. Every other
    /// byte of the block must be in place already, and stay as it is.
    pub fn seal(&self, block: &mut [u8; BLOCK_SIZE], location: u64) {
        let head = BlockHeader {
            checksum: U32::ZERO,
            version: U32::new(FORMAT_VERSION),
            magic: U64::new(self.magic),
            location: U64::new(location),
        };
        block[..HEADER_SIZE].copy_from_slice(head.as_bytes());
        let sum = crc32c(&block[CHECKSUMMED]);
        block[..CHECKSUMMED.start].copy_from_slice(&sum.to_le_bytes());
    }

    /// Checks block `buf`, read from where `location` says (a block number,
    /// or a B-tree node's physical address); errors name `block`.
    pub fn check(&self, buf: &[u8], block: u64, location: u64) -> Result {
        let buf: &[u8; BLOCK_SIZE] = buf.try_into().map_err(|_| Error::InvalidArgument)?;
        let (head, _) = BlockHeader::ref_from_prefix(buf).map_err(|_| Error::InvalidArgument)?;
        if head.magic.get() != self.magic {
            return Err(Error::BadMagic { block });
        }
        if head.checksum.get() != crc32c(&buf[CHECKSUMMED]) {
            return Err(Error::BadChecksum { block });
        }
        if head.location.get() != location {
            return Err(Error::WrongLocation {
                block,
                recorded: head.location.get(),
            });
        }
        if head.version.get() != FORMAT_VERSION {
            return Err(Error::BadVersion {
                found: head.version.get(),
            });
        }
        Ok(())
    }

    /// Whether `buf` carries this type's magic: lets a reader that accepts
    /// one of several types (B-tree leaves and internal nodes) pick the one
    /// to [`check`](Self::check) it as.
    pub fn magic_of(&self, buf: &[u8]) -> bool {
        BlockHeader::ref_from_prefix(buf).is_ok_and(|(head, _)| head.magic.get() == self.magic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: BlockKind = BlockKind {
        magic: u64::from_le_bytes(*b"VTTESTBK"),
    };

    fn sealed() -> [u8; BLOCK_SIZE] {
        let mut buf = [0u8; BLOCK_SIZE];
        for (i, b) in buf[HEADER_SIZE..].iter_mut().enumerate() {
            *b = (i * 31 + 7) as u8;
        }
        KIND.seal(&mut buf, 42);
        buf
    }

    #[test]
    fn seal_writes_the_documented_header() {
        let buf = sealed();
        assert_eq!(&buf[4..8], &FORMAT_VERSION.to_le_bytes());
        assert_eq!(&buf[8..16], b"VTTESTBK");
        assert_eq!(&buf[16..24], &42u64.to_le_bytes());
        // Checked against the crc32c crate, not the engine's own CRC.
        assert_eq!(&buf[..4], &::crc32c::crc32c(&buf[4..]).to_le_bytes());
        assert_eq!(KIND.check(&buf, 7, 42), Ok(()));
    }

    #[test]
    fn each_damage_has_its_own_error_in_order() {
        let buf = sealed();
        let other = BlockKind { magic: 1 };
        assert_eq!(other.check(&buf, 7, 42), Err(Error::BadMagic { block: 7 }));
        let mut torn = buf;
        torn[100] ^= 1;
        assert_eq!(
            KIND.check(&torn, 7, 42),
            Err(Error::BadChecksum { block: 7 })
        );
        // A bad magic is reported before a bad checksum.
        assert_eq!(other.check(&torn, 7, 42), Err(Error::BadMagic { block: 7 }));
        assert_eq!(
            KIND.check(&buf, 7, 43),
            Err(Error::WrongLocation {
                block: 7,
                recorded: 42
            })
        );
        let mut old = buf;
        old[4..8].copy_from_slice(&(FORMAT_VERSION - 1).to_le_bytes());
        let sum = ::crc32c::crc32c(&old[4..]);
        old[..4].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(
            KIND.check(&old, 7, 42),
            Err(Error::BadVersion {
                found: FORMAT_VERSION - 1
            })
        );
        assert_eq!(KIND.check(&buf[..100], 7, 42), Err(Error::InvalidArgument));
        assert!(KIND.magic_of(&buf) && !other.magic_of(&buf) && !KIND.magic_of(&buf[..8]));
    }
}
