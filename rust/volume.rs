// SPDX-License-Identifier: GPL-2.0

//! A vtier volume: its configuration, bringing it up and down as
//! `/dev/vtierN`, and what configfs does to it while it is up (status,
//! destage, scrub, rebuild, replace).
//!
//! The block layer's side of the device (tag set, gendisk, serving
//! requests) is `blk.rs`; this file reaches the store it serves from
//! through [`Target::with_store`], and runs the operations that go deep
//! into the engine on a fresh kworker stack ([`on_fresh_stack`]).
//!
//! # Lock order
//!
//! A vtier device has three locks. One is only ever taken while holding
//! those before it in this list, never one after it:
//!
//! 1. The device's configfs lock, `DeviceConfig::inner` (`configfs.rs`), a
//!    mutex: every configfs attribute of the device holds it for its whole
//!    check and update. It is held around everything in this file: bringing
//!    the volume up, its operations, and taking it down with `power=0`
//!    (dropping the [`Volume`] deletes the disk, which waits for the
//!    requests in flight; `rmdir` drops it when no access can run any more).
//! 2. [`Target::state`](crate::blk::Target) (`blk.rs`), a mutex around the
//!    store and the bounce buffer: the request worker holds it while it
//!    serves a request or runs one step of background destaging, the
//!    operations here while they use the store. A
//!    kworker that a configfs access waits for ([`on_fresh_stack`]) takes
//!    it on behalf of that access, so counts as holding (1).
//! 3. The request queue's spinlock (`rq_queue.c`): `queue_rq` holds it to
//!    add a request, the worker to take the next one. Nothing is taken
//!    under it, and the worker drops it before it takes (2) to serve.
//!
//! Nothing in the engine calls back into configfs or the block layer's
//! intake of this device, so the order cannot be turned around from below.

use core::ffi::{c_int, c_uint, c_void};

use kernel::bindings;
use kernel::error::to_result;
use kernel::fmt::Write as _;
use kernel::prelude::*;
use kernel::str::{BStr, CString, Formatter};

use crate::bdev::{BackingDevice, SECTORS_PER_BLOCK};
use crate::crypto::{KeyBuf, Xts};
use crate::crypt::encryption::Encryption;
use crate::error::Error as EngineError;
use crate::io::device::BlockDevice;
use crate::blk::{on_fresh_stack, Disk, Target, VolumeStore};
use crate::data::store::{DataStats, Store, Watermarks};
use crate::journal::meta_device::{FormatOptions, MetaDevice};
use crate::stripe::member::MemberState;
use crate::stripe::store::StripeStore;
use crate::path::DevPath;
use crate::format::superblock::{Role, Superblock, BLOCK_SIZE, COPIES};

/// Most capacity devices one vtier device takes.
pub(crate) const MAX_CAPACITY_DEVICES: usize = 16;
/// With at least this many capacity devices the capacity tier is an
/// erasure-coded stripe store (`vtierctl format` makes one).
const MIN_STRIPE_MEMBERS: usize = 3;
/// Allocation-map pages the stripe store keeps cached.
const STRIPE_CACHE_PAGES: usize = 8;

/// A configured member device: its path and device number at configuration.
pub(crate) struct Member {
    pub(crate) path: DevPath,
    pub(crate) dev: bindings::dev_t,
}

/// What configfs collects before `power=1`.
#[derive(Default)]
pub(crate) struct Config {
    pub(crate) perf: Option<Member>,
    pub(crate) capacity: KVec<Member>,
    /// The key of an encrypted volume (configfs `key`), wiped on drop.
    pub(crate) key: Option<KeyBuf>,
    /// When the volume destages in the background (configfs
    /// `destage_watermarks`); may change while powered.
    pub(crate) watermarks: Watermarks,
}

/// Highest index N of `/dev/vtierN`. Each vtier disk takes one of the
/// block layer's dynamically allocated ("extended") minors, of which there
/// are `1 << MINORBITS` for all such disks together: more indexes than
/// that could never each have a disk. (`vtier1048575` fits a disk name.)
const MAX_DISK_INDEX: c_uint = (1 << bindings::MINORBITS) - 1;

// The IDA of disk indexes, in `helpers.c`.
unsafe extern "C" {
    fn vtier_disk_index_alloc(max: c_uint) -> c_int;
    fn vtier_disk_index_free(index: c_uint);
}

/// An index N of `/dev/vtierN`, released on drop.
///
/// # Invariants
///
/// The index was allocated from the disk index IDA and is in use until
/// this value is dropped, which frees it.
pub(crate) struct DiskIndex(u32);

impl DiskIndex {
    /// The lowest free index: `ENOSPC` if all up to [`MAX_DISK_INDEX`] are
    /// in use, `ENOMEM` without memory.
    fn get() -> Result<Self> {
        // SAFETY: The IDA is a static initialised at compile time
        // (`DEFINE_IDA` in `helpers.c`) and locks itself; this runs in
        // process context (a configfs write), where the allocation may sleep.
        let ret = unsafe { vtier_disk_index_alloc(MAX_DISK_INDEX) };
        to_result(ret)?;
        // INVARIANT: Just allocated; a non-negative `c_int` fits a `u32`.
        u32::try_from(ret).map(Self).map_err(|_| EINVAL)
    }
}

impl Drop for DiskIndex {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the index is allocated, and this is
        // the one place that frees it.
        unsafe { vtier_disk_index_free(self.0) };
    }
}

/// A powered vtier device: its members, claimed, and its disk.
pub(crate) struct Volume {
    /// The configfs name, for messages.
    name: CString,
    // Field order is drop order: the disk goes first, then the devices it
    // may still reference, then its index.
    disk: Disk,
    _capacity: KVec<BackingDevice>,
    /// Where the stripe store's area starts on the capacity devices.
    area_start: u64,
    index: DiskIndex,
}

/// Logs why `name` failed to come up and passes the error on.
fn fail(name: &BStr, err: Error, what: core::fmt::Arguments<'_>) -> Error {
    pr_err!("{}: {} ({})\n", name, what, err.to_errno());
    err
}

fn open_member(name: &BStr, m: &Member, holder: *mut c_void) -> Result<BackingDevice> {
    let bdev = BackingDevice::open(&m.path, holder).map_err(|e| {
        let why = match e {
            e if e == EBUSY => "in use by someone else",
            e if e == ENOENT => "no such device",
            e if e == ENOTBLK => "not a block device",
            e if e == EACCES => "read-only",
            _ => "cannot open",
        };
        fail(name, e, fmt!("{}: {}", m.path.as_bstr(), why))
    })?;
    if (BLOCK_SIZE as u32).checked_rem(bdev.logical_block_size()) != Some(0) {
        return Err(fail(
            name,
            EINVAL,
            fmt!("{}: logical block size {} does not divide {}", m.path.as_bstr(), bdev.logical_block_size(), BLOCK_SIZE),
        ));
    }
    Ok(bdev)
}

fn read_superblock(name: &BStr, m: &Member, bdev: &mut BackingDevice) -> Result<Superblock> {
    let mut copies = [Err(crate::error::Error::Io), Err(crate::error::Error::Io)];
    let mut buf = KBox::new([0u8; BLOCK_SIZE], GFP_KERNEL)?;
    for (slot, block) in copies.iter_mut().zip(COPIES) {
        bdev.read(block, &mut buf[..]).map_err(|e| {
            fail(name, EIO, fmt!("{}: cannot read superblock {}: {}", m.path.as_bstr(), block, e))
        })?;
        *slot = Superblock::decode(&buf[..], block);
    }
    let [a, b] = copies;
    let sb = Superblock::choose(a, b).map_err(|e| {
        fail(
            name,
            Error::from(e),
            fmt!("{}: no valid vtier superblock: {} (run vtierctl format)", m.path.as_bstr(), e),
        )
    })?;
    if bdev.nr_sectors() / SECTORS_PER_BLOCK < sb.nr_blocks {
        return Err(fail(
            name,
            EINVAL,
            fmt!("{}: device has shrunk below its formatted {} blocks", m.path.as_bstr(), sb.nr_blocks),
        ));
    }
    Ok(sb)
}

impl Volume {
    /// Brings up a vtier device from `cfg`; `holder` identifies it when
    /// claiming the members. Every failure is logged once, naming `name`.
    pub(crate) fn power_on(name: &BStr, cfg: &Config, holder: *mut c_void) -> Result<Self> {
        let perf_member = cfg
            .perf
            .as_ref()
            .ok_or_else(|| fail(name, EINVAL, fmt!("power=1 without perf_device")))?;
        let mut perf = open_member(name, perf_member, holder)?;
        let sb = read_superblock(name, perf_member, &mut perf)?;
        if sb.role != Role::Performance {
            return Err(fail(name, EINVAL, fmt!("{}: is a capacity device", perf_member.path.as_bstr())));
        }
        if sb.nr_devices as usize != cfg.capacity.len() + 1 {
            return Err(fail(
                name,
                EINVAL,
                fmt!(
                    "formatted with {} capacity devices, {} configured",
                    sb.nr_devices - 1,
                    cfg.capacity.len()
                ),
            ));
        }
        let cipher = Self::open_cipher(name, cfg, &sb)?;
        let (capacity, area_start) = Self::open_capacity(name, cfg, &perf, &sb, holder)?;
        let uuid = sb.volume_uuid;
        // Opens the capacity tier, recovers the map (WAL replay) and
        // checkpoints: the first writes.
        let (store, capacity) = on_fresh_stack(move || {
            let (stripes, spare) = if capacity.len() >= MIN_STRIPE_MEMBERS {
                let mut devs = KVec::with_capacity(capacity.len(), GFP_KERNEL)?;
                for d in capacity {
                    devs.push(Some(d), GFP_KERNEL)?;
                }
                let mut st = StripeStore::open(devs, area_start, &uuid, STRIPE_CACHE_PAGES).map_err(|e| {
                    fail(name, Error::from(e), fmt!("capacity tier: cannot open the erasure-coded stripes: {}", e))
                })?;
                // Stripes are coded by the fastest SIMD kernel that passed
                // its self-test at load, the scalar loop otherwise.
                st.set_gf_kernel(&crate::ec_simd::BEST);
                (Some(st), KVec::new())
            } else {
                (None, capacity)
            };
            let store = Store::open(perf, stripes, cipher)
                .map_err(|e| fail(name, Error::from(e), fmt!("cannot open the volume: {}", e)))?;
            Ok((KBox::new(store, GFP_KERNEL)?, spare))
        })?;
        let nr_lbas = store.nr_lbas();
        if nr_lbas == 0 {
            return Err(fail(name, EINVAL, fmt!("performance device has no data area")));
        }
        let encrypted = matches!(sb.encryption, Encryption::AesXts { .. });
        let recovery = store.recovery();
        if recovery.redo_records > 0 {
            pr_info!(
                "{}: recovered from an unclean shutdown: {} transactions replayed from the WAL after checkpoint {}\n",
                name,
                recovery.redo_records,
                recovery.generation
            );
        }
        let mut store = store;
        store.set_watermarks(cfg.watermarks);
        if store.stripes().is_some() && !store.reclaims_stripes() {
            pr_warn!(
                "{}: capacity tier: no memory for the live counts of its stripes, or the map could not be scanned: stripes are not freed while it is powered\n",
                name
            );
        }
        let read_only = store.stripes().is_some_and(|st| st.is_read_only());
        if let Some(st) = store.stripes() {
            let g = st.geometry();
            pr_info!(
                "{}: capacity tier: {}+{} stripes on {} devices, {} lost, coded by {}{}\n",
                name,
                g.k,
                g.m,
                g.nr_members,
                st.lost(),
                crate::ec::backend::GfKernel::name(&crate::ec_simd::BEST),
                if st.is_read_only() { ", read-only" } else { "" }
            );
        }
        let vol_name = CString::try_from_fmt(fmt!("{}", name))?;
        let index = DiskIndex::get().map_err(|e| {
            if e == ENOSPC {
                fail(name, e, fmt!("no free vtier device index: all {} are in use", MAX_DISK_INDEX + 1))
            } else {
                fail(name, e, fmt!("cannot allocate a vtier device index"))
            }
        })?;
        let target = Target::new(name, store).map_err(|e| fail(name, e, fmt!("cannot set up the request queue")))?;
        let disk = Disk::new(index.0, target, nr_lbas, read_only)
            .map_err(|e| fail(name, e, fmt!("cannot create disk")))?;
        pr_info!(
            "{}: vtier{} up, {} blocks, {}\n",
            name,
            index.0,
            nr_lbas,
            if encrypted { "encrypted (aes-xts)" } else { "not encrypted" }
        );
        Ok(Self { name: vol_name, disk, _capacity: capacity, area_start, index })
    }

    /// The cipher of an encrypted volume, keyed with the configured key once
    /// that matches the volume's key check value; `None` if the volume is
    /// not encrypted. A missing key is `ENOKEY`, a wrong one `EKEYREJECTED`.
    fn open_cipher(name: &BStr, cfg: &Config, sb: &Superblock) -> Result<Option<Xts>> {
        let key = match (&sb.encryption, &cfg.key) {
            (Encryption::None, None) => return Ok(None),
            (Encryption::None, Some(_)) => {
                return Err(fail(name, EINVAL, fmt!("a key is set but the volume is not encrypted")));
            }
            (Encryption::AesXts { .. }, None) => {
                return Err(fail(name, ENOKEY, fmt!("the volume is encrypted: write its key to `key`, or name a logon key in `key_name`, first")));
            }
            (Encryption::AesXts { .. }, Some(key)) => key,
        };
        let xts = Xts::new(key.key()).map_err(|e| fail(name, e, fmt!("cannot set up xts(aes)")))?;
        match sb.encryption.check_key(&xts) {
            Ok(()) => Ok(Some(xts)),
            Err(EngineError::WrongKey) => Err(fail(
                name,
                EKEYREJECTED,
                fmt!("wrong key: it does not match the volume's key check value"),
            )),
            Err(e) => Err(fail(name, EIO, fmt!("key check failed: {}", e))),
        }
    }

    fn open_capacity(
        name: &BStr,
        cfg: &Config,
        perf: &BackingDevice,
        perf_sb: &Superblock,
        holder: *mut c_void,
    ) -> Result<(KVec<BackingDevice>, u64)> {
        let mut devs: KVec<BackingDevice> = KVec::with_capacity(cfg.capacity.len(), GFP_KERNEL)?;
        // The stripe store's area starts after every member's metadata.
        let mut area_start = 0;
        for (i, m) in cfg.capacity.iter().enumerate() {
            let mut bdev = open_member(name, m, holder)?;
            // The same holder may open one device twice: compare numbers.
            if bdev.dev() == perf.dev() || devs.iter().any(|d| d.dev() == bdev.dev()) {
                return Err(fail(name, EINVAL, fmt!("{}: named twice", m.path.as_bstr())));
            }
            let sb = read_superblock(name, m, &mut bdev)?;
            let position = i as u32 + 1;
            if sb.volume_uuid != perf_sb.volume_uuid || sb.role != Role::Capacity {
                return Err(fail(name, EINVAL, fmt!("{}: not a capacity device of this volume", m.path.as_bstr())));
            }
            if sb.device_index != position {
                return Err(fail(
                    name,
                    EINVAL,
                    fmt!(
                        "{}: is capacity member {} (device {} of the set), named as member {}",
                        m.path.as_bstr(),
                        sb.device_index.saturating_sub(1),
                        sb.device_index,
                        i
                    ),
                ));
            }
            area_start = area_start.max(sb.data_start);
            devs.push(bdev, GFP_KERNEL)?;
        }
        Ok((devs, area_start))
    }

    /// The configfs name.
    fn name(&self) -> &BStr {
        BStr::from_bytes(self.name.to_bytes())
    }

    /// What serves `/dev/vtierN`, and holds the store.
    fn target(&self) -> &Target {
        self.disk.target()
    }

    /// Whether `/dev/vtierN` is open (mounted or held by a process).
    pub(crate) fn is_open(&self) -> bool {
        self.disk.is_open()
    }

    /// The disk's index N in `/dev/vtierN`.
    pub(crate) fn index(&self) -> u32 {
        self.index.0
    }
}

/// What configfs does to a powered volume. Each runs under the device's
/// configfs lock and takes [`Target::state`] for the store; those that go
/// deep into the engine do so on a fresh kworker stack.
impl Volume {
    /// Writes the volume's counters and its capacity tier's state, one
    /// fact a line (configfs `status`).
    pub(crate) fn write_status(&self, w: &mut Formatter<'_>) -> Result {
        let errors = self.target().errors();
        match self.target().with_store(|store| write_store_status(store, errors, w)) {
            Some(r) => r,
            None => w.write_str("closed\n").map_err(Error::from),
        }
    }

    /// Runs `f` on the open store, on a fresh stack, under the target's
    /// lock; `EIO` once the store is closed.
    fn on_store<T>(&self, f: impl FnOnce(&mut VolumeStore) -> Result<T>) -> Result<T> {
        on_fresh_stack(|| self.target().with_store(f).unwrap_or(Err(EIO)))
    }

    /// Runs `f` on the capacity tier, on a fresh stack, under the target's
    /// lock; `EOPNOTSUPP` without one.
    fn with_stripes<T>(&self, f: impl FnOnce(&mut StripeStore<BackingDevice>) -> Result<T>) -> Result<T> {
        self.on_store(|store| f(store.stripes().ok_or(EOPNOTSUPP)?))
    }

    /// Scrubs the next `stripes` stripe ids (configfs `scrub`); returns
    /// (next stripe id, stripe ids in all).
    pub(crate) fn scrub(&self, stripes: u64) -> Result<(u64, u64)> {
        self.with_stripes(|st| {
            let p = st.scrub_step(stripes)?;
            Ok((p.cursor, p.total))
        })
    }

    /// Rebuilds the next `stripes` stripe ids onto the replacement member
    /// (configfs `rebuild`); returns (done, total), `ENOENT` with no
    /// rebuild running.
    pub(crate) fn rebuild(&self, stripes: u64) -> Result<(u64, u64)> {
        self.with_stripes(|st| {
            if st.rebuild_progress().member.is_none() {
                return Err(ENOENT);
            }
            let p = st.rebuild_step(stripes)?;
            Ok((p.done, p.total))
        })
    }

    /// The scrub's position: (next stripe id, stripe ids in all); None
    /// without a capacity tier.
    pub(crate) fn scrub_position(&self) -> Option<(u64, u64)> {
        self.target()
            .with_store(|store| store.stripes().map(|st| st.scrub_position()))
            .flatten()
    }

    /// The rebuild's progress: (member, done, total), if one is running.
    pub(crate) fn rebuild_progress(&self) -> Option<(usize, u64, u64)> {
        self.target()
            .with_store(|store| {
                let p = store.stripes()?.rebuild_progress();
                p.member.map(|m| (m, p.done, p.total))
            })
            .flatten()
    }

    /// Opens `m` and puts it in the place of failed or missing capacity
    /// member `index` (0-based): writes it a capacity superblock of this
    /// volume, then hands it to the stripe store, which starts rebuilding
    /// it (configfs `replace`; `rebuild` paces the rebuild).
    pub(crate) fn replace(&self, index: usize, m: &Member, holder: *mut c_void) -> Result {
        let mut dev = open_member(self.name(), m, holder)?;
        let area_start = self.area_start;
        self.on_store(move |store| {
            let sb = store.map().superblock();
            let mut device_uuid = [0u8; 16];
            // SAFETY: `device_uuid` is valid for 16 bytes of writes.
            unsafe { bindings::get_random_bytes(device_uuid.as_mut_ptr().cast(), device_uuid.len()) };
            let opts = FormatOptions {
                volume_uuid: sb.volume_uuid,
                device_uuid,
                nr_devices: sb.nr_devices,
                wal_blocks: sb.wal.blocks,
                encryption: sb.encryption,
            };
            let position = u32::try_from(index + 1).map_err(|_| EINVAL)?;
            let st = store.stripes().ok_or(EOPNOTSUPP)?;
            let state = st.member_stats(index).ok_or(EINVAL)?.state;
            if !matches!(state, MemberState::Failed | MemberState::Missing) {
                pr_err!("{}: replace: capacity member {} is {}, not failed\n", self.name(), index, state.name());
                return Err(EBUSY);
            }
            let csb = MetaDevice::format_capacity(&mut dev, &opts, position).map_err(|e| {
                pr_err!("{}: replace: cannot write the capacity superblock: {}\n", self.name(), e);
                Error::from(e)
            })?;
            if csb.data_start > area_start {
                pr_err!(
                    "{}: replace: the device's metadata ({} blocks) reaches into the stripes (from block {}): use a device of the members' size\n",
                    self.name(),
                    csb.data_start,
                    area_start
                );
                return Err(EINVAL);
            }
            st.replace_member(index, dev).map(drop).map_err(|e| {
                pr_err!("{}: replace: {}\n", self.name(), e);
                Error::from(e)
            })
        })
    }

    /// The store's counters, while it is open.
    pub(crate) fn stats(&self) -> Option<DataStats> {
        self.target().with_store(|store| store.stats())
    }

    /// Sets when the volume destages in the background.
    pub(crate) fn set_watermarks(&self, w: Watermarks) -> Result {
        self.disk.target().with_store(|s| s.set_watermarks(w)).ok_or(EIO)
    }

    /// Moves up to `stripes` stripes of data to the capacity tier now
    /// (configfs `destage`); returns the blocks moved.
    pub(crate) fn destage(&self, stripes: u32) -> Result<u64> {
        self.on_store(|store| {
            if store.stripes().is_none() {
                return Err(EOPNOTSUPP);
            }
            store.destage(stripes).map_err(Error::from)
        })
    }
}

/// Writes `store`'s counters, with `errors` failed requests, and its
/// capacity tier's state to `w`.
fn write_store_status(store: &mut VolumeStore, errors: u32, w: &mut Formatter<'_>) -> Result {
    let s = store.stats();
    w.write_fmt(fmt!("logical blocks: {}\n", store.nr_lbas()))?;
    w.write_fmt(fmt!(
        "requests: reads {} writes {} flushes {} discards {} errors {}\n",
        s.reads,
        s.writes,
        s.flushes,
        s.discards,
        errors
    ))?;
    w.write_fmt(fmt!(
        "data log: entries {} blocks written {} blocks read {} checksum errors {} checkpoints {}\n",
        s.entries,
        s.blocks_written,
        s.blocks_read,
        s.checksum_errors,
        s.checkpoints
    ))?;
    w.write_fmt(fmt!("cipher: {} blocks\n", s.cipher_calls))?;
    w.write_fmt(fmt!(
        "destage: stripes {} blocks {}, blocks read from stripes {}, stripes freed {} (errors {})\n",
        s.destaged_stripes,
        s.destaged_blocks,
        s.stripe_blocks_read,
        s.stripes_reclaimed,
        s.stripe_count_errors + s.stripe_free_errors
    ))?;
    w.write_fmt(fmt!(
        "compaction: stripes {} blocks {} (errors {})\n",
        s.compacted_stripes, s.compacted_blocks, s.compaction_errors
    ))?;
    let wm = store.watermarks();
    w.write_fmt(fmt!(
        "performance tier: {} % in use; background: {} stripes moved, watermarks {} % / {} %\n",
        store.perf_in_use().unwrap_or(0),
        s.background_destages,
        wm.high,
        wm.low
    ))?;
    match store.stripes() {
        Some(st) => st.write_status(w).map_err(|_| EFBIG)?,
        None => w.write_str("capacity tier: not erasure coded\n")?,
    }
    Ok(())
}

impl Drop for Volume {
    fn drop(&mut self) {
        pr_info!("{}: vtier{} going down\n", BStr::from_bytes(self.name.to_bytes()), self.index.0);
    }
}
