// SPDX-License-Identifier: GPL-2.0

//! AES-256-XTS through the kernel crypto API: the Rust side of
//! `crypto_shim/xts.c`.
//!
//! This is vtier's thin unsafe layer for encryption: everything above it
//! sees an [`Xts`] (the engine's [`XtsCipher`]) and a [`KeyBuf`], with safe
//! methods, except the page path, whose callers must rule out concurrent
//! access to the pages. Every call may sleep (the shim allocates its request
//! with `GFP_NOIO` and waits for asynchronous implementations).
//!
//! Keys: [`Xts::new`] hands the key to the crypto API, which copies it into
//! the transform and wipes that copy when the transform is freed; [`KeyBuf`]
//! holds a key in kernel memory that never moves and wipes it with
//! `memzero_explicit` on drop. Neither ever prints a key.
//! [`KeyBuf::from_logon_key`] fills one from a `logon` key of the kernel
//! keyring (`crypto_shim/keyring.c`), copying the payload straight into the
//! `KeyBuf` under the key's semaphore.

use core::marker::{PhantomData, PhantomPinned};
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::page::{Page, PAGE_SIZE};
use kernel::prelude::*;

use crate::crypt::cipher::{check_unit, Tweak, XtsCipher, XtsKey, XTS_KEY_SIZE};

/// `struct crypto_skcipher`: C owns its layout, only pointers cross.
#[repr(C)]
struct CryptoSkcipher {
    _opaque: [u8; 0],
    _not_send_sync_unpin: PhantomData<(*mut u8, PhantomPinned)>,
}

// The C shim, `crypto_shim/xts.h`. Kernel structs cross only as pointers,
// which C treats as opaque here, so their Rust layouts do not matter.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn vtier_xts_alloc(key: *const u8, keylen: c_uint) -> *mut CryptoSkcipher;
    fn vtier_xts_free(tfm: *mut CryptoSkcipher);
    fn vtier_xts_driver_name(tfm: *mut CryptoSkcipher) -> *const c_char;
    fn vtier_xts_crypt_buf(
        tfm: *mut CryptoSkcipher,
        buf: *mut c_void,
        len: c_uint,
        tweak: *const u8,
        encrypt: bool,
    ) -> c_int;
    fn vtier_xts_crypt_page(
        tfm: *mut CryptoSkcipher,
        dst: *mut bindings::page,
        src: *mut bindings::page,
        offset: c_uint,
        len: c_uint,
        tweak: *const u8,
        encrypt: bool,
    ) -> c_int;
    fn vtier_memzero_explicit(p: *mut c_void, len: usize);
}

// The C shim, `crypto_shim/keyring.h`.
unsafe extern "C" {
    fn vtier_keyring_read_logon(
        name: *const c_char,
        out: *mut u8,
        len: c_uint,
        found_len: *mut c_uint,
    ) -> c_int;
}

/// Which way an [`Xts`] call transforms the data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Plaintext to ciphertext.
    Encrypt,
    /// Ciphertext to plaintext.
    Decrypt,
}

/// An `xts(aes)` transform of the kernel crypto API, keyed with AES-256-XTS.
///
/// # Invariants
///
/// `tfm` was returned by a successful `vtier_xts_alloc` (so its key is set)
/// and is freed with `vtier_xts_free` only on drop. Its key never changes
/// afterwards, so requests may run on it from any thread concurrently.
pub(crate) struct Xts {
    tfm: NonNull<CryptoSkcipher>,
}

// SAFETY: The crypto API lets requests on one transform be issued from any
// thread, and `Xts` never changes the transform after creating it.
unsafe impl Send for Xts {}
// SAFETY: Through `&Xts` only requests are issued, which may run
// concurrently on one transform.
unsafe impl Sync for Xts {}

impl Xts {
    /// Allocates `xts(aes)`, whichever implementation the crypto API picks,
    /// with `key`. Fails with `EINVAL` if the key's halves are equal,
    /// `ENOENT` if the kernel has no `xts(aes)`, `ENOMEM`. May sleep.
    pub(crate) fn new(key: &XtsKey) -> Result<Self> {
        // SAFETY: `key` is `XTS_KEY_SIZE` readable bytes for the duration of
        // the call; the shim copies them into the transform and keeps no
        // pointer to them.
        let tfm = from_err_ptr(unsafe { vtier_xts_alloc(key.as_ptr(), XTS_KEY_SIZE as c_uint) })?;
        let tfm = NonNull::new(tfm).ok_or(ENOMEM)?;
        // INVARIANT: `tfm` was just returned by a successful `vtier_xts_alloc`.
        Ok(Self { tfm })
    }

    /// The implementation's driver name, e.g. `xts-aes-aesni-avx`.
    pub(crate) fn driver_name(&self) -> &str {
        // SAFETY: `self.tfm` is a live transform (type invariant).
        let name = unsafe { vtier_xts_driver_name(self.tfm.as_ptr()) };
        // SAFETY: The shim returns the algorithm's `cra_driver_name`, a
        // NUL-terminated string that is never modified and lives as long as
        // the transform holds the algorithm, that is as long as `self`.
        let name = unsafe { CStr::from_char_ptr(name) };
        name.to_str().unwrap_or("?")
    }

    /// Encrypts or decrypts one data unit (16 to 4096 bytes) in place.
    ///
    /// `data` must be heap memory (kmalloc or vmalloc) or on a virtually
    /// mapped stack; module data (a `static`) fails with `EINVAL`, as does a
    /// bad length. May sleep.
    pub(crate) fn crypt(&self, data: &mut [u8], tweak: &Tweak, dir: Direction) -> Result {
        check_unit(data.len()).map_err(|_| EINVAL)?;
        // SAFETY: `self.tfm` is live (type invariant). `data` is valid for
        // reads and writes of `data.len()` bytes and ours alone (`&mut`)
        // until the call returns, and the shim returns only once the request
        // has completed. `tweak` is 16 readable bytes, which the shim copies.
        to_result(unsafe {
            vtier_xts_crypt_buf(
                self.tfm.as_ptr(),
                data.as_mut_ptr().cast(),
                data.len() as c_uint,
                tweak.as_ptr(),
                dir == Direction::Encrypt,
            )
        })
    }

    /// Encrypts or decrypts one data unit of `len` bytes at `offset`, read
    /// from `src` and written to `dst` (which may be the same page, for an
    /// in-place operation). `EINVAL` if the unit is not 16 to 4096 bytes
    /// inside the page. May sleep.
    ///
    /// # Safety
    ///
    /// For the duration of the call, nothing else may write to the range in
    /// `src` or access the range in `dst` (the crypto API reads and writes
    /// them without synchronisation).
    pub(crate) unsafe fn crypt_page(
        &self,
        dst: &Page,
        src: &Page,
        offset: usize,
        len: usize,
        tweak: &Tweak,
        dir: Direction,
    ) -> Result {
        check_unit(len).map_err(|_| EINVAL)?;
        if offset > PAGE_SIZE - len {
            return Err(EINVAL);
        }
        // SAFETY: `self.tfm` is live (type invariant); both pages are
        // allocated for as long as the references live, the range lies
        // inside them (checked above), and the caller rules out concurrent
        // access to it. The shim returns once the request has completed.
        // `tweak` is 16 readable bytes, which the shim copies.
        to_result(unsafe {
            vtier_xts_crypt_page(
                self.tfm.as_ptr(),
                dst.as_ptr(),
                src.as_ptr(),
                offset as c_uint,
                len as c_uint,
                tweak.as_ptr(),
                dir == Direction::Encrypt,
            )
        })
    }
}

impl Drop for Xts {
    fn drop(&mut self) {
        // SAFETY: `self.tfm` came from `vtier_xts_alloc` and is freed only
        // here (type invariant). No request is in flight: every call waits
        // for its request, and `&mut self` excludes concurrent callers.
        unsafe { vtier_xts_free(self.tfm.as_ptr()) };
    }
}

impl XtsCipher for Xts {
    fn encrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> crate::error::Result {
        self.crypt(data, tweak, Direction::Encrypt)?;
        Ok(())
    }

    fn decrypt_unit(&self, data: &mut [u8], tweak: &Tweak) -> crate::error::Result {
        self.crypt(data, tweak, Direction::Decrypt)?;
        Ok(())
    }
}

/// An AES-256-XTS key in kernel memory, wiped when dropped.
///
/// The key lives in its own heap allocation that never moves, so no stray
/// copy is left behind by moving the `KeyBuf`; it is filled in place
/// ([`KeyBuf::key_mut`]) and is never printed (no `Debug`).
///
/// # Invariants
///
/// `key` is wiped with `memzero_explicit` before its memory is freed.
pub(crate) struct KeyBuf {
    key: KBox<XtsKey>,
}

impl KeyBuf {
    /// An all-zero key, to be filled in place.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            key: KBox::new([0; XTS_KEY_SIZE], GFP_KERNEL)?,
        })
    }

    /// The key.
    pub(crate) fn key(&self) -> &XtsKey {
        &self.key
    }

    /// The key, to fill in place.
    pub(crate) fn key_mut(&mut self) -> &mut XtsKey {
        &mut self.key
    }

    /// The payload of the `logon` key `name`, looked up in the keyrings of
    /// the calling process (no upcall). On failure, the error and, if the
    /// key was found, its payload length (for a wrong length, `EINVAL`):
    /// `ENOKEY` if there is no such key, `EINVAL` also for a name that is
    /// not a logon key's (`prefix:name`), `EKEYREVOKED`, `EKEYEXPIRED`,
    /// `EACCES`. May sleep.
    pub(crate) fn from_logon_key(name: &CStr) -> core::result::Result<Self, (Error, u32)> {
        let mut buf = Self::new().map_err(|e| (e, 0))?;
        let mut found_len: c_uint = 0;
        let key: &mut XtsKey = &mut buf.key;
        // SAFETY: `name` is NUL-terminated and lives across the call; `key`
        // is valid for writes of `XTS_KEY_SIZE` bytes and ours alone;
        // `found_len` is a valid `c_uint`. The shim keeps none of the
        // pointers, and on failure wipes `key` (which `buf` wipes again
        // when dropped).
        let err = unsafe {
            vtier_keyring_read_logon(
                name.as_char_ptr(),
                key.as_mut_ptr(),
                XTS_KEY_SIZE as c_uint,
                &mut found_len,
            )
        };
        to_result(err).map(|()| buf).map_err(|e| (e, found_len))
    }
}

impl Drop for KeyBuf {
    fn drop(&mut self) {
        let key: &mut XtsKey = &mut self.key;
        // SAFETY: `key` is valid for writes of `XTS_KEY_SIZE` bytes.
        // INVARIANT: wiped here, just before the `KBox` frees it.
        unsafe { vtier_memzero_explicit(key.as_mut_ptr().cast(), XTS_KEY_SIZE) };
    }
}
