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
mod volume;
mod kcompat;
mod path;

// Engine modules. They are `pub` for the userspace crate, and parts of
// their API serve only the userspace tools so far.
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/crc32c.rs"]
mod crc32c;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/device.rs"]
mod device;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/error.rs"]
mod error;
#[allow(unreachable_pub, dead_code)]
#[path = "../engine/src/superblock.rs"]
mod superblock;

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
}

impl kernel::InPlaceModule for VtierModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("loaded, on-disk format {}\n", superblock::FORMAT_VERSION);
        try_pin_init!(Self {
            configfs <- configfs::subsystem(),
        })
    }
}
