// SPDX-License-Identifier: GPL-2.0

//! Redo records: what a committed transaction wrote, for the WAL.
//!
//! A commit appends one record (its tuples, after the fact: redo only, no
//! undo) through a [`RedoSink`]. Aborted transactions write nothing, so
//! recovery, which replays the records newer than the last checkpoint,
//! can never replay one. The byte layout (the WAL record payload) is in
//! `doc/FORMAT.md` ("Redo records").

use crate::error::{Error, Result};
use crate::io::paddr::PAddr;
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::Extent;
use crate::map::tuple_cache::{Tuple, TupleOp};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `"VTRD"` read as a little-endian `u32`.
pub const REDO_MAGIC: u32 = u32::from_le_bytes(*b"VTRD");
/// Op kind: map an extent.
pub const REDO_MAP: u32 = 1;
/// Op kind: unmap (tombstone).
pub const REDO_UNMAP: u32 = 2;

/// Where committed transactions' redo records go: the WAL.
pub trait RedoSink {
    /// Appends the record of commit `seq`. It may be lost by a crash until
    /// [`RedoSink::flush`] returns.
    fn append(&mut self, seq: u64, record: &[u8]) -> Result;
    /// Makes every appended record durable.
    fn flush(&mut self) -> Result;
}

/// Record header, 24 bytes.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawRedoHeader {
    /// 0x00: [`REDO_MAGIC`].
    magic: U32,
    /// 0x04: number of ops that follow.
    nr_ops: U32,
    /// 0x08: commit sequence number.
    seq: U64,
    /// 0x10: transaction id.
    txn: U64,
}

/// One op, 32 bytes.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RawRedoOp {
    /// +0x00: first LBA.
    lba: U64,
    /// +0x08: extent address, raw [`PAddr`]; 0 for unmap.
    paddr: U64,
    /// +0x10: blocks.
    len: U32,
    /// +0x14: extent data checksum; 0 for unmap.
    csum: U32,
    /// +0x18: extent flags; 0 for unmap.
    flags: U32,
    /// +0x1c: [`REDO_MAP`] or [`REDO_UNMAP`].
    kind: U32,
}

const HDR: usize = core::mem::size_of::<RawRedoHeader>();
const OP: usize = core::mem::size_of::<RawRedoOp>();
const _: () = assert!(HDR == 24 && OP == 32);

/// Encodes the record of transaction `txn` committed as `seq` with `ops`.
pub fn encode(seq: u64, txn: u64, ops: &[Tuple], out: &mut KVec<u8>) -> Result {
    out.clear();
    let hdr = RawRedoHeader {
        magic: U32::new(REDO_MAGIC),
        nr_ops: U32::new(u32::try_from(ops.len()).map_err(|_| Error::InvalidArgument)?),
        seq: U64::new(seq),
        txn: U64::new(txn),
    };
    out.extend_from_slice(hdr.as_bytes(), GFP_KERNEL)?;
    for t in ops {
        let (paddr, len, csum, flags, kind) = match t.v.op {
            TupleOp::Map(e) => (e.paddr.to_raw(), e.len, e.csum, e.flags, REDO_MAP),
            TupleOp::Unmap { len } => (0, len, 0, 0, REDO_UNMAP),
        };
        let op = RawRedoOp {
            lba: U64::new(t.lba),
            paddr: U64::new(paddr),
            len: U32::new(len),
            csum: U32::new(csum),
            flags: U32::new(flags),
            kind: U32::new(kind),
        };
        out.extend_from_slice(op.as_bytes(), GFP_KERNEL)?;
    }
    Ok(())
}

/// A decoded record header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RedoHeader {
    /// Commit sequence number.
    pub seq: u64,
    /// Transaction id.
    pub txn: u64,
    /// Ops in the record.
    pub nr_ops: u32,
}

/// Decodes and checks a record, calling `f(lba, op)` for each op.
/// The WAL checksums records; this checks their meaning.
pub fn decode(rec: &[u8], mut f: impl FnMut(u64, TupleOp) -> Result) -> Result<RedoHeader> {
    let corrupt = |what| Error::Corrupt { block: None, what };
    let (hdr, rest) =
        RawRedoHeader::ref_from_prefix(rec).map_err(|_| corrupt("redo record size"))?;
    let n = hdr.nr_ops.get() as usize;
    if hdr.magic.get() != REDO_MAGIC || hdr.seq.get() == 0 {
        return Err(corrupt("redo record header"));
    }
    if n.checked_mul(OP) != Some(rest.len()) {
        return Err(corrupt("redo record size"));
    }
    for chunk in rest.chunks_exact(OP) {
        let op = RawRedoOp::ref_from_bytes(chunk).map_err(|_| corrupt("redo op"))?;
        let t = match op.kind.get() {
            REDO_MAP => {
                let e = Extent {
                    paddr: PAddr::from_raw(op.paddr.get(), None)?,
                    len: op.len.get(),
                    csum: op.csum.get(),
                    flags: op.flags.get(),
                };
                e.validate(None)?;
                TupleOp::Map(e)
            }
            // An unmap names no extent: its address, checksum and flags
            // are written as zero and must read back as zero.
            REDO_UNMAP
                if op.len.get() != 0
                    && op.len.get() <= crate::map::extent::MAX_EXTENT_LEN
                    && (op.paddr.get(), op.csum.get(), op.flags.get()) == (0, 0, 0) =>
            {
                TupleOp::Unmap { len: op.len.get() }
            }
            _ => return Err(corrupt("redo op kind")),
        };
        op.lba
            .get()
            .checked_add(u64::from(t.len()))
            .ok_or(corrupt("redo op range"))?;
        f(op.lba.get(), t)?;
    }
    Ok(RedoHeader {
        seq: hdr.seq.get(),
        txn: hdr.txn.get(),
        nr_ops: n as u32,
    })
}

/// A redo log in memory that loses unflushed records in a crash: the
/// stand-in for the WAL in tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemRedoLog {
    /// `(seq, record)` in append order.
    pub records: KVec<(u64, KVec<u8>)>,
    /// Records made durable by the last flush.
    pub durable: usize,
    /// Flushes so far.
    pub flushes: u64,
}

impl MemRedoLog {
    /// Drops the records a power cut would lose.
    pub fn crash(&mut self) {
        self.records.truncate(self.durable);
    }

    /// Forgets records up to and including `seq` (after a checkpoint).
    pub fn truncate_upto(&mut self, seq: u64) {
        let before = self.records.len();
        self.records.retain(|(s, _)| *s > seq);
        self.durable = self.durable.saturating_sub(before - self.records.len());
    }
}

impl RedoSink for MemRedoLog {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result {
        let mut copy = KVec::with_capacity(record.len(), GFP_KERNEL)?;
        copy.extend_from_slice(record, GFP_KERNEL)?;
        self.records.push((seq, copy), GFP_KERNEL)?;
        Ok(())
    }

    fn flush(&mut self) -> Result {
        self.durable = self.records.len();
        self.flushes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::tuple_cache::Version;

    fn unmap_record() -> KVec<u8> {
        let t = Tuple {
            lba: 40,
            v: Version {
                op: TupleOp::Unmap { len: 3 },
                txn: 2,
                seq: 0,
            },
        };
        let mut rec = KVec::new();
        encode(5, 2, &[t], &mut rec).unwrap();
        rec
    }

    /// An unmap op whose address, checksum or flags are not zero does not
    /// decode: these fields mean nothing for an unmap, so anything there is
    /// damage (found by the redo fuzz target: such a record decoded and
    /// encoded back to different bytes).
    #[test]
    fn unmap_with_extent_fields_is_corrupt() {
        let rec = unmap_record();
        assert!(decode(&rec, |_, _| Ok(())).is_ok());
        for at in [HDR + 0x08, HDR + 0x0f, HDR + 0x14, HDR + 0x18] {
            let mut bad = KVec::new();
            bad.extend_from_slice(&rec, GFP_KERNEL).unwrap();
            bad[at] = 1;
            assert!(
                matches!(
                    decode(&bad, |_, _| Ok(())),
                    Err(Error::Corrupt { block: None, .. })
                ),
                "byte {at:#x}"
            );
        }
    }
}
