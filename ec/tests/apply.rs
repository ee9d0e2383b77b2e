// SPDX-License-Identifier: GPL-2.0

//! The hot loop against the definition, byte by byte, on every path: whole
//! blocks, tail words, tail bytes; doubling and halving; one and two steps
//! per pass; planes of more inputs than a pass takes; rows with a factor
//! taken out (shards of 16 KiB and more) and without; every coefficient.

use vtier_ec::apply::{apply, verify, BLOCK};
use vtier_ec::limits::Row;
use vtier_ec::{gf, Error, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};

fn row(c: &[u8]) -> Row {
    let mut r = [0u8; MAX_DATA_SHARDS];
    r[..c.len()].copy_from_slice(c);
    r
}

/// Inputs of `len` bytes, different in every byte.
fn inputs(k: usize, len: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|i| {
            (0..len)
                .map(|x| (x * 7 + i * 101 + x / 251 + (x >> 11) * 13) as u8)
                .collect()
        })
        .collect()
}

/// The definition, byte by byte.
fn slow(r: &Row, ins: &[Vec<u8>], len: usize) -> Vec<u8> {
    (0..len)
        .map(|x| ins.iter().zip(r).fold(0, |a, (d, &c)| a ^ gf::mul(c, d[x])))
        .collect()
}

fn check_len(rows: &[Row], k: usize, len: usize) {
    let ins = inputs(k, len);
    let mut outs = vec![vec![0xeeu8; len]; rows.len()];
    apply(rows, &ins, &mut outs, len).unwrap();
    for (j, (r, o)) in rows.iter().zip(&outs).enumerate() {
        let want = slow(r, &ins, len);
        if let Some(at) = (0..len).find(|&x| o[x] != want[x]) {
            panic!(
                "k={k} len={len} row {j} {:?}: first difference at byte {at}",
                &r[..k]
            );
        }
    }
    assert_eq!(verify(rows, &ins, &outs, len), Ok(true));
    // A flipped bit anywhere is found: in the first block, the last whole
    // block, the tail words and the tail bytes.
    for at in [0, len / 2, len - len % BLOCK, len - 1] {
        if at >= len {
            continue;
        }
        let mut bad = outs.clone();
        bad[rows.len() - 1][at] ^= 0x10;
        assert_eq!(verify(rows, &ins, &bad, len), Ok(false), "flip at {at}");
    }
}

fn check(rows: &[Row], k: usize) {
    // Blocks, tail words and tail bytes, without and with factors taken out.
    check_len(rows, k, 2 * BLOCK + 8 + 3);
    check_len(rows, k, 16 * BLOCK + 5 * 8 + 7);
}

#[test]
fn special_rows() {
    check(&[row(&[0, 0, 0])], 3); // zeros: no plane at all
    check(&[row(&[1, 1, 1, 1])], 4); // plain XOR
    check(&[row(&[0, 1, 0, 0, 0])], 5); // a copy
    check(&[row(&[0x80, 0xff, 0x01, 0x55])], 4); // top plane, dense
    check(&[row(&[0x80, 0x40, 0xc0, 0x80])], 4); // high bits only: halving
}

#[test]
fn decoding_rows_take_factors_out() {
    // Dense rows (the decoding rows of 4+1, 4+2 and 8+3), all of whose
    // coefficients are nonzero: the factor search runs on long shards.
    check(&[row(&[166, 245, 210, 128])], 4);
    check(&[row(&[208, 107, 104, 210]), row(&[107, 208, 210, 104])], 4);
    check(
        &[
            row(&[180, 234, 38, 255, 122, 110, 23, 133]),
            row(&[166, 158, 72, 63, 80, 23, 4, 13]),
            row(&[156, 125, 129, 87, 129, 133, 13, 63]),
        ],
        8,
    );
    // More rows than may take a factor out.
    let dense: Vec<Row> = (0..MAX_PARITY_SHARDS)
        .map(|j| row(&[3 + j as u8, 200, 77, 91 + j as u8, 250]))
        .collect();
    check(&dense, 5);
}

#[test]
fn every_coefficient() {
    // All 256 coefficients, 24 at a time, on all 24 inputs at once: planes
    // of more inputs than one pass takes.
    for base in (0..256).step_by(MAX_DATA_SHARDS) {
        let c: Vec<u8> = (0..MAX_DATA_SHARDS)
            .map(|i| ((base + i) % 256) as u8)
            .collect();
        let mut rev = c.clone();
        rev.reverse();
        check_len(&[row(&c), row(&rev)], MAX_DATA_SHARDS, 2 * BLOCK + 8 + 3);
    }
}

#[test]
fn every_factor() {
    // A row `f · [1, 2, 3, 4]` for every nonzero f: whatever factor the
    // search picks, the table must give back the same bytes.
    for f in 1..=255u8 {
        let r: Vec<u8> = [1u8, 2, 3, 4].iter().map(|&c| gf::mul(c, f)).collect();
        check_len(&[row(&r)], 4, 16 * BLOCK);
    }
}

#[test]
fn bad_arguments() {
    let ins = inputs(3, 100);
    let mut outs = vec![vec![0u8; 100]; 1];
    let r = [row(&[1, 2, 3])];
    assert_eq!(
        apply(&r, &ins, &mut outs, 101),
        Err(Error::ShardSizeMismatch)
    );
    let none: [Vec<u8>; 0] = [];
    assert_eq!(apply(&r, &none, &mut outs, 0), Err(Error::DataShardCount));
    let many = [r[0]; MAX_PARITY_SHARDS + 1];
    let mut many_outs = vec![vec![0u8; 100]; MAX_PARITY_SHARDS + 1];
    assert_eq!(
        apply(&many, &ins, &mut many_outs, 100),
        Err(Error::ParityShardCount)
    );
    let mut short = vec![vec![0u8; 99]; 1];
    assert_eq!(
        apply(&r, &ins, &mut short, 100),
        Err(Error::ShardSizeMismatch)
    );
    let mut two = vec![vec![0u8; 100]; 2];
    assert_eq!(
        apply(&r, &ins, &mut two, 100),
        Err(Error::ShardSizeMismatch)
    );
    assert_eq!(verify(&r, &ins, &short, 100), Err(Error::ShardSizeMismatch));
    // Nothing was written by a refused call.
    assert!(outs[0].iter().all(|&b| b == 0));
}
