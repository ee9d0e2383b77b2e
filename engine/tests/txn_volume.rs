// SPDX-License-Identifier: GPL-2.0

//! The LBA map on a volume (WAL redo records, checkpoints with the B-tree
//! root in the superblock) under power cuts: a workload of transactions
//! (some conflicting, some aborted, durable and lazy commits, checkpoints)
//! runs once on a recording `FaultDevice`; for every single device write,
//! the power-cut image is reopened (WAL replay) and must show exactly the
//! committed state after some prefix of the commits, at least as long as
//! the prefix acknowledged durable before the cut; aborted and lost
//! transactions never show. `VTIER_TXN_VOLUME_TXNS` (default 400) sets the
//! workload length.

use std::collections::BTreeMap;
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::io::device::MemDevice;
use vtier_engine::io::paddr::PAddr;
use vtier_engine::journal::meta_device::FormatOptions;
use vtier_engine::map::extent::Extent;
use vtier_engine::map::lba_map::LbaMap;
use vtier_engine::map::txn::{Outcome, Txn};
use vtier_engine::testing::fault_device::{image_after_cut, FaultDevice, Survivors};

const SPACE: u64 = 200;
type Model = BTreeMap<u64, u64>;

fn view<D: vtier_engine::io::device::BlockDevice>(map: &mut LbaMap<D>) -> Model {
    let t = map.begin().unwrap();
    let out = view_in(map, &t);
    map.abort(t);
    out
}

fn view_in<D: vtier_engine::io::device::BlockDevice>(map: &mut LbaMap<D>, t: &Txn) -> Model {
    let mut out = Model::new();
    let mut at = 0;
    while at < SPACE {
        let p = map.lookup(t, at, SPACE - at).unwrap();
        if let Some(e) = p.value {
            (0..p.len).for_each(|i| {
                out.insert(at + i, e.paddr.error_block() + i);
            });
        }
        at += p.len;
    }
    out
}

fn write(map: &mut LbaMap<FaultDevice>, t: &Txn, model: &mut Model, rng: &mut u64) {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let (lba, len) = (next() % (SPACE - 10), 1 + next() % 10);
    if next() % 4 == 0 {
        map.unmap(t, lba, len).unwrap();
        (lba..lba + len).for_each(|b| {
            model.remove(&b);
        });
    } else {
        let pb = 50_000 + next() % 100 * 16;
        let e = Extent {
            paddr: PAddr::perf(pb).unwrap(),
            len: len as u32,
            csum: 0,
            flags: 0,
        };
        map.map(t, lba, e).unwrap();
        (0..len).for_each(|i| {
            model.insert(lba + i, pb + i);
        });
    }
}

#[test]
fn every_crash_point_recovers_a_committed_prefix() {
    let txns: u64 = std::env::var("VTIER_TXN_VOLUME_TXNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let opts = FormatOptions {
        volume_uuid: [1; 16],
        device_uuid: [2; 16],
        nr_devices: 1,
        wal_blocks: 16,
        encryption: Encryption::None,
    };
    let dev = FaultDevice::new(MemDevice::new(2048).unwrap().image()).unwrap();
    let map = LbaMap::format(dev, &opts).unwrap();
    let base = map.into_device().current().to_vec();
    let mut dev = FaultDevice::new(&base).unwrap();
    dev.record();
    let mut map = LbaMap::open(dev).unwrap();
    // (writes completed when the commit returned, durable?, state after it)
    let mut commits: Vec<(u64, bool, Model)> = vec![(0, true, Model::new())];
    let mut model = Model::new();
    let mut rng = 0x1234_5678_9abc_def1u64;
    for i in 0..txns {
        // Two overlapping transactions: the second one to commit loses.
        let (a, b) = (map.begin().unwrap(), map.begin().unwrap());
        let (mut ma, mut mb) = (model.clone(), model.clone());
        write(&mut map, &a, &mut ma, &mut rng);
        write(&mut map, &a, &mut ma, &mut rng);
        write(&mut map, &b, &mut mb, &mut rng);
        let _ = view_in(&mut map, &b);
        let durable = i % 3 != 0;
        if i % 5 == 4 {
            map.abort(a);
        } else {
            assert!(matches!(
                map.commit(a, durable).unwrap(),
                Outcome::Committed { .. }
            ));
            model = ma;
            commits.push((map.device().writes(), durable, model.clone()));
        }
        // b read everything: it conflicts with a if a committed.
        let out = map.commit(b, true).unwrap();
        if i % 5 == 4 {
            assert!(matches!(out, Outcome::Committed { .. }));
            model = mb;
            commits.push((map.device().writes(), true, model.clone()));
        } else {
            assert_eq!(out, Outcome::Aborted);
        }
        if i % 7 == 6 {
            map.checkpoint().unwrap();
            // Lazy commits before it are durable once it completes.
            let w = map.device().writes();
            let last = commits.len() - 1;
            if !commits[last].1 {
                commits[last].0 = w;
                commits[last].1 = true;
            }
        }
        assert_eq!(view(&mut map), model);
    }
    let log = map.into_device().take_log();
    let mut tried = 0;
    for cut in 0.. {
        let mode = [
            Survivors::None,
            Survivors::All,
            Survivors::Random(cut as u64),
        ][cut % 3];
        let Some(img) = image_after_cut(&base, &log, cut, mode, cut % 9).unwrap() else {
            break;
        };
        tried += 1;
        let mut map = LbaMap::open(img).unwrap_or_else(|e| panic!("cut {cut}: open: {e}"));
        let got = view(&mut map);
        // Commits acknowledged durable before write `cut` must be there.
        let acked = commits
            .iter()
            .rposition(|&(w, durable, _)| durable && w <= cut as u64)
            .unwrap_or(0);
        let ok = commits[acked..].iter().any(|(_, _, m)| *m == got);
        if !ok {
            let any = commits.iter().position(|(_, _, m)| *m == got);
            let ws: Vec<_> = commits.iter().map(|c| (c.0, c.1)).collect();
            panic!("cut {cut}: state is no committed prefix from #{acked} on (matches {any:?}; commits {ws:?}; seq {})", map.txns().last_seq());
        }
    }
    eprintln!("lba map crash points tried: {tried}, failures: 0");
}

#[test]
fn a_transaction_too_big_for_one_wal_record_fails_and_changes_nothing() {
    use vtier_engine::error::Error;
    use vtier_engine::map::lba_map::MAX_TXN_TUPLES;
    let opts = FormatOptions {
        volume_uuid: [3; 16],
        device_uuid: [4; 16],
        nr_devices: 1,
        wal_blocks: 16,
        encryption: Encryption::None,
    };
    let mut map = LbaMap::format(MemDevice::new(1024).unwrap(), &opts).unwrap();
    let ext = |pb: u64| Extent {
        paddr: PAddr::perf(pb).unwrap(),
        len: 1,
        csum: 0,
        flags: 0,
    };
    let t = map.begin().unwrap();
    for i in 0..MAX_TXN_TUPLES as u64 + 1 {
        map.map(&t, i, ext(10_000 + i * 7)).unwrap();
    }
    assert_eq!(map.commit(t, true), Err(Error::NoSpace));
    assert!(view(&mut map).is_empty());
    let t = map.begin().unwrap();
    for i in 0..MAX_TXN_TUPLES as u64 {
        map.map(&t, i, ext(10_000 + i * 7)).unwrap();
    }
    assert!(matches!(map.commit(t, true), Ok(Outcome::Committed { .. })));
    let dev = map.into_device();
    let mut map = LbaMap::open(dev).unwrap();
    assert_eq!(view(&mut map).len(), MAX_TXN_TUPLES);
    // Only the transaction that committed reached the WAL, and the open
    // replayed it (no checkpoint came after it).
    assert_eq!(map.recovery().redo_records, 1);
    // The open checkpointed: the next open has nothing to replay.
    let generation = map.recovery().generation;
    let mut map = LbaMap::open(map.into_device()).unwrap();
    assert_eq!(map.recovery().redo_records, 0);
    assert_eq!(map.recovery().generation, generation + 1);
    assert_eq!(view(&mut map).len(), MAX_TXN_TUPLES);
}
