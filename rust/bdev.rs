// SPDX-License-Identifier: GPL-2.0

//! Backing block devices: opened by path, exclusively, for one vtier device.
//!
//! One of the five files of `rust/` with `unsafe` code (with `blk.rs`,
//! `crypto.rs`, `ec_simd.rs` and `xts_selftest.rs`; the engine has none):
//! everything above it sees a [`BackingDevice`] with safe methods.

use kernel::ffi::{c_char, c_int, c_uint, c_void};
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::page::Page;
use kernel::prelude::*;
use kernel::str::BStr;
use kernel::types::Opaque;

use crate::io::device::BlockDevice;
use crate::error::Result as EngineResult;
use crate::path::DevPath;
use crate::io::device::BLOCK_SIZE;

/// Bios each member's own bio set keeps in reserve (the kernel's
/// `BIO_POOL_SIZE`): its I/O uses one at a time.
const BIO_RESERVE: c_uint = 2;

/// Sectors (512 bytes) per vtier block.
pub(crate) const SECTORS_PER_BLOCK: u64 = (BLOCK_SIZE / 512) as u64;

/// Most blocks one synchronous metadata bio carries (and bounce pages
/// each open member keeps).
const MAX_SYNC_BLOCKS: usize = 16;
/// I/O errors of one member logged in full before only every 1000th is.
const LOUD_ERRORS: u64 = 8;

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
    fn vtier_bdev_dead(bdev: *mut bindings::block_device) -> bool;
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

/// A bio set of one member's own, set up at open: its bios come from the
/// set's reserve when memory is short, and never wait for the bios of
/// others (a file system above vtier allocates from the kernel's shared
/// set, and may hold those bios while it waits for vtier).
///
/// # Invariants
///
/// `raw` was set up by a successful `bioset_init` and is torn down with
/// `bioset_exit` on drop only; it is boxed, so it never moves.
struct BioSet {
    raw: KBox<Opaque<bindings::bio_set>>,
}

impl BioSet {
    fn new() -> Result<Self> {
        let raw = KBox::new(Opaque::<bindings::bio_set>::uninit(), GFP_KERNEL)?;
        // SAFETY: `raw.get()` is valid for writes of one `bio_set` and stays
        // where it is (boxed). It is zeroed first: on failure `bioset_init`
        // tears down what it set up with `bioset_exit`, which expects the
        // fields it did not set to be zero.
        to_result(unsafe {
            core::ptr::write_bytes(raw.get(), 0, 1);
            bindings::bioset_init(raw.get(), BIO_RESERVE, 0, bindings::BIOSET_NEED_BVECS as c_int)
        })?;
        // INVARIANT: Set up just now.
        Ok(Self { raw })
    }

    fn as_ptr(&self) -> *mut bindings::bio_set {
        self.raw.get()
    }
}

impl Drop for BioSet {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the set is set up; none of its bios
        // is in flight (each is waited for and put before its I/O returns).
        unsafe { bindings::bioset_exit(self.raw.get()) };
    }
}

/// A block device opened for reading and writing, claimed exclusively.
///
/// Everything its I/O needs is allocated at open: its own bio set, the
/// bounce pages, and the path its error messages name. Its size is taken at open too: a
/// device that is hot-removed while open drops its capacity to zero, and
/// its I/O must then fail as an I/O error of that member (`ENXIO`), not as
/// a bad argument.
///
/// # Invariants
///
/// `file` was returned by a successful `bdev_file_open_by_path` and is put
/// (with `bdev_fput`) only on drop; `bdev` is `file_bdev(file)`, valid as long
/// as `file` is open.
pub(crate) struct BackingDevice {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
    /// [`MAX_SYNC_BLOCKS`] pages that every read and write bounces through.
    pages: KVec<Page>,
    /// Where its bios come from.
    bios: BioSet,
    /// Size in blocks at open.
    blocks: u64,
    /// The path it was opened by, for messages.
    path: KVec<u8>,
    /// I/O errors so far (for rate-limiting their messages).
    errors: u64,
    /// Whether it was found removed (and said so): no bio is built for it
    /// after that, its I/O fails at once.
    removed: bool,
}

// SAFETY: The block device file and block device may be used from any thread;
// the block layer does its own locking.
unsafe impl Send for BackingDevice {}
// SAFETY: The methods taking `&self` only call thread-safe block-layer
// functions; the bounce pages and counters are used through `&mut self`.
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
        let bios = match BioSet::new() {
            Ok(b) => b,
            Err(e) => {
                // SAFETY: `file` was opened above and is not used afterwards.
                unsafe { bindings::bdev_fput(file.as_ptr()) };
                return Err(e);
            }
        };
        let mut dev = Self {
            file,
            bdev,
            pages: KVec::new(),
            bios,
            blocks: 0,
            path: KVec::new(),
            errors: 0,
            removed: false,
        };
        // From here on `dev`'s drop puts `file`.
        dev.blocks = dev.nr_sectors() / SECTORS_PER_BLOCK;
        dev.path.extend_from_slice(path.as_bstr(), GFP_KERNEL)?;
        dev.pages.reserve(MAX_SYNC_BLOCKS, GFP_KERNEL)?;
        for _ in 0..MAX_SYNC_BLOCKS {
            dev.pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
        }
        // INVARIANT: `file` is open and `bdev` is its block device.
        Ok(dev)
    }

    /// The path the device was opened by, for messages.
    fn name(&self) -> &BStr {
        BStr::from_bytes(&self.path)
    }

    /// Whether the device has gone away (hot-removed) since it was opened.
    fn is_dead(&self) -> bool {
        // SAFETY: By the type invariant `bdev` is valid (the open file holds
        // it, and its gendisk, even after removal).
        unsafe { vtier_bdev_dead(self.as_ptr()) }
    }

    /// Logs failed I/O `what` at `block`, naming the device: the first
    /// [`LOUD_ERRORS`] of each device and every 1000th after; a device
    /// found removed is said so once. Returns `err` for the caller, `ENXIO`
    /// in place of any error once the device is gone.
    fn io_failed(&mut self, what: &str, block: u64, err: Error) -> Error {
        let n = self.errors;
        self.errors += 1;
        if self.is_dead() {
            if !self.removed {
                self.removed = true;
                pr_err!("{}: device removed: its I/O fails from now on ({} at block {})\n", self.name(), what, block);
            }
            return ENXIO;
        }
        if n < LOUD_ERRORS || n % 1000 == 0 {
            pr_err!("{}: {} at block {} failed ({}), {} I/O errors so far\n", self.name(), what, block, err.to_errno(), n + 1);
        }
        err
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
        // SAFETY: `bdev` is valid by the type invariant, and so is the
        // device's own bio set (its invariant). With GFP_KERNEL (GFP_NOIO in
        // vtier's workers) the allocation waits on the set's reserve, which
        // the previous bio of this device has gone back to.
        let bio = unsafe {
            bindings::bio_alloc_bioset(self.as_ptr(), nr_vecs, opf, bindings::GFP_KERNEL, self.bios.as_ptr())
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
    /// the device's pages: engine buffers may live anywhere (kmalloc,
    /// vmalloc, stack), bios want pages. Allocates nothing but the bios.
    fn bounce_io(&mut self, write: bool, block: u64, buf: BounceBuf<'_>) -> Result {
        let len = buf.len();
        if len == 0 || len % BLOCK_SIZE != 0 {
            return Err(EINVAL);
        }
        let nr = (len / BLOCK_SIZE) as u64;
        match block.checked_add(nr) {
            Some(end) if end <= self.blocks => {}
            _ => return Err(EINVAL),
        }
        let what = if write { "write" } else { "read" };
        if self.removed {
            // Gone for good: no bio is built for it any more.
            return Err(ENXIO);
        }
        let opf = if write {
            bindings::req_op_REQ_OP_WRITE | REQ_SYNC | REQ_META
        } else {
            bindings::req_op_REQ_OP_READ | REQ_META
        };
        let mut buf = buf;
        for (chunk, first) in (0..nr).step_by(MAX_SYNC_BLOCKS).enumerate() {
            let count = (nr - first).min(MAX_SYNC_BLOCKS as u64) as usize;
            let off = chunk * MAX_SYNC_BLOCKS * BLOCK_SIZE;
            let pages = self.pages.get(..count).ok_or(EINVAL)?;
            if let BounceBuf::Out(src) = &buf {
                for (i, page) in pages.iter().enumerate() {
                    let at = off + i * BLOCK_SIZE;
                    // SAFETY: `src[at..at + BLOCK_SIZE]` is in bounds (the
                    // length was checked above) and the page holds
                    // `BLOCK_SIZE` bytes.
                    unsafe { page.write_raw(src[at..].as_ptr(), 0, BLOCK_SIZE)? };
                }
            }
            if let Err(e) = self.sync_io(opf, block + first, pages) {
                return Err(self.io_failed(what, block + first, e));
            }
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
        self.blocks
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
        if self.removed {
            return Err(ENXIO.into());
        }
        // SAFETY: By the type invariant `bdev` is valid.
        if let Err(e) = to_result(unsafe { bindings::blkdev_issue_flush(self.as_ptr()) }) {
            return Err(self.io_failed("flush", 0, e).into());
        }
        Ok(())
    }
}

impl Drop for BackingDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `file` is open; it is not used again.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}
