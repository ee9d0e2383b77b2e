// SPDX-License-Identifier: GPL-2.0

//! Userspace AES-256-XTS: RustCrypto's `aes` and `xts-mode` behind
//! [`XtsCipher`] (feature `std`).
//!
//! It gives the same bytes as the kernel's `xts(aes)` (the guest test
//! `qemu-test/tests/xts.sh` compares them), so `vtierctl` can read and write
//! encrypted blocks offline exactly as the module does. `aes` uses AES-NI
//! when the CPU has it and wipes its round keys on drop (feature
//! `zeroize`); this type keeps no other copy of the key.

use aes::cipher::KeyInit;
use aes::Aes256;
use xts_mode::Xts128;

use crate::cipher::{check_key, check_unit, Tweak, XtsCipher, XtsKey, XTS_KEY_SIZE};
use crate::error::{Error, Result};

/// AES-256-XTS in software (AES-NI when available).
pub struct SoftXts {
    xts: Xts128<Aes256>,
}

impl SoftXts {
    /// A cipher with `key` (data key, then tweak key). Fails with
    /// [`Error::InvalidArgument`] if the two halves are equal.
    pub fn new(key: &XtsKey) -> Result<Self> {
        check_key(key)?;
        let (data_key, tweak_key) = key.split_at(XTS_KEY_SIZE / 2);
        let data = Aes256::new_from_slice(data_key).map_err(|_| Error::InvalidArgument)?;
        let tweak = Aes256::new_from_slice(tweak_key).map_err(|_| Error::InvalidArgument)?;
        Ok(Self {
            xts: Xts128::new(data, tweak),
        })
    }
}

impl XtsCipher for SoftXts {
    fn encrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        // `encrypt_sector` panics below 16 bytes; check_unit rules that out.
        check_unit(data.len())?;
        self.xts.encrypt_sector(data, *tweak);
        Ok(())
    }

    fn decrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        check_unit(data.len())?;
        self.xts.decrypt_sector(data, *tweak);
        Ok(())
    }
}

impl core::fmt::Debug for SoftXts {
    /// Never shows key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SoftXts")
    }
}
