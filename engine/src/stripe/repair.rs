// SPDX-License-Identifier: GPL-2.0

//! Rebuild and scrub of a [`StripeStore`], in bounded steps the caller paces.
//!
//! # Rebuild
//!
//! After [`StripeStore::replace_member`], [`StripeStore::rebuild_step`]
//! walks the stripe ids from the rebuild cursor: each allocated stripe with
//! a chunk on the replacement is read from the other members, the chunk is
//! reconstructed and written with the stripe's current header. After each
//! step the replacement is flushed, then the cursor is persisted in the
//! store header, so a crash resumes after the last completed step. Chunks
//! below the cursor are trusted; above it they are never read. When the
//! cursor reaches the end the member is back in service.
//!
//! # Scrub
//!
//! [`StripeStore::scrub_step`] reads every chunk of each allocated stripe,
//! checks headers and data CRCs, reconstructs bad or unreadable chunks and
//! checks the parity (`ReedSolomon::verify`) over the whole stripe. Bad
//! chunks on members in service are rewritten in place with the stripe's
//! current content (derived from the other chunks: not a read-modify-write
//! of live data). A stripe whose chunks all verify but whose parity does
//! not is repaired only if exactly one chunk, rebuilt from the others,
//! makes it consistent; otherwise it is reported as unrepairable.

use crate::ec::limits::MAX_TOTAL_SHARDS;
use crate::error::{Error, Result};
use crate::io::device::{BlockDevice, BLOCK_SIZE};
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::stripe::member::MemberState;
use crate::stripe::store::{ec_error, shards, Chunk, StripeStore};

/// Counts of one scrub pass.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct ScrubReport {
    /// Allocated stripes checked.
    pub stripes_checked: u64,
    /// Chunks that did not verify (header, data CRC, older write).
    pub checksum_errors: u64,
    /// Chunks whose read failed.
    pub read_errors: u64,
    /// Stripes whose parity disagreed with chunks that all verified.
    pub parity_mismatches: u64,
    /// Chunks rewritten.
    pub repaired: u64,
    /// Stripes that could not be repaired (fewer than `k` good chunks, or
    /// a parity mismatch that no single chunk explains).
    pub unrepairable: u64,
    /// The first [`LISTED`] of them, by stripe id (`unrepairable` counts all).
    pub unrepairable_ids: [u64; LISTED],
}

/// Unrepairable stripes a [`ScrubReport`] names.
pub const LISTED: usize = 8;

impl ScrubReport {
    /// The unrepairable stripes named in the report.
    pub fn listed(&self) -> &[u64] {
        let n = (self.unrepairable as usize).min(LISTED);
        &self.unrepairable_ids[..n]
    }

    fn unrepairable(&mut self, s: u64) {
        if let Some(slot) = self.unrepairable_ids.get_mut(self.unrepairable as usize) {
            *slot = s;
        }
        self.unrepairable += 1;
    }
}

/// Where a scrub pass is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ScrubProgress {
    /// Next stripe id to check.
    pub cursor: u64,
    /// Stripe ids in all.
    pub total: u64,
    /// Whether the pass is complete (the next step starts a new one).
    pub done: bool,
}

/// Where a rebuild is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Member being rebuilt, `None` when no rebuild is running.
    pub member: Option<usize>,
    /// Stripe ids done (the cursor).
    pub done: u64,
    /// Stripe ids in all.
    pub total: u64,
    /// Chunks rebuilt since the store was opened.
    pub rebuilt: u64,
    /// Stripes that could not be rebuilt (fewer than `k` good chunks).
    pub unrecoverable: u64,
}

/// Scrub and rebuild bookkeeping kept in the store.
#[derive(Default)]
pub(crate) struct RepairState {
    scrub_cursor: u64,
    scrub: ScrubReport,
    rebuilt: u64,
    unrecoverable: u64,
}

impl<D: BlockDevice> StripeStore<D> {
    /// Where the scrub is: (the next stripe id it checks, stripe ids in
    /// all). The next is the total once a pass has ended; the next step
    /// then starts another from 0.
    pub fn scrub_position(&self) -> (u64, u64) {
        (self.repair.scrub_cursor, self.geom.nr_stripes)
    }

    /// The rebuild's progress.
    pub fn rebuild_progress(&self) -> RebuildProgress {
        RebuildProgress {
            member: self.rebuild.map(|(r, _)| r),
            done: self.rebuild.map_or(self.geom.nr_stripes, |(_, c)| c),
            total: self.geom.nr_stripes,
            rebuilt: self.repair.rebuilt,
            unrecoverable: self.repair.unrecoverable,
        }
    }

    /// Rebuilds the next `max_stripes` stripe ids (at least one) on the
    /// member being replaced; see the module docs. A write or flush error
    /// on the replacement fails it and ends the rebuild with `Error::Io`.
    pub fn rebuild_step(&mut self, max_stripes: u64) -> Result<RebuildProgress> {
        let Some((r, cursor)) = self.rebuild else {
            return Ok(self.rebuild_progress());
        };
        if self.failed {
            return Err(Error::ReadOnly);
        }
        let end = cursor
            .saturating_add(max_stripes.max(1))
            .min(self.geom.nr_stripes);
        let mut scratch = core::mem::take(&mut self.scratch);
        let res = self.rebuild_range(r, cursor, end, &mut scratch);
        self.scratch = scratch;
        let res = res.and_then(|()| self.members[r].flush());
        if self.members[r].state() != MemberState::Rebuilding {
            self.rebuild = None;
            self.write_headers()?;
            return Err(Error::Io);
        }
        res?;
        if end == self.geom.nr_stripes {
            self.members[r].stats.state = MemberState::Ok;
            self.rebuild = None;
        } else {
            self.rebuild = Some((r, end));
        }
        self.write_headers()?;
        Ok(self.rebuild_progress())
    }

    fn rebuild_range(&mut self, r: usize, from: u64, to: u64, scratch: &mut [u8]) -> Result {
        let (sb, w) = (self.geom.slot_bytes(), self.geom.width());
        for s in from..to {
            let Some(j) = self.geom.chunk_on(s, r) else {
                continue;
            };
            if !self.is_allocated(s)? {
                continue;
            }
            let mut st = [Chunk::Unread; MAX_TOTAL_SHARDS];
            let seq = match self.load_rest(s, scratch, &mut st) {
                Ok(q) => q,
                Err(Error::Corrupt { .. }) => {
                    self.repair.unrecoverable += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let present = self.present(&st, seq);
            let mut sh = shards(scratch, &self.geom);
            self.codec
                .reconstruct_with(self.gf, &mut sh[..w], &present[..w])
                .map_err(ec_error)?;
            self.write_chunk(s, j, seq, &mut scratch[j * sb..(j + 1) * sb])?;
            if self.members[r].state() != MemberState::Rebuilding {
                return Err(Error::Io);
            }
            self.members[r].stats.repairs += 1;
            self.repair.rebuilt += 1;
        }
        Ok(())
    }

    /// Counts of the current (or last) scrub pass.
    pub fn scrub_report(&self) -> ScrubReport {
        self.repair.scrub
    }

    /// Scrubs the next `max_stripes` stripe ids (at least one); a step
    /// after a complete pass starts a new pass with fresh counts.
    pub fn scrub_step(&mut self, max_stripes: u64) -> Result<ScrubProgress> {
        let total = self.geom.nr_stripes;
        if self.repair.scrub_cursor >= total {
            self.repair.scrub_cursor = 0;
            self.repair.scrub = ScrubReport::default();
        }
        let from = self.repair.scrub_cursor;
        let end = from.saturating_add(max_stripes.max(1)).min(total);
        let mut scratch = core::mem::take(&mut self.scratch);
        let mut res = Ok(());
        for s in from..end {
            res = match self.is_allocated(s) {
                Ok(true) => self.scrub_stripe(s, &mut scratch),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            };
            if res.is_err() {
                break;
            }
        }
        self.scratch = scratch;
        res?;
        self.repair.scrub_cursor = end;
        Ok(ScrubProgress {
            cursor: end,
            total,
            done: end == total,
        })
    }

    fn scrub_stripe(&mut self, s: u64, scratch: &mut [u8]) -> Result {
        let (w, k) = (self.geom.width(), self.geom.k as usize);
        self.repair.scrub.stripes_checked += 1;
        let mut st = [Chunk::Unread; MAX_TOTAL_SHARDS];
        let seq = match self.load_rest(s, scratch, &mut st) {
            Ok(q) => q,
            Err(Error::Corrupt { .. }) => {
                self.count_errors(&st);
                self.repair.scrub.unrepairable(s);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.count_errors(&st);
        let mut present = self.present(&st, seq);
        let good = present[..w].iter().filter(|&&p| p).count();
        if good == w {
            let sh = shards(scratch, &self.geom);
            if self.codec.verify(&sh[..w]).map_err(ec_error)? {
                return Ok(());
            }
            self.repair.scrub.parity_mismatches += 1;
            return match self.locate_bad_chunk(scratch, &mut present)? {
                Some(j) => self.repair_chunks(s, seq, scratch, &[j]),
                None => {
                    self.repair.scrub.unrepairable(s);
                    Ok(())
                }
            };
        }
        let mut sh = shards(scratch, &self.geom);
        self.codec
            .reconstruct_with(self.gf, &mut sh[..w], &present[..w])
            .map_err(ec_error)?;
        if good > k && !self.codec.verify(&sh[..w]).map_err(ec_error)? {
            self.repair.scrub.parity_mismatches += 1;
            self.repair.scrub.unrepairable(s);
            return Ok(());
        }
        let mut targets = [0usize; MAX_TOTAL_SHARDS];
        let mut n = 0;
        for (j, c) in st[..w].iter().enumerate() {
            if matches!(c, Chunk::Bad | Chunk::ReadError) {
                targets[n] = j;
                n += 1;
            }
        }
        self.repair_chunks(s, seq, scratch, &targets[..n])
    }

    fn count_errors(&mut self, st: &[Chunk; MAX_TOTAL_SHARDS]) {
        for c in &st[..self.geom.width()] {
            match c {
                Chunk::Bad => self.repair.scrub.checksum_errors += 1,
                Chunk::ReadError => self.repair.scrub.read_errors += 1,
                _ => {}
            }
        }
    }

    /// With every chunk good but the parity inconsistent: the one chunk
    /// that, rebuilt from the others, makes the stripe consistent, left
    /// rebuilt in `scratch`; `None` if no chunk or several do.
    fn locate_bad_chunk(
        &mut self,
        scratch: &mut [u8],
        present: &mut [bool; MAX_TOTAL_SHARDS],
    ) -> Result<Option<usize>> {
        let (cb, sb, w) = (
            self.geom.chunk_bytes(),
            self.geom.slot_bytes(),
            self.geom.width(),
        );
        let mut saved = KVec::from_elem(0u8, cb, GFP_KERNEL)?;
        let mut found = None;
        for c in 0..w {
            let data = c * sb + BLOCK_SIZE..(c + 1) * sb;
            saved.copy_from_slice(&scratch[data.clone()]);
            present[c] = false;
            let mut sh = shards(scratch, &self.geom);
            self.codec
                .reconstruct_with(self.gf, &mut sh[..w], &present[..w])
                .map_err(ec_error)?;
            let ok = self.codec.verify(&sh[..w]).map_err(ec_error)?;
            present[c] = true;
            if ok && found.is_some() {
                scratch[data].copy_from_slice(&saved);
                return Ok(None);
            }
            if ok {
                found = Some((c, KVec::from_elem(0u8, 0, GFP_KERNEL)?));
                if let Some((_, rebuilt)) = &mut found {
                    rebuilt.extend_from_slice(&scratch[data.clone()], GFP_KERNEL)?;
                }
            }
            scratch[data].copy_from_slice(&saved);
        }
        Ok(found.map(|(c, rebuilt)| {
            scratch[c * sb + BLOCK_SIZE..(c + 1) * sb].copy_from_slice(&rebuilt);
            c
        }))
    }

    /// Rewrites chunks `targets` of stripe `s` (write `seq`) from `scratch`
    /// on members in service that may hold them; counts what was written.
    fn repair_chunks(&mut self, s: u64, seq: u64, scratch: &mut [u8], targets: &[usize]) -> Result {
        let sb = self.geom.slot_bytes();
        if self.is_read_only() {
            if !targets.is_empty() {
                self.repair.scrub.unrepairable(s);
            }
            return Ok(());
        }
        for &j in targets {
            let Some((i, _)) = self.geom.chunk_location(s, j) else {
                continue;
            };
            if !self.readable(i, s) {
                continue;
            }
            self.write_chunk(s, j, seq, &mut scratch[j * sb..(j + 1) * sb])?;
            if self.members[i].in_service() {
                self.members[i].stats.repairs += 1;
                self.repair.scrub.repaired += 1;
            }
        }
        Ok(())
    }
}
