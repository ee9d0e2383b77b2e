// SPDX-License-Identifier: GPL-2.0

//! Compaction: the live blocks of partly dead stripes move into a new
//! stripe, so that the emptied stripes can be freed.
//!
//! Stripes are written whole and never rewritten, so a stripe whose data
//! is partly overwritten keeps all its space until its last live block is
//! gone. Destaging leaves [`COMPACT_RESERVE`] stripes free; when it would
//! need them, the emptiest stripes ([`Victims`]) are moved the way a
//! destage moves data, the WAL is committed (the map without the victims
//! is durable) and the victims are freed. When the victims leave part of
//! the new stripe empty, the next emptiest stripe (the donor) fills it
//! with part of its live blocks: so compaction makes progress even when
//! no two stripes are half empty, as long as the tier as a whole has
//! room, which the device's size keeps true.

use super::{Store, COMPACT_RESERVE, COMPACT_TRIES};
use crate::crypt::cipher::XtsCipher;
use crate::error::{Error, Result};
use crate::io::device::BlockDevice;
use crate::io::paddr::Location;
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::Extent;
use crate::stripe::victims::Victims;

impl<D: BlockDevice, C: XtsCipher> Store<D, C> {
    /// Whether the capacity tier has a stripe for destaging beyond the
    /// [`COMPACT_RESERVE`] that compaction writes into; compacts until it
    /// has. `false`: no compaction is worth a stripe write any more.
    ///
    /// Every compaction either frees two or more stripes for the one it
    /// writes, or fills the stripe it writes (one victim freed, the rest
    /// taken from a donor), so each pass packs the tier tighter and the
    /// loop ends. It ends with room whenever the live blocks of the tier
    /// leave more than [`COMPACT_RESERVE`] stripes' worth free, which the
    /// device's size guarantees (see [`super::capacity`]).
    pub(super) fn room_to_destage(&mut self) -> Result<bool> {
        let st = self.stripes.as_ref().ok_or(Error::InvalidArgument)?;
        let passes = st.geometry().nr_stripes.saturating_add(1);
        for _ in 0..passes {
            let st = self.stripes.as_ref().ok_or(Error::InvalidArgument)?;
            if st.free_stripes() + st.pending_frees() > COMPACT_RESERVE {
                return Ok(true);
            }
            if self.compact_stripe()? == 0 {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Moves the live blocks of the emptiest stripes that fit one stripe
    /// together ([`Victims`]), topped up with part of the next emptiest
    /// (the donor), into a new stripe, and makes the map durable so that
    /// the emptied stripes are freed (at the capacity tier's next commit).
    /// Returns the stripes freed: 0 when no compaction is worth it, the
    /// store does not count live blocks, or the tier has no stripe to
    /// write. Stripes whose data cannot be read as stored are left out of
    /// this and later compactions ([`Skipped`](crate::stripe::victims::Skipped))
    /// and others are tried, [`COMPACT_TRIES`] sets in all.
    fn compact_stripe(&mut self) -> Result<u64> {
        for _ in 0..COMPACT_TRIES {
            let Some(st) = self.stripes.as_ref() else {
                return Ok(0);
            };
            if self.compact_futile
                || st.is_read_only()
                || st.free_stripes() + st.pending_frees() == 0
            {
                return Ok(0);
            }
            let cap = st.geometry().data_blocks();
            let victims = Victims::choose(&self.live, cap, self.compact_skip.ids());
            if !victims.worth_it() {
                self.compact_futile = true;
                return Ok(0);
            }
            let mut pieces = KVec::new();
            self.gather_in(&victims, cap, &mut pieces)?;
            if self.fill_stage(&pieces).is_err() {
                // Some of their data cannot be read as stored (more lost
                // than parity rebuilds, or an extent checksum that does
                // not match): leave these stripes where they are, for
                // reads to report and scrub to repair, and try others.
                self.stats.compaction_errors += 1;
                for s in victims.ids().chain(victims.donor()) {
                    self.compact_skip.add(s);
                }
                continue;
            }
            let moved = self.write_stage(&pieces)?;
            if moved == 0 {
                return Ok(0);
            }
            // The map without the victims must be durable before they are
            // freed, as for any stripe that lost its last live block.
            let (vol, dev) = self.map.volume_and_device();
            vol.commit(dev)?;
            let before = self.stats.stripes_reclaimed;
            self.free_unreferenced();
            self.stats.compacted_stripes += 1;
            self.stats.compacted_blocks += moved;
            return Ok(self.stats.stripes_reclaimed - before);
        }
        Ok(0)
    }

    /// The pieces of the map that lie in one of `victims`, all of them,
    /// then pieces of the donor until `cap` blocks are taken, as
    /// [`Store::gather`] gives them. Room for the victims' blocks is kept
    /// whatever order the pieces come in, so that every victim is emptied.
    fn gather_in(
        &mut self,
        victims: &Victims,
        cap: u64,
        out: &mut KVec<(u64, Extent, u64)>,
    ) -> Result {
        let txn = self.map.begin()?;
        let r = (|| {
            let whole = victims.live();
            let mut budget = cap.saturating_sub(whole);
            let (mut at, mut total, mut taken) = (0u64, 0u64, 0u64);
            while at < self.nr_lbas && (taken < whole || budget > 0) {
                let piece = self.map.lookup(&txn, at, self.nr_lbas - at)?;
                let len = piece.len.clamp(1, self.nr_lbas - at);
                if let Some(ext) = piece.value {
                    if let Location::Stripe { stripe, .. } = ext.paddr.location() {
                        let ext = match u32::try_from(len) {
                            Ok(l) if l < ext.len => ext.slice(0, l)?,
                            _ => ext,
                        };
                        let n = u64::from(ext.len);
                        if victims.contains(stripe) && total + n <= cap {
                            out.push((at, ext, total), GFP_KERNEL)?;
                            total += n;
                            taken += n;
                        } else if victims.donor() == Some(stripe) && budget > 0 {
                            let n = n.min(budget);
                            let part = u32::try_from(n).map_err(|_| Error::InvalidArgument)?;
                            let ext = if part < ext.len {
                                ext.slice(0, part)?
                            } else {
                                ext
                            };
                            out.push((at, ext, total), GFP_KERNEL)?;
                            total += n;
                            budget -= n;
                        }
                    }
                }
                at += len;
            }
            Ok(())
        })();
        self.map.abort(txn);
        r
    }
}
