// SPDX-License-Identifier: GPL-2.0

//! The blk-mq disk: tag set, gendisk, request intake and completion.
//!
//! This is the other half of vtier's thin unsafe layer (with `bdev.rs`). The
//! kernel's `kernel::block::mq` abstraction has no way to end a request with
//! an error, no per-request driver data, no access to a request's bios and
//! no queue limits beyond block sizes, all of which a stacking driver needs;
//! so this file drives blk-mq through its C interface directly, in the
//! manner of `rust/kernel/block/mq/operations.rs`.
//!
//! # Data path (this stage)
//!
//! `/dev/vtierN` maps 1:1 onto the performance device, shifted by the
//! reserved metadata area. `queue_rq` clones every bio of a request onto the
//! backing device (`bio_alloc_clone`), remaps its sector and submits it; the
//! request ends when the last clone completes, with the first error any
//! clone reported. A flush request becomes one empty `REQ_PREFLUSH` bio.
//!
//! Submitting may sleep, so the tag set is `BLK_MQ_F_BLOCKING`. Clones are
//! allocated with `GFP_NOWAIT` all before the first is submitted: when
//! blk-mq calls `queue_rq` from inside another `submit_bio`, our clones only
//! reach the backing device after we return, so waiting on the bio set's
//! mempool here could wait for ourselves. If an allocation fails nothing has
//! been submitted, and the request goes back to blk-mq to be retried.
//!
//! # Request states
//!
//! A request's [`RqData::pending`] counts its clones in flight plus one
//! bias held by `queue_rq` while it submits. Whoever drops it to zero (the
//! last clone's completion or `queue_rq` itself) ends the request; nobody
//! touches the request afterwards.

use core::ffi::{c_uint, c_void};
use core::mem::size_of;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{Atomic, Full, Relaxed};
use kernel::types::Opaque;
use kernel::ModuleMetadata;

use crate::bdev::{BackingDevice, SECTORS_PER_BLOCK};
use crate::superblock::BLOCK_SIZE;

// C helpers in `helpers.c`; kernel structs cross only as pointers.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn vtier_blk_feat_write_cache_fua() -> bindings::blk_features_t;
    fn vtier_num_online_cpus() -> c_uint;
    fn vtier_disk_openers(disk: *mut bindings::gendisk) -> c_uint;
}

const REQ_OP_MASK: bindings::blk_opf_t = (1 << bindings::REQ_OP_BITS) - 1;
const REQ_FUA: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_FUA;
const REQ_PREFLUSH: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_PREFLUSH;

/// Tags per hardware queue.
const QUEUE_DEPTH: c_uint = 128;
/// At most this many hardware queues, however many CPUs are online.
const MAX_HW_QUEUES: c_uint = 8;
/// Bios kept in reserve for clones, so I/O makes progress under memory pressure.
const BIO_POOL_SIZE: c_uint = 64;

fn errno_status(err: Error) -> bindings::blk_status_t {
    // SAFETY: Pure function of its argument.
    unsafe { bindings::errno_to_blk_status(err.to_errno()) }
}

/// What a disk maps onto: the queue's `queuedata`.
///
/// # Invariants
///
/// `bioset` was initialised with `bioset_init` and is torn down on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct Target {
    perf: BackingDevice,
    data_start_sectors: u64,
    #[pin]
    bioset: Opaque<bindings::bio_set>,
}

impl Target {
    /// A target on `perf`, with vtier LBA 0 at block `data_start`.
    pub(crate) fn new(perf: BackingDevice, data_start: u64) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            perf,
            data_start_sectors: data_start * SECTORS_PER_BLOCK,
            // SAFETY: `bioset_init` initialises the zeroed bio set in place;
            // clones and flush bios need no inline vectors or front padding.
            bioset <- Opaque::try_ffi_init(|p: *mut bindings::bio_set| {
                // SAFETY: `p` is valid for writes and pinned.
                to_result(unsafe {
                    core::ptr::write_bytes(p, 0, 1);
                    bindings::bioset_init(p, BIO_POOL_SIZE, 0, 0)
                })
            }),
        })
    }

    fn bioset(&self) -> *mut bindings::bio_set {
        self.bioset.get()
    }
}

#[pinned_drop]
impl PinnedDrop for Target {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the bio set is initialised; the disk
        // was deleted before its target is dropped, so no bio is in flight.
        unsafe { bindings::bioset_exit(self.bioset.get()) };
    }
}

/// Driver data in every request's PDU.
struct RqData {
    /// Clones in flight, plus one while `queue_rq` is submitting.
    pending: Atomic<u32>,
    /// First error status a clone reported, `BLK_STS_OK` (0) if none.
    status: Atomic<u32>,
}

/// # Safety
///
/// `rq` must be a request of a vtier tag set (so its PDU is an [`RqData`]),
/// owned by the driver (between `queue_rq` and its end).
unsafe fn rq_data<'a>(rq: *mut bindings::request) -> &'a RqData {
    // SAFETY: By the safety requirements the PDU of `rq` is `cmd_size`
    // bytes reserved for an `RqData`, written by `queue_rq` before any use.
    unsafe { &*bindings::blk_mq_rq_to_pdu(rq).cast::<RqData>() }
}

/// Drops one reference on `rq`'s pending count; the last one ends it.
///
/// # Safety
///
/// As for [`rq_data`], and the caller must own one count of `pending`.
unsafe fn put_rq(rq: *mut bindings::request) {
    // SAFETY: By the safety requirements.
    let data = unsafe { rq_data(rq) };
    if data.pending.fetch_sub(1, Full) == 1 {
        let status = data.status.load(Relaxed) as bindings::blk_status_t;
        // SAFETY: This was the last count, so nobody else touches `rq`; it
        // is handed back to blk-mq here exactly once.
        unsafe { bindings::blk_mq_end_request(rq, status) };
    }
}

/// Completion of a clone or flush bio: record its status, release it, and
/// put its request.
///
/// # Safety
///
/// Called by the block layer for a bio submitted by [`queue_rq`], whose
/// `bi_private` is its request.
unsafe extern "C" fn clone_endio(bio: *mut bindings::bio) {
    // SAFETY: The bio is ours until `bio_put`, and was set up by `queue_rq`.
    let (rq, status) = unsafe { ((*bio).bi_private.cast::<bindings::request>(), (*bio).bi_status) };
    // SAFETY: `rq` is a vtier request owned by the driver: it cannot end
    // while this clone holds one count of it.
    let data = unsafe { rq_data(rq) };
    if status != 0 {
        let _ = data.status.cmpxchg(0, u32::from(status), Relaxed);
    }
    // SAFETY: The clone is not used after this.
    unsafe { bindings::bio_put(bio) };
    // SAFETY: This clone owned one count of `pending`.
    unsafe { put_rq(rq) };
}

/// Builds the chain (through `bi_next`) of bios to submit for `rq`: one
/// clone per bio, remapped, or one empty preflush bio for a flush. On
/// allocation failure, everything allocated is released.
///
/// # Safety
///
/// `rq` is a vtier request owned by the driver; `target` is its queue's.
unsafe fn build_bios(
    target: &Target,
    rq: *mut bindings::request,
) -> Result<(*mut bindings::bio, u32)> {
    let gfp = bindings::GFP_NOWAIT;
    // SAFETY: `rq` is valid by the safety requirements.
    let (cmd_flags, mut src) = unsafe { ((*rq).cmd_flags, (*rq).bio) };
    let op = cmd_flags & REQ_OP_MASK;
    let (mut head, mut tail, mut count): (*mut bindings::bio, *mut bindings::bio, u32) =
        (core::ptr::null_mut(), core::ptr::null_mut(), 0);

    let release = |mut b: *mut bindings::bio| {
        while !b.is_null() {
            // SAFETY: Each bio of the chain was allocated here and never
            // submitted.
            unsafe {
                let next = (*b).bi_next;
                bindings::bio_put(b);
                b = next;
            }
        }
    };

    if op == bindings::req_op_REQ_OP_FLUSH {
        // SAFETY: A zero-vector bio from our bio set on the backing device.
        let bio = unsafe {
            bindings::bio_alloc_bioset(
                target.perf.as_ptr(),
                0,
                bindings::req_op_REQ_OP_WRITE | REQ_PREFLUSH,
                gfp,
                target.bioset(),
            )
        };
        if bio.is_null() {
            return Err(ENOMEM);
        }
        return Ok((bio, 1));
    }

    while !src.is_null() {
        // SAFETY: `src` is a bio of `rq`, valid while the driver owns `rq`;
        // the clone shares its pages, which stay valid until `rq` ends.
        let clone = unsafe { bindings::bio_alloc_clone(target.perf.as_ptr(), src, gfp, target.bioset()) };
        if clone.is_null() {
            release(head);
            return Err(ENOMEM);
        }
        // SAFETY: `clone` is freshly allocated and owned here. Preflush is
        // done by blk-mq's flush machinery as a separate request; FUA is
        // taken from the request, which blk-mq keeps or clears.
        unsafe {
            (*clone).bi_iter.bi_sector += target.data_start_sectors;
            (*clone).bi_opf = ((*clone).bi_opf & !(REQ_PREFLUSH | REQ_FUA)) | (cmd_flags & REQ_FUA);
            (*clone).bi_next = core::ptr::null_mut();
            if tail.is_null() {
                head = clone;
            } else {
                (*tail).bi_next = clone;
            }
            tail = clone;
            src = (*src).bi_next;
        }
        count += 1;
    }
    Ok((head, count))
}

/// `blk_mq_ops.queue_rq`.
///
/// # Safety
///
/// Called by blk-mq with a valid `bd` whose request belongs to a queue
/// created by [`Disk::new`] (so `queuedata` is a live [`Target`]).
unsafe extern "C" fn queue_rq(
    _hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: By the safety requirements.
    let rq = unsafe { (*bd).rq };
    // SAFETY: `queuedata` is the pinned `Target` of this queue, which lives
    // until the disk is deleted, after which no request is queued.
    let target = unsafe { &*(*(*rq).q).queuedata.cast::<Target>() };
    // SAFETY: blk-mq handed `rq` to the driver.
    let op = unsafe { (*rq).cmd_flags } & REQ_OP_MASK;
    match op {
        bindings::req_op_REQ_OP_READ
        | bindings::req_op_REQ_OP_WRITE
        | bindings::req_op_REQ_OP_FLUSH
        | bindings::req_op_REQ_OP_DISCARD
        | bindings::req_op_REQ_OP_WRITE_ZEROES => {}
        _ => return errno_status(EOPNOTSUPP),
    }
    // SAFETY: `rq` is owned by the driver and `target` is its queue's.
    let (mut bio, count) = match unsafe { build_bios(target, rq) } {
        Ok(chain) => chain,
        // Nothing was submitted: blk-mq requeues the request and retries.
        Err(_) => return errno_status(ENOMEM),
    };

    // SAFETY: The PDU is reserved for an `RqData` (`cmd_size`); nothing else
    // uses it before the request is started.
    unsafe {
        bindings::blk_mq_rq_to_pdu(rq).cast::<RqData>().write(RqData {
            pending: Atomic::new(count + 1),
            status: Atomic::new(0),
        });
        bindings::blk_mq_start_request(rq);
    }
    while !bio.is_null() {
        // SAFETY: Each bio in the chain is owned here until submitted; after
        // `submit_bio` only `clone_endio` touches it.
        unsafe {
            let next = (*bio).bi_next;
            (*bio).bi_next = core::ptr::null_mut();
            (*bio).bi_end_io = Some(clone_endio);
            (*bio).bi_private = rq.cast::<c_void>();
            bindings::submit_bio(bio);
            bio = next;
        }
    }
    // SAFETY: `queue_rq` held the bias count.
    unsafe { put_rq(rq) };
    bindings::BLK_STS_OK as bindings::blk_status_t
}

/// `blk_mq_ops.init_hctx`: gives our flush queues their own lock class.
///
/// A backing device's flush completion ends our flush request from inside
/// its own `flush_end_io`, which holds its `mq_flush_lock`, and ours takes
/// our `mq_flush_lock`: two instances, one lockdep class by default, so
/// lockdep would report recursive locking. nvme-loop does the same.
///
/// # Safety
///
/// Called by blk-mq with a valid `hctx` being initialised.
unsafe extern "C" fn init_hctx(
    hctx: *mut bindings::blk_mq_hw_ctx,
    _data: *mut c_void,
    _index: c_uint,
) -> kernel::ffi::c_int {
    // SAFETY: `hctx` is valid and its flush queue allocated; the key is
    // static, so it outlives every queue.
    unsafe {
        bindings::blk_mq_hctx_set_fq_lock_class(hctx, kernel::static_lock_class!().as_ptr())
    };
    0
}

static MQ_OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
    queue_rq: Some(queue_rq),
    init_hctx: Some(init_hctx),
    // SAFETY: Every other member is an optional callback; all-zero is `None`.
    ..unsafe { core::mem::zeroed() }
};

/// `block_device_operations` whose owner pins the module while a vtier disk
/// is open. Static, because a gendisk may outlive the [`Disk`] that created
/// it (an opener keeps it until close) and still reads its `fops`.
struct Fops(bindings::block_device_operations);
// SAFETY: Read-only after compile time; the module pointer is only
// dereferenced by the module loader's refcounting.
unsafe impl Sync for Fops {}

static FOPS: Fops = Fops(bindings::block_device_operations {
    owner: <crate::VtierModule as ModuleMetadata>::THIS_MODULE.as_ptr(),
    // SAFETY: Every other member is an optional callback or pointer.
    ..unsafe { core::mem::zeroed() }
});

/// A blk-mq tag set.
///
/// # Invariants
///
/// `raw` was set up by `blk_mq_alloc_tag_set` and is freed on drop.
#[pin_data(PinnedDrop)]
struct TagSet {
    #[pin]
    raw: Opaque<bindings::blk_mq_tag_set>,
}

impl TagSet {
    fn new() -> impl PinInit<Self, Error> {
        // SAFETY: Plain query of the online CPU count.
        let cpus = unsafe { vtier_num_online_cpus() };
        try_pin_init!(Self {
            raw <- Opaque::try_ffi_init(move |set: *mut bindings::blk_mq_tag_set| {
                // SAFETY: `set` is valid for writes and pinned; every field
                // blk-mq reads is set here, the rest zeroed as it expects.
                to_result(unsafe {
                    core::ptr::write_bytes(set, 0, 1);
                    (*set).ops = &MQ_OPS;
                    (*set).nr_hw_queues = cpus.clamp(1, MAX_HW_QUEUES);
                    (*set).nr_maps = 1;
                    // `queue_rq` submits to the backing device, which may
                    // sleep (for one of its tags, for instance): blk-mq must
                    // call it where sleeping is allowed (SRCU, not RCU).
                    (*set).flags = bindings::BLK_MQ_F_BLOCKING;
                    (*set).queue_depth = QUEUE_DEPTH;
                    (*set).numa_node = bindings::NUMA_NO_NODE;
                    (*set).cmd_size = size_of::<RqData>() as c_uint;
                    bindings::blk_mq_alloc_tag_set(set)
                })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for TagSet {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant; its disk was deleted first.
        unsafe { bindings::blk_mq_free_tag_set(self.raw.get()) };
    }
}

/// A live `/dev/vtierN`.
///
/// # Invariants
///
/// `gendisk` was added with `device_add_disk`, its queue's `queuedata` is
/// `target`, and its tag set is `tag_set`; it is deleted and put on drop,
/// before `_tag_set` and `_target` are dropped (field order).
pub(crate) struct Disk {
    gendisk: NonNull<bindings::gendisk>,
    /// Owned for the gendisk, which uses it through raw pointers.
    _tag_set: Pin<KBox<TagSet>>,
    /// Owned for the gendisk: its queue's `queuedata`.
    _target: Pin<KBox<Target>>,
}

// SAFETY: The gendisk is only deleted from `drop`, which may run on any thread.
unsafe impl Send for Disk {}
// SAFETY: `&Disk` exposes nothing mutable.
unsafe impl Sync for Disk {}

impl Disk {
    /// Creates and adds the disk `vtier<index>` over `target`, with
    /// `nr_blocks` blocks of 4096 bytes.
    pub(crate) fn new(
        index: u32,
        target: impl PinInit<Target, Error>,
        nr_blocks: u64,
    ) -> Result<Self> {
        let disk_name = CString::try_from_fmt(fmt!("vtier{index}"))?;
        let disk_name = disk_name.to_bytes();
        let target = KBox::pin_init(target, GFP_KERNEL)?;
        let tag_set = KBox::pin_init(TagSet::new(), GFP_KERNEL)?;

        // SAFETY: All-zero is the documented starting point for limits.
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        lim.logical_block_size = BLOCK_SIZE as u32;
        lim.physical_block_size = BLOCK_SIZE as u32;
        lim.io_min = BLOCK_SIZE as u32;
        // SAFETY: Returns a constant.
        lim.features = unsafe { vtier_blk_feat_write_cache_fua() };
        let discard = target.perf.max_discard_sectors();
        if discard >= SECTORS_PER_BLOCK as u32 {
            lim.max_hw_discard_sectors = discard;
            lim.discard_granularity = BLOCK_SIZE as u32;
        }
        lim.max_write_zeroes_sectors = target.perf.write_zeroes_sectors();

        let queuedata = core::ptr::from_ref::<Target>(&target).cast_mut().cast::<c_void>();
        // SAFETY: `tag_set` is allocated; `lim` is initialised; `queuedata`
        // points to the pinned target, which outlives the disk (invariant).
        let gendisk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(
                tag_set.raw.get(),
                &mut lim,
                queuedata,
                kernel::static_lock_class!().as_ptr(),
            )
        })?;
        let gendisk = NonNull::new(gendisk).ok_or(ENOMEM)?;

        // SAFETY: `gendisk` is allocated and not yet added, so it is ours
        // to fill in; on failure it is put here and never used again.
        unsafe {
            let disk = gendisk.as_ptr();
            (*disk).fops = &FOPS.0;
            let name = &mut (*disk).disk_name;
            if name.len() <= disk_name.len() {
                bindings::put_disk(disk);
                return Err(EINVAL);
            }
            for (dst, src) in name.iter_mut().zip(Iterator::chain(disk_name.iter(), core::iter::once(&0))) {
                *dst = *src;
            }
            bindings::set_capacity(disk, nr_blocks * SECTORS_PER_BLOCK);
            let ret = bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut());
            if ret != 0 {
                bindings::put_disk(disk);
                return Err(Error::from_errno(ret));
            }
        }
        // INVARIANT: Added above over `target` and `tag_set`.
        Ok(Self { gendisk, _tag_set: tag_set, _target: target })
    }
}

impl Disk {
    /// Whether anyone has `/dev/vtierN` open (a mount, a process).
    pub(crate) fn is_open(&self) -> bool {
        // SAFETY: By the type invariant the gendisk is live.
        unsafe { vtier_disk_openers(self.gendisk.as_ptr()) > 0 }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the disk was added; `del_gendisk`
        // drains every request, so no clone references `target` afterwards.
        unsafe {
            bindings::del_gendisk(self.gendisk.as_ptr());
            bindings::put_disk(self.gendisk.as_ptr());
        }
    }
}
