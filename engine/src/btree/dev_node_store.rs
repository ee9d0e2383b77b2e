// SPDX-License-Identifier: GPL-2.0

//! [`NodeStore`] over the engine's block device and allocator.
//!
//! Nodes live on the performance device (physical addresses of kind
//! "performance tier"); blocks come from the bitmap allocator, whose frees
//! are deferred to the next checkpoint exactly as the copy-on-write rules
//! of [`crate::btree::node_tm`] require. Stripe and capacity-device addresses are
//! refused until T1 migration gives the store an erasure-coding layer.

use crate::btree::node_tm::NodeStore;
use crate::error::{Error, Result};
use crate::io::device::BlockDevice;
use crate::io::paddr::{Location, PAddr};
use crate::space::allocator::Allocator;

/// Something that owns the performance device's allocator (the allocator
/// itself, or the volume that holds it).
pub trait AllocSource {
    /// The allocator, or an error if the owner has failed.
    fn allocator(&mut self) -> Result<&mut Allocator>;
}

impl AllocSource for Allocator {
    fn allocator(&mut self) -> Result<&mut Allocator> {
        Ok(self)
    }
}

impl<T: AllocSource + ?Sized> AllocSource for &mut T {
    fn allocator(&mut self) -> Result<&mut Allocator> {
        (**self).allocator()
    }
}

/// B-tree nodes on a block device, allocated by `meta`'s allocator.
pub struct DevNodeStore<D: BlockDevice, M: AllocSource> {
    /// The performance device.
    pub dev: D,
    /// The allocator's owner.
    pub meta: M,
}

fn perf_block(addr: PAddr) -> Result<u64> {
    match addr.location() {
        Location::Perf { block } => Ok(block),
        _ => Err(Error::InvalidArgument),
    }
}

impl<D: BlockDevice, M: AllocSource> NodeStore for DevNodeStore<D, M> {
    fn read_block(&mut self, addr: PAddr, buf: &mut [u8]) -> Result {
        self.dev.read(perf_block(addr)?, buf)
    }

    fn write_block(&mut self, addr: PAddr, buf: &[u8]) -> Result {
        self.dev.write(perf_block(addr)?, buf)
    }

    fn alloc_block(&mut self, hint: Option<PAddr>) -> Result<PAddr> {
        let hint = hint.and_then(|h| perf_block(h).ok()).unwrap_or(0);
        let block = self.meta.allocator()?.alloc(&mut self.dev, hint)?;
        PAddr::perf(block)
    }

    fn free_block(&mut self, addr: PAddr) -> Result {
        let block = perf_block(addr)?;
        self.meta.allocator()?.free(&mut self.dev, block, 1)
    }

    fn flush(&mut self) -> Result {
        self.dev.flush()
    }
}

impl AllocSource for crate::journal::meta_device::MetaDevice {
    fn allocator(&mut self) -> Result<&mut Allocator> {
        self.alloc()
    }
}
