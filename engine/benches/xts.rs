// SPDX-License-Identifier: GPL-2.0

//! AES-256-XTS throughput in userspace: RustCrypto (`crypt::soft`, what
//! `vtierctl` uses) against OpenSSL (EVP `aes-256-xts`), in one run.
//!
//! Both encrypt and decrypt 4096-byte data units in place, each with its own
//! tweak, the way vtier encrypts blocks: keyed once, one call per unit. The
//! figure is bytes per CPU second of this thread, on one core, the best of
//! several short batches taken in turns (the machine is shared, so CPU time
//! rather than wall time, and turns so that disturbances hit both alike).
//! Before timing, both ciphers must give the same ciphertext.
//!
//! It prints a table with the ratio RustCrypto / OpenSSL and writes
//! `bench/results/xts.json` at the workspace root. `XTS_BENCH_SECS`
//! (default 0.5) sets the CPU time spent per figure. Run with
//! `cargo bench -p vtier-engine --bench xts`.

#[path = "../tests/support/openssl_xts.rs"]
mod openssl_xts;

use std::fmt::Write as _;
use std::hint::black_box;

use openssl_xts::OpensslXts;
use vtier_engine::crypt::cipher::{XtsCipher, BLOCK_SIZE, XTS_KEY_SIZE};
use vtier_engine::crypt::soft::SoftXts;

/// Data units per timed call: 1 MiB, so one call is long enough to time.
const UNITS: usize = 256;

/// CPU time this thread has used, in seconds.
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
    // SAFETY: `ts` is a writable `struct timespec` (two 64-bit fields on
    // x86-64 Linux) and the clock id is Linux's per-thread CPU clock.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

/// A named way to process the whole buffer once.
type Contender<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Best CPU seconds per call of each contender, over `ROUNDS` turns.
fn race(secs: f64, contenders: &mut [Contender<'_>]) -> Vec<f64> {
    const ROUNDS: usize = 7;
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

/// Deterministic pseudo-random bytes (xorshift64).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Processes every 4 KiB unit of `buf` with `cipher`, unit `i` with tweak
/// `i` (little-endian), as `plain64` would.
fn run(cipher: &dyn XtsCipher, buf: &mut [u8], encrypt: bool) {
    for (i, unit) in buf.chunks_exact_mut(BLOCK_SIZE).enumerate() {
        let tweak = (i as u128).to_le_bytes();
        let r = if encrypt {
            cipher.encrypt_unit(unit, &tweak)
        } else {
            cipher.decrypt_unit(unit, &tweak)
        };
        r.unwrap();
    }
    black_box(buf);
}

fn main() {
    let secs: f64 = std::env::var("XTS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.5);
    let key: [u8; XTS_KEY_SIZE] = pseudo_random(XTS_KEY_SIZE, 64).try_into().unwrap();
    let plain = pseudo_random(UNITS * BLOCK_SIZE, 4096);
    let soft = SoftXts::new(&key).unwrap();
    let ossl = OpensslXts::new(&key).unwrap();

    // Same bytes first, or the race means nothing.
    let mut a = plain.clone();
    let mut b = plain.clone();
    run(&soft, &mut a, true);
    run(&ossl, &mut b, true);
    assert_eq!(a, b, "RustCrypto and OpenSSL ciphertexts differ");
    let ciphertext = a;

    let mut rows = Vec::new();
    for (op, encrypt, input) in [("encrypt", true, &plain), ("decrypt", false, &ciphertext)] {
        let mut buf_soft = input.clone();
        let mut buf_ossl = input.clone();
        let (soft, ossl) = (&soft, &ossl);
        // Each call transforms the buffer again (in place), which costs the
        // same as transforming the original: XTS time does not depend on
        // the data.
        let mut contenders: Vec<Contender<'_>> = vec![
            (
                "rustcrypto",
                Box::new(move || run(soft, &mut buf_soft, encrypt)),
            ),
            (
                "openssl",
                Box::new(move || run(ossl, &mut buf_ossl, encrypt)),
            ),
        ];
        let times = race(secs, &mut contenders);
        let gbps: Vec<f64> = times
            .iter()
            .map(|t| (UNITS * BLOCK_SIZE) as f64 / t / 1e9)
            .collect();
        rows.push((op, gbps[0], gbps[1]));
    }

    println!("AES-256-XTS, 4096-byte data units, in place, one core (GB/s; ratio = RustCrypto / OpenSSL)");
    println!(
        "{:<8} {:>11} {:>9} {:>7}",
        "op", "rustcrypto", "openssl", "ratio"
    );
    for (op, rc, os) in &rows {
        println!("{op:<8} {rc:>11.3} {os:>9.3} {:>7.3}", rc / os);
    }

    let mut json = String::from(
        "{\n  \"benchmark\": \"xts\",\n  \"unit\": \"GB/s, one core, AES-256-XTS on 4096-byte data units in place\",\n  \"results\": [\n",
    );
    for (i, (op, rc, os)) in rows.iter().enumerate() {
        let sep = if i + 1 < rows.len() { "," } else { "" };
        writeln!(
            json,
            "    {{\"op\": \"{op}\", \"unit_bytes\": {BLOCK_SIZE}, \"rustcrypto\": {rc:.3}, \"openssl\": {os:.3}, \"rustcrypto_over_openssl\": {:.3}}}{sep}",
            rc / os
        )
        .unwrap();
    }
    json.push_str("  ]\n}\n");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("xts.json");
    std::fs::write(&path, json).unwrap();
    println!("wrote {}", path.display());
}
