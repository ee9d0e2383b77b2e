// SPDX-License-Identifier: GPL-2.0

//! Key files: reading an AES-256-XTS key without leaving copies behind.
//!
//! A key file holds the 64-byte key (data key, then tweak key) either as 64
//! raw bytes or as 128 hex digits (either case, an optional trailing
//! newline: what `od`/`xxd -p` and an editor produce). `-` reads standard
//! input. The two forms cannot be confused: a hex key is at least 128
//! bytes long, a raw one exactly 64.
//!
//! Every buffer that holds key bytes here is wiped when dropped
//! ([`Zeroizing`]): the file's bytes are read from its descriptor (for
//! standard input too, bypassing `io::stdin()`'s buffer) straight into one
//! fixed-size buffer (no growing vector that would leave old copies in
//! freed memory), and the key itself lives in another. Keys are never
//! printed; error messages name the file and what is wrong with its
//! *shape* only.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

use vtier_engine::crypt::cipher::{check_key, XtsKey, XTS_KEY_SIZE};
use vtier_engine::crypt::encryption::parse_key_hex;
use zeroize::Zeroizing;

/// Longest key file accepted: 128 hex digits and a CR LF.
const MAX_FILE: usize = 2 * XTS_KEY_SIZE + 2;

/// Reads the key from `path` (`-` for standard input).
pub fn read_key_file(path: &Path) -> Result<Zeroizing<XtsKey>, String> {
    let name = path.display();
    let mut buf = Zeroizing::new([0u8; MAX_FILE + 1]);
    let len = if path.as_os_str() == "-" {
        // Standard input through a duplicate of its descriptor, not
        // `io::stdin()`, whose buffer would keep a copy of the key until
        // the process exits.
        io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .and_then(|mut f| read_full(&mut f, &mut buf[..]))
    } else {
        File::open(path).and_then(|mut f| read_full(&mut f, &mut buf[..]))
    }
    .map_err(|e| format!("key file {name}: {e}"))?;
    if len > MAX_FILE {
        return Err(format!(
            "key file {name}: too long (expected {XTS_KEY_SIZE} raw bytes or {} hex digits)",
            2 * XTS_KEY_SIZE
        ));
    }
    let key = parse_key(&buf[..len]).map_err(|why| format!("key file {name}: {why}"))?;
    check_key(&key).map_err(|_| {
        format!("key file {name}: the key's two halves (data key and tweak key) are equal")
    })?;
    Ok(key)
}

/// Reads until end of file or until `buf` is full; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match r.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// The key in `data`: 64 raw bytes, or 128 hex digits and an optional
/// newline (LF or CR LF).
pub fn parse_key(data: &[u8]) -> Result<Zeroizing<XtsKey>, String> {
    let mut key = Zeroizing::new([0u8; XTS_KEY_SIZE]);
    if data.len() == XTS_KEY_SIZE {
        key.copy_from_slice(data);
        return Ok(key);
    }
    let digits = data
        .strip_suffix(b"\r\n")
        .or_else(|| data.strip_suffix(b"\n"))
        .unwrap_or(data);
    if digits.len() != 2 * XTS_KEY_SIZE {
        return Err(format!(
            "expected {XTS_KEY_SIZE} raw bytes or {} hex digits, found {} bytes",
            2 * XTS_KEY_SIZE,
            data.len()
        ));
    }
    parse_key_hex(digits, &mut key).map_err(|_| "not hex digits".to_string())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> XtsKey {
        let mut k = [0u8; XTS_KEY_SIZE];
        for (i, b) in k.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(41).wrapping_add(3);
        }
        k
    }

    fn hex(k: &[u8]) -> String {
        k.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn raw_and_hex_forms() {
        let k = sample();
        assert_eq!(*parse_key(&k).unwrap(), k);
        let h = hex(&k);
        assert_eq!(*parse_key(h.as_bytes()).unwrap(), k);
        assert_eq!(*parse_key(format!("{h}\n").as_bytes()).unwrap(), k);
        assert_eq!(*parse_key(format!("{h}\r\n").as_bytes()).unwrap(), k);
        assert_eq!(
            *parse_key(h.to_uppercase().as_bytes()).unwrap(),
            k,
            "upper case"
        );
    }

    #[test]
    fn bad_shapes_are_refused_without_showing_the_key() {
        let k = sample();
        let h = hex(&k);
        let mut not_hex = h.clone().into_bytes();
        not_hex[5] = b'x';
        for bad in [
            &k[..63],
            &[k.as_slice(), &[0]].concat()[..],
            &h.as_bytes()[..127],
            format!("{h}0").as_bytes(),
            format!("{h}\n\n").as_bytes(),
            &not_hex[..],
            b"",
        ] {
            let err = parse_key(bad).unwrap_err();
            assert!(!err.contains(&h[..8]), "error shows key digits: {err}");
        }
    }

    #[test]
    fn files_and_equal_halves() {
        let dir = tempfile::tempdir().unwrap();
        let k = sample();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, k).unwrap();
        assert_eq!(*read_key_file(&raw).unwrap(), k);
        let long = dir.path().join("long");
        std::fs::write(&long, [b'0'; 4096]).unwrap();
        let err = read_key_file(&long).unwrap_err();
        assert!(err.contains("too long"), "{err}");
        let weak = dir.path().join("weak");
        std::fs::write(&weak, [7u8; XTS_KEY_SIZE]).unwrap();
        assert!(read_key_file(&weak).unwrap_err().contains("halves"));
        let missing = dir.path().join("missing");
        assert!(read_key_file(&missing)
            .unwrap_err()
            .starts_with("key file "));
    }
}
