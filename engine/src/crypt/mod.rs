// SPDX-License-Identifier: GPL-2.0

//! Encryption (T3): AES-256-XTS with one fixed random tweak per volume, so
//! that ciphertext moves between tiers without being decrypted.
//!
//! Rules:
//!
//! - Everything is encrypted through [`cipher::XtsCipher`]: the kernel's
//!   crypto API in the module, RustCrypto in userspace ([`soft`], feature
//!   `std`); [`kat`] proves both give the same bytes.
//! - A wrong key is refused when the volume starts, by the key check value
//!   ([`encryption`]), never discovered as garbage on read.

pub mod cipher;
pub mod encryption;
pub mod kat;
#[cfg(feature = "std")]
pub mod soft;
pub mod xts_vectors;
