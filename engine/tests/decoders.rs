// SPDX-License-Identifier: GPL-2.0

//! Every decoder of on-disk bytes, fed random bytes and mutated valid
//! blocks: it returns an error or a value, it never panics, and a valid
//! block with any byte changed is rejected. Then, for every decoder, the
//! checks behind the checksum: a field of a valid block is set to any
//! value and the block sealed again as its writer seals it; the decoder
//! must accept a value within the documented bounds or say `Corrupt`, and
//! one case per decoder shows a named field check refusing a bad value
//! that carries a correct checksum. (`engine/fuzz` has cargo fuzz targets
//! doing the same.)

use proptest::collection::vec;
use proptest::prelude::*;
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::format::superblock::{MapRoot, Role, Superblock, WalPosition, NR_ROOTS};
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::journal::wal_block::{self, BlockInfo, HEADER_SIZE};
use vtier_engine::space::bitmap;
use vtier_engine::space::summary::{self, Entry, PageId};

fn sb() -> Superblock {
    Superblock {
        generation: 9,
        volume_uuid: [1; 16],
        device_uuid: [2; 16],
        role: Role::Performance,
        nr_blocks: 1 << 16,
        device_index: 0,
        nr_devices: 1,
        wal: WalPosition {
            start: 2,
            blocks: 16,
            tail: 5,
            tail_seq: 40,
        },
        map: MapRoot {
            copies: [18, 21],
            blocks: 3,
            crc: 77,
            free: 100,
        },
        data_start: 24,
        roots: [5; NR_ROOTS],
        encryption: Encryption::AesXts {
            tweak: [3; 16],
            kcv: [4; 16],
        },
    }
}

fn summary_page() -> (Vec<u8>, PageId) {
    let id = PageId {
        level: 1,
        index: 0,
        copy: 1,
        nr_entries: 3,
    };
    let e = Entry {
        crc: 9,
        free: 100,
        longest: 50,
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    summary::encode(id, 4, 30, &[e, e, e], &mut buf).unwrap();
    (buf, id)
}

fn wal_page() -> Vec<u8> {
    let mut buf = vec![0u8; BLOCK_SIZE];
    let mut at = HEADER_SIZE;
    for i in 0..5u64 {
        at = wal_block::put_record(
            &mut buf,
            at,
            1 + i as u8,
            100 + i,
            &vec![i as u8; 37 * i as usize],
        )
        .unwrap();
    }
    let info = BlockInfo {
        seq: 3,
        generation: 2,
        nr_records: 5,
        first_record: 100,
    };
    wal_block::seal(&mut buf, 7, info, at, 0xabc).unwrap();
    buf
}

fn mutate(buf: &mut [u8], edits: &[(usize, u8)]) -> bool {
    let before = buf.to_vec();
    for &(pos, val) in edits {
        let i = pos % buf.len();
        buf[i] ^= val;
    }
    before != buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn superblock_random_bytes(bytes in vec(any::<u8>(), 0..5000), block in 0u64..3) {
        let _ = Superblock::decode(&bytes, block);
    }

    #[test]
    fn summary_random_bytes(bytes in vec(any::<u8>(), 0..5000), n in 0u32..300, i in 0u32..400) {
        let id = PageId { level: 1, index: 0, copy: 0, nr_entries: n };
        let _ = summary::verify(&bytes, 3, id, u64::MAX);
        let _ = summary::entry(&bytes, i);
    }

    #[test]
    fn wal_block_random_bytes(bytes in vec(any::<u8>(), 0..5000)) {
        let _ = wal_block::verify(&bytes, 7, 0xabc);
        let _ = wal_block::records(&bytes).count();
    }

    #[test]
    fn bitmap_page_random_bytes(page in vec(any::<u8>(), BLOCK_SIZE), from in any::<u32>(), len in any::<u32>()) {
        let s = bitmap::summarize(&page);
        prop_assert!(s.longest <= s.free);
        if let Some(at) = bitmap::find_run(&page, from, len) {
            prop_assert!(bitmap::all(&page, at, len, false));
            prop_assert!(len <= s.longest);
        }
    }

    #[test]
    fn mutated_superblock_is_rejected(edits in vec((0usize..BLOCK_SIZE, 1u8..), 1..8)) {
        let mut buf = [0u8; BLOCK_SIZE];
        sb().encode(1, &mut buf);
        prop_assert_eq!(Superblock::decode(&buf, 1), Ok(sb()));
        if mutate(&mut buf, &edits) {
            prop_assert!(Superblock::decode(&buf, 1).is_err());
        }
    }

    #[test]
    fn mutated_summary_page_is_rejected(edits in vec((0usize..BLOCK_SIZE, 1u8..), 1..8)) {
        let (mut buf, id) = summary_page();
        prop_assert!(summary::verify(&buf, 30, id, 4).is_ok());
        if mutate(&mut buf, &edits) {
            prop_assert!(summary::verify(&buf, 30, id, 4).is_err());
        }
    }

    #[test]
    fn mutated_wal_block_is_rejected(edits in vec((0usize..BLOCK_SIZE, 1u8..), 1..8)) {
        let mut buf = wal_page();
        prop_assert!(wal_block::verify(&buf, 7, 0xabc).is_ok());
        prop_assert_eq!(wal_block::records(&buf).count(), 5);
        if mutate(&mut buf, &edits) {
            prop_assert!(wal_block::verify(&buf, 7, 0xabc).is_err());
            let _ = wal_block::records(&buf).count();
        }
    }
}

// The checks behind the checksum.

use vtier_engine::btree::node::{
    NodeData, INTERNAL, INTERNAL_CAPACITY, LEAF, LEAF_CAPACITY, MAX_HEIGHT, TREE_LBA_MAP,
};
use vtier_engine::data::datalog::{self, ENTRY_ENCRYPTED, LOG_HEADER, MAX_ENTRY_BLOCKS};
use vtier_engine::error::Error;
use vtier_engine::format::superblock::SUPERBLOCK;
use vtier_engine::format::validator::BlockKind;
use vtier_engine::io::device::{BlockDevice, MemDevice};
use vtier_engine::io::paddr::PAddr;
use vtier_engine::journal::wal_block::{MAX_PAYLOAD, RECORD_HEADER, WAL_BLOCK};
use vtier_engine::kcompat::KVec;
use vtier_engine::map::extent::{Extent, EXTENT_CSUM, EXTENT_HEADED, MAX_EXTENT_LEN};
use vtier_engine::map::redo;
use vtier_engine::map::tuple_cache::{Tuple, TupleOp, Version};
use vtier_engine::space::allocator::{AllocLayout, AllocRoot, Allocator};
use vtier_engine::space::bitmap::BITS_PER_PAGE;
use vtier_engine::space::summary::{FANOUT, SUMMARY_PAGE};
use vtier_engine::stripe::chunk::{self, ChunkHeader, CHUNK_HEADER};
use vtier_engine::stripe::geometry::{StripeGeometry, MAX_MEMBERS};
use vtier_engine::stripe::meta::{self, StoreHeader, STATE_FAILED, STATE_REBUILDING, STORE_HEADER};

/// One field of a block: byte offset and width in bytes (1, 2, 4 or 8).
type Field = (usize, usize);

/// Writes the low `width` bytes of `v` at `at`, little-endian.
fn set(buf: &mut [u8], (at, width): Field, v: u64) {
    buf[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// Seals `buf` again as a block of `kind` at `location`, with the
/// engine's own sealer.
fn reseal(buf: &mut [u8], kind: BlockKind, location: u64) {
    let block: &mut [u8; BLOCK_SIZE] = buf.try_into().unwrap();
    kind.seal(block, location);
}

/// Values worth setting a field to: anything, small, the edges.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..300,
        Just(0),
        Just(u64::MAX),
        (0u32..64).prop_map(|b| 1u64 << b),
    ]
}

/// The field check named `what` refused the block (a `Corrupt` error
/// that names it), so that deleting that check fails the test.
fn refused_by<T: core::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(Error::Corrupt { what: got, .. }) if got == what => {}
        other => panic!("expected Corrupt({what}), got {other:?}"),
    }
}

fn is_corrupt<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::Corrupt { .. }))
}

#[rustfmt::skip]
const SB_FIELDS: [Field; 28] = [
    (0x018, 8), (0x020, 8), (0x030, 8), (0x040, 4), (0x044, 4), (0x048, 8),
    (0x050, 4), (0x054, 4), (0x058, 8), (0x060, 8), (0x068, 8), (0x070, 8),
    (0x078, 8), (0x080, 8), (0x088, 8), (0x090, 4), (0x094, 4), (0x098, 8),
    (0x0a0, 8), (0x0a8, 8), (0x128, 4), (0x12c, 4), (0x130, 8), (0x140, 8),
    (0x150, 8), (0x800, 1), (0xff8, 8), (0x0b0, 8),
];

/// The rules a decoded superblock keeps (FORMAT.md, Superblock).
fn superblock_in_bounds(sb: &Superblock) -> bool {
    let w = sb.wal;
    let perf = sb.role == Role::Performance;
    let regions = [
        (w.start, w.blocks),
        (sb.map.copies[0], sb.map.blocks),
        (sb.map.copies[1], sb.map.blocks),
    ];
    let inside = regions
        .iter()
        .all(|&(s, n)| n == 0 || (s >= 2 && s.checked_add(n).is_some_and(|e| e <= sb.data_start)));
    sb.nr_blocks > 2
        && sb.nr_blocks <= 1 << 32
        && sb.data_start <= sb.nr_blocks
        && sb.device_index < sb.nr_devices
        && perf == (sb.device_index == 0)
        && sb.map.blocks > 0
        && sb.map.free <= sb.nr_blocks - sb.data_start
        && inside
        && if perf {
            w.blocks >= 2 && w.tail < w.blocks
        } else {
            (w.start, w.blocks, w.tail, w.tail_seq) == (0, 0, 0, 0)
        }
}

fn redo_record(ops: &[(u64, TupleOp)]) -> Vec<u8> {
    let tuples: Vec<Tuple> = ops
        .iter()
        .map(|&(lba, op)| Tuple {
            lba,
            v: Version { op, txn: 3, seq: 0 },
        })
        .collect();
    let mut rec = KVec::new();
    redo::encode(17, 3, &tuples, &mut rec).unwrap();
    rec.to_vec()
}

fn sample_redo() -> Vec<u8> {
    let e = Extent {
        paddr: PAddr::perf(500).unwrap(),
        len: 4,
        csum: 0x1234,
        flags: EXTENT_CSUM | EXTENT_HEADED,
    };
    redo_record(&[(10, TupleOp::Map(e)), (40, TupleOp::Unmap { len: 2 })])
}

fn leaf_node(addr: PAddr) -> Vec<u8> {
    let mut n = NodeData {
        addr: Some(addr),
        generation: 4,
        tree: TREE_LBA_MAP,
        ..NodeData::default()
    };
    for i in 0..6u64 {
        let e = Extent {
            paddr: PAddr::perf(1000 + 10 * i).unwrap(),
            len: 2 + i as u32,
            csum: i as u32,
            flags: EXTENT_CSUM,
        };
        n.insert_extent(i as usize, 20 * i, e).unwrap();
    }
    let mut buf = vec![0u8; BLOCK_SIZE];
    n.encode(&mut buf).unwrap();
    buf
}

fn internal_node(addr: PAddr) -> Vec<u8> {
    let mut n = NodeData {
        addr: Some(addr),
        generation: 4,
        tree: TREE_LBA_MAP,
        level: 2,
        ..NodeData::default()
    };
    for i in 0..5u64 {
        n.insert_child(i as usize, 100 * i, PAddr::perf(70 + i).unwrap())
            .unwrap();
    }
    let mut buf = vec![0u8; BLOCK_SIZE];
    n.encode(&mut buf).unwrap();
    buf
}

/// Checks a node that decoded: its kind, level, counts and order.
fn node_in_bounds(node: &NodeData, leaf_magic: bool) -> bool {
    let level_ok = (node.level as usize) < MAX_HEIGHT && node.is_leaf() == leaf_magic;
    if node.is_leaf() {
        let mut next = 0u64;
        let mut ordered = true;
        for (i, (&lba, e)) in node.keys.iter().zip(node.extents.iter()).enumerate() {
            ordered &= e.validate(None).is_ok() && (i == 0 || lba >= next);
            next = lba.saturating_add(u64::from(e.len));
        }
        level_ok && node.len() <= LEAF_CAPACITY && node.extents.len() == node.len() && ordered
    } else {
        level_ok
            && (1..=INTERNAL_CAPACITY).contains(&node.len())
            && node.children.len() == node.len()
            && node.keys.windows(2).all(|w| w[0] < w[1])
    }
}

fn log_entry() -> datalog::Entry {
    datalog::Entry {
        seq: 9,
        lba: 4096,
        nr_blocks: 8,
        key_id: 0x5a5a,
        data_crc: 0x1234_5678,
        flags: ENTRY_ENCRYPTED,
    }
}

fn store_header() -> StoreHeader {
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

fn chunk_want() -> ChunkHeader {
    ChunkHeader {
        tag: 0x77,
        stripe: 12,
        seq: 5,
        k: 4,
        m: 2,
        index: 1,
        chunk_blocks: 1,
    }
}

fn chunk_slot() -> Vec<u8> {
    let mut slot = vec![0u8; 2 * BLOCK_SIZE];
    slot[BLOCK_SIZE..].fill(0x3c);
    chunk::seal(&mut slot, 800, &chunk_want()).unwrap();
    slot
}

/// A map copy of a device of `nr_blocks` (one summary page), formatted
/// with blocks 0..10 in use, on a memory device; returns the device, the
/// layout, the live copy's root and the generation.
fn small_map(nr_blocks: u64) -> (MemDevice, AllocLayout, AllocRoot, u64) {
    let pages = nr_blocks.div_ceil(u64::from(BITS_PER_PAGE));
    let layout = AllocLayout {
        nr_blocks,
        copies: [0, pages + 1],
    };
    let mut dev = MemDevice::new(2 * (pages + 1)).unwrap();
    let (_, root) = Allocator::format(&mut dev, layout, &[(0, 10)], 2).unwrap();
    (dev, layout, root, 2)
}

/// Rewrites what covers bitmap page `p` of copy 0 (a one-level map) after
/// it was edited: its entry's CRC (and, if `totals`, its free count and
/// longest run), the summary page's seal and the root's CRC and free
/// count, as a checkpoint writes them.
fn reseal_bitmap(dev: &mut MemDevice, pages: u64, p: u32, totals: bool, root: &mut AllocRoot) {
    let mut page = vec![0u8; BLOCK_SIZE];
    dev.read(u64::from(p), &mut page).unwrap();
    let mut sum = vec![0u8; BLOCK_SIZE];
    dev.read(pages, &mut sum).unwrap();
    let at = summary::HEADER_SIZE + p as usize * summary::ENTRY_SIZE;
    set(
        &mut sum,
        (at, 4),
        u64::from(vtier_engine::format::crc32c::crc32c(&page)),
    );
    if totals {
        let s = bitmap::summarize(&page);
        set(&mut sum, (at + 4, 4), u64::from(s.free));
        set(&mut sum, (at + 8, 4), u64::from(s.longest));
    }
    reseal(&mut sum, SUMMARY_PAGE, pages);
    dev.write(pages, &sum).unwrap();
    root.crc = summary::content_crc(&sum, true);
    root.free = (0..pages as u32)
        .map(|i| u64::from(summary::entry(&sum, i).free))
        .sum();
}

fn mount(
    dev: &mut MemDevice,
    layout: AllocLayout,
    root: AllocRoot,
    generation: u64,
) -> Result<u64, Error> {
    let mut a = Allocator::open(dev, layout, root, generation, 4)?;
    a.verify_all(dev)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resealed_superblock_field(f in 0..SB_FIELDS.len(), v in value(), block in 0u64..2) {
        let mut buf = [0u8; BLOCK_SIZE];
        sb().encode(block, &mut buf);
        set(&mut buf, SB_FIELDS[f], v);
        reseal(&mut buf, SUPERBLOCK, block);
        match Superblock::decode(&buf, block) {
            Ok(d) => {
                prop_assert!(superblock_in_bounds(&d), "{:?}", d);
                let mut out = [0u8; BLOCK_SIZE];
                d.encode(block, &mut out);
                prop_assert!(out[..] == buf[..]);
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn resealed_wal_block_field(f in 0usize..14, v in value(), fix_records in any::<bool>()) {
        let mut buf = wal_page();
        // Header fields, then the fields of the first two records.
        let second = HEADER_SIZE + wal_block::record_size(0);
        let fields: [Field; 14] = [
            (0x18, 8), (0x20, 8), (0x28, 4), (0x2c, 4), (0x30, 8), (0x38, 8),
            (HEADER_SIZE + 4, 2), (HEADER_SIZE + 6, 1), (HEADER_SIZE + 7, 1), (HEADER_SIZE + 8, 8),
            (second + 4, 2), (second + 6, 1), (second + 8, 8), (second + RECORD_HEADER, 1),
        ];
        set(&mut buf, fields[f], v);
        if fix_records {
            for at in [HEADER_SIZE, second] {
                let len = u16::from_le_bytes([buf[at + 4], buf[at + 5]]) as usize;
                if let Some(body) = buf.get(at + 4..at + RECORD_HEADER + len) {
                    let sum = vtier_engine::format::crc32c::crc32c(body);
                    buf[at..at + 4].copy_from_slice(&sum.to_le_bytes());
                }
            }
        }
        reseal(&mut buf, WAL_BLOCK, 7);
        match wal_block::verify(&buf, 7, 0xabc) {
            Ok(info) => {
                let recs: Vec<_> = wal_block::records(&buf).collect();
                prop_assert_eq!(recs.len() as u32, info.nr_records);
                for (i, r) in recs.iter().enumerate() {
                    prop_assert!(r.kind != 0 && r.payload.len() <= MAX_PAYLOAD);
                    prop_assert_eq!(r.seq, info.first_record.wrapping_add(i as u64));
                }
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn resealed_summary_page_field(f in 0usize..14, v in value()) {
        let (mut buf, id) = summary_page();
        let fields: [Field; 14] = [
            (0x18, 8), (0x20, 4), (0x24, 4), (0x28, 4), (0x2c, 4), (0x30, 8), (0x38, 8),
            (0x40, 4), (0x44, 4), (0x48, 4), (0x4c, 4), (0x64, 4), (0x68, 4), (0x70, 4),
        ];
        set(&mut buf, fields[f], v);
        reseal(&mut buf, SUMMARY_PAGE, 30);
        match summary::verify(&buf, 30, id, 4) {
            Ok(()) => {
                prop_assert!(id.nr_entries <= FANOUT);
                for i in 0..id.nr_entries {
                    let e = summary::entry(&buf, i);
                    prop_assert!(e.longest <= e.free);
                }
                prop_assert!(buf[summary::HEADER_SIZE + 3 * summary::ENTRY_SIZE..].iter().all(|&b| b == 0));
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn resealed_bitmap_page_bytes(at in 0usize..BLOCK_SIZE, x in 1u8.., totals in any::<bool>()) {
        // 40000 blocks: page 1 has bits past the end of the device.
        let (mut dev, layout, mut root, generation) = small_map(40_000);
        let p = 1u32;
        let mut page = vec![0u8; BLOCK_SIZE];
        dev.read(u64::from(p), &mut page).unwrap();
        page[at] ^= x;
        dev.write(u64::from(p), &page).unwrap();
        reseal_bitmap(&mut dev, 2, p, totals, &mut root);
        match mount(&mut dev, layout, root, generation) {
            Ok(used) => {
                // Accepted: every bit past the end still set, totals agree.
                let valid = (40_000 - BITS_PER_PAGE) as usize;
                prop_assert!((valid..BITS_PER_PAGE as usize).all(|i| page[i / 8] & (1 << (i % 8)) != 0));
                prop_assert_eq!(used, 40_000 - root.free);
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn resealed_btree_node_field(
        internal in any::<bool>(),
        entry in 0usize..8,
        f in 0usize..12,
        v in value(),
        other_kind in any::<bool>(),
    ) {
        let addr = PAddr::perf(321).unwrap();
        let mut buf = if internal { internal_node(addr) } else { leaf_node(addr) };
        let fields: [Field; 12] = if internal {
            let e = 0x40 + 16 * entry;
            [(0x18, 8), (0x20, 4), (0x24, 2), (0x26, 2), (0x28, 8), (0x38, 8),
             (e, 8), (e + 8, 8), (e, 1), (e + 8, 1), (e + 15, 1), (e + 7, 1)]
        } else {
            let e = 0x40 + 32 * entry;
            [(0x18, 8), (0x20, 4), (0x24, 2), (0x26, 2), (0x28, 8), (0x38, 8),
             (e, 8), (e + 8, 8), (e + 16, 4), (e + 20, 4), (e + 24, 4), (e + 28, 4)]
        };
        set(&mut buf, fields[f], v);
        let leaf_magic = internal == other_kind;
        reseal(&mut buf, if leaf_magic { LEAF } else { INTERNAL }, addr.to_raw());
        let mut node = NodeData::default();
        match node.decode(&buf, addr, TREE_LBA_MAP) {
            Ok(()) => {
                prop_assert!(node_in_bounds(&node, leaf_magic));
                let mut out = vec![0u8; BLOCK_SIZE];
                node.encode(&mut out).unwrap();
                prop_assert!(out == buf);
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn resealed_data_log_header_field(f in 0usize..9, v in value()) {
        let mut buf = vec![0u8; BLOCK_SIZE];
        datalog::encode(&log_entry(), 55, 9, &mut buf).unwrap();
        let fields: [Field; 9] = [
            (0x18, 8), (0x20, 8), (0x28, 4), (0x2c, 4), (0x30, 4), (0x34, 4), (0x38, 8), (0x40, 8), (0xff8, 8),
        ];
        set(&mut buf, fields[f], v);
        reseal(&mut buf, LOG_HEADER, 55);
        match datalog::decode(&buf, 55, 9) {
            Ok(e) => {
                prop_assert!((1..=MAX_ENTRY_BLOCKS).contains(&e.nr_blocks));
                prop_assert_eq!(e.flags & !ENTRY_ENCRYPTED, 0);
                prop_assert_eq!(e.flags & ENTRY_ENCRYPTED != 0, e.key_id != 0);
                prop_assert!(e.lba.checked_add(u64::from(e.nr_blocks)).is_some());
                let short = vec![0u8; (e.nr_blocks as usize - 1) * BLOCK_SIZE];
                prop_assert_eq!(datalog::verify_data(&e, &short, 55), Err(Error::InvalidArgument));
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn resealed_store_header_field(f in 0usize..26, v in value()) {
        let h = store_header();
        let block = meta::header_block(&h.geom, h.generation);
        let mut buf = vec![0u8; BLOCK_SIZE];
        meta::encode(&h, block, &mut buf).unwrap();
        let fields: [Field; 26] = [
            (0x018, 8), (0x020, 8), (0x030, 4), (0x034, 4), (0x038, 4), (0x03c, 4),
            (0x040, 4), (0x044, 4), (0x048, 8), (0x050, 8), (0x058, 8), (0x060, 8),
            (0x068, 8), (0x070, 4), (0x074, 4), (0x078, 8), (0x080, 8), (0x088, 4),
            (0x08c, 4), (0x090, 8), (0x098, 8), (0x0c0, 1), (0x0c3, 1), (0x0c6, 1),
            (0x0c7, 1), (0x100, 8),
        ];
        set(&mut buf, fields[f], v);
        reseal(&mut buf, STORE_HEADER, block);
        match meta::decode(&buf, block) {
            Ok(d) => {
                let g = d.geom;
                let n = g.nr_members as usize;
                prop_assert!((d.member as usize) < n && n <= MAX_MEMBERS);
                prop_assert!(d.map.free <= g.nr_stripes && d.map_generation >= 1);
                prop_assert_eq!(u64::from(d.map.copy), d.map_generation & 1);
                prop_assert!(d.states[n..].iter().all(|&s| s == 0));
                prop_assert!(d.states[..n].iter().all(|&s| s <= STATE_REBUILDING));
                let last = g.chunk_location(g.nr_stripes - 1, g.width() - 1);
                prop_assert!(last.is_some_and(|(_, b)| b < g.member_blocks()));
                if let Some((r, cursor)) = d.rebuild {
                    prop_assert!(d.states[r as usize] == STATE_REBUILDING && cursor <= g.nr_stripes);
                }
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn resealed_chunk_header_field(f in 0usize..10, v in value()) {
        let mut slot = chunk_slot();
        let fields: [Field; 10] = [
            (0x18, 8), (0x20, 8), (0x28, 8), (0x30, 1), (0x31, 1), (0x32, 1), (0x33, 1),
            (0x34, 4), (0x3c, 4), (0x40, 8),
        ];
        set(&mut slot[..BLOCK_SIZE], fields[f], v);
        reseal(&mut slot[..BLOCK_SIZE], CHUNK_HEADER, 800);
        match chunk::verify(&slot, 800, &chunk_want()) {
            Ok(seq) => {
                prop_assert!(seq >= 1);
                // What verified seals back to the same bytes.
                let mut out = slot.clone();
                chunk::seal(&mut out, 800, &ChunkHeader { seq, ..chunk_want() }).unwrap();
                prop_assert!(out == slot);
            }
            r => prop_assert!(is_corrupt(&r), "{:?}", r),
        }
    }

    #[test]
    fn redo_record_field(f in 0usize..16, v in value()) {
        let mut rec = sample_redo();
        let fields: [Field; 16] = [
            (0, 4), (4, 4), (8, 8), (16, 8),
            (24, 8), (32, 8), (40, 4), (44, 4), (48, 4), (52, 4),
            (56, 8), (64, 8), (72, 4), (76, 4), (80, 4), (84, 4),
        ];
        set(&mut rec, fields[f], v);
        let mut ops = Vec::new();
        match redo::decode(&rec, |lba, op| {
            ops.push((lba, op));
            Ok(())
        }) {
            Ok(h) => {
                prop_assert!(h.seq >= 1);
                prop_assert_eq!(h.nr_ops as usize, ops.len());
                prop_assert_eq!(rec.len(), 24 + 32 * ops.len());
                for (lba, op) in &ops {
                    match op {
                        TupleOp::Map(e) => prop_assert!(e.validate(None).is_ok()),
                        TupleOp::Unmap { len } => prop_assert!(*len >= 1 && *len <= MAX_EXTENT_LEN),
                    }
                    prop_assert!(lba.checked_add(u64::from(op.len())).is_some());
                }
                let tuples: Vec<(u64, TupleOp)> = ops.clone();
                prop_assert_eq!(redo_record(&tuples)[24..].to_vec(), rec[24..].to_vec());
            }
            r => prop_assert!(matches!(r, Err(Error::Corrupt { block: None, .. })), "{:?}", r),
        }
    }
}

// One check per decoder, shown refusing a bad value under a correct
// checksum: each would fail if that check were removed.

#[test]
fn superblock_field_checks_behind_the_checksum() {
    for (field, v, what) in [
        ((0x040, 4), 512, "superblock block size"),
        ((0x098, 8), 1 << 16, "superblock free count"),
        ((0x068, 8), 16, "superblock WAL position"),
        ((0x094, 4), 1, "superblock reserved bytes"),
    ] {
        let mut buf = [0u8; BLOCK_SIZE];
        sb().encode(1, &mut buf);
        set(&mut buf, field, v);
        reseal(&mut buf, SUPERBLOCK, 1);
        refused_by(Superblock::decode(&buf, 1), what);
    }
}

#[test]
fn wal_block_field_checks_behind_the_checksum() {
    // More records than the block holds, sealed.
    let mut buf = wal_page();
    set(&mut buf, (0x28, 4), 6);
    reseal(&mut buf, WAL_BLOCK, 7);
    refused_by(wal_block::verify(&buf, 7, 0xabc), "WAL block record count");
    // Used bytes past the end of the block.
    let mut buf = wal_page();
    set(&mut buf, (0x2c, 4), BLOCK_SIZE as u64);
    reseal(&mut buf, WAL_BLOCK, 7);
    refused_by(wal_block::verify(&buf, 7, 0xabc), "WAL block used bytes");
    // A record out of sequence, its own checksum and the block's correct.
    let mut buf = vec![0u8; BLOCK_SIZE];
    let at = wal_block::put_record(&mut buf, HEADER_SIZE, 1, 100, b"one").unwrap();
    let at = wal_block::put_record(&mut buf, at, 1, 102, b"two").unwrap();
    let info = BlockInfo {
        seq: 1,
        generation: 1,
        nr_records: 2,
        first_record: 100,
    };
    wal_block::seal(&mut buf, 7, info, at, 0xabc).unwrap();
    refused_by(wal_block::verify(&buf, 7, 0xabc), "WAL record sequence");
}

#[test]
fn summary_page_field_checks_behind_the_checksum() {
    let (good, id) = summary_page();
    // An entry whose longest run exceeds its free count.
    let mut buf = good.clone();
    set(&mut buf, (0x48, 4), 101);
    reseal(&mut buf, SUMMARY_PAGE, 30);
    refused_by(summary::verify(&buf, 30, id, 4), "summary entry");
    // Written by a later checkpoint than the superblock's.
    let mut buf = good.clone();
    set(&mut buf, (0x18, 8), 5);
    reseal(&mut buf, SUMMARY_PAGE, 30);
    refused_by(summary::verify(&buf, 30, id, 4), "summary page generation");
    // A used entry past nr_entries.
    let mut buf = good;
    set(&mut buf, (0x40 + 3 * 16, 4), 1);
    reseal(&mut buf, SUMMARY_PAGE, 30);
    refused_by(
        summary::verify(&buf, 30, id, 4),
        "summary page unused entries",
    );
}

#[test]
fn bitmap_page_field_checks_behind_the_checksum() {
    // A bit past the device end cleared and one block before it set, so
    // the free count stays within the page's capacity; every CRC and total
    // above the page correct.
    let (mut dev, layout, mut root, generation) = small_map(40_000);
    assert_eq!(mount(&mut dev, layout, root, generation), Ok(10));
    let mut page = vec![0u8; BLOCK_SIZE];
    dev.read(1, &mut page).unwrap();
    page[BLOCK_SIZE - 1] = 0x7f;
    page[0] |= 1;
    dev.write(1, &page).unwrap();
    reseal_bitmap(&mut dev, 2, 1, true, &mut root);
    refused_by(
        mount(&mut dev, layout, root, generation),
        "bitmap bits past the device end",
    );
    // A block marked allocated whose entry's totals still say free (CRC right).
    let (mut dev, layout, mut root, generation) = small_map(40_000);
    dev.read(0, &mut page).unwrap();
    page[100] = 0xff;
    dev.write(0, &page).unwrap();
    reseal_bitmap(&mut dev, 2, 0, false, &mut root);
    refused_by(
        mount(&mut dev, layout, root, generation),
        "bitmap page disagrees with its summary",
    );
    // An entry claiming more free blocks than its page covers.
    let (mut dev, layout, mut root, generation) = small_map(40_000);
    let mut sum = vec![0u8; BLOCK_SIZE];
    dev.read(2, &mut sum).unwrap();
    set(&mut sum, (0x50 + 4, 4), 40_000);
    set(&mut sum, (0x50 + 8, 4), 0);
    reseal(&mut sum, SUMMARY_PAGE, 2);
    dev.write(2, &sum).unwrap();
    root.crc = summary::content_crc(&sum, true);
    refused_by(
        Allocator::open(&mut dev, layout, root, generation, 4).map(|_| ()),
        "summary entry exceeds its child",
    );
}

#[test]
fn btree_node_field_checks_behind_the_checksum() {
    let addr = PAddr::perf(321).unwrap();
    let mut node = NodeData::default();
    // A leaf that says it is level 1.
    let mut buf = leaf_node(addr);
    set(&mut buf, (0x24, 2), 1);
    reseal(&mut buf, LEAF, addr.to_raw());
    refused_by(node.decode(&buf, addr, TREE_LBA_MAP), "btree node level");
    // An entry past nr_entries left in the leaf.
    let mut buf = leaf_node(addr);
    set(&mut buf, (0x26, 2), 5);
    reseal(&mut buf, LEAF, addr.to_raw());
    refused_by(
        node.decode(&buf, addr, TREE_LBA_MAP),
        "btree leaf unused entries",
    );
    // Internal keys out of order.
    let mut buf = internal_node(addr);
    set(&mut buf, (0x40 + 16, 8), 0);
    reseal(&mut buf, INTERNAL, addr.to_raw());
    refused_by(
        node.decode(&buf, addr, TREE_LBA_MAP),
        "btree internal key order",
    );
}

#[test]
fn data_log_header_field_checks_behind_the_checksum() {
    let mut good = vec![0u8; BLOCK_SIZE];
    datalog::encode(&log_entry(), 55, 9, &mut good).unwrap();
    for (field, v, what) in [
        ((0x34, 4), 0, "data log entry key id"),
        ((0x28, 4), 0, "data log entry length"),
        (
            (0x28, 4),
            u64::from(MAX_ENTRY_BLOCKS) + 1,
            "data log entry length",
        ),
        ((0x20, 8), u64::MAX - 3, "data log entry logical range"),
        ((0x34, 4), 3, "data log entry flags"),
    ] {
        let mut buf = good.clone();
        set(&mut buf, field, v);
        reseal(&mut buf, LOG_HEADER, 55);
        refused_by(datalog::decode(&buf, 55, 9), what);
    }
}

#[test]
fn store_header_field_checks_behind_the_checksum() {
    let h = store_header();
    let block = meta::header_block(&h.geom, h.generation);
    let mut good = vec![0u8; BLOCK_SIZE];
    meta::encode(&h, block, &mut good).unwrap();
    for (field, v, what) in [
        ((0x078, 8), h.geom.nr_stripes + 1, "stripe store map root"),
        ((0x0c0 + 7, 1), 1, "stripe store member states"),
        ((0x030, 4), 7, "stripe store member position"),
        ((0x060, 8), h.geom.nr_stripes - 1, "stripe store geometry"),
        (
            (0x090, 8),
            h.geom.nr_stripes + 1,
            "stripe store rebuild cursor",
        ),
    ] {
        let mut buf = good.clone();
        set(&mut buf, field, v);
        reseal(&mut buf, STORE_HEADER, block);
        refused_by(meta::decode(&buf, block), what);
    }
}

#[test]
fn chunk_header_field_checks_behind_the_checksum() {
    for (field, v, what) in [
        ((0x18, 8), 0, "chunk header reserved bytes"),
        ((0x31, 1), 3, "chunk geometry"),
        ((0x32, 1), 2, "chunk of another stripe or position"),
        ((0x28, 8), 0x78, "chunk of another store"),
    ] {
        let mut slot = chunk_slot();
        set(&mut slot, field, v);
        reseal(&mut slot[..BLOCK_SIZE], CHUNK_HEADER, 800);
        refused_by(chunk::verify(&slot, 800, &chunk_want()), what);
    }
}

#[test]
fn redo_record_field_checks_behind_the_checksum() {
    // Records have no checksum of their own: the WAL record's covers them.
    for (field, v, what) in [
        ((4, 4), 3, "redo record size"),
        ((8, 8), 0, "redo record header"),
        (
            (24 + 32 + 8, 8),
            PAddr::perf(1).unwrap().to_raw(),
            "redo op kind",
        ),
        ((24 + 28, 4), 7, "redo op kind"),
        ((24 + 32, 8), u64::MAX, "redo op range"),
    ] {
        let mut rec = sample_redo();
        set(&mut rec, field, v);
        refused_by(redo::decode(&rec, |_, _| Ok(())), what);
    }
}
