// SPDX-License-Identifier: GPL-2.0
//! Data log entry headers and their data check. A valid header (fields
//! drawn from the input, written by `datalog::encode`) has fields edited
//! and is sealed again; a header that decodes has a length of
//! 1..=MAX_ENTRY_BLOCKS, known flags, a key id exactly when encrypted, a
//! logical range that does not wrap, and encodes back to the same bytes.
//! `verify_data` accepts data of the entry's length exactly when its CRC
//! is the header's. Raw mode feeds the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::data::datalog::{self, Entry, ENTRY_ENCRYPTED, LOG_HEADER, MAX_ENTRY_BLOCKS};
use vtier_engine::error::Error;
use vtier_engine::format::crc32c::crc32c;
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine_fuzz::{
    allowed_error, mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW,
};

#[rustfmt::skip]
const FIELDS: [Field; 13] = [
    COMMON[0], COMMON[1], COMMON[2],
    (0x18, 8), (0x20, 8), (0x28, 4), (0x2c, 4), (0x30, 4), (0x34, 4), (0x38, 8),
    (0x40, 8), (0x800, 1), (0xff8, 8),
];
/// Data checked in full for entries of at most this many blocks.
const DATA_BLOCKS: usize = 2;

fn check(e: &Entry, buf: &[u8], block: u64, tag: u64, inp: &mut Input) {
    assert!(e.nr_blocks >= 1 && e.nr_blocks <= MAX_ENTRY_BLOCKS);
    assert_eq!(e.flags & !ENTRY_ENCRYPTED, 0);
    assert_eq!(e.flags & ENTRY_ENCRYPTED != 0, e.key_id != 0);
    assert!(e.lba.checked_add(u64::from(e.nr_blocks)).is_some());
    let mut out = [0u8; BLOCK_SIZE];
    datalog::encode(e, block, tag, &mut out).expect("encode");
    assert!(
        out[..] == buf[..],
        "a decoded header does not encode back to its bytes"
    );

    let mut data = [0u8; DATA_BLOCKS * BLOCK_SIZE];
    data.fill(inp.u8());
    data[inp.u16() as usize % data.len()] ^= inp.u8();
    let n = e.nr_blocks as usize;
    if n <= DATA_BLOCKS {
        let data = &data[..n * BLOCK_SIZE];
        let good = crc32c(data) == e.data_crc;
        assert_eq!(datalog::verify_data(e, data, block).is_ok(), good);
        if !good {
            assert_eq!(
                datalog::verify_data(e, data, block),
                Err(Error::BadChecksum { block })
            );
        }
        let right = Entry {
            data_crc: crc32c(data),
            ..*e
        };
        assert_eq!(datalog::verify_data(&right, data, block), Ok(()));
    }
    let short = &data[..(n - 1).min(DATA_BLOCKS) * BLOCK_SIZE];
    assert_eq!(
        datalog::verify_data(e, short, block),
        Err(Error::InvalidArgument)
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    if mode == MODE_RAW {
        if let Ok(e) = datalog::decode(rest, 0, 0) {
            check(&e, rest, 0, 0, &mut Input::new(&[]));
        }
        return;
    }
    let how = Seal::from_mode(mode);
    let mut inp = Input::new(rest);
    let block = inp.u64();
    let tag = inp.u64();
    let nr_blocks = if inp.bool() {
        inp.range(1, DATA_BLOCKS as u64)
    } else {
        inp.range(1, u64::from(MAX_ENTRY_BLOCKS))
    } as u32;
    let key_id = if inp.bool() { inp.u32().max(1) } else { 0 };
    let entry = Entry {
        seq: inp.u64(),
        lba: inp.range(0, u64::MAX - u64::from(nr_blocks)),
        nr_blocks,
        key_id,
        data_crc: inp.u32(),
        flags: if key_id != 0 { ENTRY_ENCRYPTED } else { 0 },
    };
    let mut buf = [0u8; BLOCK_SIZE];
    datalog::encode(&entry, block, tag, &mut buf).expect("encode");
    assert_eq!(
        datalog::decode(&buf, block, tag),
        Ok(entry),
        "a valid header is refused"
    );
    mutate(&mut buf, &FIELDS, &mut inp);
    reseal(&mut buf, LOG_HEADER, block, how);
    match datalog::decode(&buf, block, tag) {
        Ok(e) => check(&e, &buf, block, tag, &mut inp),
        Err(e) => assert!(allowed_error(&e, how), "{e:?}"),
    }
});
