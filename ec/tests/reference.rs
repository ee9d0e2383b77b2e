// SPDX-License-Identifier: GPL-2.0

//! Our codec against `reed-solomon-erasure`, the reference: the same parity
//! bytes, and every shard rebuilt after any erasure of at most `m` shards.

use proptest::prelude::*;
use reed_solomon_erasure::galois_8::ReedSolomon as Reference;
use vtier_ec::{ReedSolomon, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};

/// Deterministic bytes (xorshift), so failures reproduce.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A stripe of `k` random data shards and `m` parity shards, encoded by the
/// reference.
fn reference_stripe(k: usize, m: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut shards: Vec<Vec<u8>> = (0..k + m)
        .map(|i| {
            if i < k {
                bytes(seed + i as u64, len)
            } else {
                vec![0; len]
            }
        })
        .collect();
    Reference::new(k, m).unwrap().encode(&mut shards).unwrap();
    shards
}

fn check_encode(k: usize, m: usize, len: usize, seed: u64) {
    let want = reference_stripe(k, m, len, seed);
    let rs = ReedSolomon::new(k, m).unwrap();
    let mut parity = vec![vec![0xa5u8; len]; m];
    rs.encode(&want[..k], &mut parity).unwrap();
    assert_eq!(&parity[..], &want[k..], "{k}+{m} len {len}");
    assert!(rs.verify(&want).unwrap());
}

/// Erases the shards in `missing` (a bit mask), rebuilds them both ways and
/// compares with the original.
fn check_erasure(rs: &ReedSolomon, stripe: &[Vec<u8>], missing: u64) {
    let n = rs.total_shards();
    let k = rs.data_shards();
    let present: Vec<bool> = (0..n).map(|i| missing & (1 << i) == 0).collect();
    let mut shards: Vec<Vec<u8>> = stripe.to_vec();
    for (s, _) in shards.iter_mut().zip(&present).filter(|(_, &p)| !p) {
        s.fill(0x5a);
    }
    let mut data_only = shards.clone();
    rs.reconstruct(&mut shards, &present).unwrap();
    assert_eq!(shards, stripe, "reconstruct, missing {missing:#b}");
    rs.reconstruct_data(&mut data_only, &present).unwrap();
    for i in 0..n {
        if i < k || present[i] {
            assert_eq!(data_only[i], stripe[i], "data, missing {missing:#b}");
        } else {
            assert!(data_only[i].iter().all(|&b| b == 0x5a), "parity untouched");
        }
    }
}

/// Every erasure pattern of at most `m` shards.
fn exhaustive(k: usize, m: usize, len: usize) {
    let rs = ReedSolomon::new(k, m).unwrap();
    let stripe = reference_stripe(k, m, len, (k * 100 + m) as u64);
    let n = k + m;
    let mut patterns = 0;
    for missing in 0u64..1 << n {
        if missing.count_ones() as usize <= m {
            check_erasure(&rs, &stripe, missing);
            patterns += 1;
        }
    }
    assert!(patterns > 1);
}

#[test]
fn exhaustive_small_codes() {
    // Two blocks, three tail words and five tail bytes: every path.
    for &(k, m) in &[(2, 1), (3, 2), (4, 2), (5, 3), (4, 1), (6, 4)] {
        exhaustive(k, m, 2 * vtier_ec::apply::BLOCK + 3 * 8 + 5);
    }
}

#[test]
fn encode_matches_reference_for_every_size() {
    for k in 1..=MAX_DATA_SHARDS {
        for m in 1..=MAX_PARITY_SHARDS {
            check_encode(k, m, vtier_ec::apply::BLOCK + 13, (k * 31 + m) as u64);
        }
    }
}

#[test]
fn parity_rows_match_reference() {
    // Encoding unit vectors reads the reference's matrix out column by column.
    for &(k, m) in &[(2, 1), (4, 2), (8, 3), (16, 4), (24, 8)] {
        let rs = ReedSolomon::new(k, m).unwrap();
        let reference = Reference::new(k, m).unwrap();
        for i in 0..k {
            let mut shards = vec![vec![0u8; 1]; k + m];
            shards[i][0] = 1;
            reference.encode(&mut shards).unwrap();
            for j in 0..m {
                assert_eq!(rs.parity_row(j).unwrap()[i], shards[k + j][0]);
            }
        }
    }
}

#[test]
fn verify_detects_any_changed_byte() {
    let (k, m, len) = (4, 2, 1100);
    let rs = ReedSolomon::new(k, m).unwrap();
    let stripe = reference_stripe(k, m, len, 7);
    assert!(rs.verify(&stripe).unwrap());
    for s in 0..k + m {
        for pos in [
            0, 7, 8, 63, 64, 511, 512, 1000, 1023, 1024, 1095, 1096, 1099,
        ] {
            let mut bad = stripe.clone();
            bad[s][pos] ^= 0x10;
            assert!(!rs.verify(&bad).unwrap(), "shard {s} byte {pos}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_data_same_parity(
        k in 1usize..=16, m in 1usize..=4, len in 1usize..2000, seed: u64,
    ) {
        check_encode(k, m, len, seed);
    }

    #[test]
    fn random_erasures_rebuilt(
        k in 1usize..=MAX_DATA_SHARDS, m in 1usize..=MAX_PARITY_SHARDS,
        len in 1usize..1200, seed: u64, pick: u64,
    ) {
        let rs = ReedSolomon::new(k, m).unwrap();
        let stripe = reference_stripe(k, m, len, seed);
        // Up to m distinct shards, chosen from `pick`.
        let mut missing = 0u64;
        let mut p = pick;
        for _ in 0..=(pick % m as u64) {
            missing |= 1 << (p % (k + m) as u64);
            p /= (k + m) as u64;
        }
        check_erasure(&rs, &stripe, missing);
    }
}

/// The kernel's xor and raid6 libraries compute P = XOR of the data and
/// Q = Σ 2^i·d_i. With this (Vandermonde-derived) matrix the first parity is
/// a plain XOR only for k = 2^n - 1 (1, 3, 7, 15), and the second parity is
/// never RAID-6's Q, so the raid6 library cannot produce it.
#[test]
fn parity_versus_raid6_p_and_q() {
    for k in 1..=MAX_DATA_SHARDS {
        let rs = ReedSolomon::new(k, 2).unwrap();
        let (p, q) = (rs.parity_row(0).unwrap(), rs.parity_row(1).unwrap());
        let xor = p.iter().all(|&c| c == 1);
        assert_eq!(xor, (k + 1).is_power_of_two(), "{k}+2: first parity XOR?");
        let raid6_q: Vec<u8> = (0..k).map(|i| vtier_ec::gf::pow(2, i)).collect();
        assert_eq!(q == &raid6_q[..], k == 1, "{k}+2: second parity RAID-6 Q?");
    }
}
