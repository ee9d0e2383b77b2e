// SPDX-License-Identifier: GPL-2.0

//! Backing block devices: opened by path, exclusively, for one vtier device.
//!
//! One of the five files of `rust/` with `unsafe` code (with `blk.rs`,
//! `crypto.rs`, `ec_simd.rs` and `xts_selftest.rs`; the engine has none):
//! everything above it sees a [`BackingDevice`] with safe methods.

use kernel::ffi::{c_char, c_uint, c_void};
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::page::Page;
use kernel::prelude::*;

use crate::io::device::BlockDevice;
use crate::error::Result as EngineResult;
use crate::path::DevPath;
use crate::io::device::BLOCK_SIZE;

/// Sectors (512 bytes) per vtier block.
pub(crate) const SECTORS_PER_BLOCK: u64 = (BLOCK_SIZE / 512) as u64;

/// Most blocks one synchronous metadata bio carries.
const MAX_SYNC_BLOCKS: usize = 16;

const REQ_SYNC: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_SYNC;
const REQ_META: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_META;

// C helpers in `helpers.c`. Kernel structs cross only as pointers, which C
// treats as opaque here, so their Rust layouts do not matter.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn vtier_bdev_open(path: *const c_char, holder: *mut c_void) -> *mut bindings::file;
    fn vtier_bdev_nr_sectors(bdev: *mut bindings::block_device) -> bindings::sector_t;
    fn vtier_bdev_logical_block_size(bdev: *mut bindings::block_device) -> c_uint;
    fn vtier_bdev_dev(bdev: *mut bindings::block_device) -> bindings::dev_t;
}

/// Looks `path` up without opening it: its device number, or `ENOENT` if
/// nothing is there and `ENOTBLK` if it is not a block device.
pub(crate) fn lookup(path: &DevPath) -> Result<bindings::dev_t> {
    let mut dev: bindings::dev_t = 0;
    // SAFETY: `path.as_char_ptr()` is a NUL-terminated string that lives
    // across the call, and `dev` is a valid place for the result.
    to_result(unsafe { bindings::lookup_bdev(path.as_char_ptr(), &mut dev) })?;
    Ok(dev)
}

/// A block device opened for reading and writing, claimed exclusively.
///
/// # Invariants
///
/// `file` was returned by a successful `bdev_file_open_by_path` and is put
/// (with `bdev_fput`) only on drop; `bdev` is `file_bdev(file)`, valid as long
/// as `file` is open.
pub(crate) struct BackingDevice {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
}

// SAFETY: The block device file and block device may be used from any thread;
// the block layer does its own locking.
unsafe impl Send for BackingDevice {}
// SAFETY: All methods take `&self` and only call thread-safe block-layer
// functions.
unsafe impl Sync for BackingDevice {}

impl BackingDevice {
    /// Opens `path` exclusively for `holder`. Fails with `ENOENT`, `ENOTBLK`,
    /// `EBUSY` (claimed by another holder or mounted), `EACCES` (read-only).
    ///
    /// `holder` identifies the vtier device; opening the same block device
    /// twice for the same holder succeeds, so callers compare [`Self::dev`].
    pub(crate) fn open(path: &DevPath, holder: *mut c_void) -> Result<Self> {
        // SAFETY: `path` is NUL-terminated and lives across the call; a
        // non-null `holder` asks for an exclusive claim, and no holder
        // operations are passed.
        let file = from_err_ptr(unsafe { vtier_bdev_open(path.as_char_ptr(), holder) })?;
        let file = NonNull::new(file).ok_or(EINVAL)?;
        // SAFETY: `file` is an open block device file.
        let bdev = unsafe { bindings::file_bdev(file.as_ptr()) };
        let Some(bdev) = NonNull::new(bdev) else {
            // SAFETY: `file` was opened above and is not used afterwards.
            unsafe { bindings::bdev_fput(file.as_ptr()) };
            return Err(EINVAL);
        };
        // INVARIANT: `file` is open and `bdev` is its block device.
        Ok(Self { file, bdev })
    }

    /// The raw block device, for building bios against it.
    pub(crate) fn as_ptr(&self) -> *mut bindings::block_device {
        self.bdev.as_ptr()
    }

    /// Device number (major:minor).
    pub(crate) fn dev(&self) -> bindings::dev_t {
        // SAFETY: By the type invariant `bdev` is valid.
        unsafe { vtier_bdev_dev(self.as_ptr()) }
    }

    /// Size in 512-byte sectors.
    pub(crate) fn nr_sectors(&self) -> u64 {
        // SAFETY: By the type invariant `bdev` is valid.
        unsafe { vtier_bdev_nr_sectors(self.as_ptr()) }
    }

    /// Logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: By the type invariant `bdev` is valid.
        unsafe { vtier_bdev_logical_block_size(self.as_ptr()) }
    }

    /// Submits one bio of operation `opf` covering `pages` (one block each)
    /// from `block` on, and waits for it.
    fn sync_io(&self, opf: bindings::blk_opf_t, block: u64, pages: &[Page]) -> Result {
        let nr_vecs = u16::try_from(pages.len()).map_err(|_| EINVAL)?;
        // SAFETY: `bdev` is valid by the type invariant; `fs_bio_set` is the
        // kernel's general-purpose bio set, the one `bio_alloc()` uses. With
        // GFP_KERNEL the allocation waits on its mempool.
        let bio = unsafe {
            bindings::bio_alloc_bioset(
                self.as_ptr(),
                nr_vecs,
                opf,
                bindings::GFP_KERNEL,
                &raw mut bindings::fs_bio_set,
            )
        };
        if bio.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `bio` was just allocated with room for `pages.len()`
        // vectors and is owned here until `bio_put`; the pages outlive it,
        // since it is waited for before returning.
        let ret = unsafe {
            (*bio).bi_iter.bi_sector = block * SECTORS_PER_BLOCK;
            for page in pages {
                if bindings::bio_add_page(bio, page.as_ptr(), BLOCK_SIZE as c_uint, 0)
                    != BLOCK_SIZE as i32
                {
                    bindings::bio_put(bio);
                    return Err(EIO);
                }
            }
            let ret = bindings::submit_bio_wait(bio);
            bindings::bio_put(bio);
            ret
        };
        to_result(ret)
    }

    /// Reads or writes `buf` (whole blocks) at `block`, bouncing through
    /// pages: engine buffers may live anywhere (kmalloc, vmalloc, stack),
    /// bios want pages.
    fn bounce_io(&self, write: bool, block: u64, buf: BounceBuf<'_>) -> Result {
        let len = buf.len();
        if len == 0 || len % BLOCK_SIZE != 0 {
            return Err(EINVAL);
        }
        let nr = (len / BLOCK_SIZE) as u64;
        match block.checked_add(nr) {
            Some(end) if end <= self.nr_sectors() / SECTORS_PER_BLOCK => {}
            _ => return Err(EINVAL),
        }
        let opf = if write {
            bindings::req_op_REQ_OP_WRITE | REQ_SYNC | REQ_META
        } else {
            bindings::req_op_REQ_OP_READ | REQ_META
        };
        let mut pages: KVec<Page> = KVec::with_capacity(MAX_SYNC_BLOCKS, GFP_KERNEL)?;
        let mut buf = buf;
        for (chunk, first) in (0..nr).step_by(MAX_SYNC_BLOCKS).enumerate() {
            let count = (nr - first).min(MAX_SYNC_BLOCKS as u64) as usize;
            let off = chunk * MAX_SYNC_BLOCKS * BLOCK_SIZE;
            pages.clear();
            for i in 0..count {
                let page = Page::alloc_page(GFP_KERNEL)?;
                if let BounceBuf::Out(src) = &buf {
                    let at = off + i * BLOCK_SIZE;
                    // SAFETY: `src[at..at + BLOCK_SIZE]` is in bounds (checked
                    // above) and the page holds `BLOCK_SIZE` bytes.
                    unsafe { page.write_raw(src[at..].as_ptr(), 0, BLOCK_SIZE)? };
                }
                pages.push(page, GFP_KERNEL)?;
            }
            self.sync_io(opf, block + first, &pages)?;
            if let BounceBuf::In(dst) = &mut buf {
                for (i, page) in pages.iter().enumerate() {
                    let at = off + i * BLOCK_SIZE;
                    // SAFETY: As above, for writes into `dst`.
                    unsafe { page.read_raw(dst[at..].as_mut_ptr(), 0, BLOCK_SIZE)? };
                }
            }
        }
        Ok(())
    }
}

/// A caller's buffer for [`BackingDevice::bounce_io`].
enum BounceBuf<'a> {
    In(&'a mut [u8]),
    Out(&'a [u8]),
}

impl BounceBuf<'_> {
    fn len(&self) -> usize {
        match self {
            BounceBuf::In(b) => b.len(),
            BounceBuf::Out(b) => b.len(),
        }
    }
}

/// The engine's view of a member device: synchronous metadata I/O.
impl BlockDevice for BackingDevice {
    fn nr_blocks(&self) -> u64 {
        self.nr_sectors() / SECTORS_PER_BLOCK
    }

    fn read(&mut self, block: u64, buf: &mut [u8]) -> EngineResult {
        self.bounce_io(false, block, BounceBuf::In(buf))?;
        Ok(())
    }

    fn write(&mut self, block: u64, buf: &[u8]) -> EngineResult {
        self.bounce_io(true, block, BounceBuf::Out(buf))?;
        Ok(())
    }

    fn flush(&mut self) -> EngineResult {
        // SAFETY: By the type invariant `bdev` is valid.
        to_result(unsafe { bindings::blkdev_issue_flush(self.as_ptr()) })?;
        Ok(())
    }
}

impl Drop for BackingDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `file` is open; it is not used again.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}
