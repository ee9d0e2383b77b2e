// SPDX-License-Identifier: GPL-2.0

//! vtier: a tiered block device with an erasure-coded capacity tier.
//!
//! Crate root of `vtier.ko`. The kernel glue lives in this directory; the
//! engine (`engine/src/`) is shared with the userspace build and declared
//! here module by module, with `#[path]`, at the crate root, so that engine
//! code reaches its siblings as `crate::name` in both builds. `kcompat`
//! gives the engine the kernel's allocation types under the names its
//! userspace build also provides.

mod bdev;
mod blk;
mod configfs;
mod crypto;
mod ec_simd;
mod volume;
mod kcompat;
mod path;
mod xts_selftest;

/// Declares engine modules (`engine/src/NAME.rs`) at the crate root, where
/// engine code expects its siblings. They are `pub` for the userspace crate,
/// and parts of their API serve only the userspace tools so far.
macro_rules! engine_modules {
    ($($name:ident = $path:literal;)*) => {
        $(
            #[allow(unreachable_pub, dead_code)]
            #[path = $path]
            mod $name;
        )*
    };
}

// Every engine module but the userspace-only ones (feature `std`): the
// kernel build is what proves they are `no_std` and allocation-fallible.
engine_modules! {
    alloc_geom = "../engine/src/alloc_geom.rs";
    alloc_io = "../engine/src/alloc_io.rs";
    allocator = "../engine/src/allocator.rs";
    bitmap = "../engine/src/bitmap.rs";
    block_check = "../engine/src/block_check.rs";
    btree = "../engine/src/btree.rs";
    btree_cache = "../engine/src/btree_cache.rs";
    btree_check = "../engine/src/btree_check.rs";
    btree_devstore = "../engine/src/btree_devstore.rs";
    btree_extent = "../engine/src/btree_extent.rs";
    btree_map = "../engine/src/btree_map.rs";
    btree_memstore = "../engine/src/btree_memstore.rs";
    btree_move = "../engine/src/btree_move.rs";
    btree_node = "../engine/src/btree_node.rs";
    btree_tm = "../engine/src/btree_tm.rs";
    checkpoint = "../engine/src/checkpoint.rs";
    cipher = "../engine/src/cipher.rs";
    cipher_kat = "../engine/src/cipher_kat.rs";
    crc32c = "../engine/src/crc32c.rs";
    datalog = "../engine/src/datalog.rs";
    device = "../engine/src/device.rs";
    encryption = "../engine/src/encryption.rs";
    error = "../engine/src/error.rs";
    fault_device = "../engine/src/fault_device.rs";
    heap_sort = "../engine/src/heap_sort.rs";
    page_cache = "../engine/src/page_cache.rs";
    paddr = "../engine/src/paddr.rs";
    store = "../engine/src/store.rs";
    stripe_chunk = "../engine/src/stripe_chunk.rs";
    stripe_geom = "../engine/src/stripe_geom.rs";
    stripe_member = "../engine/src/stripe_member.rs";
    stripe_meta = "../engine/src/stripe_meta.rs";
    stripe_repair = "../engine/src/stripe_repair.rs";
    stripe_store = "../engine/src/stripe_store.rs";
    stripe_victims = "../engine/src/stripe_victims.rs";
    summary = "../engine/src/summary.rs";
    superblock = "../engine/src/superblock.rs";
    txn = "../engine/src/txn.rs";
    txn_cache = "../engine/src/txn_cache.rs";
    txn_map = "../engine/src/txn_map.rs";
    txn_redo = "../engine/src/txn_redo.rs";
    wal = "../engine/src/wal.rs";
    wal_block = "../engine/src/wal_block.rs";
    xts_vectors = "../engine/src/xts_vectors.rs";
}

#[forbid(unsafe_code)]
#[allow(unreachable_pub, dead_code)]
mod ec;

use kernel::prelude::*;

module! {
    type: VtierModule,
    name: "vtier",
    authors: ["The vtier developers"],
    description: "Tiered block device with an erasure-coded, encrypted capacity tier",
    license: "GPL v2",
}

#[pin_data]
struct VtierModule {
    #[pin]
    configfs: kernel::configfs::Subsystem<configfs::Root>,
    /// debugfs `vtier/`, the directory of the module's debugfs files.
    _debugfs: kernel::debugfs::Dir,
    /// debugfs `vtier/xts_selftest` (see `xts_selftest.rs`).
    _xts_selftest: Pin<KBox<kernel::debugfs::File<()>>>,
}

impl kernel::InPlaceModule for VtierModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("loaded, on-disk format {}\n", superblock::FORMAT_VERSION);
        // Before anything is registered: a cipher that gives wrong answers
        // refuses the module.
        let selftest = xts_selftest::check_at_load();
        // Chooses the erasure codec's SIMD kernel; never fails.
        ec_simd::check_at_load();
        let debugfs = kernel::debugfs::Dir::new(c"vtier");
        let xts_file = xts_selftest::debugfs_file(&debugfs);
        try_pin_init!(Self {
            _xts_selftest: {
                selftest?;
                xts_file?
            },
            _debugfs: debugfs,
            configfs <- configfs::subsystem(),
        })
    }
}
