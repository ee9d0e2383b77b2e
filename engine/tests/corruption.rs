// SPDX-License-Identifier: GPL-2.0

//! Random corruption of one metadata block of a valid image (a superblock
//! copy, a page of either allocation-map copy, a WAL block) gives either a
//! clean error or a correct recovery; corrupting what the last checkpoint
//! does not need (the older superblock copy, the other map copy) always
//! recovers correctly. The WAL has one copy: a corrupt WAL block ends the
//! log there, so recovery may come back with an earlier state the volume
//! really went through (never a state it did not).

mod common;

use common::store::{apply_model, data_for, opts, Op, Store, DEV_BLOCKS, KEYS};
use common::Rng;
use proptest::prelude::*;
use std::sync::OnceLock;
use vtier_engine::io::device::{BlockDevice, MemDevice, BLOCK_SIZE};
use vtier_engine::journal::meta_device::MetaDevice;

type State = [Option<u64>; KEYS];

struct Image {
    bytes: Vec<u8>,
    /// The state after every operation; the last is the final one.
    states: Vec<State>,
}

fn image() -> &'static Image {
    static IMG: OnceLock<Image> = OnceLock::new();
    IMG.get_or_init(|| {
        let mut dev = MemDevice::new(DEV_BLOCKS).unwrap();
        let mut vol = MetaDevice::format(&mut dev, &opts(), 16).unwrap();
        let mut store = Store {
            table: [None; KEYS],
            table_block: 0,
        };
        store.checkpoint(&mut vol, &mut dev).unwrap();
        let mut model = [None; KEYS];
        let mut states = vec![model];
        let mut rng = Rng(99);
        for i in 0..300 {
            let key = rng.below(KEYS as u64) as usize;
            let op = if rng.below(5) > 0 {
                Op::Put {
                    key,
                    seed: rng.next(),
                }
            } else {
                Op::Del { key }
            };
            match op {
                Op::Put { key, seed } => store.put(&mut vol, &mut dev, key, seed).unwrap(),
                Op::Del { key } => store.del(&mut vol, &mut dev, key).unwrap(),
            }
            apply_model(&mut model, op);
            states.push(model);
            if i % 70 == 69 || vol.needs_checkpoint() {
                store.checkpoint(&mut vol, &mut dev).unwrap();
            } else if i % 9 == 8 {
                vol.commit(&mut dev).unwrap();
            }
        }
        vol.commit(&mut dev).unwrap();
        Image {
            bytes: dev.image().to_vec(),
            states,
        }
    })
}

/// Recovers `dev` and returns the state; `Ok(None)` if a mapped block
/// holds wrong bytes, `Err` for a clean error.
fn recover(dev: &mut MemDevice) -> Result<Option<State>, String> {
    let mut vol = MetaDevice::open(dev, 8).map_err(|e| e.to_string())?;
    let mut store = Store::load(&vol, dev).map_err(|e| e.to_string())?;
    vol.replay(dev, |a, d, r| store.replay(a, d, r))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; BLOCK_SIZE];
    for &(block, seed) in store.table.iter().flatten() {
        dev.read(block, &mut buf).map_err(|e| e.to_string())?;
        if buf != data_for(seed, block) {
            return Ok(None);
        }
    }
    store.checkpoint(&mut vol, dev).map_err(|e| e.to_string())?;
    Ok(Some(store.table.map(|e| e.map(|(_, s)| s))))
}

fn corrupt(bytes: &mut [u8], block: u64, off: usize, xor: u8) {
    bytes[block as usize * BLOCK_SIZE + off] ^= xor;
}

fn last() -> Option<State> {
    image().states.last().copied()
}

#[test]
fn clean_image_recovers() {
    let mut dev = MemDevice::from_image(&image().bytes).unwrap();
    assert_eq!(recover(&mut dev), Ok(last()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_metadata_block_corrupted(which in 0u64..1000, off in 0usize..BLOCK_SIZE, xor in 1u8..) {
        let img = image();
        let mut dev = MemDevice::from_image(&img.bytes).unwrap();
        let sb = *MetaDevice::open(&mut dev, 8).unwrap().superblock();
        let block = which % sb.data_start;
        corrupt(dev.image_mut(), block, off, xor);
        let in_wal = (sb.wal.start..sb.wal.start + sb.wal.blocks).contains(&block);
        match recover(&mut dev) {
            Err(_) => {}
            Ok(s) if s == last() => {}
            Ok(Some(s)) if in_wal && img.states.contains(&s) => {}
            Ok(s) => prop_assert!(false, "block {} corrupted: recovered {:?}", block, s),
        }
    }

    #[test]
    fn unneeded_copies_corrupted(slot in 0usize..2, page in 0u64..64, off in 0usize..BLOCK_SIZE, xor in 1u8..) {
        let img = image();
        let mut dev = MemDevice::from_image(&img.bytes).unwrap();
        let sb = *MetaDevice::open(&mut dev, 8).unwrap().superblock();
        let other = 1 - (sb.generation & 1);
        let block = if slot == 0 {
            other
        } else {
            sb.map.copies[other as usize] + page % sb.map.blocks
        };
        corrupt(dev.image_mut(), block, off, xor);
        prop_assert_eq!(recover(&mut dev), Ok(last()), "block {}", block);
    }
}
