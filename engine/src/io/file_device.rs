// SPDX-License-Identifier: GPL-2.0

//! A [`BlockDevice`] on a file or a block-device node (userspace only,
//! feature `std`): what `vtierctl` uses to format and check images offline.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};
use crate::io::device::{check_io, BlockDevice, BLOCK_SIZE};

/// A device backed by an open file; flush is `fdatasync`.
pub struct FileDevice {
    file: File,
    nr_blocks: u64,
}

impl FileDevice {
    /// Wraps `file`, whose size (rounded down to whole blocks) is the device size.
    pub fn new(file: File) -> Result<Self> {
        let len = file.metadata().map_err(|_| Error::Io)?.len();
        Ok(Self {
            file,
            nr_blocks: len / BLOCK_SIZE as u64,
        })
    }

    /// Wraps `file` with an explicit size in blocks (block devices report 0
    /// in their metadata; pass the size obtained by seeking to the end).
    pub fn with_blocks(file: File, nr_blocks: u64) -> Self {
        Self { file, nr_blocks }
    }
}

impl BlockDevice for FileDevice {
    fn nr_blocks(&self) -> u64 {
        self.nr_blocks
    }

    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        check_io(self.nr_blocks, block, buf.len())?;
        self.file
            .read_exact_at(buf, block * BLOCK_SIZE as u64)
            .map_err(|_| Error::Io)
    }

    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        check_io(self.nr_blocks, block, buf.len())?;
        self.file
            .write_all_at(buf, block * BLOCK_SIZE as u64)
            .map_err(|_| Error::Io)
    }

    fn flush(&mut self) -> Result {
        self.file.sync_data().map_err(|_| Error::Io)
    }
}
