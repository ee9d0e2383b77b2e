// SPDX-License-Identifier: GPL-2.0

//! Every SIMD kernel this CPU supports against the scalar one and against
//! reed-solomon-erasure: the same bytes for every coefficient, every
//! grouping of inputs (up to 24) and outputs (up to 8), and lengths that
//! leave every possible tail.

use reed_solomon_erasure::galois_8::ReedSolomon as Rse;
use vtier_ec::limits::Row;
use vtier_ec::{gf, GfKernel, ReedSolomon, Scalar, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};
use vtier_ec_simd::{supported, Kind, Simd};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn kernels() -> Vec<Simd> {
    let kinds = supported();
    eprintln!("supported: {:?}", kinds);
    kinds.into_iter().filter_map(Simd::new).collect()
}

/// `kern` and the byte-wise definition agree on `rows` over `ins`.
fn check_apply(kern: &Simd, rows: &[Row], ins: &[Vec<u8>], len: usize) {
    let inputs: Vec<&[u8]> = ins.iter().map(|v| &v[..]).collect();
    let mut outs = vec![vec![0xa5u8; len + 7]; rows.len()];
    let mut o: Vec<&mut [u8]> = outs.iter_mut().map(|v| &mut v[..]).collect();
    kern.apply(rows, &inputs, &mut o, len).unwrap();
    for (j, (r, out)) in rows.iter().zip(&outs).enumerate() {
        for x in 0..len {
            let want = ins.iter().zip(r).fold(0, |a, (d, &c)| a ^ gf::mul(c, d[x]));
            assert_eq!(
                out[x],
                want,
                "{} k={} out {j} byte {x}",
                kern.name(),
                ins.len()
            );
        }
        // Nothing written past len.
        assert!(out[len..].iter().all(|&b| b == 0xa5));
    }
}

#[test]
fn every_shape_and_tail() {
    let mut rng = Rng(0x1234_5678);
    for kern in kernels() {
        for k in [1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24] {
            for m in 1..=MAX_PARITY_SHARDS {
                for len in [1, 63, 64, 127, 128, 129, 1000, 32768 + 192 + 5, 70000] {
                    let rows: Vec<Row> = (0..m)
                        .map(|_| {
                            let mut r = [0u8; MAX_DATA_SHARDS];
                            r.copy_from_slice(&rng.bytes(MAX_DATA_SHARDS));
                            r
                        })
                        .collect();
                    let ins: Vec<Vec<u8>> = (0..k).map(|_| rng.bytes(len)).collect();
                    check_apply(&kern, &rows, &ins, len);
                }
            }
        }
    }
}

#[test]
fn every_coefficient() {
    let mut rng = Rng(99);
    for kern in kernels() {
        for base in (0..256).step_by(MAX_DATA_SHARDS) {
            let mut r = [0u8; MAX_DATA_SHARDS];
            for (i, c) in r.iter_mut().enumerate() {
                *c = ((base + i) % 256) as u8;
            }
            let mut rev = r;
            rev.reverse();
            let ins: Vec<Vec<u8>> = (0..MAX_DATA_SHARDS).map(|_| rng.bytes(300)).collect();
            check_apply(&kern, &[r, rev], &ins, 300);
        }
    }
}

#[test]
fn codec_matches_scalar_and_reference() {
    let mut rng = Rng(7);
    for kern in kernels() {
        for (k, m) in [(2, 1), (4, 1), (4, 2), (8, 3), (10, 4), (16, 4), (24, 8)] {
            let len = 4096 + 77;
            let rs = ReedSolomon::new(k, m).unwrap();
            let data: Vec<Vec<u8>> = (0..k).map(|_| rng.bytes(len)).collect();
            let mut ours = vec![vec![0u8; len]; m];
            rs.encode_with(&kern, &data, &mut ours).unwrap();
            let mut scalar = vec![vec![0u8; len]; m];
            rs.encode_with(&Scalar, &data, &mut scalar).unwrap();
            assert_eq!(ours, scalar, "{} {k}+{m} encode", kern.name());
            let mut reference = vec![vec![0u8; len]; m];
            Rse::new(k, m)
                .unwrap()
                .encode_sep(&data, &mut reference)
                .unwrap();
            assert_eq!(ours, reference, "{} {k}+{m} against rse", kern.name());

            // Lose m shards (a data-heavy pattern, then the parity), rebuild.
            let stripe: Vec<Vec<u8>> = data.iter().chain(&ours).cloned().collect();
            for lost in [
                (0..m).collect::<Vec<_>>(),
                (k..k + m).collect(),
                (0..m).map(|i| (i * 3 + 1) % (k + m)).collect(),
            ] {
                let mut shards = stripe.clone();
                let mut present = vec![true; k + m];
                for &i in &lost {
                    present[i] = false;
                    shards[i].fill(0);
                }
                rs.reconstruct_with(&kern, &mut shards, &present).unwrap();
                assert_eq!(shards, stripe, "{} {k}+{m} lost {lost:?}", kern.name());
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    for kern in kernels() {
        let row = [1u8; MAX_DATA_SHARDS];
        let a = [0u8; 64];
        let mut o = [0u8; 32];
        // Output shorter than len.
        assert!(kern.apply(&[row], &[&a], &mut [&mut o[..]], 64).is_err());
        // Rows and outputs disagree.
        assert!(kern
            .apply(&[row, row], &[&a], &mut [&mut o[..]], 16)
            .is_err());
        // No inputs.
        assert!(kern.apply(&[row], &[], &mut [&mut o[..]], 16).is_err());
    }
}

#[test]
fn kinds_are_named() {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names, ["avx2", "gfni-ymm", "gfni-zmm"]);
}
