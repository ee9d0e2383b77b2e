// SPDX-License-Identifier: GPL-2.0

//! Transaction rules one by one: isolation, first committer wins, abort
//! drops everything, redo records round-trip and are checked, recovery
//! skips what the checkpoint holds.

use vtier_engine::btree::node_tm::NodeTm;
use vtier_engine::btree::range_map::Piece;
use vtier_engine::btree::tree::{create, BTreeConfig, ReadTree, WriteTree};
use vtier_engine::io::paddr::PAddr;
use vtier_engine::map::extent::Extent;
use vtier_engine::map::redo::{self, MemRedoLog};
use vtier_engine::map::tuple_cache::{Tuple, TupleOp, Version};
use vtier_engine::map::txn::{Outcome, Txn, TxnManager};
use vtier_engine::testing::mem_node_store::MemNodeStore;

const CFG: BTreeConfig = BTreeConfig::LBA_MAP;

fn ext(block: u64, len: u32) -> Extent {
    Extent {
        paddr: PAddr::perf(block).unwrap(),
        len,
        csum: 0,
        flags: 0,
    }
}

struct Fx {
    tm: NodeTm<MemNodeStore>,
    root: PAddr,
    mgr: TxnManager,
    log: MemRedoLog,
}

impl Fx {
    fn new() -> Self {
        let mut tm = NodeTm::new(MemNodeStore::new(10), 1).unwrap();
        let root = create(&mut tm, &CFG).unwrap();
        Fx {
            tm,
            root,
            mgr: TxnManager::new(0),
            log: MemRedoLog::default(),
        }
    }

    fn get(&mut self, t: &Txn, lba: u64) -> Piece<Extent> {
        let tree = ReadTree::new(&self.tm, CFG, self.root);
        self.mgr.lookup(t, &tree, lba, 1000).unwrap()
    }

    fn commit(&mut self, t: Txn) -> Outcome {
        self.mgr.commit(t, &mut self.log, true).unwrap()
    }

    fn checkpoint(&mut self) -> u64 {
        let mut w = WriteTree::new(&mut self.tm, CFG, &mut self.root);
        let seq = self.mgr.checkpoint(&mut w).unwrap();
        self.tm.pre_checkpoint().unwrap();
        self.tm.checkpoint_done().unwrap();
        seq
    }
}

#[test]
fn writes_are_private_until_commit() {
    let mut f = Fx::new();
    let a = f.mgr.begin().unwrap();
    let b = f.mgr.begin().unwrap();
    f.mgr.map(&a, 100, ext(5000, 8)).unwrap();
    assert_eq!(f.get(&a, 102).value, Some(ext(5002, 6)));
    assert_eq!(f.get(&b, 102).value, None);
    assert_eq!(f.commit(a), Outcome::Committed { seq: 1 });
    let c = f.mgr.begin().unwrap();
    assert_eq!(f.get(&c, 100).value, Some(ext(5000, 8)));
    // A hole piece ends where the next mapping starts.
    assert_eq!(f.get(&c, 90).len, 10);
    f.mgr.abort(b);
    f.mgr.abort(c);
}

#[test]
fn first_committer_wins() {
    let mut f = Fx::new();
    let a = f.mgr.begin().unwrap();
    let b = f.mgr.begin().unwrap();
    let c = f.mgr.begin().unwrap();
    f.mgr.map(&a, 0, ext(100, 10)).unwrap();
    f.mgr.map(&b, 5, ext(200, 10)).unwrap();
    f.get(&c, 9); // c reads what b will write
    f.mgr.map(&c, 500, ext(300, 1)).unwrap();
    assert_eq!(f.commit(b), Outcome::Committed { seq: 1 });
    assert_eq!(f.commit(a), Outcome::Aborted);
    assert_eq!(f.commit(c), Outcome::Aborted);
    // Aborted transactions left no tuple and no redo record.
    assert!(f
        .mgr
        .cache()
        .tuples()
        .iter()
        .all(|t| t.v.txn != 1 && t.v.txn != 3));
    assert_eq!(f.log.records.len(), 1);
    assert_eq!(f.mgr.nr_active(), 0);
}

#[test]
fn disjoint_transactions_both_commit() {
    let mut f = Fx::new();
    let a = f.mgr.begin().unwrap();
    let b = f.mgr.begin().unwrap();
    f.mgr.map(&a, 0, ext(100, 10)).unwrap();
    f.mgr.map(&b, 10, ext(110, 10)).unwrap();
    assert_eq!(f.commit(a), Outcome::Committed { seq: 1 });
    assert_eq!(f.commit(b), Outcome::Committed { seq: 2 });
    assert_eq!(f.checkpoint(), 2);
    // Applied to the tree and glued into one extent.
    let tree = ReadTree::new(&f.tm, CFG, f.root);
    assert_eq!(tree.floor(19).unwrap(), Some((0, ext(100, 20))));
    assert!(f.mgr.cache().tuples().is_empty());
}

#[test]
fn recovery_replays_only_newer_durable_records() {
    let mut f = Fx::new();
    for i in 0..4u64 {
        let t = f.mgr.begin().unwrap();
        f.mgr.map(&t, i * 10, ext(1000 + i * 10, 5)).unwrap();
        f.commit(t);
        if i == 1 {
            assert_eq!(f.checkpoint(), 2);
        }
    }
    let t = f.mgr.begin().unwrap();
    f.mgr.unmap(&t, 30, 2).unwrap();
    f.mgr.commit(t, &mut f.log, false).unwrap(); // not flushed
    f.log.crash();
    let mut mgr = TxnManager::new(2);
    let applied: Vec<bool> = f
        .log
        .records
        .iter()
        .map(|(_, r)| mgr.replay(r).unwrap())
        .collect();
    assert_eq!(applied, [false, false, true, true]);
    assert_eq!(mgr.last_seq(), 4);
    let seqs: Vec<u64> = mgr.cache().tuples().iter().map(|t| t.v.seq).collect();
    assert_eq!(seqs, [3, 4]);
}

#[test]
fn redo_records_round_trip_and_reject_damage() {
    let tuples = [
        Tuple {
            lba: 7,
            v: Version {
                op: TupleOp::Map(ext(99, 3)),
                txn: 4,
                seq: 0,
            },
        },
        Tuple {
            lba: 20,
            v: Version {
                op: TupleOp::Unmap { len: 9 },
                txn: 4,
                seq: 0,
            },
        },
    ];
    let mut rec = vtier_engine::kcompat::KVec::new();
    redo::encode(12, 4, &tuples, &mut rec).unwrap();
    let mut ops = Vec::new();
    let hdr = redo::decode(&rec, |l, op| {
        ops.push((l, op));
        Ok(())
    })
    .unwrap();
    assert_eq!((hdr.seq, hdr.txn, hdr.nr_ops), (12, 4, 2));
    assert_eq!(ops, [(7, tuples[0].v.op), (20, tuples[1].v.op)]);
    for cut in [0, 10, rec.len() - 1] {
        assert!(redo::decode(&rec[..cut], |_, _| Ok(())).is_err());
    }
    for byte in [0, 4, 24 + 15, 24 + 28] {
        let mut bad = rec.to_vec();
        bad[byte] ^= 0x80;
        assert!(redo::decode(&bad, |_, _| Ok(())).is_err(), "byte {byte}");
    }
}
