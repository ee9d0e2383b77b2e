// SPDX-License-Identifier: GPL-2.0

//! AES-256-XTS: the userspace cipher (RustCrypto) against the IEEE 1619
//! vectors, against OpenSSL, and against the committed ciphertexts of the
//! deterministic test blocks that the guest test compares with the kernel's.

#[path = "support/openssl_xts.rs"]
mod openssl_xts;

use openssl_xts::OpensslXts;
use vtier_engine::crypt::cipher::{XtsCipher, XtsKey, BLOCK_SIZE, XTS_KEY_SIZE};
use vtier_engine::crypt::kat::{check_ieee, write_case_line, BlockCase, BLOCK_CASES};
use vtier_engine::crypt::soft::SoftXts;
use vtier_engine::error::Error;

/// The ciphertexts the guest test expects from the kernel.
const BLOCKS_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../qemu-test/tests/data/xts-blocks.txt"
);

const BLOCKS_HEADER: &str = "\
# AES-256-XTS ciphertexts of vtier's deterministic test blocks
# (engine/src/crypt/kat.rs, BlockCase 0..3): one line per case,
# \"case N <hex>\". Written with RustCrypto and checked against OpenSSL by
# `cargo test -p vtier-engine --test xts` (VTIER_BLESS=1 rewrites it); the
# guest test qemu-test/tests/xts.sh compares the kernel's lines (debugfs
# vtier/xts_selftest) with these, byte for byte.
";

/// SplitMix64, for random test inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

#[test]
fn ieee_1619_vectors_rustcrypto() {
    assert_eq!(check_ieee(SoftXts::new), Ok(5));
}

#[test]
fn ieee_1619_vectors_openssl() {
    // OpenSSL agreeing with the typed-in vectors checks the data itself.
    assert_eq!(check_ieee(OpensslXts::new), Ok(5));
}

#[test]
fn rustcrypto_matches_openssl() {
    let mut rng = Rng(1619);
    let mut lengths: Vec<usize> = vec![16, 17, 31, 32, 512, 4095, BLOCK_SIZE];
    lengths.extend((0..200).map(|_| 16 + (rng.next() % (BLOCK_SIZE as u64 - 15)) as usize));
    for len in lengths {
        let mut key = [0u8; XTS_KEY_SIZE];
        rng.fill(&mut key);
        let mut tweak = [0u8; 16];
        rng.fill(&mut tweak);
        let mut plain = vec![0u8; len];
        rng.fill(&mut plain);
        let soft = SoftXts::new(&key).unwrap();
        let ossl = OpensslXts::new(&key).unwrap();
        let mut a = plain.clone();
        let mut b = plain.clone();
        soft.encrypt_unit(&mut a, &tweak).unwrap();
        ossl.encrypt_unit(&mut b, &tweak).unwrap();
        assert_eq!(a, b, "ciphertext differs at length {len}");
        assert_ne!(a, plain);
        soft.decrypt_unit(&mut a, &tweak).unwrap();
        ossl.decrypt_unit(&mut b, &tweak).unwrap();
        assert_eq!(a, plain, "RustCrypto round trip at length {len}");
        assert_eq!(b, plain, "OpenSSL round trip at length {len}");
    }
}

/// The lines the kernel must print, computed with `make`'s cipher.
fn block_lines<C: XtsCipher>(make: impl Fn(&XtsKey) -> C) -> String {
    let mut out = String::new();
    for n in 0..BLOCK_CASES {
        let case = BlockCase::new(n);
        let mut block = [0u8; BLOCK_SIZE];
        case.encrypt(&make(&case.key), &mut block).unwrap();
        write_case_line(&mut out, n, &block).unwrap();
    }
    out
}

#[test]
fn block_cases_match_committed_file() {
    let soft = block_lines(|k| SoftXts::new(k).unwrap());
    let ossl = block_lines(|k| OpensslXts::new(k).unwrap());
    assert_eq!(
        soft, ossl,
        "RustCrypto and OpenSSL disagree on the block cases"
    );
    if std::env::var_os("VTIER_BLESS").is_some() {
        std::fs::write(BLOCKS_FILE, format!("{BLOCKS_HEADER}{soft}")).unwrap();
    }
    let file = std::fs::read_to_string(BLOCKS_FILE).unwrap();
    let committed: String = file
        .lines()
        .filter(|l| l.starts_with("case "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        committed, soft,
        "{BLOCKS_FILE} is stale: rerun with VTIER_BLESS=1 and review the diff"
    );
}

#[test]
fn block_case_ciphertexts_differ() {
    // Case 2 repeats one 16-byte pattern: XTS still gives 256 different
    // ciphertext blocks inside the unit.
    let case = BlockCase::new(2);
    let mut block = [0u8; BLOCK_SIZE];
    case.encrypt(&SoftXts::new(&case.key).unwrap(), &mut block)
        .unwrap();
    let mut chunks: Vec<&[u8]> = block.chunks_exact(16).collect();
    chunks.sort();
    chunks.dedup();
    assert_eq!(chunks.len(), BLOCK_SIZE / 16);
}

#[test]
fn fixed_tweak_is_deterministic() {
    // The property the design relies on (and the README states): with the
    // volume's one tweak, equal plaintext blocks give equal ciphertext,
    // wherever they are stored; another tweak gives other ciphertext.
    let mut rng = Rng(2);
    let mut key = [0u8; XTS_KEY_SIZE];
    rng.fill(&mut key);
    let cipher = SoftXts::new(&key).unwrap();
    let tweak = [0x5a; 16];
    let mut a = [0x11u8; BLOCK_SIZE];
    let mut b = [0x11u8; BLOCK_SIZE];
    let mut c = [0x11u8; BLOCK_SIZE];
    cipher.encrypt_block(&mut a, &tweak).unwrap();
    cipher.encrypt_block(&mut b, &tweak).unwrap();
    cipher.encrypt_block(&mut c, &[0xa5; 16]).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn bad_input_is_an_error() {
    let mut key = [3u8; XTS_KEY_SIZE];
    assert_eq!(SoftXts::new(&key).err(), Some(Error::InvalidArgument));
    assert!(OpensslXts::new(&key).is_err(), "OpenSSL takes equal halves");
    key[0] = 4;
    let cipher = SoftXts::new(&key).unwrap();
    let tweak = [0u8; 16];
    for len in [0, 1, 15, BLOCK_SIZE + 1, 2 * BLOCK_SIZE] {
        let mut buf = vec![0u8; len];
        assert_eq!(
            cipher.encrypt_unit(&mut buf, &tweak),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            cipher.decrypt_unit(&mut buf, &tweak),
            Err(Error::InvalidArgument)
        );
        assert!(buf.iter().all(|&b| b == 0), "length {len}: buffer touched");
    }
    assert_eq!(format!("{cipher:?}"), "SoftXts");
}

#[test]
fn wrong_key_does_not_decrypt() {
    let case = BlockCase::new(0);
    let mut block = [0u8; BLOCK_SIZE];
    case.encrypt(&SoftXts::new(&case.key).unwrap(), &mut block)
        .unwrap();
    let mut other = case.key;
    other[5] ^= 1;
    SoftXts::new(&other)
        .unwrap()
        .decrypt_block(&mut block, &case.tweak)
        .unwrap();
    let mut plain = [0u8; BLOCK_SIZE];
    case.fill_plaintext(&mut plain);
    assert_ne!(block, plain);
}
