// SPDX-License-Identifier: GPL-2.0

//! A volume's encryption parameters, its key check value, and keys as text.
//!
//! An encrypted volume set uses AES-256-XTS ([`crate::crypt::cipher`]) with one
//! fixed random tweak, chosen at format time and the same on every member
//! (it is not secret). Next to it the volume records a *key check value*
//! (KCV), so that a wrong key is refused when the volume starts instead of
//! turning every read into garbage.
//!
//! # The key check value
//!
//! `KCV = AES-256-XTS(key, tweak XOR KCV_TWEAK_MASK, KCV_PLAINTEXT)`: one
//! 16-byte AES block (no ciphertext stealing), encrypted with a tweak that
//! no data block uses. So:
//!
//! - it equals no ciphertext on the disks (data blocks all use the volume's
//!   tweak), so it tells nothing about the data, not even which blocks are
//!   all zero;
//! - it is a one-way function of the key (AES as a pseudo-random
//!   function): it only lets someone check a guessed key, which for a
//!   random 512-bit key is no help (a key derived from a passphrase would
//!   need a slow KDF in front);
//! - two volumes with the same key have different tweaks, hence different
//!   KCVs: the KCV does not show that they share a key.
//!
//! The check compares in constant time. Keys are never stored, printed or
//! logged here; [`parse_key_hex`] writes straight into the caller's buffer,
//! which the caller wipes.

use crate::crypt::cipher::{Tweak, XtsCipher, XtsKey, TWEAK_SIZE, XTS_KEY_SIZE};
use crate::error::{Error, Result};

/// Bytes of a key check value.
pub const KCV_SIZE: usize = 16;
/// On-disk cipher id of an unencrypted volume.
pub const CIPHER_NONE: u32 = 0;
/// On-disk cipher id of AES-256-XTS with one fixed tweak.
pub const CIPHER_AES_256_XTS: u32 = 1;
/// The block encrypted for the KCV.
pub const KCV_PLAINTEXT: [u8; 16] = *b"vtier KCV v1\0\0\0\0";
/// XORed into the volume's tweak for the KCV, so that no data block's
/// tweak is used.
pub const KCV_TWEAK_MASK: Tweak = [0xff; TWEAK_SIZE];

/// How a volume set is encrypted.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// Not at all: blocks are stored as written.
    None,
    /// AES-256-XTS with one fixed tweak.
    AesXts {
        /// The tweak of every data block (random, not secret).
        tweak: Tweak,
        /// The key check value ([module docs](self)).
        kcv: [u8; KCV_SIZE],
    },
}

/// The key check value of the key in `cipher` for a volume with `tweak`.
pub fn key_check_value<C: XtsCipher + ?Sized>(cipher: &C, tweak: &Tweak) -> Result<[u8; KCV_SIZE]> {
    let mut kcv_tweak = *tweak;
    for (t, m) in kcv_tweak.iter_mut().zip(KCV_TWEAK_MASK) {
        *t ^= m;
    }
    let mut kcv = KCV_PLAINTEXT;
    cipher.encrypt_unit(&mut kcv, &kcv_tweak)?;
    Ok(kcv)
}

impl Encryption {
    /// The parameters of a new encrypted volume: `tweak` comes from the
    /// formatter's random source, `cipher` holds the key.
    pub fn aes_xts<C: XtsCipher + ?Sized>(cipher: &C, tweak: Tweak) -> Result<Self> {
        Ok(Encryption::AesXts {
            tweak,
            kcv: key_check_value(cipher, &tweak)?,
        })
    }

    /// Checks that `cipher` holds this volume's key: [`Error::WrongKey`]
    /// if not, [`Error::InvalidArgument`] if the volume is not encrypted.
    pub fn check_key<C: XtsCipher + ?Sized>(&self, cipher: &C) -> Result {
        let Encryption::AesXts { tweak, kcv } = self else {
            return Err(Error::InvalidArgument);
        };
        let got = key_check_value(cipher, tweak)?;
        // Constant time: no early exit on the first differing byte.
        let diff = got.iter().zip(kcv).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(Error::WrongKey)
        }
    }

    /// The data blocks' tweak, if the volume is encrypted.
    pub fn tweak(&self) -> Option<&Tweak> {
        match self {
            Encryption::None => None,
            Encryption::AesXts { tweak, .. } => Some(tweak),
        }
    }

    /// The on-disk fields: cipher id, tweak, KCV (zero when unencrypted).
    pub fn to_raw(self) -> (u32, Tweak, [u8; KCV_SIZE]) {
        match self {
            Encryption::None => (CIPHER_NONE, [0; TWEAK_SIZE], [0; KCV_SIZE]),
            Encryption::AesXts { tweak, kcv } => (CIPHER_AES_256_XTS, tweak, kcv),
        }
    }

    /// Decodes the on-disk fields of `block`: an unknown cipher id, or
    /// tweak or KCV bytes on an unencrypted volume, are corruption.
    pub fn from_raw(cipher: u32, tweak: Tweak, kcv: [u8; KCV_SIZE], block: u64) -> Result<Self> {
        match cipher {
            CIPHER_NONE if tweak == [0; TWEAK_SIZE] && kcv == [0; KCV_SIZE] => Ok(Encryption::None),
            CIPHER_AES_256_XTS => Ok(Encryption::AesXts { tweak, kcv }),
            _ => Err(Error::Corrupt {
                block: Some(block),
                what: "encryption parameters",
            }),
        }
    }
}

/// Parses a key written as 128 hex digits (either case, an optional
/// trailing newline, as `echo` writes it) into `out`, in place. Anything
/// else is [`Error::InvalidArgument`]; `out` may then hold part of the key,
/// and the caller wipes it as always.
pub fn parse_key_hex(input: &[u8], out: &mut XtsKey) -> Result {
    let digits = input.strip_suffix(b"\n").unwrap_or(input);
    if digits.len() != 2 * XTS_KEY_SIZE {
        return Err(Error::InvalidArgument);
    }
    // Indexing with `get` rather than `chunks_exact`: no panic path at all,
    // which objtool also prefers in the module.
    for (i, byte) in out.iter_mut().enumerate() {
        let hi = digits.get(2 * i).copied().ok_or(Error::InvalidArgument)?;
        let lo = digits
            .get(2 * i + 1)
            .copied()
            .ok_or(Error::InvalidArgument)?;
        *byte = (nibble(hi)? << 4) | nibble(lo)?;
    }
    Ok(())
}

fn nibble(c: u8) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::InvalidArgument),
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::crypt::cipher::BLOCK_SIZE;
    use crate::crypt::soft::SoftXts;

    fn key(seed: u8) -> XtsKey {
        let mut k = [0u8; XTS_KEY_SIZE];
        for (i, b) in k.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
        k
    }

    #[test]
    fn right_key_passes_wrong_key_fails() {
        let tweak = [0x42; TWEAK_SIZE];
        let enc = Encryption::aes_xts(&SoftXts::new(&key(1)).unwrap(), tweak).unwrap();
        assert_eq!(enc.check_key(&SoftXts::new(&key(1)).unwrap()), Ok(()));
        assert_eq!(
            enc.check_key(&SoftXts::new(&key(2)).unwrap()),
            Err(Error::WrongKey)
        );
        let plain = Encryption::None;
        assert_eq!(
            plain.check_key(&SoftXts::new(&key(1)).unwrap()),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn kcv_is_no_data_ciphertext_and_depends_on_the_tweak() {
        let cipher = SoftXts::new(&key(3)).unwrap();
        let tweak = [7; TWEAK_SIZE];
        let kcv = key_check_value(&cipher, &tweak).unwrap();
        // An all-zero block and a block holding the KCV plaintext, encrypted
        // as data: neither shows the KCV anywhere.
        for fill in [[0u8; 16], KCV_PLAINTEXT] {
            let mut block = [0u8; BLOCK_SIZE];
            for c in block.chunks_exact_mut(16) {
                c.copy_from_slice(&fill);
            }
            cipher.encrypt_block(&mut block, &tweak).unwrap();
            assert!(block.chunks_exact(16).all(|c| c != kcv));
        }
        assert_ne!(kcv, key_check_value(&cipher, &[8; TWEAK_SIZE]).unwrap());
    }

    #[test]
    fn raw_round_trip_and_corruption() {
        let enc = Encryption::AesXts {
            tweak: [1; TWEAK_SIZE],
            kcv: [2; KCV_SIZE],
        };
        let (c, t, k) = enc.to_raw();
        assert_eq!(Encryption::from_raw(c, t, k, 0), Ok(enc));
        let (c, t, k) = Encryption::None.to_raw();
        assert_eq!(Encryption::from_raw(c, t, k, 0), Ok(Encryption::None));
        let corrupt = Err(Error::Corrupt {
            block: Some(1),
            what: "encryption parameters",
        });
        assert_eq!(Encryption::from_raw(2, t, k, 1), corrupt);
        assert_eq!(
            Encryption::from_raw(CIPHER_NONE, [1; TWEAK_SIZE], k, 1),
            corrupt
        );
        assert_eq!(
            Encryption::from_raw(CIPHER_NONE, t, [1; KCV_SIZE], 1),
            corrupt
        );
    }

    #[test]
    fn hex_keys() {
        let want = key(9);
        let mut text: alloc::string::String =
            want.iter().map(|b| alloc::format!("{b:02x}")).collect();
        let mut out = [0u8; XTS_KEY_SIZE];
        assert_eq!(parse_key_hex(text.as_bytes(), &mut out), Ok(()));
        assert_eq!(out, want);
        text.push('\n');
        out = [0; XTS_KEY_SIZE];
        assert_eq!(
            parse_key_hex(text.to_uppercase().as_bytes(), &mut out),
            Ok(())
        );
        assert_eq!(out, want);
        for bad in [
            &b""[..],
            b"\n",
            &text.as_bytes()[..127],
            &text.as_bytes()[1..],
            b"zz",
        ] {
            assert_eq!(parse_key_hex(bad, &mut out), Err(Error::InvalidArgument));
        }
        let mut odd = text.clone().into_bytes();
        odd[10] = b'g';
        assert_eq!(parse_key_hex(&odd, &mut out), Err(Error::InvalidArgument));
        odd[10] = b'0';
        odd.push(b'\n');
        assert_eq!(parse_key_hex(&odd, &mut out), Err(Error::InvalidArgument));
    }
}
