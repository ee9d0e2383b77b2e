// SPDX-License-Identifier: GPL-2.0

//! WAL blocks and the records in them (T5).
//!
//! A WAL block is a 64-byte header followed by whole records, never split
//! across blocks. Each record has its own CRC32C and sequence number;
//! record sequence numbers are contiguous over the whole log, block
//! sequence numbers too. A block is written once and never rewritten (a
//! commit seals the block it filled), so a torn write can only damage
//! blocks that no completed flush covered.

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::format::validator::{BlockHeader, BlockKind};
use crate::io::device::BLOCK_SIZE;
use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `"VTIERWAL"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"VTIERWAL");
/// Bytes before the first record.
pub const HEADER_SIZE: usize = 0x40;
/// Bytes of a record header.
pub const RECORD_HEADER: usize = 16;
/// Largest record payload.
pub const MAX_PAYLOAD: usize = BLOCK_SIZE - HEADER_SIZE - RECORD_HEADER;
/// Record kind of a checkpoint end marker (payload: generation, u64 LE).
pub const KIND_END: u8 = 0xff;
/// The WAL block's validator.
pub const WAL_BLOCK: BlockKind = BlockKind { magic: MAGIC };

/// WAL block header, 64 bytes, little-endian.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawHeader {
    /// 0x00: checksum, version, [`MAGIC`], this block's own block number.
    head: BlockHeader,
    /// 0x18: block sequence number.
    seq: U64,
    /// 0x20: generation of the checkpoint this block follows.
    generation: U64,
    /// 0x28: records in this block.
    nr_records: U32,
    /// 0x2c: bytes of the record area in use.
    used: U32,
    /// 0x30: sequence number of the first record.
    first_record: U64,
    /// 0x38: volume tag (volume UUID halves xor-ed): rejects blocks of
    /// an earlier format of the same device.
    volume_tag: U64,
}

/// Record header, 16 bytes, little-endian; the payload follows, then zero
/// padding to a multiple of 8 bytes.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawRecord {
    /// +0x0: CRC32C of bytes +0x4 .. end of payload.
    checksum: U32,
    /// +0x4: payload bytes.
    len: U16,
    /// +0x6: record kind (1..=0xfe for callers, [`KIND_END`]).
    kind: u8,
    /// +0x7: zero.
    reserved: u8,
    /// +0x8: record sequence number.
    seq: U64,
}

const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_SIZE);
const _: () = assert!(core::mem::size_of::<RawRecord>() == RECORD_HEADER);
// The offsets `doc/FORMAT.md` gives (WAL block header, record).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawHeader, head) == 0x00);
    assert!(offset_of!(RawHeader, seq) == 0x18);
    assert!(offset_of!(RawHeader, generation) == 0x20);
    assert!(offset_of!(RawHeader, nr_records) == 0x28);
    assert!(offset_of!(RawHeader, used) == 0x2c);
    assert!(offset_of!(RawHeader, first_record) == 0x30);
    assert!(offset_of!(RawHeader, volume_tag) == 0x38);
};
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawRecord, checksum) == 0x0);
    assert!(offset_of!(RawRecord, len) == 0x4);
    assert!(offset_of!(RawRecord, kind) == 0x6);
    assert!(offset_of!(RawRecord, reserved) == 0x7);
    assert!(offset_of!(RawRecord, seq) == 0x8);
};

/// What a verified WAL block says about itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Block sequence number.
    pub seq: u64,
    /// Generation of the checkpoint the block follows.
    pub generation: u64,
    /// Records in the block.
    pub nr_records: u32,
    /// Sequence number of the first record.
    pub first_record: u64,
}

/// One record of a verified block.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Kind.
    pub kind: u8,
    /// Sequence number.
    pub seq: u64,
    /// Payload.
    pub payload: &'a [u8],
}

/// Space a record of `len` payload bytes takes in a block.
pub fn record_size(len: usize) -> usize {
    (RECORD_HEADER + len).next_multiple_of(8)
}

/// Appends record (`kind`, `seq`, `payload`) at byte `at` of block `buf`
/// (which must have room; see [`record_size`]); returns the new end.
pub fn put_record(buf: &mut [u8], at: usize, kind: u8, seq: u64, payload: &[u8]) -> Result<usize> {
    let size = record_size(payload.len());
    if payload.len() > MAX_PAYLOAD || at < HEADER_SIZE || at + size > buf.len() {
        return Err(Error::InvalidArgument);
    }
    let raw = RawRecord {
        checksum: U32::new(0),
        len: U16::new(payload.len() as u16),
        kind,
        reserved: 0,
        seq: U64::new(seq),
    };
    let rec = &mut buf[at..at + size];
    rec.fill(0);
    rec[..RECORD_HEADER].copy_from_slice(raw.as_bytes());
    rec[RECORD_HEADER..RECORD_HEADER + payload.len()].copy_from_slice(payload);
    let sum = crc32c(&rec[4..RECORD_HEADER + payload.len()]);
    rec[..4].copy_from_slice(&sum.to_le_bytes());
    Ok(at + size)
}

/// Fills in the header of a block whose records occupy bytes
/// `HEADER_SIZE .. used_end`, and its checksum.
pub fn seal(buf: &mut [u8], block: u64, info: BlockInfo, used_end: usize, tag: u64) -> Result {
    let buf: &mut [u8; BLOCK_SIZE] = buf.try_into().map_err(|_| Error::InvalidArgument)?;
    if !(HEADER_SIZE..=BLOCK_SIZE).contains(&used_end) {
        return Err(Error::InvalidArgument);
    }
    buf[used_end..].fill(0);
    let hdr = RawHeader {
        head: BlockHeader::UNSEALED,
        seq: U64::new(info.seq),
        generation: U64::new(info.generation),
        nr_records: U32::new(info.nr_records),
        used: U32::new((used_end - HEADER_SIZE) as u32),
        first_record: U64::new(info.first_record),
        volume_tag: U64::new(tag),
    };
    buf[..HEADER_SIZE].copy_from_slice(hdr.as_bytes());
    WAL_BLOCK.seal(buf, block);
    Ok(())
}

/// Verifies WAL block `buf` read from `block` of a volume with tag `tag`:
/// checksum, magic, location, version, tag, and every record (checksum,
/// contiguous sequence numbers, zero padding and unused bytes).
pub fn verify(buf: &[u8], block: u64, tag: u64) -> Result<BlockInfo> {
    WAL_BLOCK.check(buf, block, block)?;
    let hdr = RawHeader::read_from_prefix(buf)
        .map_err(|_| Error::InvalidArgument)?
        .0;
    let corrupt = |what| Error::Corrupt {
        block: Some(block),
        what,
    };
    if hdr.volume_tag.get() != tag {
        return Err(corrupt("WAL block of another volume"));
    }
    let info = BlockInfo {
        seq: hdr.seq.get(),
        generation: hdr.generation.get(),
        nr_records: hdr.nr_records.get(),
        first_record: hdr.first_record.get(),
    };
    let end = HEADER_SIZE
        .checked_add(hdr.used.get() as usize)
        .filter(|&e| e <= BLOCK_SIZE)
        .ok_or(corrupt("WAL block used bytes"))?;
    let mut n = 0u32;
    let mut at = HEADER_SIZE;
    while at < end {
        let rec = record_at(buf, at, end).ok_or(corrupt("WAL record"))?;
        if rec.seq != info.first_record.wrapping_add(u64::from(n)) {
            return Err(corrupt("WAL record sequence"));
        }
        at += record_size(rec.payload.len());
        n += 1;
    }
    if n != info.nr_records || buf[end..].iter().any(|&b| b != 0) {
        return Err(corrupt("WAL block record count"));
    }
    Ok(info)
}

/// The record at byte `at` if it is whole, checksummed and padded with zeros.
fn record_at(buf: &[u8], at: usize, end: usize) -> Option<Record<'_>> {
    let raw = RawRecord::read_from_prefix(buf.get(at..end)?).ok()?.0;
    let len = raw.len.get() as usize;
    let size = record_size(len);
    let rec = buf.get(at..at.checked_add(size)?)?;
    if at + size > end || raw.reserved != 0 || raw.kind == 0 || len > MAX_PAYLOAD {
        return None;
    }
    if raw.checksum.get() != crc32c(&rec[4..RECORD_HEADER + len]) {
        return None;
    }
    if rec[RECORD_HEADER + len..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(Record {
        kind: raw.kind,
        seq: raw.seq.get(),
        payload: &rec[RECORD_HEADER..RECORD_HEADER + len],
    })
}

/// The records of a block that passed [`verify`], in order.
pub fn records(buf: &[u8]) -> impl Iterator<Item = Record<'_>> {
    let used = RawHeader::read_from_prefix(buf).map_or(0, |(h, _)| h.used.get() as usize);
    let end = (HEADER_SIZE + used).min(buf.len());
    let mut at = HEADER_SIZE;
    core::iter::from_fn(move || {
        let rec = record_at(buf, at, end)?;
        at += record_size(rec.payload.len());
        Some(rec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> [u8; BLOCK_SIZE] {
        let mut buf = [0u8; BLOCK_SIZE];
        let mut at = HEADER_SIZE;
        at = put_record(&mut buf, at, 1, 10, b"hello").unwrap();
        at = put_record(&mut buf, at, 2, 11, &[7u8; 100]).unwrap();
        let info = BlockInfo {
            seq: 5,
            generation: 3,
            nr_records: 2,
            first_record: 10,
        };
        seal(&mut buf, 40, info, at, 99).unwrap();
        buf
    }

    #[test]
    fn round_trip() {
        let buf = block();
        let info = verify(&buf, 40, 99).unwrap();
        assert_eq!(info.seq, 5);
        let recs: alloc::vec::Vec<_> = records(&buf).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].kind, recs[0].seq, recs[0].payload),
            (1, 10, &b"hello"[..])
        );
        assert_eq!(recs[1].payload, &[7u8; 100]);
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let good = block();
        for bit in 0..BLOCK_SIZE * 8 {
            let mut buf = good;
            buf[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&buf, 40, 99).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn wrong_place_or_volume() {
        let buf = block();
        assert_eq!(
            verify(&buf, 41, 99),
            Err(Error::WrongLocation {
                block: 41,
                recorded: 40
            })
        );
        assert!(matches!(verify(&buf, 40, 98), Err(Error::Corrupt { .. })));
        assert_eq!(verify(&buf[..8], 40, 99), Err(Error::InvalidArgument));
    }

    #[test]
    fn full_block_and_oversized_record() {
        let mut buf = [0u8; BLOCK_SIZE];
        let at = put_record(&mut buf, HEADER_SIZE, 1, 0, &[1u8; MAX_PAYLOAD]).unwrap();
        assert_eq!(at, BLOCK_SIZE);
        assert!(put_record(&mut buf, HEADER_SIZE, 1, 0, &[1u8; MAX_PAYLOAD + 1]).is_err());
    }
}
