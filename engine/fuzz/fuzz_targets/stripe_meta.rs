// SPDX-License-Identifier: GPL-2.0
//! Stripe store header decoding. A valid header (geometry, map root,
//! member states and rebuild drawn from the input, written by
//! `meta::encode`) has fields edited and is sealed again; a header that
//! decodes has a geometry recomputed from its parts whose last chunk lies
//! inside the member, a position below the member count, a consistent map
//! root, valid states (zero past the members), a rebuild cursor exactly
//! when one member is rebuilding, and encodes back to the same bytes. Raw
//! mode feeds the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::space::allocator::AllocRoot;
use vtier_engine::stripe::geometry::{StripeGeometry, MAX_CHUNK_BLOCKS, MAX_MEMBERS};
use vtier_engine::stripe::meta::{
    self, StoreHeader, STATE_FAILED, STATE_OK, STATE_REBUILDING, STORE_HEADER,
};
use vtier_engine_fuzz::{
    allowed_error, mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW,
};

#[rustfmt::skip]
const HEADER_FIELDS: [Field; 29] = [
    COMMON[0], COMMON[1], COMMON[2],
    (0x018, 8), (0x020, 8), (0x028, 8), (0x030, 4), (0x034, 4), (0x038, 4),
    (0x03c, 4), (0x040, 4), (0x044, 4), (0x048, 8), (0x050, 8), (0x058, 8),
    (0x060, 8), (0x068, 8), (0x070, 4), (0x074, 4), (0x078, 8), (0x080, 8),
    (0x088, 4), (0x08c, 4), (0x090, 8), (0x098, 8), (0x0b8, 8), (0x0f8, 8),
    (0x100, 8), (0xff8, 8),
];

fn geometry(inp: &mut Input) -> StripeGeometry {
    let k = inp.range(1, 24) as u32;
    let m = inp.range(1, 8) as u32;
    let n = inp.range(u64::from(k + m), MAX_MEMBERS as u64) as u32;
    let cb_max = (u64::from(MAX_CHUNK_BLOCKS)).min((1 << 20) / u64::from(k));
    let chunk_blocks = inp.range(1, cb_max) as u32;
    let area_start = inp.range(0, 1 << 34);
    let slots = if inp.bool() {
        inp.range(1, 1000)
    } else {
        inp.range(1, 1 << 40)
    };
    StripeGeometry::with_slots(k, m, n, chunk_blocks, area_start, slots)
        .or_else(|_| StripeGeometry::with_slots(k, m, n, chunk_blocks, 0, 1000))
        .expect("geometry")
}

fn check(h: &StoreHeader, buf: &[u8], block: u64) {
    let g = h.geom;
    let again = StripeGeometry::with_slots(
        g.k,
        g.m,
        g.nr_members,
        g.chunk_blocks,
        g.area_start,
        g.slots_per_member,
    );
    assert_eq!(again, Ok(g));
    assert_eq!(meta::header_block(&g, h.generation), block);
    let n = g.nr_members as usize;
    assert!((h.member as usize) < n && n <= MAX_MEMBERS);
    assert!(h.map_generation >= 1 && h.map.copy == (h.map_generation & 1) as u32);
    assert!(h.map.free <= g.nr_stripes);
    assert!(h.states[..n].iter().all(|&s| s <= STATE_REBUILDING));
    assert!(h.states[n..].iter().all(|&s| s == 0));
    let rebuilding = h.states[..n]
        .iter()
        .filter(|&&s| s == STATE_REBUILDING)
        .count();
    match h.rebuild {
        Some((r, cursor)) => {
            assert_eq!(rebuilding, 1);
            assert!((r as usize) < n && h.states[r as usize] == STATE_REBUILDING);
            assert!(cursor <= g.nr_stripes);
        }
        None => assert_eq!(rebuilding, 0),
    }
    let last = g.chunk_location(g.nr_stripes - 1, g.width() - 1);
    assert!(last.is_some_and(|(mem, b)| mem < n && b + g.slot_blocks() <= g.member_blocks()));
    let mut out = [0u8; BLOCK_SIZE];
    meta::encode(h, block, &mut out).expect("encode");
    assert!(
        out[..] == buf[..],
        "a decoded header does not encode back to its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    if mode == MODE_RAW {
        let mut inp = Input::new(rest);
        let block = inp.u64();
        let body = inp.rest();
        if let Ok(h) = meta::decode(body, block) {
            check(&h, body, block);
        }
        return;
    }
    let how = Seal::from_mode(mode);
    let mut inp = Input::new(rest);
    let geom = geometry(&mut inp);
    let n = geom.nr_members as usize;
    let mut states = [STATE_OK; MAX_MEMBERS];
    for _ in 0..inp.u8() % 3 {
        states[inp.u8() as usize % n] = STATE_FAILED;
    }
    let rebuild = if inp.bool() {
        let r = inp.u8() as usize % n;
        states[r] = STATE_REBUILDING;
        Some((r as u32, inp.range(0, geom.nr_stripes)))
    } else {
        None
    };
    let map_generation = inp.range(1, u64::MAX);
    let h = StoreHeader {
        generation: inp.u64(),
        uuid: inp.bytes(),
        member: inp.range(0, n as u64 - 1) as u32,
        geom,
        map_generation,
        map: AllocRoot {
            copy: (map_generation & 1) as u32,
            crc: inp.u32(),
            free: inp.range(0, geom.nr_stripes),
        },
        seq_limit: inp.u64(),
        rebuild,
        states,
    };
    let block = meta::header_block(&geom, h.generation);
    let mut buf = [0u8; BLOCK_SIZE];
    meta::encode(&h, block, &mut buf).expect("encode");
    assert_eq!(
        meta::decode(&buf, block),
        Ok(h),
        "a valid header is refused"
    );

    let mut fields = [(0usize, 0usize); HEADER_FIELDS.len() + 4];
    fields[..HEADER_FIELDS.len()].copy_from_slice(&HEADER_FIELDS);
    for (i, f) in fields[HEADER_FIELDS.len()..].iter_mut().enumerate() {
        // States: in use, the first past the members, anywhere.
        let s = match i {
            0 | 1 => inp.u8() as usize % n,
            2 => n.min(MAX_MEMBERS - 1),
            _ => inp.u8() as usize % MAX_MEMBERS,
        };
        *f = (0xc0 + s, 1);
    }
    mutate(&mut buf, &fields, &mut inp);
    reseal(&mut buf, STORE_HEADER, block, how);
    match meta::decode(&buf, block) {
        Ok(d) => check(&d, &buf, block),
        Err(e) => assert!(allowed_error(&e, how), "{e:?}"),
    }
});
