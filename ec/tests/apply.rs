// SPDX-License-Identifier: GPL-2.0

//! The hot loop against the definition, byte by byte, on every path
//! (blocks, tail words, tail bytes) and every coefficient.

use vtier_ec::apply::{apply, Compare, Store, BLOCK};
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
                .map(|x| (x * 7 + i * 101 + x / 251) as u8)
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

fn check(rows: &[Row], k: usize) {
    let len = 2 * BLOCK + 8 + 3;
    let ins = inputs(k, len);
    let mut outs = vec![vec![0xeeu8; len]; rows.len()];
    apply(rows, &ins, len, &mut Store { outputs: &mut outs }).unwrap();
    for (r, o) in rows.iter().zip(&outs) {
        assert_eq!(o, &slow(r, &ins, len));
    }
    let mut cmp = Compare {
        expected: &outs,
        equal: true,
    };
    apply(rows, &ins, len, &mut cmp).unwrap();
    assert!(cmp.equal);
    let mut bad = outs.clone();
    bad[rows.len() - 1][len - 1] ^= 1;
    let mut cmp = Compare {
        expected: &bad,
        equal: true,
    };
    apply(rows, &ins, len, &mut cmp).unwrap();
    assert!(!cmp.equal);
}

#[test]
fn special_rows() {
    check(&[row(&[0, 0, 0])], 3); // zeros: no plane at all
    check(&[row(&[1, 1, 1, 1])], 4); // plain XOR
    check(&[row(&[0, 1, 0, 0, 0])], 5); // a copy
    check(&[row(&[0x80, 0xff, 0x01, 0x55])], 4); // top plane, dense
}

#[test]
fn every_coefficient() {
    // All 256 coefficients, eight at a time, on all 24 inputs at once.
    for base in (0..256).step_by(MAX_DATA_SHARDS) {
        let c: Vec<u8> = (0..MAX_DATA_SHARDS)
            .map(|i| ((base + i) % 256) as u8)
            .collect();
        let mut rev = c.clone();
        rev.reverse();
        check(&[row(&c), row(&rev)], MAX_DATA_SHARDS);
    }
}

#[test]
fn bad_arguments() {
    let ins = inputs(3, 100);
    let mut outs = vec![vec![0u8; 100]; 1];
    let r = [row(&[1, 2, 3])];
    let mut sink = Store { outputs: &mut outs };
    assert_eq!(
        apply(&r, &ins, 101, &mut sink),
        Err(Error::ShardSizeMismatch)
    );
    let none: [Vec<u8>; 0] = [];
    assert_eq!(apply(&r, &none, 0, &mut sink), Err(Error::DataShardCount));
    let many = [r[0]; MAX_PARITY_SHARDS + 1];
    assert_eq!(
        apply(&many, &ins, 100, &mut sink),
        Err(Error::ParityShardCount)
    );
}
