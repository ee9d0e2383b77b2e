// SPDX-License-Identifier: GPL-2.0

//! Every decoder of on-disk bytes, fed random bytes and mutated valid
//! blocks: it returns an error or a value, it never panics, and a valid
//! block with any byte changed is rejected. (`engine/fuzz` has the same
//! targets for cargo fuzz.)

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
