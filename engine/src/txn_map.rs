// SPDX-License-Identifier: GPL-2.0

//! The LBA map of a volume: transactions, B-tree and checkpoints on the
//! performance device.
//!
//! [`LbaMap`] ties the layers together: the [`TxnManager`] over the tuple
//! cache, the copy-on-write B-tree on a [`DevNodeStore`], and the
//! [`Volume`] (superblocks, allocator, WAL). Redo records are WAL records of
//! kind [`WAL_KIND_REDO`]; a checkpoint applies the committed tuples to the
//! tree and stores its root and the last applied commit in the superblock's
//! root slots [`ROOT_SLOT_LBA_MAP`] and [`ROOT_SLOT_APPLIED_SEQ`]; opening
//! replays the WAL records after the last checkpoint and checkpoints at
//! once. The commit and copy-on-write rules are those of [`crate::txn`] and
//! [`crate::btree_tm`].
//!
//! One transaction's redo record must fit one WAL record: at most
//! [`MAX_TXN_TUPLES`] tuples; a bigger commit fails with `NoSpace` (and is
//! aborted).

use crate::alloc_io::DEFAULT_CACHE_PAGES;
use crate::btree::{create, BTreeConfig, ReadTree, WriteTree};
use crate::btree_devstore::DevNodeStore;
use crate::btree_extent::Extent;
use crate::btree_map::Piece;
use crate::btree_tm::{NodeTm, DEFAULT_CACHE_NODES};
use crate::checkpoint::{FormatOptions, Volume};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::paddr::PAddr;
use crate::txn::{Outcome, Txn, TxnManager};
use crate::txn_redo::RedoSink;
use crate::wal_block::MAX_PAYLOAD;

/// Superblock root slot holding the LBA map's B-tree root (raw address).
pub const ROOT_SLOT_LBA_MAP: usize = 0;
/// Superblock root slot holding the last commit applied to that tree.
pub const ROOT_SLOT_APPLIED_SEQ: usize = 1;
/// WAL record kind of redo records.
pub const WAL_KIND_REDO: u8 = 0x10;
/// Most tuples one transaction may commit (one WAL record).
pub const MAX_TXN_TUPLES: usize = (MAX_PAYLOAD - 24) / 32;

const CFG: BTreeConfig = BTreeConfig::LBA_MAP;

type Store<D> = DevNodeStore<D, Volume>;

impl<D: BlockDevice> RedoSink for DevNodeStore<D, Volume> {
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

/// A volume's LBA map.
pub struct LbaMap<D: BlockDevice> {
    tm: NodeTm<Store<D>>,
    root: PAddr,
    txns: TxnManager,
}

impl<D: BlockDevice> LbaMap<D> {
    /// Formats `dev` (see [`Volume::format`]) with an empty map.
    pub fn format(mut dev: D, opts: &FormatOptions) -> Result<Self> {
        let vol = Volume::format(&mut dev, opts, DEFAULT_CACHE_PAGES)?;
        Self::mount(dev, vol, None)
    }

    /// Opens the map on `dev`: the last checkpoint, then the WAL replayed.
    pub fn open(mut dev: D) -> Result<Self> {
        let vol = Volume::open(&mut dev, DEFAULT_CACHE_PAGES)?;
        let raw = vol.roots()[ROOT_SLOT_LBA_MAP];
        let root = PAddr::from_raw(raw, u64::MAX)?;
        Self::mount(dev, vol, Some(root))
    }

    /// Replays the WAL (after an open), creates the tree if `root` is
    /// `None`, checkpoints.
    fn mount(mut dev: D, mut vol: Volume, root: Option<PAddr>) -> Result<Self> {
        let mut txns = TxnManager::new(vol.roots()[ROOT_SLOT_APPLIED_SEQ]);
        if vol.wal().is_none() {
            vol.replay(&mut dev, |_, _, rec| match rec.kind {
                WAL_KIND_REDO => txns.replay(rec.payload).map(|_| ()),
                _ => Ok(()),
            })?;
        }
        let generation = vol.superblock().generation + 1;
        let store = DevNodeStore { dev, meta: vol };
        let mut tm = NodeTm::with_cache(store, generation, DEFAULT_CACHE_NODES)?;
        let root = match root {
            Some(r) => r,
            None => create(&mut tm, &CFG)?,
        };
        let mut map = Self { tm, root, txns };
        map.checkpoint()?;
        Ok(map)
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
    /// the volume asks for it.
    pub fn commit(&mut self, txn: Txn, durable: bool) -> Result<Outcome> {
        if self.tm.store_mut().meta.needs_checkpoint() {
            self.checkpoint()?;
        }
        self.txns.commit(txn, self.tm.store_mut(), durable)
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
