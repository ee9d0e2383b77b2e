// SPDX-License-Identifier: GPL-2.0

//! Crash harness: a workload of puts and deletes over a small copy-on-write
//! table, with WAL commits and checkpoints, run once on a recording
//! [`FaultDevice`]; then, for every single device write, the device as a
//! power cut during that write would leave it (tearing the write at sector
//! granularity, keeping none, all or a random subset of the unflushed
//! writes) is recovered and checked:
//!
//! - (a) the recovered table equals the reference model after some prefix
//!   of the operations at least as long as the acknowledged one (every
//!   operation acknowledged by a completed commit is there), and every
//!   block it maps holds the bytes written;
//! - (b) after the recovery checkpoint the allocator holds exactly the
//!   blocks the surviving metadata references (no leak, no double use);
//! - (c) every metadata block verifies (map copy, superblock, WAL end
//!   marker: a second mount finds the same state).
//!
//! Prints `crash points tried: N, failures: F`. `VTIER_CRASH_OPS` raises
//! the workload length (default 2000 operations).

mod common;

use common::store::{apply_model, data_for, opts, Op, Store, Table, DEV_BLOCKS, KEYS};
use common::Rng;
use std::collections::BTreeSet;
use vtier_engine::error::Error;
use vtier_engine::io::device::{BlockDevice, MemDevice, BLOCK_SIZE};
use vtier_engine::journal::meta_device::MetaDevice;
use vtier_engine::testing::fault_device::{
    image_after_cut, FaultDevice, LogOp, Survivors, SECTOR_SIZE,
};

/// What the recording run produced.
struct Trace {
    base: Vec<u8>,
    log: Vec<LogOp>,
    ops: Vec<Op>,
    /// (writes completed when a commit returned, operations it acknowledged).
    acks: Vec<(usize, usize)>,
    /// (writes completed when the operation started, operations before it).
    starts: Vec<usize>,
}

fn record_workload(nr_ops: usize, seed: u64) -> Trace {
    let mut mem = MemDevice::new(DEV_BLOCKS).unwrap();
    let mut vol = MetaDevice::format(&mut mem, &opts(), 16).unwrap();
    let mut store = Store {
        table: [None; KEYS],
        table_block: 0,
    };
    store.checkpoint(&mut vol, &mut mem).unwrap();
    let base = mem.image().to_vec();
    let mut dev = FaultDevice::new(&base).unwrap();
    dev.record();
    let (mut ops, mut acks, mut starts) = (Vec::new(), Vec::new(), Vec::new());
    let mut rng = Rng(seed);
    let mut next_commit = 1 + rng.below(30) as usize;
    for i in 0..nr_ops {
        starts.push(dev.writes() as usize);
        let key = rng.below(KEYS as u64) as usize;
        let op = if rng.below(10) < 8 {
            Op::Put {
                key,
                seed: rng.next(),
            }
        } else {
            Op::Del { key }
        };
        let r = match op {
            Op::Put { key, seed } => store.put(&mut vol, &mut dev, key, seed),
            Op::Del { key } => store.del(&mut vol, &mut dev, key),
        };
        match r {
            Ok(()) => ops.push(op),
            Err(Error::NoSpace) => {
                store.checkpoint(&mut vol, &mut dev).unwrap();
                acks.push((dev.writes() as usize, ops.len()));
                continue;
            }
            Err(e) => panic!("op {i}: {e}"),
        }
        if i + 1 == next_commit || vol.needs_checkpoint() {
            if vol.needs_checkpoint() || rng.below(8) == 0 {
                store.checkpoint(&mut vol, &mut dev).unwrap();
            } else {
                vol.commit(&mut dev).unwrap();
            }
            acks.push((dev.writes() as usize, ops.len()));
            next_commit = i + 2 + rng.below(30) as usize;
        }
    }
    let log = dev.take_log().into_iter_for_test();
    Trace {
        base,
        log,
        ops,
        acks,
        starts,
    }
}

/// `KVec` into a std `Vec` (test only).
trait IntoVec<T> {
    fn into_iter_for_test(self) -> Vec<T>;
}

impl<T> IntoVec<T> for vtier_engine::kcompat::KVec<T> {
    fn into_iter_for_test(mut self) -> Vec<T> {
        let mut v = Vec::new();
        while let Some(x) = self.pop() {
            v.push(x);
        }
        v.reverse();
        v
    }
}

/// Recovers `dev` and checks (a), (b), (c). `acked`..=`issued` bound the
/// operations that may be visible.
fn check(
    dev: &mut MemDevice,
    ops: &[Op],
    acked: usize,
    issued: usize,
) -> std::result::Result<(), String> {
    let e = |what: &str, err: Error| format!("{what}: {err}");
    let mut vol = MetaDevice::open(dev, 16).map_err(|x| e("open", x))?;
    let mut store = Store::load(&vol, dev).map_err(|x| e("load table", x))?;
    vol.replay(dev, |a, d, rec| store.replay(a, d, rec))
        .map_err(|x| e("replay", x))?;
    // (a) some prefix of at least the acknowledged operations.
    let mut model = [None; KEYS];
    for &op in &ops[..acked] {
        apply_model(&mut model, op);
    }
    let got: [Option<u64>; KEYS] = store.table.map(|e| e.map(|(_, s)| s));
    let mut p = acked;
    while got != model {
        if p >= issued.min(ops.len()) {
            return Err(format!("table is no prefix of ops[{acked}..={issued}]"));
        }
        apply_model(&mut model, ops[p]);
        p += 1;
    }
    let mut buf = vec![0u8; BLOCK_SIZE];
    for (key, &(block, seed)) in store
        .table
        .iter()
        .enumerate()
        .filter_map(|(k, e)| e.as_ref().map(|x| (k, x)))
    {
        dev.read(block, &mut buf).map_err(|x| e("read data", x))?;
        if buf != data_for(seed, block) {
            return Err(format!("key {key}: block {block} holds wrong bytes"));
        }
    }
    // (b) exact allocation after the recovery checkpoint.
    store
        .checkpoint(&mut vol, dev)
        .map_err(|x| e("recovery checkpoint", x))?;
    let data_start = vol.superblock().data_start;
    let mut used: BTreeSet<u64> = (0..data_start).collect();
    used.insert(store.table_block);
    used.extend(store.table.iter().flatten().map(|&(b, _)| b));
    let alloc = vol.alloc().map_err(|x| e("alloc", x))?;
    for b in 0..DEV_BLOCKS {
        let a = alloc.is_allocated(dev, b).map_err(|x| e("bitmap", x))?;
        if a != used.contains(&b) {
            return Err(format!(
                "block {b}: allocated {a}, referenced {}",
                used.contains(&b)
            ));
        }
    }
    if alloc.free_blocks() != DEV_BLOCKS - used.len() as u64 {
        return Err("free count".into());
    }
    // (c) every metadata block verifies: mount again, nothing to replay.
    alloc.verify_all(dev).map_err(|x| e("verify map", x))?;
    let mut again = MetaDevice::open(dev, 16).map_err(|x| e("second open", x))?;
    let store2 = Store::load(&again, dev).map_err(|x| e("second load", x))?;
    let mut n = 0;
    again
        .replay(dev, |_, _, _| {
            n += 1;
            Ok(())
        })
        .map_err(|x| e("second replay", x))?;
    if n != 0 || store2.table != store.table {
        return Err("second mount differs".into());
    }
    Ok(())
}

fn run_harness(nr_ops: usize, seed: u64) -> (usize, usize) {
    let t = record_workload(nr_ops, seed);
    let writes: Vec<usize> = t
        .log
        .iter()
        .filter_map(|op| match op {
            LogOp::Write { data, .. } => Some(data.len() / SECTOR_SIZE),
            LogOp::Flush => None,
        })
        .collect();
    let (mut tried, mut failed) = (0, 0);
    let mut rng = Rng(seed ^ 0x5555);
    for (cut, &sectors) in writes.iter().enumerate() {
        let acked = t
            .acks
            .iter()
            .filter(|&&(w, _)| w <= cut)
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0);
        // Operations that had started when the cut write was issued.
        let issued = t.starts.iter().filter(|&&w| w <= cut).count();
        let variants = [
            (Survivors::None, 0),
            (Survivors::All, sectors / 2),
            (
                Survivors::Random(rng.next()),
                rng.below(sectors as u64 + 1) as usize,
            ),
        ];
        for (survivors, torn) in variants {
            tried += 1;
            let mut dev = image_after_cut(&t.base, &t.log, cut, survivors, torn)
                .unwrap()
                .unwrap();
            if let Err(msg) = check(&mut dev, &t.ops, acked, issued) {
                failed += 1;
                if failed <= 5 {
                    eprintln!("crash at write {cut} ({survivors:?}, {torn} sectors): {msg}");
                }
            }
        }
    }
    (tried, failed)
}

#[test]
fn crash_at_every_write() {
    let nr_ops = std::env::var("VTIER_CRASH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let (tried, failed) = run_harness(nr_ops, 0x1234_5678);
    println!("crash points tried: {tried}, failures: {failed}");
    eprintln!("crash points tried: {tried}, failures: {failed}");
    assert_eq!(failed, 0);
    assert!(tried >= 2000, "only {tried} crash points");
}

#[test]
fn live_power_cut_then_recover() {
    // The engine meets the cut as an I/O error mid-workload and fails
    // sticky; the device it leaves behind recovers.
    let mut mem = MemDevice::new(DEV_BLOCKS).unwrap();
    let mut vol = MetaDevice::format(&mut mem, &opts(), 16).unwrap();
    let mut store = Store {
        table: [None; KEYS],
        table_block: 0,
    };
    store.checkpoint(&mut vol, &mut mem).unwrap();
    for cut in [3u64, 17, 40, 77] {
        let mut dev = FaultDevice::new(mem.image()).unwrap();
        let mut vol = MetaDevice::open(&mut dev, 16).unwrap();
        let mut s = Store::load(&vol, &mut dev).unwrap();
        vol.replay(&mut dev, |a, d, r| s.replay(a, d, r)).unwrap();
        s.checkpoint(&mut vol, &mut dev).unwrap();
        let s0 = Store {
            table: s.table,
            table_block: s.table_block,
        };
        dev.cut_power_after(dev.writes() + cut, 3);
        let mut acked = 0;
        let mut ops = Vec::new();
        let mut err = None;
        for i in 0..200usize {
            let op = Op::Put {
                key: i % KEYS,
                seed: i as u64,
            };
            if let Err(e) = s.put(&mut vol, &mut dev, i % KEYS, i as u64) {
                err = Some(e);
                break;
            }
            ops.push(op);
            let r = if i % 7 == 6 {
                s.checkpoint(&mut vol, &mut dev)
            } else {
                vol.commit(&mut dev)
            };
            if let Err(e) = r {
                err = Some(e);
                break;
            }
            acked = ops.len();
        }
        assert_eq!(err, Some(Error::Io));
        assert!(vol.commit(&mut dev).is_err());
        let mut img = dev.crash_image(Survivors::Random(cut)).unwrap();
        check_prefix(&mut img, &s0.table, &ops, acked).unwrap();
    }
}

/// Like `check` (a) for a table that started from `start`.
fn check_prefix(
    dev: &mut MemDevice,
    start: &Table,
    ops: &[Op],
    acked: usize,
) -> std::result::Result<(), String> {
    let mut vol = MetaDevice::open(dev, 16).map_err(|x| x.to_string())?;
    let mut store = Store::load(&vol, dev).map_err(|x| x.to_string())?;
    vol.replay(dev, |a, d, r| store.replay(a, d, r))
        .map_err(|x| x.to_string())?;
    let mut model = start.map(|e| e.map(|(_, s)| s));
    for &op in &ops[..acked] {
        apply_model(&mut model, op);
    }
    let got = store.table.map(|e| e.map(|(_, s)| s));
    let mut p = acked;
    while got != model {
        if p >= ops.len() {
            return Err("not a prefix".into());
        }
        apply_model(&mut model, ops[p]);
        p += 1;
    }
    Ok(())
}
