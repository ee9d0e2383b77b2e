// SPDX-License-Identifier: GPL-2.0

//! The write-ahead log (T5): a circular region of WAL blocks on the
//! performance device.
//!
//! # Life of a generation
//!
//! Checkpoint *G* ends with an end-marker block (one [`KIND_END`] record)
//! at the WAL's *tail*; the superblock of *G* names that block. Records
//! appended after it ([`Wal::append`]) are buffered in memory and written
//! by [`Wal::commit`]: flush (so the data the records refer to is durable
//! first), write the sealed blocks, flush. Every block carries generation
//! *G*, a block sequence number and the volume tag; each record its own
//! CRC and sequence number. Blocks are written once, never rewritten.
//!
//! Recovery ([`Wal::recover`]) checks the end marker named by the chosen
//! superblock, then replays blocks in sequence until one fails to verify,
//! has another sequence number or generation, or breaks the record
//! sequence: that is the torn or stale tail, and it is never applied.
//! Because blocks left behind by a crash carry the old generation, the
//! recovered log refuses appends until the next checkpoint has written a
//! new end marker ([`Wal::write_end`]): stale blocks after the tail can
//! then never pass for new ones.
//!
//! Space: blocks from the tail (inclusive) to the head are in use; one
//! block is always kept for the next end marker. Space before the tail is
//! reused once a checkpoint has moved the tail. When appending would eat
//! the reserve, [`Wal::append`] returns `Error::NoSpace`: checkpoint first.

use crate::error::{Error, Result};
use crate::format::superblock::WalPosition;
use crate::io::device::{BlockDevice, BLOCK_SIZE};
use crate::journal::wal_block::{self, BlockInfo, Record, HEADER_SIZE, KIND_END, MAX_PAYLOAD};
use crate::kcompat::{KVec, GFP_KERNEL};

/// Counters for benchmarks and statistics.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended.
    pub records: u64,
    /// WAL blocks written.
    pub blocks_written: u64,
    /// Device flushes issued.
    pub flushes: u64,
}

/// The WAL of one volume. See the module docs.
pub struct Wal {
    start: u64,
    blocks: u64,
    tag: u64,
    tail: u64,
    tail_seq: u64,
    /// Sequence number of the next block to write.
    head_seq: u64,
    generation: u64,
    next_record: u64,
    /// Sealed blocks not yet written, contiguous.
    sealed: KVec<u8>,
    open: KVec<u8>,
    open_end: usize,
    open_records: u32,
    open_first: u64,
    needs_checkpoint: bool,
    stats: WalStats,
}

impl Wal {
    fn with_position(pos: WalPosition, generation: u64, tag: u64) -> Result<Self> {
        if pos.blocks < 2 || pos.tail >= pos.blocks {
            return Err(Error::InvalidArgument);
        }
        Ok(Self {
            start: pos.start,
            blocks: pos.blocks,
            tag,
            tail: pos.tail,
            tail_seq: pos.tail_seq,
            head_seq: pos.tail_seq.wrapping_add(1),
            generation,
            next_record: 0,
            sealed: KVec::new(),
            open: KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?,
            open_end: HEADER_SIZE,
            open_records: 0,
            open_first: 0,
            needs_checkpoint: false,
            stats: WalStats::default(),
        })
    }

    /// Writes the first end marker of a freshly formatted WAL (`pos.tail`,
    /// `pos.tail_seq`, generation `generation`) and returns the log.
    pub fn format(
        dev: &mut dyn BlockDevice,
        pos: WalPosition,
        generation: u64,
        tag: u64,
    ) -> Result<Self> {
        let mut wal = Self::with_position(pos, generation, tag)?;
        wal.head_seq = pos.tail_seq;
        wal.write_end_block(dev, generation)?;
        Ok(wal)
    }

    /// Block of the region holding block sequence number `seq`.
    fn block_of(&self, seq: u64) -> u64 {
        let idx = (self.tail + seq.wrapping_sub(self.tail_seq)) % self.blocks;
        self.start + idx
    }

    /// Blocks in use if `extra` more are written, plus the end-marker reserve.
    fn fits(&self, extra: u64) -> bool {
        let used = self.head_seq.wrapping_sub(self.tail_seq);
        let pending = (self.sealed.len() / BLOCK_SIZE) as u64;
        used + pending + extra < self.blocks
    }

    /// Whether the log has been recovered and awaits a checkpoint before
    /// taking appends.
    pub fn needs_checkpoint(&self) -> bool {
        self.needs_checkpoint
    }

    /// Free blocks left for records.
    pub fn free_blocks(&self) -> u64 {
        let used =
            self.head_seq.wrapping_sub(self.tail_seq) + (self.sealed.len() / BLOCK_SIZE) as u64;
        self.blocks
            .saturating_sub(used + 1 + u64::from(self.open_records > 0))
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// Buffers a record of `kind` (1..=0xfe) with `payload` (at most
    /// [`MAX_PAYLOAD`] bytes); returns its sequence number. Durable only
    /// after [`Wal::commit`] returns.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<u64> {
        if self.needs_checkpoint || kind == 0 || kind == KIND_END || payload.len() > MAX_PAYLOAD {
            return Err(Error::InvalidArgument);
        }
        if self.open_end + wal_block::record_size(payload.len()) > BLOCK_SIZE {
            self.seal_open()?;
        }
        if self.open_records == 0 {
            if !self.fits(1) {
                return Err(Error::NoSpace);
            }
            self.open_first = self.next_record;
        }
        let seq = self.next_record;
        self.open_end = wal_block::put_record(&mut self.open, self.open_end, kind, seq, payload)?;
        self.open_records += 1;
        self.next_record += 1;
        self.stats.records += 1;
        Ok(seq)
    }

    /// Seals the open block into the pending list.
    fn seal_open(&mut self) -> Result {
        if self.open_records == 0 {
            return Ok(());
        }
        let seq = self.head_seq + (self.sealed.len() / BLOCK_SIZE) as u64;
        let info = BlockInfo {
            seq,
            generation: self.generation,
            nr_records: self.open_records,
            first_record: self.open_first,
        };
        let block = self.block_of(seq);
        wal_block::seal(&mut self.open, block, info, self.open_end, self.tag)?;
        self.sealed.extend_from_slice(&self.open, GFP_KERNEL)?;
        self.open.fill(0);
        self.open_end = HEADER_SIZE;
        self.open_records = 0;
        Ok(())
    }

    /// Makes every appended record durable: flush, write, flush.
    pub fn commit(&mut self, dev: &mut dyn BlockDevice) -> Result {
        self.seal_open()?;
        dev.flush()?;
        self.stats.flushes += 1;
        if self.sealed.is_empty() {
            return Ok(());
        }
        let total = (self.sealed.len() / BLOCK_SIZE) as u64;
        let mut done = 0u64;
        while done < total {
            let seq = self.head_seq + done;
            let first = self.block_of(seq);
            let run = (total - done).min(self.start + self.blocks - first);
            let bytes =
                &self.sealed[(done as usize) * BLOCK_SIZE..((done + run) as usize) * BLOCK_SIZE];
            dev.write(first, bytes)?;
            done += run;
        }
        dev.flush()?;
        self.stats.flushes += 1;
        self.stats.blocks_written += total;
        self.head_seq += total;
        self.sealed.clear();
        Ok(())
    }

    /// Where the next end marker goes: the position a checkpoint's
    /// superblock records. Only valid with nothing pending (after commit).
    pub fn end_position(&self) -> Result<WalPosition> {
        if self.open_records > 0 || !self.sealed.is_empty() {
            return Err(Error::InvalidArgument);
        }
        Ok(WalPosition {
            start: self.start,
            blocks: self.blocks,
            tail: self.block_of(self.head_seq) - self.start,
            tail_seq: self.head_seq,
        })
    }

    /// Writes and flushes the end marker of checkpoint `generation` at
    /// [`Wal::end_position`]; the tail moves there and appends resume.
    pub fn write_end(&mut self, dev: &mut dyn BlockDevice, generation: u64) -> Result {
        self.end_position()?;
        self.write_end_block(dev, generation)
    }

    fn write_end_block(&mut self, dev: &mut dyn BlockDevice, generation: u64) -> Result {
        let mut buf = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
        let end = wal_block::put_record(
            &mut buf,
            HEADER_SIZE,
            KIND_END,
            self.next_record,
            &generation.to_le_bytes(),
        )?;
        let seq = self.head_seq;
        let block = self.block_of(seq);
        let info = BlockInfo {
            seq,
            generation,
            nr_records: 1,
            first_record: self.next_record,
        };
        wal_block::seal(&mut buf, block, info, end, self.tag)?;
        dev.write(block, &buf)?;
        dev.flush()?;
        self.stats.flushes += 1;
        self.stats.blocks_written += 1;
        self.tail = block - self.start;
        self.tail_seq = seq;
        self.head_seq = seq + 1;
        self.next_record += 1;
        self.generation = generation;
        self.needs_checkpoint = false;
        Ok(())
    }

    /// Checks the end marker of checkpoint `generation` at `pos`: whether
    /// that checkpoint completed. Returns the next record sequence number.
    pub fn check_end(
        dev: &mut dyn BlockDevice,
        pos: WalPosition,
        generation: u64,
        tag: u64,
    ) -> Result<u64> {
        let wal = Self::with_position(pos, generation, tag)?;
        let mut buf = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
        let block = wal.block_of(pos.tail_seq);
        dev.read(block, &mut buf)?;
        let info = wal_block::verify(&buf, block, tag)?;
        let mut recs = wal_block::records(&buf);
        let ok = info.seq == pos.tail_seq
            && info.generation == generation
            && info.nr_records == 1
            && recs
                .next()
                .is_some_and(|r| r.kind == KIND_END && r.payload == generation.to_le_bytes());
        if !ok {
            return Err(Error::Corrupt {
                block: Some(block),
                what: "WAL end marker",
            });
        }
        Ok(info.first_record + 1)
    }

    /// Recovers the log of checkpoint `generation` (whose superblock says
    /// `pos`): checks its end marker, then hands every valid record after
    /// it to `replay`, in order. The log then refuses appends until the
    /// next checkpoint.
    pub fn recover(
        dev: &mut dyn BlockDevice,
        pos: WalPosition,
        generation: u64,
        tag: u64,
        replay: &mut dyn FnMut(&mut dyn BlockDevice, Record<'_>) -> Result,
    ) -> Result<Self> {
        let mut wal = Self::with_position(pos, generation, tag)?;
        wal.next_record = Self::check_end(dev, pos, generation, tag)?;
        let mut buf = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
        for _ in 1..wal.blocks {
            let block = wal.block_of(wal.head_seq);
            dev.read(block, &mut buf)?;
            let Some(info) = wal.next_block(&buf, block)? else {
                break;
            };
            for rec in wal_block::records(&buf) {
                replay(dev, rec)?;
            }
            wal.next_record += u64::from(info.nr_records);
            wal.head_seq += 1;
        }
        wal.needs_checkpoint = true;
        Ok(wal)
    }

    /// Whether `buf` (read from `block`) continues the log: `None` at the
    /// end of the valid log, an error if a newer generation follows
    /// directly (its superblock must have been lost).
    fn next_block(&self, buf: &[u8], block: u64) -> Result<Option<BlockInfo>> {
        let Ok(info) = wal_block::verify(buf, block, self.tag) else {
            return Ok(None);
        };
        if info.seq != self.head_seq || info.first_record != self.next_record {
            return Ok(None);
        }
        if info.generation > self.generation {
            return Err(Error::Corrupt {
                block: Some(block),
                what: "WAL continues past a checkpoint without superblock",
            });
        }
        if info.generation != self.generation || wal_block::records(buf).any(|r| r.kind == KIND_END)
        {
            return Ok(None);
        }
        Ok(Some(info))
    }
}
