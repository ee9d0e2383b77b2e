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
mod volume;
mod kcompat;
mod path;
mod xts_selftest;

// Engine modules. They are `pub` for the userspace crate, and parts of
// their API serve only the userspace tools so far.
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/cipher.rs"]
mod cipher;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/cipher_kat.rs"]
mod cipher_kat;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/crc32c.rs"]
mod crc32c;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/device.rs"]
mod device;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/encryption.rs"]
mod encryption;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/error.rs"]
mod error;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/superblock.rs"]
mod superblock;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/xts_vectors.rs"]
mod xts_vectors;

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
