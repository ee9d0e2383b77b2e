// SPDX-License-Identifier: GPL-2.0
//! What the fuzz targets share: reading the fuzzer's bytes as a seed and a
//! list of edits, applying the edits to the fields of a valid block, and
//! sealing the block again the way its writer does, so that the decoder's
//! field checks behind the checksum are what the fuzzer exercises.
//!
//! Every target's input is one mode byte, then the rest:
//!
//! - [`MODE_RAW`]: the rest is handed to the decoder as it is (no
//!   checksum fix-up): lengths, magic and checksum paths.
//! - otherwise: the rest describes a valid structure (built and sealed by
//!   the engine's own encoder) and the edits made to it; the mode byte says
//!   how the edited block is sealed again ([`Seal`]).

use vtier_engine::format::crc32c::crc32c;
use vtier_engine::format::validator::{BlockKind, CHECKSUMMED};
use vtier_engine::io::device::BLOCK_SIZE;

/// Mode byte value: decode the rest of the input as raw bytes.
pub const MODE_RAW: u8 = 0;

/// How an edited block is sealed again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Seal {
    /// Left as edited: the stored checksum is stale unless no byte changed.
    None,
    /// Only the checksum is recomputed (as the last step of the writer's
    /// seal), so edits of the common header (version, magic, location)
    /// reach the decoder too.
    Checksum,
    /// Sealed again by the block type's own validator at the block's
    /// location: version, magic and location are restored, so every edit
    /// that survives is a field the type itself must check.
    Full,
}

impl Seal {
    /// The seal a mode byte asks for (never called with [`MODE_RAW`]).
    pub fn from_mode(mode: u8) -> Self {
        match mode % 8 {
            1 => Seal::None,
            2 | 3 => Seal::Checksum,
            _ => Seal::Full,
        }
    }
}

/// Splits an input into its mode byte and the rest.
pub fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&m, rest)) => (m, rest),
        None => (MODE_RAW, data),
    }
}

/// The fuzzer's bytes read front to back; past the end every read is zero,
/// so any input is a complete description.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// Reads `data` from the start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next `N` bytes, zero-padded past the end.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let rest = self.rest();
        let avail = rest.len().min(N);
        out[..avail].copy_from_slice(&rest[..avail]);
        self.pos = self.pos.saturating_add(N);
        out
    }

    /// Next byte.
    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }

    /// Next little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }

    /// Next little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }

    /// Next little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }

    /// Next byte's low bit.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A value in `lo..=hi` (`lo` if the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        match span.checked_add(1) {
            Some(n) => lo + self.u64() % n,
            None => self.u64(),
        }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

/// One field of a block: byte offset and width (1, 2, 4 or 8 bytes).
pub type Field = (usize, usize);

/// The fields of the header every metadata block starts with: version,
/// magic, location.
pub const COMMON: [Field; 3] = [(0x04, 4), (0x08, 8), (0x10, 8)];

fn get(buf: &[u8], (at, width): Field) -> u64 {
    let mut b = [0u8; 8];
    b[..width].copy_from_slice(&buf[at..at + width]);
    u64::from_le_bytes(b)
}

fn put(buf: &mut [u8], (at, width): Field, v: u64) {
    buf[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// Applies one to four edits read from `inp` to `buf`: each changes one of
/// `fields` (set, add, zero, all ones, small value, one bit, copy of another
/// field, a power of two or one less) or, now and then, one byte anywhere
/// in `buf`. Returns whether any byte changed.
pub fn mutate(buf: &mut [u8], fields: &[Field], inp: &mut Input) -> bool {
    let mut changed = false;
    for _ in 0..1 + inp.u8() % 4 {
        let pick = inp.u8() as usize % (fields.len() + 1);
        if pick == fields.len() || buf.is_empty() {
            if buf.is_empty() {
                continue;
            }
            let at = inp.u16() as usize % buf.len();
            let x = inp.u8();
            changed |= x != 0;
            buf[at] ^= x;
            continue;
        }
        let f = fields[pick];
        if f.0 + f.1 > buf.len() {
            continue;
        }
        let bits = 8 * f.1 as u32;
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let old = get(buf, f);
        let new = match inp.u8() % 8 {
            0 => inp.u64(),
            1 => old.wrapping_add(inp.u8() as i8 as i64 as u64),
            2 => 0,
            3 => u64::MAX,
            4 => u64::from(inp.u8()),
            5 => old ^ (1 << (inp.u8() as u32 % bits)),
            6 => get(buf, fields[inp.u8() as usize % fields.len()]),
            _ => {
                let p = 1u64 << (inp.u8() as u32 % bits);
                if inp.bool() {
                    p - 1
                } else {
                    p
                }
            }
        } & mask;
        changed |= new != old;
        put(buf, f, new);
    }
    changed
}

/// Recomputes the stored checksum of a metadata block, exactly as the last
/// step of [`BlockKind::seal`] does.
pub fn fix_checksum(block: &mut [u8]) {
    if block.len() == BLOCK_SIZE {
        let sum = crc32c(&block[CHECKSUMMED]);
        block[..CHECKSUMMED.start].copy_from_slice(&sum.to_le_bytes());
    }
}

/// Seals an edited block of type `kind` that belongs at `location` as
/// `how` says.
pub fn reseal(block: &mut [u8; BLOCK_SIZE], kind: BlockKind, location: u64, how: Seal) {
    match how {
        Seal::None => {}
        Seal::Checksum => fix_checksum(block),
        Seal::Full => kind.seal(block, location),
    }
}

/// Whether `r` is a rejection a sealed block with bad fields may get: a
/// field check (`Corrupt`), or, when the seal kept edits of the common
/// header or the checksum, the validator's own errors.
pub fn allowed_error(e: &vtier_engine::error::Error, how: Seal) -> bool {
    use vtier_engine::error::Error;
    match e {
        Error::Corrupt { .. } => true,
        Error::BadMagic { .. } | Error::WrongLocation { .. } | Error::BadVersion { .. } => {
            how != Seal::Full
        }
        Error::BadChecksum { .. } => how == Seal::None,
        _ => false,
    }
}
