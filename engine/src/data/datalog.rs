// SPDX-License-Identifier: GPL-2.0

//! Data log entries on the performance tier (T3).
//!
//! Every write to a vtier device lands as one *entry*: a header block
//! followed by the data blocks as stored (ciphertext on an encrypted
//! volume, encrypted once with the volume's fixed tweak). The header names
//! the logical blocks, the entry's sequence number (the redo record that
//! maps it), the key that encrypted it and the CRC32C of the stored data,
//! so every entry can be verified on its own, offline too.
//!
//! Entries are placed by the allocator, one after the other while space
//! allows (the allocation hint follows the previous entry), and reached
//! through the LBA map: the map's extent points at the first data block
//! and carries [`EXTENT_HEADED`](crate::map::extent::EXTENT_HEADED). An
//! entry becomes part of the volume when the redo record mapping it is
//! durable; the WAL commits flush the data first. After a crash, an entry
//! whose record did not reach the WAL is not in the map and its space is
//! free again: the torn tail of the data log is discarded exactly as the
//! WAL's is.

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::format::validator::{BlockHeader, BlockKind};
use crate::io::device::BLOCK_SIZE;
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `"VTIERLOG"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"VTIERLOG");
/// Most data blocks in one entry (1 MiB); longer writes take several.
pub const MAX_ENTRY_BLOCKS: u32 = 256;
/// Entry flag: the data is AES-XTS ciphertext.
pub const ENTRY_ENCRYPTED: u32 = 1 << 0;
/// Every entry flag this format version knows.
const KNOWN_FLAGS: u32 = ENTRY_ENCRYPTED;
/// The entry header's validator.
pub const LOG_HEADER: BlockKind = BlockKind { magic: MAGIC };

/// Header block of an entry: these 64 bytes, little-endian, then zeros.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawEntry {
    /// 0x00: checksum, version, [`MAGIC`], this header block's own block
    /// number.
    head: BlockHeader,
    /// 0x18: sequence number of the redo record that maps the entry.
    seq: U64,
    /// 0x20: first logical block.
    lba: U64,
    /// 0x28: data blocks that follow, 1 ..= [`MAX_ENTRY_BLOCKS`].
    nr_blocks: U32,
    /// 0x2c: the key that encrypted the data (the first four bytes of its
    /// key check value, little-endian); 0 when not encrypted.
    key_id: U32,
    /// 0x30: CRC32C of the data blocks as stored.
    data_crc: U32,
    /// 0x34: `ENTRY_*` flags.
    flags: U32,
    /// 0x38: volume tag (as in WAL blocks).
    volume_tag: U64,
}

/// Size of [`RawEntry`].
pub const HEADER_SIZE: usize = 0x40;
const _: () = assert!(core::mem::size_of::<RawEntry>() == HEADER_SIZE);
// The offsets `doc/FORMAT.md` gives (Data log entries, header block).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawEntry, head) == 0x00);
    assert!(offset_of!(RawEntry, seq) == 0x18);
    assert!(offset_of!(RawEntry, lba) == 0x20);
    assert!(offset_of!(RawEntry, nr_blocks) == 0x28);
    assert!(offset_of!(RawEntry, key_id) == 0x2c);
    assert!(offset_of!(RawEntry, data_crc) == 0x30);
    assert!(offset_of!(RawEntry, flags) == 0x34);
    assert!(offset_of!(RawEntry, volume_tag) == 0x38);
};

/// A decoded, verified entry header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number of the redo record that maps the entry.
    pub seq: u64,
    /// First logical block.
    pub lba: u64,
    /// Data blocks.
    pub nr_blocks: u32,
    /// Key id (0: not encrypted).
    pub key_id: u32,
    /// CRC32C of the data as stored.
    pub data_crc: u32,
    /// `ENTRY_*` flags.
    pub flags: u32,
}

/// Encodes the header of `entry`, to be written at block `block` of a
/// volume with tag `tag`, into `out`.
pub fn encode(entry: &Entry, block: u64, tag: u64, out: &mut [u8]) -> Result {
    let out: &mut [u8; BLOCK_SIZE] = out.try_into().map_err(|_| Error::InvalidArgument)?;
    if entry.nr_blocks == 0 || entry.nr_blocks > MAX_ENTRY_BLOCKS || entry.flags & !KNOWN_FLAGS != 0
    {
        return Err(Error::InvalidArgument);
    }
    let raw = RawEntry {
        head: BlockHeader::UNSEALED,
        seq: U64::new(entry.seq),
        lba: U64::new(entry.lba),
        nr_blocks: U32::new(entry.nr_blocks),
        key_id: U32::new(entry.key_id),
        data_crc: U32::new(entry.data_crc),
        flags: U32::new(entry.flags),
        volume_tag: U64::new(tag),
    };
    out.fill(0);
    out[..HEADER_SIZE].copy_from_slice(raw.as_bytes());
    LOG_HEADER.seal(out, block);
    Ok(())
}

/// Verifies the header block `buf` read from `block` of a volume with tag
/// `tag`: checksum, magic, location, version, tag, ranges, zero padding.
pub fn decode(buf: &[u8], block: u64, tag: u64) -> Result<Entry> {
    LOG_HEADER.check(buf, block, block)?;
    let (raw, rest) = RawEntry::read_from_prefix(buf).map_err(|_| Error::InvalidArgument)?;
    let corrupt = |what| Error::Corrupt {
        block: Some(block),
        what,
    };
    if raw.volume_tag.get() != tag {
        return Err(corrupt("data log entry of another volume"));
    }
    let entry = Entry {
        seq: raw.seq.get(),
        lba: raw.lba.get(),
        nr_blocks: raw.nr_blocks.get(),
        key_id: raw.key_id.get(),
        data_crc: raw.data_crc.get(),
        flags: raw.flags.get(),
    };
    if entry.nr_blocks == 0 || entry.nr_blocks > MAX_ENTRY_BLOCKS {
        return Err(corrupt("data log entry length"));
    }
    if entry.flags & !KNOWN_FLAGS != 0 {
        return Err(corrupt("data log entry flags"));
    }
    if (entry.flags & ENTRY_ENCRYPTED != 0) != (entry.key_id != 0) {
        return Err(corrupt("data log entry key id"));
    }
    if entry.lba.checked_add(u64::from(entry.nr_blocks)).is_none() {
        return Err(corrupt("data log entry logical range"));
    }
    if rest.iter().any(|&b| b != 0) {
        return Err(corrupt("data log entry padding"));
    }
    Ok(entry)
}

/// Checks `data`, the entry's data blocks as read, against its header.
pub fn verify_data(entry: &Entry, data: &[u8], block: u64) -> Result {
    if data.len() != entry.nr_blocks as usize * BLOCK_SIZE {
        return Err(Error::InvalidArgument);
    }
    if crc32c(data) != entry.data_crc {
        return Err(Error::BadChecksum { block });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Entry {
        Entry {
            seq: 7,
            lba: 1000,
            nr_blocks: 3,
            key_id: 0xdead_beef,
            data_crc: 42,
            flags: ENTRY_ENCRYPTED,
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = vec![0u8; BLOCK_SIZE];
        encode(&sample(), 55, 9, &mut buf).unwrap();
        assert_eq!(decode(&buf, 55, 9), Ok(sample()));
    }

    #[test]
    fn rejects_what_does_not_belong() {
        let mut buf = vec![0u8; BLOCK_SIZE];
        encode(&sample(), 55, 9, &mut buf).unwrap();
        assert!(matches!(
            decode(&buf, 56, 9),
            Err(Error::WrongLocation { .. })
        ));
        assert!(matches!(decode(&buf, 55, 8), Err(Error::Corrupt { .. })));
        for at in [0, 5, 0x20, 0x3f, 0x40, 4095] {
            let mut bad = buf.clone();
            bad[at] ^= 0x10;
            assert!(decode(&bad, 55, 9).is_err(), "flip at {at}");
        }
        let mut plain = sample();
        plain.key_id = 0;
        encode(&plain, 55, 9, &mut buf).unwrap();
        assert!(matches!(decode(&buf, 55, 9), Err(Error::Corrupt { .. })));
        let mut long = sample();
        long.nr_blocks = MAX_ENTRY_BLOCKS + 1;
        assert_eq!(encode(&long, 55, 9, &mut buf), Err(Error::InvalidArgument));
    }

    #[test]
    fn data_checksum() {
        let data = vec![3u8; 3 * BLOCK_SIZE];
        let mut e = sample();
        e.data_crc = crc32c(&data);
        assert_eq!(verify_data(&e, &data, 1), Ok(()));
        let mut bad = data.clone();
        bad[5000] ^= 1;
        assert_eq!(
            verify_data(&e, &bad, 1),
            Err(Error::BadChecksum { block: 1 })
        );
        assert_eq!(
            verify_data(&e, &data[..BLOCK_SIZE], 1),
            Err(Error::InvalidArgument)
        );
    }
}
