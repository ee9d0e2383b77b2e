// SPDX-License-Identifier: GPL-2.0

//! A tiny system under test for crash and corruption tests: a key →
//! (block, seed) table, copy-on-write at checkpoints (root slot 0), changes
//! logged in the WAL in between, data blocks filled from the seed.

#![allow(dead_code)]

use super::Rng;
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::error::{Error, Result};
use vtier_engine::format::crc32c::crc32c;
use vtier_engine::format::superblock::NR_ROOTS;
use vtier_engine::io::device::{BlockDevice, BLOCK_SIZE};
use vtier_engine::journal::meta_device::{FormatOptions, MetaDevice};
use vtier_engine::journal::wal_block::Record;

pub const KEYS: usize = 40;
pub const DEV_BLOCKS: u64 = 512;
const KIND_PUT: u8 = 1;
const KIND_DEL: u8 = 2;
const PAD: usize = 200;
const TABLE_MAGIC: u32 = 0x5442_4c31;

pub type Table = [Option<(u64, u64)>; KEYS];

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Put { key: usize, seed: u64 },
    Del { key: usize },
}

pub fn data_for(seed: u64, block: u64) -> Vec<u8> {
    let mut out = vec![0u8; BLOCK_SIZE];
    let mut r = Rng(seed ^ block.rotate_left(32) | 1);
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&r.next().to_le_bytes());
    }
    out
}

pub fn apply_model(t: &mut [Option<u64>; KEYS], op: Op) {
    match op {
        Op::Put { key, seed } => t[key] = Some(seed),
        Op::Del { key } => t[key] = None,
    }
}

fn corrupt(what: &'static str) -> Error {
    Error::Corrupt { block: None, what }
}

/// The system under test.
pub struct Store {
    pub table: Table,
    pub table_block: u64,
}

impl Store {
    pub fn load(vol: &MetaDevice, dev: &mut dyn BlockDevice) -> Result<Self> {
        let mut table = [None; KEYS];
        let block = vol.roots()[0];
        if block != 0 {
            let mut buf = vec![0u8; BLOCK_SIZE];
            dev.read(block, &mut buf)?;
            let sum = u32::from_le_bytes(buf[..4].try_into().unwrap());
            if sum != crc32c(&buf[4..]) || buf[4..8] != TABLE_MAGIC.to_le_bytes() {
                return Err(Error::BadChecksum { block });
            }
            for (k, slot) in table.iter_mut().enumerate() {
                let off = 8 + k * 16;
                let b = u64::from_le_bytes(buf[off..off + 8].try_into().unwrap());
                let s = u64::from_le_bytes(buf[off + 8..off + 16].try_into().unwrap());
                *slot = (b != 0).then_some((b, s));
            }
        }
        Ok(Self {
            table,
            table_block: block,
        })
    }

    pub fn replay(
        &mut self,
        alloc: &mut vtier_engine::space::allocator::Allocator,
        dev: &mut dyn BlockDevice,
        rec: Record<'_>,
    ) -> Result {
        let p = rec.payload;
        let key = *p.first().ok_or(corrupt("record"))? as usize;
        if key >= KEYS {
            return Err(corrupt("record key"));
        }
        if let Some((old, _)) = self.table[key] {
            alloc.free(dev, old, 1)?;
        }
        match rec.kind {
            KIND_PUT if p.len() == 17 + PAD && p[17..].iter().all(|&b| b == key as u8) => {
                let block = u64::from_le_bytes(p[1..9].try_into().unwrap());
                let seed = u64::from_le_bytes(p[9..17].try_into().unwrap());
                alloc.reserve(dev, block, 1)?;
                self.table[key] = Some((block, seed));
            }
            KIND_DEL if p.len() == 1 => self.table[key] = None,
            _ => return Err(corrupt("record kind")),
        }
        Ok(())
    }

    pub fn put(
        &mut self,
        vol: &mut MetaDevice,
        dev: &mut dyn BlockDevice,
        key: usize,
        seed: u64,
    ) -> Result {
        let hint = self.table[key].map_or(key as u64 * 8, |(b, _)| b);
        let block = vol.alloc()?.alloc(dev, hint)?;
        dev.write(block, &data_for(seed, block))?;
        let mut p = vec![key as u8];
        p.extend_from_slice(&block.to_le_bytes());
        p.extend_from_slice(&seed.to_le_bytes());
        p.extend_from_slice(&[key as u8; PAD]);
        vol.append(KIND_PUT, &p)?;
        if let Some((old, _)) = self.table[key] {
            vol.alloc()?.free(dev, old, 1)?;
        }
        self.table[key] = Some((block, seed));
        Ok(())
    }

    pub fn del(&mut self, vol: &mut MetaDevice, dev: &mut dyn BlockDevice, key: usize) -> Result {
        if let Some((old, _)) = self.table[key] {
            vol.append(KIND_DEL, &[key as u8])?;
            vol.alloc()?.free(dev, old, 1)?;
            self.table[key] = None;
        }
        Ok(())
    }

    pub fn checkpoint(&mut self, vol: &mut MetaDevice, dev: &mut dyn BlockDevice) -> Result {
        let block = vol.alloc()?.alloc(dev, 0)?;
        let mut buf = vec![0u8; BLOCK_SIZE];
        buf[4..8].copy_from_slice(&TABLE_MAGIC.to_le_bytes());
        for (k, e) in self.table.iter().enumerate() {
            let (b, s) = e.unwrap_or((0, 0));
            buf[8 + k * 16..16 + k * 16].copy_from_slice(&b.to_le_bytes());
            buf[16 + k * 16..24 + k * 16].copy_from_slice(&s.to_le_bytes());
        }
        let sum = crc32c(&buf[4..]);
        buf[..4].copy_from_slice(&sum.to_le_bytes());
        dev.write(block, &buf)?;
        if self.table_block != 0 {
            vol.alloc()?.free(dev, self.table_block, 1)?;
        }
        let mut roots = [0u64; NR_ROOTS];
        roots[0] = block;
        vol.checkpoint(dev, &roots)?;
        self.table_block = block;
        Ok(())
    }
}

pub fn opts() -> FormatOptions {
    FormatOptions {
        volume_uuid: [7; 16],
        device_uuid: [8; 16],
        nr_devices: 1,
        wal_blocks: 24,
        encryption: Encryption::None,
    }
}
