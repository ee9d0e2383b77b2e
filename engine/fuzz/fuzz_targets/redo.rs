// SPDX-License-Identifier: GPL-2.0
//! Redo record decoding. A redo record travels as a WAL record payload,
//! whose checksum is the WAL record's, so the record's own checks are all
//! behind that checksum. A valid record (ops drawn from the input, written
//! by `redo::encode`) has fields edited, bytes cut off or added, and is
//! decoded as it is or after a trip through a WAL block (`put_record`,
//! `seal`, `verify`, `records`), as recovery reads it. A record that
//! decodes has the size its op count says, a non-zero seq, ops whose
//! extents are valid and whose ranges do not wrap, and encodes back to the
//! same bytes. Raw mode feeds the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::io::paddr::PAddr;
use vtier_engine::journal::wal_block::{self, BlockInfo, HEADER_SIZE, MAX_PAYLOAD};
use vtier_engine::kcompat::{KVec, GFP_KERNEL};
use vtier_engine::map::extent::{Extent, EXTENT_KNOWN_FLAGS, MAX_EXTENT_LEN};
use vtier_engine::map::redo::{self, RedoHeader};
use vtier_engine::map::tuple_cache::{Tuple, TupleOp, Version};
use vtier_engine_fuzz::{mutate, split, Field, Input, MODE_RAW};

const HDR: usize = 24;
const OP: usize = 32;
const MAX_OPS: usize = 12;

thread_local! {
    static BUFS: RefCell<(KVec<u8>, Vec<Tuple>)> =
        const { RefCell::new((KVec::new(), Vec::new())) };
}

fn tuple(lba: u64, op: TupleOp) -> Tuple {
    Tuple {
        lba,
        v: Version { op, txn: 0, seq: 0 },
    }
}

/// Decodes `rec`, checks what it gives, and returns the header if it
/// decoded.
fn decode_and_check(rec: &[u8], out: &mut KVec<u8>, ops: &mut Vec<Tuple>) -> Option<RedoHeader> {
    ops.clear();
    let r = redo::decode(rec, |lba, op| {
        ops.push(tuple(lba, op));
        Ok(())
    });
    let h = match r {
        Ok(h) => h,
        Err(e) => {
            assert!(
                matches!(e, vtier_engine::error::Error::Corrupt { block: None, .. }),
                "{e:?}"
            );
            return None;
        }
    };
    assert!(h.seq >= 1);
    assert_eq!(h.nr_ops as usize, ops.len());
    assert_eq!(rec.len(), HDR + OP * ops.len());
    for t in ops.iter() {
        match t.v.op {
            TupleOp::Map(e) => assert_eq!(e.validate(None), Ok(())),
            TupleOp::Unmap { len } => assert!((1..=MAX_EXTENT_LEN).contains(&len)),
        }
        assert!(t.lba.checked_add(u64::from(t.v.op.len())).is_some());
    }
    redo::encode(h.seq, h.txn, ops, out).expect("encode");
    assert!(
        out.as_slice() == rec,
        "a decoded record does not encode back to its bytes"
    );
    Some(h)
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    BUFS.with(|cell| {
        let (out, ops) = &mut *cell.borrow_mut();
        if mode == MODE_RAW {
            decode_and_check(rest, out, ops);
            return;
        }
        let mut inp = Input::new(rest);
        let (seq, txn) = (inp.range(1, u64::MAX), inp.u64());
        ops.clear();
        let mut lba = inp.range(0, 1 << 50);
        for _ in 0..inp.u8() as usize % (MAX_OPS + 1) {
            let len = if inp.bool() {
                inp.range(1, u64::from(MAX_EXTENT_LEN))
            } else {
                inp.range(1, 8)
            } as u32;
            let op = if inp.u8().is_multiple_of(4) {
                TupleOp::Unmap { len }
            } else {
                let paddr = match inp.u8() % 3 {
                    0 => PAddr::perf(inp.range(0, 1 << 40)),
                    1 => PAddr::device(inp.range(1, 4095) as u16, inp.range(0, 1 << 40)),
                    _ => PAddr::stripe(inp.range(0, (1 << 40) - 1), 0),
                }
                .expect("address");
                let flags = u32::from(inp.u8()) & EXTENT_KNOWN_FLAGS;
                TupleOp::Map(Extent {
                    paddr,
                    len,
                    csum: inp.u32(),
                    flags,
                })
            };
            ops.push(tuple(lba, op));
            lba += u64::from(len) + u64::from(inp.u8());
        }
        let mut rec = KVec::new();
        redo::encode(seq, txn, ops, &mut rec).expect("encode");
        assert!(
            decode_and_check(&rec, out, ops).is_some(),
            "a valid record is refused"
        );

        let n = (rec.len() - HDR) / OP;
        let mut fields = [(0usize, 0usize); 4 + 6 * 3];
        fields[..4].copy_from_slice(&[(0, 4), (4, 4), (8, 8), (16, 8)]);
        let mut count = 4;
        for _ in 0..3 {
            if n == 0 {
                break;
            }
            let at = HDR + OP * (inp.u8() as usize % n);
            for f in [
                (at, 8),
                (at + 8, 8),
                (at + 16, 4),
                (at + 20, 4),
                (at + 24, 4),
                (at + 28, 4),
            ] {
                fields[count] = f;
                count += 1;
            }
        }
        let fields: &[Field] = &fields[..count];
        mutate(&mut rec, fields, &mut inp);
        match inp.u8() % 8 {
            0 => {
                let cut = (inp.u8() as usize % 40).min(rec.len());
                rec.truncate(rec.len() - cut);
            }
            1 => {
                for _ in 0..1 + inp.u8() % 40 {
                    rec.push(inp.u8(), GFP_KERNEL).expect("push");
                }
            }
            _ => {}
        }
        if inp.u8().is_multiple_of(4) && rec.len() <= MAX_PAYLOAD {
            // Through a WAL block, as recovery reads it.
            let mut block = [0u8; BLOCK_SIZE];
            let end = wal_block::put_record(&mut block, HEADER_SIZE, 1, 5, &rec).expect("record");
            let info = BlockInfo {
                seq: 1,
                generation: 1,
                nr_records: 1,
                first_record: 5,
            };
            wal_block::seal(&mut block, 3, info, end, 9).expect("seal");
            assert_eq!(wal_block::verify(&block, 3, 9), Ok(info));
            let r = wal_block::records(&block).next().expect("one record");
            assert!(r.payload == &rec[..]);
            decode_and_check(r.payload, out, ops);
        } else {
            decode_and_check(&rec, out, ops);
        }
    });
});
