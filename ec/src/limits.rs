// SPDX-License-Identifier: GPL-2.0

//! Size limits of a codec.
//!
//! They bound the fixed-size matrices the codec keeps and the work arrays on
//! the stack, so no call allocates. Measured on x86-64 (release): the
//! `reconstruct` frame is about 1.6 KiB and the `apply` frame below it about
//! 0.75 KiB; `encode` needs about 1.2 KiB in all; `new` about 1 KiB.

/// Most data shards (`k`) a codec accepts.
pub const MAX_DATA_SHARDS: usize = 24;

/// Most parity shards (`m`) a codec accepts.
pub const MAX_PARITY_SHARDS: usize = 8;

/// Most shards in all (`k + m`).
pub const MAX_TOTAL_SHARDS: usize = MAX_DATA_SHARDS + MAX_PARITY_SHARDS;

/// One row of coefficients: a shard expressed as a combination of `k`
/// others. Only the first `k` entries are used.
pub type Row = [u8; MAX_DATA_SHARDS];

// Shard sets are held as bit masks in a `u32` (see `super::apply`).
const _: () = assert!(MAX_DATA_SHARDS <= 32);
