// SPDX-License-Identifier: GPL-2.0

//! The codec: encode, verify and reconstruct shards in caller buffers.
//!
//! A stripe is `k` data shards followed by `m` parity shards, all of one
//! length, indexed `0..k+m`. Nothing here allocates: shards are the caller's
//! slices (anything that is `AsRef<[u8]>`, and `AsMut<[u8]>` where written),
//! and the matrices live in fixed-size arrays.

use super::apply::verify;
use super::backend::{GfKernel, Scalar};
use super::error::{Error, Result};
use super::limits::{Row, MAX_DATA_SHARDS, MAX_PARITY_SHARDS, MAX_TOTAL_SHARDS};
use super::matrix::{parity_rows, solve_right, Rows, Square};

/// A Reed-Solomon code with `k` data and `m` parity shards.
///
/// Holds the `m×k` parity part of the systematic encoding matrix (see
/// [`super::matrix`]); about 200 bytes, cheap to keep per stripe layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReedSolomon {
    k: usize,
    m: usize,
    parity: Rows,
}

/// The common length of `shards`, which must be non-zero.
fn common_len<'a>(mut shards: impl Iterator<Item = &'a [u8]>) -> Result<usize> {
    let len = shards
        .next()
        .map(|s| s.len())
        .ok_or(Error::WrongShardCount)?;
    if shards.any(|s| s.len() != len) {
        return Err(Error::ShardSizeMismatch);
    }
    if len == 0 {
        return Err(Error::EmptyShard);
    }
    Ok(len)
}

impl ReedSolomon {
    /// A codec for `k` data and `m` parity shards, `1 <= k <=`
    /// [`MAX_DATA_SHARDS`], `1 <= m <=` [`MAX_PARITY_SHARDS`].
    pub fn new(k: usize, m: usize) -> Result<Self> {
        Ok(Self {
            k,
            m,
            parity: parity_rows(k, m)?,
        })
    }

    /// `k`.
    pub fn data_shards(&self) -> usize {
        self.k
    }

    /// `m`.
    pub fn parity_shards(&self) -> usize {
        self.m
    }

    /// `k + m`.
    pub fn total_shards(&self) -> usize {
        self.k + self.m
    }

    /// The `k` coefficients of parity shard `j` (`0..m`) over the data shards.
    pub fn parity_row(&self, j: usize) -> Option<&[u8]> {
        self.parity
            .get(j)
            .filter(|_| j < self.m)
            .map(|r| &r[..self.k])
    }

    /// Computes the `m` parity shards from the `k` data shards.
    pub fn encode<D: AsRef<[u8]>, P: AsMut<[u8]>>(&self, data: &[D], parity: &mut [P]) -> Result {
        self.encode_with(&Scalar, data, parity)
    }

    /// [`Self::encode`] with the hot loop of `kern`.
    pub fn encode_with<K: GfKernel + ?Sized, D: AsRef<[u8]>, P: AsMut<[u8]>>(
        &self,
        kern: &K,
        data: &[D],
        parity: &mut [P],
    ) -> Result {
        if data.len() != self.k || parity.len() != self.m {
            return Err(Error::WrongShardCount);
        }
        let len = common_len(data.iter().map(|d| d.as_ref()))?;
        let mut inputs: [&[u8]; MAX_DATA_SHARDS] = [&[]; MAX_DATA_SHARDS];
        for (i, d) in inputs.iter_mut().zip(data) {
            *i = d.as_ref();
        }
        let mut outputs: [&mut [u8]; MAX_PARITY_SHARDS] = Default::default();
        for (o, p) in outputs.iter_mut().zip(parity.iter_mut()) {
            *o = p.as_mut();
        }
        if outputs[..self.m].iter().any(|p| p.len() != len) {
            return Err(Error::ShardSizeMismatch);
        }
        kern.apply(
            &self.parity[..self.m],
            &inputs[..self.k],
            &mut outputs[..self.m],
            len,
        )
    }

    /// [`Self::encode`] on one slice of all `k + m` shards, data first.
    pub fn encode_shards<S: AsRef<[u8]> + AsMut<[u8]>>(&self, shards: &mut [S]) -> Result {
        if shards.len() != self.total_shards() {
            return Err(Error::WrongShardCount);
        }
        let (data, parity) = shards.split_at_mut(self.k);
        self.encode(data, parity)
    }

    /// [`Self::encode_shards`] with the hot loop of `kern`.
    pub fn encode_shards_with<K: GfKernel + ?Sized, S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        kern: &K,
        shards: &mut [S],
    ) -> Result {
        if shards.len() != self.total_shards() {
            return Err(Error::WrongShardCount);
        }
        let (data, parity) = shards.split_at_mut(self.k);
        self.encode_with(kern, data, parity)
    }

    /// Whether the `m` parity shards of `shards` (all `k + m`, data first)
    /// match the data shards.
    pub fn verify<S: AsRef<[u8]>>(&self, shards: &[S]) -> Result<bool> {
        if shards.len() != self.total_shards() {
            return Err(Error::WrongShardCount);
        }
        let len = common_len(shards.iter().map(|s| s.as_ref()))?;
        let (data, parity) = shards.split_at(self.k);
        verify(&self.parity[..self.m], data, parity, len)
    }

    /// Rebuilds every shard of `shards` (all `k + m`, data first) whose
    /// `present` flag is false, from at least `k` present ones. Every buffer,
    /// present or not, must have the stripe's shard length.
    pub fn reconstruct<S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        shards: &mut [S],
        present: &[bool],
    ) -> Result {
        self.rebuild(&Scalar, shards, present, self.total_shards())
    }

    /// [`Self::reconstruct`] with the hot loop of `kern`.
    pub fn reconstruct_with<K: GfKernel + ?Sized, S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        kern: &K,
        shards: &mut [S],
        present: &[bool],
    ) -> Result {
        self.rebuild(kern, shards, present, self.total_shards())
    }

    /// As [`Self::reconstruct`], but rebuilds only missing data shards and
    /// leaves missing parity shards alone.
    pub fn reconstruct_data<S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        shards: &mut [S],
        present: &[bool],
    ) -> Result {
        self.rebuild(&Scalar, shards, present, self.k)
    }

    /// [`Self::reconstruct_data`] with the hot loop of `kern`.
    pub fn reconstruct_data_with<K: GfKernel + ?Sized, S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        kern: &K,
        shards: &mut [S],
        present: &[bool],
    ) -> Result {
        self.rebuild(kern, shards, present, self.k)
    }

    /// Row `i` of the full `(k+m)×k` encoding matrix.
    fn encoding_row(&self, i: usize) -> Row {
        match i.checked_sub(self.k) {
            Some(j) => self.parity[j],
            None => {
                let mut r = [0; MAX_DATA_SHARDS];
                r[i] = 1;
                r
            }
        }
    }

    /// Rebuilds the missing shards among the first `limit`.
    fn rebuild<K: GfKernel + ?Sized, S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        kern: &K,
        shards: &mut [S],
        present: &[bool],
        limit: usize,
    ) -> Result {
        let n = self.total_shards();
        if shards.len() != n || present.len() != n {
            return Err(Error::WrongShardCount);
        }
        let len = common_len(shards.iter_mut().map(|s| &*s.as_mut()))?;
        if present.iter().filter(|&&p| p).count() < self.k {
            return Err(Error::TooFewShardsPresent);
        }
        // Sources: the first k present shards. Targets: the missing ones.
        // Shard indices are below MAX_TOTAL_SHARDS <= 256.
        let mut sources = [0u8; MAX_DATA_SHARDS];
        let mut targets = [0u8; MAX_PARITY_SHARDS];
        let (mut ns, mut nt) = (0, 0);
        for (i, &p) in present.iter().enumerate() {
            if p && ns < self.k {
                sources[ns] = i as u8;
                ns += 1;
            } else if !p && i < limit {
                // At most m are missing, since at least k are present.
                *targets.get_mut(nt).ok_or(Error::TooFewShardsPresent)? = i as u8;
                nt += 1;
            }
        }
        if nt == 0 {
            return Ok(());
        }
        // Shard i = E_i·D, and the sources give D = S⁻¹·(sources), so each
        // target t is (E_t·S⁻¹)·(sources).
        let mut s: Square = [[0; MAX_DATA_SHARDS]; MAX_DATA_SHARDS];
        for (row, &i) in s.iter_mut().zip(&sources[..ns]) {
            *row = self.encoding_row(i as usize);
        }
        let mut rows: Rows = [[0; MAX_DATA_SHARDS]; MAX_PARITY_SHARDS];
        for (row, &t) in rows.iter_mut().zip(&targets[..nt]) {
            *row = self.encoding_row(t as usize);
        }
        solve_right(&mut s, &mut rows[..nt], self.k)?;

        let mut inputs: [&[u8]; MAX_DATA_SHARDS] = [&[]; MAX_DATA_SHARDS];
        let mut outputs: [&mut [u8]; MAX_PARITY_SHARDS] = Default::default();
        let (mut ni, mut no) = (0, 0);
        for (i, shard) in shards.iter_mut().enumerate() {
            let i = i as u8;
            if sources[..ns].contains(&i) {
                let shard: &S = shard;
                inputs[ni] = shard.as_ref();
                ni += 1;
            } else if targets[..nt].contains(&i) {
                outputs[no] = shard.as_mut();
                no += 1;
            }
        }
        kern.apply(&rows[..nt], &inputs[..ni], &mut outputs[..no], len)
    }
}

const _: () = assert!(MAX_TOTAL_SHARDS <= 256);
