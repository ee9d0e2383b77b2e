// SPDX-License-Identifier: GPL-2.0

//! The stripe store's header: two copies at the start of the store's area
//! on every member.
//!
//! It records the geometry, the member's own position, the store's
//! allocation map root (the [`crate::space::allocator::Allocator`] over stripe
//! ids, whose two copies follow the headers), every member's state, the
//! rebuild cursor and the bound of the write sequence numbers. Header
//! generation *G* goes to copy *G* mod 2 of every member in service; the
//! newest valid header found on any member is the store's state.

use crate::error::{Error, Result};
use crate::format::validator::{BlockHeader, BlockKind};
use crate::io::device::BLOCK_SIZE;
use crate::space::allocator::AllocRoot;
use crate::stripe::geometry::{StripeGeometry, MAX_MEMBERS};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `"VTSTRIPE"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"VTSTRIPE");
/// No rebuild in progress.
pub const NO_REBUILD: u32 = u32::MAX;
/// Persisted member state: in service.
pub const STATE_OK: u8 = 0;
/// Persisted member state: failed or missing; must be rebuilt.
pub const STATE_FAILED: u8 = 1;
/// Persisted member state: a replacement being rebuilt.
pub const STATE_REBUILDING: u8 = 2;
/// The store header's validator.
pub const STORE_HEADER: BlockKind = BlockKind { magic: MAGIC };

/// Store header, little-endian; bytes after it up to the block end are zero.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawHeader {
    /// 0x00: checksum, version, [`MAGIC`], this copy's own block number on
    /// its member.
    head: BlockHeader,
    /// 0x18: header generation (copy = generation mod 2).
    generation: U64,
    /// 0x20: store UUID.
    uuid: [u8; 16],
    /// 0x30: this member's position in the store.
    member: U32,
    /// 0x34: members.
    nr_members: U32,
    /// 0x38: data chunks per stripe.
    k: U32,
    /// 0x3c: parity chunks per stripe.
    m: U32,
    /// 0x40: data blocks per chunk.
    chunk_blocks: U32,
    /// 0x44: zero.
    pad: U32,
    /// 0x48: first block of the area.
    area_start: U64,
    /// 0x50: metadata blocks at the area's start.
    meta_blocks: U64,
    /// 0x58: slots per member.
    slots: U64,
    /// 0x60: stripe ids.
    nr_stripes: U64,
    /// 0x68: allocation map generation.
    map_generation: U64,
    /// 0x70: live map copy (0 or 1).
    map_copy: U32,
    /// 0x74: content CRC of that copy's top summary page.
    map_crc: U32,
    /// 0x78: free stripe ids.
    map_free: U64,
    /// 0x80: write sequence numbers below this may have been used.
    seq_limit: U64,
    /// 0x88: member being rebuilt, or [`NO_REBUILD`].
    rebuild_member: U32,
    /// 0x8c: zero.
    pad2: U32,
    /// 0x90: stripes below this are rebuilt on `rebuild_member`.
    rebuild_cursor: U64,
    /// 0x98: zero.
    reserved: [u8; 40],
    /// 0xc0: per member: [`STATE_OK`], [`STATE_FAILED`], [`STATE_REBUILDING`];
    /// zero past `nr_members`.
    states: [u8; MAX_MEMBERS],
}

/// Bytes of the header.
pub const HEADER_SIZE: usize = 0x100;
const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_SIZE);
// The offsets `doc/FORMAT.md` gives (Store header).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawHeader, head) == 0x000);
    assert!(offset_of!(RawHeader, generation) == 0x018);
    assert!(offset_of!(RawHeader, uuid) == 0x020);
    assert!(offset_of!(RawHeader, member) == 0x030);
    assert!(offset_of!(RawHeader, nr_members) == 0x034);
    assert!(offset_of!(RawHeader, k) == 0x038);
    assert!(offset_of!(RawHeader, m) == 0x03c);
    assert!(offset_of!(RawHeader, chunk_blocks) == 0x040);
    assert!(offset_of!(RawHeader, pad) == 0x044);
    assert!(offset_of!(RawHeader, area_start) == 0x048);
    assert!(offset_of!(RawHeader, meta_blocks) == 0x050);
    assert!(offset_of!(RawHeader, slots) == 0x058);
    assert!(offset_of!(RawHeader, nr_stripes) == 0x060);
    assert!(offset_of!(RawHeader, map_generation) == 0x068);
    assert!(offset_of!(RawHeader, map_copy) == 0x070);
    assert!(offset_of!(RawHeader, map_crc) == 0x074);
    assert!(offset_of!(RawHeader, map_free) == 0x078);
    assert!(offset_of!(RawHeader, seq_limit) == 0x080);
    assert!(offset_of!(RawHeader, rebuild_member) == 0x088);
    assert!(offset_of!(RawHeader, pad2) == 0x08c);
    assert!(offset_of!(RawHeader, rebuild_cursor) == 0x090);
    assert!(offset_of!(RawHeader, reserved) == 0x098);
    assert!(offset_of!(RawHeader, states) == 0x0c0);
};

/// The decoded store header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StoreHeader {
    /// Header generation.
    pub generation: u64,
    /// Store UUID.
    pub uuid: [u8; 16],
    /// Position of the member holding this copy.
    pub member: u32,
    /// Layout.
    pub geom: StripeGeometry,
    /// Allocation map generation.
    pub map_generation: u64,
    /// Allocation map root.
    pub map: AllocRoot,
    /// Bound of the used write sequence numbers.
    pub seq_limit: u64,
    /// Member being rebuilt and its cursor.
    pub rebuild: Option<(u32, u64)>,
    /// Persisted member states (first `nr_members` used).
    pub states: [u8; MAX_MEMBERS],
}

/// Block of header copy `generation` mod 2 on a member.
pub fn header_block(geom: &StripeGeometry, generation: u64) -> u64 {
    geom.area_start + (generation & 1)
}

/// Encodes `h` as written at `block` into `buf` (one block).
pub fn encode(h: &StoreHeader, block: u64, buf: &mut [u8]) -> Result {
    let buf: &mut [u8; BLOCK_SIZE] = buf.try_into().map_err(|_| Error::InvalidArgument)?;
    let g = &h.geom;
    let (rebuild_member, rebuild_cursor) = h.rebuild.unwrap_or((NO_REBUILD, 0));
    let raw = RawHeader {
        head: BlockHeader::UNSEALED,
        generation: U64::new(h.generation),
        uuid: h.uuid,
        member: U32::new(h.member),
        nr_members: U32::new(g.nr_members),
        k: U32::new(g.k),
        m: U32::new(g.m),
        chunk_blocks: U32::new(g.chunk_blocks),
        pad: U32::new(0),
        area_start: U64::new(g.area_start),
        meta_blocks: U64::new(g.meta_blocks),
        slots: U64::new(g.slots_per_member),
        nr_stripes: U64::new(g.nr_stripes),
        map_generation: U64::new(h.map_generation),
        map_copy: U32::new(h.map.copy),
        map_crc: U32::new(h.map.crc),
        map_free: U64::new(h.map.free),
        seq_limit: U64::new(h.seq_limit),
        rebuild_member: U32::new(rebuild_member),
        pad2: U32::new(0),
        rebuild_cursor: U64::new(rebuild_cursor),
        reserved: [0; 40],
        states: h.states,
    };
    buf.fill(0);
    buf[..HEADER_SIZE].copy_from_slice(raw.as_bytes());
    STORE_HEADER.seal(buf, block);
    Ok(())
}

/// Decodes and checks the header in `buf`, read from `block`: the common
/// block checks, then the geometry (recomputed from its parts), the map
/// root, the states and the rebuild fields.
pub fn decode(buf: &[u8], block: u64) -> Result<StoreHeader> {
    STORE_HEADER.check(buf, block, block)?;
    let raw = RawHeader::read_from_prefix(buf)
        .map_err(|_| Error::InvalidArgument)?
        .0;
    let corrupt = |what| Error::Corrupt {
        block: Some(block),
        what,
    };
    let geom = StripeGeometry::with_slots(
        raw.k.get(),
        raw.m.get(),
        raw.nr_members.get(),
        raw.chunk_blocks.get(),
        raw.area_start.get(),
        raw.slots.get(),
    )
    .map_err(|_| corrupt("stripe store geometry"))?;
    if geom.meta_blocks != raw.meta_blocks.get() || geom.nr_stripes != raw.nr_stripes.get() {
        return Err(corrupt("stripe store geometry"));
    }
    if header_block(&geom, raw.generation.get()) != block {
        return Err(corrupt("stripe store header copy"));
    }
    let n = geom.nr_members as usize;
    let member = raw.member.get();
    if member as usize >= n {
        return Err(corrupt("stripe store member position"));
    }
    if raw.map_copy.get() > 1
        || raw.map_free.get() > geom.nr_stripes
        || raw.map_generation.get() == 0
        || raw.map_generation.get() & 1 != u64::from(raw.map_copy.get())
    {
        return Err(corrupt("stripe store map root"));
    }
    if raw.states[..n].iter().any(|&s| s > STATE_REBUILDING)
        || raw.states[n..].iter().any(|&s| s != 0)
    {
        return Err(corrupt("stripe store member states"));
    }
    let rebuild = match raw.rebuild_member.get() {
        NO_REBUILD if raw.rebuild_cursor.get() == 0 => None,
        r if (r as usize) < n
            && raw.states[r as usize] == STATE_REBUILDING
            && raw.rebuild_cursor.get() <= geom.nr_stripes =>
        {
            Some((r, raw.rebuild_cursor.get()))
        }
        _ => return Err(corrupt("stripe store rebuild cursor")),
    };
    let rebuilding = raw.states[..n]
        .iter()
        .filter(|&&s| s == STATE_REBUILDING)
        .count();
    if rebuilding != usize::from(rebuild.is_some()) {
        return Err(corrupt("stripe store rebuild cursor"));
    }
    if raw.pad.get() != 0
        || raw.pad2.get() != 0
        || raw.reserved.iter().any(|&b| b != 0)
        || buf[HEADER_SIZE..].iter().any(|&b| b != 0)
    {
        return Err(corrupt("stripe store header reserved bytes"));
    }
    Ok(StoreHeader {
        generation: raw.generation.get(),
        uuid: raw.uuid,
        member,
        geom,
        map_generation: raw.map_generation.get(),
        map: AllocRoot {
            copy: raw.map_copy.get(),
            crc: raw.map_crc.get(),
            free: raw.map_free.get(),
        },
        seq_limit: raw.seq_limit.get(),
        rebuild,
        states: raw.states,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crc32c::crc32c;

    fn sample() -> StoreHeader {
        let geom = StripeGeometry::new(4, 2, 7, 8, 40, 5000).unwrap();
        let mut states = [0; MAX_MEMBERS];
        states[3] = STATE_REBUILDING;
        states[5] = STATE_FAILED;
        StoreHeader {
            generation: 9,
            uuid: [7; 16],
            member: 2,
            geom,
            map_generation: 4,
            map: AllocRoot {
                copy: 0,
                crc: 0xabcd,
                free: 3,
            },
            seq_limit: 1 << 20,
            rebuild: Some((3, 17)),
            states,
        }
    }

    #[test]
    fn round_trip_and_every_bit_flip_caught() {
        let h = sample();
        let block = header_block(&h.geom, h.generation);
        let mut buf = [0u8; BLOCK_SIZE];
        encode(&h, block, &mut buf).unwrap();
        assert_eq!(decode(&buf, block), Ok(h));
        assert!(decode(&buf, block - 1).is_err());
        for bit in 0..HEADER_SIZE * 8 {
            let mut bad = buf;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad, block).is_err(), "bit {bit}");
        }
    }

    proptest::proptest! {
        /// Any header with a valid checksum decodes or is refused, never a
        /// panic; one that decodes gives a usable geometry.
        #[test]
        fn arbitrary_fields_never_panic(
            words in proptest::collection::vec(proptest::num::u64::ANY, 32),
            small in proptest::collection::vec(0u64..100, 32),
            mix in proptest::num::u32::ANY,
        ) {
            let h = sample();
            let block = header_block(&h.geom, h.generation);
            let mut buf = [0u8; BLOCK_SIZE];
            encode(&h, block, &mut buf).unwrap();
            for i in 0..32 {
                // Mostly small values, so that some decode.
                let v = if mix >> i & 1 == 1 { words[i] } else { small[i] };
                let at = 0x18 + 8 * i;
                if at + 8 <= HEADER_SIZE && (mix >> (i % 7)) & 3 == 0 {
                    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
            let sum = crc32c(&buf[4..]);
            buf[..4].copy_from_slice(&sum.to_le_bytes());
            if let Ok(d) = decode(&buf, block) {
                let g = d.geom;
                let last = g.chunk_location(g.nr_stripes - 1, g.width() - 1);
                proptest::prop_assert!(last.is_some_and(|(_, b)| b < g.member_blocks()));
            }
        }
    }

    #[test]
    fn inconsistent_fields_are_corrupt_even_with_a_good_crc() {
        let base = sample();
        let bad = [
            StoreHeader {
                rebuild: None,
                ..base
            },
            StoreHeader {
                rebuild: Some((5, 1)),
                ..base
            },
            StoreHeader { member: 7, ..base },
            StoreHeader {
                map_generation: 5,
                ..base
            },
            StoreHeader {
                geom: StripeGeometry {
                    nr_stripes: base.geom.nr_stripes + 1,
                    ..base.geom
                },
                ..base
            },
        ];
        for h in bad {
            let block = header_block(&h.geom, h.generation);
            let mut buf = [0u8; BLOCK_SIZE];
            encode(&h, block, &mut buf).unwrap();
            assert!(
                matches!(decode(&buf, block), Err(Error::Corrupt { .. })),
                "{h:?}"
            );
        }
    }
}
