// SPDX-License-Identifier: GPL-2.0

//! The blk-mq disk: tag set, gendisk, request intake, serving and
//! completion.
//!
//! This file is only the block layer's side of a vtier device, as the
//! kernel's Rust null block driver is: what a powered volume is made of,
//! and what can be done to it from configfs (status, destage, scrub,
//! rebuild, replace), is `volume.rs`, which reaches the store through
//! [`Target::with_store`]. `volume.rs` states the device's lock order;
//! [`State`] says who takes the target's lock.
//!
//! One of the five files of `rust/` with `unsafe` code (`bdev.rs` lists
//! them). The kernel's `kernel::block::mq` abstraction has no way to end a
//! request with an error, no per-request driver data, no access to a
//! request's bios and no queue limits beyond block sizes, all of which a
//! stacking driver needs; so this file drives blk-mq through its C
//! interface directly, in the manner of
//! `rust/kernel/block/mq/operations.rs`.
//!
//! # Data path
//!
//! `/dev/vtierN` is served by the engine's [`Store`]: data log entries on
//! the performance device, found through the LBA map, encrypted when the
//! volume is. The store does synchronous I/O, which `queue_rq` must not
//! wait for (it may run inside another `submit_bio`, where our bios would
//! only be issued after it returns), so `queue_rq` starts the request and
//! hands it to an ordered workqueue (`rq_queue.c`); the worker serves the
//! requests one at a time under the target's lock and ends each with the
//! store's result. A read or write goes through one bounce buffer of
//! [`MAX_REQUEST_BYTES`]; FUA is a write followed by a flush; discard and
//! write-zeroes unmap (unmapped blocks read as zeros).
//!
//! An error is returned for its request alone and logged, naming the
//! device; the engine makes a volume whose metadata could not be written
//! fail every later write, so nothing half-written is ever acknowledged.

use core::ffi::{c_uint, c_void};
use core::ptr::NonNull;

use kernel::alloc::KVVec;
use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;
use kernel::str::{BStr, CString};
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::Mutex;
use kernel::types::Opaque;
use kernel::ModuleMetadata;

use crate::bdev::{BackingDevice, SECTORS_PER_BLOCK};
use crate::crypto::Xts;
use crate::data::store::Store;
use crate::io::device::BLOCK_SIZE;

/// The engine's data path over vtier's member devices and cipher.
pub(crate) type VolumeStore = Store<BackingDevice, Xts>;

/// `rq_queue.c`'s queue: C owns its layout, only pointers cross.
#[repr(C)]
struct RqQueue {
    _opaque: [u8; 0],
}

// C helpers in `helpers.c` and `rq_queue.c`; kernel structs cross only as
// pointers.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn vtier_blk_feat_write_cache_fua() -> bindings::blk_features_t;
    fn vtier_num_online_cpus() -> c_uint;
    fn vtier_disk_openers(disk: *mut bindings::gendisk) -> c_uint;
    fn vtier_rq_queue_create(
        name: *const kernel::ffi::c_char,
        f: unsafe extern "C" fn(*mut bindings::request),
    ) -> *mut RqQueue;
    fn vtier_rq_queue_add(q: *mut RqQueue, rq: *mut bindings::request);
    fn vtier_rq_queue_destroy(q: *mut RqQueue);
    fn vtier_rq_queue_set_background(q: *mut RqQueue, f: unsafe extern "C" fn(*mut c_void) -> bool, data: *mut c_void);
    fn vtier_rq_queue_kick(q: *mut RqQueue);
    fn vtier_rq_queue_stop_background(q: *mut RqQueue);
    fn vtier_rq_copy(rq: *mut bindings::request, buf: *mut c_void, len: c_uint, to_rq: bool) -> c_uint;
    fn vtier_rq_pos(rq: *mut bindings::request) -> u64;
    fn vtier_call_on_fresh_stack(f: unsafe extern "C" fn(*mut c_void), data: *mut c_void);
    fn vtier_rq_bytes(rq: *mut bindings::request) -> c_uint;
}

const REQ_OP_MASK: bindings::blk_opf_t = (1 << bindings::REQ_OP_BITS) - 1;
const REQ_FUA: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_FUA;
const REQ_PREFLUSH: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_PREFLUSH;

/// Tags per hardware queue.
const QUEUE_DEPTH: c_uint = 128;
/// At most this many hardware queues, however many CPUs are online.
const MAX_HW_QUEUES: c_uint = 8;
/// Largest read or write request (the bounce buffer's size): 1 MiB, one
/// data log entry.
pub(crate) const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Largest discard or write-zeroes request, in sectors (1 GiB).
const MAX_UNMAP_SECTORS: u32 = 1 << 21;
/// Errors logged in full before only every 1000th is.
const LOUD_ERRORS: u32 = 16;

fn errno_status(err: Error) -> bindings::blk_status_t {
    // SAFETY: Pure function of its argument.
    unsafe { bindings::errno_to_blk_status(err.to_errno()) }
}

/// Runs `f` in a kworker, on an empty stack, and waits for its result.
///
/// Opening a volume (recovery, first checkpoint), closing it (last
/// checkpoint) and the volume's operations (destage, scrub, rebuild,
/// replace) go deep into the engine; the configfs write that asks for them
/// has already used part of its stack. The kworker allocates without
/// recursing into I/O (`rq_queue.c`), as the request worker does.
pub(crate) fn on_fresh_stack<T, F: FnOnce() -> Result<T>>(f: F) -> Result<T> {
    struct Call<T, F> {
        f: Option<F>,
        out: Option<Result<T>>,
    }
    /// # Safety
    ///
    /// `data` points to a live `Call<T, F>` nobody else touches meanwhile.
    unsafe extern "C" fn trampoline<T, F: FnOnce() -> Result<T>>(data: *mut c_void) {
        // SAFETY: By the safety requirements.
        let call = unsafe { &mut *data.cast::<Call<T, F>>() };
        if let Some(f) = call.f.take() {
            call.out = Some(f());
        }
    }
    let mut call = Call { f: Some(f), out: None };
    // SAFETY: `call` outlives the worker's run: the C side waits for it
    // (`flush_work`) before returning, and nothing else uses `call` meanwhile.
    unsafe { vtier_call_on_fresh_stack(trampoline::<T, F>, (&raw mut call).cast()) };
    call.out.unwrap_or(Err(EIO))
}

/// What [`Target::state`] protects: the store and the bounce buffer the
/// worker serves requests with.
///
/// Taken by
/// - the request worker, for each request it serves ([`Target::serve_op`])
///   and after a failed one, to see whether the volume went read-only;
/// - the volume's operations (`volume.rs`, through
///   [`Target::with_store`]), for a configfs access that holds the
///   device's configfs lock, in that thread or in a kworker it waits for
///   ([`on_fresh_stack`]);
/// - [`Target`]'s drop, to take the store out before closing it.
///
/// It is a mutex, held across the engine's synchronous I/O; while it is
/// held nothing takes the configfs lock, which comes before it.
struct State {
    /// `None` once the store is closed (never used again). Boxed: it is
    /// big, and moves through frames of a kernel stack.
    store: Option<KBox<VolumeStore>>,
    /// Bounce buffer of [`MAX_REQUEST_BYTES`].
    buf: KVVec<u8>,
}

/// The request queue and its worker (`rq_queue.c`).
///
/// # Invariants
///
/// The pointer came from `vtier_rq_queue_create` and is destroyed on drop,
/// which waits for the worker.
struct QueueHandle(NonNull<RqQueue>);

impl QueueHandle {
    /// A queue whose worker is named `name` and serves with [`serve_rq`].
    fn new(name: &CString) -> Result<Self> {
        // SAFETY: `name` is a valid C string (copied by the workqueue);
        // `serve_rq` has the signature the queue calls.
        let q = unsafe { vtier_rq_queue_create(name.as_char_ptr(), serve_rq) };
        // INVARIANT: Just created.
        NonNull::new(q).map(Self).ok_or(ENOMEM)
    }

    fn as_ptr(&self) -> *mut RqQueue {
        self.0.as_ptr()
    }
}

impl Drop for QueueHandle {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the queue is live; it is not used
        // again.
        unsafe { vtier_rq_queue_destroy(self.0.as_ptr()) };
    }
}

/// What a disk is served by: the queue's `queuedata`.
///
/// The worker runs requests only while the disk exists: `del_gendisk`
/// drains them before the target is dropped.
#[pin_data(PinnedDrop)]
pub(crate) struct Target {
    /// The configfs name, for messages.
    name: CString,
    queue: QueueHandle,
    /// The store and the bounce buffer; see [`State`] for who takes it.
    #[pin]
    state: Mutex<State>,
    /// Requests failed so far.
    errors: Atomic<u32>,
    /// Whether the read-only state has been logged.
    told_read_only: Atomic<u32>,
}

impl Target {
    /// A target serving the volume `name` from `store`.
    pub(crate) fn new(
        name: &BStr,
        store: KBox<VolumeStore>,
    ) -> Result<impl PinInit<Self, Error>> {
        let name = CString::try_from_fmt(fmt!("{}", name))?;
        let wq_name = CString::try_from_fmt(fmt!("vtier-{}", BStr::from_bytes(name.to_bytes())))?;
        let buf = KVVec::from_elem(0u8, MAX_REQUEST_BYTES, GFP_KERNEL)?;
        let queue = QueueHandle::new(&wq_name)?;
        Ok(try_pin_init!(Self {
            name,
            queue,
            state <- kernel::new_mutex!(State { store: Some(store), buf }),
            errors: Atomic::new(0),
            told_read_only: Atomic::new(0),
        }))
    }

    fn name(&self) -> &BStr {
        BStr::from_bytes(self.name.to_bytes())
    }

    /// The requests that failed since the disk came up.
    pub(crate) fn errors(&self) -> u32 {
        self.errors.load(Relaxed)
    }

    /// Runs `f` on the store under [`Target::state`], in the calling
    /// thread; `None` once the store is closed. The volume's operations
    /// reach the store through here.
    pub(crate) fn with_store<T>(&self, f: impl FnOnce(&mut VolumeStore) -> T) -> Option<T> {
        self.state.lock().store.as_deref_mut().map(f)
    }

    /// Queues a background step (destaging above the high watermark) on
    /// the request worker's queue; never sleeps, takes no lock of ours.
    fn kick_background(&self) {
        // SAFETY: By the invariant of `QueueHandle` the queue is live.
        unsafe { vtier_rq_queue_kick(self.queue.as_ptr()) };
    }

    /// Stops background work for good and waits for a running step. After
    /// this no background step touches the target.
    pub(crate) fn stop_background(&self) {
        // SAFETY: By the invariant of `QueueHandle` the queue is live.
        unsafe { vtier_rq_queue_stop_background(self.queue.as_ptr()) };
    }

    /// One step of background work under [`Target::state`]; whether more
    /// is wanted. A failure is logged and stops the work until the next
    /// write finds the performance tier above the high watermark again.
    fn background_step(&self) -> bool {
        match self.with_store(|s| s.background_step()) {
            Some(Ok(more)) => more,
            Some(Err(e)) => {
                let n = self.errors.fetch_add(1, Relaxed);
                if n < LOUD_ERRORS || n % 1000 == 0 {
                    pr_err!("{}: background destage failed: {}\n", self.name(), e);
                }
                false
            }
            None => false,
        }
    }

    /// Whether the capacity tier has lost more devices than its parity
    /// covers.
    fn stripes_read_only(&self) -> bool {
        self.with_store(|s| s.stripes().is_some_and(|st| st.is_read_only())).unwrap_or(false)
    }

    /// Serves `rq`: the store's result for it. Errors are logged here,
    /// naming the device.
    ///
    /// # Safety
    ///
    /// `rq` is a started request of this target's queue, owned by the
    /// driver until it is ended.
    unsafe fn serve(&self, rq: *mut bindings::request) -> Result {
        // SAFETY: By the safety requirements `rq` is valid.
        let (flags, bytes) = unsafe { ((*rq).cmd_flags, vtier_rq_bytes(rq) as usize) };
        let op = flags & REQ_OP_MASK;
        // A flush request has no position: its sector is not meaningful.
        let pos = if bytes == 0 {
            0
        } else {
            // SAFETY: As above.
            unsafe { vtier_rq_pos(rq) }
        };
        // SAFETY: As above.
        let r = unsafe { self.serve_op(rq, op, flags, pos, bytes) };
        // A failed request may be the first sign that more capacity devices
        // are lost than the parity covers (a refused write, or the read
        // that took the last member too many out of service): the disk is
        // marked read-only, so that `blockdev --getro` and mount see it.
        if r.is_err()
            && self.told_read_only.load(Relaxed) == 0
            && self.stripes_read_only()
            && self.told_read_only.xchg(1, Relaxed) == 0
        {
            pr_err!(
                "{}: more capacity devices lost than the stripes' parity covers: read-only, writes refused (see status)\n",
                self.name()
            );
            // SAFETY: By the safety requirements `rq` is valid, so is its
            // queue, and the queue's disk is live while it has requests
            // (`del_gendisk` drains them first).
            unsafe { bindings::set_disk_ro((*(*rq).q).disk, true) };
        }
        if let Err(e) = r {
            let n = self.errors.fetch_add(1, Relaxed);
            if n < LOUD_ERRORS || n % 1000 == 0 {
                pr_err!(
                    "{}: request op {} at sector {} ({} bytes) failed ({}), {} errors so far\n",
                    self.name(),
                    op,
                    pos,
                    bytes,
                    e.to_errno(),
                    n + 1
                );
            }
        }
        r
    }

    /// # Safety
    ///
    /// As for [`Target::serve`].
    unsafe fn serve_op(
        &self,
        rq: *mut bindings::request,
        op: bindings::blk_opf_t,
        flags: bindings::blk_opf_t,
        pos: u64,
        bytes: usize,
    ) -> Result {
        if pos % SECTORS_PER_BLOCK != 0 || bytes % BLOCK_SIZE != 0 {
            // The queue's logical block size rules this out.
            return Err(EINVAL);
        }
        let lba = pos / SECTORS_PER_BLOCK;
        let mut guard = self.state.lock();
        let State { store, buf } = &mut *guard;
        let store = store.as_mut().ok_or(EIO)?;
        match op {
            bindings::req_op_REQ_OP_READ => {
                let buf = buf.get_mut(..bytes).ok_or(EINVAL)?;
                store.read(lba, buf)?;
                // SAFETY: `buf` holds `bytes` bytes; `rq` is owned here.
                let done = unsafe { vtier_rq_copy(rq, buf.as_mut_ptr().cast(), bytes as c_uint, true) };
                if done as usize == bytes { Ok(()) } else { Err(EIO) }
            }
            // blk-mq's flush machinery may hand over a write without data
            // for what was a flush.
            bindings::req_op_REQ_OP_WRITE if bytes == 0 => store.flush().map_err(Error::from),
            // More capacity devices lost than the stripes' parity covers:
            // what is there stays readable, nothing new is taken.
            bindings::req_op_REQ_OP_WRITE | bindings::req_op_REQ_OP_DISCARD | bindings::req_op_REQ_OP_WRITE_ZEROES
                if store.stripes().is_some_and(|st| st.is_read_only()) =>
            {
                Err(EROFS)
            }
            bindings::req_op_REQ_OP_WRITE => {
                if flags & REQ_PREFLUSH != 0 {
                    store.flush()?;
                }
                let buf = buf.get_mut(..bytes).ok_or(EINVAL)?;
                // SAFETY: As above, copying from the request's pages.
                let done = unsafe { vtier_rq_copy(rq, buf.as_mut_ptr().cast(), bytes as c_uint, false) };
                if done as usize != bytes {
                    return Err(EIO);
                }
                store.write(lba, buf)?;
                if flags & REQ_FUA != 0 {
                    store.flush()?;
                }
                if store.destage_wanted() {
                    self.kick_background();
                }
                Ok(())
            }
            bindings::req_op_REQ_OP_FLUSH => store.flush().map_err(Error::from),
            bindings::req_op_REQ_OP_DISCARD | bindings::req_op_REQ_OP_WRITE_ZEROES => {
                store.discard(lba, (bytes / BLOCK_SIZE) as u64).map_err(Error::from)
            }
            _ => Err(EOPNOTSUPP),
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Target {
    fn drop(self: Pin<&mut Self>) {
        // The disk was deleted first, so no request is queued or being
        // served any more (the queue itself goes with the fields).
        let store = self.state.lock().store.take();
        if let Some(store) = store {
            match on_fresh_stack(move || KBox::into_inner(store).close().map(drop).map_err(Error::from)) {
                Ok(()) => pr_info!("{}: volume closed cleanly\n", self.name()),
                Err(e) => pr_err!(
                    "{}: closing the volume failed ({}); the next power=1 recovers it from the WAL\n",
                    self.name(),
                    e.to_errno()
                ),
            }
        }
    }
}

/// The worker's callback: serves and ends one request.
///
/// # Safety
///
/// Called by `rq_queue.c` for a request [`queue_rq`] queued, whose queue's
/// `queuedata` is a live [`Target`].
unsafe extern "C" fn serve_rq(rq: *mut bindings::request) {
    // SAFETY: `queuedata` is the pinned `Target` of this queue, which lives
    // until its queue (and so this worker) is destroyed.
    let target = unsafe { &*(*(*rq).q).queuedata.cast::<Target>() };
    // SAFETY: `rq` was started by `queue_rq` and is owned by the driver.
    let status = match unsafe { target.serve(rq) } {
        Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
        Err(e) => errno_status(e),
    };
    // SAFETY: Ends `rq` exactly once; nothing touches it afterwards.
    unsafe { bindings::blk_mq_end_request(rq, status) };
}

/// The worker's background callback: one step of the target's background
/// work; whether more is wanted.
///
/// # Safety
///
/// `data` is the pinned [`Target`] that [`Disk::new`] gave
/// `vtier_rq_queue_set_background`, live until
/// [`Target::stop_background`] has returned, which `Disk`'s drop calls
/// before the target can go.
unsafe extern "C" fn background(data: *mut c_void) -> bool {
    // SAFETY: By the safety requirements `data` is a live `Target`, only
    // ever shared.
    let target = unsafe { &*data.cast::<Target>() };
    target.background_step()
}

/// `blk_mq_ops.queue_rq`: starts the request and queues it for the worker.
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
    // SAFETY: `rq` is owned by the driver from here until `serve_rq` ends
    // it; the queue is live while the disk is (the target owns it).
    unsafe {
        bindings::blk_mq_start_request(rq);
        vtier_rq_queue_add(target.queue.as_ptr(), rq);
    }
    bindings::BLK_STS_OK as bindings::blk_status_t
}

static MQ_OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
    queue_rq: Some(queue_rq),
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
                    // `queue_rq` only queues: it never sleeps.
                    (*set).queue_depth = QUEUE_DEPTH;
                    (*set).numa_node = bindings::NUMA_NO_NODE;
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
    /// `nr_blocks` blocks of 4096 bytes, read-only if `read_only`.
    pub(crate) fn new(
        index: u32,
        target: impl PinInit<Target, Error>,
        nr_blocks: u64,
        read_only: bool,
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
        lim.max_hw_sectors = (MAX_REQUEST_BYTES / 512) as u32;
        // Discard and write-zeroes unmap: no data moves.
        lim.max_hw_discard_sectors = MAX_UNMAP_SECTORS;
        lim.discard_granularity = BLOCK_SIZE as u32;
        lim.max_write_zeroes_sectors = MAX_UNMAP_SECTORS;

        let queuedata = core::ptr::from_ref::<Target>(&target).cast_mut().cast::<c_void>();
        // SAFETY: The queue is live (owned by the target); `queuedata` is
        // the pinned target, which stays where it is until this `Disk` is
        // dropped, and `Disk`'s drop stops the background work first.
        unsafe { vtier_rq_queue_set_background(target.queue.as_ptr(), background, queuedata) };
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
            bindings::set_disk_ro(disk, read_only);
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
    /// What serves the disk.
    pub(crate) fn target(&self) -> &Target {
        &self._target
    }

    /// Whether anyone has `/dev/vtierN` open (a mount, a process).
    pub(crate) fn is_open(&self) -> bool {
        // SAFETY: By the type invariant the gendisk is live.
        unsafe { vtier_disk_openers(self.gendisk.as_ptr()) > 0 }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // No background step runs after this, and none is queued again by
        // the requests `del_gendisk` drains.
        self._target.stop_background();
        // SAFETY: By the type invariant the disk was added; `del_gendisk`
        // drains every request, so none references `target` afterwards.
        unsafe {
            bindings::del_gendisk(self.gendisk.as_ptr());
            bindings::put_disk(self.gendisk.as_ptr());
        }
    }
}
