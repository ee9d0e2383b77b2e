// SPDX-License-Identifier: GPL-2.0

//! vtier: a tiered block device with an erasure-coded capacity tier.
//!
//! Crate root of `vtier.ko`. The kernel glue lives in this directory; the
//! engine (`engine/src/`) is shared with the userspace build and mounted
//! here layer by layer, one `#[path]` line each, at the crate root, so that
//! engine code reaches other layers as `crate::layer::file` in both builds.
//! `kcompat` gives the engine the kernel's allocation types under the names
//! its userspace build also provides.

mod bdev;
mod blk;
mod configfs;
mod crypto;
mod ec_simd;
mod volume;
mod kcompat;
mod path;
mod xts_selftest;

/// Mounts engine layers (`engine/src/LAYER/mod.rs`) at the crate root,
/// where engine code expects them. They are `pub` for the userspace crate,
/// and parts of their API serve only the userspace tools so far.
macro_rules! engine_layers {
    ($($name:ident = $path:literal;)*) => {
        $(
            #[allow(unreachable_pub, dead_code)]
            #[path = $path]
            mod $name;
        )*
    };
}

// Every engine layer but `testing` (and the userspace-only files behind
// feature `std`): the kernel build is what proves they are `no_std` and
// allocation-fallible.
engine_layers! {
    io = "../engine/src/io/mod.rs";
    format = "../engine/src/format/mod.rs";
    space = "../engine/src/space/mod.rs";
    journal = "../engine/src/journal/mod.rs";
    btree = "../engine/src/btree/mod.rs";
    map = "../engine/src/map/mod.rs";
    stripe = "../engine/src/stripe/mod.rs";
    data = "../engine/src/data/mod.rs";
    crypt = "../engine/src/crypt/mod.rs";
    error = "../engine/src/error.rs";
    heap_sort = "../engine/src/heap_sort.rs";
    kvec = "../engine/src/kvec.rs";
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
        pr_info!("loaded, on-disk format {}\n", format::superblock::FORMAT_VERSION);
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
