// SPDX-License-Identifier: GPL-2.0

//! B-tree LBA map and transaction benchmark, on one core.
//!
//! - Inserts per second: `N` single-block mappings written in sequential
//!   and in random LBA order (physical blocks allocated sequentially, as the
//!   data log does), through the copy-on-write B-tree with a checkpoint every
//!   [`CHECKPOINT_EVERY`] writes, on an in-memory node store with a node
//!   cache of [`CACHE_NODES`].
//! - Lookups per second: random single-LBA lookups in each of those trees.
//! - Metadata bytes per mapped 4 KiB block: node blocks in use × 4096 / N,
//!   against dm-thin's published ~48 bytes per mapping.
//! - Peer in the same run: `std::collections::BTreeMap` (in memory, no
//!   copy-on-write, checksums or persistence), random order, as a ratio.
//! - Commit latency: one transaction mapping one extent, committed with and
//!   without a flush of the redo log (a file, `fdatasync` on flush).
//!
//! Rates are per CPU-second of the benchmark thread (the machine is
//! shared); latencies are wall-clock.
//!
//! `VTIER_BENCH_MAPPINGS` sets `N` (default 1,000,000; 10,000,000, the
//! scale the map is meant to be measured at, takes about ten times longer). Prints a table and writes
//! `bench/results/btree.json` at the workspace root. Run with
//! `cargo bench -p vtier-engine --bench btree`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::time::{Duration, Instant};
use vtier_engine::btree::node_tm::NodeTm;
use vtier_engine::btree::tree::{create, BTreeConfig, ReadTree, WriteTree};
use vtier_engine::error::Result as EResult;
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::io::paddr::PAddr;
use vtier_engine::map::extent::Extent;
use vtier_engine::map::redo::RedoSink;
use vtier_engine::map::txn::{Outcome, TxnManager};
use vtier_engine::testing::mem_node_store::MemNodeStore;
use vtier_engine::testing::tree_check::check_tree;

const CFG: BTreeConfig = BTreeConfig::LBA_MAP;
const CHECKPOINT_EVERY: u64 = 100_000;
const DM_THIN_BYTES_PER_MAPPING: f64 = 48.0;
const LOOKUPS: u64 = 1_000_000;
const COMMITS: usize = 2000;
/// Node cache of the benchmark's node manager (32 MiB of decoded nodes).
const CACHE_NODES: usize = 8192;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// CPU time this thread has used, in seconds (utime + stime from
/// `/proc/thread-self/stat`, 10 ms resolution): the machine is shared, so
/// rates are per CPU-second, not per wall-clock second. Falls back to 0
/// (callers then use wall time) where the file is missing.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is field 3, utime 14, stime 15.
    let tick = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(14) + tick(15)) / 100.0
}

/// Seconds spent since `(wall, cpu)`: CPU time if measurable, else wall.
fn spent(start: (Instant, f64)) -> f64 {
    let cpu = cpu_secs() - start.1;
    if cpu > 0.05 {
        cpu
    } else {
        start.0.elapsed().as_secs_f64()
    }
}

fn now() -> (Instant, f64) {
    (Instant::now(), cpu_secs())
}

/// A random permutation of `0..n`.
fn permutation(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut rng = Rng(seed);
    for i in (1..v.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

struct Filled {
    tm: NodeTm<MemNodeStore>,
    root: PAddr,
    inserts_per_s: f64,
    bytes_per_block: f64,
    height: u32,
    extents: u64,
}

fn checkpoint(tm: &mut NodeTm<MemNodeStore>) {
    tm.pre_checkpoint().unwrap();
    tm.checkpoint_done().unwrap();
}

/// Maps LBA `order[i]` to physical block `DATA + i`, one block at a time.
fn fill(order: &[u64]) -> Filled {
    const DATA: u64 = 1 << 40;
    let mut tm = NodeTm::with_cache(MemNodeStore::new(16), 1, CACHE_NODES).unwrap();
    let mut root = create(&mut tm, &CFG).unwrap();
    let t = now();
    for (i, &lba) in order.iter().enumerate() {
        let e = Extent {
            paddr: PAddr::perf(DATA + i as u64).unwrap(),
            len: 1,
            csum: 0,
            flags: 0,
        };
        WriteTree::new(&mut tm, CFG, &mut root).map(lba, e).unwrap();
        if (i as u64 + 1) % CHECKPOINT_EVERY == 0 {
            checkpoint(&mut tm);
        }
    }
    checkpoint(&mut tm);
    let secs = spent(t);
    let report = check_tree(&tm, &CFG, root).unwrap();
    assert_eq!(report.mapped_blocks, order.len() as u64);
    let in_use = tm.store().unwrap().blocks_in_use();
    Filled {
        inserts_per_s: order.len() as f64 / secs,
        bytes_per_block: (in_use * BLOCK_SIZE as u64) as f64 / order.len() as f64,
        height: report.height,
        extents: report.extents,
        tm,
        root,
    }
}

fn lookups(f: &Filled, n: u64) -> f64 {
    let tree = ReadTree::new(&f.tm, CFG, f.root);
    let mut rng = Rng(99);
    let t = now();
    for _ in 0..LOOKUPS {
        let lba = rng.next() % n;
        let p = tree.lookup(lba).unwrap();
        assert!(p.value.is_some());
    }
    LOOKUPS as f64 / spent(t)
}

/// The peer measured in the same run: `std::collections::BTreeMap` from
/// LBA to extent, in memory (no copy-on-write, checksums, extents or
/// persistence), same random order: (inserts/s, lookups/s).
fn std_btreemap(order: &[u64]) -> (f64, f64) {
    let mut m = std::collections::BTreeMap::new();
    let t = now();
    for (i, &lba) in order.iter().enumerate() {
        let e = Extent {
            paddr: PAddr::perf((1 << 40) + i as u64).unwrap(),
            len: 1,
            csum: 0,
            flags: 0,
        };
        m.insert(lba, e);
    }
    let ins = order.len() as f64 / spent(t);
    let mut rng = Rng(99);
    let t = now();
    for _ in 0..LOOKUPS {
        let lba = rng.next() % order.len() as u64;
        assert!(std::hint::black_box(m.range(..=lba).next_back()).is_some());
    }
    (ins, LOOKUPS as f64 / spent(t))
}

/// The redo log as a file; flush is `fdatasync`.
struct FileLog(File);

impl RedoSink for FileLog {
    fn append(&mut self, _seq: u64, record: &[u8]) -> EResult {
        self.0
            .write_all(record)
            .map_err(|_| vtier_engine::error::Error::Io)
    }
    fn flush(&mut self) -> EResult {
        self.0
            .sync_data()
            .map_err(|_| vtier_engine::error::Error::Io)
    }
}

/// Median and 99th percentile commit latency in microseconds.
fn commit_latency(durable: bool) -> (f64, f64) {
    let path = std::env::temp_dir().join(format!("vtier-bench-redo-{}", std::process::id()));
    let mut log = FileLog(File::create(&path).unwrap());
    let mut mgr = TxnManager::new(0);
    let mut times = Vec::with_capacity(COMMITS);
    for i in 0..COMMITS as u64 {
        let t = Instant::now();
        let txn = mgr.begin().unwrap();
        let e = Extent {
            paddr: PAddr::perf(1_000_000 + i * 16).unwrap(),
            len: 8,
            csum: 0,
            flags: 0,
        };
        mgr.map(&txn, i * 8, e).unwrap();
        let out = mgr.commit(txn, &mut log, durable).unwrap();
        assert!(matches!(out, Outcome::Committed { .. }));
        times.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(times[COMMITS / 2]), us(times[COMMITS * 99 / 100]))
}

fn main() {
    let n: u64 = std::env::var("VTIER_BENCH_MAPPINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seq_order: Vec<u64> = (0..n).collect();
    let rnd_order = permutation(n, 7);
    let seq = fill(&seq_order);
    let seq_lookups = lookups(&seq, n);
    drop(seq_order);
    let rnd = fill(&rnd_order);
    let rnd_lookups = lookups(&rnd, n);
    let (peer_ins, peer_look) = std_btreemap(&rnd_order);
    let (nf50, nf99) = commit_latency(false);
    let (f50, f99) = commit_latency(true);

    println!("vtier B-tree LBA map, {n} single-block mappings, one core, memory node store, {CACHE_NODES}-node cache");
    println!("| workload | inserts/s | lookups/s | height | extents | metadata B/block | vs dm-thin 48 B |");
    println!("|---|---|---|---|---|---|---|");
    for (name, f, l) in [
        ("sequential", &seq, seq_lookups),
        ("random", &rnd, rnd_lookups),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {} | {} | {:.3} | {:.3}x |",
            f.inserts_per_s,
            l,
            f.height,
            f.extents,
            f.bytes_per_block,
            f.bytes_per_block / DM_THIN_BYTES_PER_MAPPING
        );
    }
    println!(
        "peer std BTreeMap (in memory, no COW/checksums/persistence), random: {peer_ins:.0} inserts/s, {peer_look:.0} lookups/s; ours/peer {:.3} / {:.3}",
        rnd.inserts_per_s / peer_ins,
        rnd_lookups / peer_look
    );
    println!("commit latency (one 8-block extent), median / p99: no flush {nf50:.1} / {nf99:.1} us, with fdatasync {f50:.1} / {f99:.1} us");

    let mut json = String::new();
    let _ = write!(
        json,
        "{{\n  \"mappings\": {n},\n  \"cache_nodes\": {CACHE_NODES},\n  \"checkpoint_every\": {CHECKPOINT_EVERY},\n  \"peer\": {{\"dm_thin_bytes_per_mapping\": {DM_THIN_BYTES_PER_MAPPING}}},\n"
    );
    for (name, f, l) in [
        ("sequential", &seq, seq_lookups),
        ("random", &rnd, rnd_lookups),
    ] {
        let _ = writeln!(
            json,
            "  \"{name}\": {{\"inserts_per_s\": {:.0}, \"lookups_per_s\": {:.0}, \"height\": {}, \"extents\": {}, \"metadata_bytes_per_block\": {:.4}, \"ratio_to_dm_thin\": {:.4}}},",
            f.inserts_per_s,
            l,
            f.height,
            f.extents,
            f.bytes_per_block,
            f.bytes_per_block / DM_THIN_BYTES_PER_MAPPING
        );
    }
    let _ = writeln!(
        json,
        "  \"peer_std_btreemap_random\": {{\"inserts_per_s\": {peer_ins:.0}, \"lookups_per_s\": {peer_look:.0}, \"ratio_inserts\": {:.4}, \"ratio_lookups\": {:.4}}},",
        rnd.inserts_per_s / peer_ins,
        rnd_lookups / peer_look
    );
    let _ = write!(
        json,
        "  \"commit_latency_us\": {{\"no_flush_p50\": {nf50:.2}, \"no_flush_p99\": {nf99:.2}, \"flush_p50\": {f50:.2}, \"flush_p99\": {f99:.2}}}\n}}\n"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("btree.json"), json).unwrap();
}
