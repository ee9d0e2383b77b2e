// SPDX-License-Identifier: GPL-2.0

//! One volume's metadata lower half on its performance device: superblocks,
//! allocation map and WAL, tied together by checkpoints (T5).
//!
//! # Checkpoint generation *G* ([`MetaDevice::checkpoint`])
//!
//! The caller has applied the generation's records to its copy-on-write
//! structures and written their new blocks (not necessarily flushed). Then:
//!
//! 1. commit pending WAL records (flush, write, flush);
//! 2. apply the deferred frees and write allocation-map copy *G* mod 2;
//! 3. flush: the caller's blocks and the map copy are durable;
//! 4. write superblock copy *G* mod 2 with the caller's roots, the map root
//!    and the WAL position of the end marker; flush;
//! 5. write the end marker of *G* at that position; flush.
//!
//! Until step 5 completes, recovery still finds generation *G* − 1 intact:
//! its superblock copy, its map copy and its WAL records were not touched.
//! Any error on the way fails the volume (sticky, every later call returns
//! `Error::ReadOnly`): it must be reopened, which recovers.
//!
//! # Recovery ([`MetaDevice::open`], then [`MetaDevice::replay`])
//!
//! `open` decodes both superblock copies, takes the newest that verifies
//! *and* whose end marker is in the WAL, and mounts its map copy (verified
//! from the superblock's CRC down). The caller loads its structures from
//! [`MetaDevice::roots`], then calls `replay`, which hands it every WAL record
//! after the end marker to re-apply (re-`reserve` the blocks a record
//! allocated, `free` the ones it freed). The caller must then checkpoint
//! before appending: [`MetaDevice::append`] refuses until it has, and
//! [`MetaDevice::checkpoint`] refuses before `replay`.

use crate::crypt::encryption::Encryption;
use crate::error::{Error, Result};
use crate::format::superblock::volume_tag;
use crate::format::superblock::{MapRoot, Role, Superblock, WalPosition, COPIES, NR_ROOTS};
use crate::io::device::{BlockDevice, BLOCK_SIZE};
use crate::journal::wal::Wal;
use crate::journal::wal_block::Record;
use crate::kcompat::{KBox, KVec, GFP_KERNEL};
use crate::space::allocator::{AllocLayout, AllocRoot, Allocator};
use crate::space::geometry::Geometry;

/// What [`MetaDevice::format`] needs to know.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FormatOptions {
    /// UUID of the volume set.
    pub volume_uuid: [u8; 16],
    /// UUID of this device.
    pub device_uuid: [u8; 16],
    /// Members in the set.
    pub nr_devices: u32,
    /// Blocks of WAL (at least 4).
    pub wal_blocks: u64,
    /// How the volume set is encrypted: the same on every member (one
    /// fixed tweak and key check value for the set, [`crate::crypt::encryption`]).
    pub encryption: Encryption,
}

/// The performance device's superblock, allocator and WAL.
pub struct MetaDevice {
    /// Boxed, as is the allocator: a `MetaDevice` moves through several
    /// functions on its way into the map, and the kernel stack is small.
    sb: KBox<Superblock>,
    alloc: KBox<Allocator>,
    /// `None` between `open` and `replay`.
    wal: Option<Wal>,
    failed: bool,
}

fn page() -> Result<KVec<u8>> {
    Ok(KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?)
}

fn layout_of(sb: &Superblock) -> AllocLayout {
    AllocLayout {
        nr_blocks: sb.nr_blocks,
        copies: sb.map.copies,
    }
}

fn alloc_root(sb: &Superblock) -> AllocRoot {
    AllocRoot {
        copy: (sb.generation & 1) as u32,
        crc: sb.map.crc,
        free: sb.map.free,
    }
}

/// Writes superblock `sb` into its copy (generation mod 2) and flushes.
fn write_superblock(dev: &mut dyn BlockDevice, sb: &Superblock, buf: &mut [u8]) -> Result {
    let block = COPIES[(sb.generation & 1) as usize];
    let out: &mut [u8; BLOCK_SIZE] = buf.try_into().map_err(|_| Error::InvalidArgument)?;
    sb.encode(block, out);
    dev.write(block, out)?;
    dev.flush()
}

/// Writes `sb` into both superblock copies (format only) and flushes.
fn write_both(dev: &mut dyn BlockDevice, sb: &Superblock) -> Result {
    let mut buf = page()?;
    for block in COPIES {
        let out: &mut [u8; BLOCK_SIZE] = (&mut buf[..])
            .try_into()
            .map_err(|_| Error::InvalidArgument)?;
        sb.encode(block, out);
        dev.write(block, out)?;
    }
    dev.flush()
}

impl MetaDevice {
    /// Formats `dev` as the performance device of a new volume: WAL, both
    /// map copies (fixed metadata allocated), end marker and both
    /// superblock copies of generation 1. Returns the mounted volume.
    pub fn format(
        dev: &mut dyn BlockDevice,
        opts: &FormatOptions,
        cache_pages: usize,
    ) -> Result<Self> {
        let nr_blocks = dev.nr_blocks();
        let geom = Geometry::new(nr_blocks)?;
        let wal = WalPosition {
            start: COPIES.len() as u64,
            blocks: opts.wal_blocks,
            tail: 0,
            tail_seq: 1,
        };
        let copy0 = wal
            .start
            .checked_add(wal.blocks)
            .ok_or(Error::InvalidArgument)?;
        let copies = [copy0, copy0 + geom.copy_blocks()];
        let data_start = copies[1] + geom.copy_blocks();
        if opts.wal_blocks < 4 || data_start >= nr_blocks {
            return Err(Error::InvalidArgument);
        }
        let generation = 1;
        let layout = AllocLayout { nr_blocks, copies };
        let (mut alloc, root) = Allocator::format(dev, layout, &[(0, data_start)], generation)?;
        alloc.set_cache_pages(cache_pages);
        let wal_log = Wal::format(dev, wal, generation, volume_tag(&opts.volume_uuid))?;
        let sb = Superblock {
            generation,
            volume_uuid: opts.volume_uuid,
            device_uuid: opts.device_uuid,
            role: Role::Performance,
            nr_blocks,
            device_index: 0,
            nr_devices: opts.nr_devices,
            wal,
            map: MapRoot {
                copies,
                blocks: geom.copy_blocks(),
                crc: root.crc,
                free: root.free,
            },
            data_start,
            roots: [0; NR_ROOTS],
            encryption: opts.encryption,
        };
        write_both(dev, &sb)?;
        Ok(Self {
            sb: KBox::new(sb, GFP_KERNEL)?,
            alloc: KBox::new(alloc, GFP_KERNEL)?,
            wal: Some(wal_log),
            failed: false,
        })
    }

    /// Where a capacity device of `nr_blocks` blocks keeps its two map
    /// copies, and its first block after them (its `data_start`).
    pub fn capacity_layout(nr_blocks: u64) -> Result<([u64; 2], u64)> {
        let copy = Geometry::new(nr_blocks)?.copy_blocks();
        let copy0 = COPIES.len() as u64;
        let copies = [copy0, copy0 + copy];
        Ok((copies, copies[1] + copy))
    }

    /// Formats `dev` as capacity device `device_index` (≥ 1) of the volume:
    /// both map copies (superblocks allocated) and both superblock copies
    /// of generation 1; no WAL (the performance device's WAL covers the set).
    pub fn format_capacity(
        dev: &mut dyn BlockDevice,
        opts: &FormatOptions,
        device_index: u32,
    ) -> Result<Superblock> {
        let nr_blocks = dev.nr_blocks();
        let geom = Geometry::new(nr_blocks)?;
        let (copies, data_start) = Self::capacity_layout(nr_blocks)?;
        if device_index == 0 || device_index >= opts.nr_devices || data_start >= nr_blocks {
            return Err(Error::InvalidArgument);
        }
        let layout = AllocLayout { nr_blocks, copies };
        let (_, root) = Allocator::format(dev, layout, &[(0, data_start)], 1)?;
        let sb = Superblock {
            generation: 1,
            volume_uuid: opts.volume_uuid,
            device_uuid: opts.device_uuid,
            role: Role::Capacity,
            nr_blocks,
            device_index,
            nr_devices: opts.nr_devices,
            wal: WalPosition::default(),
            map: MapRoot {
                copies,
                blocks: geom.copy_blocks(),
                crc: root.crc,
                free: root.free,
            },
            data_start,
            roots: [0; NR_ROOTS],
            encryption: opts.encryption,
        };
        write_both(dev, &sb)?;
        Ok(sb)
    }

    /// Decodes both superblock copies, newest first (invalid ones left out);
    /// the error of copy 0 if neither verifies.
    fn candidates(dev: &mut dyn BlockDevice) -> Result<KVec<Superblock>> {
        let mut buf = page()?;
        let mut out: KVec<Superblock> = KVec::new();
        let mut first_err = None;
        for block in COPIES {
            dev.read(block, &mut buf)?;
            match Superblock::decode(&buf, block) {
                Ok(sb) if sb.role == Role::Performance => out.push(sb, GFP_KERNEL)?,
                Ok(_) => first_err = first_err.or(Some(Error::InvalidArgument)),
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        // Newest first. (Two elements: a swap, not a sort, whose scratch
        // space for 300-byte elements would not fit a kernel stack.)
        if out.len() == 2 && out[1].generation > out[0].generation {
            out.swap(0, 1);
        }
        match (out.is_empty(), first_err) {
            (true, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }

    /// Picks the newest superblock whose checkpoint completed and mounts its
    /// map copy.
    fn choose(dev: &mut dyn BlockDevice, cache_pages: usize) -> Result<(Superblock, Allocator)> {
        let mut err = Error::Corrupt {
            block: Some(COPIES[0]),
            what: "no complete checkpoint",
        };
        for sb in Self::candidates(dev)?.iter() {
            let geom = Geometry::new(sb.nr_blocks)?;
            if sb.map.blocks != geom.copy_blocks() {
                err = Error::Corrupt {
                    block: Some(COPIES[(sb.generation & 1) as usize]),
                    what: "superblock map size",
                };
                continue;
            }
            let tag = volume_tag(&sb.volume_uuid);
            let mounted = Wal::check_end(dev, sb.wal, sb.generation, tag).and_then(|_| {
                Allocator::open(
                    dev,
                    layout_of(sb),
                    alloc_root(sb),
                    sb.generation,
                    cache_pages,
                )
            });
            match mounted {
                Ok(alloc) => return Ok((*sb, alloc)),
                Err(e) => err = e,
            }
        }
        Err(err)
    }

    /// Mounts the last complete checkpoint on `dev` (see the module docs);
    /// call [`MetaDevice::replay`] next.
    pub fn open(dev: &mut dyn BlockDevice, cache_pages: usize) -> Result<Self> {
        let (sb, alloc) = Self::choose(dev, cache_pages)?;
        Ok(Self {
            sb: KBox::new(sb, GFP_KERNEL)?,
            alloc: KBox::new(alloc, GFP_KERNEL)?,
            wal: None,
            failed: false,
        })
    }

    /// Hands every WAL record after the last checkpoint to `replay`, in
    /// order, with the allocator to re-apply its allocations and frees.
    /// Once only, after [`MetaDevice::open`].
    pub fn replay(
        &mut self,
        dev: &mut dyn BlockDevice,
        mut replay: impl FnMut(&mut Allocator, &mut dyn BlockDevice, Record<'_>) -> Result,
    ) -> Result {
        self.live()?;
        if self.wal.is_some() {
            return Err(Error::InvalidArgument);
        }
        let sb = *self.sb;
        let tag = volume_tag(&sb.volume_uuid);
        let alloc = &mut self.alloc;
        let wal = Wal::recover(dev, sb.wal, sb.generation, tag, &mut |d, rec| {
            replay(alloc, d, rec)
        });
        let wal = self.sticky(wal)?;
        self.wal = Some(wal);
        Ok(())
    }

    /// The superblock of the last checkpoint.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The roots stored by the last checkpoint.
    pub fn roots(&self) -> &[u64; NR_ROOTS] {
        &self.sb.roots
    }

    /// The allocator.
    pub fn alloc(&mut self) -> Result<&mut Allocator> {
        self.live()?;
        Ok(&mut self.alloc)
    }

    /// The WAL (statistics, free space); `None` before [`MetaDevice::replay`].
    pub fn wal(&self) -> Option<&Wal> {
        self.wal.as_ref()
    }

    /// Whether a checkpoint is due: after recovery, when the WAL is short
    /// of space, or when the allocator pins too many dirty pages.
    pub fn needs_checkpoint(&self) -> bool {
        let Some(wal) = &self.wal else {
            return true;
        };
        wal.needs_checkpoint()
            || wal.free_blocks() < self.sb.wal.blocks / 4
            || self.alloc.needs_checkpoint()
    }

    /// Whether an earlier failure made the volume read-only.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn live(&self) -> Result {
        if self.failed {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn wal_mut(&mut self) -> Result<&mut Wal> {
        self.live()?;
        self.wal.as_mut().ok_or(Error::InvalidArgument)
    }

    /// Sticky failure: any error of `r` fails the volume.
    fn sticky<T>(&mut self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Buffers a WAL record (see [`Wal::append`]); `Error::NoSpace` means
    /// checkpoint first.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<u64> {
        self.wal_mut()?.append(kind, payload)
    }

    /// Makes the records appended so far, and every block written before
    /// this call, durable.
    pub fn commit(&mut self, dev: &mut dyn BlockDevice) -> Result {
        let r = self.wal_mut()?.commit(dev);
        self.sticky(r)
    }

    /// Runs checkpoint generation *G* + 1 with `roots` (see the module docs).
    pub fn checkpoint(&mut self, dev: &mut dyn BlockDevice, roots: &[u64; NR_ROOTS]) -> Result {
        self.wal_mut()?;
        let r = self.checkpoint_steps(dev, roots);
        self.sticky(r)
    }

    fn checkpoint_steps(&mut self, dev: &mut dyn BlockDevice, roots: &[u64; NR_ROOTS]) -> Result {
        let generation = self.sb.generation + 1;
        let wal = self.wal.as_mut().ok_or(Error::InvalidArgument)?;
        wal.commit(dev)?;
        let root = self.alloc.write_copy(dev, generation)?;
        dev.flush()?;
        let sb = Superblock {
            generation,
            wal: wal.end_position()?,
            map: MapRoot {
                crc: root.crc,
                free: root.free,
                ..self.sb.map
            },
            roots: *roots,
            ..*self.sb
        };
        let mut buf = page()?;
        write_superblock(dev, &sb, &mut buf)?;
        wal.write_end(dev, generation)?;
        *self.sb = sb;
        Ok(())
    }
}
