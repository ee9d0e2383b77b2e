// SPDX-License-Identifier: GPL-2.0

//! Crash test of the copy-on-write B-tree on a block device: a workload of
//! range maps and unmaps over several checkpoint generations runs once on a
//! recording `FaultDevice`, nodes allocated by the bitmap allocator. Then,
//! for every single device write, the device as a power cut during that
//! write leaves it (the write torn at a sector, none / all / a random subset
//! of the unflushed writes kept) is mounted at the last durable root, and
//! the tree must verify completely (every node, every shape rule) and hold
//! exactly the mapping of that checkpoint.
//!
//! The two root blocks stand in for the superblock's root slots (blocks 0
//! and 1, alternating per generation); `VTIER_BTREE_CRASH_GENS` (default
//! 30) sets the number of generations.

use std::collections::BTreeMap;
use vtier_engine::btree::dev_node_store::DevNodeStore;
use vtier_engine::btree::node::TREE_LBA_MAP;
use vtier_engine::btree::node_tm::{NodeStore, NodeTm};
use vtier_engine::btree::tree::{create, BTreeConfig, ReadTree, WriteTree};
use vtier_engine::error::{Error, Result};
use vtier_engine::format::crc32c::crc32c;
use vtier_engine::io::device::{BlockDevice, MemDevice, BLOCK_SIZE};
use vtier_engine::io::paddr::PAddr;
use vtier_engine::map::extent::Extent;
use vtier_engine::space::allocator::{AllocLayout, Allocator};
use vtier_engine::space::geometry::Geometry;
use vtier_engine::testing::fault_device::{image_after_cut, FaultDevice, Survivors};
use vtier_engine::testing::tree_check::check_tree;

const CFG: BTreeConfig = BTreeConfig {
    tree: TREE_LBA_MAP,
    leaf_max: 5,
    internal_max: 4,
};
const DEV_BLOCKS: u64 = 1024;
type Model = BTreeMap<u64, u64>;

fn write_root(dev: &mut dyn BlockDevice, gen: u64, root: PAddr) -> Result {
    let mut buf = vec![0u8; BLOCK_SIZE];
    buf[4..12].copy_from_slice(&gen.to_le_bytes());
    buf[12..20].copy_from_slice(&root.to_raw().to_le_bytes());
    let sum = crc32c(&buf[4..]);
    buf[..4].copy_from_slice(&sum.to_le_bytes());
    dev.write(gen & 1, &buf)?;
    dev.flush()
}

fn read_root(dev: &mut MemDevice) -> (u64, PAddr) {
    let mut best = None;
    for b in 0..2 {
        let mut buf = vec![0u8; BLOCK_SIZE];
        dev.read(b, &mut buf).unwrap();
        if u32::from_le_bytes(buf[..4].try_into().unwrap()) != crc32c(&buf[4..]) {
            continue;
        }
        let gen = u64::from_le_bytes(buf[4..12].try_into().unwrap());
        let raw = u64::from_le_bytes(buf[12..20].try_into().unwrap());
        if best.is_none_or(|(g, _)| gen > g) {
            best = Some((gen, PAddr::from_raw(raw, Some(b)).unwrap()));
        }
    }
    best.expect("no valid root block")
}

/// A read-only node store over a recovered image.
struct Image(MemDevice);

impl NodeStore for Image {
    fn read_block(&mut self, addr: PAddr, buf: &mut [u8]) -> Result {
        self.0.read(addr.error_block(), buf)
    }
    fn write_block(&mut self, _: PAddr, _: &[u8]) -> Result {
        Err(Error::ReadOnly)
    }
    fn alloc_block(&mut self, _: Option<PAddr>) -> Result<PAddr> {
        Err(Error::ReadOnly)
    }
    fn free_block(&mut self, _: PAddr) -> Result {
        Err(Error::ReadOnly)
    }
    fn flush(&mut self) -> Result {
        Ok(())
    }
}

type Store = DevNodeStore<FaultDevice, Allocator>;

fn checkpoint(tm: &mut NodeTm<Store>, root: PAddr) {
    let gen = tm.generation();
    tm.pre_checkpoint().unwrap();
    let s = tm.store_mut();
    s.meta.write_copy(&mut s.dev, gen).unwrap();
    s.dev.flush().unwrap();
    write_root(&mut s.dev, gen, root).unwrap();
    tm.checkpoint_done().unwrap();
}

fn ext(pb: u64, len: u64) -> Extent {
    Extent {
        paddr: PAddr::perf(pb).unwrap(),
        len: len as u32,
        csum: 0,
        flags: 0,
    }
}

#[test]
fn every_crash_point_leaves_the_last_checkpoint_intact() {
    let gens: u64 = std::env::var("VTIER_BTREE_CRASH_GENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let copy = Geometry::new(DEV_BLOCKS).unwrap().copy_blocks();
    let layout = AllocLayout {
        nr_blocks: DEV_BLOCKS,
        copies: [2, 2 + copy],
    };
    let mut mem = MemDevice::new(DEV_BLOCKS).unwrap();
    let (alloc, _) = Allocator::format(&mut mem, layout, &[(0, 2 + 2 * copy)], 1).unwrap();
    let dev = FaultDevice::new(mem.image()).unwrap();
    let mut tm = NodeTm::with_cache(DevNodeStore { dev, meta: alloc }, 2, 8).unwrap();
    let mut root = create(&mut tm, &CFG).unwrap();
    checkpoint(&mut tm, root);
    // Everything so far is flushed: record from here on.
    let base = tm.store().unwrap().dev.current().to_vec();
    tm.store_mut().dev.record();
    let mut snapshots = BTreeMap::from([(2u64, Model::new())]);
    let mut model = Model::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..gens {
        for _ in 0..25 {
            let (lba, len) = (next() % 300, 1 + next() % 12);
            let mut w = WriteTree::new(&mut tm, CFG, &mut root);
            if next() % 4 == 0 {
                w.unmap(lba, len).unwrap();
                (lba..lba + len).for_each(|b| {
                    model.remove(&b);
                });
            } else {
                let pb = 100_000 + next() % 50 * 100;
                w.map(lba, ext(pb, len)).unwrap();
                (0..len).for_each(|i| {
                    model.insert(lba + i, pb + i);
                });
            }
        }
        let gen = tm.generation();
        checkpoint(&mut tm, root);
        snapshots.insert(gen, model.clone());
    }
    let log = tm.into_store().dev.take_log();
    let mut tried = 0;
    for cut in 0.. {
        let modes = [
            Survivors::None,
            Survivors::All,
            Survivors::Random(cut as u64 * 31 + 7),
        ];
        let mode = modes[cut % 3];
        let Some(img) = image_after_cut(&base, &log, cut, mode, cut % 9).unwrap() else {
            break;
        };
        tried += 1;
        let mut img = img;
        let (gen, root) = read_root(&mut img);
        let tm = NodeTm::with_cache(Image(img), gen + 1, 0).unwrap();
        check_tree(&tm, &CFG, root).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let mut got = Model::new();
        ReadTree::new(&tm, CFG, root)
            .scan(0, u64::MAX, |k, e| {
                (0..e.len as u64).for_each(|i| {
                    got.insert(k + i, e.paddr.error_block() + i);
                });
                Ok(())
            })
            .unwrap();
        assert_eq!(&got, &snapshots[&gen], "cut {cut}: generation {gen}");
    }
    eprintln!("btree crash points tried: {tried}, failures: 0");
    assert!(tried > 50);
}
