// SPDX-License-Identifier: GPL-2.0

//! Arithmetic in GF(2^8).
//!
//! The field is GF(2)\[x\] modulo x^8 + x^4 + x^3 + x^2 + 1 (0x11d), with 2
//! (the element x) as the generator of the multiplicative group: the same
//! field as `reed-solomon-erasure`. Addition is XOR. The log and exp tables
//! are computed at compile time.

/// The reduction polynomial, bit 8 included.
pub const POLYNOMIAL: u16 = 0x11d;

/// The generator whose powers the log and exp tables list.
pub const GENERATOR: u8 = 2;

/// `EXP[i]` is `GENERATOR^i`, for `i` in `0..510`, so that the sum of two
/// logs indexes it without a reduction modulo 255.
pub static EXP: [u8; 510] = exp_table();

/// `LOG[a]` is the `i` in `0..255` with `GENERATOR^i == a`, for `a != 0`;
/// `LOG[0]` is 0 and meaningless.
pub static LOG: [u8; 256] = log_table();

/// Multiplies by `x` (that is, by 2) in the field.
pub const fn mul2(a: u8) -> u8 {
    let shifted = (a as u16) << 1;
    if shifted & 0x100 != 0 {
        (shifted ^ POLYNOMIAL) as u8
    } else {
        shifted as u8
    }
}

const fn exp_table() -> [u8; 510] {
    let mut t = [0u8; 510];
    let mut v: u8 = 1;
    let mut i = 0;
    while i < 510 {
        t[i] = v;
        v = mul2(v);
        i += 1;
    }
    t
}

const fn log_table() -> [u8; 256] {
    let exp = exp_table();
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        t[exp[i] as usize] = i as u8;
        i += 1;
    }
    t
}

/// `a * b`.
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    let i = LOG[a as usize] as usize + LOG[b as usize] as usize;
    EXP.get(i).copied().unwrap_or(0)
}

/// The multiplicative inverse of `a`, or `None` for 0.
pub fn inv(a: u8) -> Option<u8> {
    if a == 0 {
        return None;
    }
    EXP.get(255 - LOG[a as usize] as usize).copied()
}

/// `a` to the power `n`, with `0^0 == 1` (as `reed-solomon-erasure` has it).
pub fn pow(a: u8, n: usize) -> u8 {
    if n == 0 {
        return 1;
    }
    if a == 0 {
        return 0;
    }
    let i = (LOG[a as usize] as usize * (n % 255)) % 255;
    EXP.get(i).copied().unwrap_or(0)
}

/// Byte mask with the low bit of every byte of a word.
const LOW_BITS: u64 = 0x0101_0101_0101_0101;

/// `x^8` reduced, in every byte: what a byte's carried-out top bit folds
/// back in as when it is doubled.
const REDUCE_UP: u64 = 0x1d1d_1d1d_1d1d_1d1d;

/// `x^-1`, in every byte: what a byte's shifted-out low bit folds back in as
/// when it is halved.
const REDUCE_DOWN: u64 = 0x8e8e_8e8e_8e8e_8e8e;

/// `0xff` in every byte whose low bit `t` (a word of 0 or 1 bytes) has set:
/// `t · 255` without a multiply and without carries between bytes.
#[inline(always)]
fn byte_mask(t: u64) -> u64 {
    (t << 8).wrapping_sub(t)
}

/// Multiplies each of the eight bytes of `w` by 2 (`x`) in the field: every
/// byte shifted left by one, and `x^8` folded back in where a top bit fell
/// out. Seven simple integer operations, one of them a shift: the low seven
/// bits are doubled by an addition (no carry can leave a byte once its top
/// bit is cleared), and `0x80 - 1 = 0x7f` in a byte whose top bit was set,
/// masked, gives the fold without a multiply or a borrow between bytes.
#[inline(always)]
pub fn double_word(w: u64) -> u64 {
    let top = w & (LOW_BITS << 7);
    let low = w ^ top;
    low.wrapping_add(low) ^ (top.wrapping_sub(top >> 7) & REDUCE_UP)
}

/// Multiplies each of the eight bytes of `w` by 2⁻¹ (`x^-1`) in the field:
/// every byte shifted right by one, and `x^-1` folded back in where a low
/// bit fell out. Seven simple integer operations.
#[inline(always)]
pub fn halve_word(w: u64) -> u64 {
    let low = w & LOW_BITS;
    ((w >> 1) & !(LOW_BITS << 7)) ^ (byte_mask(low) & REDUCE_DOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multiplication by shift-and-add, the definition.
    fn mul_slow(mut a: u8, mut b: u8) -> u8 {
        let mut r = 0;
        while b != 0 {
            if b & 1 != 0 {
                r ^= a;
            }
            a = mul2(a);
            b >>= 1;
        }
        r
    }

    #[test]
    fn tables_match_definition() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul_slow(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn generator_generates_everything() {
        let mut seen = [false; 256];
        for i in 0..255 {
            assert!(!seen[EXP[i] as usize]);
            seen[EXP[i] as usize] = true;
        }
        assert!(!seen[0]);
    }

    #[test]
    fn inverses() {
        assert_eq!(inv(0), None);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a).unwrap()), 1);
        }
    }

    #[test]
    fn powers() {
        for a in 0..=255u8 {
            let mut p = 1u8;
            for n in 0..600 {
                assert_eq!(pow(a, n), p, "{a}^{n}");
                p = mul(p, a);
            }
        }
    }

    #[test]
    fn word_steps_are_bytewise() {
        let half = inv(2).unwrap();
        for base in 0..=255u8 {
            // Every byte value in every position, with every neighbour
            // pattern that could leak a carry across bytes.
            for pattern in [0u64, u64::MAX, 0x0101_0101_0101_0101, 0x8080_8080_8080_8080] {
                let w = (pattern ^ 0x0123_4567_89ab_cdef) & !0xff_u64 | base as u64;
                let w = w.rotate_left(8 * (base as u32 % 8));
                let d = double_word(w).to_ne_bytes();
                let h = halve_word(w).to_ne_bytes();
                for (i, b) in w.to_ne_bytes().iter().enumerate() {
                    assert_eq!(d[i], mul2(*b));
                    assert_eq!(h[i], mul(*b, half));
                }
            }
        }
    }

    #[test]
    fn matches_reference_field() {
        use reed_solomon_erasure::galois_8 as reference;
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), reference::mul(a, b));
            }
            for n in 0..300 {
                assert_eq!(pow(a, n), reference::exp(a, n));
            }
        }
    }
}
