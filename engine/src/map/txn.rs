// SPDX-License-Identifier: GPL-2.0

//! Abortable transactions over the versioned tuple cache (T6).
//!
//! # Rules
//!
//! - [`TxnManager::begin`] returns a [`Txn`] token; it must end in exactly
//!   one [`TxnManager::commit`] or [`TxnManager::abort`], which consume it.
//! - A transaction's writes ([`TxnManager::map`], [`TxnManager::unmap`])
//!   are pending tuples in the cache, seen by that transaction only. Its
//!   reads ([`TxnManager::lookup`]) see, in this order of precedence: its
//!   own writes, committed tuples, the B-tree.
//! - Concurrency control is optimistic. Reads and writes record the LBA
//!   ranges they touched. At commit the transaction is validated against
//!   every transaction that committed since it began: if any of them wrote
//!   a range this one read or wrote, this one loses (first committer wins)
//!   and is aborted. No locks are held while a transaction runs.
//! - Abort drops the transaction's pending tuples. Nothing of an aborted
//!   transaction ever reached a device, so it costs no I/O.
//! - Commit appends one redo record (what was written, no undo) to the
//!   [`RedoSink`] (the WAL), optionally flushes it (`durable`), then turns
//!   the tuples into committed ones. A commit is durable once its record
//!   is flushed.
//! - The B-tree is never changed by a transaction. [`TxnManager::checkpoint`]
//!   applies every committed tuple to it (in the open node generation; see
//!   the copy-on-write rules in [`crate::btree::node_tm`]) and returns the
//!   sequence number now contained in it. The caller then flushes the
//!   nodes, writes the superblock with the new root and that sequence
//!   number, and may drop older redo records.
//! - Recovery mounts the last checkpoint's root and replays, in order,
//!   the durable redo records newer than its sequence number
//!   ([`TxnManager::replay`]). Aborted transactions wrote no record, so
//!   none is ever replayed.
//! - An error other than a lost validation (allocation, I/O) leaves the
//!   manager unusable for writing: the caller fails the volume (sticky).

use crate::btree::node_tm::NodeStore;
use crate::btree::range_map::{overlay, piece_at, Piece};
use crate::btree::tree::{ReadTree, WriteTree};
use crate::error::{Error, Result};
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::{Extent, MAX_EXTENT_LEN};
use crate::map::redo::{self, RedoSink};
use crate::map::tuple_cache::{LayerRef, Tuple, TupleCache, TupleOp, Version, Who};

/// A running transaction. Not `Clone`: it ends exactly once.
#[must_use = "a transaction must be committed or aborted"]
#[derive(Debug, PartialEq, Eq)]
pub struct Txn {
    id: u64,
}

impl Txn {
    /// The transaction id (the tuples' minor key).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// How a commit ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed with this sequence number (the last one for a read-only
    /// transaction, which writes no record).
    Committed {
        /// Commit sequence number.
        seq: u64,
    },
    /// Lost validation to an earlier committer and was aborted.
    Aborted,
}

/// A half-open LBA range `start..end`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Span {
    start: u64,
    end: u64,
}

impl Span {
    fn overlaps(&self, o: &Span) -> bool {
        self.start < o.end && o.start < self.end
    }
}

/// Appends `s` to `v`, extending the last span when they touch.
fn add_span(v: &mut KVec<Span>, s: Span) -> Result {
    if let Some(last) = v.last_mut() {
        if last.end == s.start {
            last.end = s.end;
            return Ok(());
        }
    }
    v.push(s, GFP_KERNEL)?;
    Ok(())
}

struct Active {
    id: u64,
    /// Last sequence number committed when it began.
    start_seq: u64,
    reads: KVec<Span>,
    writes: KVec<Span>,
}

/// What a commit wrote, kept while a transaction that began before it runs.
struct History {
    seq: u64,
    span: Span,
}

/// The transaction manager of the LBA map.
pub struct TxnManager {
    cache: TupleCache,
    active: KVec<Active>,
    history: KVec<History>,
    next_txn: u64,
    last_seq: u64,
    applied_seq: u64,
    record: KVec<u8>,
}

impl TxnManager {
    /// A manager over a B-tree that contains every commit up to
    /// `applied_seq` (from the last checkpoint; 0 on a new volume).
    pub fn new(applied_seq: u64) -> Self {
        Self {
            cache: TupleCache::new(),
            active: KVec::new(),
            history: KVec::new(),
            next_txn: 1,
            last_seq: applied_seq,
            applied_seq,
            record: KVec::new(),
        }
    }

    /// Last committed sequence number.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Last sequence number contained in the B-tree.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// The tuple cache, for inspection.
    pub fn cache(&self) -> &TupleCache {
        &self.cache
    }

    /// Transactions running.
    pub fn nr_active(&self) -> usize {
        self.active.len()
    }

    /// Starts a transaction.
    pub fn begin(&mut self) -> Result<Txn> {
        let id = self.next_txn;
        self.active.push(
            Active {
                id,
                start_seq: self.last_seq,
                reads: KVec::new(),
                writes: KVec::new(),
            },
            GFP_KERNEL,
        )?;
        self.next_txn += 1;
        Ok(Txn { id })
    }

    fn active_index(&self, txn: &Txn) -> Result<usize> {
        self.active
            .iter()
            .position(|a| a.id == txn.id)
            .ok_or(Error::InvalidArgument)
    }

    /// In `txn`, maps `lba..lba + ext.len` to `ext`.
    pub fn map(&mut self, txn: &Txn, lba: u64, ext: Extent) -> Result {
        ext.validate(None).map_err(|_| Error::InvalidArgument)?;
        self.write(txn, lba, TupleOp::Map(ext))
    }

    /// In `txn`, unmaps `lba..lba + len` (discard).
    pub fn unmap(&mut self, txn: &Txn, lba: u64, len: u64) -> Result {
        let end = lba.checked_add(len).ok_or(Error::InvalidArgument)?;
        let mut at = lba;
        while at < end {
            let n = (end - at).min(u64::from(MAX_EXTENT_LEN)) as u32;
            self.write(txn, at, TupleOp::Unmap { len: n })?;
            at += u64::from(n);
        }
        Ok(())
    }

    fn write(&mut self, txn: &Txn, lba: u64, op: TupleOp) -> Result {
        let i = self.active_index(txn)?;
        let end = lba
            .checked_add(u64::from(op.len()))
            .ok_or(Error::InvalidArgument)?;
        add_span(&mut self.active[i].writes, Span { start: lba, end })?;
        let v = Version {
            op,
            txn: txn.id,
            seq: 0,
        };
        overlay(&mut self.cache.layer(Who::Pending(txn.id)), lba, v)
    }

    /// In `txn`, where `lba` lives: the piece starting at `lba`, at most
    /// `max_len` blocks long, mapped or a hole.
    pub fn lookup<S: NodeStore>(
        &mut self,
        txn: &Txn,
        tree: &ReadTree<'_, S>,
        lba: u64,
        max_len: u64,
    ) -> Result<Piece<Extent>> {
        let i = self.active_index(txn)?;
        let end = lba
            .checked_add(max_len.max(1))
            .ok_or(Error::InvalidArgument)?;
        let mut len = end - lba;
        let mut found = None;
        for who in [Who::Pending(txn.id), Who::Committed] {
            let layer = LayerRef {
                tuples: self.cache.tuples(),
                who,
            };
            let p = piece_at(&layer, lba)?;
            len = len.min(p.len);
            if let Some(v) = p.value {
                found = Some(v.op);
                break;
            }
        }
        let value = match found {
            Some(TupleOp::Map(e)) => Some(e),
            Some(TupleOp::Unmap { .. }) => None,
            None => {
                let p = tree.lookup(lba)?;
                len = len.min(p.len);
                p.value
            }
        };
        let value = match value {
            Some(e) => Some(e.slice(0, len as u32)?),
            None => None,
        };
        add_span(
            &mut self.active[i].reads,
            Span {
                start: lba,
                end: lba + len,
            },
        )?;
        Ok(Piece {
            start: lba,
            len,
            value,
        })
    }

    /// Ends `txn` without effect: drops its pending tuples.
    pub fn abort(&mut self, txn: Txn) {
        self.cache.drop_where(|t| t.v.seq == 0 && t.v.txn == txn.id);
        if let Ok(i) = self.active_index(&txn) {
            let _ = self.active.remove(i);
        }
        self.prune_history();
    }

    /// True if a commit after `a` began wrote something `a` read or wrote.
    fn conflicts(&self, a: &Active) -> bool {
        self.history
            .iter()
            .filter(|h| h.seq > a.start_seq)
            .any(|h| {
                a.reads
                    .iter()
                    .chain(a.writes.iter())
                    .any(|s| s.overlaps(&h.span))
            })
    }

    /// Validates and commits `txn`; see the rules in the module docs.
    /// With `durable`, the redo record is flushed before this returns.
    pub fn commit(&mut self, txn: Txn, sink: &mut impl RedoSink, durable: bool) -> Result<Outcome> {
        let i = self.active_index(&txn)?;
        if self.conflicts(&self.active[i]) {
            self.abort(txn);
            return Ok(Outcome::Aborted);
        }
        if self.active[i].writes.is_empty() {
            self.abort(txn);
            return Ok(Outcome::Committed { seq: self.last_seq });
        }
        let seq = self.last_seq + 1;
        let mut mine = KVec::new();
        self.cache
            .collect_where(&mut mine, |t| t.v.seq == 0 && t.v.txn == txn.id)?;
        let logged = self.log(seq, txn.id, &mine, sink, durable);
        if let Err(e) = logged {
            self.abort(txn);
            return Err(e);
        }
        self.publish(seq, &txn, &mine)?;
        let a = self.active.remove(i).map_err(|_| Error::InvalidArgument)?;
        for s in a.writes.iter() {
            self.history.push(History { seq, span: *s }, GFP_KERNEL)?;
        }
        self.last_seq = seq;
        self.prune_history();
        Ok(Outcome::Committed { seq })
    }

    fn log(
        &mut self,
        seq: u64,
        txn: u64,
        mine: &[Tuple],
        sink: &mut impl RedoSink,
        durable: bool,
    ) -> Result {
        redo::encode(seq, txn, mine, &mut self.record)?;
        sink.append(seq, &self.record)?;
        if durable {
            sink.flush()?;
        }
        Ok(())
    }

    /// Turns the pending tuples `mine` of `txn` into committed ones.
    fn publish(&mut self, seq: u64, txn: &Txn, mine: &[Tuple]) -> Result {
        self.cache.drop_where(|t| t.v.seq == 0 && t.v.txn == txn.id);
        let mut layer = self.cache.layer(Who::Committed);
        for t in mine {
            let v = Version { seq, ..t.v };
            overlay(&mut layer, t.lba, v)?;
        }
        Ok(())
    }

    /// Forgets commits that no running transaction can conflict with.
    fn prune_history(&mut self) {
        let oldest = self.active.iter().map(|a| a.start_seq).min();
        match oldest {
            Some(s) => self.history.retain(|h| h.seq > s),
            None => self.history.clear(),
        }
    }

    /// Applies every committed tuple to the B-tree and drops it from the
    /// cache; returns the sequence number the tree now contains. Running
    /// transactions keep their pending tuples.
    pub fn checkpoint<S: NodeStore>(&mut self, tree: &mut WriteTree<'_, S>) -> Result<u64> {
        let mut committed = KVec::new();
        self.cache.collect_where(&mut committed, |t| t.v.seq != 0)?;
        for t in committed.iter() {
            match t.v.op {
                TupleOp::Map(e) => tree.map(t.lba, e)?,
                TupleOp::Unmap { len } => tree.unmap(t.lba, u64::from(len))?,
            }
        }
        self.cache.drop_where(|t| t.v.seq != 0);
        self.applied_seq = self.last_seq;
        Ok(self.applied_seq)
    }

    /// Replays one durable redo record during recovery, in log order.
    /// Records already in the B-tree are skipped; returns whether it was
    /// applied.
    pub fn replay(&mut self, record: &[u8]) -> Result<bool> {
        let hdr = redo::decode(record, |_, _| Ok(()))?;
        if hdr.seq <= self.applied_seq {
            return Ok(false);
        }
        if hdr.seq != self.last_seq + 1 || !self.active.is_empty() {
            return Err(Error::Corrupt {
                block: None,
                what: "redo record sequence",
            });
        }
        let layer = &mut self.cache.layer(Who::Committed);
        redo::decode(record, |lba, op| {
            let v = Version {
                op,
                txn: hdr.txn,
                seq: hdr.seq,
            };
            overlay(layer, lba, v)
        })?;
        self.last_seq = hdr.seq;
        self.next_txn = self.next_txn.max(hdr.txn.saturating_add(1));
        Ok(true)
    }
}
