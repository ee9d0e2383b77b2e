// SPDX-License-Identifier: GPL-2.0

//! CRC32C (Castagnoli), the checksum of every vtier metadata block.
//!
//! Slicing-by-8 over tables computed at compile time: no SIMD, no floating
//! point, usable in the kernel and in userspace alike. Conventions are the
//! usual ones (reflected, initial value and final xor `0xffff_ffff`), so
//! [`crc32c`] of `"123456789"` is `0xe306_9283` and results match the kernel's
//! `crc32c()` with seed `~0` followed by a final inversion.

const POLY: u32 = 0x82f6_3b78;

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

/// Continues a CRC32C: `state` is the raw register (start with `!0`), the
/// result is the raw register too; finish with `!state`.
pub fn update(mut state: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ state;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        state = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        state = (state >> 8) ^ t[0][((state ^ u32::from(b)) & 0xff) as usize];
    }
    state
}

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !update(!0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn matches_reference_crate_on_every_length_and_alignment() {
        let data: alloc::vec::Vec<u8> = (0..4200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 63, 64, 65, 511, 4096, 4191 - start] {
                let s = &data[start..start + len];
                assert_eq!(crc32c(s), ::crc32c::crc32c(s), "start {start} len {len}");
            }
        }
    }

    #[test]
    fn update_composes() {
        let a = b"vtier metadata ";
        let b = b"block checksum";
        let whole: alloc::vec::Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(!update(update(!0, a), b), crc32c(&whole));
    }
}
