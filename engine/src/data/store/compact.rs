// SPDX-License-Identifier: GPL-2.0

//! Compaction: the live blocks of partly dead stripes move into a new
//! stripe, so that the emptied stripes can be freed.
//!
//! Stripes are written whole and never rewritten, so a stripe whose data
//! is partly overwritten keeps all its space until its last live block is
//! gone. Destaging leaves [`COMPACT_RESERVE`] stripes free; when it would
//! need them, the emptiest stripes ([`Victims`]) are moved the way a
//! destage moves data, the WAL is committed (the map without the victims
//! is durable) and the victims are freed.

use super::{Store, COMPACT_RESERVE, COMPACT_TRIES, DESTAGE_EXTENTS};
use crate::crypt::cipher::XtsCipher;
use crate::error::{Error, Result};
use crate::io::device::BlockDevice;
use crate::io::paddr::Location;
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::Extent;
use crate::stripe::victims::Victims;

impl<D: BlockDevice, C: XtsCipher> Store<D, C> {
    /// Whether the capacity tier has a stripe for destaging beyond the
    /// [`COMPACT_RESERVE`] that compaction writes into; compacts when it
    /// has not. `false`: no two stripes' live blocks fit one stripe.
    pub(super) fn room_to_destage(&mut self) -> Result<bool> {
        for _ in 0..COMPACT_TRIES {
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

    /// Moves the live blocks of the emptiest stripes, two or more whose
    /// live blocks fit one stripe together ([`Victims`]), into a new
    /// stripe, and makes the map durable so that the emptied stripes are
    /// freed (at the capacity tier's next commit). Returns the stripes
    /// freed: 0 when no two fit, the store does not count live blocks, or
    /// the tier has no stripe to write. Stripes whose data cannot be read
    /// as stored are left out of this and later compactions ([`Skipped`])
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
            // Every piece of the victims fits one transaction.
            let cap = st.geometry().data_blocks().min(DESTAGE_EXTENTS as u64);
            let victims = Victims::choose(&self.live, cap, self.compact_skip.ids());
            if victims.len() < 2 {
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
                for s in victims.ids() {
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

    /// The pieces of the map that lie in one of `victims`, at most `cap`
    /// blocks of them, as [`Store::gather`] gives them.
    fn gather_in(
        &mut self,
        victims: &Victims,
        cap: u64,
        out: &mut KVec<(u64, Extent, u64)>,
    ) -> Result {
        let txn = self.map.begin()?;
        let r = (|| {
            let (mut at, mut total) = (0u64, 0u64);
            while at < self.nr_lbas && total < victims.live() && out.len() < DESTAGE_EXTENTS {
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
