// SPDX-License-Identifier: GPL-2.0

//! The data path (`Store`): data log entries, the LBA map, encryption and
//! space accounting, against a model of the device's contents, under power
//! cuts, with a wrong key and with corrupted data.
//!
//! Block contents are tagged: a written block holds a pattern derived from
//! a 64-bit tag (its first eight bytes), so any block read back names the
//! write it came from, and zeros are "never written or discarded".

use vtier_engine::crypt::cipher::XtsCipher;
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::crypt::soft::SoftXts;
use vtier_engine::data::store::{Store, COMPACT_RESERVE};
use vtier_engine::error::Error;
use vtier_engine::io::device::{BlockDevice, MemDevice, BLOCK_SIZE};
use vtier_engine::io::paddr::Location;
use vtier_engine::journal::meta_device::FormatOptions;
use vtier_engine::stripe::store::{StripeOptions, StripeStore};
use vtier_engine::testing::fault_device::{image_after_cut, FaultDevice, Survivors};

#[path = "support/stripe_disks.rs"]
mod stripe_disks;
use std::rc::Rc;
use stripe_disks::{blank, Disk, Shared};

const KEY: [u8; 64] = {
    let mut k = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        k[i] = (i as u8).wrapping_mul(37).wrapping_add(11);
        i += 1;
    }
    k
};
const TWEAK: [u8; 16] = *b"fixed-tweak-0123";

fn opts(encrypted: bool) -> FormatOptions {
    let encryption = if encrypted {
        Encryption::aes_xts(&SoftXts::new(&KEY).unwrap(), TWEAK).unwrap()
    } else {
        Encryption::None
    };
    FormatOptions {
        volume_uuid: [7; 16],
        device_uuid: [8; 16],
        nr_devices: 1,
        wal_blocks: 16,
        encryption,
    }
}

fn cipher(encrypted: bool) -> Option<SoftXts> {
    encrypted.then(|| SoftXts::new(&KEY).unwrap())
}

/// The pattern of tag `tag` (0: zeros).
fn fill(tag: u64, out: &mut [u8]) {
    if tag == 0 {
        out.fill(0);
        return;
    }
    let mut x = tag;
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        if i == 0 {
            w.copy_from_slice(&tag.to_le_bytes());
            continue;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
}

/// The tag a block holds; panics on a block that is no pattern at all.
fn tag_of(block: &[u8], what: &str) -> u64 {
    let tag = u64::from_le_bytes(block[..8].try_into().unwrap());
    let mut want = vec![0u8; BLOCK_SIZE];
    fill(tag, &mut want);
    assert!(
        want == block,
        "{what}: block is neither zeros nor a written pattern"
    );
    tag
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn write_tags<D: BlockDevice>(s: &mut Store<D, SoftXts>, lba: u64, tags: &[u64]) {
    let mut buf = vec![0u8; tags.len() * BLOCK_SIZE];
    for (t, b) in tags.iter().zip(buf.chunks_exact_mut(BLOCK_SIZE)) {
        fill(*t, b);
    }
    s.write(lba, &mut buf).unwrap();
}

/// Writes every logical block once, `chunk` blocks per write, with fresh
/// tags from `tag` on; `model` records them.
fn write_whole_device<D: BlockDevice>(
    s: &mut Store<D, SoftXts>,
    chunk: u64,
    tag: &mut u64,
    model: &mut [u64],
) {
    let n = s.nr_lbas();
    let mut lba = 0;
    while lba < n {
        let len = chunk.min(n - lba);
        let t: Vec<u64> = (0..len).map(|i| *tag + i).collect();
        *tag += len;
        write_tags(s, lba, &t);
        model[lba as usize..(lba + len) as usize].copy_from_slice(&t);
        lba += len;
    }
}

fn read_tags<D: BlockDevice>(s: &mut Store<D, SoftXts>, lba: u64, n: u64, what: &str) -> Vec<u64> {
    let mut buf = vec![0u8; n as usize * BLOCK_SIZE];
    s.read(lba, &mut buf)
        .unwrap_or_else(|e| panic!("{what}: read {lba}+{n}: {e}"));
    buf.chunks_exact(BLOCK_SIZE)
        .map(|b| tag_of(b, what))
        .collect()
}

fn free_blocks<D: BlockDevice>(s: &mut Store<D, SoftXts>) -> u64 {
    let (vol, _) = s.map().volume_and_device();
    vol.alloc().unwrap().free_blocks()
}

/// Unmaps everything and checkpoints twice: every block the data took must
/// be free again.
fn assert_no_leak<D: BlockDevice>(s: &mut Store<D, SoftXts>, free_empty: u64, what: &str) {
    let n = s.nr_lbas();
    s.discard(0, n).unwrap();
    s.map().checkpoint().unwrap();
    s.map().checkpoint().unwrap();
    assert_eq!(
        free_blocks(s),
        free_empty,
        "{what}: blocks leaked or freed twice"
    );
}

#[test]
fn random_io_matches_the_model_and_leaks_nothing() {
    for encrypted in [false, true] {
        let dev = MemDevice::new(4096).unwrap();
        let mut s = Store::format(dev, &opts(encrypted), cipher(encrypted)).unwrap();
        s.map().checkpoint().unwrap();
        let free_empty = free_blocks(&mut s);
        let span = 300u64;
        assert!(s.nr_lbas() > span);
        let mut model = vec![0u64; span as usize];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut tag = 1u64;
        // Writes about six times the device's size: space must be reused.
        for op in 0..3000 {
            let lba = rng.below(span - 40);
            let len = 1 + rng.below(if op % 50 == 0 { 40 } else { 6 });
            match rng.below(10) {
                0 => {
                    s.discard(lba, len).unwrap();
                    model[lba as usize..(lba + len) as usize].fill(0);
                }
                1 => s.flush().unwrap(),
                2 => {
                    let got = read_tags(&mut s, lba, len, "read");
                    assert_eq!(got, model[lba as usize..(lba + len) as usize]);
                }
                _ => {
                    let tags: Vec<u64> = (0..len).map(|i| tag + i).collect();
                    tag += len;
                    write_tags(&mut s, lba, &tags);
                    model[lba as usize..(lba + len) as usize].copy_from_slice(&tags);
                }
            }
            if op % 700 == 699 {
                let dev = s.close().unwrap().0;
                s = Store::open(dev, None, cipher(encrypted)).unwrap();
            }
        }
        assert_eq!(read_tags(&mut s, 0, span, "final"), model);
        let st = s.stats();
        assert!(
            st.checkpoints > 0,
            "the device filled: checkpoints must have freed space"
        );
        if encrypted {
            assert_eq!(st.cipher_calls, st.blocks_written + st.blocks_read);
        } else {
            assert_eq!(st.cipher_calls, 0);
        }
        assert_no_leak(&mut s, free_empty, "after the workload");
    }
}

#[test]
fn plaintext_is_nowhere_on_an_encrypted_device() {
    let marker = b"vtier known plaintext marker 0123456789";
    for encrypted in [false, true] {
        let mut s = Store::format(
            MemDevice::new(2048).unwrap(),
            &opts(encrypted),
            cipher(encrypted),
        )
        .unwrap();
        let mut buf = vec![0u8; 8 * BLOCK_SIZE];
        for b in buf.chunks_exact_mut(BLOCK_SIZE) {
            for (i, c) in b.chunks_exact_mut(64).enumerate() {
                c[..marker.len()].copy_from_slice(marker);
                c[60..].copy_from_slice(&(i as u32).to_le_bytes());
            }
        }
        let plain = buf.clone();
        s.write(10, &mut buf).unwrap();
        s.flush().unwrap();
        let mut back = vec![0u8; 8 * BLOCK_SIZE];
        s.read(10, &mut back).unwrap();
        assert!(back == plain);
        let dev = s.close().unwrap().0;
        let found = dev.image().windows(marker.len()).any(|w| w == marker);
        assert_eq!(found, !encrypted, "encrypted {encrypted}");
    }
}

#[test]
fn equal_blocks_give_equal_ciphertext_that_moves_without_the_cipher() {
    // The fixed tweak: the same plaintext block encrypts to the same
    // ciphertext wherever it is stored, so ciphertext copied byte for byte
    // to another place (another tier) still decrypts.
    let mut s = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true)).unwrap();
    let mut a = vec![0u8; BLOCK_SIZE];
    fill(77, &mut a);
    let plain = a.clone();
    let mut b = a.clone();
    s.write(3, &mut a).unwrap();
    s.write(500, &mut b).unwrap();
    assert!(a == b, "equal plaintext, equal ciphertext");
    assert!(a != plain);
    let calls = s.stats().cipher_calls;
    let dev = s.close().unwrap().0;
    let img = dev.image();
    let at: Vec<usize> = img
        .chunks_exact(BLOCK_SIZE)
        .enumerate()
        .filter(|(_, blk)| *blk == &a[..])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 2, "both copies are stored as that ciphertext");
    // Decrypting a copy taken anywhere gives the plaintext back.
    let mut moved = img[at[1] * BLOCK_SIZE..][..BLOCK_SIZE].to_vec();
    SoftXts::new(&KEY)
        .unwrap()
        .decrypt_unit(&mut moved, &TWEAK)
        .unwrap();
    assert!(moved == plain);
    assert_eq!(calls, 2, "one encryption per block written");
}

#[test]
fn a_wrong_or_missing_key_is_refused_before_anything_is_written() {
    let s = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true)).unwrap();
    let dev = s.close().unwrap().0;
    let before = dev.image().to_vec();
    let mut wrong = KEY;
    wrong[5] ^= 1;
    let r = Store::open(
        MemDevice::from_image(&before).unwrap(),
        None,
        Some(SoftXts::new(&wrong).unwrap()),
    );
    assert!(matches!(r, Err(Error::WrongKey)));
    let r = Store::<_, SoftXts>::open(MemDevice::from_image(&before).unwrap(), None, None);
    assert!(matches!(r, Err(Error::WrongKey)));
    // A key for a plain volume is refused too.
    let plain = Store::format(MemDevice::new(2048).unwrap(), &opts(false), None::<SoftXts>)
        .unwrap()
        .close()
        .unwrap()
        .0;
    let r = Store::open(plain, None, cipher(true));
    assert!(matches!(r, Err(Error::InvalidArgument)));
    // The refusals wrote nothing.
    let mut dev = MemDevice::from_image(&before).unwrap();
    let r = Store::open(&mut dev, None, Some(SoftXts::new(&wrong).unwrap()));
    assert!(r.is_err());
    assert!(dev.image() == &before[..]);
}

#[test]
fn every_entry_header_verifies_and_corrupt_data_is_an_error_not_garbage() {
    let mut s = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true)).unwrap();
    for i in 0..20u64 {
        write_tags(&mut s, i * 4, &[100 + i, 200 + i]);
    }
    for i in 0..20u64 {
        let e = s.verify_entry_at(i * 4).unwrap().expect("entry");
        assert_eq!((e.lba, e.nr_blocks), (i * 4, 2));
        assert_ne!(e.key_id, 0);
        assert_eq!(s.verify_entry_at(i * 4 + 2).unwrap(), None, "hole");
    }
    // Corrupt one data block of the entry at lba 8 on the device.
    let mut dev = s.close().unwrap().0;
    let mut probe = Store::open(&mut dev, None, cipher(true)).unwrap();
    let e = probe.verify_entry_at(8).unwrap().unwrap();
    drop(probe);
    let img = dev.image_mut();
    // Find the header of that entry by its sequence number and lba.
    let hdr = (0..img.len() / BLOCK_SIZE)
        .find(|&b| {
            vtier_engine::data::datalog::decode(&img[b * BLOCK_SIZE..][..BLOCK_SIZE], b as u64, {
                vtier_engine::format::superblock::volume_tag(&[7; 16])
            }) == Ok(e)
        })
        .expect("header on the device");
    img[(hdr + 2) * BLOCK_SIZE + 100] ^= 0x40;
    let mut s = Store::open(&mut dev, None, cipher(true)).unwrap();
    let mut buf = vec![0u8; 2 * BLOCK_SIZE];
    assert!(matches!(
        s.read(8, &mut buf),
        Err(Error::BadChecksum { .. })
    ));
    assert!(s.verify_entry_at(8).is_err());
    assert_eq!(s.stats().checksum_errors, 1);
    // The neighbours are intact.
    assert_eq!(read_tags(&mut s, 4, 2, "neighbour"), vec![101, 201]);
}

#[test]
fn every_crash_point_keeps_what_a_flush_acknowledged() {
    for encrypted in [false, true] {
        crash_harness(encrypted);
    }
}

fn crash_harness(encrypted: bool) {
    let ops: u64 = std::env::var("VTIER_STORE_CRASH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(160);
    let span = 48u64;
    let s = Store::format(
        MemDevice::new(1024).unwrap(),
        &opts(encrypted),
        cipher(encrypted),
    )
    .unwrap();
    let base = s.close().unwrap().0.image().to_vec();
    let free_empty = {
        let mut s = Store::open(
            MemDevice::from_image(&base).unwrap(),
            None,
            cipher(encrypted),
        )
        .unwrap();
        s.map().checkpoint().unwrap();
        free_blocks(&mut s)
    };
    let mut dev = FaultDevice::new(&base).unwrap();
    dev.record();
    let mut s = Store::open(dev, None, cipher(encrypted)).unwrap();
    // Per block: (operation number, tag).
    let mut history: Vec<Vec<(u64, u64)>> = vec![vec![(0, 0)]; span as usize];
    // (device writes completed when a flush returned, its operation number).
    let mut flushes: Vec<(u64, u64)> = vec![(0, 0)];
    let mut rng = Rng(0x1234_5678_9abc_def1 ^ encrypted as u64);
    let mut tag = 1;
    for op in 1..=ops {
        let lba = rng.below(span - 8);
        let len = 1 + rng.below(8);
        match rng.below(8) {
            0 => {
                s.discard(lba, len).unwrap();
                (lba..lba + len).for_each(|b| history[b as usize].push((op, 0)));
            }
            1 | 2 => {
                s.flush().unwrap();
                flushes.push((s.map().device().writes(), op));
            }
            _ => {
                let tags: Vec<u64> = (0..len).map(|i| tag + i).collect();
                tag += len;
                write_tags(&mut s, lba, &tags);
                (0..len).for_each(|i| history[(lba + i) as usize].push((op, tags[i as usize])));
            }
        }
    }
    assert!(
        s.stats().checkpoints > 0,
        "the workload must cross checkpoints"
    );
    let log = s.map().device().take_log();
    let mut tried = 0;
    for cut in 0.. {
        let mode = [
            Survivors::None,
            Survivors::All,
            Survivors::Random(cut as u64),
        ][cut % 3];
        let Some(img) = image_after_cut(&base, &log, cut, mode, cut % 9).unwrap() else {
            break;
        };
        tried += 1;
        let what = format!("encrypted {encrypted} cut {cut}");
        let mut s = Store::open(img, None, cipher(encrypted))
            .unwrap_or_else(|e| panic!("{what}: open: {e}"));
        let got = read_tags(&mut s, 0, span, &what);
        // The last flush that completed before write `cut` started.
        let durable = flushes
            .iter()
            .filter(|&&(w, _)| w <= cut as u64)
            .map(|&(_, op)| op)
            .max()
            .unwrap_or(0);
        for (b, h) in history.iter().enumerate() {
            // Values the block may hold: the last one written before that
            // flush, or any written later (before the cut).
            let first = h.iter().rposition(|&(op, _)| op <= durable).unwrap_or(0);
            let ok = h[first..].iter().any(|&(_, t)| t == got[b]);
            assert!(
                ok,
                "{what}: block {b} holds tag {} (history {h:?}, durable at {durable})",
                got[b]
            );
        }
        // Recovery kept the space accounting exact.
        assert_no_leak(&mut s, free_empty, &what);
    }
    assert!(tried > 100, "the workload made too few writes: {tried}");
    eprintln!("store crash points tried (encrypted {encrypted}): {tried}, failures: 0");
}

/// Three capacity devices with a 2+1 stripe store of 4-block chunks.
fn stripes() -> StripeStore<MemDevice> {
    let devs = (0..3)
        .map(|_| MemDevice::new(1024).unwrap())
        .collect::<Vec<_>>();
    let mut kdevs = vtier_engine::kcompat::KVec::new();
    for d in devs {
        kdevs.push(d, vtier_engine::kcompat::GFP_KERNEL).unwrap();
    }
    StripeStore::format(kdevs, &STRIPE_OPTS).unwrap()
}

/// The capacity tier of these tests: 2+1 stripes of 4-block chunks.
const STRIPE_OPTS: StripeOptions = StripeOptions {
    uuid: [7; 16],
    k: 2,
    m: 1,
    chunk_blocks: 4,
    area_start: 16,
};

fn reopen_stripes(st: StripeStore<MemDevice>) -> StripeStore<MemDevice> {
    let members = st.into_members();
    StripeStore::open(members, 16, &[7; 16], 8).unwrap()
}

#[test]
fn destaged_ciphertext_moves_byte_for_byte_without_the_cipher() {
    let dev = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true))
        .unwrap()
        .close()
        .unwrap()
        .0;
    let mut s = Store::open(dev, Some(stripes()), cipher(true)).unwrap();
    let tags: Vec<u64> = (1..=20).collect();
    write_tags(&mut s, 100, &tags);
    write_tags(&mut s, 300, &[900, 901, 902]);
    s.flush().unwrap();
    let before = s.stats();
    let moved = s.destage(100).unwrap();
    let after = s.stats();
    assert_eq!(moved, 23, "every block on the performance tier moved");
    assert_eq!(
        after.cipher_calls, before.cipher_calls,
        "the move called the cipher"
    );
    assert!(after.destaged_stripes >= 3);
    // The stripes hold exactly the ciphertext the fixed tweak gives.
    let xts = SoftXts::new(&KEY).unwrap();
    // Logical block 105 holds tag 6.
    let mut want = vec![0u8; BLOCK_SIZE];
    fill(6, &mut want);
    xts.encrypt_unit(&mut want, &TWEAK).unwrap();
    let st = s.stripes().unwrap();
    let per = st.geometry().data_bytes();
    let mut found = 0;
    for id in 0..64u64 {
        let mut buf = vec![0u8; per];
        let r = st.read_stripe(id, &mut buf);
        if r.is_ok() {
            found += buf
                .chunks_exact(BLOCK_SIZE)
                .filter(|b| *b == &want[..])
                .count();
        }
    }
    assert_eq!(
        found, 1,
        "logical block 105's ciphertext is in a stripe exactly once"
    );
    // Reads come from the stripes now, also with a member lost.
    assert_eq!(read_tags(&mut s, 100, 20, "from stripes"), tags);
    assert_eq!(s.stats().stripe_blocks_read, 20);
    s.stripes().unwrap().fail_member(1).unwrap();
    assert_eq!(read_tags(&mut s, 100, 20, "degraded"), tags);
    assert_eq!(read_tags(&mut s, 300, 3, "degraded"), vec![900, 901, 902]);
    assert!(s.stripes().unwrap().stats().degraded_reads > 0);
    // Nothing left on the performance tier to move.
    assert_eq!(s.destage(10).unwrap(), 0);
    // A clean shutdown and a reopen keep the map's stripe addresses.
    assert_eq!(
        s.stats().cipher_calls,
        after.cipher_calls + 43,
        "one decryption per block read"
    );
    let (dev, st) = s.close().unwrap();
    let mut s = Store::open(dev, Some(reopen_stripes(st.unwrap())), cipher(true)).unwrap();
    assert_eq!(read_tags(&mut s, 100, 20, "reopened"), tags);
    assert_eq!(read_tags(&mut s, 300, 3, "reopened"), vec![900, 901, 902]);
}

#[test]
fn a_full_performance_tier_destages_on_its_own() {
    let dev = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true))
        .unwrap()
        .close()
        .unwrap()
        .0;
    let mut s = Store::open(dev, Some(stripes()), cipher(true)).unwrap();
    let n = s.nr_lbas();
    let mut model = vec![0u64; n as usize];
    let mut rng = Rng(77);
    let mut tag = 1;
    // Every logical block written once, one block at a time (a header
    // each), then some again: more than the performance tier holds
    // without destaging.
    write_whole_device(&mut s, 1, &mut tag, &mut model);
    for _ in 0..n / 12 {
        let lba = rng.below(n - 8);
        let len = 1 + rng.below(8);
        let t: Vec<u64> = (0..len).map(|i| tag + i).collect();
        tag += len;
        write_tags(&mut s, lba, &t);
        model[lba as usize..(lba + len) as usize].copy_from_slice(&t);
    }
    let st = s.stats();
    assert!(st.destaged_blocks > 0, "nothing was destaged");
    assert_eq!(read_tags(&mut s, 0, n, "after"), model);
    let (dev, stripes) = s.close().unwrap();
    let mut s = Store::open(dev, Some(reopen_stripes(stripes.unwrap())), cipher(true)).unwrap();
    assert_eq!(read_tags(&mut s, 0, n, "reopened"), model);
    eprintln!(
        "destage: {} of {} blocks written went to {} stripes",
        st.destaged_blocks, st.blocks_written, st.destaged_stripes
    );
}

#[test]
fn a_device_cut_into_single_free_blocks_still_takes_writes() {
    // Two-block entries (header, data, data) fill three fifths of the
    // device; overwriting every second logical block with one-block
    // entries (header + data, two blocks each) uses most of the rest and
    // frees only single blocks in the middle of the old entries: no two
    // free blocks are next to each other any more. A write must then go
    // without a header (or split) instead of failing for want of a run.
    let mut s = Store::format(MemDevice::new(4096).unwrap(), &opts(true), cipher(true)).unwrap();
    s.map().checkpoint().unwrap();
    let free_empty = free_blocks(&mut s);
    let n = s.nr_lbas() & !1;
    let mut model = vec![0u64; n as usize];
    let mut tag = 1;
    let mut put = |s: &mut Store<MemDevice, SoftXts>, lba: u64, len: u64, model: &mut Vec<u64>| {
        let t: Vec<u64> = (0..len).map(|i| tag + i).collect();
        tag += len;
        write_tags(s, lba, &t);
        model[lba as usize..(lba + len) as usize].copy_from_slice(&t);
    };
    for lba in (0..n).step_by(2) {
        put(&mut s, lba, 2, &mut model);
    }
    for lba in (1..n).step_by(2) {
        put(&mut s, lba, 1, &mut model);
    }
    s.map().checkpoint().unwrap();
    for lba in (0..n).step_by(2) {
        put(&mut s, lba, 1, &mut model);
    }
    put(&mut s, 0, 16, &mut model);
    assert_eq!(read_tags(&mut s, 0, n, "after"), model);
    let dev = s.close().unwrap().0;
    let mut s = Store::open(dev, None, cipher(true)).unwrap();
    assert_eq!(read_tags(&mut s, 0, n, "reopened"), model);
    assert_no_leak(&mut s, free_empty, "after");
}

#[test]
fn random_overwrites_of_a_full_device_never_run_out_of_space() {
    // Sequential 256-block entries fill the device; 4 KiB overwrites then
    // free single blocks inside them, which no two-block entry fits: the
    // store must place such writes without a header rather than fail.
    let mut s = Store::format(MemDevice::new(4096).unwrap(), &opts(true), cipher(true)).unwrap();
    s.map().checkpoint().unwrap();
    let free_empty = free_blocks(&mut s);
    let n = s.nr_lbas();
    let mut model = vec![0u64; n as usize];
    let mut tag = 1;
    write_whole_device(&mut s, 256, &mut tag, &mut model);
    let mut rng = Rng(99);
    for i in 0..4 * n {
        let lba = rng.below(n);
        write_tags(&mut s, lba, &[tag]);
        model[lba as usize] = tag;
        tag += 1;
        if i % 997 == 0 {
            // Now and then a longer write, which may have to be split.
            let lba = rng.below(n - 64);
            let t: Vec<u64> = (0..64).map(|i| tag + i).collect();
            tag += 64;
            write_tags(&mut s, lba, &t);
            model[lba as usize..lba as usize + 64].copy_from_slice(&t);
        }
    }
    assert_eq!(read_tags(&mut s, 0, n, "after overwrites"), model);
    let dev = s.close().unwrap().0;
    let mut s = Store::open(dev, None, cipher(true)).unwrap();
    assert_eq!(read_tags(&mut s, 0, n, "reopened"), model);
    assert_no_leak(&mut s, free_empty, "after overwrites");
}

/// A fresh encrypted volume with the 2+1 capacity tier of [`stripes`].
fn with_stripes() -> Store<MemDevice, SoftXts> {
    let dev = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true))
        .unwrap()
        .close()
        .unwrap()
        .0;
    Store::open(dev, Some(stripes()), cipher(true)).unwrap()
}

fn close_and_reopen(s: Store<MemDevice, SoftXts>) -> Store<MemDevice, SoftXts> {
    let (dev, st) = s.close().unwrap();
    Store::open(dev, Some(reopen_stripes(st.unwrap())), cipher(true)).unwrap()
}

#[test]
fn overwritten_and_discarded_stripes_are_freed_once_the_map_is_durable() {
    let mut s = with_stripes();
    assert!(s.reclaims_stripes());
    let empty = s.stripes().unwrap().free_stripes();
    let tags: Vec<u64> = (1..=64).collect();
    write_tags(&mut s, 0, &tags);
    s.flush().unwrap();
    assert_eq!(s.destage(100).unwrap(), 64);
    let used = empty - s.stripes().unwrap().free_stripes();
    assert_eq!(used, 8, "64 blocks in 2+1 stripes of 8 data blocks");
    // Overwrite the first 32 blocks: four stripes hold nothing live, but
    // until a flush the map that says so is not durable, and they stay.
    let new: Vec<u64> = (1001..=1032).collect();
    write_tags(&mut s, 0, &new);
    assert_eq!(
        s.stats().stripes_reclaimed,
        0,
        "freed before the map was durable"
    );
    s.flush().unwrap();
    assert_eq!(s.stats().stripes_reclaimed, 4);
    // Discard half of a stripe: it keeps its other half.
    s.discard(32, 4).unwrap();
    s.flush().unwrap();
    assert_eq!(s.stats().stripes_reclaimed, 4);
    let mut want = new.clone();
    want.extend_from_slice(&[0; 4]);
    want.extend_from_slice(&tags[36..]);
    assert_eq!(
        read_tags(&mut s, 0, 64, "after overwrite and discard"),
        want
    );
    let mut s = close_and_reopen(s);
    // Durable: four stripes back, the others still hold their data.
    assert_eq!(s.stripes().unwrap().free_stripes(), empty - 4);
    assert_eq!(
        s.stats().stripes_reclaimed,
        0,
        "nothing left to free at open"
    );
    assert_eq!(read_tags(&mut s, 0, 64, "reopened"), want);
    // Discard everything on the capacity tier: every stripe comes back.
    s.discard(32, 32).unwrap();
    s.flush().unwrap();
    assert_eq!(s.stats().stripes_reclaimed, 4);
    let mut s = close_and_reopen(s);
    assert_eq!(s.stripes().unwrap().free_stripes(), empty);
    assert_eq!(read_tags(&mut s, 0, 32, "the overwrites"), new);
    assert_eq!(s.stats().stripe_count_errors, 0);
    assert_eq!(s.stats().stripe_free_errors, 0);
    // Without a capacity tier there is nothing to count.
    let (dev, _) = s.close().unwrap();
    assert!(!Store::open(dev, None, cipher(true))
        .unwrap()
        .reclaims_stripes());
}

#[test]
fn a_stripe_no_map_points_at_is_freed_when_the_volume_opens() {
    // What a crash between a destage's stripe commit and its map commit
    // leaves: an allocated stripe nothing points at.
    let (dev, st) = with_stripes().close().unwrap();
    let mut st = reopen_stripes(st.unwrap());
    let empty = st.free_stripes();
    let data = vec![0x5a; st.geometry().data_bytes()];
    let orphan = st.write_stripe(&data).unwrap();
    st.commit().unwrap();
    assert_eq!(st.free_stripes(), empty - 1);
    let s = Store::open(dev, Some(st), cipher(true)).unwrap();
    assert_eq!(s.stats().stripes_reclaimed, 1);
    let (dev, st) = s.close().unwrap();
    let mut st = reopen_stripes(st.unwrap());
    assert_eq!(st.free_stripes(), empty);
    assert!(!st.is_allocated(orphan).unwrap());
    // A stripe the map does point at is kept.
    let mut s = Store::open(dev, Some(st), cipher(true)).unwrap();
    write_tags(&mut s, 7, &[77]);
    s.flush().unwrap();
    assert_eq!(s.destage(1).unwrap(), 1);
    let mut s = close_and_reopen(s);
    assert_eq!(s.stats().stripes_reclaimed, 0);
    assert_eq!(read_tags(&mut s, 7, 1, "kept"), vec![77]);
}

/// A volume whose capacity tier (2+1, 4-block chunks) has members of
/// `blocks` blocks: smaller than the device for small `blocks`.
fn with_small_tier(blocks: u64) -> Store<MemDevice, SoftXts> {
    let mut kdevs = vtier_engine::kcompat::KVec::new();
    for _ in 0..3 {
        kdevs
            .push(
                MemDevice::new(blocks).unwrap(),
                vtier_engine::kcompat::GFP_KERNEL,
            )
            .unwrap();
    }
    let st = StripeStore::format(kdevs, &STRIPE_OPTS).unwrap();
    let dev = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true))
        .unwrap()
        .close()
        .unwrap()
        .0;
    Store::open(dev, Some(st), cipher(true)).unwrap()
}

#[test]
fn a_full_capacity_tier_gets_its_freed_stripes_back_while_it_runs() {
    // A tier smaller than the device, filled to its reserve, then all of
    // it overwritten: the frees wait for the tier's next commit, and the
    // next destage must have them.
    let mut s = with_small_tier(96);
    let stripes = s.stripes().unwrap().free_stripes();
    let per = s.stripes().unwrap().geometry().data_blocks();
    let usable = stripes - COMPACT_RESERVE;
    let n = usable * per;
    assert!(usable > 2 && n < s.nr_lbas(), "{stripes} stripes of {per}");
    let old: Vec<u64> = (1..=n).collect();
    write_tags(&mut s, 0, &old);
    s.flush().unwrap();
    assert_eq!(s.destage(1000).unwrap(), n);
    assert_eq!(s.stripes().unwrap().free_stripes(), COMPACT_RESERVE);
    // Destaging never takes the reserve.
    write_tags(&mut s, n, &[7]);
    assert_eq!(s.destage(1000).unwrap(), 0, "took the reserve");
    let new: Vec<u64> = (1001..=1000 + n).collect();
    write_tags(&mut s, 0, &new);
    s.flush().unwrap();
    assert_eq!(s.stats().stripes_reclaimed, usable);
    // Every stripe but the reserve again: one block of the n + 1 stays
    // on the performance tier.
    assert_eq!(
        s.destage(1000).unwrap(),
        n,
        "the freed stripes were not given back"
    );
    assert_eq!(s.stripes().unwrap().free_stripes(), COMPACT_RESERVE);
    assert_eq!(read_tags(&mut s, 0, n, "destaged again"), new);
    let mut s = close_and_reopen(s);
    assert_eq!(read_tags(&mut s, 0, n, "reopened"), new);
    assert_eq!(read_tags(&mut s, n, 1, "reopened"), [7]);
    assert_eq!(s.stats().stripe_free_errors, 0);
    assert_eq!(s.stats().compacted_stripes, 0, "nothing to compact");
}

#[test]
fn random_overwrites_never_fill_the_tier_with_partly_dead_stripes() {
    // Single-block overwrites all over a device already on the capacity
    // tier leave every stripe partly live; without compaction the tier
    // ran out after about one and a half overwrites of the device.
    let mut s = with_stripes();
    let n = s.nr_lbas();
    let stripes = s.stripes().unwrap().free_stripes();
    let mut tag = 1;
    let mut model = vec![0u64; n as usize];
    write_whole_device(&mut s, 8, &mut tag, &mut model);
    s.flush().unwrap();
    s.destage(1000).unwrap();
    let mut rng = Rng(5);
    for round in 0..12 {
        for _ in 0..n / 2 {
            let lba = rng.below(n);
            write_tags(&mut s, lba, &[tag]);
            model[lba as usize] = tag;
            tag += 1;
        }
        s.flush().unwrap();
        s.destage(1000)
            .unwrap_or_else(|e| panic!("round {round}: destage: {e}"));
        assert_eq!(read_tags(&mut s, 0, n, "round"), model, "round {round}");
    }
    let st = s.stats();
    assert!(st.compacted_stripes > 0, "never compacted: {st:?}");
    assert!(
        st.destaged_blocks > 3 * stripes * 4,
        "the rounds moved only {} blocks",
        st.destaged_blocks
    );
    assert_eq!(st.stripe_count_errors + st.stripe_free_errors, 0);
    let mut s = close_and_reopen(s);
    assert_eq!(read_tags(&mut s, 0, n, "reopened"), model);
    assert_eq!(s.stats().stripes_reclaimed, 0, "a stripe leaked");
    eprintln!(
        "random overwrites: {} blocks destaged into a tier of {stripes} stripes, {} stripes compacted ({} blocks moved), {} freed",
        st.destaged_blocks, st.compacted_stripes, st.compacted_blocks, st.stripes_reclaimed
    );
}

#[test]
fn a_compaction_that_cannot_read_its_stripes_leaves_them_and_compacts_others() {
    let sh: Rc<Shared> = Shared::new();
    let perf = blank(&sh, 2048);
    let perf = Store::format(perf, &opts(true), cipher(true))
        .unwrap()
        .close()
        .unwrap()
        .0;
    let mut devs = vtier_engine::kcompat::KVec::new();
    for _ in 0..3 {
        devs.push(blank(&sh, 96), vtier_engine::kcompat::GFP_KERNEL)
            .unwrap();
    }
    let ids: Vec<usize> = devs.iter().map(|d| d.id).collect();
    let st = StripeStore::format(devs, &STRIPE_OPTS).unwrap();
    let mut s = Store::open(perf, Some(st), cipher(true)).unwrap();
    let per = s.stripes().unwrap().geometry().data_blocks();
    let usable = s.stripes().unwrap().free_stripes() - COMPACT_RESERVE;
    let n = usable * per;
    let mut model: Vec<u64> = (1..=n).collect();
    write_tags(&mut s, 0, &model);
    s.flush().unwrap();
    assert_eq!(s.destage(1000).unwrap(), n);
    // Half of every stripe overwritten: each keeps its second chunk live,
    // and the new blocks wait on the performance tier.
    for i in 0..usable {
        let new: Vec<u64> = (0..per / 2).map(|j| 10_000 + i * per + j).collect();
        write_tags(&mut s, i * per, &new);
        model[(i * per) as usize..(i * per + per / 2) as usize].copy_from_slice(&new);
    }
    s.flush().unwrap();
    // Stripe 0 (LBAs 0..8, destaged first): its second data chunk and its
    // parity read back corrupt, so its live half cannot be read at all.
    let geom = *s.stripes().unwrap().geometry();
    for j in [1, 2] {
        let (member, block) = geom.chunk_location(0, j).unwrap();
        sh.flips.borrow_mut().insert((ids[member], block + 1));
    }
    let lost = per / 2..per;
    let mut buf = vec![0u8; BLOCK_SIZE];
    assert!(
        s.read(lost.start, &mut buf).is_err(),
        "stripe 0 still readable"
    );
    // Destaging the new blocks needs room: the emptiest stripes are 0 and
    // 1, whose compaction fails; the others make the room.
    // (Not all of them: stripes 0 and 1 keep their space, and so the
    // tier fills up again before the last new blocks fit.)
    let moved = s.destage(1000).unwrap();
    let st = s.stats();
    assert!(moved >= 4 * per, "only {moved} blocks destaged: {st:?}");
    assert_eq!(st.compaction_errors, 1, "{st:?}");
    assert!(st.compacted_stripes >= 4, "{st:?}");
    assert_eq!(s.destage(1000).unwrap(), 0, "the tier is full of live data");
    assert_eq!(
        s.stats().compaction_errors,
        1,
        "stripes 0 and 1 tried again"
    );
    for lba in 0..n {
        let r = s.read(lba, &mut buf);
        if lost.contains(&lba) {
            assert!(r.is_err(), "lba {lba} of the unreadable stripe read");
        } else {
            r.unwrap_or_else(|e| panic!("lba {lba}: {e}"));
            let mut want = vec![0u8; BLOCK_SIZE];
            fill(model[lba as usize], &mut want);
            assert!(buf == want, "lba {lba}");
        }
    }
}

#[test]
fn rewriting_the_device_many_times_never_runs_out_of_stripes() {
    // The capacity tier holds about three times what the device exports:
    // without freeing overwritten stripes, the fifth pass would not fit.
    let mut s = with_stripes();
    let n = s.nr_lbas();
    let stripes = s.stripes().unwrap().free_stripes();
    let mut tag = 1;
    let mut model = vec![0u64; n as usize];
    for pass in 0..8 {
        write_whole_device(&mut s, 8, &mut tag, &mut model);
        s.flush().unwrap();
        s.destage(1000).unwrap();
        assert_eq!(read_tags(&mut s, 0, n, "pass"), model, "pass {pass}");
    }
    let st = s.stats();
    assert!(
        st.destaged_blocks > 2 * stripes * 8,
        "the passes moved only {} blocks",
        st.destaged_blocks
    );
    assert!(
        st.stripes_reclaimed > stripes,
        "only {} stripes freed",
        st.stripes_reclaimed
    );
    assert_eq!(st.stripe_count_errors, 0);
    let mut s = close_and_reopen(s);
    assert_eq!(read_tags(&mut s, 0, n, "reopened"), model);
    eprintln!(
        "rewrites: {} blocks destaged into a tier of {} stripes, {} stripes freed",
        st.destaged_blocks, stripes, st.stripes_reclaimed
    );
}

/// What [`tiered_workload`] did before the power went.
struct Tiered {
    /// Per logical block: (operation number, tag) of every write and
    /// discard (tag 0).
    history: Vec<Vec<(u64, u64)>>,
    /// (writes over every disk completed when a flush returned, its
    /// operation number).
    flushes: Vec<(u64, u64)>,
    /// The performance disk and the capacity members, as the cut left them.
    perf: Disk,
    members: Vec<Disk>,
    /// Global writes when the workload started (format and open done).
    start: u64,
    stats: vtier_engine::data::store::DataStats,
}

/// The volume and workload of a tiered crash harness.
#[derive(Copy, Clone)]
struct Shape {
    /// Blocks of each of the three capacity members.
    member_blocks: u64,
    /// The capacity tier's chunks (2+1 stripes of `2 * chunk_blocks` data
    /// blocks).
    chunk_blocks: u32,
    /// Logical blocks the workload touches.
    span: u64,
    /// Longest write or discard, in blocks.
    max_len: u64,
    /// Operations.
    ops: u64,
}

/// Small stripes: destage, reclamation and compaction of 8-block stripes.
const SMALL: Shape = Shape {
    member_blocks: 256,
    chunk_blocks: 4,
    span: 64,
    max_len: 8,
    ops: 120,
};

impl Shape {
    fn stripe_opts(&self) -> StripeOptions {
        StripeOptions {
            chunk_blocks: self.chunk_blocks,
            ..STRIPE_OPTS
        }
    }
}

/// Writes, overwrites, discards, flushes and destages on a volume whose
/// performance disk and three capacity members share one power supply,
/// cut at global write `cut` (never for `None`); stops at the first error
/// (the power is gone).
fn tiered_workload(cut: Option<u64>, shape: Shape) -> Tiered {
    let sh: Rc<Shared> = Shared::new();
    let perf = blank(&sh, 1024);
    let s = Store::format(perf, &opts(true), cipher(true)).unwrap();
    let perf = s.close().unwrap().0;
    let mut devs = vtier_engine::kcompat::KVec::new();
    for _ in 0..3 {
        devs.push(
            blank(&sh, shape.member_blocks),
            vtier_engine::kcompat::GFP_KERNEL,
        )
        .unwrap();
    }
    let st = StripeStore::format(devs, &shape.stripe_opts()).unwrap();
    let mut s = Store::open(perf, Some(st), cipher(true)).unwrap();
    let start = sh.writes.get();
    if let Some(c) = cut {
        sh.cut_at.set(Some(start + c));
        sh.torn.set((c % 9) as usize);
    }
    let mut history: Vec<Vec<(u64, u64)>> = vec![vec![(0, 0)]; shape.span as usize];
    let mut flushes = vec![(start, 0)];
    let mut rng = Rng(0x7133_d00d);
    let mut tag = 1;
    for op in 1..=shape.ops {
        let lba = rng.below(shape.span - shape.max_len);
        let len = 1 + rng.below(shape.max_len);
        let r = match rng.below(10) {
            0 => s.discard(lba, len).map(|()| {
                (lba..lba + len).for_each(|b| history[b as usize].push((op, 0)));
            }),
            1 | 2 => s.flush().map(|()| flushes.push((sh.writes.get(), op))),
            3 | 4 => s.destage(2).map(|_| ()),
            _ => {
                let tags: Vec<u64> = (0..len).map(|i| tag + i).collect();
                tag += len;
                let mut buf = vec![0u8; tags.len() * BLOCK_SIZE];
                for (t, b) in tags.iter().zip(buf.chunks_exact_mut(BLOCK_SIZE)) {
                    fill(*t, b);
                }
                s.write(lba, &mut buf).map(|()| {
                    (0..len).for_each(|i| history[(lba + i) as usize].push((op, tags[i as usize])));
                })
            }
        };
        if r.is_err() {
            assert!(sh.dead.get(), "op {op} failed with the power on: {r:?}");
            break;
        }
    }
    let stats = s.stats();
    let (perf, st) = s.into_devices();
    let mut kv = st.unwrap().into_members();
    let mut members = Vec::new();
    while let Some(d) = kv.pop() {
        members.push(d.unwrap());
    }
    members.reverse();
    Tiered {
        history,
        flushes,
        perf,
        members,
        start,
        stats,
    }
}

#[test]
fn every_crash_point_of_a_tiered_volume_keeps_what_a_flush_acknowledged() {
    // Stripes are written, destaged into, overwritten, freed and reused;
    // the power is cut at every write over all four disks. Whatever the
    // map says after recovery must read back as what the flushes
    // acknowledged: a stripe freed before the map that dropped it was
    // durable would be reused and read back as other data.
    let full = tiered_workload(None, SMALL);
    assert!(
        full.stats.destaged_stripes > 10,
        "too few destages: {:?}",
        full.stats
    );
    assert!(
        full.stats.stripes_reclaimed > 5,
        "too few stripes freed: {:?}",
        full.stats
    );
    let tried = every_cut_of_tiered(&full, SMALL);
    eprintln!(
        "tiered crash points tried: {tried}, failures: 0 ({} stripes destaged, {} freed in the full run)",
        full.stats.destaged_stripes, full.stats.stripes_reclaimed
    );
}

#[test]
fn every_crash_point_of_a_compacting_tier_keeps_what_a_flush_acknowledged() {
    // The same workload on a capacity tier too small to hold it without
    // compaction: live blocks move between stripes, and the emptied ones
    // are freed and reused, with the power cut at every write.
    let compacting = Shape {
        member_blocks: 80,
        ..SMALL
    };
    let full = tiered_workload(None, compacting);
    assert!(
        full.stats.compacted_stripes > 2,
        "too few compactions: {:?}",
        full.stats
    );
    let tried = every_cut_of_tiered(&full, compacting);
    eprintln!(
        "compacting tier crash points tried: {tried}, failures: 0 ({} stripes destaged, {} compacted, {} freed in the full run)",
        full.stats.destaged_stripes, full.stats.compacted_stripes, full.stats.stripes_reclaimed
    );
}

#[test]
fn every_crash_point_of_many_transactions_per_stripe_keeps_what_a_flush_acknowledged() {
    // Stripes of 96 data blocks filled with single-block extents: a
    // destage or compaction repoints more pieces than one transaction
    // takes, in several; and a tier with few stripes, so that compaction
    // tops a victim's stripe up with part of a donor. The power is cut at
    // every write, between those transactions too.
    let big = Shape {
        member_blocks: 420,
        chunk_blocks: 48,
        span: 240,
        max_len: 2,
        ops: 260,
    };
    let full = tiered_workload(None, big);
    eprintln!("many transactions per stripe, full run: {:?}", full.stats);
    assert!(
        full.stats.destaged_blocks > 64 * 2,
        "too little destaged: {:?}",
        full.stats
    );
    let tried = every_cut_of_tiered(&full, big);
    eprintln!("many transactions per stripe: crash points tried: {tried}, failures: 0");
}

/// Cuts the power of [`tiered_workload`] at every write of `full`'s run,
/// recovers, and checks every block against what the flushes
/// acknowledged; returns the crash points tried.
fn every_cut_of_tiered(full: &Tiered, shape: Shape) -> u64 {
    let total = full.members[0].sh.writes.get() - full.start;
    let mut tried = 0;
    for cut in 0..total {
        let t = tiered_workload(Some(cut), shape);
        let what = format!("cut {cut} of {total}");
        let seed = cut.wrapping_mul(0x9e37_79b9);
        // Power back on.
        t.perf.sh.cut_at.set(None);
        t.perf.sh.dead.set(false);
        let perf = t.perf.after_power_loss(seed);
        let mut members = vtier_engine::kcompat::KVec::new();
        for (i, d) in t.members.iter().enumerate() {
            members
                .push(
                    Some(d.after_power_loss(seed ^ i as u64)),
                    vtier_engine::kcompat::GFP_KERNEL,
                )
                .unwrap();
        }
        let st = StripeStore::open(members, 16, &[7; 16], 8)
            .unwrap_or_else(|e| panic!("{what}: open the stripes: {e}"));
        let mut s = Store::open(perf, Some(st), cipher(true))
            .unwrap_or_else(|e| panic!("{what}: open: {e}"));
        let got = read_tags(&mut s, 0, shape.span, &what);
        let cut_global = t.start + cut;
        let durable = t
            .flushes
            .iter()
            .filter(|&&(w, _)| w <= cut_global)
            .map(|&(_, op)| op)
            .max()
            .unwrap_or(0);
        for (b, h) in t.history.iter().enumerate() {
            let first = h.iter().rposition(|&(op, _)| op <= durable).unwrap_or(0);
            assert!(
                h[first..].iter().any(|&(_, tag)| tag == got[b]),
                "{what}: block {b} holds tag {} (history {h:?}, durable at op {durable})",
                got[b]
            );
        }
        assert_eq!(s.stats().stripe_count_errors, 0, "{what}");
        tried += 1;
    }
    assert!(tried > 100, "too few crash points: {tried}");
    tried
}

/// A cipher that works until it is told to fail.
struct FailingCipher {
    inner: SoftXts,
    fail: std::cell::Cell<bool>,
}

impl XtsCipher for FailingCipher {
    fn encrypt_unit(&self, data: &mut [u8], tweak: &[u8; 16]) -> vtier_engine::error::Result {
        if self.fail.get() {
            return Err(Error::Io);
        }
        self.inner.encrypt_unit(data, tweak)
    }
    fn decrypt_unit(&self, data: &mut [u8], tweak: &[u8; 16]) -> vtier_engine::error::Result {
        self.inner.decrypt_unit(data, tweak)
    }
}

#[test]
fn a_write_whose_encryption_fails_gives_its_blocks_back() {
    let cipher = FailingCipher {
        inner: SoftXts::new(&KEY).unwrap(),
        fail: std::cell::Cell::new(false),
    };
    let mut s = Store::format(MemDevice::new(4096).unwrap(), &opts(true), Some(cipher)).unwrap();
    s.map().checkpoint().unwrap();
    let free_empty = {
        let (vol, _) = s.map().volume_and_device();
        vol.alloc().unwrap().free_blocks()
    };
    let mut buf = vec![0u8; 8 * BLOCK_SIZE];
    fill(1, &mut buf);
    s.write(0, &mut buf).unwrap();
    set_failing(&mut s, true);
    for lba in [8, 100, 3] {
        let mut buf = vec![0u8; 4 * BLOCK_SIZE];
        assert!(s.write(lba, &mut buf).is_err(), "encryption failed");
    }
    set_failing(&mut s, false);
    // Every block the failed writes took is free again once the volume is
    // empty and checkpointed: none leaked.
    let n = s.nr_lbas();
    s.discard(0, n).unwrap();
    s.map().checkpoint().unwrap();
    s.map().checkpoint().unwrap();
    let (vol, _) = s.map().volume_and_device();
    assert_eq!(
        vol.alloc().unwrap().free_blocks(),
        free_empty,
        "blocks leaked"
    );
    assert_eq!(s.stats().leaked_blocks, 0);
}

fn set_failing<D: BlockDevice>(s: &mut Store<D, FailingCipher>, fail: bool) {
    s.cipher().unwrap().fail.set(fail);
}

#[test]
fn a_write_that_fails_after_its_commit_keeps_its_blocks() {
    // The old copy of LBA 0 lies in bitmap page 0 (blocks 0..32768); the
    // rest of pages 0..5 is taken, so the overwrite lands in page 5. With
    // the allocator's smallest page cache, page 0 is no longer cached, and
    // freeing the old copy must read it: that read fails after the
    // overwrite's transaction has committed. The write reports the error,
    // but the map points at the new copy, whose blocks must never be given
    // back and reused.
    const BITS_PER_PAGE: u64 = 32_768;
    let fault = {
        let mut mem = MemDevice::new(6 * BITS_PER_PAGE).unwrap();
        Store::format(&mut mem, &opts(false), None::<SoftXts>)
            .unwrap()
            .close()
            .unwrap();
        FaultDevice::new(mem.image()).unwrap()
    };
    let mut s = Store::open(fault, None, None::<SoftXts>).unwrap();
    write_tags(&mut s, 0, &[1]);
    write_tags(&mut s, 1, &[2]);
    let data_start = s.map().superblock().data_start;
    let taken = |s: &mut Store<FaultDevice, SoftXts>, from: u64| {
        let (vol, dev) = s.map().volume_and_device();
        let alloc = vol.alloc().unwrap();
        let mut b = from;
        while alloc.is_allocated(dev, b).unwrap() {
            b += 1;
        }
        b
    };
    let free_from = taken(&mut s, data_start);
    {
        let (vol, dev) = s.map().volume_and_device();
        let alloc = vol.alloc().unwrap();
        alloc
            .reserve(dev, free_from, 5 * BITS_PER_PAGE - free_from)
            .unwrap();
        alloc.set_cache_pages(4);
    }
    s.map().checkpoint().unwrap();
    write_tags(&mut s, 2, &[3]);
    {
        let (_, dev) = s.map().volume_and_device();
        for b in 0..data_start {
            dev.fail_reads(b).unwrap();
        }
    }
    let mut buf = vec![0u8; BLOCK_SIZE];
    fill(4, &mut buf);
    assert!(
        s.write(0, &mut buf).is_err(),
        "freeing the displaced copy had to read a failing page"
    );
    {
        let (_, dev) = s.map().volume_and_device();
        dev.heal();
    }
    // Two checkpoints make every pending free effective: the blocks the
    // map points at must all still be allocated.
    s.map().checkpoint().unwrap();
    s.map().checkpoint().unwrap();
    for lba in 0..3 {
        let txn = s.map().begin().unwrap();
        let ext = s.map().lookup(&txn, lba, 1).unwrap().value.unwrap();
        s.map().abort(txn);
        let Location::Perf { block } = ext.paddr.location() else {
            panic!("LBA {lba} not on the performance tier");
        };
        let (vol, dev) = s.map().volume_and_device();
        let alloc = vol.alloc().unwrap();
        for b in block - 1..block + u64::from(ext.len) {
            assert!(
                alloc.is_allocated(dev, b).unwrap(),
                "LBA {lba}: block {b} of its entry was given back"
            );
        }
    }
    assert_eq!(
        read_tags(&mut s, 0, 3, "committed overwrite"),
        vec![4, 2, 3]
    );
}

#[test]
fn a_destage_relieves_the_performance_tier_until_it_is_short_again() {
    // Once the performance tier is short of free blocks, each destage moves
    // one stripe (8 blocks here) away; its blocks are free at the next
    // checkpoint, and count as free until then. Single-block writes take
    // two blocks each, so at most one destage per four writes is due, not
    // one per write.
    let mut s = with_stripes();
    let n = s.nr_lbas();
    let mut tag = 1;
    let mut lba = 0;
    while s.stats().destaged_stripes == 0 {
        write_tags(&mut s, lba % n, &[tag]);
        tag += 1;
        lba += 1;
    }
    let before = s.stats().destaged_stripes;
    let writes = 64;
    for i in 0..writes {
        write_tags(&mut s, (lba + i) % n, &[tag]);
        tag += 1;
    }
    let destaged = s.stats().destaged_stripes - before;
    assert!(
        destaged <= writes / 3,
        "{destaged} destages for {writes} single-block writes"
    );
}

#[test]
fn a_tiered_device_is_as_large_as_its_capacity_tier_and_can_always_be_overwritten() {
    // 2+1 stripes of 96 data blocks on three members: the device exports
    // what the stripes hold but for the compaction reserve, many times
    // the performance tier's own share. Written whole, then overwritten
    // one block at a time at random, twice over: stripes end up partly
    // live with more pieces than one transaction takes, every stripe
    // more than half live, and no write may ever fail for want of space.
    let opts_big = StripeOptions {
        chunk_blocks: 48,
        ..STRIPE_OPTS
    };
    let mut kdevs = vtier_engine::kcompat::KVec::new();
    for _ in 0..3 {
        kdevs
            .push(
                MemDevice::new(2048).unwrap(),
                vtier_engine::kcompat::GFP_KERNEL,
            )
            .unwrap();
    }
    let st = StripeStore::format(kdevs, &opts_big).unwrap();
    let geom = *st.geometry();
    let dev = Store::format(MemDevice::new(2048).unwrap(), &opts(true), cipher(true))
        .unwrap()
        .close()
        .unwrap()
        .0;
    let alone = {
        let s = Store::open(
            MemDevice::from_image(dev.image()).unwrap(),
            None,
            cipher(true),
        )
        .unwrap();
        s.nr_lbas()
    };
    let mut s = Store::open(dev, Some(st), cipher(true)).unwrap();
    let n = s.nr_lbas();
    let reserve = (geom.nr_stripes / vtier_engine::data::store::CAPACITY_RESERVE_DIV).max(2);
    assert_eq!(n, (geom.nr_stripes - reserve) * geom.data_blocks());
    assert!(
        n > 2 * alone,
        "{n} blocks exported, {alone} without the tier"
    );
    let mut model = vec![0u64; n as usize];
    let mut tag = 1;
    write_whole_device(&mut s, 32, &mut tag, &mut model);
    let mut rng = Rng(0x5eed);
    for _ in 0..2 * n {
        let lba = rng.below(n);
        write_tags(&mut s, lba, &[tag]);
        model[lba as usize] = tag;
        tag += 1;
    }
    let stats = s.stats();
    assert!(stats.compacted_stripes > 0, "nothing compacted: {stats:?}");
    assert!(
        stats.compacted_blocks > 64 * stats.compacted_stripes / 2,
        "{stats:?}"
    );
    assert_eq!(read_tags(&mut s, 0, n, "after overwrites"), model);
    let (dev, stripes) = s.close().unwrap();
    let members = stripes.unwrap().into_members();
    let st = StripeStore::open(members, 16, &[7; 16], 8).unwrap();
    let mut s = Store::open(dev, Some(st), cipher(true)).unwrap();
    assert_eq!(s.nr_lbas(), n);
    assert_eq!(read_tags(&mut s, 0, n, "reopened"), model);
    eprintln!(
        "tiered device of {n} blocks ({alone} without the tier): {} stripes destaged, {} compacted ({} blocks), {} freed",
        stats.destaged_stripes, stats.compacted_stripes, stats.compacted_blocks, stats.stripes_reclaimed
    );
}

#[test]
fn background_destaging_runs_between_the_watermarks() {
    use vtier_engine::data::store::Watermarks;
    assert_eq!(Watermarks::new(40, 60), Err(Error::InvalidArgument));
    assert_eq!(Watermarks::new(101, 50), Err(Error::InvalidArgument));
    assert_eq!(Watermarks::new(50, 50), Err(Error::InvalidArgument));
    let mut s = with_stripes();
    s.set_watermarks(Watermarks::new(30, 10).unwrap());
    let n = s.nr_lbas();
    let mut model = vec![0u64; n as usize];
    let mut tag = 1;
    let mut lba = 0;
    while !s.destage_wanted() {
        assert!(lba + 8 <= n, "never above the high watermark");
        let t: Vec<u64> = (0..8).map(|i| tag + i).collect();
        tag += 8;
        write_tags(&mut s, lba, &t);
        model[lba as usize..lba as usize + 8].copy_from_slice(&t);
        lba += 8;
    }
    assert!(s.perf_in_use().unwrap() >= 30);
    assert_eq!(s.stats().destaged_stripes, 0, "no writer had to destage");
    let mut steps = 0;
    while s.background_step().unwrap() {
        steps += 1;
        assert!(steps < 10_000, "background destaging never stops");
    }
    assert!(
        s.perf_in_use().unwrap() < 10,
        "stopped at {} % in use",
        s.perf_in_use().unwrap()
    );
    assert!(s.stats().background_destages > 10, "{:?}", s.stats());
    assert!(!s.destage_wanted());
    assert_eq!(read_tags(&mut s, 0, n, "after"), model);
    // Off: nothing is wanted however full the tier is.
    s.set_watermarks(Watermarks::new(0, 0).unwrap());
    let t: Vec<u64> = (0..n.min(800)).map(|i| tag + i).collect();
    write_tags(&mut s, 0, &t);
    assert!(!s.destage_wanted());
    assert!(!s.background_step().unwrap());
    let s = close_and_reopen(s);
    assert_eq!(s.nr_lbas(), n);
}
