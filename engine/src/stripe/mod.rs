// SPDX-License-Identifier: GPL-2.0

//! Layer 7, the capacity tier: Reed-Solomon stripes of `k` data and `m`
//! parity chunks across the capacity devices (`crate::ec` does the coding).
//!
//! Rules ([`store`] states them in full):
//!
//! - Stripes are written whole and never rewritten while live; new content
//!   goes to a new stripe id, so there is no write hole. The only in-place
//!   writes are chunks derived from a stripe's other chunks (rebuild, scrub
//!   repair, [`repair`]).
//! - Every chunk carries a header ([`chunk`]) naming the store, the stripe,
//!   its index and its data CRC; a chunk that does not verify is treated as
//!   missing and reconstructed from the others, up to `m` of them.
//! - A freed stripe stays readable until the caller's next commit of the
//!   store, because committed maps may still point at it.

pub mod chunk;
pub mod geometry;
pub mod member;
pub mod meta;
pub mod repair;
pub mod store;
pub mod victims;
