// SPDX-License-Identifier: GPL-2.0

//! WAL benchmark (T5): append throughput with a commit (flush, write,
//! flush) every N records, for small and large records, on memory (the
//! engine's CPU cost) and on a file with real `fdatasync` (in `target/`).
//! Peer on the file: the same payload bytes written raw, one `pwrite` +
//! `fdatasync` per commit, no log format at all.
//!
//! `cargo bench -p vtier-engine --bench wal`; writes `bench/results/wal.json`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::error::{Error, Result};
use vtier_engine::format::superblock::NR_ROOTS;
use vtier_engine::io::device::{check_io, BlockDevice, MemDevice, BLOCK_SIZE};
use vtier_engine::journal::meta_device::{FormatOptions, MetaDevice};

const DEV_BLOCKS: u64 = 16384;
const BUDGET: Duration = Duration::from_millis(600);

struct FileDev(File, u64);

impl BlockDevice for FileDev {
    fn nr_blocks(&self) -> u64 {
        self.1
    }
    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        check_io(self.1, block, buf.len())?;
        self.0
            .read_exact_at(buf, block * BLOCK_SIZE as u64)
            .map_err(|_| Error::Io)
    }
    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        check_io(self.1, block, buf.len())?;
        self.0
            .write_all_at(buf, block * BLOCK_SIZE as u64)
            .map_err(|_| Error::Io)
    }
    fn flush(&mut self) -> Result {
        self.0.sync_data().map_err(|_| Error::Io)
    }
}

fn scratch_file() -> (File, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-scratch");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wal.img");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.set_len(DEV_BLOCKS * BLOCK_SIZE as u64).unwrap();
    (f, path)
}

struct Outcome {
    records: u64,
    secs: f64,
    blocks: u64,
    flushes: u64,
    checkpoints: u64,
}

fn run_wal(dev: &mut dyn BlockDevice, size: usize, every: u64) -> Outcome {
    let opts = FormatOptions {
        volume_uuid: [3; 16],
        device_uuid: [4; 16],
        nr_devices: 1,
        wal_blocks: 4096,
        encryption: Encryption::None,
    };
    let mut vol = MetaDevice::format(dev, &opts, 64).unwrap();
    let payload = vec![0x5au8; size];
    let roots = [0u64; NR_ROOTS];
    let (mut n, mut checkpoints) = (0u64, 0u64);
    let t = Instant::now();
    while t.elapsed() < BUDGET || n % every != 0 {
        match vol.append(1, &payload) {
            Ok(_) => n += 1,
            Err(Error::NoSpace) => {
                vol.checkpoint(dev, &roots).unwrap();
                checkpoints += 1;
                continue;
            }
            Err(e) => panic!("{e}"),
        }
        if n % every == 0 {
            vol.commit(dev).unwrap();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let st = vol.wal().unwrap().stats();
    Outcome {
        records: n,
        secs,
        blocks: st.blocks_written,
        flushes: st.flushes,
        checkpoints,
    }
}

/// The peer: `every` payloads appended raw, then one write + fdatasync.
fn run_raw(f: &File, size: usize, every: u64) -> (u64, f64) {
    let batch = vec![0x5au8; size * every as usize];
    let (mut n, mut off) = (0u64, 0u64);
    let t = Instant::now();
    while t.elapsed() < BUDGET {
        if off + batch.len() as u64 > DEV_BLOCKS * BLOCK_SIZE as u64 {
            off = 0;
        }
        f.write_all_at(&batch, off).unwrap();
        f.sync_data().unwrap();
        off += batch.len() as u64;
        n += every;
    }
    (n, t.elapsed().as_secs_f64())
}

fn main() {
    let mut json = Vec::new();
    println!(
        "{:<6} {:>7} {:>7} {:>12} {:>9} {:>10} {:>11} {:>12} {:>7}",
        "device",
        "rec B",
        "commit",
        "records/s",
        "MB/s",
        "blk/rec",
        "flush/rec",
        "peer rec/s",
        "ratio"
    );
    for size in [64usize, 512] {
        for every in [1u64, 16, 256] {
            for on_file in [false, true] {
                let (o, peer) = if on_file {
                    let (f, path) = scratch_file();
                    let mut dev = FileDev(f.try_clone().unwrap(), DEV_BLOCKS);
                    let o = run_wal(&mut dev, size, every);
                    let peer = run_raw(&f, size, every);
                    let _ = std::fs::remove_file(path);
                    (o, Some(peer))
                } else {
                    let mut dev = MemDevice::new(DEV_BLOCKS).unwrap();
                    (run_wal(&mut dev, size, every), None)
                };
                let rate = o.records as f64 / o.secs;
                let peer_rate = peer.map(|(n, s)| n as f64 / s);
                println!(
                    "{:<6} {:>7} {:>7} {:>12.0} {:>9.1} {:>10.4} {:>11.4} {:>12} {:>7}",
                    if on_file { "file" } else { "memory" },
                    size,
                    every,
                    rate,
                    rate * size as f64 / 1e6,
                    o.blocks as f64 / o.records as f64,
                    o.flushes as f64 / o.records as f64,
                    peer_rate.map_or("-".into(), |p| format!("{p:.0}")),
                    peer_rate.map_or("-".into(), |p| format!("{:.2}", rate / p)),
                );
                json.push(format!(
                    "{{\"device\":\"{}\",\"record_bytes\":{size},\"commit_every\":{every},\"records\":{},\"records_per_sec\":{rate:.1},\"payload_mb_per_sec\":{:.3},\"wal_blocks_per_record\":{:.5},\"flushes_per_record\":{:.5},\"checkpoints\":{},\"peer\":\"raw pwrite+fdatasync per commit\",\"peer_records_per_sec\":{},\"ratio_to_peer\":{}}}",
                    if on_file { "file" } else { "memory" },
                    o.records,
                    rate * size as f64 / 1e6,
                    o.blocks as f64 / o.records as f64,
                    o.flushes as f64 / o.records as f64,
                    o.checkpoints,
                    peer_rate.map_or("null".into(), |p| format!("{p:.1}")),
                    peer_rate.map_or("null".into(), |p| format!("{:.3}", rate / p)),
                ));
            }
        }
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    let out = format!(
        "{{\"benchmark\":\"wal\",\"results\":[{}]}}\n",
        json.join(",")
    );
    std::fs::write(dir.join("wal.json"), out).unwrap();
    println!("\nwrote {}", dir.join("wal.json").display());
}
