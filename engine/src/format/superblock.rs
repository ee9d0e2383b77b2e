// SPDX-License-Identifier: GPL-2.0

//! The superblock: identity and roots of one vtier member device.
//!
//! Every member device (the performance device and each capacity device)
//! starts with two superblock copies, in blocks 0 and 1. Commits alternate
//! between them, so one copy is always complete; at mount the newest copy
//! that verifies wins ([`Superblock::choose`]). The layout is in
//! `doc/FORMAT.md`; every change to it bumps [`FORMAT_VERSION`].
//!
//! Generation semantics: checkpoint generation *G* writes superblock copy
//! *G* mod 2 and allocation-map copy *G* mod 2, then an end marker for *G*
//! into the WAL at [`WalPosition::tail`]. A copy counts only if that end
//! marker is there (`crate::journal::meta_device` checks it); `choose`
//! alone only compares generations.

use crate::crypt::encryption::Encryption;
use crate::error::{Error, Result};
use crate::format::validator::{BlockHeader, BlockKind};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use crate::io::device::BLOCK_SIZE;
/// On-disk format version this engine writes and reads.
pub const FORMAT_VERSION: u32 = 4;
/// `"VTIERSB\0"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"VTIERSB\0");
/// Block numbers of the two superblock copies.
pub const COPIES: [u64; 2] = [0, 1];
/// Opaque root slots kept for the layers above (B-tree roots, counters).
pub const NR_ROOTS: usize = 16;
/// The superblock's validator.
pub const SUPERBLOCK: BlockKind = BlockKind { magic: MAGIC };

/// Where the write-ahead log lives and where this checkpoint's part of it
/// starts (performance device only; all zero on capacity devices).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WalPosition {
    /// First block of the WAL region.
    pub start: u64,
    /// Blocks in the WAL region.
    pub blocks: u64,
    /// Index in the region of the block holding this checkpoint's end marker.
    pub tail: u64,
    /// Block sequence number of that block.
    pub tail_seq: u64,
}

/// Where the two allocation-map copies live and how to verify the one this
/// checkpoint wrote (copy `generation` mod 2).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MapRoot {
    /// First block of copy 0 and of copy 1.
    pub copies: [u64; 2],
    /// Blocks in one copy.
    pub blocks: u64,
    /// Content CRC of the top summary page of the copy written.
    pub crc: u32,
    /// Free blocks recorded by this checkpoint.
    pub free: u64,
}

/// What a member device is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The fast tier: metadata, the write log, hot data.
    Performance,
    /// One device of the erasure-coded capacity tier.
    Capacity,
}

impl Role {
    fn to_raw(self) -> u32 {
        match self {
            Role::Performance => 1,
            Role::Capacity => 2,
        }
    }

    fn from_raw(raw: u32, block: u64) -> Result<Self> {
        match raw {
            1 => Ok(Role::Performance),
            2 => Ok(Role::Capacity),
            _ => Err(Error::Corrupt {
                block: Some(block),
                what: "superblock role",
            }),
        }
    }
}

/// The superblock as it lies on disk, 4096 bytes, little-endian.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawSuperblock {
    /// 0x000: checksum, version, [`MAGIC`], this copy's own block number
    /// (catches misdirected writes).
    head: BlockHeader,
    /// 0x018: commit generation; the newer valid copy wins.
    generation: U64,
    /// 0x020: UUID shared by every member of one volume set.
    volume_uuid: [u8; 16],
    /// 0x030: UUID of this member device.
    device_uuid: [u8; 16],
    /// 0x040: block size in bytes, always [`BLOCK_SIZE`].
    block_size: U32,
    /// 0x044: [`Role`]: 1 performance, 2 capacity.
    role: U32,
    /// 0x048: usable size of this device in blocks, at format time.
    nr_blocks: U64,
    /// 0x050: position of this device in the set (0 for the performance device).
    device_index: U32,
    /// 0x054: number of member devices in the set (1 + capacity devices).
    nr_devices: U32,
    /// 0x058: first block of the WAL region (0 on capacity devices).
    wal_start: U64,
    /// 0x060: blocks in the WAL region.
    wal_blocks: U64,
    /// 0x068: index in the WAL of this checkpoint's end-marker block.
    wal_tail: U64,
    /// 0x070: block sequence number of that block.
    wal_tail_seq: U64,
    /// 0x078: first block of allocation-map copy 0.
    map_copy0: U64,
    /// 0x080: first block of allocation-map copy 1.
    map_copy1: U64,
    /// 0x088: blocks in one map copy.
    map_blocks: U64,
    /// 0x090: content CRC of the top summary page of copy `generation % 2`.
    map_crc: U32,
    /// 0x094: zero.
    pad: U32,
    /// 0x098: free blocks at this checkpoint.
    free_blocks: U64,
    /// 0x0a0: first block after the fixed metadata.
    data_start: U64,
    /// 0x0a8: root slots of the layers above ([`NR_ROOTS`] × 8 bytes).
    roots: [U64; NR_ROOTS],
    /// 0x128: cipher of the volume set: 0 none, 1 AES-256-XTS
    /// ([`crate::crypt::encryption`]).
    cipher: U32,
    /// 0x12c: zero.
    pad2: U32,
    /// 0x130: the XTS tweak of every data block (zero when unencrypted).
    tweak: [u8; 16],
    /// 0x140: key check value (zero when unencrypted).
    kcv: [u8; 16],
}

/// Bytes of [`RawSuperblock`]; the rest of the block, up to 0x1000, is
/// zero. (Kept out of the struct: a whole block as a local is a quarter of
/// a kernel stack.)
const RAW_SIZE: usize = 0x150;
const _: () = assert!(core::mem::size_of::<RawSuperblock>() == RAW_SIZE);
// The offsets `doc/FORMAT.md` gives (Superblock).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawSuperblock, head) == 0x000);
    assert!(offset_of!(RawSuperblock, generation) == 0x018);
    assert!(offset_of!(RawSuperblock, volume_uuid) == 0x020);
    assert!(offset_of!(RawSuperblock, device_uuid) == 0x030);
    assert!(offset_of!(RawSuperblock, block_size) == 0x040);
    assert!(offset_of!(RawSuperblock, role) == 0x044);
    assert!(offset_of!(RawSuperblock, nr_blocks) == 0x048);
    assert!(offset_of!(RawSuperblock, device_index) == 0x050);
    assert!(offset_of!(RawSuperblock, nr_devices) == 0x054);
    assert!(offset_of!(RawSuperblock, wal_start) == 0x058);
    assert!(offset_of!(RawSuperblock, wal_blocks) == 0x060);
    assert!(offset_of!(RawSuperblock, wal_tail) == 0x068);
    assert!(offset_of!(RawSuperblock, wal_tail_seq) == 0x070);
    assert!(offset_of!(RawSuperblock, map_copy0) == 0x078);
    assert!(offset_of!(RawSuperblock, map_copy1) == 0x080);
    assert!(offset_of!(RawSuperblock, map_blocks) == 0x088);
    assert!(offset_of!(RawSuperblock, map_crc) == 0x090);
    assert!(offset_of!(RawSuperblock, pad) == 0x094);
    assert!(offset_of!(RawSuperblock, free_blocks) == 0x098);
    assert!(offset_of!(RawSuperblock, data_start) == 0x0a0);
    assert!(offset_of!(RawSuperblock, roots) == 0x0a8);
    assert!(offset_of!(RawSuperblock, cipher) == 0x128);
    assert!(offset_of!(RawSuperblock, pad2) == 0x12c);
    assert!(offset_of!(RawSuperblock, tweak) == 0x130);
    assert!(offset_of!(RawSuperblock, kcv) == 0x140);
};

/// A decoded, verified superblock.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Commit generation.
    pub generation: u64,
    /// UUID of the volume set.
    pub volume_uuid: [u8; 16],
    /// UUID of this device.
    pub device_uuid: [u8; 16],
    /// What the device is for.
    pub role: Role,
    /// Usable size in blocks.
    pub nr_blocks: u64,
    /// Position in the set.
    pub device_index: u32,
    /// Members in the set.
    pub nr_devices: u32,
    /// The WAL and this checkpoint's position in it.
    pub wal: WalPosition,
    /// The allocation map.
    pub map: MapRoot,
    /// First block after the fixed metadata (superblocks, WAL, map copies).
    pub data_start: u64,
    /// Root slots of the layers above.
    pub roots: [u64; NR_ROOTS],
    /// How the volume set is encrypted; the same on every member.
    pub encryption: Encryption,
}

impl Superblock {
    /// Encodes this superblock as copy `block` (0 or 1) into `out`.
    pub fn encode(&self, block: u64, out: &mut [u8; BLOCK_SIZE]) {
        let (cipher, tweak, kcv) = self.encryption.to_raw();
        let raw = RawSuperblock {
            head: BlockHeader::UNSEALED,
            generation: U64::new(self.generation),
            volume_uuid: self.volume_uuid,
            device_uuid: self.device_uuid,
            block_size: U32::new(BLOCK_SIZE as u32),
            role: U32::new(self.role.to_raw()),
            nr_blocks: U64::new(self.nr_blocks),
            device_index: U32::new(self.device_index),
            nr_devices: U32::new(self.nr_devices),
            wal_start: U64::new(self.wal.start),
            wal_blocks: U64::new(self.wal.blocks),
            wal_tail: U64::new(self.wal.tail),
            wal_tail_seq: U64::new(self.wal.tail_seq),
            map_copy0: U64::new(self.map.copies[0]),
            map_copy1: U64::new(self.map.copies[1]),
            map_blocks: U64::new(self.map.blocks),
            map_crc: U32::new(self.map.crc),
            pad: U32::new(0),
            free_blocks: U64::new(self.map.free),
            data_start: U64::new(self.data_start),
            roots: self.roots.map(U64::new),
            cipher: U32::new(cipher),
            pad2: U32::new(0),
            tweak,
            kcv,
        };
        out.fill(0);
        out[..RAW_SIZE].copy_from_slice(raw.as_bytes());
        SUPERBLOCK.seal(out, block);
    }

    /// Decodes and verifies the superblock copy read from block `block`.
    ///
    /// Checks, in order: magic (is this a vtier device at all), checksum,
    /// location, version, then every field's range.
    pub fn decode(buf: &[u8], block: u64) -> Result<Self> {
        SUPERBLOCK.check(buf, block, block)?;
        let (raw, reserved) =
            RawSuperblock::read_from_prefix(buf).map_err(|_| Error::InvalidArgument)?;
        let corrupt = |what| Error::Corrupt {
            block: Some(block),
            what,
        };
        if raw.block_size.get() as usize != BLOCK_SIZE {
            return Err(corrupt("superblock block size"));
        }
        let role = Role::from_raw(raw.role.get(), block)?;
        let (index, count) = (raw.device_index.get(), raw.nr_devices.get());
        if count == 0 || index >= count || (role == Role::Performance) != (index == 0) {
            return Err(corrupt("superblock device index"));
        }
        if raw.nr_blocks.get() <= COPIES.len() as u64 {
            return Err(corrupt("superblock device size"));
        }
        if reserved.iter().any(|&b| b != 0) || raw.pad.get() != 0 || raw.pad2.get() != 0 {
            return Err(corrupt("superblock reserved bytes"));
        }
        let encryption = Encryption::from_raw(raw.cipher.get(), raw.tweak, raw.kcv, block)?;
        let sb = Self {
            generation: raw.generation.get(),
            volume_uuid: raw.volume_uuid,
            device_uuid: raw.device_uuid,
            role,
            nr_blocks: raw.nr_blocks.get(),
            device_index: index,
            nr_devices: count,
            wal: WalPosition {
                start: raw.wal_start.get(),
                blocks: raw.wal_blocks.get(),
                tail: raw.wal_tail.get(),
                tail_seq: raw.wal_tail_seq.get(),
            },
            map: MapRoot {
                copies: [raw.map_copy0.get(), raw.map_copy1.get()],
                blocks: raw.map_blocks.get(),
                crc: raw.map_crc.get(),
                free: raw.free_blocks.get(),
            },
            data_start: raw.data_start.get(),
            roots: raw.roots.map(|r| r.get()),
            encryption,
        };
        sb.check_layout().map_err(corrupt)?;
        Ok(sb)
    }

    /// Checks that the regions fit the device, do not overlap and match the
    /// map geometry; returns what is wrong.
    fn check_layout(&self) -> core::result::Result<(), &'static str> {
        // The map size must also match the device size; `crate::journal::meta_device`
        // checks that with the map geometry, which this file does not need.
        if self.nr_blocks > 1 << 32 || self.map.blocks == 0 {
            return Err("superblock map size");
        }
        let first = COPIES.len() as u64;
        let w = &self.wal;
        let mut regions = [
            (w.start, w.blocks),
            (self.map.copies[0], self.map.blocks),
            (self.map.copies[1], self.map.blocks),
        ];
        crate::heap_sort::sort(&mut regions);
        let mut end = first;
        for (start, len) in regions {
            if len == 0 && start == 0 {
                continue;
            }
            if start < end {
                return Err("superblock regions overlap");
            }
            end = start.checked_add(len).ok_or("superblock region end")?;
        }
        if end > self.data_start || self.data_start > self.nr_blocks {
            return Err("superblock data start");
        }
        let has_wal = self.role == Role::Performance;
        if has_wal != (w.blocks >= 2) || (has_wal && w.tail >= w.blocks) {
            return Err("superblock WAL position");
        }
        if !has_wal && (w.start, w.tail, w.tail_seq) != (0, 0, 0) {
            return Err("superblock WAL position");
        }
        if self.map.free > self.nr_blocks - self.data_start {
            return Err("superblock free count");
        }
        Ok(())
    }

    /// Picks the copy to mount from the results of decoding both copies:
    /// the valid one with the higher generation. If neither is valid, the
    /// error of copy 0 is returned (it says best why the device is unusable).
    pub fn choose(a: Result<Self>, b: Result<Self>) -> Result<Self> {
        match (a, b) {
            (Ok(a), Ok(b)) => Ok(if b.generation > a.generation { b } else { a }),
            (Ok(a), Err(_)) => Ok(a),
            (Err(_), Ok(b)) => Ok(b),
            (Err(e), Err(_)) => Err(e),
        }
    }
}

/// The volume tag of `uuid`: the two halves of the volume UUID xored,
/// stamped into WAL blocks, data log headers and stripe chunks so that a
/// block of another volume is never taken for one of this volume.
pub fn volume_tag(uuid: &[u8; 16]) -> u64 {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&uuid[..8]);
    b.copy_from_slice(&uuid[8..]);
    u64::from_le_bytes(a) ^ u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crc32c::crc32c;

    fn sample() -> Superblock {
        Superblock {
            generation: 7,
            volume_uuid: [0x11; 16],
            device_uuid: [0x22; 16],
            role: Role::Performance,
            nr_blocks: 1 << 20,
            device_index: 0,
            nr_devices: 5,
            wal: WalPosition {
                start: 2,
                blocks: 64,
                tail: 3,
                tail_seq: 9,
            },
            map: MapRoot {
                copies: [66, 99],
                blocks: 33,
                crc: 0x1234_5678,
                free: 1000,
            },
            data_start: 132,
            roots: [0x42; NR_ROOTS],
            encryption: Encryption::AesXts {
                tweak: [0x5a; 16],
                kcv: [0xa5; 16],
            },
        }
    }

    #[test]
    fn encryption_fields() {
        let mut sb = sample();
        sb.encryption = Encryption::None;
        assert_eq!(Superblock::decode(&encoded(&sb, 0), 0), Ok(sb));
        for (offset, value) in [(0x128, 2u8), (0x12c, 1), (0x130, 1)] {
            let mut buf = encoded(&sb, 0);
            buf[offset] = value;
            let sum = crc32c(&buf[4..]);
            buf[..4].copy_from_slice(&sum.to_le_bytes());
            assert!(
                matches!(
                    Superblock::decode(&buf, 0),
                    Err(Error::Corrupt { block: Some(0), .. })
                ),
                "byte {offset:#x} = {value} accepted"
            );
        }
    }

    fn encoded(sb: &Superblock, block: u64) -> [u8; BLOCK_SIZE] {
        let mut buf = [0u8; BLOCK_SIZE];
        sb.encode(block, &mut buf);
        buf
    }

    #[test]
    fn round_trip_both_copies() {
        let sb = sample();
        for block in COPIES {
            assert_eq!(Superblock::decode(&encoded(&sb, block), block), Ok(sb));
        }
    }

    #[test]
    fn zeroed_block_is_not_a_vtier_device() {
        assert_eq!(
            Superblock::decode(&[0u8; BLOCK_SIZE], 0),
            Err(Error::BadMagic { block: 0 })
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let good = encoded(&sample(), 1);
        for bit in 0..BLOCK_SIZE * 8 {
            let mut buf = good;
            buf[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Superblock::decode(&buf, 1).is_err(),
                "bit {bit} flip accepted"
            );
        }
    }

    #[test]
    fn misdirected_copy_is_reported_as_such() {
        let buf = encoded(&sample(), 0);
        assert_eq!(
            Superblock::decode(&buf, 1),
            Err(Error::WrongLocation {
                block: 1,
                recorded: 0
            })
        );
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        assert_eq!(
            Superblock::decode(&[0u8; 100], 0),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn newest_valid_copy_wins() {
        let old = sample();
        let new = Superblock {
            generation: 8,
            ..old
        };
        assert_eq!(Superblock::choose(Ok(old), Ok(new)), Ok(new));
        assert_eq!(Superblock::choose(Ok(new), Ok(old)), Ok(new));
        let bad = Err(Error::BadChecksum { block: 1 });
        assert_eq!(Superblock::choose(Ok(old), bad), Ok(old));
        assert_eq!(
            Superblock::choose(Err(Error::BadMagic { block: 0 }), bad),
            Err(Error::BadMagic { block: 0 })
        );
    }

    #[test]
    fn inconsistent_fields_are_rejected() {
        let cases = [
            Superblock {
                device_index: 1,
                ..sample()
            },
            Superblock {
                nr_devices: 0,
                ..sample()
            },
            Superblock {
                nr_blocks: 2,
                ..sample()
            },
            Superblock {
                role: Role::Capacity,
                ..sample()
            },
            Superblock {
                data_start: 100,
                ..sample()
            },
            Superblock {
                map: MapRoot {
                    blocks: 0,
                    ..sample().map
                },
                ..sample()
            },
            Superblock {
                wal: WalPosition {
                    start: 70,
                    ..sample().wal
                },
                ..sample()
            },
            Superblock {
                wal: WalPosition {
                    tail: 64,
                    ..sample().wal
                },
                ..sample()
            },
            Superblock {
                map: MapRoot {
                    free: 1 << 20,
                    ..sample().map
                },
                ..sample()
            },
        ];
        for sb in cases {
            let r = Superblock::decode(&encoded(&sb, 0), 0);
            assert!(matches!(r, Err(Error::Corrupt { .. })), "{sb:?} gave {r:?}");
        }
    }
}
