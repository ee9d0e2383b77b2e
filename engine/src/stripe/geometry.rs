// SPDX-License-Identifier: GPL-2.0

//! Where the chunks of an erasure-coded stripe live (capacity tier).
//!
//! A store has `n` members (capacity devices). Each member holds, from
//! `area_start`, the store's metadata (`meta_blocks`: two store headers and
//! two copies of the stripe allocation map) and then `slots_per_member`
//! *slots* of `chunk_blocks + 1` blocks: one chunk header block, then the
//! chunk's data.
//!
//! Stripe `s` has `w = k + m` chunks: data chunks `0..k`, parity chunks
//! `k..w`. Its chunks fill the positions `s·w .. s·w + w` of the sequence
//! that runs across the members row by row (position `p` is slot `p / n`
//! of member `p mod n`), so the `w` chunks of a stripe are on `w` different
//! members (`w ≤ n`), and with `n > w` consecutive stripes spread over all
//! members. Inside those `w` positions (*lanes*) chunk `j` takes lane
//! `(j − s) mod w`: the parity rotates one lane left per stripe and the
//! data starts right after it, as in RAID-5's left-symmetric layout.
//! Everything is a pure function of `s` and the geometry.

use crate::ec::limits::{MAX_DATA_SHARDS, MAX_PARITY_SHARDS};
use crate::error::{Error, Result};
use crate::io::device::BLOCK_SIZE;
use crate::io::paddr::{MAX_STRIPE, STRIPE_DATA_BLOCKS};
use crate::space::geometry::{Geometry, MAX_BLOCKS};

/// Most members a store may have (the store header keeps a state byte each).
pub const MAX_MEMBERS: usize = 64;
/// Store header copies at the start of every member's area.
pub const HEADER_COPIES: u64 = 2;
/// Largest chunk, in blocks (16 MiB), so one chunk buffer stays reasonable.
pub const MAX_CHUNK_BLOCKS: u32 = 4096;

/// The fixed layout of a stripe store, chosen at format time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StripeGeometry {
    /// Data chunks per stripe.
    pub k: u32,
    /// Parity chunks per stripe.
    pub m: u32,
    /// Members (capacity devices), at least `k + m`.
    pub nr_members: u32,
    /// Data blocks per chunk.
    pub chunk_blocks: u32,
    /// First block of the store's area on every member.
    pub area_start: u64,
    /// Metadata blocks at the start of the area (headers, two map copies).
    pub meta_blocks: u64,
    /// Slots per member.
    pub slots_per_member: u64,
    /// Stripe ids `0..nr_stripes`.
    pub nr_stripes: u64,
}

impl StripeGeometry {
    /// The geometry with `slots` slots per member; fails if the arguments
    /// are out of range or leave no stripe.
    pub fn with_slots(
        k: u32,
        m: u32,
        nr_members: u32,
        chunk_blocks: u32,
        area_start: u64,
        slots: u64,
    ) -> Result<Self> {
        let w = k.checked_add(m).ok_or(Error::InvalidArgument)?;
        if k == 0
            || m == 0
            || k as usize > MAX_DATA_SHARDS
            || m as usize > MAX_PARITY_SHARDS
            || w > nr_members
            || nr_members as usize > MAX_MEMBERS
            || chunk_blocks == 0
            || chunk_blocks > MAX_CHUNK_BLOCKS
            || u64::from(k) * u64::from(chunk_blocks) > u64::from(STRIPE_DATA_BLOCKS)
        {
            return Err(Error::InvalidArgument);
        }
        let positions = slots
            .checked_mul(u64::from(nr_members))
            .ok_or(Error::InvalidArgument)?;
        let nr_stripes = (positions / u64::from(w))
            .min(MAX_BLOCKS)
            .min(MAX_STRIPE + 1);
        if nr_stripes == 0 {
            return Err(Error::InvalidArgument);
        }
        let meta_blocks = HEADER_COPIES + 2 * Geometry::new(nr_stripes)?.copy_blocks();
        // Every block number derived from the geometry fits a u64.
        slots
            .checked_mul(u64::from(chunk_blocks) + 1)
            .and_then(|b| b.checked_add(meta_blocks))
            .and_then(|b| b.checked_add(area_start))
            .ok_or(Error::InvalidArgument)?;
        Ok(Self {
            k,
            m,
            nr_members,
            chunk_blocks,
            area_start,
            meta_blocks,
            slots_per_member: slots,
            nr_stripes,
        })
    }

    /// The largest geometry that fits `area_blocks` blocks per member from
    /// `area_start`.
    pub fn new(
        k: u32,
        m: u32,
        nr_members: u32,
        chunk_blocks: u32,
        area_start: u64,
        area_blocks: u64,
    ) -> Result<Self> {
        let slot = u64::from(chunk_blocks) + 1;
        let mut slots = area_blocks.saturating_sub(HEADER_COPIES) / slot;
        // The map shrinks with the slot count, so this converges quickly.
        loop {
            let g = Self::with_slots(k, m, nr_members, chunk_blocks, area_start, slots)?;
            let fit = area_blocks
                .checked_sub(g.meta_blocks)
                .ok_or(Error::InvalidArgument)?
                / slot;
            if fit >= slots {
                return Ok(g);
            }
            slots = fit;
        }
    }

    /// Chunks per stripe, `k + m`.
    pub fn width(&self) -> usize {
        (self.k + self.m) as usize
    }

    /// Blocks of one slot (header + data).
    pub fn slot_blocks(&self) -> u64 {
        u64::from(self.chunk_blocks) + 1
    }

    /// Bytes of one chunk's data.
    pub fn chunk_bytes(&self) -> usize {
        self.chunk_blocks as usize * BLOCK_SIZE
    }

    /// Bytes of one slot.
    pub fn slot_bytes(&self) -> usize {
        self.chunk_bytes() + BLOCK_SIZE
    }

    /// Data blocks of one stripe.
    pub fn data_blocks(&self) -> u64 {
        u64::from(self.k) * u64::from(self.chunk_blocks)
    }

    /// Bytes of one stripe's data.
    pub fn data_bytes(&self) -> usize {
        self.k as usize * self.chunk_bytes()
    }

    /// Blocks each member needs from block 0 (area end).
    pub fn member_blocks(&self) -> u64 {
        self.area_start + self.meta_blocks + self.slots_per_member * self.slot_blocks()
    }

    /// Lane of chunk `j` in stripe `s`.
    fn lane(&self, s: u64, j: usize) -> usize {
        let w = self.width();
        (j + w - (s % w as u64) as usize) % w
    }

    /// Member and first block (the header block) of chunk `j` of stripe `s`;
    /// `None` if either is out of range.
    pub fn chunk_location(&self, s: u64, j: usize) -> Option<(usize, u64)> {
        if s >= self.nr_stripes || j >= self.width() {
            return None;
        }
        let n = u64::from(self.nr_members);
        let p = s * self.width() as u64 + self.lane(s, j) as u64;
        let slot = p / n;
        let block = self.area_start + self.meta_blocks + slot * self.slot_blocks();
        Some(((p % n) as usize, block))
    }

    /// Which chunk of stripe `s` lives on `member`, if any.
    pub fn chunk_on(&self, s: u64, member: usize) -> Option<usize> {
        let n = self.nr_members as usize;
        if s >= self.nr_stripes || member >= n {
            return None;
        }
        let w = self.width();
        let first = ((s * w as u64) % n as u64) as usize;
        let lane = (member + n - first) % n;
        (lane < w).then(|| (lane + (s % w as u64) as usize) % w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stripe_uses_distinct_members_and_every_slot_once() {
        for (k, m, n) in [(2, 1, 3), (4, 2, 6), (4, 2, 9), (3, 1, 5), (8, 3, 11)] {
            let g = StripeGeometry::new(k, m, n, 4, 100, 2000).unwrap();
            assert!(g.member_blocks() <= 2100, "{g:?}");
            let mut used = alloc::collections::BTreeSet::new();
            for s in 0..g.nr_stripes {
                let mut members = alloc::collections::BTreeSet::new();
                for j in 0..g.width() {
                    let (mem, block) = g.chunk_location(s, j).unwrap();
                    assert!(members.insert(mem));
                    assert!(used.insert((mem, block)));
                    assert!(block >= 100 + g.meta_blocks);
                    assert!(block + g.slot_blocks() <= g.member_blocks());
                    assert_eq!(g.chunk_on(s, mem), Some(j));
                }
                let others = (0..n as usize).filter(|&x| !members.contains(&x));
                for x in others {
                    assert_eq!(g.chunk_on(s, x), None);
                }
            }
            assert_eq!(g.chunk_location(g.nr_stripes, 0), None);
        }
    }

    #[test]
    fn parity_rotates_over_every_lane() {
        let g = StripeGeometry::new(4, 2, 6, 1, 0, 1000).unwrap();
        let mut seen = [0u32; 6];
        for s in 0..6 {
            let (mem, _) = g.chunk_location(s, 4).unwrap();
            seen[mem] += 1;
        }
        assert_eq!(seen, [1; 6]);
        // Left-symmetric: the first data chunk follows the last parity chunk.
        for s in 0..12 {
            let (p, _) = g.chunk_location(s, 5).unwrap();
            let (d, _) = g.chunk_location(s, 0).unwrap();
            assert_eq!(d, (p + 1) % 6);
        }
    }

    #[test]
    fn bad_geometries_are_refused() {
        assert!(StripeGeometry::new(0, 1, 3, 4, 0, 1000).is_err());
        assert!(StripeGeometry::new(2, 0, 3, 4, 0, 1000).is_err());
        assert!(StripeGeometry::new(4, 2, 5, 4, 0, 1000).is_err());
        assert!(StripeGeometry::new(2, 1, 3, 0, 0, 1000).is_err());
        assert!(StripeGeometry::new(2, 1, 3, 4, 0, 3).is_err());
        assert!(StripeGeometry::new(25, 1, 30, 1, 0, 1000).is_err());
        assert!(StripeGeometry::new(2, 1, 65, 1, 0, 1000).is_err());
        assert!(StripeGeometry::new(2, 1, 3, 1 << 20, 0, u64::MAX).is_err());
        // Fields read from a device that would overflow a block number.
        assert!(StripeGeometry::with_slots(2, 1, 3, 4096, 0, u64::MAX / 3).is_err());
        assert!(StripeGeometry::with_slots(2, 1, 3, 1, u64::MAX - 10, 100).is_err());
        let g = StripeGeometry::with_slots(2, 1, 3, 1, 0, u64::MAX / 8).unwrap();
        assert_eq!(g.nr_stripes, 1 << 32);
        assert!(g.chunk_location(g.nr_stripes - 1, 2).is_some());
    }
}
