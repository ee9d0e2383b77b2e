// SPDX-License-Identifier: GPL-2.0

//! The erasure-coded stripe store: round trips, degraded reads, read-only
//! beyond `m` losses, rebuild onto a replacement, scrub, and ciphertext
//! carried byte for byte.

#[path = "support/stripe_disks.rs"]
mod stripe_disks;

use std::cell::Cell;
use std::rc::Rc;
use stripe_disks::{blank, Disk, Shared};
use vtier_engine::crypt::cipher::{Tweak, XtsCipher, XtsKey};
use vtier_engine::crypt::soft::SoftXts;
use vtier_engine::error::{Error, Result};
use vtier_engine::format::superblock::volume_tag;
use vtier_engine::io::device::{BlockDevice, BLOCK_SIZE};
use vtier_engine::io::paddr::PAddr;
use vtier_engine::kcompat::KVec;
use vtier_engine::stripe::chunk::{self, ChunkHeader};
use vtier_engine::stripe::member::MemberState;
use vtier_engine::stripe::store::{StripeOptions, StripeStore};

const AREA: u64 = 6;
const UUID: [u8; 16] = [0x42; 16];

fn opts(k: u32, m: u32, chunk_blocks: u32) -> StripeOptions {
    StripeOptions {
        uuid: UUID,
        k,
        m,
        chunk_blocks,
        area_start: AREA,
    }
}

fn setup(k: u32, m: u32, n: usize, chunk: u32, blocks: u64) -> (Rc<Shared>, StripeStore<Disk>) {
    let sh = Shared::new();
    let mut devs = KVec::new();
    for _ in 0..n {
        devs.push(blank(&sh, blocks), vtier_engine::kcompat::GFP_KERNEL)
            .unwrap();
    }
    let store = StripeStore::format(devs, &opts(k, m, chunk)).unwrap();
    (sh, store)
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn reopen(store: StripeStore<Disk>) -> StripeStore<Disk> {
    StripeStore::open(store.into_members(), AREA, &UUID, 16).unwrap()
}

fn read(store: &mut StripeStore<Disk>, s: u64) -> Result<Vec<u8>> {
    let mut out = vec![0u8; store.geometry().data_bytes()];
    store.read_stripe(s, &mut out).map(|_| out)
}

/// Id of the disk holding member `i` (ids are given in member order at format).
fn disk_of(i: usize) -> usize {
    i
}

#[test]
fn full_stripes_round_trip_partial_reads_and_survive_reopen() {
    let (_sh, mut store) = setup(4, 2, 7, 2, 400);
    let len = store.geometry().data_bytes();
    let mut written = Vec::new();
    for seed in 0..12 {
        let data = pattern(seed, len);
        let s = store.write_stripe(&data).unwrap();
        written.push((s, data));
    }
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
        for (off, n) in [(0, 1), (1, 2), (3, 4), (7, 1), (2, 6)] {
            let mut out = vec![0u8; n * BLOCK_SIZE];
            store.read_blocks(*s, off as u64, &mut out).unwrap();
            assert_eq!(out, data[off * BLOCK_SIZE..(off + n) * BLOCK_SIZE]);
        }
    }
    assert_eq!(store.stats().degraded_reads, 0);
    let mut out = vec![0u8; BLOCK_SIZE];
    assert_eq!(
        store.read_blocks(written[0].0, 8, &mut out),
        Err(Error::InvalidArgument)
    );
    store.commit().unwrap();
    store.free_stripe(written[0].0).unwrap();
    assert_eq!(store.free_stripe(written[0].0), Err(Error::InvalidArgument));
    // Freed but not committed: still readable.
    assert_eq!(read(&mut store, written[0].0).unwrap(), written[0].1);
    store.commit().unwrap();
    assert_eq!(read(&mut store, written[0].0), Err(Error::InvalidArgument));
    let mut store = reopen(store);
    assert_eq!(store.lost(), 0);
    assert!(!store.is_allocated(written[0].0).unwrap());
    for (s, data) in &written[1..] {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    // Written after the last commit: gone after a reopen.
    let s = store.write_stripe(&pattern(99, len)).unwrap();
    let mut store = reopen(store);
    assert!(!store.is_allocated(s).unwrap());
}

#[test]
fn up_to_m_lost_members_lose_nothing_and_more_make_the_store_read_only() {
    let (sh, mut store) = setup(4, 2, 7, 2, 400);
    let len = store.geometry().data_bytes();
    let mut written = Vec::new();
    for seed in 0..10 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    // One member dies (every I/O fails), one is pulled out.
    sh.killed.borrow_mut().insert(disk_of(1));
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    assert!(store.member_stats(1).unwrap().read_errors > 0);
    store.remove_member(4).unwrap();
    assert_eq!(store.member_stats(4).unwrap().state, MemberState::Missing);
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    let reconstructed: u64 = (0..7)
        .map(|i| store.member_stats(i).unwrap().reconstructions)
        .sum();
    assert!(reconstructed > 0 && store.stats().degraded_reads > 0);
    // Degraded writes still work with m lost.
    for seed in 10..14 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    assert_eq!(store.member_stats(1).unwrap().state, MemberState::Failed);
    let mut status = String::new();
    store.write_status(&mut status).unwrap();
    assert!(
        status.contains("health: degraded, 2 members lost"),
        "{status}"
    );
    assert!(status.contains("member 1: failed read_errors"), "{status}");
    assert!(status.contains("member 4: missing"), "{status}");
    assert!(status.contains("stripes: 14 used"), "{status}");
    let mut store = reopen(store);
    assert_eq!(store.lost(), 2);
    assert!(!store.is_read_only());
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    // A third loss: read-only, errors instead of data, nothing written.
    sh.killed.borrow_mut().insert(disk_of(6));
    let _ = read(&mut store, written[0].0);
    let mut bad = 0;
    let before: Vec<Vec<u8>> = {
        let members = store.into_members();
        let images = members
            .iter()
            .map(|d| d.as_ref().map_or(Vec::new(), |d| d.image().to_vec()))
            .collect();
        store = StripeStore::open(members, AREA, &UUID, 16).unwrap();
        images
    };
    assert!(store.is_read_only());
    assert_eq!(store.write_stripe(&pattern(1, len)), Err(Error::ReadOnly));
    assert_eq!(store.free_stripe(written[0].0), Err(Error::ReadOnly));
    assert_eq!(store.commit(), Err(Error::ReadOnly));
    for (s, data) in &written {
        match read(&mut store, *s) {
            Ok(got) => assert_eq!(&got, data),
            Err(Error::Corrupt { block, .. }) => {
                assert_eq!(block, Some(PAddr::stripe(*s, 0).unwrap().to_raw()));
                bad += 1;
            }
            Err(e) => panic!("stripe {s}: {e:?}"),
        }
    }
    assert!(bad > 0, "every stripe has a chunk on 3 of 7 members");
    assert_eq!(store.stats().unreadable_reads, bad);
    store.scrub_step(u64::MAX).unwrap();
    assert!(store.scrub_report().unrepairable >= bad);
    assert_eq!(store.scrub_report().repaired, 0);
    let after = store.into_members();
    for (i, d) in after.iter().enumerate() {
        if let Some(d) = d {
            assert!(d.image() == &before[i][..], "member {i} was written");
        }
    }
}

#[test]
fn rebuild_onto_a_replacement_resumes_after_reopen_and_restores_redundancy() {
    let (sh, mut store) = setup(2, 1, 4, 3, 300);
    let len = store.geometry().data_bytes();
    let mut written = Vec::new();
    for seed in 0..16 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    sh.killed.borrow_mut().insert(disk_of(0));
    // Written while member 0 is dead: degraded.
    for seed in 16..20 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    assert_eq!(store.member_stats(0).unwrap().state, MemberState::Failed);
    let old = store.replace_member(0, blank(&sh, 300)).unwrap();
    assert!(old.is_some());
    assert_eq!(
        store.replace_member(1, blank(&sh, 300)).err(),
        Some(Error::InvalidArgument)
    );
    let p = store.rebuild_step(5).unwrap();
    assert_eq!((p.member, p.done), (Some(0), 5));
    // Written during the rebuild, below and above the cursor.
    for seed in 20..23 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    let mut store = reopen(store);
    let p = store.rebuild_progress();
    assert_eq!((p.member, p.done), (Some(0), 5));
    assert_eq!(
        store.member_stats(0).unwrap().state,
        MemberState::Rebuilding
    );
    let mut last = p.done;
    while store.rebuild_progress().member.is_some() {
        let p = store.rebuild_step(4).unwrap();
        assert!(p.done > last || p.member.is_none());
        last = p.done;
    }
    assert_eq!(store.rebuild_progress().unrecoverable, 0);
    assert!(store.rebuild_progress().rebuilt > 0);
    assert_eq!(store.lost(), 0);
    // Member 0's chunks are really there: lose another member and read all.
    sh.killed.borrow_mut().insert(disk_of(2));
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    let mut store = reopen(store);
    assert_eq!(store.member_stats(0).unwrap().state, MemberState::Ok);
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
}

/// Block numbers of chunk `j` of stripe `s` and the disk holding it.
fn chunk_blocks(store: &StripeStore<Disk>, s: u64, j: usize) -> (usize, u64) {
    store.geometry().chunk_location(s, j).unwrap()
}

#[test]
fn scrub_repairs_what_it_can_and_counts_the_rest() {
    let (sh, mut store) = setup(4, 2, 6, 2, 300);
    let len = store.geometry().data_bytes();
    let mut written = Vec::new();
    for seed in 0..8 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    let flip = |store: &StripeStore<Disk>, s, j, off: u64| {
        let (mem, block) = chunk_blocks(store, s, j);
        sh.flips.borrow_mut().insert((disk_of(mem), block + off));
    };
    let (s0, s1, s2) = (written[0].0, written[1].0, written[2].0);
    flip(&store, s0, 0, 1);
    flip(&store, s0, 5, 2);
    flip(&store, s1, 3, 0);
    for j in [0, 2, 4] {
        flip(&store, s2, j, 1);
    }
    // Reads reconstruct (two bad chunks at most) or refuse (three).
    assert_eq!(read(&mut store, s0).unwrap(), written[0].1);
    assert_eq!(read(&mut store, s1).unwrap(), written[1].1);
    assert!(matches!(read(&mut store, s2), Err(Error::Corrupt { .. })));
    let total = store.scrub_position().1;
    assert_eq!(store.scrub_position(), (0, total));
    let mut steps = 0;
    loop {
        let p = store.scrub_step(3).unwrap();
        steps += 1;
        // The position the configfs attribute reads follows each step.
        assert_eq!(store.scrub_position(), (p.cursor, total));
        assert_eq!(p.cursor, (3 * steps).min(total));
        if p.done {
            break;
        }
    }
    assert_eq!(store.scrub_position(), (total, total));
    let r = store.scrub_report();
    assert_eq!(r.stripes_checked, 8);
    assert_eq!(r.checksum_errors, 6);
    assert_eq!(r.repaired, 3);
    assert_eq!(r.unrepairable, 1);
    assert_eq!(r.listed(), &[s2]);
    assert_eq!(r.parity_mismatches, 0);
    let mut status = String::new();
    store.write_status(&mut status).unwrap();
    assert!(
        status.contains(&format!("unrepairable stripes: {s2}\n")),
        "{status}"
    );
    // A stripe address reads the same blocks.
    let mut blk = vec![0u8; 2 * BLOCK_SIZE];
    store
        .read_paddr(PAddr::stripe(s1, 3).unwrap(), &mut blk)
        .unwrap();
    assert_eq!(blk, written[1].1[3 * BLOCK_SIZE..5 * BLOCK_SIZE]);
    assert_eq!(
        store.read_paddr(PAddr::perf(5).unwrap(), &mut blk),
        Err(Error::InvalidArgument)
    );
    // The repaired chunks were rewritten; the unrepairable ones untouched.
    assert_eq!(sh.flips.borrow().len(), 3);
    store.scrub_step(100).unwrap();
    let r = store.scrub_report();
    assert_eq!((r.checksum_errors, r.repaired, r.unrepairable), (3, 0, 1));
    let degraded = store.stats().degraded_reads;
    assert_eq!(read(&mut store, s0).unwrap(), written[0].1);
    assert_eq!(read(&mut store, s1).unwrap(), written[1].1);
    assert_eq!(store.stats().degraded_reads, degraded);
}

/// Replaces chunk `j` of stripe `s` on the disks with `data`, under a valid
/// header of write `seq` (a chunk whose CRC verifies but whose content is
/// wrong, or an older write).
fn forge_chunk(
    members: &mut KVec<Option<Disk>>,
    store_geom: &vtier_engine::stripe::geometry::StripeGeometry,
    s: u64,
    j: usize,
    seq: Option<u64>,
    data: &[u8],
) {
    let (mem, block) = store_geom.chunk_location(s, j).unwrap();
    let disk = members[mem].as_mut().unwrap();
    let mut slot = vec![0u8; store_geom.slot_bytes()];
    disk.read(block, &mut slot).unwrap();
    let cur = u64::from_le_bytes(slot[0x18..0x20].try_into().unwrap());
    slot[BLOCK_SIZE..].copy_from_slice(data);
    let h = ChunkHeader {
        tag: volume_tag(&UUID),
        stripe: s,
        seq: seq.unwrap_or(cur),
        k: store_geom.k as u8,
        m: store_geom.m as u8,
        index: j as u8,
        chunk_blocks: store_geom.chunk_blocks,
    };
    chunk::seal(&mut slot, block, &h).unwrap();
    disk.write(block, &slot).unwrap();
}

#[test]
fn a_wrong_chunk_with_a_good_checksum_is_found_by_parity_and_stale_chunks_are_ignored() {
    for (k, m) in [(3, 2), (3, 1)] {
        let (_sh, mut store) = setup(k, m, k as usize + m as usize, 1, 200);
        let len = store.geometry().data_bytes();
        let mut written = Vec::new();
        for seed in 0..4 {
            let data = pattern(seed, len);
            written.push((store.write_stripe(&data).unwrap(), data));
        }
        store.commit().unwrap();
        let geom = *store.geometry();
        let mut members = store.into_members();
        let junk = pattern(1000, geom.chunk_bytes());
        // Stripe 0: chunk 1 replaced by other data under a valid header.
        forge_chunk(&mut members, &geom, written[0].0, 1, None, &junk);
        // Stripe 1: chunk 2 is an older write of the same stripe id.
        forge_chunk(&mut members, &geom, written[1].0, 2, Some(1), &junk);
        let mut store = StripeStore::open(members, AREA, &UUID, 16).unwrap();
        // The stale chunk loses to the newer write and is reconstructed.
        assert_eq!(read(&mut store, written[1].0).unwrap(), written[1].1);
        store.scrub_step(u64::MAX).unwrap();
        let r = store.scrub_report();
        assert_eq!(r.parity_mismatches, 1, "{k}+{m}");
        assert_eq!(r.checksum_errors, 1, "{k}+{m}");
        if m >= 2 {
            // The one chunk that explains the mismatch is rebuilt.
            assert_eq!((r.repaired, r.unrepairable), (2, 0));
            assert_eq!(read(&mut store, written[0].0).unwrap(), written[0].1);
            store.scrub_step(u64::MAX).unwrap();
            assert_eq!(store.scrub_report().parity_mismatches, 0);
        } else {
            // With one parity chunk any chunk could be the wrong one.
            assert_eq!((r.repaired, r.unrepairable), (1, 1));
        }
    }
}

#[test]
fn members_in_the_wrong_place_are_missing_not_trusted() {
    let (_sh, mut store) = setup(2, 2, 5, 1, 200);
    let len = store.geometry().data_bytes();
    let mut written = Vec::new();
    for seed in 0..6 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    let mut members = store.into_members();
    members.swap(0, 3);
    let mut store = StripeStore::open(members, AREA, &UUID, 16).unwrap();
    assert_eq!(store.member_stats(0).unwrap().state, MemberState::Missing);
    assert_eq!(store.member_stats(3).unwrap().state, MemberState::Missing);
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    // A store formatted with another UUID is not this one.
    let sh = Shared::new();
    let mut devs = KVec::new();
    for _ in 0..5 {
        devs.push(blank(&sh, 200), vtier_engine::kcompat::GFP_KERNEL)
            .unwrap();
    }
    let mut other = StripeStore::format(
        devs,
        &StripeOptions {
            uuid: [9; 16],
            ..opts(2, 2, 1)
        },
    )
    .unwrap();
    // Newer headers than ours: they must not be taken for this store's.
    for _ in 0..20 {
        other.commit().unwrap();
    }
    assert!(other.generation() > store.generation());
    let mut members = store.into_members();
    let mut theirs = other.into_members();
    members[1] = theirs[1].take();
    members[0] = None;
    members[3] = None;
    let mut store = StripeStore::open(members, AREA, &UUID, 16).unwrap();
    assert_eq!(store.lost(), 3);
    assert!(store.is_read_only());
    for (s, data) in &written {
        if let Ok(got) = read(&mut store, *s) {
            assert_eq!(&got, data);
        }
    }
    // The other store's remaining members are not ours.
    theirs[1] = None;
    assert!(StripeStore::open(theirs, AREA, &UUID, 16).is_err());
}

/// Counts every call into the cipher.
struct Counting<'a> {
    inner: &'a SoftXts,
    calls: Cell<u64>,
}

impl XtsCipher for Counting<'_> {
    fn encrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        self.calls.set(self.calls.get() + 1);
        self.inner.encrypt_unit(data, tweak)
    }
    fn decrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        self.calls.set(self.calls.get() + 1);
        self.inner.decrypt_unit(data, tweak)
    }
}

#[test]
fn ciphertext_moves_into_stripes_and_back_byte_for_byte_without_the_cipher() {
    let mut key: XtsKey = [0; 64];
    for (i, b) in key.iter_mut().enumerate() {
        *b = i as u8 ^ 0xa5;
    }
    let soft = SoftXts::new(&key).unwrap();
    let cipher = Counting {
        inner: &soft,
        calls: Cell::new(0),
    };
    let tweak: Tweak = *b"vtier fixed twk!";
    let (sh, mut store) = setup(4, 2, 6, 2, 300);
    let len = store.geometry().data_bytes();
    let plain = pattern(7, len);
    let mut cipher_text = plain.clone();
    for block in cipher_text.chunks_exact_mut(BLOCK_SIZE) {
        cipher.encrypt_unit(block, &tweak).unwrap();
    }
    assert_ne!(cipher_text, plain);
    let calls = cipher.calls.get();
    let s = store.write_stripe(&cipher_text).unwrap();
    store.commit().unwrap();
    // One member fails: the read reconstructs.
    let (mem, _) = store.geometry().chunk_location(s, 1).unwrap();
    sh.killed.borrow_mut().insert(disk_of(mem));
    let mut back = read(&mut store, s).unwrap();
    assert!(store.stats().degraded_reads > 0);
    assert_eq!(back, cipher_text);
    assert_eq!(cipher.calls.get(), calls, "the store called the cipher");
    for block in back.chunks_exact_mut(BLOCK_SIZE) {
        cipher.decrypt_unit(block, &tweak).unwrap();
    }
    assert_eq!(back, plain);
}

#[test]
fn failing_sectors_are_read_around_and_fail_their_member_after_the_limit() {
    use vtier_engine::stripe::geometry::StripeGeometry;
    use vtier_engine::stripe::member::READ_ERROR_LIMIT;
    let (k, m, n, blocks) = (3, 2, 5, 120u64);
    let sh = Shared::new();
    let geom = StripeGeometry::new(k, m, n as u32, 1, AREA, blocks - AREA).unwrap();
    let (bad_member, bad_block) = geom.chunk_location(0, 1).unwrap();
    let (wmember, wblock) = geom.chunk_location(2, 0).unwrap();
    let mut devs = KVec::new();
    for i in 0..n {
        let mut d = blank(&sh, blocks);
        if i == bad_member {
            // The data block of stripe 0's chunk 1 cannot be read.
            d.fd.fail_reads(bad_block + 1).unwrap();
        }
        if i == wmember {
            // Stripe 2's chunk 0 cannot be written.
            d.fd.fail_writes(wblock).unwrap();
        }
        devs.push(d, vtier_engine::kcompat::GFP_KERNEL).unwrap();
    }
    let mut store = StripeStore::format(devs, &opts(k, m, 1)).unwrap();
    assert_eq!(store.geometry(), &geom);
    let len = geom.data_bytes();
    let mut written = Vec::new();
    for seed in 0..4 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    assert_eq!(written[0].0, 0);
    assert_eq!(written[2].0, 2);
    // The failed write failed its member; the stripe is degraded but whole.
    let wstats = store.member_stats(wmember).unwrap();
    assert_eq!(
        (wstats.state, wstats.write_errors),
        (MemberState::Failed, 1)
    );
    store.commit().unwrap();
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    assert_ne!(bad_member, wmember);
    {
        let st = store.member_stats(bad_member).unwrap();
        assert_eq!((st.state, st.read_errors), (MemberState::Ok, 1));
        for i in 1..READ_ERROR_LIMIT {
            assert_eq!(read(&mut store, 0).unwrap(), written[0].1);
            let st = store.member_stats(bad_member).unwrap();
            assert_eq!(st.read_errors, i + 1);
        }
        assert_eq!(
            store.member_stats(bad_member).unwrap().state,
            MemberState::Failed
        );
        assert_eq!(store.lost(), 2);
        assert!(!store.is_read_only());
        for (s, data) in &written {
            assert_eq!(&read(&mut store, *s).unwrap(), data);
        }
    }
}

/// A hot loop that counts its calls and lets the scalar loop do the work.
struct CountingLoop;

static CODED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl vtier_engine::ec::backend::GfKernel for CountingLoop {
    fn apply(
        &self,
        rows: &[vtier_engine::ec::limits::Row],
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        len: usize,
    ) -> vtier_engine::ec::error::Result {
        CODED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        vtier_engine::ec::backend::Scalar.apply(rows, inputs, outputs, len)
    }

    fn name(&self) -> &'static str {
        "counting"
    }
}

static COUNTING: CountingLoop = CountingLoop;

#[test]
fn the_chosen_hot_loop_codes_writes_and_degraded_reads() {
    use std::sync::atomic::Ordering::Relaxed;
    let (sh, mut store) = setup(4, 2, 7, 2, 400);
    store.set_gf_kernel(&COUNTING);
    let mut status = String::new();
    store.write_status(&mut status).unwrap();
    assert!(status.contains("coded by counting"), "{status}");
    let len = store.geometry().data_bytes();
    let before = CODED.load(Relaxed);
    let mut written = Vec::new();
    for seed in 0..6 {
        let data = pattern(seed, len);
        written.push((store.write_stripe(&data).unwrap(), data));
    }
    store.commit().unwrap();
    let encoded = CODED.load(Relaxed);
    assert!(encoded >= before + 6, "writes did not encode through it");
    // A dead member: reads reconstruct through it, and right.
    sh.killed.borrow_mut().insert(disk_of(0));
    for (s, data) in &written {
        assert_eq!(&read(&mut store, *s).unwrap(), data);
    }
    assert!(
        CODED.load(Relaxed) > encoded,
        "degraded reads did not reconstruct through it"
    );
}

#[test]
fn every_stripe_can_be_freed_once_per_commit_and_is_free_after_it() {
    let (_sh, mut store) = setup(2, 1, 3, 1, 64);
    let len = store.geometry().data_bytes();
    let total = store.free_stripes();
    let ids: Vec<u64> = (0..total)
        .map(|i| store.write_stripe(&pattern(i, len)).unwrap())
        .collect();
    assert_eq!(store.write_stripe(&pattern(0, len)), Err(Error::NoSpace));
    store.commit().unwrap();
    for &s in &ids {
        store.free_stripe(s).unwrap();
        assert_eq!(store.free_stripe(s), Err(Error::InvalidArgument), "{s}");
    }
    // Full, every stripe freed, no commit yet: the frees wait for it.
    assert_eq!(store.free_stripes(), 0);
    assert_eq!(store.pending_frees(), total);
    assert_eq!(store.write_stripe(&pattern(0, len)), Err(Error::NoSpace));
    for (i, &s) in (0u64..).zip(&ids) {
        assert_eq!(
            read(&mut store, s).unwrap(),
            pattern(i, len),
            "freed, still readable"
        );
    }
    store.commit().unwrap();
    assert_eq!(store.pending_frees(), 0);
    let again: Vec<u64> = (0..total)
        .map(|i| store.write_stripe(&pattern(100 + i, len)).unwrap())
        .collect();
    store.commit().unwrap();
    for (i, &s) in (0u64..).zip(&again) {
        assert_eq!(read(&mut store, s).unwrap(), pattern(100 + i, len));
    }
    // The commit forgot the frees: the same ids can be freed again.
    for &s in &again {
        store.free_stripe(s).unwrap();
    }
    store.commit().unwrap();
    assert_eq!(store.free_stripes(), total);
}
