// SPDX-License-Identifier: GPL-2.0

//! The block-device seam: everything the engine reads or writes goes through
//! [`BlockDevice`].
//!
//! The kernel implements it with bios on a backing block device
//! (synchronously, `submit_bio_wait`); userspace with memory
//! ([`MemDevice`]), files (`FileDevice`, feature `std`) and a fault-injecting
//! device for crash tests (`crate::testing::fault_device::FaultDevice`).
//!
//! # Rules
//!
//! - I/O is in whole [`BLOCK_SIZE`] blocks: a buffer's length is a non-zero
//!   multiple of `BLOCK_SIZE` and names that many contiguous blocks starting
//!   at `block`. Anything else is `Error::InvalidArgument`, as is a range
//!   past [`BlockDevice::nr_blocks`].
//! - A completed `write` may be lost or torn by a power cut until a later
//!   [`BlockDevice::flush`] completes; a completed flush makes every write
//!   completed before it durable. Writes are not ordered among themselves
//!   without a flush in between.
//! - Errors are `Error::Io`; callers treat a failed metadata write as fatal
//!   for the volume (sticky failure), never retry blindly.

use crate::error::{Error, Result};
/// Size of every vtier block, metadata and data alike: the unit of all
/// I/O.
pub const BLOCK_SIZE: usize = 4096;
use crate::kcompat::{KVec, GFP_KERNEL};

/// A synchronous block device with 4096-byte blocks.
pub trait BlockDevice {
    /// Size of the device in blocks.
    fn nr_blocks(&self) -> u64;

    /// Reads `buf.len() / BLOCK_SIZE` contiguous blocks starting at `block`.
    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result;

    /// Writes `buf.len() / BLOCK_SIZE` contiguous blocks starting at `block`.
    fn write(&mut self, block: u64, buf: &[u8]) -> Result;

    /// Makes every completed write durable.
    fn flush(&mut self) -> Result;
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn nr_blocks(&self) -> u64 {
        (**self).nr_blocks()
    }
    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        (**self).read(block, buf)
    }
    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        (**self).write(block, buf)
    }
    fn flush(&mut self) -> Result {
        (**self).flush()
    }
}

/// Checks an I/O request against the rules above and returns its length in
/// blocks. Implementations call it first.
pub fn check_io(nr_blocks: u64, block: u64, len_bytes: usize) -> Result<u64> {
    if len_bytes == 0 || len_bytes % BLOCK_SIZE != 0 {
        return Err(Error::InvalidArgument);
    }
    let count = (len_bytes / BLOCK_SIZE) as u64;
    match block.checked_add(count) {
        Some(end) if end <= nr_blocks => Ok(count),
        _ => Err(Error::InvalidArgument),
    }
}

/// Byte offset of `block` in a linear image; `None` if it does not fit `usize`.
pub fn byte_offset(block: u64) -> Option<usize> {
    usize::try_from(block).ok()?.checked_mul(BLOCK_SIZE)
}

/// A device held in memory. Flush does nothing: memory never loses writes.
#[derive(Debug)]
pub struct MemDevice {
    data: KVec<u8>,
}

impl MemDevice {
    /// A zero-filled device of `nr_blocks` blocks.
    pub fn new(nr_blocks: u64) -> Result<Self> {
        let len = byte_offset(nr_blocks).ok_or(Error::InvalidArgument)?;
        Ok(Self {
            data: KVec::from_elem(0u8, len, GFP_KERNEL)?,
        })
    }

    /// A device holding a copy of `image` (whose length must be a multiple
    /// of the block size).
    pub fn from_image(image: &[u8]) -> Result<Self> {
        if image.len() % BLOCK_SIZE != 0 {
            return Err(Error::InvalidArgument);
        }
        let mut data = KVec::with_capacity(image.len(), GFP_KERNEL)?;
        data.extend_from_slice(image, GFP_KERNEL)?;
        Ok(Self { data })
    }

    /// The whole device contents.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The whole device contents, for tests that corrupt it on purpose.
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl BlockDevice for MemDevice {
    fn nr_blocks(&self) -> u64 {
        (self.data.len() / BLOCK_SIZE) as u64
    }

    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        check_io(self.nr_blocks(), block, buf.len())?;
        let off = byte_offset(block).ok_or(Error::InvalidArgument)?;
        buf.copy_from_slice(&self.data[off..off + buf.len()]);
        Ok(())
    }

    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        check_io(self.nr_blocks(), block, buf.len())?;
        let off = byte_offset(block).ok_or(Error::InvalidArgument)?;
        self.data[off..off + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_device_round_trip_and_range_checks() {
        let mut d = MemDevice::new(4).unwrap();
        let buf = [7u8; 2 * BLOCK_SIZE];
        d.write(2, &buf).unwrap();
        let mut back = [0u8; 2 * BLOCK_SIZE];
        d.read(2, &mut back).unwrap();
        assert_eq!(back, buf);
        assert_eq!(d.write(3, &buf), Err(Error::InvalidArgument));
        assert_eq!(d.read(0, &mut back[..100]), Err(Error::InvalidArgument));
        assert_eq!(d.read(u64::MAX, &mut back), Err(Error::InvalidArgument));
        assert_eq!(d.write(0, &[]), Err(Error::InvalidArgument));
    }
}
