// SPDX-License-Identifier: GPL-2.0

//! Allocator benchmark (T4): allocations and frees per second on one core,
//! bitmap pages touched per allocation and resident bytes, for 2^24 and
//! 2^32 blocks at 10 %, 50 % and 95 % full with fragmented free space
//! (free runs of 1..16 blocks, one in 64 of 64..575 blocks). The bitmap pages are generated on demand by
//! a pattern device (only written pages that differ are stored), so 2^32
//! blocks fit in memory: only the summaries are resident, as in the kernel.
//! Peer: a flat in-memory bitmap with a linear first-fit scan (2^24 only).
//!
//! `cargo bench -p vtier-engine --bench alloc`; writes
//! `bench/results/alloc.json`.

use std::collections::HashMap;
use std::time::Instant;
use vtier_engine::error::Result;
use vtier_engine::io::device::{check_io, BlockDevice, BLOCK_SIZE};
use vtier_engine::space::allocator::{AllocLayout, Allocator};
use vtier_engine::space::bitmap::{self, BITS_PER_PAGE};
use vtier_engine::space::geometry::Geometry;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Bitmap page `p` of a map `fill` % full: alternating allocated and free
/// runs, free runs of 1..=16 blocks.
fn pattern(p: u64, fill: u64, nr_blocks: u64, out: &mut [u8]) {
    out.fill(0);
    let mut r = Rng((p + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let used_avg = (8 * fill / (100 - fill)).max(1);
    let mut i = 0u32;
    while i < BITS_PER_PAGE {
        let x = r.next();
        // Mostly runs of 1..=16 free blocks, one in 64 of 64..=575.
        let free = if x % 64 == 0 {
            64 + (x >> 8) % 512
        } else {
            1 + (x >> 8) % 16
        } as u32;
        let used = 1 + (r.next() % (2 * used_avg)) as u32;
        let start = (i + free).min(BITS_PER_PAGE);
        bitmap::fill(out, start, used.min(BITS_PER_PAGE - start), true);
        i = start + used;
    }
    let first = p * BITS_PER_PAGE as u64;
    if first == 0 {
        bitmap::fill(out, 0, 64, true);
    }
    let valid = nr_blocks.saturating_sub(first).min(BITS_PER_PAGE as u64) as u32;
    bitmap::fill(out, valid, BITS_PER_PAGE - valid, true);
}

/// A device whose map-copy bitmap regions read as the pattern.
struct PatternDevice {
    nr_blocks: u64,
    fill: u64,
    layout: AllocLayout,
    pages: u64,
    overlay: HashMap<u64, Box<[u8]>>,
    scratch: Vec<u8>,
}

impl PatternDevice {
    fn bitmap_page(&self, block: u64) -> Option<u64> {
        self.layout
            .copies
            .iter()
            .find(|&&c| block >= c && block < c + self.pages)
            .map(|&c| block - c)
    }
}

impl BlockDevice for PatternDevice {
    fn nr_blocks(&self) -> u64 {
        self.nr_blocks
    }
    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        check_io(self.nr_blocks, block, buf.len())?;
        for (i, out) in buf.chunks_mut(BLOCK_SIZE).enumerate() {
            let b = block + i as u64;
            if let Some(data) = self.overlay.get(&b) {
                out.copy_from_slice(data);
            } else if let Some(p) = self.bitmap_page(b) {
                pattern(p, self.fill, self.layout.nr_blocks, out);
            } else {
                out.fill(0);
            }
        }
        Ok(())
    }
    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        check_io(self.nr_blocks, block, buf.len())?;
        for (i, data) in buf.chunks(BLOCK_SIZE).enumerate() {
            let b = block + i as u64;
            if let Some(p) = self.bitmap_page(b) {
                let mut s = std::mem::take(&mut self.scratch);
                s.resize(BLOCK_SIZE, 0);
                pattern(p, self.fill, self.layout.nr_blocks, &mut s);
                let same = s == data;
                self.scratch = s;
                if same {
                    self.overlay.remove(&b);
                    continue;
                }
            }
            self.overlay.insert(b, data.into());
        }
        Ok(())
    }
    fn flush(&mut self) -> Result {
        Ok(())
    }
}

/// The peer: a flat bitmap in memory, first fit by linear scan from the hint.
struct Flat(Vec<u64>);

impl Flat {
    fn free_at(&self, b: u64) -> bool {
        self.0[(b / 64) as usize] & (1 << (b % 64)) == 0
    }
    fn alloc(&mut self, hint: u64, len: u64) -> Option<u64> {
        let n = self.0.len() as u64 * 64;
        let (mut start, mut run) = (hint, 0);
        for i in 0..n {
            let b = (hint + i) % n;
            if b == 0 {
                run = 0;
            }
            if self.free_at(b) {
                if run == 0 {
                    start = b;
                }
                run += 1;
                if run == len {
                    for x in start..start + len {
                        self.0[(x / 64) as usize] |= 1 << (x % 64);
                    }
                    return Some(start);
                }
            } else {
                run = 0;
            }
        }
        None
    }
}

struct Row {
    blocks_log2: u32,
    fill: u64,
    what: &'static str,
    ops: u64,
    secs: f64,
    touched_per_op: f64,
    reads_per_op: f64,
    peer_ops_per_sec: Option<f64>,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

fn run(blocks_log2: u32, fill: u64, rows: &mut Vec<Row>, resident: &mut Vec<String>) {
    let nr_blocks = 1u64 << blocks_log2;
    let geom = Geometry::new(nr_blocks).unwrap();
    let copy0 = nr_blocks - 2 * geom.copy_blocks();
    let layout = AllocLayout {
        nr_blocks,
        copies: [copy0, copy0 + geom.copy_blocks()],
    };
    let mut dev = PatternDevice {
        nr_blocks,
        fill,
        layout,
        pages: geom.count(0) as u64,
        overlay: HashMap::new(),
        scratch: Vec::new(),
    };
    eprintln!("  rebuild");
    let ((mut a, _), build) = timed(|| Allocator::rebuild(&mut dev, layout, 1, 1, 64).unwrap());
    let (_, full_ckpt) = timed(|| a.write_copy(&mut dev, 2).unwrap());
    eprintln!("  ops");
    let mut gen = 2;
    let mut rng = Rng(blocks_log2 as u64 * 1000 + fill);
    let mut got = Vec::new();
    let ops = 50_000u64;
    let before = a.stats();
    let mut hint = 0;
    let (_, secs) = timed(|| {
        for i in 0..ops {
            if i % 256 == 0 {
                hint = rng.next() % nr_blocks;
            }
            let b = a.alloc(&mut dev, hint).unwrap();
            got.push((b, 1));
            hint = b + 1;
            if i % 4096 == 4095 {
                gen += 1;
                a.write_copy(&mut dev, gen).unwrap();
            }
        }
    });
    let st = a.stats();
    let per = |x: u64, y: u64| (x - y) as f64 / ops as f64;
    rows.push(Row {
        blocks_log2,
        fill,
        what: "alloc 1 block (sequential hint, jump every 256)",
        ops,
        secs,
        touched_per_op: per(st.bitmap_touches, before.bitmap_touches),
        reads_per_op: per(st.bitmap_reads, before.bitmap_reads),
        peer_ops_per_sec: None,
    });
    eprintln!("  extents");
    let ext_ops = 2_000u64;
    let before = a.stats();
    let (_, secs) = timed(|| {
        for _ in 0..ext_ops {
            let b = a
                .alloc_extent(&mut dev, rng.next() % nr_blocks, 64)
                .unwrap();
            got.push((b, 64));
        }
    });
    let st = a.stats();
    rows.push(Row {
        blocks_log2,
        fill,
        what: "alloc 64-block extent (random hint)",
        ops: ext_ops,
        secs,
        touched_per_op: (st.bitmap_touches - before.bitmap_touches) as f64 / ext_ops as f64,
        reads_per_op: (st.bitmap_reads - before.bitmap_reads) as f64 / ext_ops as f64,
        peer_ops_per_sec: None,
    });
    eprintln!("  frees");
    let n = got.len() as u64;
    let (_, secs) = timed(|| {
        for &(b, len) in &got {
            a.free(&mut dev, b, len).unwrap();
        }
        gen += 1;
        a.write_copy(&mut dev, gen).unwrap();
    });
    rows.push(Row {
        blocks_log2,
        fill,
        what: "free (deferred) + the checkpoint applying them",
        ops: n,
        secs,
        touched_per_op: 0.0,
        reads_per_op: 0.0,
        peer_ops_per_sec: None,
    });
    let bitmap_bytes = nr_blocks / 8;
    let res = a.resident_bytes() as u64;
    let sum = a.summary_bytes() as u64;
    let pm = |x: u64| x as f64 * 1000.0 / bitmap_bytes as f64;
    resident.push(format!(
        "{{\"blocks_log2\":{blocks_log2},\"fill_pct\":{fill},\"summary_bytes\":{sum},\"resident_bytes_with_cache\":{res},\"cache_pages\":64,\"bitmap_bytes\":{bitmap_bytes},\"summary_per_mille_of_bitmap\":{:.3},\"mount_rebuild_secs\":{build:.3},\"first_full_checkpoint_secs\":{full_ckpt:.3}}}",
        pm(sum)
    ));
    println!(
        "2^{blocks_log2} blocks {fill:>2}% full: summaries {sum} bytes ({:.3}‰ of the {} MiB bitmap), {res} bytes with the 64-page cache and lists; rebuild {build:.2} s, first full checkpoint {full_ckpt:.2} s",
        pm(sum),
        bitmap_bytes >> 20
    );
    if blocks_log2 <= 24 {
        eprintln!("  peer");
        peer(blocks_log2, fill, rows);
    }
}

fn peer(blocks_log2: u32, fill: u64, rows: &mut [Row]) {
    let nr_blocks = 1u64 << blocks_log2;
    let mut flat = Flat(Vec::with_capacity((nr_blocks / 64) as usize));
    let mut page = vec![0u8; BLOCK_SIZE];
    for p in 0..nr_blocks / BITS_PER_PAGE as u64 {
        pattern(p, fill, nr_blocks, &mut page);
        for w in page.chunks(8) {
            flat.0.push(u64::from_le_bytes(w.try_into().unwrap()));
        }
    }
    let mut rng = Rng(blocks_log2 as u64 * 1000 + fill);
    let ops = 50_000u64;
    let mut hint = 0;
    let (_, secs) = timed(|| {
        for i in 0..ops {
            if i % 256 == 0 {
                hint = rng.next() % nr_blocks;
            }
            hint = flat.alloc(hint, 1).unwrap() + 1;
        }
    });
    let peer1 = ops as f64 / secs;
    let ext = 200u64;
    let (_, secs) = timed(|| {
        for _ in 0..ext {
            flat.alloc(rng.next() % nr_blocks, 64).unwrap();
        }
    });
    let peer64 = ext as f64 / secs;
    for r in rows
        .iter_mut()
        .filter(|r| r.blocks_log2 == blocks_log2 && r.fill == fill)
    {
        if r.what.starts_with("alloc 1") {
            r.peer_ops_per_sec = Some(peer1);
        } else if r.what.starts_with("alloc 64") {
            r.peer_ops_per_sec = Some(peer64);
        }
    }
}

fn main() {
    let mut rows = Vec::new();
    let mut resident = Vec::new();
    let sizes: Vec<u32> = std::env::var("VTIER_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or(vec![24, 32]);
    for &blocks_log2 in &sizes {
        for fill in [10, 50, 95] {
            eprintln!("alloc bench: 2^{blocks_log2} blocks, {fill}% full");
            run(blocks_log2, fill, &mut rows, &mut resident);
        }
    }
    println!(
        "\n{:>6} {:>5} {:<48} {:>12} {:>10} {:>10} {:>14} {:>8}",
        "blocks", "full", "operation", "ops/s", "touch/op", "reads/op", "peer ops/s", "ratio"
    );
    let mut json = Vec::new();
    for r in &rows {
        let rate = r.ops as f64 / r.secs;
        let (peer, ratio) = match r.peer_ops_per_sec {
            Some(p) => (format!("{p:.0}"), format!("{:.1}", rate / p)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:>6} {:>4}% {:<48} {:>12.0} {:>10.3} {:>10.3} {:>14} {:>8}",
            format!("2^{}", r.blocks_log2),
            r.fill,
            r.what,
            rate,
            r.touched_per_op,
            r.reads_per_op,
            peer,
            ratio
        );
        json.push(format!(
            "{{\"blocks_log2\":{},\"fill_pct\":{},\"operation\":\"{}\",\"ops\":{},\"ops_per_sec\":{:.1},\"bitmap_pages_touched_per_op\":{:.4},\"bitmap_pages_read_per_op\":{:.4},\"peer\":\"flat bitmap linear first-fit\",\"peer_ops_per_sec\":{},\"ratio_to_peer\":{}}}",
            r.blocks_log2,
            r.fill,
            r.what,
            r.ops,
            rate,
            r.touched_per_op,
            r.reads_per_op,
            r.peer_ops_per_sec.map_or("null".into(), |p| format!("{p:.1}")),
            r.peer_ops_per_sec.map_or("null".into(), |p| format!("{:.3}", rate / p)),
        ));
    }
    let out = format!(
        "{{\"benchmark\":\"alloc\",\"results\":[{}],\"resident\":[{}]}}\n",
        json.join(","),
        resident.join(",")
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("alloc.json"), out).unwrap();
    println!("\nwrote {}", dir.join("alloc.json").display());
}
