// SPDX-License-Identifier: GPL-2.0

//! B-tree nodes: on-disk layout, in-memory form, validator.
//!
//! Every node is one 4096-byte block: a 64-byte header, then either leaf
//! entries (LBA → [`Extent`]) or internal entries (key → child address).
//! The layout is in `doc/FORMAT.md` ("B-tree nodes"). A node is decoded
//! into a [`NodeData`] (native integers, validated) and encoded back;
//! nothing reinterprets untrusted bytes without checking them.
//!
//! Validation order, as for superblocks: magic (`BadMagic`), checksum
//! (`BadChecksum`), location (`WrongLocation`: a misdirected write, not a
//! torn one), version (`BadVersion`), then every field (`Corrupt`).

use crate::error::{Error, Result};
use crate::format::validator::{BlockHeader, BlockKind};
use crate::io::device::BLOCK_SIZE;
use crate::io::paddr::PAddr;
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::kvec::kvec_insert;
use crate::map::extent::Extent;
use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::FromBytes;
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `"VTBTLEAF"` read as a little-endian `u64`: magic of leaves.
pub const LEAF_MAGIC: u64 = u64::from_le_bytes(*b"VTBTLEAF");
/// `"VTBTNODE"` read as a little-endian `u64`: magic of internal nodes.
pub const INTERNAL_MAGIC: u64 = u64::from_le_bytes(*b"VTBTNODE");
/// The leaf's validator.
pub const LEAF: BlockKind = BlockKind { magic: LEAF_MAGIC };
/// The internal node's validator.
pub const INTERNAL: BlockKind = BlockKind {
    magic: INTERNAL_MAGIC,
};
/// Tree id of the LBA map.
pub const TREE_LBA_MAP: u32 = 1;
/// Bytes of the node header.
pub const HEADER_SIZE: usize = 64;
/// Most entries a leaf block holds.
pub const LEAF_CAPACITY: usize = (BLOCK_SIZE - HEADER_SIZE) / 32;
/// Most entries an internal block holds.
pub const INTERNAL_CAPACITY: usize = (BLOCK_SIZE - HEADER_SIZE) / 16;
/// Most levels a tree may have (a leaf is level 0). With the minimum fill
/// of a third, 2^64 keys need fewer than 12 levels; more is corruption.
pub const MAX_HEIGHT: usize = 16;

/// Node header, 64 bytes, little-endian.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawHeader {
    /// 0x00: checksum, version, [`LEAF_MAGIC`] or [`INTERNAL_MAGIC`], the
    /// node's own [`PAddr`], raw (catches misdirected writes).
    head: BlockHeader,
    /// 0x18: checkpoint generation in which the node was last written.
    generation: U64,
    /// 0x20: tree id ([`TREE_LBA_MAP`]).
    tree: U32,
    /// 0x24: level, 0 for leaves.
    level: U16,
    /// 0x26: number of entries in use.
    nr_entries: U16,
    /// 0x28..0x40: zero.
    reserved: [u8; 24],
}

/// Leaf entry, 32 bytes: one extent.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawLeafEntry {
    /// +0x00: first LBA (the key).
    lba: U64,
    /// +0x08: [`PAddr`] of the first block, raw.
    paddr: U64,
    /// +0x10: length in blocks.
    len: U32,
    /// +0x14: CRC32C of the data.
    csum: U32,
    /// +0x18: `EXTENT_*` flags.
    flags: U32,
    /// +0x1c: zero.
    reserved: U32,
}

/// Internal entry, 16 bytes.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawInternalEntry {
    /// +0x00: smallest key in the child's subtree.
    key: U64,
    /// +0x08: child's [`PAddr`], raw.
    child: U64,
}

/// A leaf block: header at 0x000, entries from 0x040, 126 × 32 bytes.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawLeaf {
    hdr: RawHeader,
    entries: [RawLeafEntry; LEAF_CAPACITY],
}

/// An internal block: header at 0x000, entries from 0x040, 252 × 16 bytes.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawInternal {
    hdr: RawHeader,
    entries: [RawInternalEntry; INTERNAL_CAPACITY],
}

const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_SIZE);
const _: () = assert!(core::mem::size_of::<RawLeafEntry>() == 32);
const _: () = assert!(core::mem::size_of::<RawInternalEntry>() == 16);
const _: () = assert!(core::mem::size_of::<RawLeaf>() == BLOCK_SIZE);
const _: () = assert!(core::mem::size_of::<RawInternal>() == BLOCK_SIZE);
// The offsets `doc/FORMAT.md` gives (B-tree nodes: header, entries).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawHeader, head) == 0x00);
    assert!(offset_of!(RawHeader, generation) == 0x18);
    assert!(offset_of!(RawHeader, tree) == 0x20);
    assert!(offset_of!(RawHeader, level) == 0x24);
    assert!(offset_of!(RawHeader, nr_entries) == 0x26);
    assert!(offset_of!(RawHeader, reserved) == 0x28);
};
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawLeafEntry, lba) == 0x00);
    assert!(offset_of!(RawLeafEntry, paddr) == 0x08);
    assert!(offset_of!(RawLeafEntry, len) == 0x10);
    assert!(offset_of!(RawLeafEntry, csum) == 0x14);
    assert!(offset_of!(RawLeafEntry, flags) == 0x18);
    assert!(offset_of!(RawLeafEntry, reserved) == 0x1c);
};
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawInternalEntry, key) == 0x00);
    assert!(offset_of!(RawInternalEntry, child) == 0x08);
};
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawLeaf, hdr) == 0x000);
    assert!(offset_of!(RawLeaf, entries) == 0x040);
};
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RawInternal, hdr) == 0x000);
    assert!(offset_of!(RawInternal, entries) == 0x040);
};

/// A decoded node. Leaves use `keys` + `extents`, internal nodes `keys` +
/// `children`; `keys` is strictly increasing.
#[derive(Debug, Default)]
pub struct NodeData {
    /// Where the node lives.
    pub addr: Option<PAddr>,
    /// Generation in which it was written.
    pub generation: u64,
    /// Tree id (`TREE_*`), checked on decode.
    pub tree: u32,
    /// 0 for leaves.
    pub level: u8,
    /// Leaf: first LBA of each extent. Internal: smallest key below each child.
    pub keys: KVec<u64>,
    /// Internal nodes: child addresses.
    pub children: KVec<PAddr>,
    /// Leaves: the extents.
    pub extents: KVec<Extent>,
}

impl NodeData {
    /// True for level-0 nodes.
    pub fn is_leaf(&self) -> bool {
        self.level == 0
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Index of the last key `<= key`, if any.
    pub fn floor(&self, key: u64) -> Option<usize> {
        match self.keys.binary_search(&key) {
            Ok(i) => Some(i),
            Err(0) => None,
            Err(i) => Some(i - 1),
        }
    }

    /// Copies `other` into `self`, reusing allocations.
    pub fn copy_from(&mut self, other: &NodeData) -> Result {
        self.addr = other.addr;
        self.generation = other.generation;
        self.tree = other.tree;
        self.level = other.level;
        self.keys.clear();
        self.keys.extend_from_slice(&other.keys, GFP_KERNEL)?;
        self.children.clear();
        self.children
            .extend_from_slice(&other.children, GFP_KERNEL)?;
        self.extents.clear();
        self.extents.extend_from_slice(&other.extents, GFP_KERNEL)?;
        Ok(())
    }

    /// Encodes the node into `buf` (one block).
    pub fn encode(&self, buf: &mut [u8]) -> Result {
        let addr = self.addr.ok_or(Error::InvalidArgument)?;
        let buf: &mut [u8; BLOCK_SIZE] = buf.try_into().map_err(|_| Error::InvalidArgument)?;
        buf.fill(0);
        let hdr = RawHeader {
            head: BlockHeader::UNSEALED,
            generation: U64::new(self.generation),
            tree: U32::new(self.tree),
            level: U16::new(u16::from(self.level)),
            nr_entries: U16::new(self.len() as u16),
            reserved: [0; 24],
        };
        if self.is_leaf() {
            self.encode_leaf(hdr, buf)?;
            LEAF.seal(buf, addr.to_raw());
        } else {
            self.encode_internal(hdr, buf)?;
            INTERNAL.seal(buf, addr.to_raw());
        }
        Ok(())
    }

    fn encode_leaf(&self, hdr: RawHeader, buf: &mut [u8]) -> Result {
        let raw = RawLeaf::mut_from_bytes(buf).map_err(|_| Error::InvalidArgument)?;
        if self.len() > LEAF_CAPACITY || self.extents.len() != self.len() {
            return Err(Error::InvalidArgument);
        }
        raw.hdr = hdr;
        for ((out, &lba), e) in raw
            .entries
            .iter_mut()
            .zip(self.keys.iter())
            .zip(self.extents.iter())
        {
            *out = RawLeafEntry {
                lba: U64::new(lba),
                paddr: U64::new(e.paddr.to_raw()),
                len: U32::new(e.len),
                csum: U32::new(e.csum),
                flags: U32::new(e.flags),
                reserved: U32::new(0),
            };
        }
        Ok(())
    }

    fn encode_internal(&self, hdr: RawHeader, buf: &mut [u8]) -> Result {
        let raw = RawInternal::mut_from_bytes(buf).map_err(|_| Error::InvalidArgument)?;
        if self.len() > INTERNAL_CAPACITY || self.children.len() != self.len() {
            return Err(Error::InvalidArgument);
        }
        raw.hdr = hdr;
        for ((out, &key), c) in raw
            .entries
            .iter_mut()
            .zip(self.keys.iter())
            .zip(self.children.iter())
        {
            *out = RawInternalEntry {
                key: U64::new(key),
                child: U64::new(c.to_raw()),
            };
        }
        Ok(())
    }

    /// Validates the block `buf` read from `addr` as a node of tree `tree`
    /// and decodes it into `self` (the node validator).
    pub fn decode(&mut self, buf: &[u8], addr: PAddr, tree: u32) -> Result {
        let block = addr.error_block();
        let hdr = check_header(buf, addr)?;
        let corrupt = |what| Error::Corrupt {
            block: Some(block),
            what,
        };
        let (level, n) = (hdr.level.get(), hdr.nr_entries.get() as usize);
        let leaf = hdr.head.magic.get() == LEAF_MAGIC;
        if hdr.tree.get() != tree {
            return Err(corrupt("btree node tree id"));
        }
        if leaf != (level == 0) || level as usize >= MAX_HEIGHT {
            return Err(corrupt("btree node level"));
        }
        if hdr.reserved.iter().any(|&b| b != 0) {
            return Err(corrupt("btree node reserved bytes"));
        }
        self.addr = Some(addr);
        self.generation = hdr.generation.get();
        self.tree = tree;
        self.level = level as u8;
        self.keys.clear();
        self.children.clear();
        self.extents.clear();
        if leaf {
            self.decode_leaf(buf, n, block)
        } else {
            self.decode_internal(buf, n, block)
        }
    }

    fn decode_leaf(&mut self, buf: &[u8], n: usize, block: u64) -> Result {
        let corrupt = |what| Error::Corrupt {
            block: Some(block),
            what,
        };
        let raw = RawLeaf::ref_from_bytes(buf).map_err(|_| Error::InvalidArgument)?;
        if n > LEAF_CAPACITY {
            return Err(corrupt("btree leaf entry count"));
        }
        if raw.entries[n..].iter().any(|e| e.as_bytes_nonzero()) {
            return Err(corrupt("btree leaf unused entries"));
        }
        self.keys.reserve(n, GFP_KERNEL)?;
        self.extents.reserve(n, GFP_KERNEL)?;
        let mut next_free = 0u64;
        for (i, e) in raw.entries[..n].iter().enumerate() {
            let ext = Extent {
                paddr: PAddr::from_raw(e.paddr.get(), Some(block))?,
                len: e.len.get(),
                csum: e.csum.get(),
                flags: e.flags.get(),
            };
            ext.validate(Some(block))?;
            let lba = e.lba.get();
            if e.reserved.get() != 0 || (i > 0 && lba < next_free) {
                return Err(corrupt("btree leaf entry order"));
            }
            next_free = lba
                .checked_add(u64::from(ext.len))
                .ok_or(corrupt("btree leaf extent end"))?;
            self.keys.push(lba, GFP_KERNEL)?;
            self.extents.push(ext, GFP_KERNEL)?;
        }
        Ok(())
    }

    fn decode_internal(&mut self, buf: &[u8], n: usize, block: u64) -> Result {
        let corrupt = |what| Error::Corrupt {
            block: Some(block),
            what,
        };
        let raw = RawInternal::ref_from_bytes(buf).map_err(|_| Error::InvalidArgument)?;
        if n == 0 || n > INTERNAL_CAPACITY {
            return Err(corrupt("btree internal entry count"));
        }
        if raw.entries[n..]
            .iter()
            .any(|e| e.key.get() != 0 || e.child.get() != 0)
        {
            return Err(corrupt("btree internal unused entries"));
        }
        self.keys.reserve(n, GFP_KERNEL)?;
        self.children.reserve(n, GFP_KERNEL)?;
        for (i, e) in raw.entries[..n].iter().enumerate() {
            let key = e.key.get();
            if i > 0 && key <= self.keys[i - 1] {
                return Err(corrupt("btree internal key order"));
            }
            self.keys.push(key, GFP_KERNEL)?;
            self.children
                .push(PAddr::from_raw(e.child.get(), Some(block))?, GFP_KERNEL)?;
        }
        Ok(())
    }
}

impl RawLeafEntry {
    fn as_bytes_nonzero(&self) -> bool {
        self.lba.get() != 0
            || self.paddr.get() != 0
            || self.len.get() != 0
            || self.csum.get() != 0
            || self.flags.get() != 0
            || self.reserved.get() != 0
    }
}

/// Checks magic, checksum, location and version of a node block, as a
/// leaf if it carries the leaf magic, else as an internal node.
fn check_header(buf: &[u8], addr: PAddr) -> Result<&RawHeader> {
    let kind = if LEAF.magic_of(buf) { LEAF } else { INTERNAL };
    kind.check(buf, addr.error_block(), addr.to_raw())?;
    let (hdr, _) = RawHeader::ref_from_prefix(buf).map_err(|_| Error::InvalidArgument)?;
    Ok(hdr)
}

/// Removes entry `i` of `v`.
fn kvec_remove<T>(v: &mut KVec<T>, i: usize) -> Result<T> {
    v.remove(i).map_err(|_| Error::InvalidArgument)
}

impl NodeData {
    /// Inserts a leaf entry at `i`.
    pub fn insert_extent(&mut self, i: usize, key: u64, ext: Extent) -> Result {
        kvec_insert(&mut self.keys, i, key)?;
        kvec_insert(&mut self.extents, i, ext)
    }

    /// Inserts an internal entry at `i`.
    pub fn insert_child(&mut self, i: usize, key: u64, child: PAddr) -> Result {
        kvec_insert(&mut self.keys, i, key)?;
        kvec_insert(&mut self.children, i, child)
    }

    /// Removes entry `i` (of either kind).
    pub fn remove_at(&mut self, i: usize) -> Result {
        kvec_remove(&mut self.keys, i)?;
        if self.is_leaf() {
            kvec_remove(&mut self.extents, i).map(|_| ())
        } else {
            kvec_remove(&mut self.children, i).map(|_| ())
        }
    }

    /// Appends entries `from..to` of `other` (same level).
    pub fn append_from(&mut self, other: &NodeData, from: usize, to: usize) -> Result {
        if from > to || to > other.len() || self.level != other.level {
            return Err(Error::InvalidArgument);
        }
        self.keys
            .extend_from_slice(&other.keys[from..to], GFP_KERNEL)?;
        if self.is_leaf() {
            self.extents
                .extend_from_slice(&other.extents[from..to], GFP_KERNEL)?;
        } else {
            self.children
                .extend_from_slice(&other.children[from..to], GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Keeps the first `n` entries.
    pub fn truncate(&mut self, n: usize) {
        self.keys.truncate(n);
        self.extents.truncate(n);
        self.children.truncate(n);
    }

    /// Rotates the entries right by `n` (moves the last `n` to the front).
    pub fn rotate_right(&mut self, n: usize) -> Result {
        if n > self.len() {
            return Err(Error::InvalidArgument);
        }
        let (ne, nc) = (n.min(self.extents.len()), n.min(self.children.len()));
        self.keys.rotate_right(n);
        self.extents.rotate_right(ne);
        self.children.rotate_right(nc);
        Ok(())
    }

    /// Drops the first `n` entries.
    pub fn remove_front(&mut self, n: usize) -> Result {
        if n > self.len() {
            return Err(Error::InvalidArgument);
        }
        let (ne, nc) = (n.min(self.extents.len()), n.min(self.children.len()));
        self.keys.rotate_left(n);
        self.extents.rotate_left(ne);
        self.children.rotate_left(nc);
        self.truncate(self.len() - n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crc32c::crc32c;
    use crate::map::extent::EXTENT_CSUM;

    fn leaf(addr: PAddr) -> NodeData {
        let mut n = NodeData {
            addr: Some(addr),
            generation: 3,
            tree: TREE_LBA_MAP,
            ..NodeData::default()
        };
        for i in 0..LEAF_CAPACITY as u64 {
            let e = Extent {
                paddr: PAddr::stripe(9, i as u32 * 2).unwrap(),
                len: 2,
                csum: i as u32,
                flags: EXTENT_CSUM,
            };
            n.insert_extent(i as usize, i * 2, e).unwrap();
        }
        n
    }

    fn encoded(n: &NodeData) -> alloc::vec::Vec<u8> {
        let mut buf = alloc::vec![0u8; BLOCK_SIZE];
        n.encode(&mut buf).unwrap();
        buf
    }

    /// Rewrites the checksum after a deliberate change.
    fn reseal(buf: &mut [u8]) {
        let sum = crc32c(&buf[4..]);
        buf[..4].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn full_leaf_and_internal_round_trip() {
        let a = PAddr::perf(77).unwrap();
        let n = leaf(a);
        let mut back = NodeData::default();
        back.decode(&encoded(&n), a, TREE_LBA_MAP).unwrap();
        assert_eq!(
            (back.keys.as_slice(), back.extents.as_slice()),
            (n.keys.as_slice(), n.extents.as_slice())
        );
        let mut i = NodeData {
            addr: Some(a),
            level: 2,
            tree: TREE_LBA_MAP,
            ..NodeData::default()
        };
        for k in 0..INTERNAL_CAPACITY as u64 {
            i.insert_child(k as usize, k * 10, PAddr::perf(1000 + k).unwrap())
                .unwrap();
        }
        back.decode(&encoded(&i), a, TREE_LBA_MAP).unwrap();
        assert_eq!(back.children.as_slice(), i.children.as_slice());
        assert_eq!(back.level, 2);
    }

    #[test]
    fn each_damage_has_its_own_error() {
        let a = PAddr::perf(77).unwrap();
        let good = encoded(&leaf(a));
        let mut node = NodeData::default();
        let mut bad = good.clone();
        bad[8] ^= 1;
        assert_eq!(node.decode(&bad, a, 1), Err(Error::BadMagic { block: 77 }));
        let mut bad = good.clone();
        bad[100] ^= 1;
        assert_eq!(
            node.decode(&bad, a, 1),
            Err(Error::BadChecksum { block: 77 })
        );
        let other = PAddr::perf(78).unwrap();
        assert_eq!(
            node.decode(&good, other, 1),
            Err(Error::WrongLocation {
                block: 78,
                recorded: a.to_raw()
            })
        );
        let mut bad = good.clone();
        bad[4] = 99;
        reseal(&mut bad);
        assert_eq!(
            node.decode(&bad, a, 1),
            Err(Error::BadVersion { found: 99 })
        );
        // Sealed but inconsistent: level, count, order, reserved, tree id.
        for (at, val) in [
            (0x24, 1u8),
            (0x26, 127),
            (0x40, 200),
            (0x28, 1),
            (0x20, 2),
            (0x40 + 0x1c, 1),
        ] {
            let mut bad = good.clone();
            bad[at] = val;
            reseal(&mut bad);
            let r = node.decode(&bad, a, 1);
            assert!(
                matches!(
                    r,
                    Err(Error::Corrupt {
                        block: Some(77),
                        ..
                    })
                ),
                "byte {at:#x}: {r:?}"
            );
        }
        assert_eq!(node.decode(&good[..100], a, 1), Err(Error::InvalidArgument));
    }
}
