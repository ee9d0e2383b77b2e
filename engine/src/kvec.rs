// SPDX-License-Identifier: GPL-2.0

//! What the engine needs of a vector beyond what `KVec` offers in both
//! builds.

use crate::error::{Error, Result};
use crate::kcompat::{KVec, GFP_KERNEL};

/// Inserts `x` at `i` of `v` (the engine's `Vec::insert`: `KVec` has none);
/// `Error::InvalidArgument` past the end.
pub fn kvec_insert<T>(v: &mut KVec<T>, i: usize, x: T) -> Result {
    if i > v.len() {
        return Err(Error::InvalidArgument);
    }
    v.push(x, GFP_KERNEL)?;
    v[i..].rotate_right(1);
    Ok(())
}
