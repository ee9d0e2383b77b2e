// SPDX-License-Identifier: GPL-2.0

//! Erasure-coding throughput: our codec against its peers, in one run.
//!
//! For 4+1, 4+2 and 8+3 at 64 KiB and 1 MiB shards it measures encode
//! (all parity from the data) and reconstruct (the first `m` data shards
//! lost, rebuilt from the rest) in data bytes per second (`k × shard` per
//! call), on one core, for:
//!
//! - `scalar`: `vtier_ec`'s own hot loop, the scalar Rust code that runs in
//!   the kernel;
//! - `avx2`, `gfni-ymm`, `gfni-zmm`: the C SIMD kernels of `vtier.ko`
//!   (`ec/c/gf_simd.c` through `vtier-ec-simd`), each one this CPU supports,
//!   driven by the same codec;
//! - `rse`: `reed-solomon-erasure` (pure Rust, table per byte), the
//!   byte-compatible reference;
//! - `rss`: `reed-solomon-simd` (SIMD, GF(2^16) FFT, other parity bytes);
//! - `isal`: Intel ISA-L (SIMD), loaded from Debian's libisal2 and driven
//!   with our own matrices, so its output is checked against ours.
//!
//! It prints a table with the ratios the targets in `ec/README.md` are
//! about (scalar / rse, best C kernel / ISA-L) and writes
//! `bench/results/ec.json` at the workspace root. Each figure is the best of
//! five batches, the implementations taking turns, timed in CPU time of
//! this thread; `EC_BENCH_SECS` (default 0.4) sets the time spent per
//! figure; `EC_BENCH_NO_ISAL` skips ISA-L (whose place the reference
//! figures below then take, marked as not measured). Run with
//! `cargo bench -p vtier-ec --bench ec`; about 35-50 s on 2 cores.

#[path = "support/isal.rs"]
mod isal;

use reed_solomon_erasure::galois_8::ReedSolomon as Rse;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;
use vtier_ec::limits::Row;
use vtier_ec::matrix::{solve_right, Square};
use vtier_ec::{ReedSolomon, MAX_DATA_SHARDS};
use vtier_ec_simd::Simd;

/// Reference figures for ISA-L on the development machine, which the
/// targets were first stated against (4+2 and 8+3, 64 KiB encode), printed
/// only when ISA-L cannot be loaded here.
const ISAL_QUOTED: [(usize, usize, f64); 2] = [(4, 2, 40.0), (8, 3, 27.0)];

const CODES: [(usize, usize); 3] = [(4, 1), (4, 2), (8, 3)];
const SIZES: [usize; 2] = [64 << 10, 1 << 20];
const PEERS: [&str; 3] = ["rse", "rss", "isal"];
/// Our implementations: the scalar one, then the C kernels, slowest first.
const OURS: [&str; 4] = ["scalar", "avx2", "gfni-ymm", "gfni-zmm"];

/// One measured figure.
struct Figure {
    k: usize,
    m: usize,
    len: usize,
    op: &'static str,
    imp: &'static str,
    gbps: f64,
}

/// A named implementation of one operation, ready to be called repeatedly.
type Contender<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// CPU time this thread has used, in seconds. The machine is shared (builds
/// and other benchmarks run beside this one), so time is charged only while
/// the thread runs, not while it waits for a core.
fn thread_cpu_time() -> f64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit
    // fields on x86-64 Linux) and the clock id is Linux's thread CPU clock.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

/// Best CPU seconds per call of each contender. The contenders take turns
/// in short batches, several rounds, so that whatever else runs on the
/// machine disturbs them alike; each keeps its best batch.
fn race(secs: f64, contenders: &mut [Contender<'_>]) -> Vec<f64> {
    const ROUNDS: usize = 5;
    let per_batch = secs / ROUNDS as f64;
    let iters: Vec<u32> = contenders
        .iter_mut()
        .map(|(_, f)| {
            f();
            let t = thread_cpu_time();
            f();
            let once = (thread_cpu_time() - t).max(1e-7);
            (per_batch / once).ceil().max(1.0) as u32
        })
        .collect();
    let mut best = vec![f64::MAX; contenders.len()];
    for _ in 0..ROUNDS {
        for (c, (_, f)) in contenders.iter_mut().enumerate() {
            let t = thread_cpu_time();
            for _ in 0..iters[c] {
                f();
            }
            best[c] = best[c].min((thread_cpu_time() - t) / iters[c] as f64);
        }
    }
    best
}

fn random_shards(n: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// The C kernels this CPU supports, or none with `EC_BENCH_NO_SIMD`.
fn simd_kernels() -> Vec<Simd> {
    if std::env::var_os("EC_BENCH_NO_SIMD").is_some() {
        return Vec::new();
    }
    vtier_ec_simd::supported()
        .into_iter()
        .filter_map(Simd::new)
        .collect()
}

/// Rows that rebuild data shards `0..m` from shards `m..k+m` (ISA-L's input).
fn decode_rows(rs: &ReedSolomon) -> Vec<Row> {
    let (k, m) = (rs.data_shards(), rs.parity_shards());
    let mut s: Square = [[0; MAX_DATA_SHARDS]; MAX_DATA_SHARDS];
    for (r, i) in (m..k + m).enumerate() {
        if i < k {
            s[r][i] = 1;
        } else {
            s[r][..k].copy_from_slice(rs.parity_row(i - k).unwrap());
        }
    }
    let mut rows = vec![[0u8; MAX_DATA_SHARDS]; m];
    for (j, row) in rows.iter_mut().enumerate() {
        row[j] = 1;
    }
    solve_right(&mut s, &mut rows, k).unwrap();
    rows
}

/// Measures every implementation on one code and shard size.
fn run_case(
    k: usize,
    m: usize,
    len: usize,
    secs: f64,
    isal: Option<&isal::Isal>,
    out: &mut Vec<Figure>,
) {
    let data = random_shards(k, len, (k * 10 + m) as u64);
    let rs = ReedSolomon::new(k, m).unwrap();
    for (op, mut contenders) in [
        ("encode", encoders(&rs, &data, isal)),
        ("reconstruct", reconstructors(&rs, &data, isal)),
    ] {
        let times = race(secs, &mut contenders);
        for ((imp, _), t) in contenders.iter().zip(times) {
            out.push(Figure {
                k,
                m,
                len,
                op,
                imp,
                gbps: (k * len) as f64 / t / 1e9,
            });
        }
    }
}

/// Each implementation computing all parity of `data`, checked first.
fn encoders<'a>(
    rs: &'a ReedSolomon,
    data: &'a [Vec<u8>],
    isal: Option<&'a isal::Isal>,
) -> Vec<Contender<'a>> {
    let (k, m, len) = (data.len(), rs.parity_shards(), data[0].len());
    let mut parity = vec![vec![0u8; len]; m];
    rs.encode(data, &mut parity).unwrap();
    let rse = Rse::new(k, m).unwrap();
    let mut reference = vec![vec![0u8; len]; m];
    rse.encode_sep(data, &mut reference).unwrap();
    assert_eq!(
        parity, reference,
        "parity differs from reed-solomon-erasure"
    );

    let mut ours = parity.clone();
    let mut v: Vec<Contender<'a>> = vec![
        (
            "scalar",
            Box::new(move || rs.encode(data, &mut ours).unwrap()),
        ),
        (
            "rse",
            Box::new(move || rse.encode_sep(data, &mut reference).unwrap()),
        ),
    ];
    for kern in simd_kernels() {
        let mut out = vec![vec![0u8; len]; m];
        rs.encode_with(&kern, data, &mut out).unwrap();
        assert_eq!(
            out,
            parity,
            "{} parity differs from scalar",
            kern.kind().name()
        );
        v.push((
            kern.kind().name(),
            Box::new(move || rs.encode_with(&kern, data, &mut out).unwrap()),
        ));
    }
    let mut enc = ReedSolomonEncoder::new(k, m, len).unwrap();
    v.push((
        "rss",
        Box::new(move || {
            for d in data {
                enc.add_original_shard(d).unwrap();
            }
            black_box(enc.encode().unwrap().recovery(0).map(|r| r[0]));
        }),
    ));
    if let Some(isal) = isal {
        let rows: Vec<&[u8]> = (0..m).map(|j| rs.parity_row(j).unwrap()).collect();
        let tables = isal.tables(k, &rows);
        let ins: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
        let mut out = vec![vec![0u8; len]; m];
        let mut call = move |check: bool| {
            let mut outs: Vec<&mut [u8]> = out.iter_mut().map(|p| &mut p[..]).collect();
            isal.apply(&tables, &ins, &mut outs);
            !check || outs.iter().zip(&parity).all(|(o, p)| o[..] == p[..])
        };
        assert!(call(true), "ISA-L with our matrix differs from ours");
        v.push((
            "isal",
            Box::new(move || {
                call(false);
            }),
        ));
    }
    v
}

/// Each implementation rebuilding data shards `0..m` from the others,
/// checked first.
fn reconstructors<'a>(
    rs: &'a ReedSolomon,
    data: &'a [Vec<u8>],
    isal: Option<&'a isal::Isal>,
) -> Vec<Contender<'a>> {
    let (k, m, len) = (data.len(), rs.parity_shards(), data[0].len());
    let mut parity = vec![vec![0u8; len]; m];
    rs.encode(data, &mut parity).unwrap();
    let stripe: Vec<Vec<u8>> = data.iter().chain(&parity).cloned().collect();
    let present: Vec<bool> = (0..k + m).map(|i| i >= m).collect();
    let mut damaged = stripe.clone();
    damaged[..m].iter_mut().for_each(|s| s.fill(0));

    let mut ours = damaged.clone();
    let p = present.clone();
    rs.reconstruct_data(&mut ours, &p).unwrap();
    assert_eq!(ours, stripe, "reconstruct");
    let rse = Rse::new(k, m).unwrap();
    let mut theirs = damaged.clone();
    let present_rse = present.clone();
    let mut rse_call = move |check: bool| {
        let mut slices: Vec<(&mut [u8], bool)> = theirs
            .iter_mut()
            .zip(&present_rse)
            .map(|(s, &p)| (&mut s[..], p))
            .collect();
        rse.reconstruct_data(&mut slices).unwrap();
        !check || slices[0].0[..] == data[0][..]
    };
    assert!(rse_call(true), "rse reconstruct");
    let mut v: Vec<Contender<'a>> = vec![
        (
            "scalar",
            Box::new(move || rs.reconstruct_data(&mut ours, &p).unwrap()),
        ),
        (
            "rse",
            Box::new(move || {
                rse_call(false);
            }),
        ),
    ];
    for kern in simd_kernels() {
        let mut shards = damaged.clone();
        let p = present.clone();
        rs.reconstruct_data_with(&kern, &mut shards, &p).unwrap();
        assert_eq!(shards, stripe, "{} reconstruct", kern.kind().name());
        v.push((
            kern.kind().name(),
            Box::new(move || rs.reconstruct_data_with(&kern, &mut shards, &p).unwrap()),
        ));
    }

    let mut enc = ReedSolomonEncoder::new(k, m, len).unwrap();
    for d in data {
        enc.add_original_shard(d).unwrap();
    }
    let recovery: Vec<Vec<u8>> = enc
        .encode()
        .unwrap()
        .recovery_iter()
        .map(|r| r.to_vec())
        .collect();
    let mut dec = ReedSolomonDecoder::new(k, m, len).unwrap();
    let mut rss_call = move |check: bool| {
        for (i, d) in data.iter().enumerate().skip(m) {
            dec.add_original_shard(i, d).unwrap();
        }
        for (j, r) in recovery.iter().enumerate() {
            dec.add_recovery_shard(j, r).unwrap();
        }
        let result = dec.decode().unwrap();
        !check || result.restored_original(0) == Some(&data[0][..])
    };
    assert!(rss_call(true), "rss reconstruct");
    v.push((
        "rss",
        Box::new(move || {
            rss_call(false);
        }),
    ));

    if let Some(isal) = isal {
        let rows = decode_rows(rs);
        let rows: Vec<&[u8]> = rows.iter().map(|r| &r[..]).collect();
        let tables = isal.tables(k, &rows);
        let survivors: Vec<Vec<u8>> = stripe[m..].to_vec();
        let mut rebuilt = vec![vec![0u8; len]; m];
        let mut call = move |check: bool| {
            let ins: Vec<&[u8]> = survivors.iter().map(|d| &d[..]).collect();
            let mut outs: Vec<&mut [u8]> = rebuilt.iter_mut().map(|p| &mut p[..]).collect();
            isal.apply(&tables, &ins, &mut outs);
            !check || outs[0][..] == data[0][..]
        };
        assert!(call(true), "ISA-L reconstruct");
        v.push((
            "isal",
            Box::new(move || {
                call(false);
            }),
        ));
    }
    v
}

fn find(figs: &[Figure], k: usize, m: usize, len: usize, op: &str, imp: &str) -> Option<f64> {
    figs.iter()
        .find(|f| (f.k, f.m, f.len, f.op, f.imp) == (k, m, len, op, imp))
        .map(|f| f.gbps)
}

fn cell(v: Option<f64>, ratio: bool) -> String {
    match v {
        Some(v) if ratio => format!("{v:>7.2}x"),
        Some(v) => format!("{v:>8.2}"),
        None => format!("{:>8}", "-"),
    }
}

/// The fastest of our C kernels on one case: (name, GB/s).
fn best_simd(
    figs: &[Figure],
    k: usize,
    m: usize,
    len: usize,
    op: &str,
) -> Option<(&'static str, f64)> {
    OURS[1..]
        .iter()
        .filter_map(|imp| find(figs, k, m, len, op, imp).map(|g| (*imp, g)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn print_table(figs: &[Figure]) {
    let head = ["scalar", "avx2", "gfni-y", "gfni-z", "rse", "rss", "isal"];
    let mut line = format!("{:<5} {:>5} {:<11}", "code", "shard", "op");
    for h in head {
        let _ = write!(line, " {h:>8}");
    }
    let _ = write!(
        line,
        " | {:>8} {:>8} {:>8}",
        "sc/rse", "sc/isal", "best/isal"
    );
    println!("{line}");
    println!("{}", "-".repeat(line.len()));
    for op in ["encode", "reconstruct"] {
        for (k, m) in CODES {
            for len in SIZES {
                let scalar = find(figs, k, m, len, op, "scalar");
                let isal = find(figs, k, m, len, op, "isal");
                let best = best_simd(figs, k, m, len, op).map(|b| b.1);
                let mut line =
                    format!("{:<5} {:>5} {:<11}", format!("{k}+{m}"), size_name(len), op);
                for imp in OURS.iter().chain(PEERS.iter()) {
                    line.push(' ');
                    line.push_str(&cell(find(figs, k, m, len, op, imp), false));
                }
                let rse = find(figs, k, m, len, op, "rse");
                let _ = write!(
                    line,
                    " | {} {} {}",
                    cell(scalar.zip(rse).map(|(a, b)| a / b), true),
                    cell(scalar.zip(isal).map(|(a, b)| a / b), true),
                    cell(best.zip(isal).map(|(a, b)| a / b), true),
                );
                println!("{line}");
            }
        }
    }
    println!(
        "GB/s of data bytes (k x shard per call) per CPU-second of one core.\n\
         scalar: the Rust hot loop; avx2/gfni-y/gfni-z: the C SIMD kernels of vtier.ko\n\
         (ec/c/gf_simd.c, '-' where this CPU lacks the instructions); best = fastest of those.\n\
         Targets (ec/README.md): sc/rse >= 2 everywhere; best/isal >= 0.5 for 4+2."
    );
}

fn size_name(len: usize) -> String {
    if len >= 1 << 20 {
        format!("{}M", len >> 20)
    } else {
        format!("{}K", len >> 10)
    }
}

fn json(figs: &[Figure], isal_error: Option<&str>) -> String {
    let mut s = String::from("{\n  \"benchmark\": \"ec\",\n  \"unit\": \"GB/s of data bytes per CPU-second of one thread\",\n");
    let _ = writeln!(
        s,
        "  \"isal\": {},",
        match isal_error {
            None => "\"measured (libisal2, driven with our matrices)\"".to_string(),
            Some(e) => format!("\"not measured: {}\"", e.replace('"', "'")),
        }
    );
    if isal_error.is_some() {
        let quoted: Vec<String> = ISAL_QUOTED
            .iter()
            .map(|(k, m, g)| format!("{{\"code\": \"{k}+{m}\", \"op\": \"encode\", \"shard_bytes\": 65536, \"gbps\": {g}}}"))
            .collect();
        let _ = writeln!(
            s,
            "  \"isal_quoted_from_issue_not_measured\": [{}],",
            quoted.join(", ")
        );
    }
    s.push_str("  \"results\": [\n");
    let mut rows = Vec::new();
    for f in figs.iter().filter(|f| f.imp == "scalar") {
        let mut r = format!(
            "    {{\"code\": \"{}+{}\", \"k\": {}, \"m\": {}, \"shard_bytes\": {}, \"op\": \"{}\"",
            f.k, f.m, f.k, f.m, f.len, f.op
        );
        for imp in OURS.iter().chain(PEERS.iter()) {
            if let Some(v) = find(figs, f.k, f.m, f.len, f.op, imp) {
                let _ = write!(r, ", \"{imp}\": {v:.3}");
            }
        }
        for p in PEERS {
            if let Some(v) = find(figs, f.k, f.m, f.len, f.op, p) {
                let _ = write!(r, ", \"scalar_over_{p}\": {:.3}", f.gbps / v);
            }
        }
        if let Some((name, g)) = best_simd(figs, f.k, f.m, f.len, f.op) {
            let _ = write!(r, ", \"best_simd\": \"{name}\"");
            for p in PEERS {
                if let Some(v) = find(figs, f.k, f.m, f.len, f.op, p) {
                    let _ = write!(r, ", \"best_simd_over_{p}\": {:.3}", g / v);
                }
            }
        }
        r.push('}');
        rows.push(r);
    }
    s.push_str(&rows.join(",\n"));
    s.push_str("\n  ]\n}\n");
    s
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let secs: f64 = std::env::var("EC_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.4);
    let isal = match std::env::var_os("EC_BENCH_NO_ISAL") {
        Some(_) => Err("EC_BENCH_NO_ISAL is set".to_string()),
        None => isal::Isal::load(),
    };
    let isal_error = isal.as_ref().err().cloned();
    let start = Instant::now();
    let mut figs = Vec::new();
    for (k, m) in CODES {
        for len in SIZES {
            run_case(k, m, len, secs, isal.as_ref().ok(), &mut figs);
        }
    }
    println!(
        "\nvtier-ec benchmark ({:.0} s)\n",
        start.elapsed().as_secs_f64()
    );
    print_table(&figs);
    if let Some(e) = &isal_error {
        println!("\nISA-L not measured here ({e}). Reference figures, NOT measured in this run:");
        for (k, m, g) in ISAL_QUOTED {
            println!("  ISA-L {k}+{m} encode, 64 KiB shards: {g} GB/s");
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).expect("create bench/results");
    let path = dir.join("ec.json");
    std::fs::write(&path, json(&figs, isal_error.as_deref())).expect("write ec.json");
    println!("wrote {}", path.display());
}
