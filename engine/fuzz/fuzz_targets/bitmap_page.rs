// SPDX-License-Identifier: GPL-2.0
//! Bitmap pages, read as the allocator reads them. A bitmap page has no
//! header: its checksum is the CRC in its parent summary entry, so a valid
//! map copy (bitmap pages drawn from the input, summary entries from
//! `bitmap::summarize`, the summary page from `summary::encode`) has bits
//! of a bitmap page, summary entries or the summary header edited, and the
//! checksums above the edit are recomputed as a checkpoint writes them
//! (bitmap CRC into its entry, the summary page's seal, its content CRC
//! into the root). Mounting the copy and reading every bitmap page then
//! reaches the checks behind the checksums: bits past the device end,
//! bitmap against summary entry, entry against the child's capacity, free
//! count against the root. Raw mode checks the page functions on any
//! page: summaries and run searches agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use vtier_engine::error::Error;
use vtier_engine::format::crc32c::crc32c;
use vtier_engine::io::device::{BlockDevice, MemDevice, BLOCK_SIZE};
use vtier_engine::space::allocator::{AllocLayout, AllocRoot, Allocator};
use vtier_engine::space::bitmap::{self, BITS_PER_PAGE};
use vtier_engine::space::summary::{self, Entry, PageId, ENTRY_SIZE, HEADER_SIZE, SUMMARY_PAGE};
use vtier_engine_fuzz::{mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW};

/// Most bitmap pages of the map built here: two, so that a map has a last
/// page with bits past the device end and one without, and a run stays
/// cheap.
const MAX_PAGES: usize = 2;
const GENERATION: u64 = 6;

thread_local! {
    /// Room for both copies of the largest map built here, reused by every
    /// run (each run writes every block of the copy it mounts).
    static DEV: RefCell<MemDevice> =
        RefCell::new(MemDevice::new(2 * (MAX_PAGES as u64 + 1)).expect("device"));
}

#[rustfmt::skip]
const SUMMARY_FIELDS: [Field; 9] = [
    COMMON[0], COMMON[1], COMMON[2],
    (0x18, 8), (0x20, 4), (0x24, 4), (0x28, 4), (0x2c, 4), (0x30, 8),
];

fn raw(rest: &[u8]) {
    let mut inp = Input::new(rest);
    let (from, len) = (inp.u32(), inp.u32() % (BITS_PER_PAGE + 8000));
    let body = inp.rest();
    let mut page = [0u8; BLOCK_SIZE];
    if !body.is_empty() {
        for (i, b) in page.iter_mut().enumerate() {
            *b = body[i % body.len()];
        }
    }
    let s = bitmap::summarize(&page);
    assert!(s.longest <= s.free && s.free <= BITS_PER_PAGE);
    if let Some(at) = bitmap::find_run(&page, from, len) {
        assert!(at >= from && at + len <= BITS_PER_PAGE);
        assert!(bitmap::all(&page, at, len, false));
        assert!(len <= s.longest);
        assert!(bitmap::run_around(&page, at, len) >= len);
    } else if len > 0 && from == 0 {
        assert!(len > s.longest);
    }
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    if mode == MODE_RAW {
        raw(rest);
        return;
    }
    DEV.with(|dev| run(mode, rest, &mut dev.borrow_mut()));
});

fn run(mode: u8, rest: &[u8], dev: &mut MemDevice) {
    let how = Seal::from_mode(mode);
    let mut inp = Input::new(rest);
    let nr_blocks = inp.range(1, (MAX_PAGES as u64) * u64::from(BITS_PER_PAGE));
    let pages = nr_blocks.div_ceil(u64::from(BITS_PER_PAGE)) as usize;
    // Copy 0 from block 0: the bitmap pages, then the top summary page.
    let copy_blocks = pages as u64 + 1;
    let layout = AllocLayout {
        nr_blocks,
        copies: [0, copy_blocks],
    };
    let sum_block = pages as u64;
    let mut page = [0u8; BLOCK_SIZE];
    let mut entries = [Entry::default(); MAX_PAGES];
    for (p, e) in entries.iter_mut().enumerate().take(pages) {
        page.fill(0);
        for _ in 0..inp.u8() % 4 {
            let (start, len) = (inp.u16() as u32 % BITS_PER_PAGE, inp.u16() as u32);
            bitmap::fill(&mut page, start, len, true);
        }
        let first = p as u64 * u64::from(BITS_PER_PAGE);
        let valid = (nr_blocks - first).min(u64::from(BITS_PER_PAGE)) as u32;
        bitmap::fill(&mut page, valid, BITS_PER_PAGE - valid, true);
        let s = bitmap::summarize(&page);
        *e = Entry {
            crc: crc32c(&page),
            free: s.free,
            longest: s.longest,
        };
        dev.write(p as u64, &page).expect("write");
    }
    let id = PageId {
        level: 1,
        index: 0,
        copy: 0,
        nr_entries: pages as u32,
    };
    let mut sum = [0u8; BLOCK_SIZE];
    summary::encode(id, GENERATION, sum_block, &entries[..pages], &mut sum).expect("encode");
    dev.write(sum_block, &sum).expect("write");
    let free: u64 = entries[..pages].iter().map(|e| u64::from(e.free)).sum();
    let mut root = AllocRoot {
        copy: 0,
        crc: summary::content_crc(&sum, true),
        free,
    };
    if inp.u8().is_multiple_of(8) {
        // Now and then, as it doubles the cost of a run: the map as written
        // mounts.
        let mut a =
            Allocator::open(dev, layout, root, GENERATION, 4).expect("a valid map is refused");
        assert_eq!(a.verify_all(dev), Ok(nr_blocks - free));
    }

    // Edit a bitmap page, the summary entries or the summary header.
    let mut fixed = true;
    match inp.u8() % 3 {
        0 => {
            let p = inp.u8() as usize % pages;
            dev.read(p as u64, &mut page).expect("read");
            let mut fields = [(0usize, 1usize); 6];
            for f in fields.iter_mut() {
                // Half of the edits near the end of the device's bits.
                let at = if inp.bool() {
                    let first = p as u64 * u64::from(BITS_PER_PAGE);
                    let valid = (nr_blocks - first).min(u64::from(BITS_PER_PAGE)) as usize;
                    (valid / 8 + inp.u8() as usize)
                        .saturating_sub(128)
                        .min(BLOCK_SIZE - 8)
                } else {
                    inp.u16() as usize % (BLOCK_SIZE - 8)
                };
                *f = (at, 1 << (inp.u8() % 4));
            }
            mutate(&mut page, &fields, &mut inp);
            dev.write(p as u64, &page).expect("write");
            if !inp.u8().is_multiple_of(4) {
                entries[p].crc = crc32c(&page);
            } else {
                fixed = false;
            }
            if inp.bool() {
                let s = bitmap::summarize(&page);
                entries[p].free = s.free;
                entries[p].longest = s.longest;
            }
            summary::encode(id, GENERATION, sum_block, &entries[..pages], &mut sum)
                .expect("encode");
        }
        1 => {
            // The entries in use and the first unused one.
            let mut fields = [(0usize, 0usize); 4 * (MAX_PAGES + 1)];
            for (i, f) in fields.iter_mut().enumerate() {
                *f = (HEADER_SIZE + (i / 4) * ENTRY_SIZE + (i % 4) * 4, 4);
            }
            mutate(&mut sum, &fields[..4 * pages + 4], &mut inp);
        }
        _ => {
            mutate(&mut sum, &SUMMARY_FIELDS, &mut inp);
        }
    }
    // An edited child CRC (an edit of any byte of the summary page may hit
    // one) is a checksum mismatch, not a field error.
    fixed &= (0..pages).all(|p| summary::entry(&sum, p as u32).crc == entries[p].crc);
    reseal(&mut sum, SUMMARY_PAGE, sum_block, how);
    fixed &= how == Seal::Full;
    dev.write(sum_block, &sum).expect("write");
    if !inp.u8().is_multiple_of(4) {
        root.crc = summary::content_crc(&sum, true);
    } else {
        fixed = false;
    }
    if inp.bool() {
        root.free = (0..pages as u32)
            .map(|i| u64::from(summary::entry(&sum, i).free))
            .sum();
    }

    let result = Allocator::open(dev, layout, root, GENERATION, 4)
        .and_then(|mut a| a.verify_all(dev).map(|used| (a, used)));
    match result {
        Ok((a, used)) => {
            // Every page as read: bits past the end set, totals as its entry.
            assert_eq!(a.free_blocks(), root.free);
            assert_eq!(used, nr_blocks - a.free_blocks());
            let mut total = 0u64;
            for p in 0..pages {
                dev.read(p as u64, &mut page).expect("read");
                let e = summary::entry(&sum, p as u32);
                assert_eq!(crc32c(&page), e.crc);
                let s = bitmap::summarize(&page);
                assert_eq!((s.free, s.longest), (e.free, e.longest));
                let first = p as u64 * u64::from(BITS_PER_PAGE);
                let valid = (nr_blocks - first).min(u64::from(BITS_PER_PAGE)) as u32;
                assert!(bitmap::all(&page, valid, BITS_PER_PAGE - valid, true));
                total += u64::from(s.free);
            }
            assert_eq!(total, root.free);
        }
        Err(Error::Corrupt { .. }) => {}
        Err(Error::BadChecksum { .. }) if !fixed => {}
        Err(Error::BadMagic { .. } | Error::WrongLocation { .. } | Error::BadVersion { .. })
            if how != Seal::Full => {}
        Err(e) => panic!("unexpected error {e:?}"),
    }
}
