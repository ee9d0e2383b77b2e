// SPDX-License-Identifier: GPL-2.0
//! WAL block verification and record iteration. A valid block (records
//! drawn from the input, written by `put_record` and `seal`) has header
//! and record fields edited; the record checksums and the block checksum
//! are then recomputed as the writer does, so that the checks behind them
//! (used bytes, record count, record sequence, kind, padding) are reached.
//! A block that verifies yields exactly the records its header counts and
//! rebuilds to the same bytes. Raw mode feeds the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::format::crc32c::crc32c;
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::journal::wal_block::{
    self, BlockInfo, HEADER_SIZE, KIND_END, MAX_PAYLOAD, RECORD_HEADER, WAL_BLOCK,
};
use vtier_engine_fuzz::{
    allowed_error, mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW,
};

#[rustfmt::skip]
const HEADER_FIELDS: [Field; 9] = [
    COMMON[0], COMMON[1], COMMON[2],
    (0x18, 8), (0x20, 8), (0x28, 4), (0x2c, 4), (0x30, 8), (0x38, 8),
];
/// Most records a seed block holds.
const MAX_SEED_RECORDS: usize = 8;

/// Checks what `verify` accepted; panics if a rule is broken.
fn check(buf: &[u8], block: u64, tag: u64, info: BlockInfo) {
    let used = u32::from_le_bytes([buf[0x2c], buf[0x2d], buf[0x2e], buf[0x2f]]) as usize;
    assert!(HEADER_SIZE + used <= BLOCK_SIZE);
    let mut out = [0u8; BLOCK_SIZE];
    let mut at = HEADER_SIZE;
    let mut n = 0u32;
    for rec in wal_block::records(buf) {
        assert!(rec.kind != 0 && rec.payload.len() <= MAX_PAYLOAD);
        assert_eq!(rec.seq, info.first_record.wrapping_add(u64::from(n)));
        at = wal_block::put_record(&mut out, at, rec.kind, rec.seq, rec.payload)
            .expect("a verified record does not fit a block");
        n += 1;
    }
    assert_eq!(
        n, info.nr_records,
        "verify and records disagree on the count"
    );
    assert_eq!(at, HEADER_SIZE + used, "records do not fill the used bytes");
    wal_block::seal(&mut out, block, info, at, tag).expect("seal");
    assert!(
        out[..] == buf[..],
        "a verified block does not rebuild to its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    if mode == MODE_RAW {
        let n = wal_block::records(rest).count();
        if let Ok(info) = wal_block::verify(rest, 0, 0) {
            assert_eq!(n as u32, info.nr_records);
            check(rest, 0, 0, info);
        }
        return;
    }
    let how = Seal::from_mode(mode);
    let mut inp = Input::new(rest);
    let block = inp.range(0, 1000);
    let tag = inp.u64();
    let mut info = BlockInfo {
        seq: inp.u64(),
        generation: inp.u64(),
        nr_records: 0,
        first_record: inp.u64(),
    };
    let mut buf = [0u8; BLOCK_SIZE];
    let mut at = HEADER_SIZE;
    let mut starts = [0usize; MAX_SEED_RECORDS];
    if inp.u8().is_multiple_of(8) {
        // An end-marker block: one record, the generation as its payload.
        starts[0] = at;
        at = wal_block::put_record(
            &mut buf,
            at,
            KIND_END,
            info.first_record,
            &info.generation.to_le_bytes(),
        )
        .expect("end marker");
        info.nr_records = 1;
    } else {
        for start in starts
            .iter_mut()
            .take(inp.u8() as usize % (MAX_SEED_RECORDS + 1))
        {
            let room = BLOCK_SIZE - at;
            if room < RECORD_HEADER {
                break;
            }
            let kind = 1 + inp.u8() % 0xff;
            let len = (inp.u16() as usize % 600).min(room - RECORD_HEADER);
            let fill = inp.u8();
            let mut payload = [0u8; MAX_PAYLOAD];
            for (i, b) in payload[..len].iter_mut().enumerate() {
                *b = fill.wrapping_add(i as u8);
            }
            let seq = info.first_record.wrapping_add(u64::from(info.nr_records));
            *start = at;
            at = wal_block::put_record(&mut buf, at, kind, seq, &payload[..len]).expect("record");
            info.nr_records += 1;
        }
    }
    wal_block::seal(&mut buf, block, info, at, tag).expect("seal");
    assert_eq!(
        wal_block::verify(&buf, block, tag),
        Ok(info),
        "a valid block is refused"
    );

    // The record fields of every record, then the header's.
    let nr = info.nr_records as usize;
    let mut fields = [(0usize, 0usize); HEADER_FIELDS.len() + 6 * MAX_SEED_RECORDS];
    fields[..HEADER_FIELDS.len()].copy_from_slice(&HEADER_FIELDS);
    let mut count = HEADER_FIELDS.len();
    for &s in &starts[..nr] {
        for f in [
            (s, 4),
            (s + 4, 2),
            (s + 6, 1),
            (s + 7, 1),
            (s + 8, 8),
            (s + RECORD_HEADER, 1),
        ] {
            if f.0 + f.1 <= BLOCK_SIZE {
                fields[count] = f;
                count += 1;
            }
        }
    }
    mutate(&mut buf, &fields[..count], &mut inp);
    if how != Seal::None && inp.bool() {
        // Record checksums again, over the lengths as edited, as put_record
        // computes them.
        for &s in &starts[..nr] {
            let len = u16::from_le_bytes([buf[s + 4], buf[s + 5]]) as usize;
            if let Some(body) = buf.get(s + 4..s + RECORD_HEADER + len) {
                let sum = crc32c(body);
                buf[s..s + 4].copy_from_slice(&sum.to_le_bytes());
            }
        }
    }
    reseal(&mut buf, WAL_BLOCK, block, how);
    let n = wal_block::records(&buf).count();
    match wal_block::verify(&buf, block, tag) {
        Ok(got) => {
            assert_eq!(n as u32, got.nr_records);
            check(&buf, block, tag, got);
        }
        Err(e) => assert!(allowed_error(&e, how), "{e:?}"),
    }
});
