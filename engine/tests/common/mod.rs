// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the engine's integration tests.

#![allow(dead_code)]

pub mod store;

use std::collections::HashMap;
use vtier_engine::error::Result;
use vtier_engine::io::device::{check_io, BlockDevice, BLOCK_SIZE};

/// A large device that stores only the blocks written; the rest read as zero.
pub struct SparseDevice {
    pub nr_blocks: u64,
    pub blocks: HashMap<u64, Box<[u8; BLOCK_SIZE]>>,
    pub reads: u64,
    pub writes: u64,
}

impl SparseDevice {
    pub fn new(nr_blocks: u64) -> Self {
        Self {
            nr_blocks,
            blocks: HashMap::new(),
            reads: 0,
            writes: 0,
        }
    }
}

impl BlockDevice for SparseDevice {
    fn nr_blocks(&self) -> u64 {
        self.nr_blocks
    }
    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        check_io(self.nr_blocks, block, buf.len())?;
        for (i, chunk) in buf.chunks_mut(BLOCK_SIZE).enumerate() {
            match self.blocks.get(&(block + i as u64)) {
                Some(b) => chunk.copy_from_slice(&b[..]),
                None => chunk.fill(0),
            }
            self.reads += 1;
        }
        Ok(())
    }
    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        check_io(self.nr_blocks, block, buf.len())?;
        for (i, chunk) in buf.chunks(BLOCK_SIZE).enumerate() {
            let mut b = Box::new([0u8; BLOCK_SIZE]);
            b.copy_from_slice(chunk);
            self.blocks.insert(block + i as u64, b);
            self.writes += 1;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result {
        Ok(())
    }
}

/// xorshift64: deterministic test randomness.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
