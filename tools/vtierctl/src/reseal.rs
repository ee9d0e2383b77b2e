// SPDX-License-Identifier: GPL-2.0

//! `vtierctl blocks` and `vtierctl reseal`: the metadata blocks of a member
//! device, and their checksums recomputed after a hand edit.
//!
//! Every vtier metadata block starts with the common header of
//! `doc/FORMAT.md` (checksum, format version, magic, location). `blocks`
//! lists each block of a device that carries one of vtier's magics, with
//! whether its checksum holds; `reseal` recomputes the checksum of named
//! blocks, which must carry a vtier magic, and changes nothing else.
//!
//! Resealing is a tool for people who edit a block by hand (a repair of
//! last resort, or a test that wants the field checks behind the checksum
//! reached, as the guest test `mutate` does): a resealed block passes the
//! checksum whatever it holds, so it is never a repair by itself.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use vtier_engine::btree::node::{INTERNAL_MAGIC, LEAF_MAGIC};
use vtier_engine::data::datalog;
use vtier_engine::format::crc32c::crc32c;
use vtier_engine::format::superblock::{self, BLOCK_SIZE};
use vtier_engine::format::validator::CHECKSUMMED;
use vtier_engine::journal::wal_block;
use vtier_engine::space::summary;
use vtier_engine::stripe::{chunk, meta};

/// Every magic a metadata block may carry, with the structure's name.
const KINDS: [(u64, &str); 8] = [
    (superblock::MAGIC, "superblock"),
    (summary::MAGIC, "summary"),
    (wal_block::MAGIC, "wal"),
    (LEAF_MAGIC, "btree-leaf"),
    (INTERNAL_MAGIC, "btree-node"),
    (datalog::MAGIC, "datalog"),
    (chunk::MAGIC, "stripe-chunk"),
    (meta::MAGIC, "stripe-meta"),
];

/// The structure `block` holds by its magic, if it is one of vtier's.
fn kind_of(block: &[u8; BLOCK_SIZE]) -> Option<&'static str> {
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&block[0x08..0x10]);
    let magic = u64::from_le_bytes(magic);
    KINDS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

fn le32(b: &[u8]) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[..4]);
    u32::from_le_bytes(v)
}

fn le64(b: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[..8]);
    u64::from_le_bytes(v)
}

fn read_block(f: &File, path: &Path, nr: u64) -> Result<[u8; BLOCK_SIZE], String> {
    let mut buf = [0u8; BLOCK_SIZE];
    let at = nr
        .checked_mul(BLOCK_SIZE as u64)
        .ok_or_else(|| format!("{}: block {nr} is out of range", path.display()))?;
    f.read_exact_at(&mut buf, at)
        .map_err(|e| format!("{}: reading block {nr}: {e}", path.display()))?;
    Ok(buf)
}

/// `vtierctl blocks DEVICE`: one line per metadata block,
/// `BLOCK KIND LOCATION ok|bad-checksum`.
pub fn blocks(path: &Path) -> Result<(), String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = f
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))
        .and_then(|m| {
            if m.file_type().is_file() {
                Ok(m.len())
            } else {
                device_len(&f, path)
            }
        })?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 256 * BLOCK_SIZE];
    let total = len / BLOCK_SIZE as u64;
    let mut nr = 0u64;
    while nr < total {
        let n = (total - nr).min(256) as usize;
        let chunk = &mut buf[..n * BLOCK_SIZE];
        f.read_exact_at(chunk, nr * BLOCK_SIZE as u64)
            .map_err(|e| format!("{}: reading at block {nr}: {e}", path.display()))?;
        for (i, b) in chunk.chunks_exact(BLOCK_SIZE).enumerate() {
            let Ok(block) = <&[u8; BLOCK_SIZE]>::try_from(b) else {
                continue;
            };
            if let Some(kind) = kind_of(block) {
                let ok = le32(&block[..4]) == crc32c(&block[CHECKSUMMED]);
                let line = writeln!(
                    out,
                    "{} {kind} {} {}",
                    nr + i as u64,
                    le64(&block[0x10..0x18]),
                    if ok { "ok" } else { "bad-checksum" }
                );
                match line {
                    Ok(()) => {}
                    // A reader that has seen enough (`| head`) ends the list.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(format!("standard output: {e}")),
                }
            }
        }
        nr += n as u64;
    }
    Ok(())
}

/// A block device's size: the seek to its end, as `format` measures it.
fn device_len(f: &File, path: &Path) -> Result<u64, String> {
    use std::io::{Seek, SeekFrom};
    let mut f = f
        .try_clone()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.seek(SeekFrom::End(0))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `vtierctl reseal DEVICE BLOCK...`: the checksum of each block
/// recomputed and written back; every block is read and checked for a
/// vtier magic before any is written.
pub fn reseal(path: &Path, nrs: &[u64]) -> Result<(), String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut sealed = Vec::with_capacity(nrs.len());
    for &nr in nrs {
        let mut block = read_block(&f, path, nr)?;
        let kind = kind_of(&block).ok_or_else(|| {
            format!(
                "{}: block {nr} carries no vtier magic; not resealed",
                path.display()
            )
        })?;
        let sum = crc32c(&block[CHECKSUMMED]);
        block[..CHECKSUMMED.start].copy_from_slice(&sum.to_le_bytes());
        sealed.push((nr, kind, block));
    }
    for (nr, kind, block) in &sealed {
        f.write_all_at(block, nr * BLOCK_SIZE as u64)
            .map_err(|e| format!("{}: writing block {nr}: {e}", path.display()))?;
        println!("{}: block {nr} ({kind}) resealed", path.display());
    }
    f.sync_all()
        .map_err(|e| format!("{}: flushing: {e}", path.display()))
}
