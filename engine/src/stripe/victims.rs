// SPDX-License-Identifier: GPL-2.0

//! Which stripes a compaction empties.
//!
//! Stripes are written whole and never rewritten in place, so a stripe
//! whose data is partly overwritten keeps all of its space until its last
//! live block is gone. When the capacity tier runs short, the store moves
//! the live blocks of the emptiest stripes into one new stripe; the
//! emptied stripes are then freed like any other stripe nothing points at.
//! That gains space only when two or more stripes' live blocks fit one
//! stripe together: [`Victims::choose`] picks the emptiest stripes, as many
//! as fit, and says so when fewer than two do.

/// Most stripes one compaction empties.
pub const MAX_VICTIMS: usize = 16;

/// Stripes to empty into one new stripe, by id, with their live blocks.
#[derive(Clone, Debug, Default)]
pub struct Victims {
    /// `(live blocks, stripe id)`, fewest live blocks first.
    best: [(u32, u64); MAX_VICTIMS],
    /// Entries of `best` in use.
    n: usize,
    /// Live blocks of all of them.
    live: u64,
    /// The emptiest stripe left out because it does not fit whole:
    /// `(live blocks, stripe id)`. The caller may fill the rest of the
    /// new stripe with part of it.
    donor: Option<(u32, u64)>,
}

impl Victims {
    /// Of the stripes counted in `live` (`live[s]`: live blocks of stripe
    /// `s`), the emptiest that hold any live block and whose live blocks
    /// fit a stripe of `cap` blocks together. A stripe with no live block
    /// is left out (it is freed without a compaction), and so are a full
    /// one and those in `skip`.
    pub fn choose(live: &[u32], cap: u64, skip: &[u64]) -> Self {
        let mut v = Self::default();
        for (s, &c) in (0u64..).zip(live) {
            if c == 0 || u64::from(c) >= cap || skip.contains(&s) {
                continue;
            }
            v.offer(c, s);
        }
        // The emptiest first, as long as they fit together.
        let mut taken = 0;
        let mut sum = 0u64;
        for &(c, _) in v.best.iter().take(v.n) {
            if sum + u64::from(c) > cap {
                break;
            }
            sum += u64::from(c);
            taken += 1;
        }
        v.donor = v.best.get(taken).copied().filter(|_| taken < v.n);
        v.n = taken;
        v.live = sum;
        v
    }

    /// The stripe whose live blocks may fill the rest of the new stripe
    /// (the emptiest that did not fit whole), if there is one.
    pub fn donor(&self) -> Option<u64> {
        self.donor.map(|(_, s)| s)
    }

    /// Whether moving the victims is worth a stripe write: two or more of
    /// them are freed, or one is and a donor fills the new stripe (the
    /// donor's live blocks shrink by what the victim left free, so that a
    /// later compaction frees it whole).
    pub fn worth_it(&self) -> bool {
        self.n >= 2 || (self.n == 1 && self.donor.is_some())
    }

    /// Keeps `(c, s)` if it is among the [`MAX_VICTIMS`] emptiest so far.
    fn offer(&mut self, c: u32, s: u64) {
        if self.n == MAX_VICTIMS && self.best.last().is_some_and(|&(worst, _)| worst <= c) {
            return;
        }
        let at = self.best[..self.n].partition_point(|&(b, _)| b <= c);
        let end = self.n.min(MAX_VICTIMS - 1);
        self.best.copy_within(at..end, at + 1);
        if let Some(slot) = self.best.get_mut(at) {
            *slot = (c, s);
        }
        self.n = (self.n + 1).min(MAX_VICTIMS);
    }

    /// How many stripes were chosen.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether stripe `s` is one of them.
    pub fn contains(&self, s: u64) -> bool {
        self.best.iter().take(self.n).any(|&(_, id)| id == s)
    }

    /// Their live blocks, all together.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// Their ids, emptiest first.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.best.iter().take(self.n).map(|&(_, s)| s)
    }
}

/// Stripes to leave out of compactions: the last [`MAX_VICTIMS`] whose
/// data a compaction could not read.
#[derive(Clone, Debug, Default)]
pub struct Skipped {
    ids: [u64; MAX_VICTIMS],
    /// Entries in use.
    n: usize,
    /// Where the next one goes once all are in use.
    next: usize,
}

impl Skipped {
    /// Adds stripe `s`, forgetting the oldest when full.
    pub fn add(&mut self, s: u64) {
        if self.ids().contains(&s) {
            return;
        }
        if self.n < MAX_VICTIMS {
            self.n += 1;
        }
        if let Some(slot) = self.ids.get_mut(self.next) {
            *slot = s;
        }
        self.next = (self.next + 1) % MAX_VICTIMS;
    }

    /// The stripes left out.
    pub fn ids(&self) -> &[u64] {
        self.ids.get(..self.n).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_emptiest_that_fit_together_are_chosen() {
        let live = [5, 0, 1, 8, 3, 2, 7, 1];
        let v = Victims::choose(&live, 8, &[]);
        // 1 + 1 + 2 + 3 = 7 fits; adding 5 would not. Full (8) and empty
        // (0) stripes are never chosen.
        assert_eq!(v.ids().collect::<Vec<_>>(), [2, 7, 5, 4]);
        assert_eq!(v.live(), 7);
        assert!(v.contains(5) && !v.contains(1) && !v.contains(3));
    }

    #[test]
    fn the_emptiest_that_does_not_fit_whole_is_the_donor() {
        // 6 and 7 do not fit 8 together: 6 is the victim, 7 the donor.
        let v = Victims::choose(&[6, 7, 8], 8, &[]);
        assert_eq!(v.ids().collect::<Vec<_>>(), [0]);
        assert_eq!(v.donor(), Some(1));
        assert!(v.worth_it());
        // Two that fit: no donor needed, and still worth it.
        let v = Victims::choose(&[3, 8, 5], 8, &[]);
        assert_eq!((v.len(), v.donor()), (2, None));
        assert!(v.worth_it());
        // A lone partly live stripe has nothing to pack with.
        let v = Victims::choose(&[8, 5, 8], 8, &[]);
        assert_eq!((v.len(), v.donor()), (1, None));
        assert!(!v.worth_it());
    }

    #[test]
    fn one_stripe_alone_is_still_reported_so_the_caller_can_refuse() {
        let v = Victims::choose(&[6, 7, 8], 8, &[]);
        assert_eq!(v.len(), 1);
        assert!(Victims::choose(&[8, 0, 8], 8, &[]).is_empty());
        assert!(Victims::choose(&[], 8, &[]).is_empty());
    }

    #[test]
    fn only_the_emptiest_sixteen_are_kept_whatever_the_order() {
        // Counts 1..=40 in a scrambled order; cap large enough for all.
        let live: Vec<u32> = (0..40u32).map(|i| (i * 17) % 40 + 1).collect();
        let v = Victims::choose(&live, 10_000, &[]);
        let mut got: Vec<u32> = v.ids().map(|s| live[s as usize]).collect();
        assert_eq!(v.len(), MAX_VICTIMS);
        let sorted = got.clone();
        got.sort_unstable();
        assert_eq!(got, sorted, "emptiest first");
        assert_eq!(got, (1..=16).collect::<Vec<_>>());
        assert_eq!(v.live(), (1..=16u64).sum::<u64>());
    }

    #[test]
    fn skipped_stripes_are_never_chosen_and_the_oldest_is_forgotten() {
        let live = [1, 2, 3, 4];
        let mut skip = Skipped::default();
        skip.add(0);
        skip.add(0);
        assert_eq!(skip.ids(), [0]);
        let v = Victims::choose(&live, 8, skip.ids());
        assert_eq!(v.ids().collect::<Vec<_>>(), [1, 2]);
        for s in 100..100 + MAX_VICTIMS as u64 {
            skip.add(s);
        }
        assert_eq!(skip.ids().len(), MAX_VICTIMS);
        assert!(!skip.ids().contains(&0), "the oldest is forgotten");
    }
}
