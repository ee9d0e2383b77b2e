// SPDX-License-Identifier: GPL-2.0

//! Known-answer self-test of the kernel's AES-256-XTS (`crypto.rs`), at
//! module load and on every read of debugfs `vtier/xts_selftest`.
//!
//! The test runs IEEE 1619 vectors 10 to 14 and the engine's deterministic
//! 4096-byte block cases (`crate::crypt::kat`) through [`Xts`], both ways,
//! through the buffer path and the page path. At load, wrong answers refuse
//! the module (a cipher that returns garbage must never touch data); a
//! kernel without `xts(aes)` only gets a warning, since unencrypted volumes
//! still work. The debugfs file reads, for the guest test
//! `qemu-test/tests/xts.sh`:
//!
//! ```text
//! driver xts-aes-aesni-avx
//! ieee1619 5 passed
//! case 0 <8192 hex digits: the ciphertext of block case 0>
//! case 1 ...
//! case 2 ...
//! pages ok
//! ```
//!
//! or, at the point where something failed, one `error: ...` line. The
//! `case` lines must equal `qemu-test/tests/data/xts-blocks.txt`, which
//! userspace computes with RustCrypto and OpenSSL. The test keys are public
//! constants; no real key is ever printed.

use kernel::debugfs::{Dir, File};
use kernel::fmt;
use kernel::page::Page;
use kernel::prelude::*;

use crate::crypt::cipher::BLOCK_SIZE;
use crate::crypt::kat::{check_ieee, write_case_line, BlockCase, KatError, BLOCK_CASES};
use crate::crypto::{Direction, KeyBuf, Xts};
use crate::kcompat::KVec;

/// Why the self-test failed.
enum Failure {
    /// No usable `xts(aes)` (errno from allocating it), or no memory.
    Unavailable(Error),
    /// A wrong answer or an error from the cipher.
    Kat(KatError),
    /// The page path disagrees with the buffer path on a block case.
    Pages(u32),
}

impl From<KatError> for Failure {
    fn from(e: KatError) -> Self {
        Failure::Kat(e)
    }
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unavailable(e) => write!(f, "xts(aes) unavailable ({})", e.to_errno()),
            Failure::Kat(e) => write!(f, "{e}"),
            Failure::Pages(n) => write!(f, "case {n}: page path differs from buffer path"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// A transform keyed with block case `case`'s key, which goes through a
/// [`KeyBuf`] as real keys do.
fn keyed(case: &BlockCase) -> Result<Xts, Failure> {
    let mut key = KeyBuf::new().map_err(Failure::Unavailable)?;
    *key.key_mut() = case.key;
    Xts::new(key.key()).map_err(Failure::Unavailable)
}

/// `buf` (exactly one block long) as an array.
fn as_block(buf: &mut [u8]) -> Result<&mut [u8; BLOCK_SIZE], Failure> {
    buf.try_into().map_err(|_| Failure::Unavailable(EINVAL))
}

/// Runs every check and writes the report lines (module docs) to `out`.
/// Writing fails only when `out` does, which the caller sees as `Ok(Err)`.
fn run(out: &mut dyn fmt::Write) -> Result<fmt::Result, Failure> {
    let first = keyed(&BlockCase::new(0))?;
    if let Err(e) = writeln!(out, "driver {}", first.driver_name()) {
        return Ok(Err(e));
    }
    drop(first);

    let passed = check_ieee(|key| Ok(Xts::new(key)?))?;
    if let Err(e) = writeln!(out, "ieee1619 {passed} passed") {
        return Ok(Err(e));
    }

    let alloc = |_| Failure::Unavailable(ENOMEM);
    let mut bufs = KVec::from_elem(0u8, 3 * BLOCK_SIZE, GFP_KERNEL).map_err(alloc)?;
    let (block, rest) = bufs.split_at_mut(BLOCK_SIZE);
    let (plain, got) = rest.split_at_mut(BLOCK_SIZE);
    let (block, plain, got) = (as_block(block)?, as_block(plain)?, as_block(got)?);
    let src = Page::alloc_page(GFP_KERNEL).map_err(alloc)?;
    let dst = Page::alloc_page(GFP_KERNEL).map_err(alloc)?;
    for n in 0..BLOCK_CASES {
        let case = BlockCase::new(n);
        let xts = keyed(&case)?;
        case.encrypt(&xts, block)?;
        if let Err(e) = write_case_line(out, n, block) {
            return Ok(Err(e));
        }
        check_pages(&xts, &case, block, plain, got, &src, &dst)?;
    }
    Ok(writeln!(out, "pages ok"))
}

/// Encrypts case `case`'s plaintext from page `src` into page `dst` and
/// compares with `ciphertext` from the buffer path, then decrypts `dst` in
/// place and compares with the plaintext. `plain` and `got` are scratch.
fn check_pages(
    xts: &Xts,
    case: &BlockCase,
    ciphertext: &[u8; BLOCK_SIZE],
    plain: &mut [u8; BLOCK_SIZE],
    got: &mut [u8; BLOCK_SIZE],
    src: &Page,
    dst: &Page,
) -> Result<(), Failure> {
    let failed = |_| Failure::Pages(case.number);
    case.fill_plaintext(plain);
    // SAFETY: `plain` is `BLOCK_SIZE` readable bytes, and `src` is ours alone.
    unsafe { src.write_raw(plain.as_ptr(), 0, BLOCK_SIZE) }.map_err(failed)?;
    // SAFETY: Both pages were allocated by `run` and are used by no one else.
    unsafe { xts.crypt_page(dst, src, 0, BLOCK_SIZE, &case.tweak, Direction::Encrypt) }
        .map_err(failed)?;
    // SAFETY: `got` is `BLOCK_SIZE` writable bytes, and `dst` is ours alone.
    unsafe { dst.read_raw(got.as_mut_ptr(), 0, BLOCK_SIZE) }.map_err(failed)?;
    if got != ciphertext {
        return Err(Failure::Pages(case.number));
    }
    // SAFETY: As above; `dst` is both source and destination (in place).
    unsafe { xts.crypt_page(dst, dst, 0, BLOCK_SIZE, &case.tweak, Direction::Decrypt) }
        .map_err(failed)?;
    // SAFETY: As above.
    unsafe { dst.read_raw(got.as_mut_ptr(), 0, BLOCK_SIZE) }.map_err(failed)?;
    if got != plain {
        return Err(Failure::Pages(case.number));
    }
    Ok(())
}

/// Discards what it is given: the report at load goes to the kernel log
/// only as a summary.
struct Discard;

impl fmt::Write for Discard {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

/// The self-test at module load. Logs one line. Fails with `EIO` if the
/// cipher gives wrong answers; a kernel without `xts(aes)` only warns.
pub(crate) fn check_at_load() -> Result {
    match run(&mut Discard) {
        Ok(_) => {
            // Allocating again only to name the driver: cheap, and keeps
            // `run` free of logging.
            let xts = Xts::new(&BlockCase::new(0).key);
            let driver = xts.as_ref().map_or("?", |x| x.driver_name());
            pr_info!(
                "xts(aes) self-test passed ({}): IEEE 1619 vectors and {} block cases\n",
                driver,
                BLOCK_CASES
            );
            Ok(())
        }
        Err(Failure::Unavailable(e)) => {
            pr_warn!(
                "xts(aes) unavailable ({}): encrypted volumes will not start\n",
                e.to_errno()
            );
            Ok(())
        }
        Err(f) => {
            pr_err!("xts(aes) self-test FAILED: {}\n", f);
            Err(EIO)
        }
    }
}

/// Writes the debugfs report: the lines of [`run`], or an `error:` line.
fn show(_: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match run(f) {
        Ok(written) => written,
        Err(failure) => writeln!(f, "error: {failure}"),
    }
}

/// Creates debugfs `xts_selftest` in `dir`; reading it runs the self-test.
pub(crate) fn debugfs_file(dir: &Dir) -> Result<Pin<KBox<File<()>>>> {
    KBox::pin_init(
        dir.read_callback_file(c"xts_selftest", (), &show),
        GFP_KERNEL,
    )
}
