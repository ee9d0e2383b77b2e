// SPDX-License-Identifier: GPL-2.0
//! Stripe chunk verification. A valid chunk slot (header fields and data
//! drawn from the input, written by `chunk::seal`) has header fields or
//! data bytes edited; the data CRC and the header checksum are then
//! recomputed as the writer does, so the checks behind them (store tag,
//! stripe, index, geometry, seq, reserved bytes) are reached. A chunk that
//! verifies returns its own non-zero seq and seals back to the same bytes.
//! Chunks are one or two blocks of data, to keep each run cheap. Raw mode
//! feeds the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::error::Error;
use vtier_engine::format::crc32c::crc32c;
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::stripe::chunk::{self, ChunkHeader, CHUNK_HEADER};
use vtier_engine_fuzz::{
    allowed_error, mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW,
};

const MAX_DATA_BLOCKS: usize = 2;
const SLOT: usize = (MAX_DATA_BLOCKS + 1) * BLOCK_SIZE;

#[rustfmt::skip]
const HEADER_FIELDS: [Field; 16] = [
    COMMON[0], COMMON[1], COMMON[2],
    (0x18, 8), (0x20, 8), (0x28, 8), (0x30, 1), (0x31, 1), (0x32, 1), (0x33, 1),
    (0x34, 4), (0x38, 4), (0x3c, 4), (0x40, 8), (0x800, 1), (0xff8, 8),
];

fn want(inp: &mut Input) -> ChunkHeader {
    let k = inp.range(1, 24) as u8;
    let m = inp.range(1, 8) as u8;
    ChunkHeader {
        tag: inp.u64(),
        stripe: inp.range(0, 1 << 40),
        seq: inp.range(1, u64::MAX),
        k,
        m,
        index: inp.range(0, u64::from(k + m) - 1) as u8,
        chunk_blocks: inp.range(1, MAX_DATA_BLOCKS as u64) as u32,
    }
}

fn check(slot: &[u8], block: u64, want: &ChunkHeader, seq: u64) {
    assert!(seq >= 1);
    assert_eq!(&slot[0x18..0x20], &seq.to_le_bytes());
    let mut out = [0u8; SLOT];
    let out = &mut out[..slot.len()];
    out[BLOCK_SIZE..].copy_from_slice(&slot[BLOCK_SIZE..]);
    chunk::seal(out, block, &ChunkHeader { seq, ..*want }).expect("seal");
    assert!(
        out[..] == slot[..],
        "a verified chunk does not seal back to its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    let mut inp = Input::new(rest);
    let block = inp.range(0, 1 << 40);
    let want = want(&mut inp);
    if mode == MODE_RAW {
        let body = inp.rest();
        if let Ok(seq) = chunk::verify(body, block, &want) {
            check(body, block, &want, seq);
        }
        return;
    }
    let how = Seal::from_mode(mode);
    let mut slot = [0u8; SLOT];
    let slot = &mut slot[..(want.chunk_blocks as usize + 1) * BLOCK_SIZE];
    slot[BLOCK_SIZE..].fill(inp.u8());
    for _ in 0..inp.u8() % 4 {
        let at = BLOCK_SIZE + inp.u16() as usize % (slot.len() - BLOCK_SIZE);
        slot[at] = inp.u8();
    }
    chunk::seal(slot, block, &want).expect("seal");
    assert_eq!(
        chunk::verify(slot, block, &want),
        Ok(want.seq),
        "a valid chunk is refused"
    );

    let mut fields = [(0usize, 0usize); HEADER_FIELDS.len() + 2];
    fields[..HEADER_FIELDS.len()].copy_from_slice(&HEADER_FIELDS);
    fields[HEADER_FIELDS.len()] = (
        BLOCK_SIZE + inp.u16() as usize % (slot.len() - BLOCK_SIZE),
        1,
    );
    fields[HEADER_FIELDS.len() + 1] = (slot.len() - 1, 1);
    mutate(slot, &fields, &mut inp);
    let (hdr, body) = slot.split_at_mut(BLOCK_SIZE);
    let data_fixed = how != Seal::None && !inp.u8().is_multiple_of(4);
    if data_fixed {
        // The data CRC again, as `chunk::seal` computes it.
        hdr[0x38..0x3c].copy_from_slice(&crc32c(body).to_le_bytes());
    }
    let hdr: &mut [u8; BLOCK_SIZE] = hdr.try_into().expect("block");
    reseal(hdr, CHUNK_HEADER, block, how);
    match chunk::verify(slot, block, &want) {
        Ok(seq) => check(slot, block, &want, seq),
        Err(Error::BadChecksum { .. }) if !data_fixed => {}
        Err(e) => assert!(allowed_error(&e, how), "{e:?}"),
    }
});
