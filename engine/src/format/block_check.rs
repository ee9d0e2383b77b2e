// SPDX-License-Identifier: GPL-2.0

//! The checks every metadata block gets first, in the order `doc/FORMAT.md`
//! gives: magic (is this the structure expected here at all), checksum
//! (torn or corrupt), location (a misdirected write), format version. Each
//! block type decodes its own header and then calls [`check`]; its own
//! field checks come after.

use crate::error::{Error, Result};
use crate::format::crc32c::crc32c;
use crate::format::superblock::FORMAT_VERSION;

/// What a block's header says about itself.
pub struct Header {
    /// Whether the magic is one this block type accepts.
    pub magic_ok: bool,
    /// Stored CRC32C of bytes 4.. of the block.
    pub checksum: u32,
    /// The location recorded in the block.
    pub location: u64,
    /// The format version recorded in the block.
    pub version: u32,
}

/// Checks `hdr` of `buf`, which was read from where `location` says; errors
/// name `block`.
pub fn check(buf: &[u8], block: u64, location: u64, hdr: Header) -> Result {
    if !hdr.magic_ok {
        return Err(Error::BadMagic { block });
    }
    if buf.len() < 4 || hdr.checksum != crc32c(&buf[4..]) {
        return Err(Error::BadChecksum { block });
    }
    if hdr.location != location {
        return Err(Error::WrongLocation {
            block,
            recorded: hdr.location,
        });
    }
    if hdr.version != FORMAT_VERSION {
        return Err(Error::BadVersion { found: hdr.version });
    }
    Ok(())
}
