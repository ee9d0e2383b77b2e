// SPDX-License-Identifier: GPL-2.0

//! The codec's error type.

/// What was wrong with a call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// `k` is 0 or more than [`super::limits::MAX_DATA_SHARDS`].
    DataShardCount,
    /// `m` is 0 or more than [`super::limits::MAX_PARITY_SHARDS`].
    ParityShardCount,
    /// A slice of shards (or of presence flags) has the wrong length.
    WrongShardCount,
    /// Shards differ in length.
    ShardSizeMismatch,
    /// Shards are empty.
    EmptyShard,
    /// Fewer than `k` shards are present, so the missing ones cannot be rebuilt.
    TooFewShardsPresent,
    /// A decoding matrix was singular. Cannot happen for a valid codec; kept
    /// as an error so that a bug is not a panic.
    Singular,
    /// A [`super::backend::GfKernel`] outside this crate (the C SIMD code)
    /// refused a call that the codec's checks allowed.
    Backend,
}

/// Result with the codec's [`Error`].
pub type Result<T = ()> = core::result::Result<T, Error>;

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            Error::DataShardCount => "data shard count out of range",
            Error::ParityShardCount => "parity shard count out of range",
            Error::WrongShardCount => "wrong number of shards",
            Error::ShardSizeMismatch => "shards differ in length",
            Error::EmptyShard => "empty shards",
            Error::TooFewShardsPresent => "too few shards present to reconstruct",
            Error::Singular => "singular decoding matrix",
            Error::Backend => "GF kernel refused the call",
        };
        f.write_str(s)
    }
}
