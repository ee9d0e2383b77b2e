// SPDX-License-Identifier: GPL-2.0

//! Known-answer tests of an [`XtsCipher`], the same in the kernel and in
//! userspace.
//!
//! - [`check_ieee`] runs the IEEE 1619 XTS-AES-256 vectors
//!   (`crate::crypt::xts_vectors`) through a cipher, both ways.
//! - [`BlockCase`] gives deterministic 4096-byte test blocks (key, tweak,
//!   plaintext from a fixed seed). The kernel prints its ciphertexts of them
//!   with [`write_case_line`] (debugfs `vtier/xts_selftest`); the userspace
//!   tests write the same lines with RustCrypto into
//!   `qemu-test/tests/data/xts-blocks.txt`, and the guest test compares the
//!   two byte for byte. The test keys are public, so printing their
//!   ciphertexts reveals nothing.

use core::fmt;

use crate::crypt::cipher::{Tweak, XtsCipher, XtsKey, BLOCK_SIZE};
use crate::crypt::xts_vectors::{ieee_plaintext, IEEE_1619, IEEE_UNIT};
use crate::error::Error;
use crate::kcompat::{KVec, GFP_KERNEL};

/// Why a known-answer test failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KatError {
    /// The cipher returned an error (or could not be created).
    Cipher(Error),
    /// The cipher returned wrong bytes.
    Mismatch {
        /// IEEE vector number, or block case number.
        test: u32,
        /// True if decryption was wrong, false if encryption was.
        decrypt: bool,
    },
}

impl From<Error> for KatError {
    fn from(e: Error) -> Self {
        KatError::Cipher(e)
    }
}

impl fmt::Display for KatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KatError::Cipher(e) => write!(f, "cipher error: {e}"),
            KatError::Mismatch { test, decrypt } => {
                let op = if decrypt { "decryption" } else { "encryption" };
                write!(f, "test {test}: wrong {op}")
            }
        }
    }
}

/// Runs IEEE 1619 vectors 10 to 14 through the ciphers that `make` builds
/// for their key: encrypts the plaintext and decrypts the ciphertext, in
/// place, in one heap buffer. Returns how many vectors passed (all of them).
pub fn check_ieee<C, F>(make: F) -> Result<u32, KatError>
where
    C: XtsCipher,
    F: Fn(&XtsKey) -> crate::error::Result<C>,
{
    let mut buf = KVec::from_elem(0u8, IEEE_UNIT, GFP_KERNEL).map_err(Error::from)?;
    let mut passed = 0;
    for v in IEEE_1619.iter() {
        let cipher = make(&v.key)?;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = ieee_plaintext(i);
        }
        cipher.encrypt_unit(&mut buf, &v.tweak)?;
        if buf[..] != v.ciphertext[..] {
            return Err(KatError::Mismatch {
                test: v.number,
                decrypt: false,
            });
        }
        cipher.decrypt_unit(&mut buf, &v.tweak)?;
        if buf.iter().enumerate().any(|(i, &b)| b != ieee_plaintext(i)) {
            return Err(KatError::Mismatch {
                test: v.number,
                decrypt: true,
            });
        }
        passed += 1;
    }
    Ok(passed)
}

/// Number of deterministic block cases.
pub const BLOCK_CASES: u32 = 3;

/// What a block case's plaintext looks like.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Plaintext {
    /// Pseudo-random bytes.
    Random,
    /// All zeroes, like a block never written.
    Zero,
    /// One 16-byte pattern repeated: shows that equal AES blocks inside a
    /// data unit still encrypt differently.
    Repeated,
}

/// A deterministic test block: key, tweak and plaintext derived from the
/// case number alone.
pub struct BlockCase {
    /// The case number, `0..BLOCK_CASES`.
    pub number: u32,
    /// The (public) test key.
    pub key: XtsKey,
    /// The tweak.
    pub tweak: Tweak,
    plaintext: Plaintext,
    seed: u64,
}

impl BlockCase {
    /// Case `number` (any `u32`; the published ones are `0..BLOCK_CASES`).
    pub fn new(number: u32) -> Self {
        // "vtierXTS" plus the case number.
        let seed = u64::from_le_bytes(*b"vtierXTS").wrapping_add(u64::from(number));
        let mut rng = SplitMix64(seed);
        let mut key = [0u8; 64];
        rng.fill(&mut key);
        let mut tweak = [0u8; 16];
        rng.fill(&mut tweak);
        let plaintext = match number % 3 {
            0 => Plaintext::Random,
            1 => Plaintext::Zero,
            _ => Plaintext::Repeated,
        };
        Self {
            number,
            key,
            tweak,
            plaintext,
            seed: rng.next(),
        }
    }

    /// Writes the case's plaintext into `block`.
    pub fn fill_plaintext(&self, block: &mut [u8; BLOCK_SIZE]) {
        let mut rng = SplitMix64(self.seed);
        match self.plaintext {
            Plaintext::Random => rng.fill(block),
            Plaintext::Zero => block.fill(0),
            Plaintext::Repeated => {
                let mut pattern = [0u8; 16];
                rng.fill(&mut pattern);
                for chunk in block.chunks_exact_mut(16) {
                    chunk.copy_from_slice(&pattern);
                }
            }
        }
    }

    /// Fills `block` with the plaintext and encrypts it with `cipher`, which
    /// must hold [`Self::key`]; then checks that decryption gives the
    /// plaintext back and encrypts again, leaving the ciphertext in `block`.
    pub fn encrypt<C: XtsCipher + ?Sized>(
        &self,
        cipher: &C,
        block: &mut [u8; BLOCK_SIZE],
    ) -> Result<(), KatError> {
        self.fill_plaintext(block);
        cipher.encrypt_block(block, &self.tweak)?;
        cipher.decrypt_block(block, &self.tweak)?;
        let mut rng = SplitMix64(self.seed);
        let mut want = [0u8; 16];
        for (i, chunk) in block.chunks_exact(16).enumerate() {
            match self.plaintext {
                Plaintext::Random => rng.fill(&mut want),
                Plaintext::Zero => want = [0; 16],
                Plaintext::Repeated if i == 0 => rng.fill(&mut want),
                Plaintext::Repeated => {}
            }
            if chunk != want {
                return Err(KatError::Mismatch {
                    test: self.number,
                    decrypt: true,
                });
            }
        }
        cipher.encrypt_block(block, &self.tweak)?;
        Ok(())
    }
}

/// Writes `case N <hex of ciphertext>` and a newline: the line format of
/// debugfs `vtier/xts_selftest` and of `qemu-test/tests/data/xts-blocks.txt`.
pub fn write_case_line<W: fmt::Write + ?Sized>(
    w: &mut W,
    number: u32,
    ciphertext: &[u8],
) -> fmt::Result {
    write!(w, "case {number} ")?;
    for b in ciphertext {
        write!(w, "{b:02x}")?;
    }
    writeln!(w)
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator that
/// needs no tables, for deterministic test data only.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_deterministic_and_distinct() {
        let a = BlockCase::new(0);
        let b = BlockCase::new(0);
        let c = BlockCase::new(1);
        assert_eq!(a.key, b.key);
        assert_eq!(a.tweak, b.tweak);
        assert_ne!(a.key, c.key);
        assert_ne!(a.tweak, c.tweak);
        let mut x = [0u8; BLOCK_SIZE];
        let mut y = [1u8; BLOCK_SIZE];
        a.fill_plaintext(&mut x);
        b.fill_plaintext(&mut y);
        assert_eq!(x, y);
    }

    #[test]
    fn plaintext_kinds() {
        let mut block = [0u8; BLOCK_SIZE];
        BlockCase::new(1).fill_plaintext(&mut block);
        assert!(block.iter().all(|&b| b == 0));
        BlockCase::new(2).fill_plaintext(&mut block);
        assert!(block.chunks_exact(16).all(|c| c == &block[..16]));
        assert_ne!(&block[..8], &block[8..16]);
    }

    #[test]
    fn case_line_format() {
        let mut s = alloc::string::String::new();
        write_case_line(&mut s, 7, &[0x00, 0xab, 0x10]).unwrap();
        assert_eq!(s, "case 7 00ab10\n");
    }

    /// A "cipher" that changes nothing, or fails.
    struct Broken(Option<Error>);

    impl XtsCipher for Broken {
        fn encrypt_unit(&self, _: &mut [u8], _: &Tweak) -> crate::error::Result {
            self.0.map_or(Ok(()), Err)
        }
        fn decrypt_unit(&self, _: &mut [u8], _: &Tweak) -> crate::error::Result {
            self.0.map_or(Ok(()), Err)
        }
    }

    #[test]
    fn failures_are_reported() {
        let mismatch = KatError::Mismatch {
            test: 10,
            decrypt: false,
        };
        assert_eq!(check_ieee(|_| Ok(Broken(None))), Err(mismatch));
        let io = KatError::Cipher(Error::Io);
        assert_eq!(check_ieee(|_| Ok(Broken(Some(Error::Io)))), Err(io));
        let nokey = KatError::Cipher(Error::InvalidArgument);
        assert_eq!(
            check_ieee(|_| Err::<Broken, _>(Error::InvalidArgument)),
            Err(nokey)
        );
        let mut block = [0u8; BLOCK_SIZE];
        assert_eq!(
            BlockCase::new(0).encrypt(&Broken(None), &mut block),
            Ok(()),
            "an identity cipher round-trips; the guest test's comparison catches it"
        );
        assert_eq!(alloc::format!("{mismatch}"), "test 10: wrong encryption");
    }

    #[test]
    fn splitmix_reference() {
        // First outputs for seed 0 from the reference implementation.
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next(), 0x6e78_9e6a_a1b9_65f4);
    }
}
