// SPDX-License-Identifier: GPL-2.0

//! Allocator against a reference model: allocations never overlap, frees
//! are deferred to the checkpoint, a reopened copy equals the model, and a
//! multi-level tree (2^24 blocks) behaves like a one-page one.

mod common;

use common::{Rng, SparseDevice};
use std::collections::BTreeSet;
use vtier_engine::error::Error;
use vtier_engine::io::device::BlockDevice;
use vtier_engine::space::allocator::{AllocLayout, Allocator};
use vtier_engine::space::map_io::DEFAULT_CACHE_PAGES;

fn layout(nr_blocks: u64) -> AllocLayout {
    let g = vtier_engine::space::geometry::Geometry::new(nr_blocks).unwrap();
    AllocLayout {
        nr_blocks,
        copies: [2, 2 + g.copy_blocks()],
    }
}

fn meta_end(l: &AllocLayout) -> u64 {
    l.copies[1] + (l.copies[1] - l.copies[0])
}

fn check_model(a: &mut Allocator, dev: &mut dyn BlockDevice, model: &BTreeSet<u64>, rng: &mut Rng) {
    let n = a.nr_blocks();
    let near = model.iter().flat_map(|&b| [b, b + 1]).filter(|&b| b < n);
    let sample: Vec<u64> = (0..20_000).map(|_| rng.below(n)).collect();
    for b in near.chain(sample) {
        assert_eq!(
            a.is_allocated(dev, b).unwrap(),
            model.contains(&b),
            "block {b}"
        );
    }
}

fn run(nr_blocks: u64, ops: usize, seed: u64) {
    let mut dev = SparseDevice::new(nr_blocks);
    let l = layout(nr_blocks);
    let end = meta_end(&l);
    let (mut a, _) = Allocator::format(&mut dev, l, &[(0, end)], 1).unwrap();
    let mut model: BTreeSet<u64> = (0..end).collect();
    let mut live: Vec<(u64, u32)> = Vec::new();
    let mut deferred: Vec<(u64, u32)> = Vec::new();
    let mut rng = Rng(seed);
    let mut gen = 1;
    for i in 0..ops {
        match rng.below(10) {
            0..=5 => {
                let big = rng.below(4) == 0;
                let len = 1 + rng.below(if big { 300 } else { 4 }) as u32;
                let hint = rng.below(nr_blocks);
                let s = match a.alloc_extent(&mut dev, hint, len) {
                    Err(Error::NoSpace) => continue,
                    r => r.unwrap(),
                };
                for b in s..s + len as u64 {
                    assert!(model.insert(b), "double allocation of {b}");
                }
                live.push((s, len));
            }
            6..=8 if !live.is_empty() => {
                let (s, len) = live.swap_remove(rng.below(live.len() as u64) as usize);
                a.free(&mut dev, s, len).unwrap();
                deferred.push((s, len));
            }
            _ => {
                gen += 1;
                let root = a.write_copy(&mut dev, gen).unwrap();
                for (s, len) in deferred.drain(..) {
                    for b in s..s + len as u64 {
                        model.remove(&b);
                    }
                }
                assert_eq!(root.free, nr_blocks - model.len() as u64);
                if i % 3 == 0 {
                    a = Allocator::open(&mut dev, l, root, gen, DEFAULT_CACHE_PAGES).unwrap();
                    a.verify_all(&mut dev).unwrap();
                }
            }
        }
        assert_eq!(a.free_blocks(), nr_blocks - model.len() as u64);
    }
    check_model(&mut a, &mut dev, &model, &mut rng);
}

#[test]
fn single_page_tree_matches_model() {
    run(20_000, 3000, 7);
}

#[test]
fn several_bitmap_pages_match_model() {
    run(200_000, 3000, 11);
}

#[test]
fn multi_level_tree_matches_model() {
    run(1 << 24, 800, 13);
}

#[test]
fn errors_for_bad_requests() {
    let mut dev = SparseDevice::new(50_000);
    let l = layout(50_000);
    let (mut a, _) = Allocator::format(&mut dev, l, &[(0, meta_end(&l))], 1).unwrap();
    assert_eq!(a.alloc_extent(&mut dev, 0, 0), Err(Error::InvalidArgument));
    assert_eq!(
        a.alloc_extent(&mut dev, 0, 40_000),
        Err(Error::InvalidArgument)
    );
    assert_eq!(a.free(&mut dev, 40_000, 1), Err(Error::InvalidArgument));
    assert_eq!(a.reserve(&mut dev, 0, 1), Err(Error::InvalidArgument));
    assert_eq!(a.reserve(&mut dev, 49_999, 2), Err(Error::InvalidArgument));
    let b = a.alloc(&mut dev, 45_000).unwrap();
    assert!(b >= 45_000);
    a.free(&mut dev, b, 1).unwrap();
    a.free(&mut dev, b, 1).unwrap();
    assert!(matches!(
        a.write_copy(&mut dev, 2),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn fills_up_then_reports_no_space() {
    let mut dev = SparseDevice::new(5000);
    let l = layout(5000);
    let (mut a, _) = Allocator::format(&mut dev, l, &[(0, meta_end(&l))], 1).unwrap();
    let free = a.free_blocks();
    for _ in 0..free {
        a.alloc(&mut dev, 0).unwrap();
    }
    assert_eq!(a.alloc(&mut dev, 0), Err(Error::NoSpace));
}

#[test]
fn corrupt_bitmap_page_is_caught() {
    let mut dev = SparseDevice::new(100_000);
    let l = layout(100_000);
    let (_, root) = Allocator::format(&mut dev, l, &[(0, meta_end(&l))], 1).unwrap();
    let live = l.copies[root.copy as usize];
    dev.blocks.get_mut(&(live + 1)).unwrap()[7] ^= 0x10;
    let mut a = Allocator::open(&mut dev, l, root, 1, 8).unwrap();
    assert_eq!(
        a.verify_all(&mut dev),
        Err(Error::BadChecksum { block: live + 1 })
    );
    // A corrupt summary page fails the mount.
    dev.blocks.get_mut(&(live + 4)).unwrap()[200] ^= 1;
    assert!(Allocator::open(&mut dev, l, root, 1, 8).is_err());
}
