// SPDX-License-Identifier: GPL-2.0

//! The LBA map of a volume: transactions, B-tree and checkpoints on the
//! performance device.
//!
//! [`LbaMap`] ties the layers together: the [`TxnManager`] over the tuple
//! cache, the copy-on-write B-tree on a [`DevNodeStore`], and the
//! [`MetaDevice`] (superblocks, allocator, WAL). Redo records are WAL records of
//! kind [`WAL_KIND_REDO`]; a checkpoint applies the committed tuples to the
//! tree and stores its root and the last applied commit in the superblock's
//! root slots [`ROOT_SLOT_LBA_MAP`] and [`ROOT_SLOT_APPLIED_SEQ`]; opening
//! replays the WAL records after the last checkpoint and checkpoints at
//! once. The commit and copy-on-write rules are those of [`crate::map::txn`] and
//! [`crate::btree::node_tm`].
//!
//! One transaction's redo record must fit one WAL record: at most
//! [`MAX_TXN_TUPLES`] tuples; a bigger commit fails with `NoSpace` (and is
//! aborted).
//!
//! # Space accounting
//!
//! A map opened with [`LbaMap::open_accounted`] owns the performance-tier
//! blocks its extents point at (the data layer above allocated them): a
//! displaced extent is freed with [`release`] once the transaction that
//! displaced it has committed, and freed blocks become reusable only
//! after the next checkpoint, whose tree no longer points at them. Replay
//! after a crash redoes both halves for every record after the
//! checkpoint, in log order: what a record displaced is released, what
//! it maps is claimed ([`claim`]), since the allocator's last copy knows
//! neither. Such a map never checkpoints inside [`LbaMap::commit`]: the
//! caller runs [`LbaMap::checkpoint_if_needed`] before it allocates, so
//! an allocation and the commit that maps it fall in one generation.

use crate::btree::dev_node_store::DevNodeStore;
use crate::btree::node_tm::{NodeTm, DEFAULT_CACHE_NODES};
use crate::btree::range_map::Piece;
use crate::btree::tree::{create, BTreeConfig, ReadTree, WriteTree};
use crate::error::{Error, Result};
use crate::format::superblock::Superblock;
use crate::io::device::BlockDevice;
use crate::io::paddr::{Location, PAddr};
use crate::journal::meta_device::{FormatOptions, MetaDevice};
use crate::journal::wal_block::MAX_PAYLOAD;
use crate::kcompat::{KVec, GFP_KERNEL};
use crate::map::extent::{Extent, EXTENT_HEADED};
use crate::map::redo::{self, RedoSink};
use crate::map::tuple_cache::TupleOp;
use crate::map::txn::{Outcome, Txn, TxnManager};
use crate::space::allocator::Allocator;
use crate::space::map_io::DEFAULT_CACHE_PAGES;

/// Superblock root slot holding the LBA map's B-tree root (raw address).
pub const ROOT_SLOT_LBA_MAP: usize = 0;
/// Superblock root slot holding the last commit applied to that tree.
pub const ROOT_SLOT_APPLIED_SEQ: usize = 1;
/// WAL record kind of redo records.
pub const WAL_KIND_REDO: u8 = 0x10;
/// Most tuples one transaction may commit (one WAL record).
pub const MAX_TXN_TUPLES: usize = (MAX_PAYLOAD - 24) / 32;

const CFG: BTreeConfig = BTreeConfig::LBA_MAP;

type Store<D> = DevNodeStore<D, MetaDevice>;

impl<D: BlockDevice> RedoSink for DevNodeStore<D, MetaDevice> {
    fn append(&mut self, _seq: u64, record: &[u8]) -> Result {
        if record.len() > MAX_PAYLOAD {
            return Err(Error::NoSpace);
        }
        self.meta.append(WAL_KIND_REDO, record).map(|_| ())
    }

    fn flush(&mut self) -> Result {
        self.meta.commit(&mut self.dev)
    }
}

/// The performance-tier blocks `ext` occupies: its data and, when it
/// owns one, its data log entry header. `None` for other tiers.
fn perf_span(ext: &Extent) -> Result<Option<(u64, u32)>> {
    let Location::Perf { block } = ext.paddr.location() else {
        return Ok(None);
    };
    if ext.flags & EXTENT_HEADED == 0 {
        return Ok(Some((block, ext.len)));
    }
    let bad = Error::Corrupt {
        block: Some(block),
        what: "extent header position",
    };
    let start = block.checked_sub(1).ok_or(bad)?;
    let len = ext.len.checked_add(1).ok_or(Error::InvalidArgument)?;
    Ok(Some((start, len)))
}

/// Frees the performance-tier blocks of `ext` (its header too if it owns
/// it) at the next checkpoint.
pub fn release(alloc: &mut Allocator, dev: &mut dyn BlockDevice, ext: &Extent) -> Result {
    match perf_span(ext)? {
        Some((start, len)) => alloc.free(dev, start, len),
        None => Ok(()),
    }
}

/// Marks the performance-tier blocks of `ext` allocated during replay.
/// Blocks the last checkpoint already counts are accepted as they are;
/// an extent only partly allocated is corrupt.
pub fn claim(alloc: &mut Allocator, dev: &mut dyn BlockDevice, ext: &Extent) -> Result {
    let Some((start, len)) = perf_span(ext)? else {
        return Ok(());
    };
    match alloc.reserve(dev, start, u64::from(len)) {
        Err(Error::InvalidArgument) if alloc_all(alloc, dev, start, len)? => Ok(()),
        Err(Error::InvalidArgument) => Err(Error::Corrupt {
            block: Some(start),
            what: "replayed extent partly allocated",
        }),
        r => r,
    }
}

fn alloc_all(
    alloc: &mut Allocator,
    dev: &mut dyn BlockDevice,
    start: u64,
    len: u32,
) -> Result<bool> {
    for b in start..start + u64::from(len) {
        if !alloc.is_allocated(dev, b)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A volume's LBA map.
pub struct LbaMap<D: BlockDevice> {
    tm: NodeTm<Store<D>>,
    root: PAddr,
    txns: TxnManager,
    /// See "Space accounting" in the module docs.
    accounted: bool,
    /// What the open found after the last checkpoint.
    recovery: Recovery,
}

/// What opening a map found after its last checkpoint: nothing after a
/// clean shutdown, the transactions committed since it after a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The generation of the checkpoint the map was opened from.
    pub generation: u64,
    /// Redo records replayed from the WAL after that checkpoint.
    pub redo_records: u64,
}

impl<D: BlockDevice> LbaMap<D> {
    /// Formats `dev` (see [`MetaDevice::format`]) with an empty map.
    pub fn format(mut dev: D, opts: &FormatOptions) -> Result<Self> {
        let vol = MetaDevice::format(&mut dev, opts, DEFAULT_CACHE_PAGES)?;
        Self::mount(dev, vol, None, false)
    }

    /// Opens the map on `dev`: the last checkpoint, then the WAL replayed.
    pub fn open(dev: D) -> Result<Self> {
        Self::open_with(dev, false, |_| Ok(()))
    }

    /// Opens a map that accounts for the space of its extents (see the
    /// module docs); `check` sees the superblock before anything is
    /// written.
    pub fn open_accounted(dev: D, check: impl FnOnce(&Superblock) -> Result) -> Result<Self> {
        Self::open_with(dev, true, check)
    }

    fn open_with(
        mut dev: D,
        accounted: bool,
        check: impl FnOnce(&Superblock) -> Result,
    ) -> Result<Self> {
        let vol = MetaDevice::open(&mut dev, DEFAULT_CACHE_PAGES)?;
        check(vol.superblock())?;
        // Zero: the checkpoint of the format itself, before the map's
        // first (the tree is created then).
        let root = match vol.roots()[ROOT_SLOT_LBA_MAP] {
            0 => None,
            raw => Some(PAddr::from_raw(raw, None)?),
        };
        Self::mount(dev, vol, root, accounted)
    }

    /// Replays the WAL (after an open), creates the tree if `root` is
    /// `None`, checkpoints.
    fn mount(
        mut dev: D,
        mut vol: MetaDevice,
        root: Option<PAddr>,
        accounted: bool,
    ) -> Result<Self> {
        let txns = TxnManager::new(vol.roots()[ROOT_SLOT_APPLIED_SEQ]);
        let mut records: KVec<KVec<u8>> = KVec::new();
        if vol.wal().is_none() {
            vol.replay(&mut dev, |_, _, rec| {
                if rec.kind == WAL_KIND_REDO {
                    let mut r = KVec::with_capacity(rec.payload.len(), GFP_KERNEL)?;
                    r.extend_from_slice(rec.payload, GFP_KERNEL)?;
                    records.push(r, GFP_KERNEL)?;
                }
                Ok(())
            })?;
        }
        let recovery = Recovery {
            generation: vol.superblock().generation,
            redo_records: records.len() as u64,
        };
        let generation = recovery.generation + 1;
        let store = DevNodeStore { dev, meta: vol };
        let mut tm = NodeTm::with_cache(store, generation, DEFAULT_CACHE_NODES)?;
        let root = match root {
            Some(r) => r,
            None => create(&mut tm, &CFG)?,
        };
        let mut map = Self {
            tm,
            root,
            txns,
            accounted,
            recovery,
        };
        for rec in records.iter() {
            map.replay_record(rec)?;
        }
        map.checkpoint()?;
        Ok(map)
    }

    /// What the open found after the last checkpoint (all zero for a map
    /// just formatted).
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// Replays one redo record; an accounted map also releases what it
    /// displaced and claims what it maps.
    fn replay_record(&mut self, rec: &[u8]) -> Result {
        let hdr = redo::decode(rec, |_, _| Ok(()))?;
        if !self.accounted || hdr.seq <= self.txns.applied_seq() {
            return self.txns.replay(rec).map(|_| ());
        }
        let mut ops: KVec<(u64, TupleOp)> = KVec::new();
        redo::decode(rec, |lba, op| Ok(ops.push((lba, op), GFP_KERNEL)?))?;
        let mut displaced: KVec<Extent> = KVec::new();
        let txn = self.begin()?;
        let looked = self.collect_mapped(&txn, &ops, &mut displaced);
        self.abort(txn);
        looked?;
        self.txns.replay(rec)?;
        let s = self.tm.store_mut();
        let alloc = s.meta.alloc()?;
        for ext in displaced.iter() {
            release(alloc, &mut s.dev, ext)?;
        }
        for (_, op) in ops.iter() {
            if let TupleOp::Map(ext) = op {
                claim(alloc, &mut s.dev, ext)?;
            }
        }
        Ok(())
    }

    fn collect_mapped(
        &mut self,
        txn: &Txn,
        ops: &[(u64, TupleOp)],
        out: &mut KVec<Extent>,
    ) -> Result {
        for &(lba, op) in ops {
            let len = match op {
                TupleOp::Map(e) => u64::from(e.len),
                TupleOp::Unmap { len } => u64::from(len),
            };
            self.mapped_in(txn, lba, len, out)?;
        }
        Ok(())
    }

    /// Appends to `out` the extents (sliced) that map `lba..lba + len` as
    /// `txn` sees it.
    pub fn mapped_in(&mut self, txn: &Txn, lba: u64, len: u64, out: &mut KVec<Extent>) -> Result {
        let end = lba.checked_add(len).ok_or(Error::InvalidArgument)?;
        let mut at = lba;
        while at < end {
            let piece = self.lookup(txn, at, end - at)?;
            if let Some(ext) = piece.value {
                out.push(ext, GFP_KERNEL)?;
            }
            at = piece
                .start
                .checked_add(piece.len)
                .ok_or(Error::InvalidArgument)?;
        }
        Ok(())
    }

    /// Starts a transaction.
    pub fn begin(&mut self) -> Result<Txn> {
        self.txns.begin()
    }

    /// In `txn`, maps `lba..lba + ext.len` to `ext`.
    pub fn map(&mut self, txn: &Txn, lba: u64, ext: Extent) -> Result {
        self.txns.map(txn, lba, ext)
    }

    /// In `txn`, unmaps `lba..lba + len`.
    pub fn unmap(&mut self, txn: &Txn, lba: u64, len: u64) -> Result {
        self.txns.unmap(txn, lba, len)
    }

    /// In `txn`, the piece starting at `lba` (at most `max_len` blocks).
    pub fn lookup(&mut self, txn: &Txn, lba: u64, max_len: u64) -> Result<Piece<Extent>> {
        let tree = ReadTree::new(&self.tm, CFG, self.root);
        self.txns.lookup(txn, &tree, lba, max_len)
    }

    /// Commits `txn` (see [`TxnManager::commit`]); checkpoints first when
    /// the volume asks for it, unless the map is accounted.
    pub fn commit(&mut self, txn: Txn, durable: bool) -> Result<Outcome> {
        if !self.accounted && self.tm.store_mut().meta.needs_checkpoint() {
            self.checkpoint()?;
        }
        self.txns.commit(txn, self.tm.store_mut(), durable)
    }

    /// Checkpoints if the volume asks for it or `pending` committed
    /// tuples wait in the cache; returns whether it did.
    pub fn checkpoint_if_needed(&mut self, pending: usize) -> Result<bool> {
        let due = self.tm.store_mut().meta.needs_checkpoint()
            || self.txns.cache().tuples().len() >= pending;
        if due {
            self.checkpoint()?;
        }
        Ok(due)
    }

    /// The volume (superblock, allocator, WAL) and the device, together.
    pub fn volume_and_device(&mut self) -> (&mut MetaDevice, &mut D) {
        let s = self.tm.store_mut();
        (&mut s.meta, &mut s.dev)
    }

    /// The superblock of the last checkpoint.
    pub fn superblock(&mut self) -> Superblock {
        *self.tm.store_mut().meta.superblock()
    }

    /// Ends `txn` without effect.
    pub fn abort(&mut self, txn: Txn) {
        self.txns.abort(txn)
    }

    /// Applies committed transactions to the B-tree and runs a volume
    /// checkpoint with the new root.
    pub fn checkpoint(&mut self) -> Result {
        let applied = {
            let mut w = WriteTree::new(&mut self.tm, CFG, &mut self.root);
            self.txns.checkpoint(&mut w)?
        };
        self.tm.pre_checkpoint()?;
        let store = self.tm.store_mut();
        let mut roots = *store.meta.roots();
        roots[ROOT_SLOT_LBA_MAP] = self.root.to_raw();
        roots[ROOT_SLOT_APPLIED_SEQ] = applied;
        store.meta.checkpoint(&mut store.dev, &roots)?;
        self.tm.checkpoint_done()
    }

    /// The tree as of the last checkpoint's application (read-only).
    pub fn tree(&self) -> ReadTree<'_, Store<D>> {
        ReadTree::new(&self.tm, CFG, self.root)
    }

    /// The node store and the root, for a whole-tree check (the offline
    /// checker runs `testing::tree_check` on them).
    pub fn tree_parts(&self) -> (&NodeTm<Store<D>>, PAddr, BTreeConfig) {
        (&self.tm, self.root, CFG)
    }

    /// The transaction manager (statistics, sequence numbers).
    pub fn txns(&self) -> &TxnManager {
        &self.txns
    }

    /// The device (statistics, fault injection in tests).
    pub fn device(&mut self) -> &mut D {
        &mut self.tm.store_mut().dev
    }

    /// Closes the map without a checkpoint (what survives is what a crash
    /// would leave) and returns the device.
    pub fn into_device(self) -> D {
        self.tm.into_store().dev
    }
}
