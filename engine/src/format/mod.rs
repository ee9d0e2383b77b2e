// SPDX-License-Identifier: GPL-2.0

//! Layer 2, on-disk format: checksums, the validator every metadata block
//! goes through, and the superblock that roots a member device.
//!
//! Rules (the bytes are in `doc/FORMAT.md`):
//!
//! - Every metadata block carries a magic, the format version, a generation
//!   or sequence number, its own block number and a CRC32C. It is sealed
//!   and checked only through its type's [`validator::BlockKind`]: checked
//!   in the order magic, checksum, location, version, then its fields.
//!   Nothing read from a device is trusted before that, and a bad block is
//!   an error, never a panic.
//! - Integers are little-endian and encoded field by field.
//! - Every change to a layout bumps [`superblock::FORMAT_VERSION`].

pub mod crc32c;
pub mod superblock;
pub mod validator;
