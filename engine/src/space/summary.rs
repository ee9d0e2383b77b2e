// SPDX-License-Identifier: GPL-2.0

//! Summary pages of the bitmap summary tree (T4).
//!
//! A summary page at level *k* has one [`Entry`] per page of level *k − 1*:
//! the child's *content CRC*, its free block count and its longest free run.
//! The content CRC of a bitmap page is the CRC32C of all its 4096 bytes; of
//! a summary page, the CRC32C of its entry area (bytes 0x40..0x1000). The
//! content CRC leaves out the header (block number, generation), so a page
//! that did not change has the same content CRC in both allocation-map
//! copies; that is what lets a checkpoint rewrite only the changed pages of
//! a copy. The top page's content CRC is kept in the superblock: the tree
//! verifies from the superblock down.

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::format::validator::{BlockHeader, BlockKind};
use crate::io::device::BLOCK_SIZE;
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `"VTIERSUM"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"VTIERSUM");
/// Bytes before the first entry.
pub const HEADER_SIZE: usize = 0x40;
/// Bytes of one entry.
pub const ENTRY_SIZE: usize = 16;
/// Entries per summary page.
pub const FANOUT: u32 = ((BLOCK_SIZE - HEADER_SIZE) / ENTRY_SIZE) as u32;
/// The summary page's validator.
pub const SUMMARY_PAGE: BlockKind = BlockKind { magic: MAGIC };

/// Header of a summary page, 64 bytes, little-endian.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawHeader {
    /// 0x00: checksum, version, [`MAGIC`], this page's own block number.
    head: BlockHeader,
    /// 0x18: checkpoint generation that wrote this page.
    generation: U64,
    /// 0x20: level in the tree (1 = summarises bitmap pages).
    level: U32,
    /// 0x24: index within its level.
    index: U32,
    /// 0x28: entries in use.
    nr_entries: U32,
    /// 0x2c: allocation-map copy (0 or 1).
    copy: U32,
    /// 0x30: zero.
    reserved: [u8; 16],
}

/// One entry, 16 bytes, little-endian.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawEntry {
    /// +0x0: content CRC of the child page.
    crc: U32,
    /// +0x4: free blocks below the child.
    free: U32,
    /// +0x8: longest free run below the child (never crosses a bitmap page).
    longest: U32,
    /// +0xc: zero.
    reserved: U32,
}

const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_SIZE);
const _: () = assert!(core::mem::size_of::<RawEntry>() == ENTRY_SIZE);
// The offsets `doc/FORMAT.md` gives (Summary page header, entry).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawHeader, head) == 0x00);
    assert!(offset_of!(RawHeader, generation) == 0x18);
    assert!(offset_of!(RawHeader, level) == 0x20);
    assert!(offset_of!(RawHeader, index) == 0x24);
    assert!(offset_of!(RawHeader, nr_entries) == 0x28);
    assert!(offset_of!(RawHeader, copy) == 0x2c);
    assert!(offset_of!(RawHeader, reserved) == 0x30);
};
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawEntry, crc) == 0x0);
    assert!(offset_of!(RawEntry, free) == 0x4);
    assert!(offset_of!(RawEntry, longest) == 0x8);
    assert!(offset_of!(RawEntry, reserved) == 0xc);
};

/// A decoded entry.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Content CRC of the child page.
    pub crc: u32,
    /// Free blocks below the child.
    pub free: u32,
    /// Longest free run below the child.
    pub longest: u32,
}

/// Where a summary page belongs; everything its header must say.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PageId {
    /// Level (≥ 1).
    pub level: u32,
    /// Index within the level.
    pub index: u32,
    /// Allocation-map copy.
    pub copy: u32,
    /// Entries in use.
    pub nr_entries: u32,
}

/// Content CRC of a page: all of a bitmap page, the entry area of a summary page.
pub fn content_crc(page: &[u8], is_summary: bool) -> u32 {
    if is_summary {
        crc32c(&page[HEADER_SIZE..])
    } else {
        crc32c(page)
    }
}

/// Writes `entries` as page `id` of generation `generation` at block `block`.
pub fn encode(
    id: PageId,
    generation: u64,
    block: u64,
    entries: &[Entry],
    out: &mut [u8],
) -> Result {
    let out: &mut [u8; BLOCK_SIZE] = out.try_into().map_err(|_| Error::InvalidArgument)?;
    if entries.len() != id.nr_entries as usize || entries.len() > FANOUT as usize {
        return Err(Error::InvalidArgument);
    }
    out.fill(0);
    for (i, e) in entries.iter().enumerate() {
        let raw = RawEntry {
            crc: U32::new(e.crc),
            free: U32::new(e.free),
            longest: U32::new(e.longest),
            reserved: U32::new(0),
        };
        let off = HEADER_SIZE + i * ENTRY_SIZE;
        out[off..off + ENTRY_SIZE].copy_from_slice(raw.as_bytes());
    }
    let hdr = RawHeader {
        head: BlockHeader::UNSEALED,
        generation: U64::new(generation),
        level: U32::new(id.level),
        index: U32::new(id.index),
        nr_entries: U32::new(id.nr_entries),
        copy: U32::new(id.copy),
        reserved: [0; 16],
    };
    out[..HEADER_SIZE].copy_from_slice(hdr.as_bytes());
    SUMMARY_PAGE.seal(out, block);
    Ok(())
}

/// Verifies summary page `buf` read from `block`: checksum, magic, location,
/// version, that it is page `id`, written no later than `max_generation`,
/// with zero reserved bytes and unused entries, and sane entries.
pub fn verify(buf: &[u8], block: u64, id: PageId, max_generation: u64) -> Result {
    SUMMARY_PAGE.check(buf, block, block)?;
    let hdr = RawHeader::read_from_prefix(buf)
        .map_err(|_| Error::InvalidArgument)?
        .0;
    let corrupt = |what| Error::Corrupt {
        block: Some(block),
        what,
    };
    let got = PageId {
        level: hdr.level.get(),
        index: hdr.index.get(),
        copy: hdr.copy.get(),
        nr_entries: hdr.nr_entries.get(),
    };
    if got != id {
        return Err(corrupt("summary page identity"));
    }
    if hdr.generation.get() > max_generation {
        return Err(corrupt("summary page generation"));
    }
    if hdr.reserved.iter().any(|&b| b != 0) {
        return Err(corrupt("summary page reserved bytes"));
    }
    let used = HEADER_SIZE + id.nr_entries as usize * ENTRY_SIZE;
    if used > BLOCK_SIZE || buf[used..].iter().any(|&b| b != 0) {
        return Err(corrupt("summary page unused entries"));
    }
    for i in 0..id.nr_entries as usize {
        let off = HEADER_SIZE + i * ENTRY_SIZE;
        let raw = RawEntry::read_from_bytes(&buf[off..off + ENTRY_SIZE])
            .map_err(|_| corrupt("summary entry"))?;
        if raw.reserved.get() != 0 || raw.longest.get() > raw.free.get() {
            return Err(corrupt("summary entry"));
        }
    }
    Ok(())
}

/// Entry `i` of a summary page already checked by [`verify`]
/// (a default entry if `i` is out of range).
pub fn entry(buf: &[u8], i: u32) -> Entry {
    let off = HEADER_SIZE + i as usize * ENTRY_SIZE;
    match buf
        .get(off..off + ENTRY_SIZE)
        .map(RawEntry::read_from_bytes)
    {
        Some(Ok(raw)) => Entry {
            crc: raw.crc.get(),
            free: raw.free.get(),
            longest: raw.longest.get(),
        },
        _ => Entry::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> PageId {
        PageId {
            level: 1,
            index: 3,
            copy: 1,
            nr_entries: 2,
        }
    }

    fn page() -> [u8; BLOCK_SIZE] {
        let entries = [
            Entry {
                crc: 1,
                free: 10,
                longest: 5,
            },
            Entry {
                crc: 2,
                free: 0,
                longest: 0,
            },
        ];
        let mut buf = [0u8; BLOCK_SIZE];
        encode(id(), 9, 77, &entries, &mut buf).unwrap();
        buf
    }

    #[test]
    fn round_trip() {
        let buf = page();
        verify(&buf, 77, id(), 9).unwrap();
        assert_eq!(
            entry(&buf, 0),
            Entry {
                crc: 1,
                free: 10,
                longest: 5
            }
        );
        assert_eq!(entry(&buf, 5000), Entry::default());
    }

    #[test]
    fn errors_are_specific() {
        let buf = page();
        assert_eq!(
            verify(&buf, 78, id(), 9),
            Err(Error::WrongLocation {
                block: 78,
                recorded: 77
            })
        );
        assert!(matches!(
            verify(&buf, 77, id(), 8),
            Err(Error::Corrupt { .. })
        ));
        let other = PageId { index: 4, ..id() };
        assert!(matches!(
            verify(&buf, 77, other, 9),
            Err(Error::Corrupt { .. })
        ));
        let mut bad = buf;
        bad[100] ^= 1;
        assert_eq!(
            verify(&bad, 77, id(), 9),
            Err(Error::BadChecksum { block: 77 })
        );
        assert_eq!(
            verify(&[0u8; BLOCK_SIZE], 77, id(), 9),
            Err(Error::BadMagic { block: 77 })
        );
        assert_eq!(verify(&buf[..10], 77, id(), 9), Err(Error::InvalidArgument));
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let good = page();
        for bit in 0..BLOCK_SIZE * 8 {
            let mut buf = good;
            buf[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&buf, 77, id(), 9).is_err(), "bit {bit}");
        }
    }
}
