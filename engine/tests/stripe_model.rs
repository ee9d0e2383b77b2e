// SPDX-License-Identifier: GPL-2.0

//! The stripe store against a reference model.
//!
//! - A property test runs random sequences of full-stripe writes, frees,
//!   commits, reads, member deaths (every I/O fails) and removals, latent
//!   corruption, replacements, rebuild steps, scrubs and power cycles (the
//!   unflushed writes of every member randomly kept or lost), and checks
//!   every read against a map of stripe id → data: a stripe that has at
//!   least `k` intact chunks on usable members must read back exactly; one
//!   that has not must be refused with an error, never read as other bytes.
//!   Prints `stripe harness: N sequences, D device losses, R rebuilds,
//!   C crashes, B bytes checked, 0 bytes lost`.
//! - A crash harness runs one workload (writes, a member death, degraded
//!   writes, frees, a replacement rebuilt in steps with writes in between,
//!   a scrub) with the power cut at every write in turn (torn, random
//!   survivors), then reopens: the store must be exactly the last or the
//!   in-flight commit, finish the rebuild, and then survive the loss of `m`
//!   more members with every stripe intact. Prints `stripe crash points
//!   tried: N, failures: 0`.

#[path = "support/stripe_disks.rs"]
mod stripe_disks;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use stripe_disks::{blank, from_image, Disk, Shared};
use vtier_engine::error::Error;
use vtier_engine::kcompat::{KVec, GFP_KERNEL};
use vtier_engine::stripe::member::MemberState;
use vtier_engine::stripe::store::{StripeOptions, StripeStore};

const AREA: u64 = 4;
const UUID: [u8; 16] = [0x17; 16];

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

#[derive(Clone, Debug)]
enum Op {
    Write(u64),
    Free(usize),
    Commit,
    Read(usize),
    Kill(usize),
    Remove(usize),
    Corrupt(usize, usize, u64),
    Replace(usize),
    Rebuild(u64),
    Scrub,
    PowerCycle(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u64>().prop_map(Op::Write),
        2 => any::<usize>().prop_map(Op::Free),
        3 => Just(Op::Commit),
        4 => any::<usize>().prop_map(Op::Read),
        1 => any::<usize>().prop_map(Op::Kill),
        1 => any::<usize>().prop_map(Op::Remove),
        2 => (any::<usize>(), any::<usize>(), any::<u64>())
            .prop_map(|(a, b, c)| Op::Corrupt(a, b, c)),
        2 => any::<usize>().prop_map(Op::Replace),
        3 => (1u64..16).prop_map(Op::Rebuild),
        1 => Just(Op::Scrub),
        1 => any::<u64>().prop_map(Op::PowerCycle),
    ]
}

#[derive(Default, Debug)]
struct Figures {
    sequences: u64,
    losses: u64,
    rebuilds: u64,
    crashes: u64,
    bytes_checked: u64,
    refused: u64,
}

/// The store under test and its model.
struct Harness {
    sh: Rc<Shared>,
    store: Option<StripeStore<Disk>>,
    k: usize,
    m: usize,
    disk_blocks: u64,
    /// Disk id of each member, `None` once removed.
    disk: Vec<Option<usize>>,
    /// Stripes readable now (written, not freed by a commit).
    live: BTreeMap<u64, Vec<u8>>,
    pending_free: BTreeSet<u64>,
    /// The stripes of the last commit.
    committed: BTreeMap<u64, Vec<u8>>,
    /// Chunks (stripe, index) known damaged: corrupted, or missing on a
    /// replacement, until rewritten.
    damaged: BTreeSet<(u64, usize)>,
}

impl Harness {
    fn new(sh: Rc<Shared>, k: u32, m: u32, n: usize, chunk: u32, slots: u64) -> Self {
        let disk_blocks = AREA + 16 + slots * (u64::from(chunk) + 1);
        let mut devs = KVec::new();
        let mut disk = Vec::new();
        for _ in 0..n {
            let d = blank(&sh, disk_blocks);
            disk.push(Some(d.id));
            devs.push(d, GFP_KERNEL).unwrap();
        }
        let opts = StripeOptions {
            uuid: UUID,
            k,
            m,
            chunk_blocks: chunk,
            area_start: AREA,
        };
        let store = StripeStore::format(devs, &opts).unwrap();
        Self {
            sh,
            store: Some(store),
            k: k as usize,
            m: m as usize,
            disk_blocks,
            disk,
            live: BTreeMap::new(),
            pending_free: BTreeSet::new(),
            committed: BTreeMap::new(),
            damaged: BTreeSet::new(),
        }
    }

    fn st(&mut self) -> &mut StripeStore<Disk> {
        self.store.as_mut().unwrap()
    }

    fn killed(&self, i: usize) -> bool {
        self.disk[i].is_none_or(|d| self.sh.killed.borrow().contains(&d))
    }

    /// Members lost now: failed, missing or being rebuilt per the store, or
    /// dead without the store knowing yet.
    fn lost(&mut self) -> usize {
        let n = self.disk.len();
        let states: Vec<_> = (0..n)
            .map(|i| self.st().member_stats(i).unwrap().state)
            .collect();
        (0..n)
            .filter(|&i| self.killed(i) || states[i] != MemberState::Ok)
            .count()
    }

    /// Whether chunk `j` of `s` can be read intact.
    fn available(&mut self, s: u64, j: usize) -> bool {
        let (i, _) = self.st().geometry().chunk_location(s, j).unwrap();
        let state = self.st().member_stats(i).unwrap().state;
        let cursor = self.st().rebuild_progress().done;
        let usable = match state {
            MemberState::Ok => true,
            MemberState::Rebuilding => s < cursor,
            _ => false,
        };
        usable && !self.killed(i) && !self.damaged.contains(&(s, j))
    }

    fn recoverable(&mut self, s: u64) -> bool {
        let w = self.k + self.m;
        (0..w).filter(|&j| self.available(s, j)).count() >= self.k
    }

    fn check_read(&mut self, s: u64, fig: &mut Figures) -> Result<(), TestCaseError> {
        let want = self.live[&s].clone();
        let expect_ok = self.recoverable(s);
        let mut got = vec![0u8; want.len()];
        match self.st().read_stripe(s, &mut got) {
            Ok(()) => {
                prop_assert!(got == want, "stripe {} read back other bytes", s);
                prop_assert!(
                    expect_ok,
                    "stripe {} read although the model has it lost",
                    s
                );
                fig.bytes_checked += want.len() as u64;
            }
            Err(Error::Corrupt { .. }) => {
                prop_assert!(
                    !expect_ok,
                    "stripe {} refused with at most m chunks lost",
                    s
                );
                fig.refused += 1;
            }
            Err(e) => prop_assert!(false, "stripe {}: {:?}", s, e),
        }
        Ok(())
    }

    /// Tells the store about members that died without it noticing.
    fn settle_kills(&mut self) {
        for i in 0..self.disk.len() {
            if self.killed(i) {
                self.st().fail_member(i).unwrap();
            }
        }
    }

    fn pick<T: Copy>(set: impl Iterator<Item = T>, x: usize) -> Option<T> {
        let v: Vec<T> = set.collect();
        (!v.is_empty()).then(|| v[x % v.len()])
    }

    fn step(&mut self, op: &Op, fig: &mut Figures) -> Result<(), TestCaseError> {
        let n = self.disk.len();
        match *op {
            Op::Write(seed) => {
                let ro = self.st().is_read_only();
                let data = pattern(seed, self.st().geometry().data_bytes());
                match self.st().write_stripe(&data) {
                    Ok(s) => {
                        prop_assert!(!ro);
                        prop_assert!(
                            !self.live.contains_key(&s),
                            "stripe {} reused while live",
                            s
                        );
                        self.damaged.retain(|&(x, _)| x != s);
                        self.live.insert(s, data);
                    }
                    Err(Error::ReadOnly) => prop_assert!(self.st().is_read_only()),
                    Err(Error::NoSpace) => {}
                    Err(e) => prop_assert!(false, "write: {:?}", e),
                }
            }
            Op::Free(x) => {
                let Some(s) = Self::pick(
                    self.live
                        .keys()
                        .copied()
                        .filter(|s| !self.pending_free.contains(s)),
                    x,
                ) else {
                    return Ok(());
                };
                match self.st().free_stripe(s) {
                    Ok(()) => {
                        self.pending_free.insert(s);
                    }
                    Err(Error::ReadOnly) => prop_assert!(self.st().is_read_only()),
                    Err(e) => prop_assert!(false, "free: {:?}", e),
                }
            }
            Op::Commit => match self.st().commit() {
                Ok(()) => {
                    for s in std::mem::take(&mut self.pending_free) {
                        self.live.remove(&s);
                    }
                    self.committed = self.live.clone();
                }
                Err(_) => prop_assert!(self.st().is_read_only()),
            },
            Op::Read(x) => {
                if let Some(s) = Self::pick(self.live.keys().copied(), x) {
                    self.check_read(s, fig)?;
                }
            }
            Op::Kill(i) | Op::Remove(i) => {
                let i = i % n;
                if self.lost() > self.m || self.killed(i) {
                    return Ok(());
                }
                fig.losses += 1;
                if matches!(op, Op::Kill(_)) {
                    let id = self.disk[i].unwrap();
                    self.sh.killed.borrow_mut().insert(id);
                } else {
                    self.st().remove_member(i).unwrap();
                    self.disk[i] = None;
                }
            }
            Op::Corrupt(x, j, off) => {
                let w = self.k + self.m;
                let Some(s) = Self::pick(self.live.keys().copied(), x) else {
                    return Ok(());
                };
                let j = j % w;
                let (i, block) = self.st().geometry().chunk_location(s, j).unwrap();
                let slot = self.st().geometry().slot_blocks();
                if let Some(id) = self.disk[i] {
                    self.sh.flips.borrow_mut().insert((id, block + off % slot));
                    self.damaged.insert((s, j));
                }
            }
            Op::Replace(i) => {
                let i = i % n;
                let state = self.st().member_stats(i).unwrap().state;
                if !matches!(state, MemberState::Failed | MemberState::Missing)
                    || self.st().rebuild_progress().member.is_some()
                {
                    return Ok(());
                }
                let d = blank(&self.sh, self.disk_blocks);
                let id = d.id;
                match self.st().replace_member(i, d) {
                    Ok(_) => {
                        self.disk[i] = Some(id);
                        let live: Vec<u64> = self.live.keys().copied().collect();
                        for s in live {
                            if let Some(j) = self.st().geometry().chunk_on(s, i) {
                                self.damaged.insert((s, j));
                            }
                        }
                    }
                    Err(Error::ReadOnly) => {}
                    Err(e) => prop_assert!(false, "replace: {:?}", e),
                }
            }
            Op::Rebuild(steps) => {
                let before = self.st().rebuild_progress();
                let Some(r) = before.member else {
                    return Ok(());
                };
                // The model decides recoverability before the step runs.
                let mut fixed = Vec::new();
                let end = (before.done + steps).min(before.total);
                for (&s, _) in self.live.clone().range(before.done..end) {
                    if let Some(j) = self.st().geometry().chunk_on(s, r) {
                        if self.recoverable(s) {
                            fixed.push((s, j));
                        }
                    }
                }
                match self.st().rebuild_step(steps) {
                    Ok(p) => {
                        for f in fixed {
                            self.damaged.remove(&f);
                        }
                        if p.member.is_none() {
                            fig.rebuilds += 1;
                        }
                    }
                    Err(Error::Io) | Err(Error::ReadOnly) => {}
                    Err(e) => prop_assert!(false, "rebuild: {:?}", e),
                }
            }
            Op::Scrub => {
                self.settle_kills();
                let repairs = !self.st().is_read_only();
                let mut fixed = Vec::new();
                let w = self.k + self.m;
                for s in self.live.keys().copied().collect::<Vec<_>>() {
                    if !repairs || !self.recoverable(s) {
                        continue;
                    }
                    for j in 0..w {
                        let (i, _) = self.st().geometry().chunk_location(s, j).unwrap();
                        let state = self.st().member_stats(i).unwrap().state;
                        let cursor = self.st().rebuild_progress().done;
                        let usable = state == MemberState::Ok
                            || (state == MemberState::Rebuilding && s < cursor);
                        if usable {
                            fixed.push((s, j));
                        }
                    }
                }
                loop {
                    match self.st().scrub_step(7) {
                        Ok(p) if p.done => break,
                        Ok(_) => {}
                        Err(e) => prop_assert!(false, "scrub: {:?}", e),
                    }
                }
                for f in fixed {
                    self.damaged.remove(&f);
                }
            }
            Op::PowerCycle(seed) => {
                fig.crashes += 1;
                let members = self.store.take().unwrap().into_members();
                let mut devs = KVec::new();
                for (i, d) in members.iter().enumerate() {
                    let d = d.as_ref().map(|d| d.after_power_loss(seed ^ i as u64));
                    devs.push(d, GFP_KERNEL).unwrap();
                }
                drop(members);
                match StripeStore::open(devs, AREA, &UUID, 8) {
                    Ok(s) => self.store = Some(s),
                    Err(e) => prop_assert!(false, "reopen: {:?}", e),
                }
                self.live = self.committed.clone();
                self.pending_free.clear();
            }
        }
        Ok(())
    }

    /// Every live stripe, checked; with at most `m` lost members and no
    /// damage, all of them must read.
    fn check_all(&mut self, fig: &mut Figures) -> Result<(), TestCaseError> {
        for s in self.live.keys().copied().collect::<Vec<_>>() {
            self.check_read(s, fig)?;
        }
        Ok(())
    }
}

#[test]
fn stripe_store_matches_the_model_through_losses_rebuilds_and_crashes() {
    let cases = std::env::var("VTIER_STRIPE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let fig = std::cell::RefCell::new(Figures::default());
    let geometry = prop_oneof![
        Just((2u32, 1u32)),
        Just((3, 1)),
        Just((2, 2)),
        Just((4, 2)),
        Just((3, 3)),
    ];
    let strategy = (
        geometry,
        0usize..3,
        1u32..3,
        proptest::collection::vec(op(), 10..80),
    );
    runner
        .run(&strategy, |((k, m), extra, chunk, ops)| {
            let mut f = Figures::default();
            let sh = Shared::new();
            let n = (k + m) as usize + extra;
            let mut h = Harness::new(sh, k, m, n, chunk, 10);
            for op in &ops {
                h.step(op, &mut f)?;
            }
            h.check_all(&mut f)?;
            let mut all = fig.borrow_mut();
            all.sequences += 1;
            all.losses += f.losses;
            all.rebuilds += f.rebuilds;
            all.crashes += f.crashes;
            all.bytes_checked += f.bytes_checked;
            all.refused += f.refused;
            Ok(())
        })
        .unwrap();
    let f = fig.into_inner();
    let line = format!(
        "stripe harness: {} sequences, {} device losses, {} rebuilds, {} crashes, {} bytes checked, {} reads refused (more than m chunks lost), 0 bytes lost",
        f.sequences, f.losses, f.rebuilds, f.crashes, f.bytes_checked, f.refused
    );
    println!("{line}");
    eprintln!("{line}");
    assert!(f.rebuilds > 0 && f.crashes > 0 && f.losses > 0);
}

/// The crash workload; records the stripes of each completed commit in
/// `states` and stops at the first error (the power cut).
fn workload(
    store: &mut StripeStore<Disk>,
    sh: &Rc<Shared>,
    states: &mut Vec<BTreeMap<u64, Vec<u8>>>,
) -> Result<(), Error> {
    let len = store.geometry().data_bytes();
    let mut live = BTreeMap::new();
    let mut seed = 0;
    let mut write = |store: &mut StripeStore<Disk>, live: &mut BTreeMap<u64, Vec<u8>>| {
        seed += 1;
        let data = pattern(seed, len);
        store.write_stripe(&data).map(|s| {
            live.insert(s, data);
        })
    };
    let commit =
        |store: &mut StripeStore<Disk>, live: &BTreeMap<u64, Vec<u8>>, states: &mut Vec<_>| {
            store.commit().map(|()| states.push(live.clone()))
        };
    for _ in 0..8 {
        write(store, &mut live)?;
    }
    commit(store, &live, states)?;
    sh.killed.borrow_mut().insert(3);
    for _ in 0..5 {
        write(store, &mut live)?;
    }
    let old: Vec<u64> = live.keys().copied().take(3).collect();
    for s in old {
        store.free_stripe(s)?;
        live.remove(&s);
    }
    commit(store, &live, states)?;
    if store.member_stats(3).unwrap().state != MemberState::Failed {
        return Err(Error::Io);
    }
    store.replace_member(3, blank(sh, store.geometry().member_blocks()))?;
    let mut steps = 0;
    while store.rebuild_progress().member.is_some() {
        store.rebuild_step(6)?;
        steps += 1;
        if steps == 2 {
            for _ in 0..3 {
                write(store, &mut live)?;
            }
            commit(store, &live, states)?;
        }
    }
    let first = *live.keys().next().unwrap();
    let (i, block) = store.geometry().chunk_location(first, 0).unwrap();
    sh.flips.borrow_mut().insert((i, block + 1));
    while !store.scrub_step(10)?.done {}
    for _ in 0..2 {
        write(store, &mut live)?;
    }
    let old: Vec<u64> = live.keys().copied().skip(2).take(2).collect();
    for s in old {
        store.free_stripe(s)?;
        live.remove(&s);
    }
    commit(store, &live, states)?;
    Ok(())
}

#[test]
fn stripe_store_recovers_from_a_power_cut_at_every_write() {
    let mut tried = 0;
    for (k, m, n, chunk) in [(4, 2, 7, 1), (2, 1, 4, 2), (3, 3, 6, 1)] {
        tried += power_cut_harness(k, m, n, chunk);
    }
    let line = format!("stripe crash points tried: {tried}, failures: 0");
    println!("{line}");
    eprintln!("{line}");
}

/// Runs the crash workload on a `k`+`m` store of `n` members with a power
/// cut at each of its writes; returns the number of cuts tried.
fn power_cut_harness(k: u32, m: u32, n: usize, chunk: u32) -> usize {
    let opts = StripeOptions {
        uuid: UUID,
        k,
        m,
        chunk_blocks: chunk,
        area_start: AREA,
    };
    // Room for the workload's 18 stripes.
    let slots = (18 * u64::from(k + m)).div_ceil(n as u64) + 1;
    let disk_blocks = AREA + 8 + slots * (u64::from(chunk) + 1);
    let base: Vec<Vec<u8>> = {
        let sh = Shared::new();
        let mut devs = KVec::new();
        for _ in 0..n {
            devs.push(blank(&sh, disk_blocks), GFP_KERNEL).unwrap();
        }
        let store = StripeStore::format(devs, &opts).unwrap();
        store
            .into_members()
            .iter()
            .map(|d| d.as_ref().unwrap().image().to_vec())
            .collect()
    };
    let start = |sh: &Rc<Shared>| {
        let mut devs = KVec::new();
        for img in &base {
            devs.push(Some(from_image(sh, img)), GFP_KERNEL).unwrap();
        }
        StripeStore::open(devs, AREA, &UUID, 8).unwrap()
    };
    // A clean run: how many writes, and the commits.
    let (total, clean) = {
        let sh = Shared::new();
        let mut store = start(&sh);
        let mut states = vec![BTreeMap::new()];
        workload(&mut store, &sh, &mut states).unwrap();
        assert_eq!(states.len(), 5);
        (sh.writes.get(), states)
    };
    {
        let sh = Shared::new();
        let mut store = start(&sh);
        let mut states = vec![BTreeMap::new()];
        workload(&mut store, &sh, &mut states).unwrap();
        assert_eq!(sh.writes.get(), total, "the workload is not deterministic");
    }
    let mut tried = 0;
    for cut in 0..total {
        let sh = Shared::new();
        let mut store = start(&sh);
        sh.cut_at.set(Some(cut));
        sh.torn.set((cut as usize * 7) % 17);
        let mut states = vec![BTreeMap::new()];
        let r = workload(&mut store, &sh, &mut states);
        // A commit may still succeed: a member took the header before the
        // power went.
        assert!(
            r.is_err() || sh.dead.get(),
            "{k}+{m} cut {cut}: no power cut"
        );
        let members = store.into_members();
        sh.dead.set(false);
        sh.cut_at.set(None);
        let mut devs = KVec::new();
        for d in members.iter() {
            devs.push(d.as_ref().map(|d| d.after_power_loss(cut)), GFP_KERNEL)
                .unwrap();
        }
        let mut store = StripeStore::open(devs, AREA, &UUID, 8)
            .unwrap_or_else(|e| panic!("{k}+{m} cut {cut}: reopen: {e:?}"));
        // Exactly the last commit, or the one in flight (the runs agree
        // up to the cut: the workload is deterministic).
        let nr = store.geometry().nr_stripes;
        let allocated: BTreeSet<u64> = (0..nr)
            .filter(|&s| store.is_allocated(s).unwrap())
            .collect();
        let done = states.len() - 1;
        assert_eq!(states[..], clean[..=done], "{k}+{m} cut {cut}");
        let state = clean[done..(done + 2).min(clean.len())]
            .iter()
            .find(|st| st.keys().copied().collect::<BTreeSet<_>>() == allocated)
            .unwrap_or_else(|| panic!("{k}+{m} cut {cut}: allocation matches no commit"))
            .clone();
        let read_all = |store: &mut StripeStore<Disk>, what: &str| {
            for (s, data) in &state {
                let mut got = vec![0u8; data.len()];
                store
                    .read_stripe(*s, &mut got)
                    .unwrap_or_else(|e| panic!("{k}+{m} cut {cut} {what}: stripe {s}: {e:?}"));
                assert!(&got == data, "{k}+{m} cut {cut} {what}: stripe {s} differs");
            }
        };
        read_all(&mut store, "after reopen");
        // Finish what the workload left: the replacement and its rebuild.
        if store.member_stats(3).unwrap().state != MemberState::Rebuilding
            && store.member_stats(3).unwrap().state != MemberState::Ok
        {
            let blocks = store.geometry().member_blocks();
            store.replace_member(3, blank(&sh, blocks)).unwrap();
        }
        while store.rebuild_progress().member.is_some() {
            store
                .rebuild_step(5)
                .unwrap_or_else(|e| panic!("{k}+{m} cut {cut}: rebuild: {e:?}"));
        }
        assert_eq!(store.lost(), 0, "{k}+{m} cut {cut}");
        // Redundancy is whole again: m more members may go. (Latent
        // corruption the workload planted and no scrub fixed would take one
        // more chunk of its stripe: it is lifted first.)
        sh.flips.borrow_mut().clear();
        let victims = (0..n).filter(|&i| i != 3).take(m as usize);
        sh.killed.borrow_mut().extend(victims);
        read_all(&mut store, "with m members dead after the rebuild");
        tried += 1;
    }
    assert!(tried > 100, "{k}+{m}: {tried} writes");
    tried
}
