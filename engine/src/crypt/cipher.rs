// SPDX-License-Identifier: GPL-2.0

//! The cipher seam: AES-256-XTS on data units of up to one block.
//!
//! Everything the engine encrypts goes through [`XtsCipher`]. The kernel
//! implements it with the kernel crypto API (`crypto_shim/xts.c` behind
//! `rust/crypto.rs`), userspace with RustCrypto (`crate::crypt::soft`,
//! feature `std`); both give the same bytes, which `crate::crypt::kat`
//! checks against the IEEE 1619 vectors and against each other.
//!
//! # Rules
//!
//! - A key is [`XTS_KEY_SIZE`] bytes: the AES-256 data key, then the
//!   AES-256 tweak key. Keys whose halves are equal are refused
//!   ([`check_key`]), as FIPS asks of XTS and the kernel enforces.
//! - A data unit is [`MIN_UNIT`] to [`BLOCK_SIZE`] bytes, encrypted with one
//!   [`Tweak`] (ciphertext stealing covers lengths that are not a multiple of
//!   16). vtier encrypts every data block as one unit with the volume's fixed
//!   random tweak, so equal plaintext blocks give equal ciphertext and a
//!   ciphertext block can move between devices without re-encryption.
//! - Encryption and decryption are in place. Implementations take `&self`
//!   and may be called from several threads at once.
//! - Failures are errors, never panics: [`Error::InvalidArgument`] for a bad
//!   length or key, [`Error::NoMemory`], or [`Error::Io`] for a failure of
//!   the implementation itself.
//! - Keys are never printed, logged or written out; whoever holds one wipes
//!   it when done.

use crate::error::{Error, Result};
pub use crate::io::device::BLOCK_SIZE;

/// Bytes of an AES-256-XTS key: two AES-256 keys.
pub const XTS_KEY_SIZE: usize = 64;
/// Bytes of a tweak: one AES block.
pub const TWEAK_SIZE: usize = 16;
/// Smallest data unit: one AES block.
pub const MIN_UNIT: usize = 16;

/// An AES-256-XTS key: data key (bytes 0..32), then tweak key (32..64).
pub type XtsKey = [u8; XTS_KEY_SIZE];
/// The 16-byte XTS tweak (the crypto API's IV), used as given.
pub type Tweak = [u8; TWEAK_SIZE];

/// AES-256-XTS with a fixed key.
pub trait XtsCipher {
    /// Encrypts one data unit of [`MIN_UNIT`] to [`BLOCK_SIZE`] bytes in
    /// place with `tweak`.
    fn encrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result;

    /// Decrypts one data unit of [`MIN_UNIT`] to [`BLOCK_SIZE`] bytes in
    /// place with `tweak`.
    fn decrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result;

    /// Encrypts one vtier block in place with `tweak`.
    fn encrypt_block(&self, block: &mut [u8; BLOCK_SIZE], tweak: &Tweak) -> Result {
        self.encrypt_unit(block, tweak)
    }

    /// Decrypts one vtier block in place with `tweak`.
    fn decrypt_block(&self, block: &mut [u8; BLOCK_SIZE], tweak: &Tweak) -> Result {
        self.decrypt_unit(block, tweak)
    }
}

impl<C: XtsCipher + ?Sized> XtsCipher for &C {
    fn encrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        (**self).encrypt_unit(data, tweak)
    }
    fn decrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        (**self).decrypt_unit(data, tweak)
    }
}

/// Checks the length of a data unit; implementations call it first.
pub fn check_unit(len: usize) -> Result {
    if (MIN_UNIT..=BLOCK_SIZE).contains(&len) {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

/// Refuses a key whose data key and tweak key are equal, as the kernel's
/// `xts_verify_key` does for a transform with `FORBID_WEAK_KEYS` set.
pub fn check_key(key: &XtsKey) -> Result {
    let (data_key, tweak_key) = key.split_at(XTS_KEY_SIZE / 2);
    if data_key == tweak_key {
        Err(Error::InvalidArgument)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_lengths() {
        assert_eq!(check_unit(0), Err(Error::InvalidArgument));
        assert_eq!(check_unit(15), Err(Error::InvalidArgument));
        assert_eq!(check_unit(16), Ok(()));
        assert_eq!(check_unit(17), Ok(()));
        assert_eq!(check_unit(BLOCK_SIZE), Ok(()));
        assert_eq!(check_unit(BLOCK_SIZE + 1), Err(Error::InvalidArgument));
    }

    #[test]
    fn equal_halves_refused() {
        assert_eq!(check_key(&[7; XTS_KEY_SIZE]), Err(Error::InvalidArgument));
        let mut key = [7; XTS_KEY_SIZE];
        key[63] = 8;
        assert_eq!(check_key(&key), Ok(()));
    }
}
