// SPDX-License-Identifier: GPL-2.0

//! Property tests (proptest, shrinking) of the copy-on-write B-tree against
//! a per-block reference model: random sequences of range maps (gluing or
//! not), unmaps, leaf moves and checkpoints, for random fill limits and
//! node-cache sizes. After every step the whole tree verifies and equals
//! the model; after every checkpoint the committed tree's blocks are
//! write-protected, so changing a committed node in place fails. A second
//! property flips one random bit of one random node and expects the read
//! to fail. `PROPTEST_CASES` raises the case count (default 48).

use proptest::prelude::*;
use std::collections::BTreeMap;
use vtier_engine::btree::node::TREE_LBA_MAP;
use vtier_engine::btree::node_tm::{NodeStore, NodeTm};
use vtier_engine::btree::tree::{create, BTreeConfig, ReadTree, WriteTree};
use vtier_engine::io::paddr::PAddr;
use vtier_engine::map::extent::Extent;
use vtier_engine::testing::mem_node_store::MemNodeStore;
use vtier_engine::testing::tree_check::check_tree;

#[derive(Clone, Debug)]
enum Op {
    Map {
        lba: u64,
        len: u64,
        glue: bool,
        r: u64,
    },
    Unmap {
        lba: u64,
        len: u64,
    },
    MoveLeaf {
        key: u64,
    },
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..400u64, 1..40u64, any::<bool>(), 0..64u64)
            .prop_map(|(lba, len, glue, r)| Op::Map { lba, len, glue, r }),
        2 => (0..400u64, 1..80u64).prop_map(|(lba, len)| Op::Unmap { lba, len }),
        1 => (0..440u64).prop_map(|key| Op::MoveLeaf { key }),
        1 => Just(Op::Checkpoint),
    ]
}

type Model = BTreeMap<u64, u64>;

fn flatten(tm: &NodeTm<MemNodeStore>, cfg: &BTreeConfig, root: PAddr) -> Model {
    let mut out = Model::new();
    ReadTree::new(tm, *cfg, root)
        .scan(0, u64::MAX, |k, e| {
            (0..e.len as u64).for_each(|i| {
                out.insert(k + i, e.paddr.error_block() + i);
            });
            Ok(())
        })
        .unwrap();
    out
}

fn build(
    ops: &[Op],
    cfg: &BTreeConfig,
    cache: usize,
) -> Result<(NodeTm<MemNodeStore>, PAddr), TestCaseError> {
    let mut tm = NodeTm::with_cache(MemNodeStore::new(8), 1, cache).unwrap();
    let mut root = create(&mut tm, cfg).unwrap();
    let mut model = Model::new();
    for (step, op) in ops.iter().enumerate() {
        let mut w = WriteTree::new(&mut tm, *cfg, &mut root);
        match *op {
            Op::Map { lba, len, glue, r } => {
                // Gluing writes continue one physical run; others scatter.
                let pb = if glue {
                    1_000_000 + lba
                } else {
                    2_000_000 + r * 4096
                };
                let e = Extent {
                    paddr: PAddr::perf(pb).unwrap(),
                    len: len as u32,
                    csum: 0,
                    flags: 0,
                };
                w.map(lba, e).unwrap();
                (0..len).for_each(|i| {
                    model.insert(lba + i, pb + i);
                });
            }
            Op::Unmap { lba, len } => {
                w.unmap(lba, len).unwrap();
                (lba..lba + len).for_each(|b| {
                    model.remove(&b);
                });
            }
            Op::MoveLeaf { key } => {
                let to = tm.store_mut().alloc_block(None).unwrap();
                WriteTree::new(&mut tm, *cfg, &mut root)
                    .move_leaf(key, to)
                    .unwrap();
            }
            Op::Checkpoint => {
                tm.pre_checkpoint().unwrap();
                tm.checkpoint_done().unwrap();
                let nodes = check_tree(&tm, cfg, root).unwrap().nodes;
                let store = tm.store_mut();
                store.unprotect_all();
                store.protect(&nodes).unwrap();
            }
        }
        let report = check_tree(&tm, cfg, root);
        prop_assert!(report.is_ok(), "step {}: {:?}", step, report.err());
        prop_assert_eq!(&flatten(&tm, cfg, root), &model, "step {}", step);
    }
    Ok((tm, root))
}

fn config() -> impl Strategy<Value = BTreeConfig> {
    (3usize..9, 3usize..7).prop_map(|(leaf_max, internal_max)| BTreeConfig {
        tree: TREE_LBA_MAP,
        leaf_max,
        internal_max,
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn btree_matches_model(
        ops in prop::collection::vec(op(), 1..160),
        cfg in config(),
        cache in prop_oneof![Just(0usize), Just(16), Just(1024)],
    ) {
        build(&ops, &cfg, cache)?;
    }

    #[test]
    fn any_bit_flip_in_a_node_is_detected(
        ops in prop::collection::vec(op(), 20..80),
        cfg in config(),
        pick in any::<prop::sample::Index>(),
        bit in 0usize..4096 * 8,
    ) {
        let (mut tm, root) = build(&ops, &cfg, 16)?;
        let nodes = check_tree(&tm, &cfg, root).unwrap().nodes;
        tm.write_back_and_drop_cache().unwrap();
        let victim = nodes[pick.index(nodes.len())];
        tm.store_mut().unprotect_all();
        tm.store_mut().block_mut(victim).unwrap()[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(check_tree(&tm, &cfg, root).is_err(), "flip of bit {} in {} undetected", bit, victim);
    }
}
