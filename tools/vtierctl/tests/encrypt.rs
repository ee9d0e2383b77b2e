// SPDX-License-Identifier: GPL-2.0

//! `vtierctl format --encrypt`, `show` and `check-key`, run as a program on
//! image files; the superblocks are decoded with the engine, as the module
//! decodes them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vtier_engine::crypt::cipher::{XtsKey, XTS_KEY_SIZE};
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::crypt::soft::SoftXts;
use vtier_engine::error::Error;
use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE, COPIES};

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");

fn vtierctl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(VTIERCTL)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A key with distinct halves, different for each `seed`.
fn key(seed: u8) -> XtsKey {
    let mut k = [0u8; XTS_KEY_SIZE];
    for (i, b) in k.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(29).wrapping_add(seed).rotate_left(3);
    }
    k
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Set {
    dir: tempfile::TempDir,
    images: Vec<PathBuf>,
}

impl Set {
    /// A performance image of 16 MiB and `capacity` images of 8 MiB, filled
    /// with 0x5a so that changes show.
    fn new(capacity: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut images = Vec::new();
        for i in 0..=capacity {
            let path = dir.path().join(format!("disk{i}.img"));
            let mb = if i == 0 { 16 } else { 8 };
            std::fs::write(&path, vec![0x5a; mb << 20]).unwrap();
            images.push(path);
        }
        Set { dir, images }
    }

    fn key_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// `format --perf disk0 --capacity disk1.. EXTRA...`
    fn format(&self, extra: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut args = vec!["format", "--perf", s(&self.images[0])];
        if self.images.len() > 1 {
            args.push("--capacity");
            args.extend(self.images[1..].iter().map(|p| s(p)));
        }
        args.extend_from_slice(extra);
        vtierctl(&args, stdin)
    }

    /// Both superblock copies of every member, decoded.
    fn superblocks(&self) -> Vec<Superblock> {
        let mut out = Vec::new();
        for path in &self.images {
            let image = std::fs::read(path).unwrap();
            for block in COPIES {
                let start = block as usize * BLOCK_SIZE;
                let sb = Superblock::decode(&image[start..start + BLOCK_SIZE], block)
                    .unwrap_or_else(|e| panic!("{}: copy {block}: {e}", path.display()));
                out.push(sb);
            }
        }
        out
    }

    fn contents(&self) -> Vec<Vec<u8>> {
        self.images
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The one encryption every superblock of the set carries.
fn set_encryption(set: &Set) -> Encryption {
    let sbs = set.superblocks();
    assert_eq!(sbs.len(), 2 * set.images.len());
    let enc = sbs[0].encryption;
    for sb in &sbs {
        assert_eq!(sb.encryption, enc, "members disagree on the encryption");
        assert_eq!(sb.volume_uuid, sbs[0].volume_uuid);
    }
    enc
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_member_carries_the_same_tweak_and_a_kcv_of_the_key() {
    let set = Set::new(3);
    let k = key(1);
    let key_hex = hex(&k);
    let file = set.key_file("key.hex", format!("{key_hex}\n").as_bytes());
    let out = set.format(&["--encrypt", "--key-file", s(&file)], None);
    assert!(out.status.success(), "{}", text(&out));

    let enc = set_encryption(&set);
    let Encryption::AesXts { tweak, .. } = enc else {
        panic!("not encrypted: {enc:?}");
    };
    assert_ne!(tweak, [0; 16]);
    assert_eq!(enc.check_key(&SoftXts::new(&k).unwrap()), Ok(()));
    assert_eq!(
        enc.check_key(&SoftXts::new(&key(2)).unwrap()),
        Err(Error::WrongKey)
    );

    // The key is nowhere: not in the output, not on any member.
    let printed = text(&out);
    assert!(printed.contains(&hex(&tweak)), "{printed}");
    for image in set.contents() {
        assert!(!contains(&image, &k), "raw key on a member");
        assert!(!contains(&image, &k[..16]), "part of the key on a member");
        assert!(!contains(&image, key_hex.as_bytes()), "hex key on a member");
    }
    for path in &set.images {
        let out = vtierctl(&["show", s(path)], None);
        assert!(out.status.success(), "{}", text(&out));
        let shown = text(&out);
        assert_eq!(
            shown
                .matches(&format!("encrypted AES-256-XTS, tweak {}", hex(&tweak)))
                .count(),
            2,
            "{shown}"
        );
        assert!(!shown.contains(&key_hex[..16]), "show prints key material");
        assert!(
            !shown.contains(&key_hex[64..80]),
            "show prints key material"
        );
        assert!(!printed.contains(&key_hex[..16]), "format prints the key");
    }

    // check-key: the right key (raw or hex) passes, another fails.
    let raw = set.key_file("key.bin", &k);
    let wrong = set.key_file("wrong.bin", &key(3));
    for path in &set.images {
        for good in [&file, &raw] {
            let out = vtierctl(&["check-key", s(path), "--key-file", s(good)], None);
            assert!(out.status.success(), "{}", text(&out));
        }
        let out = vtierctl(&["check-key", s(path), "--key-file", s(&wrong)], None);
        assert!(!out.status.success());
        assert!(text(&out).contains("wrong key"), "{}", text(&out));
    }
}

#[test]
fn raw_key_on_stdin() {
    let set = Set::new(3);
    let k = key(7);
    let out = set.format(&["--encrypt", "--key-file", "-"], Some(&k));
    assert!(out.status.success(), "{}", text(&out));
    let enc = set_encryption(&set);
    assert_eq!(enc.check_key(&SoftXts::new(&k).unwrap()), Ok(()));
    // check-key reads stdin too.
    let out = vtierctl(
        &["check-key", s(&set.images[1]), "--key-file", "-"],
        Some(hex(&k).as_bytes()),
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn each_format_draws_a_new_tweak() {
    let set = Set::new(0);
    let file = set.key_file("key", &key(4));
    let mut seen = Vec::new();
    for _ in 0..3 {
        // The same images again and again: --force overwrites the set
        // the loop formatted before.
        let out = set.format(&["--encrypt", "--key-file", s(&file), "--force"], None);
        assert!(out.status.success(), "{}", text(&out));
        let Encryption::AesXts { tweak, kcv } = set_encryption(&set) else {
            panic!("not encrypted");
        };
        assert!(
            !seen.iter().any(|&(t, c)| t == tweak || c == kcv),
            "tweak or KCV repeated"
        );
        seen.push((tweak, kcv));
    }
}

#[test]
fn unencrypted_by_default() {
    let set = Set::new(3);
    let out = set.format(&[], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(set_encryption(&set), Encryption::None);
    let shown = text(&vtierctl(&["show", s(&set.images[0])], None));
    assert_eq!(shown.matches("not encrypted").count(), 2, "{shown}");
    let file = set.key_file("key", &key(5));
    let out = vtierctl(
        &["check-key", s(&set.images[0]), "--key-file", s(&file)],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("not encrypted"), "{}", text(&out));
}

#[test]
fn bad_keys_and_options_change_nothing() {
    let set = Set::new(3);
    let before = set.contents();
    let k = key(6);
    let key_hex = hex(&k);
    let mut not_hex = key_hex.clone().into_bytes();
    not_hex[100] = b'q';
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("short", k[..63].to_vec(), "hex digits"),
        ("long", [&k[..], &k[..]].concat(), "hex digits"),
        (
            "short-hex",
            key_hex.as_bytes()[..126].to_vec(),
            "hex digits",
        ),
        ("not-hex", not_hex, "not hex"),
        ("weak", [9u8; XTS_KEY_SIZE].to_vec(), "halves"),
        ("empty", Vec::new(), "hex digits"),
    ];
    for (name, contents, why) in cases {
        let file = set.key_file(name, &contents);
        let out = set.format(&["--encrypt", "--key-file", s(&file)], None);
        assert!(!out.status.success(), "{name} accepted");
        let msg = text(&out);
        assert!(msg.contains(why), "{name}: {msg}");
        assert!(
            !msg.contains(&key_hex[..16]),
            "{name}: message shows the key"
        );
    }
    let missing = set.dir.path().join("missing");
    let file = set.key_file("good", &k);
    for args in [
        vec!["--encrypt"],
        vec!["--key-file", s(&file)],
        vec!["--encrypt", "--key-file", s(&missing)],
    ] {
        let out = set.format(&args, None);
        assert!(!out.status.success(), "{args:?} accepted");
    }
    assert!(
        set.contents() == before,
        "a refused format wrote to a member"
    );
}
