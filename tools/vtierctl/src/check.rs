// SPDX-License-Identifier: GPL-2.0

//! `vtierctl check`: an offline consistency check of a volume that is not
//! powered, with the engine code the module runs.
//!
//! The members are opened read-only and every write the engine would make
//! (the WAL replay's checkpoint, freeing stripes nothing maps, scrub
//! repairs) lands in an overlay in memory: the check is a dry run and never
//! changes a member. It checks, in order:
//!
//! - both superblock copies of every member (a copy that does not decode is
//!   reported; one valid copy is enough to mount, so it is no error);
//! - that the capacity members belong to the volume and are each given once;
//! - the open itself: the WAL replayed after the last checkpoint, the
//!   allocation of every replayed extent, the stripe store's metadata;
//! - the B-tree: every node and every shape rule (`testing::tree_check`);
//! - every mapped extent against the allocation maps: its blocks (and its
//!   data-log header) allocated on the performance tier, its stripe
//!   allocated on the capacity tier;
//! - every data-log entry that heads an extent (header and data checksum),
//!   and every mapped block read through the volume (stripe chunk
//!   checksums, degraded reconstruction, decryption);
//! - a scrub of every allocated stripe (chunk checksums against parity).
//!
//! The exit status is fsck's: 0 when nothing was found, 1 when errors were.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::crypt::soft::SoftXts;
use vtier_engine::data::store::Store;
use vtier_engine::error::Error;
use vtier_engine::format::superblock::{Role, BLOCK_SIZE};
use vtier_engine::io::device::{check_io, BlockDevice};
use vtier_engine::io::file_device::FileDevice;
use vtier_engine::io::paddr::Location;
use vtier_engine::kcompat::{KVec, GFP_KERNEL};
use vtier_engine::map::extent::{Extent, EXTENT_HEADED};
use vtier_engine::stripe::store::StripeStore;
use vtier_engine::testing::tree_check::check_tree;

use crate::key;

/// Stripe-store pages the check keeps cached.
const CACHE_PAGES: usize = 64;
/// Blocks read through the volume at a time.
const READ_BLOCKS: u64 = 256;
/// Errors listed one by one; the rest are counted.
const LISTED: usize = 32;

/// A member opened read-only, with the engine's writes kept in memory.
pub struct Overlay {
    base: FileDevice,
    written: HashMap<u64, Box<[u8]>>,
}

impl Overlay {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let blocks = crate::device_blocks(&mut f, path)?;
        Ok(Self {
            base: FileDevice::with_blocks(f, blocks),
            written: HashMap::new(),
        })
    }
}

impl BlockDevice for Overlay {
    fn nr_blocks(&self) -> u64 {
        self.base.nr_blocks()
    }

    fn read(&mut self, block: u64, buf: &mut [u8]) -> vtier_engine::error::Result {
        check_io(self.nr_blocks(), block, buf.len())?;
        self.base.read(block, buf)?;
        for (i, out) in buf.chunks_exact_mut(BLOCK_SIZE).enumerate() {
            if let Some(w) = self.written.get(&(block + i as u64)) {
                out.copy_from_slice(w);
            }
        }
        Ok(())
    }

    fn write(&mut self, block: u64, buf: &[u8]) -> vtier_engine::error::Result {
        check_io(self.nr_blocks(), block, buf.len())?;
        for (i, b) in buf.chunks_exact(BLOCK_SIZE).enumerate() {
            self.written.insert(block + i as u64, b.into());
        }
        Ok(())
    }

    fn flush(&mut self) -> vtier_engine::error::Result {
        Ok(())
    }
}

/// What the check found.
#[derive(Serialize, Default)]
pub struct Report {
    /// One line per check passed or fact learned.
    pub notes: Vec<String>,
    /// The errors (the first [`LISTED`] of each kind of walk, then a count).
    pub errors: Vec<String>,
    /// Transactions the open replayed from the WAL.
    pub replayed_transactions: u64,
    /// Nodes of the B-tree.
    pub tree_nodes: u64,
    /// Extents mapped.
    pub extents: u64,
    /// Blocks mapped.
    pub mapped_blocks: u64,
    /// Blocks read back through the volume.
    pub blocks_read: u64,
    /// Allocated stripes scrubbed.
    pub stripes_scrubbed: u64,
    /// Whether nothing was found.
    pub clean: bool,
}

impl Report {
    fn note(&mut self, s: String) {
        self.notes.push(s);
    }

    fn error(&mut self, s: String) {
        self.errors.push(s);
    }
}

/// Counts errors of one walk and lists the first few.
struct Walk<'a> {
    report: &'a mut Report,
    what: &'static str,
    count: u64,
}

impl<'a> Walk<'a> {
    fn new(report: &'a mut Report, what: &'static str) -> Self {
        Self {
            report,
            what,
            count: 0,
        }
    }

    fn error(&mut self, s: String) {
        self.count += 1;
        if self.count <= LISTED as u64 {
            self.report.error(s);
        }
    }

    fn end(self) {
        if self.count > LISTED as u64 {
            self.report.error(format!(
                "{}: {} errors in all, {} listed",
                self.what, self.count, LISTED
            ));
        }
    }
}

/// `vtierctl check`: prints what it found (text, or JSON with `json`) and
/// returns whether the volume is clean; `Err` when the check could not run.
pub fn check(
    perf: &Path,
    capacity: &[PathBuf],
    key_file: Option<&Path>,
    json: bool,
) -> Result<bool, String> {
    let mut report = Report::default();
    run(perf, capacity, key_file, &mut report)?;
    report.clean = report.errors.is_empty();
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| format!("cannot write the report: {e}"))?;
        println!("{text}");
    } else {
        for n in &report.notes {
            println!("{n}");
        }
        for e in &report.errors {
            println!("error: {e}");
        }
        if report.clean {
            println!("clean: no errors found");
        } else {
            println!("{} errors found", report.errors.len());
        }
    }
    Ok(report.clean)
}

fn run(
    perf: &Path,
    capacity: &[PathBuf],
    key_file: Option<&Path>,
    report: &mut Report,
) -> Result<(), String> {
    let Some(mut store) = open_volume(perf, capacity, key_file, report)? else {
        return Ok(());
    };
    tree(&mut store, report);
    extents(&mut store, report)?;
    scrub(&mut store, report);
    Ok(())
}

/// Opens the volume of `perf` and `capacity` as the module would, on
/// read-only [`Overlay`]s: the superblocks of every member and the WAL
/// replay noted in `report`. `Ok(None)` when the volume does not open (the
/// reason is an error in `report`); `Err` when it cannot be tried (a wrong
/// set of devices, a missing or wrong key).
pub fn open_volume(
    perf: &Path,
    capacity: &[PathBuf],
    key_file: Option<&Path>,
    report: &mut Report,
) -> Result<Option<Store<Overlay, SoftXts>>, String> {
    let sb = superblocks(perf, report)?;
    if sb.role != Role::Performance {
        return Err(format!(
            "{}: is a {:?} device; name the performance device with --perf",
            perf.display(),
            sb.role
        ));
    }
    if sb.nr_devices as usize != capacity.len() + 1 {
        return Err(format!(
            "{}: the volume has {} capacity devices, {} given",
            perf.display(),
            sb.nr_devices - 1,
            capacity.len()
        ));
    }
    for path in capacity {
        superblocks(path, report)?;
    }
    let cipher = match (&sb.encryption, key_file) {
        (Encryption::None, _) => None,
        (_, None) => {
            return Err(format!(
                "{}: the volume is encrypted: give its key with --key-file",
                perf.display()
            ))
        }
        (_, Some(path)) => {
            let key = key::read_key_file(path)?;
            Some(SoftXts::new(&key).map_err(|e| format!("key file {}: {e}", path.display()))?)
        }
    };
    let stripes = open_stripes(capacity, report)?;
    let store = match Store::open(Overlay::open(perf)?, stripes, cipher) {
        Ok(s) => s,
        Err(Error::WrongKey) => return Err("wrong key for this volume".to_string()),
        Err(e) => {
            report.error(format!(
                "the volume does not open (WAL replay, allocation, stripes): {e}"
            ));
            return Ok(None);
        }
    };
    let rec = store.recovery();
    report.replayed_transactions = rec.redo_records;
    report.note(if rec.redo_records > 0 {
        format!(
            "WAL: {} transactions after checkpoint {} replayed (not shut down cleanly)",
            rec.redo_records, rec.generation
        )
    } else {
        format!("WAL: clean, checkpoint {}", rec.generation)
    });
    if store.stats().stripe_count_errors > 0 {
        report.error("the map could not be scanned for the stripes it uses".to_string());
    }
    Ok(Some(store))
}

/// Both superblock copies of `path`, each reported; the one that mounts.
fn superblocks(
    path: &Path,
    report: &mut Report,
) -> Result<vtier_engine::format::superblock::Superblock, String> {
    let copies = crate::superblock_copies(path)?;
    for (block, r) in &copies {
        match r {
            Ok(sb) => report.note(format!(
                "{}: superblock copy {block}: generation {}, {:?} device {} of {}",
                path.display(),
                sb.generation,
                sb.role,
                sb.device_index,
                sb.nr_devices
            )),
            Err(e) => report.note(format!(
                "{}: superblock copy {block} does not decode ({e}); the other one mounts",
                path.display()
            )),
        }
    }
    crate::read_superblock(path, false)
}

/// The stripe store of the capacity members (in their device order), on
/// overlays; `None` without one.
fn open_stripes(
    capacity: &[PathBuf],
    report: &mut Report,
) -> Result<Option<StripeStore<Overlay>>, String> {
    let Some(members) = crate::stripes::order_members(capacity)? else {
        return Ok(None);
    };
    let mut devs = KVec::with_capacity(members.slots.len(), GFP_KERNEL)
        .map_err(|_| "out of memory".to_string())?;
    for slot in &members.slots {
        let d = match slot {
            Some(path) => Some(Overlay::open(path)?),
            None => None,
        };
        devs.push(d, GFP_KERNEL)
            .map_err(|_| "out of memory".to_string())?;
    }
    let absent = members.slots.iter().filter(|s| s.is_none()).count();
    if absent > 0 {
        report.note(format!(
            "capacity tier: {absent} of {} members not given, checked degraded",
            members.slots.len()
        ));
    }
    let st = StripeStore::open(devs, members.area_start, &members.uuid, CACHE_PAGES)
        .map_err(|e| format!("capacity devices: the stripe store does not open: {e}"))?;
    let g = st.geometry();
    report.note(format!(
        "capacity tier: {}+{} stripes, {} of {} free",
        g.k,
        g.m,
        st.free_stripes(),
        g.nr_stripes
    ));
    Ok(Some(st))
}

fn tree(store: &mut Store<Overlay, SoftXts>, report: &mut Report) {
    let (tm, root, cfg) = store.map().tree_parts();
    match check_tree(tm, &cfg, root) {
        Ok(t) => {
            report.tree_nodes = t.nodes.len() as u64;
            report.note(format!(
                "B-tree: {} nodes, {} leaves, height {}, {} extents mapping {} blocks",
                t.nodes.len(),
                t.leaves,
                t.height,
                t.extents,
                t.mapped_blocks
            ));
        }
        Err(e) => report.error(format!("B-tree: {e}")),
    }
}

/// A mapped range: first logical block, blocks, the extent it maps to.
pub type Mapped = (u64, u64, Extent);

/// Every mapped range of the volume, in logical order. The inner `Err` is
/// a lookup that failed part-way (a damaged map); the outer one a map that
/// cannot be read at all.
pub fn mapped_extents(
    store: &mut Store<Overlay, SoftXts>,
) -> Result<Result<Vec<Mapped>, String>, String> {
    let nr_lbas = store.nr_lbas();
    let mut found = Vec::new();
    let map = store.map();
    let txn = map
        .begin()
        .map_err(|e| format!("cannot read the map: {e}"))?;
    let mut at = 0;
    let mut walk_err = None;
    while at < nr_lbas {
        match map.lookup(&txn, at, nr_lbas - at) {
            Ok(piece) => {
                let len = piece.len.clamp(1, nr_lbas - at);
                if let Some(ext) = piece.value {
                    found.push((at, len, ext));
                }
                at += len;
            }
            Err(e) => {
                walk_err = Some(format!("map: lookup of block {at} failed: {e}"));
                break;
            }
        }
    }
    map.abort(txn);
    Ok(match walk_err {
        Some(e) => Err(e),
        None => Ok(found),
    })
}

/// Every mapped extent: allocated where it lives, its entry's checksums,
/// its blocks readable through the volume.
fn extents(store: &mut Store<Overlay, SoftXts>, report: &mut Report) -> Result<(), String> {
    let found = match mapped_extents(store)? {
        Ok(found) => found,
        Err(e) => {
            report.error(e);
            return Ok(());
        }
    };
    report.extents = found.len() as u64;
    report.mapped_blocks = found.iter().map(|f| f.1).sum();

    let mut walk = Walk::new(report, "allocation");
    for &(lba, len, ext) in &found {
        match ext.paddr.location() {
            Location::Perf { block } => {
                let first = if ext.flags & EXTENT_HEADED != 0 {
                    block.saturating_sub(1)
                } else {
                    block
                };
                let (meta, dev) = store.map().volume_and_device();
                let alloc = match meta.alloc() {
                    Ok(a) => a,
                    Err(e) => {
                        walk.error(format!("allocation map unavailable: {e}"));
                        break;
                    }
                };
                for b in first..block + len {
                    match alloc.is_allocated(dev, b) {
                        Ok(true) => {}
                        Ok(false) => walk.error(format!(
                            "block {lba} maps to performance block {b}, which is free"
                        )),
                        Err(e) => walk.error(format!(
                            "block {lba}: allocation of performance block {b}: {e}"
                        )),
                    }
                }
            }
            Location::Stripe { stripe, .. } => {
                let allocated = store.stripes().map(|st| st.is_allocated(stripe));
                match allocated {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) => walk.error(format!(
                        "block {lba} maps to stripe {stripe}, which is free"
                    )),
                    Some(Err(e)) => walk.error(format!("block {lba}: stripe {stripe}: {e}")),
                    None => walk.error(format!(
                        "block {lba} maps to stripe {stripe}, and the volume has no stripes"
                    )),
                }
            }
            other => walk.error(format!(
                "block {lba} maps to {other:?}, no data lives there"
            )),
        }
    }
    walk.end();

    let mut walk = Walk::new(report, "data-log entries");
    let mut entries = 0u64;
    for &(lba, _, ext) in &found {
        if ext.flags & EXTENT_HEADED == 0 {
            continue;
        }
        match store.verify_entry_at(lba) {
            Ok(Some(_)) => entries += 1,
            Ok(None) => {}
            Err(e) => walk.error(format!("block {lba}: data-log entry: {e}")),
        }
    }
    walk.end();
    report.note(format!("data log: {entries} entries verified"));

    let mut walk = Walk::new(report, "reads");
    let mut buf = vec![0u8; READ_BLOCKS as usize * BLOCK_SIZE];
    let mut read = 0u64;
    for &(lba, len, _) in &found {
        let mut at = lba;
        while at < lba + len {
            let n = (lba + len - at).min(READ_BLOCKS);
            match store.read(at, &mut buf[..n as usize * BLOCK_SIZE]) {
                Ok(()) => read += n,
                Err(e) => walk.error(format!("blocks {at}..{}: read failed: {e}", at + n)),
            }
            at += n;
        }
    }
    walk.end();
    report.blocks_read = read;
    report.note(format!("data: {read} mapped blocks read back"));
    Ok(())
}

fn scrub(store: &mut Store<Overlay, SoftXts>, report: &mut Report) {
    let Some(st) = store.stripes() else {
        return;
    };
    if let Err(e) = st.scrub_step(u64::MAX) {
        report.error(format!("scrub stopped: {e}"));
        return;
    }
    let r = st.scrub_report();
    report.stripes_scrubbed = r.stripes_checked;
    report.note(format!(
        "scrub: {} stripes, {} chunk checksum errors, {} read errors, {} parity mismatches, {} repairable",
        r.stripes_checked, r.checksum_errors, r.read_errors, r.parity_mismatches, r.repaired
    ));
    if r.checksum_errors + r.read_errors + r.parity_mismatches > 0 {
        report.error(format!(
            "scrub: {} bad chunks, {} parity mismatches ({} stripes repairable by a scrub of the powered volume)",
            r.checksum_errors + r.read_errors,
            r.parity_mismatches,
            r.repaired
        ));
    }
    for s in r.listed() {
        report.error(format!("stripe {s} cannot be repaired"));
    }
    if r.unrepairable as usize > r.listed().len() {
        report.error(format!(
            "{} stripes cannot be repaired in all",
            r.unrepairable
        ));
    }
}
