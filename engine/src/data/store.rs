// SPDX-License-Identifier: GPL-2.0

//! The data path of a vtier device: what `/dev/vtierN` reads and writes.
//!
//! A write becomes one data log entry per [`MAX_ENTRY_BLOCKS`] blocks on
//! the performance tier ([`crate::data::datalog`]); when the free space is cut
//! into runs too short for header and data, the write is split, and a
//! single block that still finds no two free blocks together is stored
//! without its header (its extent checksum still covers it). The data is
//! encrypted once,
//! with the volume's fixed tweak, into the caller's buffer, the entry is
//! written to blocks the allocator gives (after the previous entry while
//! there is room), and one transaction maps the logical blocks to it
//! ([`LbaMap`]). What the write displaced is freed once that transaction
//! has committed. A read looks every piece up through the map, reads it
//! where it lives, checks the entry checksum when the piece is a whole
//! entry, and decrypts. Unmapped blocks read as zeros; a discard unmaps.
//!
//! Durability is the block layer's: a completed write survives a crash
//! once a later [`Store::flush`] has completed. The flush commits the
//! redo records, and every WAL commit flushes the data entries first, so
//! a map that survives a crash never points at data that did not.
//!
//! With a capacity tier ([`StripeStore`]), [`Store::destage`] moves
//! data on into erasure-coded stripes: the stored bytes (ciphertext on an
//! encrypted volume) are copied as they are, never decrypted or
//! re-encrypted, the stripe is committed, and one transaction repoints the
//! logical blocks at it; the performance-tier blocks are freed like any
//! displaced ones. Writes destage on their own when the performance tier
//! runs short of free blocks.
//!
//! The store counts the live blocks of every stripe: how many logical
//! blocks the map points at in it. The counts are built by a scan of the
//! map when the volume is opened and kept by every commit since. A stripe
//! whose count drops to zero (its blocks overwritten or discarded) is freed
//! once the map that no longer points at it is durable (after the next
//! flush or checkpoint), never before: until then a crash could bring the
//! old mapping back. Opening also frees allocated stripes the durable map
//! does not point at, which a crash between a destage's stripe commit and
//! its map commit leaves behind.
//!
//! Destaging leaves [`COMPACT_RESERVE`] stripes free. When it would need
//! them, the store first compacts: the live blocks of the emptiest
//! stripes that fit one stripe together ([`Victims`]) move, as stored,
//! into a new stripe the way a destage moves data, the WAL is committed,
//! and the emptied stripes are freed. Destaging stops only when no two
//! stripes' live blocks fit one stripe together.
//!
//! The store is single-threaded: the kernel serialises calls with a lock.

use crate::btree::node::{INTERNAL_CAPACITY, LEAF_CAPACITY};
use crate::crypt::cipher::{Tweak, XtsCipher};
use crate::crypt::encryption::Encryption;
use crate::data::datalog::{self, Entry, ENTRY_ENCRYPTED, MAX_ENTRY_BLOCKS};
use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::format::superblock::volume_tag;
use crate::format::superblock::Superblock;
use crate::io::device::{BlockDevice, BLOCK_SIZE};
use crate::io::paddr::{Location, PAddr};
use crate::journal::meta_device::FormatOptions;
use crate::kcompat::{KBox, KVVec, KVec, GFP_KERNEL};
use crate::map::extent::{Extent, EXTENT_CSUM, EXTENT_ENCRYPTED, EXTENT_HEADED};
use crate::map::lba_map::{release, LbaMap};
use crate::map::txn::Outcome;
use crate::stripe::geometry::StripeGeometry;
use crate::stripe::store::StripeStore;
use crate::stripe::victims::Skipped;

mod compact;
mod destage;

/// Committed map updates the tuple cache holds before a checkpoint is
/// forced (bounds the cache's memory and the replay after a crash).
pub const CHECKPOINT_TUPLES: usize = 4096;
/// Most pieces one transaction repoints when a stripe is written (one
/// WAL record: below [`crate::map::lba_map::MAX_TXN_TUPLES`]); a stripe
/// takes as many such transactions as it needs.
const DESTAGE_EXTENTS: usize = 64;

/// Stripes of the capacity tier that destaging leaves free, so that a
/// compaction always has one to write the live blocks of emptier stripes
/// into.
pub const COMPACT_RESERVE: u64 = 1;

/// Sets of stripes one compaction tries before it gives up when the data
/// of the emptiest cannot be read, and compactions one destaged stripe
/// waits for.
const COMPACT_TRIES: usize = 4;

/// Counters (debugfs, `vtierctl`, tests).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DataStats {
    /// Read calls.
    pub reads: u64,
    /// Write calls.
    pub writes: u64,
    /// Discard calls.
    pub discards: u64,
    /// Flush calls.
    pub flushes: u64,
    /// Blocks read from the device for reads (holes not counted).
    pub blocks_read: u64,
    /// Data blocks written (headers not counted).
    pub blocks_written: u64,
    /// Data log entries written.
    pub entries: u64,
    /// Blocks encrypted or decrypted.
    pub cipher_calls: u64,
    /// Entries whose data did not match their checksum on a read.
    pub checksum_errors: u64,
    /// Checkpoints run by the store.
    pub checkpoints: u64,
    /// Stripes freed because nothing pointed at them any more.
    pub stripes_reclaimed: u64,
    /// Times a stripe's live count disagreed with the map (the stripe is
    /// kept; the next open recounts), and opens whose scan of the map
    /// failed (no stripe is freed until an open scans it whole).
    pub stripe_count_errors: u64,
    /// Stripe frees that failed (the stripe stays allocated until the
    /// next open frees it).
    pub stripe_free_errors: u64,
    /// Stripes written by destaging.
    pub destaged_stripes: u64,
    /// Blocks moved to the capacity tier.
    pub destaged_blocks: u64,
    /// Blocks read from the capacity tier.
    pub stripe_blocks_read: u64,
    /// Stripes written by compaction: the live blocks of emptier stripes,
    /// moved so that those could be freed.
    pub compacted_stripes: u64,
    /// Blocks compaction moved.
    pub compacted_blocks: u64,
    /// Compactions given up because the chosen stripes could not be read
    /// as stored (they are left out of later ones).
    pub compaction_errors: u64,
    /// Stripes destaged in the background (above the high watermark).
    pub background_destages: u64,
    /// Blocks of failed writes that could not be given back to the
    /// allocator: they stay allocated, unused, until it is rebuilt.
    pub leaked_blocks: u64,
}

/// Free blocks kept for a checkpoint beyond what its pending tuples may
/// need (a root split, the first shadow of a level).
const CHECKPOINT_SLACK: u64 = 16;

/// The most levels the LBA map of `nr_lbas` logical blocks can have:
/// leaves a third full (one extent per block at worst), internal nodes a
/// third full above them.
fn map_height(nr_lbas: u64) -> u64 {
    let mut nodes = nr_lbas.div_ceil(LEAF_CAPACITY as u64 / 3);
    let mut height = 1;
    while nodes > 1 {
        nodes = nodes.div_ceil(INTERNAL_CAPACITY as u64 / 3);
        height += 1;
    }
    height
}

/// When data moves to the capacity tier in the background: in percent of
/// the performance tier's data area in use (blocks whose free waits for
/// the next checkpoint count as free). Above `high` destaging starts,
/// below `low` it stops; writers that outrun it destage themselves when
/// the tier is three quarters full. `high` 0 turns background destaging
/// off.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// Percent in use that starts destaging.
    pub high: u8,
    /// Percent in use that stops it.
    pub low: u8,
}

impl Default for Watermarks {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Watermarks {
    /// Destage from 60 % in use down to 40 %: the performance tier keeps
    /// the hot data and room for bursts of writes.
    pub const DEFAULT: Self = Self { high: 60, low: 40 };

    /// Checked watermarks: `low < high <= 100`, or both 0 (off).
    pub fn new(high: u8, low: u8) -> Result<Self> {
        if (high == 0 && low == 0) || (low < high && high <= 100) {
            Ok(Self { high, low })
        } else {
            Err(Error::InvalidArgument)
        }
    }
}

/// One stripe in this many of the capacity tier is left out of the
/// exported size, so that compaction always has room to work in and its
/// cost stays bounded: with every logical block written, stripes are on
/// average at most seven eighths live.
pub const CAPACITY_RESERVE_DIV: u64 = 8;

/// Logical blocks a device exports.
///
/// - Without a capacity tier: two fifths of the performance tier's data
///   area. A 4 KiB write takes two blocks (header and data), and
///   displaced blocks stay allocated until the next checkpoint, so this is
///   what can always be written, whatever the pattern.
/// - With one (`stripes`): what the capacity tier's stripes hold (their
///   data chunks, `k` of every `k + m`), less one stripe in
///   [`CAPACITY_RESERVE_DIV`] (at least [`COMPACT_RESERVE`] + 1) kept free
///   for compaction, the performance tier being the write log and the hot
///   data in front of it. That is bounded by what the performance tier can
///   map: the LBA map's leaves, a third full at worst (one extent per
///   block) and shadowed once within a generation, may take half of its
///   data area. The size is never less than without a capacity tier.
pub fn capacity(sb: &Superblock, stripes: Option<&StripeGeometry>) -> u64 {
    let area = sb.nr_blocks.saturating_sub(sb.data_start);
    let alone = area / 5 * 2;
    let Some(geom) = stripes else {
        return alone;
    };
    let reserve = (geom.nr_stripes / CAPACITY_RESERVE_DIV).max(COMPACT_RESERVE + 1);
    let striped = geom
        .nr_stripes
        .saturating_sub(reserve)
        .saturating_mul(geom.data_blocks());
    let mappable = (area / 2).saturating_mul(LEAF_CAPACITY as u64 / 3) / 2;
    striped.min(mappable).max(alone)
}

/// The performance tier's data area, in blocks, and how much of it is
/// free now and free at the next checkpoint.
struct PerfSpace {
    area: u64,
    free: u64,
    deferred: u64,
}

/// The key id recorded in entries: the first four bytes of the key check
/// value (0 when not encrypted).
fn key_id(enc: &Encryption) -> u32 {
    match enc {
        Encryption::None => 0,
        Encryption::AesXts { kcv, .. } => {
            let id = u32::from_le_bytes([kcv[0], kcv[1], kcv[2], kcv[3]]);
            id.max(1)
        }
    }
}

/// Checks that `cipher` fits the volume: a key for an encrypted volume
/// ([`Error::WrongKey`] if it is missing or wrong), none for a plain one.
fn check_cipher<C: XtsCipher>(enc: &Encryption, cipher: Option<&C>) -> Result {
    match (enc, cipher) {
        (Encryption::None, None) => Ok(()),
        (Encryption::None, Some(_)) => Err(Error::InvalidArgument),
        (Encryption::AesXts { .. }, None) => Err(Error::WrongKey),
        (Encryption::AesXts { .. }, Some(c)) => enc.check_key(c),
    }
}

/// The data path over a performance device. See the module docs.
pub struct Store<D: BlockDevice, C: XtsCipher> {
    map: LbaMap<D>,
    cipher: Option<C>,
    tweak: Tweak,
    key_id: u32,
    tag: u64,
    nr_lbas: u64,
    /// Where the next entry should go.
    hint: u64,
    header: KVec<u8>,
    displaced: KVec<Extent>,
    stats: DataStats,
    /// The capacity tier, if the volume has one (boxed: it is big, and
    /// the store moves through a few functions on a kernel stack).
    stripes: Option<KBox<StripeStore<D>>>,
    /// One stripe's data, allocated at the first destage.
    stage: KVec<u8>,
    /// Where the next destage looks for data on the performance tier.
    destage_at: u64,
    /// Live blocks of every stripe of the capacity tier (see the module
    /// docs); empty without one.
    live: KVVec<u32>,
    /// Stripes whose count dropped to zero, freed at the next point where
    /// the map is durable.
    unreferenced: KVec<u64>,
    /// Stripes compaction could not read, left out of later compactions
    /// (until the volume is reopened).
    compact_skip: Skipped,
    /// The last compaction found no two stripes to empty, and no live
    /// count has dropped since: the next one would not either, and is
    /// not tried (a full tier would otherwise rescan every count on
    /// every write).
    compact_futile: bool,
    /// When background destaging starts and stops.
    watermarks: Watermarks,
    /// Background destaging is running: the performance tier went above
    /// the high watermark and has not come down to the low one yet.
    background: bool,
}

impl<D: BlockDevice, C: XtsCipher> Store<D, C> {
    /// Formats `dev` as the performance device of a new volume (see
    /// [`LbaMap::format`]; `opts.encryption` says how it is encrypted) and
    /// opens it with `cipher`.
    pub fn format(dev: D, opts: &FormatOptions, cipher: Option<C>) -> Result<Self> {
        check_cipher(&opts.encryption, cipher.as_ref())?;
        let dev = LbaMap::format(dev, opts)?.into_device();
        Self::open(dev, None, cipher)
    }

    /// Opens the volume on `dev`, with the capacity tier `stripes` if it
    /// has one: the key is checked before anything is written, then the
    /// map is recovered (see [`LbaMap::open_accounted`]).
    pub fn open(dev: D, stripes: Option<StripeStore<D>>, cipher: Option<C>) -> Result<Self> {
        let mut map =
            LbaMap::open_accounted(dev, |sb| check_cipher(&sb.encryption, cipher.as_ref()))?;
        let sb = map.superblock();
        let mut header = KVec::new();
        header.resize(BLOCK_SIZE, 0u8, GFP_KERNEL)?;
        // Without memory for the counts the volume still opens; it only
        // does not free stripes (`reclaims_stripes`).
        let live = stripes
            .as_ref()
            .and_then(|st| usize::try_from(st.geometry().nr_stripes).ok())
            .and_then(|n| KVVec::from_elem(0u32, n, GFP_KERNEL).ok())
            .unwrap_or_default();
        let mut store = Self {
            tweak: sb.encryption.tweak().copied().unwrap_or([0; 16]),
            key_id: key_id(&sb.encryption),
            tag: volume_tag(&sb.volume_uuid),
            nr_lbas: capacity(&sb, stripes.as_ref().map(|st| st.geometry())),
            hint: sb.data_start,
            map,
            cipher,
            header,
            displaced: KVec::new(),
            stats: DataStats::default(),
            stripes: match stripes {
                Some(st) => Some(KBox::new(st, GFP_KERNEL)?),
                None => None,
            },
            stage: KVec::new(),
            destage_at: 0,
            live,
            unreferenced: KVec::new(),
            compact_skip: Skipped::default(),
            compact_futile: false,
            watermarks: Watermarks::DEFAULT,
            background: false,
        };
        if !store.live.is_empty() {
            if store.count_live().is_ok() {
                store.free_unmapped_stripes();
            } else {
                // A map that cannot be scanned whole (an unreadable node,
                // an extent naming a stripe that does not exist) gives no
                // counts to trust: nothing is freed. Reads of what it
                // cannot map fail on their own.
                store.live = KVVec::new();
                store.stats.stripe_count_errors += 1;
            }
        }
        Ok(store)
    }

    /// Whether the store frees stripes whose data is all overwritten or
    /// discarded: it has a capacity tier, had memory for one count per
    /// stripe at open, and could scan the map.
    pub fn reclaims_stripes(&self) -> bool {
        !self.live.is_empty()
    }

    /// Counts the live blocks of every stripe from the map.
    fn count_live(&mut self) -> Result {
        let txn = self.map.begin()?;
        let r = (|| {
            let mut at = 0;
            while at < self.nr_lbas {
                let piece = self.map.lookup(&txn, at, self.nr_lbas - at)?;
                let len = piece.len.clamp(1, self.nr_lbas - at);
                if let Some(ext) = piece.value {
                    if let Location::Stripe { stripe, .. } = ext.paddr.location() {
                        let n = self.live_of(stripe)?.ok_or(Error::InvalidArgument)?;
                        let len = u32::try_from(len).map_err(|_| Error::InvalidArgument)?;
                        *n = n.checked_add(len).ok_or(Error::Corrupt {
                            block: Some(ext.paddr.to_raw()),
                            what: "stripe: more live blocks than a count holds",
                        })?;
                    }
                }
                at += len;
            }
            Ok(())
        })();
        self.map.abort(txn);
        r
    }

    /// The live count of `stripe`, `None` when the store does not count
    /// (see [`Store::reclaims_stripes`]); a stripe the capacity tier does
    /// not have is a corrupt map.
    fn live_of(&mut self, stripe: u64) -> Result<Option<&mut u32>> {
        if self.live.is_empty() {
            return Ok(None);
        }
        usize::try_from(stripe)
            .ok()
            .and_then(|s| self.live.get_mut(s))
            .map(Some)
            .ok_or(Error::Corrupt {
                block: Some(stripe),
                what: "map points at a stripe the capacity tier does not have",
            })
    }

    /// Frees the allocated stripes the (durable, just opened) map does not
    /// point at, and commits the capacity tier if there were any. A failure
    /// is counted, not returned: the volume opens, and the next open tries
    /// again.
    fn free_unmapped_stripes(&mut self) {
        let Some(st) = self.stripes.as_deref_mut() else {
            return;
        };
        if st.is_read_only() {
            return;
        }
        let mut freed = 0u64;
        for (s, &n) in (0u64..).zip(self.live.iter()) {
            match st.is_allocated(s) {
                Ok(true) if n == 0 => match st.free_stripe(s) {
                    Ok(()) => freed += 1,
                    Err(_) => self.stats.stripe_free_errors += 1,
                },
                Ok(_) => {}
                Err(_) => self.stats.stripe_free_errors += 1,
            }
        }
        if freed > 0 && st.commit().is_err() {
            // Nothing was freed: the tier is read-only until reopened.
            self.stats.stripe_free_errors += 1;
            return;
        }
        self.stats.stripes_reclaimed += freed;
    }

    /// Frees the stripes that lost their last live block, now that the map
    /// without them is durable (their frees are durable at the capacity
    /// tier's next commit). A read-only tier keeps them, and a free that
    /// fails is counted, not returned (the flush or checkpoint that called
    /// this succeeded): the next open frees what nothing points at.
    fn free_unreferenced(&mut self) {
        let Some(st) = self.stripes.as_deref_mut() else {
            return;
        };
        if self.unreferenced.is_empty() || st.is_read_only() {
            return;
        }
        for &s in self.unreferenced.iter() {
            match st.free_stripe(s) {
                Ok(()) => self.stats.stripes_reclaimed += 1,
                Err(_) => self.stats.stripe_free_errors += 1,
            }
        }
        self.unreferenced.clear();
    }

    /// The capacity tier, if any (status, fault handling).
    pub fn stripes(&mut self) -> Option<&mut StripeStore<D>> {
        self.stripes.as_deref_mut()
    }

    /// The volume's cipher, if it is encrypted (tests).
    pub fn cipher(&self) -> Option<&C> {
        self.cipher.as_ref()
    }

    /// Logical blocks the device exports.
    pub fn nr_lbas(&self) -> u64 {
        self.nr_lbas
    }

    /// The counters.
    pub fn stats(&self) -> DataStats {
        self.stats
    }

    /// What the open found after the map's last checkpoint.
    pub fn recovery(&self) -> crate::map::lba_map::Recovery {
        self.map.recovery()
    }

    /// The map (tests, tools).
    pub fn map(&mut self) -> &mut LbaMap<D> {
        &mut self.map
    }

    /// Checks that `lba .. lba + blocks` is inside the device and that
    /// `len` bytes are whole blocks; returns the number of blocks.
    fn check_range(&self, lba: u64, len: usize) -> Result<u64> {
        if len == 0 || len % BLOCK_SIZE != 0 {
            return Err(Error::InvalidArgument);
        }
        let n = (len / BLOCK_SIZE) as u64;
        match lba.checked_add(n) {
            Some(end) if end <= self.nr_lbas => Ok(n),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Reads `buf.len() / BLOCK_SIZE` blocks from `lba` into `buf`.
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result {
        let n = self.check_range(lba, buf.len())?;
        self.stats.reads += 1;
        let txn = self.map.begin()?;
        let r = self.read_in(&txn, lba, n, buf);
        self.map.abort(txn);
        r
    }

    fn read_in(&mut self, txn: &crate::map::txn::Txn, lba: u64, n: u64, buf: &mut [u8]) -> Result {
        let mut at = 0u64;
        while at < n {
            let piece = self.map.lookup(txn, lba + at, n - at)?;
            let len = piece.len.min(n - at);
            let from = at as usize * BLOCK_SIZE;
            let to = (at + len) as usize * BLOCK_SIZE;
            let out = buf.get_mut(from..to).ok_or(Error::InvalidArgument)?;
            match piece.value {
                None => out.fill(0),
                Some(ext) => self.read_extent(&ext, out)?,
            }
            at += len;
        }
        Ok(())
    }

    /// Reads the (sliced) extent `ext`, `out.len()` bytes of it.
    fn read_extent(&mut self, ext: &Extent, out: &mut [u8]) -> Result {
        self.read_stored(ext, out)?;
        self.stats.blocks_read += (out.len() / BLOCK_SIZE) as u64;
        if ext.flags & EXTENT_ENCRYPTED != 0 {
            let cipher = self.cipher.as_ref().ok_or(Error::WrongKey)?;
            for b in out.chunks_exact_mut(BLOCK_SIZE) {
                cipher.decrypt_unit(b, &self.tweak)?;
                self.stats.cipher_calls += 1;
            }
        }
        Ok(())
    }

    /// Reads `out.len()` bytes of the (sliced) extent `ext` as they are
    /// stored (ciphertext on an encrypted volume), wherever it lives; the
    /// checksum of a whole extent is checked, so corrupt data is an error,
    /// never returned or spread further.
    fn read_stored(&mut self, ext: &Extent, out: &mut [u8]) -> Result {
        let block = ext.paddr.error_block();
        match ext.paddr.location() {
            Location::Perf { block } => {
                let (_, dev) = self.map.volume_and_device();
                dev.read(block, out)?;
            }
            Location::Stripe { .. } => {
                let stripes = self.stripes.as_mut().ok_or(Error::Corrupt {
                    block: Some(block),
                    what: "extent in a stripe, but the volume has no capacity tier",
                })?;
                stripes.read_paddr(ext.paddr, out)?;
                self.stats.stripe_blocks_read += (out.len() / BLOCK_SIZE) as u64;
            }
            Location::Device { .. } => {
                return Err(Error::Corrupt {
                    block: Some(block),
                    what: "extent on a capacity device outside any stripe",
                });
            }
        }
        if ext.flags & EXTENT_CSUM != 0
            && out.len() == ext.len as usize * BLOCK_SIZE
            && crc32c(out) != ext.csum
        {
            self.stats.checksum_errors += 1;
            return Err(Error::BadChecksum { block });
        }
        Ok(())
    }

    /// Writes `buf` at `lba`. `buf` is the store's to use: on an encrypted
    /// volume it holds ciphertext afterwards.
    pub fn write(&mut self, lba: u64, buf: &mut [u8]) -> Result {
        self.check_range(lba, buf.len())?;
        self.stats.writes += 1;
        let mut at = 0u64;
        for chunk in buf.chunks_mut(MAX_ENTRY_BLOCKS as usize * BLOCK_SIZE) {
            self.write_entry(lba + at, chunk)?;
            at += (chunk.len() / BLOCK_SIZE) as u64;
        }
        Ok(())
    }

    /// Commits `txn`, which must not abort: the store is the map's only
    /// writer and holds one transaction at a time, so an abort (a
    /// conflict) is an error of the caller.
    fn commit(&mut self, txn: crate::map::txn::Txn) -> Result {
        match self.map.commit(txn, false)? {
            Outcome::Committed { .. } => Ok(()),
            Outcome::Aborted => Err(Error::InvalidArgument),
        }
    }

    /// Checkpoints when due; counts it.
    fn maybe_checkpoint(&mut self) -> Result {
        if self.map.checkpoint_if_needed(CHECKPOINT_TUPLES)? {
            self.stats.checkpoints += 1;
            self.free_unreferenced();
        }
        Ok(())
    }

    /// Blocks the next checkpoint may need for the B-tree: every pending
    /// tuple may shadow one node per level of the map and split one, plus
    /// a little for the root. Data never takes these, or a full tier
    /// could not checkpoint, and its deferred frees (which only a
    /// checkpoint makes free) would never come back.
    fn checkpoint_room(&self) -> u64 {
        let tuples = self.map.txns().cache().tuples().len() as u64;
        tuples
            .saturating_mul(2 * map_height(self.nr_lbas))
            .saturating_add(CHECKPOINT_SLACK)
    }

    /// Allocates `len` contiguous blocks, or `None` if there is no such
    /// free run now, or taking it would leave less than
    /// [`Store::checkpoint_room`] free.
    fn try_alloc(&mut self, len: u32) -> Result<Option<u64>> {
        let hint = self.hint;
        let room = self.checkpoint_room();
        let (vol, dev) = self.map.volume_and_device();
        let alloc = vol.alloc()?;
        if alloc.free_blocks() < room.saturating_add(u64::from(len)) {
            return Ok(None);
        }
        match alloc.alloc_extent(dev, hint, len) {
            Ok(b) => Ok(Some(b)),
            Err(Error::NoSpace) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where an entry of `nr` data blocks goes: header and data together
    /// (`Some((start, true))`), or, for a single block when the free space
    /// is cut into single blocks, the data alone (`Some((start, false))`).
    /// Short of space, checkpoints (which frees displaced blocks) and
    /// destages; `None` if there is still no room for `nr` blocks at once.
    fn place(&mut self, nr: u32) -> Result<Option<(u64, bool)>> {
        for attempt in 0..3 {
            if let Some(b) = self.try_alloc(nr + 1)? {
                return Ok(Some((b, true)));
            }
            if nr == 1 {
                if let Some(b) = self.try_alloc(1)? {
                    return Ok(Some((b, false)));
                }
            }
            match attempt {
                0 => {}
                1 => {
                    if self.destage(8)? == 0 {
                        continue;
                    }
                }
                _ => break,
            }
            self.map.checkpoint()?;
            self.stats.checkpoints += 1;
            self.free_unreferenced();
        }
        Ok(None)
    }

    /// Whether the performance tier is short of free blocks: under a
    /// quarter of its data area. Blocks whose free waits for the next
    /// checkpoint count as free: a checkpoint, not a destage, gives them
    /// back ([`Store::place`] runs it when an allocation finds no room).
    fn perf_short(&mut self) -> Result<bool> {
        let p = self.perf_space()?;
        Ok(p.free + p.deferred < p.area / 4)
    }

    /// The performance tier's data area and how much of it is free.
    fn perf_space(&mut self) -> Result<PerfSpace> {
        let (vol, _) = self.map.volume_and_device();
        let sb = vol.superblock();
        let area = sb.nr_blocks.saturating_sub(sb.data_start);
        let alloc = vol.alloc()?;
        Ok(PerfSpace {
            area,
            free: alloc.free_blocks(),
            deferred: alloc.deferred_blocks(),
        })
    }

    /// One entry: at most [`MAX_ENTRY_BLOCKS`] blocks.
    ///
    /// The entry's blocks are given back if anything fails before its
    /// transaction is committed, and never after: from the commit on, the
    /// map (and, once the WAL is written, the durable map) points at them.
    /// A commit that fails may already have logged its redo record, so its
    /// blocks are not given back either: they stay allocated (leaked, not
    /// reused) rather than risk a map that points at reused blocks.
    fn write_entry(&mut self, lba: u64, data: &mut [u8]) -> Result {
        let nr = (data.len() / BLOCK_SIZE) as u32;
        if self.stripes.is_some() && self.perf_short()? {
            self.destage(1)?;
        }
        self.maybe_checkpoint()?;
        let Some((start, headed)) = self.place(nr)? else {
            if nr == 1 {
                return Err(Error::NoSpace);
            }
            // No free run that long: two smaller entries.
            let half = (nr / 2) as usize * BLOCK_SIZE;
            let (a, b) = data.split_at_mut(half);
            self.write_entry(lba, a)?;
            return self.write_entry(lba + (half / BLOCK_SIZE) as u64, b);
        };
        let blocks = nr + u32::from(headed);
        let txn = match self
            .encrypt(data)
            .and_then(|encrypted| self.log_entry(lba, start, headed, data, encrypted))
        {
            Ok(txn) => txn,
            Err(e) => {
                self.give_back(start, blocks);
                return Err(e);
            }
        };
        match self.map.commit(txn, false)? {
            Outcome::Committed { .. } => {}
            Outcome::Aborted => {
                // Nothing was logged: nothing maps the entry.
                self.give_back(start, blocks);
                return Err(Error::InvalidArgument);
            }
        }
        self.hint = start + u64::from(blocks);
        self.stats.entries += 1;
        self.stats.blocks_written += u64::from(nr);
        self.release_displaced()
    }

    /// Encrypts `data` in place when the volume is encrypted; returns
    /// whether it did.
    fn encrypt(&mut self, data: &mut [u8]) -> Result<bool> {
        let Some(cipher) = &self.cipher else {
            return Ok(false);
        };
        for b in data.chunks_exact_mut(BLOCK_SIZE) {
            cipher.encrypt_unit(b, &self.tweak)?;
            self.stats.cipher_calls += 1;
        }
        Ok(true)
    }

    /// Frees the blocks of an entry that nothing maps (at the next
    /// checkpoint). A failure leaks them until the allocator is rebuilt;
    /// it never frees anything else.
    fn give_back(&mut self, start: u64, blocks: u32) {
        let (vol, dev) = self.map.volume_and_device();
        if vol
            .alloc()
            .and_then(|a| a.free(dev, start, blocks))
            .is_err()
        {
            self.stats.leaked_blocks += u64::from(blocks);
        }
    }

    /// Writes the entry at `start` and maps it in a new transaction, which
    /// it returns uncommitted (aborted on error).
    fn log_entry(
        &mut self,
        lba: u64,
        start: u64,
        headed: bool,
        data: &[u8],
        encrypted: bool,
    ) -> Result<crate::map::txn::Txn> {
        let nr = (data.len() / BLOCK_SIZE) as u32;
        let data_crc = crc32c(data);
        let txn = self.map.begin()?;
        let entry = Entry {
            // The commit that follows is the next one: the store is the
            // only writer and holds no other transaction open.
            seq: self.map.txns().last_seq() + 1,
            lba,
            nr_blocks: nr,
            key_id: if encrypted { self.key_id } else { 0 },
            data_crc,
            flags: if encrypted { ENTRY_ENCRYPTED } else { 0 },
        };
        match self.log_and_map(&txn, &entry, start, headed, data) {
            Ok(()) => Ok(txn),
            Err(e) => {
                self.map.abort(txn);
                Err(e)
            }
        }
    }

    fn log_and_map(
        &mut self,
        txn: &crate::map::txn::Txn,
        entry: &Entry,
        start: u64,
        headed: bool,
        data: &[u8],
    ) -> Result {
        let mut flags = EXTENT_CSUM;
        let first = if headed {
            datalog::encode(entry, start, self.tag, &mut self.header)?;
            let (_, dev) = self.map.volume_and_device();
            dev.write(start, &self.header)?;
            flags |= EXTENT_HEADED;
            start + 1
        } else {
            start
        };
        let (_, dev) = self.map.volume_and_device();
        dev.write(first, data)?;
        if entry.flags & ENTRY_ENCRYPTED != 0 {
            flags |= EXTENT_ENCRYPTED;
        }
        let ext = Extent {
            paddr: PAddr::perf(first)?,
            len: entry.nr_blocks,
            csum: entry.data_crc,
            flags,
        };
        self.displaced.clear();
        self.map.mapped_in(
            txn,
            entry.lba,
            u64::from(entry.nr_blocks),
            &mut self.displaced,
        )?;
        self.map.map(txn, entry.lba, ext)
    }

    /// Frees the extents the last commit displaced (at the next
    /// checkpoint). A failure here means the allocator and the map
    /// disagree: the volume is corrupt, and the error says so.
    fn release_displaced(&mut self) -> Result {
        let (vol, dev) = self.map.volume_and_device();
        let alloc = vol.alloc()?;
        for ext in self.displaced.iter() {
            release(alloc, dev, ext)?;
        }
        for i in 0..self.displaced.len() {
            let Some(ext) = self.displaced.get(i).copied() else {
                break;
            };
            let Location::Stripe { stripe, .. } = ext.paddr.location() else {
                continue;
            };
            // A stripe lost live blocks: it may be worth compacting now.
            self.compact_futile = false;
            let n = match self.live_of(stripe) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                // The map names a stripe the tier does not have: its read
                // fails; nothing to count here.
                Err(_) => {
                    self.stats.stripe_count_errors += 1;
                    continue;
                }
            };
            match n.checked_sub(ext.len) {
                Some(0) => {
                    *n = 0;
                    // Without memory to remember it, the stripe stays
                    // allocated until the next open frees it: the write
                    // that displaced it has committed and must not fail.
                    if self.unreferenced.push(stripe, GFP_KERNEL).is_err() {
                        self.stats.stripe_free_errors += 1;
                    }
                }
                Some(left) => *n = left,
                // The counts disagree with the map: keep the stripe (the
                // next open recounts and frees what nothing points at).
                None => {
                    *n = 0;
                    self.stats.stripe_count_errors += 1;
                }
            }
        }
        self.displaced.clear();
        Ok(())
    }

    /// Unmaps `nr` blocks from `lba`; they read as zeros afterwards.
    pub fn discard(&mut self, lba: u64, nr: u64) -> Result {
        let len = usize::try_from(nr)
            .ok()
            .and_then(|n| n.checked_mul(BLOCK_SIZE))
            .ok_or(Error::InvalidArgument)?;
        self.check_range(lba, len)?;
        self.stats.discards += 1;
        let step = u64::from(crate::map::extent::MAX_EXTENT_LEN);
        let mut at = 0;
        while at < nr {
            let len = step.min(nr - at);
            self.maybe_checkpoint()?;
            let txn = self.map.begin()?;
            self.displaced.clear();
            let r = self
                .map
                .mapped_in(&txn, lba + at, len, &mut self.displaced)
                .and_then(|()| self.map.unmap(&txn, lba + at, len));
            if let Err(e) = r {
                self.map.abort(txn);
                return Err(e);
            }
            self.commit(txn)?;
            self.release_displaced()?;
            at += len;
        }
        Ok(())
    }

    /// Makes every completed write and discard durable.
    pub fn flush(&mut self) -> Result {
        self.stats.flushes += 1;
        let (vol, dev) = self.map.volume_and_device();
        vol.commit(dev)?;
        self.free_unreferenced();
        Ok(())
    }

    /// Checkpoints and returns the device, and the capacity tier's
    /// (clean shutdown).
    pub fn close(mut self) -> Result<(D, Option<StripeStore<D>>)> {
        self.map.checkpoint()?;
        self.free_unreferenced();
        if let Some(st) = self.stripes.as_mut() {
            if !st.is_read_only() {
                st.commit()?;
            }
        }
        Ok((self.map.into_device(), self.stripes.map(KBox::into_inner)))
    }

    /// The devices as they are, without a checkpoint or a commit: what a
    /// power cut leaves behind (crash tests).
    pub fn into_devices(self) -> (D, Option<StripeStore<D>>) {
        (self.map.into_device(), self.stripes.map(KBox::into_inner))
    }

    /// Verifies the data log entry that owns the extent mapping `lba`, if
    /// that extent still starts its entry: header and data checksum.
    /// Returns the entry (tests and `vtierctl check`).
    pub fn verify_entry_at(&mut self, lba: u64) -> Result<Option<Entry>> {
        let txn = self.map.begin()?;
        let piece = self.map.lookup(&txn, lba, 1);
        self.map.abort(txn);
        let Some(ext) = piece?.value else {
            return Ok(None);
        };
        let Location::Perf { block } = ext.paddr.location() else {
            return Ok(None);
        };
        if ext.flags & EXTENT_HEADED == 0 {
            return Ok(None);
        }
        let hblock = block.checked_sub(1).ok_or(Error::InvalidArgument)?;
        let tag = self.tag;
        let (_, dev) = self.map.volume_and_device();
        let mut hdr = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
        dev.read(hblock, &mut hdr)?;
        let entry = datalog::decode(&hdr, hblock, tag)?;
        let mut data = KVec::from_elem(0u8, entry.nr_blocks as usize * BLOCK_SIZE, GFP_KERNEL)?;
        dev.read(block, &mut data)?;
        datalog::verify_data(&entry, &data, block)?;
        Ok(Some(entry))
    }
}
