// SPDX-License-Identifier: GPL-2.0

//! Layer 2, on-disk format: checksums, the checks every metadata block
//! gets, and the superblock that roots a member device.
//!
//! Rules (the bytes are in `doc/FORMAT.md`):
//!
//! - Every metadata block carries a magic, the format version, a generation
//!   or sequence number, its own block number and a CRC32C; it is checked in
//!   the order magic, checksum, location, version, then its fields
//!   ([`block_check::check`]). Nothing read from a device is trusted before
//!   that, and a bad block is an error, never a panic.
//! - Integers are little-endian and encoded field by field.
//! - Every change to a layout bumps [`superblock::FORMAT_VERSION`].

pub mod block_check;
pub mod crc32c;
pub mod superblock;
