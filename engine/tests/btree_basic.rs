// SPDX-License-Identifier: GPL-2.0

//! B-tree insert, lookup, remove, range maps, copy-on-write and corruption,
//! against a per-block reference model.

use std::collections::BTreeMap;
use vtier_engine::btree::node::TREE_LBA_MAP;
use vtier_engine::btree::node_tm::NodeTm;
use vtier_engine::btree::tree::{create, BTreeConfig, ReadTree, WriteTree};
use vtier_engine::error::Error;
use vtier_engine::io::paddr::PAddr;
use vtier_engine::map::extent::{Extent, EXTENT_CSUM};
use vtier_engine::testing::mem_node_store::MemNodeStore;
use vtier_engine::testing::tree_check::check_tree;

const SMALL: BTreeConfig = BTreeConfig {
    tree: TREE_LBA_MAP,
    leaf_max: 4,
    internal_max: 4,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ext(block: u64, len: u32) -> Extent {
    Extent {
        paddr: PAddr::perf(block).unwrap(),
        len,
        csum: 0,
        flags: 0,
    }
}

fn setup(cfg: &BTreeConfig) -> (NodeTm<MemNodeStore>, PAddr) {
    let mut tm = NodeTm::new(MemNodeStore::new(1000), 1).unwrap();
    let root = create(&mut tm, cfg).unwrap();
    (tm, root)
}

/// Per-block view of the tree: lba → physical block number.
fn flatten(tm: &NodeTm<MemNodeStore>, cfg: &BTreeConfig, root: PAddr) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    ReadTree::new(tm, *cfg, root)
        .scan(0, u64::MAX, |k, e| {
            let base = e.paddr.error_block();
            for i in 0..e.len as u64 {
                out.insert(k + i, base + i);
            }
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn point_insert_lookup_remove_keep_shape() {
    let (mut tm, mut root) = setup(&SMALL);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut model = BTreeMap::new();
    for step in 0..600 {
        let key = rng.below(300) * 10;
        let mut w = WriteTree::new(&mut tm, SMALL, &mut root);
        if rng.below(3) == 0 {
            let got = w.remove(key).unwrap();
            assert_eq!(got, model.remove(&key), "step {step} remove {key}");
        } else {
            let e = ext(key, 1 + rng.below(5) as u32);
            assert_eq!(w.insert(key, e).unwrap(), model.insert(key, e));
        }
        check_tree(&tm, &SMALL, root).unwrap_or_else(|e| panic!("step {step}: {e}"));
    }
    let r = ReadTree::new(&tm, SMALL, root);
    for k in 0..3000 {
        let want = model.range(..=k).next_back().map(|(&k, &e)| (k, e));
        assert_eq!(r.floor(k).unwrap(), want, "floor {k}");
        let want = model.range(k..).next().map(|(&k, &e)| (k, e));
        assert_eq!(r.ceil(k).unwrap(), want, "ceil {k}");
    }
    let report = check_tree(&tm, &SMALL, root).unwrap();
    assert!(report.height >= 3, "height {}", report.height);
    let keys: Vec<u64> = model.keys().copied().collect();
    for k in keys {
        WriteTree::new(&mut tm, SMALL, &mut root).remove(k).unwrap();
        check_tree(&tm, &SMALL, root).unwrap();
    }
    assert_eq!(check_tree(&tm, &SMALL, root).unwrap().height, 1);
}

#[test]
fn ranges_cut_and_glue_like_the_model() {
    let (mut tm, mut root) = setup(&SMALL);
    let mut rng = Rng(12345);
    let mut model = BTreeMap::new();
    for step in 0..400 {
        let lba = rng.below(500);
        let len = 1 + rng.below(40);
        let mut w = WriteTree::new(&mut tm, SMALL, &mut root);
        if rng.below(4) == 0 {
            w.unmap(lba, len).unwrap();
            for b in lba..lba + len {
                model.remove(&b);
            }
        } else {
            // Half the writes continue the previous physical run, to glue.
            let pb = 1_000_000 + rng.below(2) * lba + rng.below(1000) * 64;
            w.map(lba, ext(pb, len as u32)).unwrap();
            for i in 0..len {
                model.insert(lba + i, pb + i);
            }
        }
        check_tree(&tm, &SMALL, root).unwrap_or_else(|e| panic!("step {step}: {e}"));
        assert_eq!(flatten(&tm, &SMALL, root), model, "step {step}");
    }
}

#[test]
fn sequential_writes_glue_into_one_extent_with_combined_checksum() {
    let (mut tm, mut root) = setup(&BTreeConfig::LBA_MAP);
    let data: Vec<u8> = (0..64 * 4096u32).map(|i| ((i * 7) >> 5) as u8).collect();
    for i in 0..64u64 {
        let block = &data[i as usize * 4096..][..4096];
        let e = Extent {
            paddr: PAddr::perf(5000 + i).unwrap(),
            len: 1,
            csum: crc32c::crc32c(block),
            flags: EXTENT_CSUM,
        };
        WriteTree::new(&mut tm, BTreeConfig::LBA_MAP, &mut root)
            .map(100 + i, e)
            .unwrap();
    }
    let r = ReadTree::new(&tm, BTreeConfig::LBA_MAP, root);
    let (k, e) = r.floor(150).unwrap().unwrap();
    assert_eq!((k, e.len, e.flags), (100, 64, EXTENT_CSUM));
    assert_eq!(e.csum, crc32c::crc32c(&data));
    let p = r.lookup(120).unwrap();
    assert_eq!((p.start, p.len), (120, 44));
    assert_eq!(p.value.unwrap().paddr, PAddr::perf(5020).unwrap());
    let hole = r.lookup(10).unwrap();
    assert_eq!((hole.len, hole.value), (90, None));
}

#[test]
fn committed_nodes_are_never_written_and_shadowed_once_per_generation() {
    let (mut tm, mut root) = setup(&SMALL);
    let mut rng = Rng(777);
    for gen in 0..20 {
        for _ in 0..30 {
            let lba = rng.below(2000);
            let mut w = WriteTree::new(&mut tm, SMALL, &mut root);
            if rng.below(3) == 0 {
                w.unmap(lba, 1 + rng.below(30)).unwrap();
            } else {
                w.map(lba, ext(rng.below(1 << 30), 1 + rng.below(8) as u32))
                    .unwrap();
            }
        }
        let before = tm.stats();
        // Rewriting the same key again in this generation shadows nothing new.
        WriteTree::new(&mut tm, SMALL, &mut root)
            .map(5, ext(77, 1))
            .unwrap();
        WriteTree::new(&mut tm, SMALL, &mut root)
            .map(5, ext(99, 1))
            .unwrap();
        assert!(tm.stats().shadows - before.shadows <= 4, "gen {gen}");
        // Checkpoint: the committed tree becomes read-only.
        tm.pre_checkpoint().unwrap();
        tm.checkpoint_done().unwrap();
        let report = check_tree(&tm, &SMALL, root).unwrap();
        let store = tm.store_mut();
        store.unprotect_all();
        store.protect(&report.nodes).unwrap();
        assert_eq!(
            store.blocks_in_use(),
            report.nodes.len() as u64,
            "leak at gen {gen}"
        );
    }
}

#[test]
fn corruption_is_detected_on_read() {
    let (mut tm, mut root) = setup(&SMALL);
    for k in 0..200 {
        WriteTree::new(&mut tm, SMALL, &mut root)
            .insert(k * 3, ext(k, 1))
            .unwrap();
    }
    let nodes = check_tree(&tm, &SMALL, root).unwrap().nodes;
    tm.write_back_and_drop_cache().unwrap();
    let mut rng = Rng(4242);
    for trial in 0..200 {
        let victim = nodes[rng.below(nodes.len() as u64) as usize];
        let byte = rng.below(4096) as usize;
        let bit = 1u8 << rng.below(8);
        tm.write_back_and_drop_cache().unwrap();
        tm.store_mut().block_mut(victim).unwrap()[byte] ^= bit;
        let r = check_tree(&tm, &SMALL, root);
        assert!(
            r.is_err(),
            "trial {trial}: flip at {byte} of {victim} not detected"
        );
        tm.store_mut().block_mut(victim).unwrap()[byte] ^= bit;
    }
    tm.write_back_and_drop_cache().unwrap();
    check_tree(&tm, &SMALL, root).unwrap();
    tm.write_back_and_drop_cache().unwrap();
    // A misdirected write: a valid node in the wrong block.
    let (a, b) = (nodes[1], nodes[2]);
    let copy = tm.store_mut().block_mut(a).unwrap().to_vec();
    tm.store_mut().block_mut(b).unwrap().copy_from_slice(&copy);
    let err = check_tree(&tm, &SMALL, root).unwrap_err();
    assert_eq!(
        err,
        Error::WrongLocation {
            block: b.error_block(),
            recorded: a.to_raw()
        }
    );
}

#[test]
fn leaves_move_and_their_parents_are_repointed() {
    use vtier_engine::btree::node_tm::NodeStore;
    let (mut tm, mut root) = setup(&SMALL);
    let mut model = BTreeMap::new();
    for k in 0..120u64 {
        let e = ext(9000 + k * 2, 1);
        WriteTree::new(&mut tm, SMALL, &mut root)
            .insert(k * 4, e)
            .unwrap();
        model.insert(k * 4, e);
    }
    tm.pre_checkpoint().unwrap();
    tm.checkpoint_done().unwrap();
    let before = check_tree(&tm, &SMALL, root).unwrap();
    tm.store_mut().protect(&before.nodes).unwrap();
    let in_use = tm.store().unwrap().blocks_in_use();
    for key in [0u64, 200, 476, 333] {
        let to = tm.store_mut().alloc_block(None).unwrap();
        let old = WriteTree::new(&mut tm, SMALL, &mut root)
            .move_leaf(key, to)
            .unwrap();
        assert!(before.nodes.contains(&old));
        let after = check_tree(&tm, &SMALL, root).unwrap();
        assert!(after.nodes.contains(&to) && !after.nodes.contains(&old));
    }
    let r = ReadTree::new(&tm, SMALL, root);
    for (&k, &e) in &model {
        assert_eq!(r.floor(k).unwrap(), Some((k, e)));
    }
    tm.pre_checkpoint().unwrap();
    tm.checkpoint_done().unwrap();
    let after = check_tree(&tm, &SMALL, root).unwrap();
    assert_eq!(
        tm.store().unwrap().blocks_in_use(),
        after.nodes.len() as u64
    );
    assert!(tm.store().unwrap().blocks_in_use() <= in_use + 4);
}
