// SPDX-License-Identifier: GPL-2.0

//! Destaging: data moves, as stored, from the performance tier into new
//! stripes of the capacity tier.
//!
//! A destage gathers performance-tier extents (at most one stripe's data,
//! in as many pieces as it takes), copies their stored bytes (ciphertext on an
//! encrypted volume: never decrypted) into the stage, writes the stage as a
//! new stripe and commits the stripe store, and only then repoints the
//! logical blocks at the stripe, [`DESTAGE_EXTENTS`] pieces per
//! transaction. The performance-tier
//! blocks are released like any displaced extent (free at the next
//! checkpoint). A crash before the map commit leaves an orphan stripe,
//! which the next open frees.

use super::{Store, Watermarks, DESTAGE_EXTENTS};
use crate::crypt::cipher::XtsCipher;
use crate::error::{Error, Result};
use crate::io::device::{BlockDevice, BLOCK_SIZE};
use crate::io::paddr::{Location, PAddr};
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::{Extent, EXTENT_HEADED};

impl<D: BlockDevice, C: XtsCipher> Store<D, C> {
    /// Moves up to `max_stripes` stripes of data from the performance tier
    /// to the capacity tier (see the module docs); returns the blocks
    /// moved, 0 without a capacity tier or with nothing left to move.
    pub fn destage(&mut self, max_stripes: u32) -> Result<u64> {
        let mut moved = 0;
        for _ in 0..max_stripes {
            match self.destage_stripe()? {
                0 => break,
                n => moved += n,
            }
        }
        Ok(moved)
    }

    /// The background destaging thresholds.
    pub fn watermarks(&self) -> Watermarks {
        self.watermarks
    }

    /// Sets the background destaging thresholds.
    pub fn set_watermarks(&mut self, w: Watermarks) {
        self.watermarks = w;
        self.background = false;
    }

    /// Percent of the performance tier's data area in use, counting
    /// blocks whose free waits for the next checkpoint as free.
    pub fn perf_in_use(&mut self) -> Result<u64> {
        let p = self.perf_space()?;
        let area = p.area.max(1);
        Ok(area.saturating_sub(p.free + p.deferred) * 100 / area)
    }

    /// Whether data should move to the capacity tier in the background
    /// now (see [`Watermarks`]); false without a capacity tier, with one
    /// that takes no writes, or with background destaging off.
    pub fn destage_wanted(&mut self) -> bool {
        let w = self.watermarks;
        let able = w.high > 0 && self.stripes.as_ref().is_some_and(|st| !st.is_read_only());
        let Ok(used) = self.perf_in_use() else {
            return false;
        };
        if !able || used < u64::from(w.low) {
            self.background = false;
        } else if used >= u64::from(w.high) {
            self.background = true;
        }
        self.background
    }

    /// One bounded step of background destaging: one stripe moved (and a
    /// checkpoint first when many frees wait for one, so that the space
    /// destaging gave back can be allocated). Returns whether more is
    /// wanted.
    pub fn background_step(&mut self) -> Result<bool> {
        if !self.destage_wanted() {
            return Ok(false);
        }
        let p = self.perf_space()?;
        if p.deferred > p.area / 8 {
            self.map.checkpoint()?;
            self.stats.checkpoints += 1;
            self.free_unreferenced();
        }
        if self.destage(1)? == 0 {
            // Nothing left to move, or no room for it: stop until the
            // next write finds the tier above the high watermark again.
            self.background = false;
            return Ok(false);
        }
        self.stats.background_destages += 1;
        Ok(self.destage_wanted())
    }

    /// Gathers performance-tier extents from `destage_at` on, at most one
    /// stripe's worth; returns them as (lba, extent, offset in the stripe).
    fn gather(&mut self, cap: u64, out: &mut KVec<(u64, Extent, u64)>) -> Result {
        let txn = self.map.begin()?;
        let r = (|| {
            let (mut at, mut scanned, mut total) = (self.destage_at, 0u64, 0u64);
            while total < cap && scanned < self.nr_lbas {
                if at >= self.nr_lbas {
                    at = 0;
                }
                let want = (cap - total).min(self.nr_lbas - at);
                let piece = self.map.lookup(&txn, at, want)?;
                let len = piece.len.min(want);
                if let Some(ext) = piece.value {
                    if let Location::Perf { .. } = ext.paddr.location() {
                        out.push((at, ext, total), GFP_KERNEL)?;
                        total += len;
                    }
                }
                at += len;
                scanned += len;
            }
            self.destage_at = at;
            Ok(())
        })();
        self.map.abort(txn);
        r
    }

    /// One stripe of [`Store::destage`].
    fn destage_stripe(&mut self) -> Result<u64> {
        let Some(stripes) = self.stripes.as_ref() else {
            return Ok(0);
        };
        if stripes.is_read_only() {
            return Ok(0);
        }
        let cap = stripes.geometry().data_blocks();
        self.maybe_checkpoint()?;
        if !self.room_to_destage()? {
            return Ok(0);
        }
        let mut pieces = KVec::new();
        self.gather(cap, &mut pieces)?;
        let total = self.restripe(&pieces)?;
        if total > 0 {
            self.stats.destaged_stripes += 1;
            self.stats.destaged_blocks += total;
        }
        Ok(total)
    }

    /// Copies `pieces` (`(lba, extent, offset in the stripe)`, as
    /// [`Store::gather`] gives them) as they are stored, ciphertext and
    /// all, into a new stripe, commits it and repoints their logical
    /// blocks at it in one transaction; what they displace is released
    /// like any displaced extent. Returns the blocks moved.
    fn restripe(&mut self, pieces: &[(u64, Extent, u64)]) -> Result<u64> {
        self.fill_stage(pieces)?;
        self.write_stage(pieces)
    }

    /// The stage holding the stored bytes of `pieces` (the first half of
    /// [`Store::restripe`]).
    pub(super) fn fill_stage(&mut self, pieces: &[(u64, Extent, u64)]) -> Result {
        let cap = self
            .stripes
            .as_ref()
            .ok_or(Error::InvalidArgument)?
            .geometry()
            .data_blocks();
        if self.stage.len() != cap as usize * BLOCK_SIZE {
            self.stage = KVec::from_elem(0u8, cap as usize * BLOCK_SIZE, GFP_KERNEL)?;
        }
        self.stage.fill(0);
        let mut stage = core::mem::take(&mut self.stage);
        let r = self.stage_pieces(pieces, &mut stage);
        self.stage = stage;
        r
    }

    /// The stage written as a new stripe and `pieces` repointed at it (the
    /// second half of [`Store::restripe`]); returns the blocks moved.
    pub(super) fn write_stage(&mut self, pieces: &[(u64, Extent, u64)]) -> Result<u64> {
        if pieces.is_empty() {
            return Ok(0);
        }
        let stripes = self.stripes.as_mut().ok_or(Error::InvalidArgument)?;
        if stripes.free_stripes() == 0 && stripes.pending_frees() > 0 {
            // Full, with frees waiting for the tier's next commit (every
            // one of a stripe no durable map points at): make them now, or
            // a full tier never gets them back while it runs.
            stripes.commit()?;
        }
        let s = stripes.write_stripe(&self.stage)?;
        // Durable before any map points at it.
        stripes.commit()?;
        let mut moved = 0u64;
        for batch in pieces.chunks(DESTAGE_EXTENTS) {
            moved += self.repoint(s, batch)?;
        }
        Ok(moved)
    }

    /// Repoints the logical blocks of `batch` at their copies in stripe
    /// `s`, in one transaction, and counts them live there; releases what
    /// they displaced. Returns the blocks repointed.
    ///
    /// A stripe's pieces are repointed in batches of [`DESTAGE_EXTENTS`]
    /// (one transaction's redo record must fit one WAL record). Between
    /// two batches both copies of the later pieces hold the same bytes, so
    /// a crash there loses nothing: the map points at one copy or the
    /// other, and the next open counts the live blocks of both stripes
    /// from the map.
    fn repoint(&mut self, s: u64, batch: &[(u64, Extent, u64)]) -> Result<u64> {
        let txn = self.map.begin()?;
        self.displaced.clear();
        let mut blocks = 0u64;
        let r = (|| {
            for &(lba, ext, off) in batch.iter() {
                let offset = u32::try_from(off).map_err(|_| Error::InvalidArgument)?;
                let moved = Extent {
                    paddr: PAddr::stripe(s, offset)?,
                    flags: ext.flags & !EXTENT_HEADED,
                    ..ext
                };
                self.map
                    .mapped_in(&txn, lba, u64::from(ext.len), &mut self.displaced)?;
                self.map.map(&txn, lba, moved)?;
                blocks += u64::from(ext.len);
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.map.abort(txn);
            return Err(e);
        }
        self.commit(txn)?;
        if let Some(n) = self.live_of(s)? {
            let add = u32::try_from(blocks).map_err(|_| Error::InvalidArgument)?;
            *n = n.checked_add(add).ok_or(Error::InvalidArgument)?;
        }
        self.release_displaced()?;
        Ok(blocks)
    }

    /// Reads the stored bytes of every piece into its place in `stage`
    /// ([`Store::read_stored`]: no cipher on the way, checksums checked).
    fn stage_pieces(&mut self, pieces: &[(u64, Extent, u64)], stage: &mut [u8]) -> Result {
        for &(_, ext, off) in pieces.iter() {
            let from = off as usize * BLOCK_SIZE;
            let buf = stage
                .get_mut(from..from + ext.len as usize * BLOCK_SIZE)
                .ok_or(Error::InvalidArgument)?;
            self.read_stored(&ext, buf)?;
        }
        Ok(())
    }
}
