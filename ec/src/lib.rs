// SPDX-License-Identifier: GPL-2.0

//! Reed-Solomon erasure coding over GF(2^8) for vtier's capacity tier.
//!
//! A [`ReedSolomon`] codec for `k` data and `m` parity shards computes,
//! checks and rebuilds parity in caller-provided buffers. It is `no_std`,
//! allocates nothing, uses no floating point and no `unsafe`, and returns an
//! [`Error`] instead of panicking on a bad argument.
//!
//! The code is byte-compatible with the `reed-solomon-erasure` crate: the same
//! field (polynomial 0x11d, generator 2) and the same systematic matrix (a
//! Vandermonde matrix times the inverse of its top k×k square). Its tests use
//! that crate as the reference.
//!
//! The same files are compiled into `vtier.ko`, whose crate root declares each
//! module below with a `#[path]` attribute inside a `mod ec { ... }`. So this
//! file holds only attributes, module declarations and re-exports; modules
//! refer to their siblings as `super::name` and use only `core`.
//!
//! Adding a module: declare it here *and* in the kernel crate root.

#![no_std]
#![forbid(unsafe_code)]

pub mod apply;
pub mod backend;
pub mod codec;
pub mod error;
pub mod gf;
pub mod limits;
pub mod matrix;

pub use backend::{GfKernel, Scalar};
pub use codec::ReedSolomon;
pub use error::{Error, Result};
pub use limits::{MAX_DATA_SHARDS, MAX_PARITY_SHARDS};
