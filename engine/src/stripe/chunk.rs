// SPDX-License-Identifier: GPL-2.0

//! The header block in front of every chunk of a stripe.
//!
//! A chunk's slot is one header block followed by the chunk's data blocks.
//! The header makes the chunk self-describing: which store (tag), stripe,
//! chunk index and geometry it belongs to, which write of that stripe id
//! (`seq`, shared by the chunks of one stripe write and increasing over the
//! store's life), where it was meant to be written, and the CRC32C of its
//! data. A chunk is *good* only if its header verifies, names what the
//! reader expects, and its data matches the CRC.

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::format::validator::{BlockHeader, BlockKind};
use crate::io::device::BLOCK_SIZE;
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `"VTCHUNK\0"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"VTCHUNK\0");
/// Bytes of the header; the rest of the block is zero.
pub const HEADER_SIZE: usize = 0x40;
/// The chunk header's validator.
pub const CHUNK_HEADER: BlockKind = BlockKind { magic: MAGIC };

/// Chunk header, 64 bytes, little-endian.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawChunk {
    /// 0x00: checksum, version, [`MAGIC`], the block number of this header
    /// on its member.
    head: BlockHeader,
    /// 0x18: write sequence number of the stripe (≥ 1).
    seq: U64,
    /// 0x20: stripe id.
    stripe: U64,
    /// 0x28: store tag (store UUID halves xor-ed).
    tag: U64,
    /// 0x30: data chunks per stripe.
    k: u8,
    /// 0x31: parity chunks per stripe.
    m: u8,
    /// 0x32: this chunk's index (data `0..k`, parity `k..k+m`).
    index: u8,
    /// 0x33: zero.
    reserved: u8,
    /// 0x34: data blocks per chunk.
    chunk_blocks: U32,
    /// 0x38: CRC32C of the chunk's data blocks.
    data_crc: U32,
    /// 0x3c: zero.
    reserved2: U32,
}

const _: () = assert!(core::mem::size_of::<RawChunk>() == HEADER_SIZE);
// The offsets `doc/FORMAT.md` gives (Chunk header).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawChunk, head) == 0x00);
    assert!(offset_of!(RawChunk, seq) == 0x18);
    assert!(offset_of!(RawChunk, stripe) == 0x20);
    assert!(offset_of!(RawChunk, tag) == 0x28);
    assert!(offset_of!(RawChunk, k) == 0x30);
    assert!(offset_of!(RawChunk, m) == 0x31);
    assert!(offset_of!(RawChunk, index) == 0x32);
    assert!(offset_of!(RawChunk, reserved) == 0x33);
    assert!(offset_of!(RawChunk, chunk_blocks) == 0x34);
    assert!(offset_of!(RawChunk, data_crc) == 0x38);
    assert!(offset_of!(RawChunk, reserved2) == 0x3c);
};

/// What a chunk header says.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Store tag.
    pub tag: u64,
    /// Stripe id.
    pub stripe: u64,
    /// Write sequence number of the stripe.
    pub seq: u64,
    /// Data chunks per stripe.
    pub k: u8,
    /// Parity chunks per stripe.
    pub m: u8,
    /// Chunk index.
    pub index: u8,
    /// Data blocks per chunk.
    pub chunk_blocks: u32,
}

/// Fills `slot` (the header block followed by the chunk data) with the
/// header of `h`, written at `block`; the data CRC is computed here.
pub fn seal(slot: &mut [u8], block: u64, h: &ChunkHeader) -> Result {
    if slot.len() != (h.chunk_blocks as usize + 1) * BLOCK_SIZE {
        return Err(Error::InvalidArgument);
    }
    let (hdr, data) = slot
        .split_first_chunk_mut::<BLOCK_SIZE>()
        .ok_or(Error::InvalidArgument)?;
    let raw = RawChunk {
        head: BlockHeader::UNSEALED,
        seq: U64::new(h.seq),
        stripe: U64::new(h.stripe),
        tag: U64::new(h.tag),
        k: h.k,
        m: h.m,
        index: h.index,
        reserved: 0,
        chunk_blocks: U32::new(h.chunk_blocks),
        data_crc: U32::new(crc32c(data)),
        reserved2: U32::new(0),
    };
    hdr.fill(0);
    hdr[..HEADER_SIZE].copy_from_slice(raw.as_bytes());
    CHUNK_HEADER.seal(hdr, block);
    Ok(())
}

/// Verifies the chunk in `slot`, read from `block`, against what the reader
/// expects (`want`, whose `seq` is ignored); returns the chunk's `seq`.
/// Checks: magic, checksum, location, version, then tag, stripe, index and
/// geometry, zero reserved bytes, and the data CRC.
pub fn verify(slot: &[u8], block: u64, want: &ChunkHeader) -> Result<u64> {
    if slot.len() != (want.chunk_blocks as usize + 1) * BLOCK_SIZE {
        return Err(Error::InvalidArgument);
    }
    let (hdr, data) = slot.split_at(BLOCK_SIZE);
    CHUNK_HEADER.check(hdr, block, block)?;
    let raw = RawChunk::read_from_prefix(hdr)
        .map_err(|_| Error::InvalidArgument)?
        .0;
    let corrupt = |what| Error::Corrupt {
        block: Some(block),
        what,
    };
    if raw.tag.get() != want.tag {
        return Err(corrupt("chunk of another store"));
    }
    if raw.stripe.get() != want.stripe || raw.index != want.index {
        return Err(corrupt("chunk of another stripe or position"));
    }
    if raw.k != want.k || raw.m != want.m || raw.chunk_blocks.get() != want.chunk_blocks {
        return Err(corrupt("chunk geometry"));
    }
    if raw.seq.get() == 0
        || raw.reserved != 0
        || raw.reserved2.get() != 0
        || hdr[HEADER_SIZE..].iter().any(|&b| b != 0)
    {
        return Err(corrupt("chunk header reserved bytes"));
    }
    if crc32c(data) != raw.data_crc.get() {
        return Err(Error::BadChecksum { block });
    }
    Ok(raw.seq.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr() -> ChunkHeader {
        ChunkHeader {
            tag: 0x1234,
            stripe: 7,
            seq: 99,
            k: 4,
            m: 2,
            index: 5,
            chunk_blocks: 2,
        }
    }

    #[test]
    fn round_trip_and_every_bit_flip_caught() {
        let mut slot = [0u8; 3 * BLOCK_SIZE];
        for (i, b) in slot[BLOCK_SIZE..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        seal(&mut slot, 500, &hdr()).unwrap();
        assert_eq!(verify(&slot, 500, &hdr()), Ok(99));
        assert_eq!(
            verify(&slot, 501, &hdr()),
            Err(Error::WrongLocation {
                block: 501,
                recorded: 500
            })
        );
        for want in [
            ChunkHeader { tag: 1, ..hdr() },
            ChunkHeader { stripe: 8, ..hdr() },
            ChunkHeader { index: 4, ..hdr() },
            ChunkHeader { m: 3, ..hdr() },
        ] {
            assert!(matches!(
                verify(&slot, 500, &want),
                Err(Error::Corrupt { .. })
            ));
        }
        for bit in (0..slot.len() * 8).step_by(61) {
            let mut bad = slot;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&bad, 500, &hdr()).is_err(), "bit {bit}");
        }
        assert!(verify(&[0u8; 3 * BLOCK_SIZE], 500, &hdr()).is_err());
        assert_eq!(
            verify(&slot[..BLOCK_SIZE], 500, &hdr()),
            Err(Error::InvalidArgument)
        );
    }
}
