// SPDX-License-Identifier: GPL-2.0

//! Bad arguments give errors, never panics.

use vtier_ec::{Error, ReedSolomon, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};

#[test]
fn shard_counts_out_of_range() {
    assert_eq!(ReedSolomon::new(0, 2), Err(Error::DataShardCount));
    assert_eq!(
        ReedSolomon::new(MAX_DATA_SHARDS + 1, 2),
        Err(Error::DataShardCount)
    );
    assert_eq!(ReedSolomon::new(4, 0), Err(Error::ParityShardCount));
    assert_eq!(
        ReedSolomon::new(4, MAX_PARITY_SHARDS + 1),
        Err(Error::ParityShardCount)
    );
    assert!(ReedSolomon::new(MAX_DATA_SHARDS, MAX_PARITY_SHARDS).is_ok());
    assert!(ReedSolomon::new(1, 1).is_ok());
}

#[test]
fn encode_arguments() {
    let rs = ReedSolomon::new(3, 2).unwrap();
    let data = vec![vec![1u8; 8]; 3];
    let mut parity = vec![vec![0u8; 8]; 2];
    assert_eq!(
        rs.encode(&data[..2], &mut parity),
        Err(Error::WrongShardCount)
    );
    assert_eq!(
        rs.encode(&data, &mut parity[..1]),
        Err(Error::WrongShardCount)
    );
    let mut short = vec![vec![0u8; 8], vec![0u8; 7]];
    assert_eq!(rs.encode(&data, &mut short), Err(Error::ShardSizeMismatch));
    let uneven = vec![vec![1u8; 8], vec![1u8; 9], vec![1u8; 8]];
    assert_eq!(
        rs.encode(&uneven, &mut parity),
        Err(Error::ShardSizeMismatch)
    );
    let empty = vec![Vec::<u8>::new(); 3];
    let mut empty_p = vec![Vec::<u8>::new(); 2];
    assert_eq!(rs.encode(&empty, &mut empty_p), Err(Error::EmptyShard));
    let mut all = vec![vec![0u8; 8]; 4];
    assert_eq!(rs.encode_shards(&mut all), Err(Error::WrongShardCount));
    assert_eq!(rs.verify(&all), Err(Error::WrongShardCount));
    assert_eq!(rs.parity_row(2), None);
}

#[test]
fn reconstruct_arguments() {
    let rs = ReedSolomon::new(3, 2).unwrap();
    let mut shards = vec![vec![7u8; 16]; 5];
    rs.encode_shards(&mut shards).unwrap();
    let p = [true, true, false, false, false];
    assert_eq!(
        rs.reconstruct(&mut shards, &p),
        Err(Error::TooFewShardsPresent)
    );
    assert_eq!(
        rs.reconstruct(&mut shards, &p[..4]),
        Err(Error::WrongShardCount)
    );
    assert_eq!(
        rs.reconstruct(&mut shards[..4], &p[..4]),
        Err(Error::WrongShardCount)
    );
    shards[4].pop();
    let p = [true, true, true, false, false];
    assert_eq!(
        rs.reconstruct(&mut shards, &p),
        Err(Error::ShardSizeMismatch)
    );
    // Nothing missing: nothing to do.
    let mut ok = vec![vec![7u8; 16]; 5];
    rs.encode_shards(&mut ok).unwrap();
    let before = ok.clone();
    rs.reconstruct(&mut ok, &[true; 5]).unwrap();
    assert_eq!(ok, before);
}
