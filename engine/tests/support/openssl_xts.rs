// SPDX-License-Identifier: GPL-2.0

//! OpenSSL's AES-256-XTS (EVP `aes-256-xts`) behind the engine's
//! [`XtsCipher`]: the independent reference for the tests and the peer in
//! the benchmark. Shared by `tests/xts.rs` and `benches/xts.rs` (`#[path]`).

use std::cell::RefCell;

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use vtier_engine::crypt::cipher::{check_unit, Tweak, XtsCipher, XtsKey};
use vtier_engine::error::{Error, Result};

/// One encryption and one decryption context, keyed once; each call only
/// sets the tweak, as dm-crypt does per sector.
pub struct OpensslXts {
    enc: RefCell<CipherCtx>,
    dec: RefCell<CipherCtx>,
}

impl OpensslXts {
    /// Keys both contexts. OpenSSL refuses equal key halves too.
    pub fn new(key: &XtsKey) -> Result<Self> {
        let cipher = Cipher::aes_256_xts();
        let mut enc = CipherCtx::new().map_err(|_| Error::NoMemory)?;
        enc.encrypt_init(Some(cipher), Some(key), None)
            .map_err(|_| Error::InvalidArgument)?;
        let mut dec = CipherCtx::new().map_err(|_| Error::NoMemory)?;
        dec.decrypt_init(Some(cipher), Some(key), None)
            .map_err(|_| Error::InvalidArgument)?;
        Ok(Self {
            enc: RefCell::new(enc),
            dec: RefCell::new(dec),
        })
    }
}

fn crypt(ctx: &RefCell<CipherCtx>, encrypt: bool, data: &mut [u8], tweak: &Tweak) -> Result {
    check_unit(data.len())?;
    let mut ctx = ctx.borrow_mut();
    let init = if encrypt {
        ctx.encrypt_init(None, None, Some(tweak))
    } else {
        ctx.decrypt_init(None, None, Some(tweak))
    };
    init.map_err(|_| Error::Io)?;
    let len = data.len();
    let n = ctx
        .cipher_update_inplace(data, len)
        .map_err(|_| Error::Io)?;
    if n == len {
        Ok(())
    } else {
        Err(Error::Io)
    }
}

impl XtsCipher for OpensslXts {
    fn encrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        crypt(&self.enc, true, data, tweak)
    }

    fn decrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> Result {
        crypt(&self.dec, false, data, tweak)
    }
}
