// SPDX-License-Identifier: GPL-2.0

//! Layer 8, the data path: what `/dev/vtierN` reads and writes.
//!
//! Rules (their proofs are the crash harnesses in `engine/tests/`):
//!
//! - A write lands as data log entries on the performance tier (header +
//!   data as stored, encrypted once with the volume's fixed tweak,
//!   [`datalog`]); it is mapped by one transaction, and what it displaced is
//!   freed only after that transaction has committed.
//! - A flush commits the map; only what a completed flush covered must
//!   survive a power cut.
//! - Destage moves data, still encrypted, into stripes of the capacity tier
//!   and repoints the map; the performance-tier blocks are freed only after
//!   the stripe store has committed the stripe ([`store`]).
//! - Every block returned to the caller or moved between tiers is checked
//!   against a checksum taken when it was written.

pub mod datalog;
pub mod store;
