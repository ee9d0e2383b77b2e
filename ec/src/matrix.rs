// SPDX-License-Identifier: GPL-2.0

//! The coding matrices, in fixed-size arrays.
//!
//! The systematic encoding matrix is the `(k+m)×k` Vandermonde matrix
//! `V[r][c] = r^c` times the inverse of its top `k×k` square `T`, so its top
//! `k` rows are the identity and its bottom `m` rows, the parity rows, are
//! `V[k..k+m] · T⁻¹`. That is `reed-solomon-erasure`'s construction.
//!
//! Every matrix product needed here has the form `X = R · S⁻¹` for a square
//! `S`: [`solve_right`] computes it without forming `S⁻¹`.

use super::error::{Error, Result};
use super::gf;
use super::limits::{Row, MAX_DATA_SHARDS, MAX_PARITY_SHARDS};

/// A `k×k` square matrix, `k <= MAX_DATA_SHARDS`.
pub type Square = [Row; MAX_DATA_SHARDS];

/// Up to `MAX_PARITY_SHARDS` rows of coefficients.
pub type Rows = [Row; MAX_PARITY_SHARDS];

/// Row `r` of the Vandermonde matrix with `k` columns: `r^0, r^1, ...`.
pub fn vandermonde_row(r: usize, k: usize) -> Row {
    let mut row = [0u8; MAX_DATA_SHARDS];
    // Shard indices are below 256, so `r` is a field element as it is.
    let x = r as u8;
    for (c, v) in row.iter_mut().take(k).enumerate() {
        *v = gf::pow(x, c);
    }
    row
}

/// Replaces each of the rows `r` of `rhs` with `r · S⁻¹`, where `S` is the
/// leading `k×k` square of `s`; `s` is destroyed.
///
/// Column operations that turn `S` into the identity, `S·C = I`, applied to
/// `rhs` as well turn `R` into `R·C = R·S⁻¹` (Gauss-Jordan on columns).
/// Returns [`Error::Singular`] when `S` has no inverse.
pub fn solve_right(s: &mut Square, rhs: &mut [Row], k: usize) -> Result {
    if k == 0 || k > MAX_DATA_SHARDS {
        return Err(Error::DataShardCount);
    }
    for c in 0..k {
        // Pivot: a column at or right of `c` with a non-zero in row `c`.
        let p = (c..k).find(|&p| s[c][p] != 0).ok_or(Error::Singular)?;
        if p != c {
            for row in s.iter_mut().take(k).chain(rhs.iter_mut()) {
                row.swap(c, p);
            }
        }
        let scale = gf::inv(s[c][c]).ok_or(Error::Singular)?;
        for row in s.iter_mut().take(k).chain(rhs.iter_mut()) {
            row[c] = gf::mul(row[c], scale);
        }
        // Clear row `c` in every other column: column q -= s[c][q] * column c.
        for q in 0..k {
            let f = s[c][q];
            if q == c || f == 0 {
                continue;
            }
            for row in s.iter_mut().take(k).chain(rhs.iter_mut()) {
                row[q] ^= gf::mul(f, row[c]);
            }
        }
    }
    Ok(())
}

/// The `m` parity rows of the systematic encoding matrix for `k` data shards.
pub fn parity_rows(k: usize, m: usize) -> Result<Rows> {
    if k == 0 || k > MAX_DATA_SHARDS {
        return Err(Error::DataShardCount);
    }
    if m == 0 || m > MAX_PARITY_SHARDS {
        return Err(Error::ParityShardCount);
    }
    let mut top: Square = [[0; MAX_DATA_SHARDS]; MAX_DATA_SHARDS];
    for (r, row) in top.iter_mut().take(k).enumerate() {
        *row = vandermonde_row(r, k);
    }
    let mut rows: Rows = [[0; MAX_DATA_SHARDS]; MAX_PARITY_SHARDS];
    for (j, row) in rows.iter_mut().take(m).enumerate() {
        *row = vandermonde_row(k + j, k);
    }
    solve_right(&mut top, &mut rows[..m], k)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mul_rows(a: &Row, b: &Square, k: usize) -> Row {
        let mut out = [0u8; MAX_DATA_SHARDS];
        for (c, o) in out.iter_mut().take(k).enumerate() {
            for (i, x) in a.iter().take(k).enumerate() {
                *o ^= gf::mul(*x, b[i][c]);
            }
        }
        out
    }

    #[test]
    fn solve_right_inverts() {
        // A fixed pseudo-random invertible matrix: a Vandermonde one with
        // shuffled nodes.
        let k = 7;
        let mut s: Square = [[0; MAX_DATA_SHARDS]; MAX_DATA_SHARDS];
        for (r, row) in s.iter_mut().take(k).enumerate() {
            *row = vandermonde_row((r * 37 + 11) % 251, k);
        }
        let orig = s;
        let mut rhs = [[0u8; MAX_DATA_SHARDS]; 3];
        for (j, row) in rhs.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().take(k).enumerate() {
                *v = (j * 31 + c * 7 + 1) as u8;
            }
        }
        let want = rhs;
        solve_right(&mut s, &mut rhs, k).unwrap();
        for j in 0..3 {
            assert_eq!(mul_rows(&rhs[j], &orig, k), want[j]);
        }
    }

    #[test]
    fn singular_is_an_error() {
        let mut s: Square = [[0; MAX_DATA_SHARDS]; MAX_DATA_SHARDS];
        s[0][0] = 1;
        s[1][0] = 1;
        assert_eq!(solve_right(&mut s, &mut [], 2), Err(Error::Singular));
    }

    #[test]
    fn bad_counts() {
        assert_eq!(parity_rows(0, 1), Err(Error::DataShardCount));
        assert_eq!(
            parity_rows(MAX_DATA_SHARDS + 1, 1),
            Err(Error::DataShardCount)
        );
        assert_eq!(parity_rows(4, 0), Err(Error::ParityShardCount));
        assert_eq!(
            parity_rows(4, MAX_PARITY_SHARDS + 1),
            Err(Error::ParityShardCount)
        );
    }
}
