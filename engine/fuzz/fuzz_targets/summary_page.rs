// SPDX-License-Identifier: GPL-2.0
//! Summary-page verification. A valid page (identity and entries drawn
//! from the input, written by `summary::encode`) has header and entry
//! fields edited and is sealed again; a page that verifies has the
//! identity the reader asked for, a generation no later than allowed,
//! entries whose longest run is within their free count, and encodes back
//! to the same bytes. Raw mode feeds the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::space::summary::{
    self, Entry, PageId, ENTRY_SIZE, FANOUT, HEADER_SIZE, SUMMARY_PAGE,
};
use vtier_engine_fuzz::{
    allowed_error, mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW,
};

#[rustfmt::skip]
const HEADER_FIELDS: [Field; 10] = [
    COMMON[0], COMMON[1], COMMON[2],
    (0x18, 8), (0x20, 4), (0x24, 4), (0x28, 4), (0x2c, 4), (0x30, 8), (0x38, 8),
];

/// Checks a page `verify` accepted as `id` of at most `max_gen`.
fn check(buf: &[u8], block: u64, id: PageId, max_gen: u64) {
    assert!(id.nr_entries <= FANOUT);
    let mut g = [0u8; 8];
    g.copy_from_slice(&buf[0x18..0x20]);
    let generation = u64::from_le_bytes(g);
    assert!(generation <= max_gen);
    let mut entries = [Entry::default(); FANOUT as usize];
    for (i, e) in entries.iter_mut().enumerate().take(id.nr_entries as usize) {
        *e = summary::entry(buf, i as u32);
        assert!(e.longest <= e.free, "entry {i}: {e:?}");
    }
    let mut out = [0u8; BLOCK_SIZE];
    summary::encode(
        id,
        generation,
        block,
        &entries[..id.nr_entries as usize],
        &mut out,
    )
    .expect("encode");
    assert!(
        out[..] == buf[..],
        "a verified page does not encode back to its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    if mode == MODE_RAW {
        let n = u32::from(rest.first().copied().unwrap_or(0));
        let id = PageId {
            level: 1,
            index: 0,
            copy: 0,
            nr_entries: n,
        };
        if summary::verify(rest, 0, id, u64::MAX).is_ok() {
            check(rest, 0, id, u64::MAX);
        }
        let _ = summary::entry(rest, n);
        return;
    }
    let how = Seal::from_mode(mode);
    let mut inp = Input::new(rest);
    let block = inp.range(0, 1 << 20);
    let id = PageId {
        level: inp.range(1, 5) as u32,
        index: inp.range(0, 600) as u32,
        copy: u32::from(inp.u8() & 1),
        nr_entries: inp.range(0, u64::from(FANOUT)) as u32,
    };
    let generation = inp.u64();
    let max_gen = generation.saturating_add(inp.range(0, 3));
    let (crc, free, step) = (inp.u32(), inp.u32(), inp.u32());
    let mut entries = [Entry::default(); FANOUT as usize];
    for (i, e) in entries.iter_mut().enumerate().take(id.nr_entries as usize) {
        let f = free.wrapping_add(step.wrapping_mul(i as u32));
        *e = Entry {
            crc: crc.wrapping_add(i as u32),
            free: f,
            longest: f >> (i % 8),
        };
    }
    let mut buf = [0u8; BLOCK_SIZE];
    summary::encode(
        id,
        generation,
        block,
        &entries[..id.nr_entries as usize],
        &mut buf,
    )
    .expect("encode");
    assert_eq!(
        summary::verify(&buf, block, id, max_gen),
        Ok(()),
        "a valid page is refused"
    );

    // The header, then the fields of a few entries, used or just past the end.
    let mut fields = [(0usize, 0usize); HEADER_FIELDS.len() + 4 * 4];
    fields[..HEADER_FIELDS.len()].copy_from_slice(&HEADER_FIELDS);
    let mut count = HEADER_FIELDS.len();
    for _ in 0..4 {
        let i = inp.range(0, u64::from(id.nr_entries)) as usize % FANOUT as usize;
        let at = HEADER_SIZE + i * ENTRY_SIZE;
        for f in [(at, 4), (at + 4, 4), (at + 8, 4), (at + 12, 4)] {
            fields[count] = f;
            count += 1;
        }
    }
    mutate(&mut buf, &fields[..count], &mut inp);
    reseal(&mut buf, SUMMARY_PAGE, block, how);
    match summary::verify(&buf, block, id, max_gen) {
        Ok(()) => check(&buf, block, id, max_gen),
        Err(e) => assert!(allowed_error(&e, how), "{e:?}"),
    }
    let _ = summary::entry(&buf, inp.u32());
});
