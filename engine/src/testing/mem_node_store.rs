// SPDX-License-Identifier: GPL-2.0

//! A [`NodeStore`] in memory, for tests, benchmarks and offline tools.
//!
//! Blocks are performance-tier addresses from `first` on. Frees of blocks
//! allocated before the open generation are held until
//! [`NodeStore::checkpoint_done`]. Tests can protect the blocks of the
//! committed tree ([`MemNodeStore::protect`]): a write to one of them is an
//! error, which is how "no committed node is changed in place" is checked.

use crate::btree::node_tm::NodeStore;
use crate::error::{Error, Result};
use crate::io::device::BLOCK_SIZE;
use crate::io::paddr::{Location, PAddr};
use crate::kcompat::{KVec, GFP_KERNEL};

/// Node blocks in memory.
#[derive(Default)]
pub struct MemNodeStore {
    first: u64,
    blocks: KVec<KVec<u8>>,
    /// Per block: allocated in the open generation.
    fresh: KVec<bool>,
    protected: KVec<bool>,
    free: KVec<u64>,
    pending: KVec<u64>,
    in_use: u64,
    /// Allocator state at the last checkpoint: free list, block count, in use.
    ckpt_free: KVec<u64>,
    ckpt_len: usize,
    ckpt_in_use: u64,
}

impl MemNodeStore {
    /// An empty store whose first block is performance block `first`.
    pub fn new(first: u64) -> Self {
        Self {
            first,
            ..Self::default()
        }
    }

    fn index(&self, addr: PAddr) -> Result<usize> {
        match addr.location() {
            Location::Perf { block } if block >= self.first => {
                let i = (block - self.first) as usize;
                if i < self.blocks.len() {
                    return Ok(i);
                }
                Err(Error::InvalidArgument)
            }
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Blocks allocated now (live plus freed-but-held).
    pub fn blocks_in_use(&self) -> u64 {
        self.in_use
    }

    /// The bytes of the block at `addr`, to corrupt in tests.
    pub fn block_mut(&mut self, addr: PAddr) -> Option<&mut [u8]> {
        let i = self.index(addr).ok()?;
        Some(self.blocks[i].as_mut_slice())
    }

    /// Forbids writes to the given blocks until the next [`Self::unprotect_all`].
    pub fn protect(&mut self, addrs: &[PAddr]) -> Result {
        for &a in addrs {
            let i = self.index(a)?;
            self.protected[i] = true;
        }
        Ok(())
    }

    /// A power cut: the allocator returns to its state at the last
    /// checkpoint (blocks written since are garbage nobody references).
    pub fn crash(&mut self) -> Result {
        self.free.clear();
        self.free.extend_from_slice(&self.ckpt_free, GFP_KERNEL)?;
        for i in self.ckpt_len..self.blocks.len() {
            self.free.push(i as u64, GFP_KERNEL)?;
        }
        self.pending.clear();
        self.in_use = self.ckpt_in_use;
        self.fresh.iter_mut().for_each(|f| *f = false);
        Ok(())
    }

    /// Lifts every protection.
    pub fn unprotect_all(&mut self) {
        self.protected.iter_mut().for_each(|p| *p = false);
    }
}

impl NodeStore for MemNodeStore {
    fn read_block(&mut self, addr: PAddr, buf: &mut [u8]) -> Result {
        let i = self.index(addr)?;
        if buf.len() != BLOCK_SIZE {
            return Err(Error::InvalidArgument);
        }
        buf.copy_from_slice(&self.blocks[i]);
        Ok(())
    }

    fn write_block(&mut self, addr: PAddr, buf: &[u8]) -> Result {
        let i = self.index(addr)?;
        if self.protected[i] {
            return Err(Error::Corrupt {
                block: Some(addr.error_block()),
                what: "write to a block of the committed tree",
            });
        }
        self.blocks[i].copy_from_slice(buf);
        Ok(())
    }

    fn alloc_block(&mut self, _hint: Option<PAddr>) -> Result<PAddr> {
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.blocks
                    .push(KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?, GFP_KERNEL)?;
                self.fresh.push(false, GFP_KERNEL)?;
                self.protected.push(false, GFP_KERNEL)?;
                self.blocks.len() - 1
            }
        };
        self.fresh[i] = true;
        self.in_use += 1;
        PAddr::perf(self.first + i as u64)
    }

    fn free_block(&mut self, addr: PAddr) -> Result {
        let i = self.index(addr)?;
        if self.fresh[i] {
            self.in_use -= 1;
            self.free.push(i as u64, GFP_KERNEL)?;
        } else {
            self.pending.push(i as u64, GFP_KERNEL)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result {
        Ok(())
    }

    fn checkpoint_done(&mut self) -> Result {
        self.in_use -= self.pending.len() as u64;
        self.free.extend_from_slice(&self.pending, GFP_KERNEL)?;
        self.pending.clear();
        self.fresh.iter_mut().for_each(|f| *f = false);
        self.ckpt_free.clear();
        self.ckpt_free.extend_from_slice(&self.free, GFP_KERNEL)?;
        self.ckpt_len = self.blocks.len();
        self.ckpt_in_use = self.in_use;
        Ok(())
    }
}
