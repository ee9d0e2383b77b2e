// SPDX-License-Identifier: GPL-2.0

//! CRC32C (Castagnoli), the checksum of every vtier metadata block and of
//! the data the map and the data log record.
//!
//! The bytes are computed by a library behind [`crate::kcompat::crc32c`]:
//! the kernel's `crc32c()` in `vtier.ko` (accelerated where the kernel and
//! the CPU allow), the `crc32c` crate in userspace (SSE 4.2 where the CPU
//! has it). Conventions are the usual ones (reflected, polynomial
//! `0x82f6_3b78`, initial value and final xor `0xffff_ffff`), so [`crc32c`]
//! of `"123456789"` is `0xe306_9283`.
//!
//! [`crc32c_combine`] is ours: the CRC32C of two pieces glued together,
//! from theirs, without the data.

/// The polynomial, reflected.
const POLY: u32 = 0x82f6_3b78;

/// CRC32C of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crate::kcompat::crc32c(data)
}

/// `a * b` modulo the CRC32C polynomial (reflected bit order).
const fn mult_mod_p(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0u32;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                return p;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
}

/// `X2N[k]` is x^(2^k) modulo the polynomial.
const X2N: [u32; 32] = {
    let mut t = [0u32; 32];
    let mut p = 1u32 << 30; // x^1
    let mut k = 0;
    while k < 32 {
        t[k] = p;
        p = mult_mod_p(p, p);
        k += 1;
    }
    t
};

/// CRC32C of `A ‖ B` from `crc32c(A)`, `crc32c(B)` and the length of `B`
/// in bytes, in O(log len) without the data.
pub fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    // x^(8 * len_b) mod P, by the binary digits of len_b (k starts at 3: bytes).
    let mut p = 1u32 << 31;
    let mut n = len_b;
    let mut k = 3;
    while n != 0 {
        if n & 1 != 0 {
            p = mult_mod_p(X2N[k & 31], p);
        }
        n >>= 1;
        k += 1;
    }
    mult_mod_p(p, crc_a) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::device::BLOCK_SIZE;

    /// Published check values: the CRC catalogue's check string, and the
    /// iSCSI CRC32C examples of RFC 3720 (section B.4).
    #[test]
    fn known_vectors() {
        let inc: [u8; 32] = core::array::from_fn(|i| i as u8);
        let dec: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        let cases: [(&[u8], u32); 6] = [
            (b"", 0),
            (b"123456789", 0xe306_9283),
            (&[0; 32], 0x8a91_36aa),
            (&[0xff; 32], 0x62a8_ab43),
            (&inc, 0x46dd_794e),
            (&dec, 0x113f_db5c),
        ];
        for (data, want) in cases {
            assert_eq!(crc32c(data), want, "{data:02x?}");
            assert_eq!(crate::kcompat::crc32c_bitwise(data), want, "{data:02x?}");
        }
    }

    /// The library against the definition (a bit at a time), on every
    /// alignment and on lengths around every word and block size.
    #[test]
    fn matches_bitwise_on_every_length_and_alignment() {
        let data: alloc::vec::Vec<u8> = (0..4200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 63, 64, 65, 511, 4096, 4191 - start] {
                let s = &data[start..start + len];
                assert_eq!(
                    crc32c(s),
                    crate::kcompat::crc32c_bitwise(s),
                    "start {start} len {len}"
                );
            }
        }
    }

    #[test]
    fn combine_matches_concatenation() {
        let data: alloc::vec::Vec<u8> = (0..3 * BLOCK_SIZE as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        for cut in [0, 1, 7, 4096, 5000, 3 * BLOCK_SIZE] {
            let (a, b) = data.split_at(cut);
            let got = crc32c_combine(crc32c(a), crc32c(b), b.len() as u64);
            assert_eq!(got, crc32c(&data), "cut {cut}");
        }
    }
}
