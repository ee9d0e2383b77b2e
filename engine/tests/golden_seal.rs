// SPDX-License-Identifier: GPL-2.0

//! Golden blocks: one block of every metadata type, sealed from fixed
//! inputs, compared with checksums recorded when the format was version 4.
//!
//! Each case pins the CRC32C the block stores in its first four bytes and
//! the CRC32C of all 4096 bytes (computed here with the `crc32c` crate, not
//! the engine's own code), so that any change to the bytes a sealer writes,
//! header or body, fails here. The recorded values were taken from the
//! engine before the block types shared one validator; a mismatch means the
//! on-disk format changed, which must bump the format version instead.

use vtier_engine::btree::node::{NodeData, TREE_LBA_MAP};
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::data::datalog::{self, Entry as LogEntry, ENTRY_ENCRYPTED};
use vtier_engine::format::superblock::{MapRoot, Role, Superblock, WalPosition, NR_ROOTS};
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::io::paddr::PAddr;
use vtier_engine::journal::wal_block::{self, BlockInfo, HEADER_SIZE};
use vtier_engine::map::extent::{Extent, EXTENT_CSUM, EXTENT_HEADED};
use vtier_engine::space::allocator::AllocRoot;
use vtier_engine::space::summary::{self, Entry as SumEntry, PageId};
use vtier_engine::stripe::chunk::{self, ChunkHeader};
use vtier_engine::stripe::geometry::{StripeGeometry, MAX_MEMBERS};
use vtier_engine::stripe::meta::{self, StoreHeader};

/// The stored checksum and the CRC32C of the whole block.
fn sums(block: &[u8]) -> (u32, u32) {
    assert_eq!(block.len(), BLOCK_SIZE);
    let stored = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    assert_eq!(stored, crc32c::crc32c(&block[4..]), "stored checksum");
    (stored, crc32c::crc32c(block))
}

fn superblock() -> Vec<u8> {
    let sb = Superblock {
        generation: 0x1_0000_0007,
        volume_uuid: *b"volume-uuid-0123",
        device_uuid: *b"device-uuid-4567",
        role: Role::Performance,
        nr_blocks: 1 << 20,
        device_index: 0,
        nr_devices: 4,
        wal: WalPosition {
            start: 2,
            blocks: 64,
            tail: 17,
            tail_seq: 1234,
        },
        map: MapRoot {
            copies: [66, 100],
            blocks: 34,
            crc: 0xdead_beef,
            free: 999_000,
        },
        data_start: 134,
        roots: core::array::from_fn(|i| 0x0101_0101 * i as u64),
        encryption: Encryption::AesXts {
            tweak: *b"tweak-tweak-twea",
            kcv: *b"kcv-kcv-kcv-kcv-",
        },
    };
    assert_eq!(NR_ROOTS, 16);
    let mut buf = [0u8; BLOCK_SIZE];
    sb.encode(1, &mut buf);
    buf.to_vec()
}

fn wal_block() -> Vec<u8> {
    let mut buf = vec![0u8; BLOCK_SIZE];
    let mut at = HEADER_SIZE;
    for i in 0..3u8 {
        let payload: Vec<u8> = (0..21 * u32::from(i) + 5).map(|b| b as u8 ^ i).collect();
        at = wal_block::put_record(&mut buf, at, 1 + i, 500 + u64::from(i), &payload).unwrap();
    }
    let info = BlockInfo {
        seq: 77,
        generation: 12,
        nr_records: 3,
        first_record: 500,
    };
    wal_block::seal(&mut buf, 9, info, at, 0x0123_4567_89ab_cdef).unwrap();
    buf
}

fn summary_page() -> Vec<u8> {
    let id = PageId {
        level: 2,
        index: 1,
        copy: 1,
        nr_entries: 5,
    };
    let entries: Vec<SumEntry> = (0..5u32)
        .map(|i| SumEntry {
            crc: 0x1111_1111 * (i + 1),
            free: 1000 + i,
            longest: 10 * i,
        })
        .collect();
    let mut buf = vec![0u8; BLOCK_SIZE];
    summary::encode(id, 42, 300, &entries, &mut buf).unwrap();
    buf
}

fn leaf_node() -> Vec<u8> {
    let mut n = NodeData {
        addr: Some(PAddr::perf(4321).unwrap()),
        generation: 8,
        tree: TREE_LBA_MAP,
        ..NodeData::default()
    };
    for i in 0..5u64 {
        let e = Extent {
            paddr: PAddr::perf(10_000 + 20 * i).unwrap(),
            len: 3 + i as u32,
            csum: 0xabc0 + i as u32,
            flags: EXTENT_CSUM | EXTENT_HEADED,
        };
        n.insert_extent(i as usize, 100 * i, e).unwrap();
    }
    let mut buf = vec![0u8; BLOCK_SIZE];
    n.encode(&mut buf).unwrap();
    buf
}

fn internal_node() -> Vec<u8> {
    let mut n = NodeData {
        addr: Some(PAddr::stripe(3, 17).unwrap()),
        generation: 9,
        tree: TREE_LBA_MAP,
        level: 1,
        ..NodeData::default()
    };
    for i in 0..4u64 {
        n.insert_child(i as usize, 1000 * i, PAddr::perf(50 + i).unwrap())
            .unwrap();
    }
    let mut buf = vec![0u8; BLOCK_SIZE];
    n.encode(&mut buf).unwrap();
    buf
}

fn datalog_header() -> Vec<u8> {
    let e = LogEntry {
        seq: 31,
        lba: 0x1_0000,
        nr_blocks: 8,
        key_id: 0x5eed_5eed,
        data_crc: 0x0bad_cafe,
        flags: ENTRY_ENCRYPTED,
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    datalog::encode(&e, 2048, 0xfeed_f00d_1234_5678, &mut buf).unwrap();
    buf
}

fn chunk_header() -> Vec<u8> {
    let h = ChunkHeader {
        tag: 0x7a67_7a67,
        stripe: 12,
        seq: 345,
        k: 4,
        m: 2,
        index: 3,
        chunk_blocks: 2,
    };
    let mut slot = vec![0u8; 3 * BLOCK_SIZE];
    for (i, b) in slot[BLOCK_SIZE..].iter_mut().enumerate() {
        *b = (i * 13 + 5) as u8;
    }
    chunk::seal(&mut slot, 777, &h).unwrap();
    slot.truncate(BLOCK_SIZE);
    slot
}

fn store_header() -> Vec<u8> {
    let geom = StripeGeometry::new(4, 2, 7, 8, 40, 5000).unwrap();
    let mut states = [0; MAX_MEMBERS];
    states[3] = meta::STATE_REBUILDING;
    states[5] = meta::STATE_FAILED;
    let h = StoreHeader {
        generation: 11,
        uuid: *b"store-uuid-89abc",
        member: 2,
        geom,
        map_generation: 6,
        map: AllocRoot {
            copy: 0,
            crc: 0x5151_a5a5,
            free: 7,
        },
        seq_limit: 1 << 21,
        rebuild: Some((3, 19)),
        states,
    };
    let block = meta::header_block(&h.geom, h.generation);
    let mut buf = vec![0u8; BLOCK_SIZE];
    meta::encode(&h, block, &mut buf).unwrap();
    buf
}

#[test]
fn sealed_blocks_match_the_recorded_format() {
    let cases: [(&str, Vec<u8>, (u32, u32)); 8] = [
        ("superblock", superblock(), (0xc96d_e8d5, 0x7ccf_21fb)),
        ("WAL block", wal_block(), (0x83ec_47e9, 0xac31_35e6)),
        ("summary page", summary_page(), (0x5f84_cfe1, 0x6b6c_576f)),
        ("B-tree leaf", leaf_node(), (0xd273_1c2a, 0xf5af_afa5)),
        (
            "B-tree internal node",
            internal_node(),
            (0xf70d_c459, 0x6ebe_b348),
        ),
        (
            "data log header",
            datalog_header(),
            (0x141a_6589, 0x8c74_0f8a),
        ),
        ("chunk header", chunk_header(), (0xc37f_8ae6, 0xbf75_d7e1)),
        (
            "stripe store header",
            store_header(),
            (0x7916_e8c7, 0x8b60_275c),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, block, want) in &cases {
        let got = sums(block);
        if got != *want {
            wrong.push(format!("{name}: ({:#010x}, {:#010x})", got.0, got.1));
        }
    }
    assert!(
        wrong.is_empty(),
        "sealed blocks differ:\n{}",
        wrong.join("\n")
    );
}
