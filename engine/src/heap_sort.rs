// SPDX-License-Identifier: GPL-2.0

//! Sorting in place in a fixed, small amount of stack: a heap sort.
//!
//! `core`'s `sort_unstable` recurses, only O(log n) deep but with large
//! frames: in the kernel build its quicksort frames are about 800 bytes
//! and a small-sort frame up to 2.3 KiB, and a sort of a few thousand
//! deferred frees, nested under a checkpoint on the 16 KiB stack of a
//! kworker, overflowed it (`make demo`, powering a volume off after a
//! large destage). The engine sorts with these loops
//! instead: O(n log n) comparisons, a few words of stack whatever the
//! length, not stable (no caller needs it).

/// Sorts `v` so that no element is `less` than the one before it.
pub fn sort_by<T, F: FnMut(&T, &T) -> bool>(v: &mut [T], mut less: F) {
    let n = v.len();
    // A max-heap over all of `v`, then the largest moved to the end, one
    // at a time.
    for root in (0..n / 2).rev() {
        sift_down(v, root, n, &mut less);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end, &mut less);
    }
}

/// [`sort_by`] in the order of `T`.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, |a, b| a < b);
}

/// [`sort_by`] in the order of `key`.
pub fn sort_by_key<T, K: Ord, F: FnMut(&T) -> K>(v: &mut [T], mut key: F) {
    sort_by(v, |a, b| key(a) < key(b));
}

/// Restores the heap order below `root` within `v[..end]`.
fn sift_down<T, F: FnMut(&T, &T) -> bool>(v: &mut [T], mut root: usize, end: usize, less: &mut F) {
    let end = end.min(v.len());
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && less(&v[child], &v[child + 1]) {
            child += 1;
        }
        if !less(&v[root], &v[child]) {
            return;
        }
        v.swap(root, child);
        root = child;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn sorts_like_the_standard_sort() {
        let mut seed = 0x1234_5678_9abc_def1;
        for len in (0..40).chain([255, 256, 1000, 4097]) {
            for range in [3u64, 1000, u64::MAX] {
                let v: Vec<(u64, u32)> = (0..len)
                    .map(|_| (rng(&mut seed) % range, (rng(&mut seed) % 7) as u32))
                    .collect();
                let mut ours = v.clone();
                sort(&mut ours);
                let mut want = v.clone();
                want.sort_unstable();
                assert_eq!(ours, want, "len {len} range {range}");
                let mut by_key = v.clone();
                sort_by_key(&mut by_key, |&(a, _)| core::cmp::Reverse(a));
                assert!(by_key.windows(2).all(|w| w[0].0 >= w[1].0), "len {len}");
            }
        }
    }
}
