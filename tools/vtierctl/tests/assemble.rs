// SPDX-License-Identifier: GPL-2.0

//! `vtierctl assemble --dry-run`, run as a program on image files: the
//! members found by their superblocks and placed by device index whatever
//! order they are named in, the key checked against the key check value,
//! and every set that cannot come up refused with what is wrong. (The
//! configfs writes themselves are made in the guest test `assemble`.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::dashed;
use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE};

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");

fn vtierctl(args: &[&str]) -> Output {
    Command::new(VTIERCTL).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A formatted set: image 0 the performance device, 1..=3 capacity.
struct Set {
    images: Vec<PathBuf>,
}

impl Set {
    fn new(dir: &Path, prefix: &str, key: Option<&Path>) -> Set {
        let images: Vec<PathBuf> = (0..4)
            .map(|i| {
                let path = dir.join(format!("{prefix}{i}.img"));
                let bytes = if i == 0 { 16 << 20 } else { 8 << 20 };
                std::fs::write(&path, vec![0u8; bytes]).unwrap();
                path
            })
            .collect();
        let mut args = vec!["format", "--perf", s(&images[0]), "--capacity"];
        args.extend(images[1..].iter().map(|p| s(p)));
        if let Some(k) = key {
            args.extend(["--encrypt", "--key-file", s(k)]);
        }
        let out = vtierctl(&args);
        assert!(out.status.success(), "{}", text(&out));
        Set { images }
    }

    fn uuid(&self) -> String {
        let raw = std::fs::read(&self.images[0]).unwrap();
        let sb = Superblock::decode(&raw[..BLOCK_SIZE], 0).unwrap();
        dashed(&sb.volume_uuid)
    }
}

fn key_file(dir: &Path, name: &str, seed: u8) -> (PathBuf, String) {
    let key: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(name);
    std::fs::write(&path, &hex).unwrap();
    // Readable by its owner only, as a key file should be.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, hex)
}

/// `assemble --dry-run NAME DEVICES... EXTRA...`.
fn dry_run(name: &str, devices: &[&Path], extra: &[&str]) -> Output {
    let mut args = vec!["assemble", "--dry-run", name];
    args.extend(devices.iter().map(|p| s(p)));
    args.extend(extra);
    vtierctl(&args)
}

fn refused(out: &Output, want: &str) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "not refused:\n{t}");
    assert!(out.stdout.is_empty(), "refused, yet printed:\n{t}");
    assert!(t.contains(want), "no '{want}' in:\n{t}");
}

#[test]
fn members_are_placed_by_device_index_and_the_key_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (key, key_hex) = key_file(dir.path(), "key", 1);
    let set = Set::new(dir.path(), "a", Some(&key));
    let i = &set.images;

    // Named in any order: configfs gets them in format order.
    let out = dry_run(
        "v0",
        &[&i[3], &i[1], &i[0], &i[2]],
        &["--key-file", s(&key)],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    let vt = "/sys/kernel/config/vtier/v0";
    assert_eq!(lines[0], format!("mkdir {vt}"));
    assert_eq!(lines[1], format!("echo '{}' > {vt}/perf_device", s(&i[0])));
    assert_eq!(
        lines[2],
        format!(
            "echo '{} {} {}' > {vt}/capacity_devices",
            s(&i[1]),
            s(&i[2]),
            s(&i[3])
        )
    );
    assert!(lines[3].ends_with(&format!("> {vt}/key")), "{t}");
    assert_eq!(lines[4], format!("echo '1' > {vt}/power"));
    assert_eq!(lines.len(), 5, "{t}");
    assert!(!t.contains(&key_hex), "the key was printed:\n{t}");

    // A key file others can read works, with a warning; one only its
    // owner reads, without.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dry_run(
        "v0",
        &[&i[0], &i[1], &i[2], &i[3]],
        &["--key-file", s(&key)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("can be read by other users (mode 0644)"),
        "{}",
        text(&out)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    let out = dry_run(
        "v0",
        &[&i[0], &i[1], &i[2], &i[3]],
        &["--key-file", s(&key)],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out)
    );

    // A keyring key name goes to key_name, unchecked (the kernel reads it).
    let out = dry_run(
        "v0",
        &[&i[0], &i[1], &i[2], &i[3]],
        &["--key-name", "vtier:v0"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("echo 'vtier:v0' > {vt}/key_name")));

    // --uuid in either spelling.
    let uuid = set.uuid();
    for u in [uuid.clone(), uuid.to_uppercase(), uuid.replace('-', "")] {
        let out = dry_run(
            "v0",
            &[&i[0], &i[1], &i[2], &i[3]],
            &["--uuid", &u, "--key-file", s(&key)],
        );
        assert!(out.status.success(), "--uuid {u}: {}", text(&out));
    }

    let (wrong, _) = key_file(dir.path(), "wrong", 2);
    refused(
        &dry_run(
            "v0",
            &[&i[0], &i[1], &i[2], &i[3]],
            &["--key-file", s(&wrong)],
        ),
        "wrong key",
    );
    refused(
        &dry_run("v0", &[&i[0], &i[1], &i[2], &i[3]], &[]),
        "the volume is encrypted",
    );
}

#[test]
fn sets_that_cannot_come_up_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = Set::new(dir.path(), "a", None);
    let b = Set::new(dir.path(), "b", None);
    let (key, _) = key_file(dir.path(), "key", 1);
    let (ai, bi) = (&a.images, &b.images);

    let out = dry_run("v0", &[&ai[0], &ai[1], &ai[2], &ai[3]], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // A capacity member or the performance device left out.
    refused(
        &dry_run("v0", &[&ai[0], &ai[1], &ai[3]], &[]),
        "device 2 (capacity member 1) of 4 not found",
    );
    refused(
        &dry_run("v0", &[&ai[1], &ai[2], &ai[3]], &[]),
        "device 0 (the performance device) of 4 not found",
    );
    // Members of two volumes: which one is meant must be said, and then
    // that one must be whole.
    refused(
        &dry_run("v0", &[&ai[0], &ai[1], &ai[2], &ai[3], &bi[0]], &[]),
        "members of 2 volumes found; name one with --uuid",
    );
    let out = dry_run(
        "v0",
        &[&ai[0], &ai[1], &ai[2], &ai[3], &bi[0]],
        &["--uuid", &a.uuid()],
    );
    assert!(out.status.success(), "{}", text(&out));
    refused(
        &dry_run(
            "v0",
            &[&ai[0], &ai[1], &ai[2], &ai[3], &bi[0]],
            &["--uuid", &b.uuid()],
        ),
        "device 1 (capacity member 0), 2 (capacity member 1), 3 (capacity member 2) of 4 not found",
    );
    refused(
        &dry_run(
            "v0",
            &[&ai[0], &ai[1]],
            &["--uuid", "00000000-0000-0000-0000-000000000000"],
        ),
        "no member of volume",
    );
    // A copy of a member beside the member.
    let copy = dir.path().join("copy.img");
    std::fs::copy(&ai[2], &copy).unwrap();
    refused(
        &dry_run("v0", &[&ai[0], &ai[1], &ai[2], &copy, &ai[3]], &[]),
        "are both device 2",
    );
    // A device that is no member, and one that does not exist.
    let zero = dir.path().join("zero.img");
    std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
    refused(
        &dry_run("v0", &[&ai[0], &ai[1], &ai[2], &ai[3], &zero], &[]),
        "no valid vtier superblock",
    );
    refused(
        &dry_run("v0", &[&ai[0], &dir.path().join("absent.img")], &[]),
        "absent.img",
    );
    // A key for a volume that has none; a name configfs cannot take.
    refused(
        &dry_run(
            "v0",
            &[&ai[0], &ai[1], &ai[2], &ai[3]],
            &["--key-file", s(&key)],
        ),
        "not encrypted",
    );
    for name in ["a/b", "..", ""] {
        refused(
            &dry_run(name, &[&ai[0], &ai[1], &ai[2], &ai[3]], &[]),
            "volume name",
        );
    }
}

#[test]
fn the_volume_table_gives_uuid_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = key_file(dir.path(), "key", 1);
    let a = Set::new(dir.path(), "a", Some(&key));
    let b = Set::new(dir.path(), "b", None);
    let tab = dir.path().join("vtiertab");
    std::fs::write(
        &tab,
        format!(
            "# name uuid key\n\nva {} {}   # the encrypted one\nvb {} none\nvk {} keyring:vtier:va\n",
            a.uuid(),
            s(&key),
            b.uuid().to_uppercase(),
            a.uuid()
        ),
    )
    .unwrap();
    let tab_arg = ["--tab", s(&tab)];
    let all: Vec<&Path> = a
        .images
        .iter()
        .chain(&b.images)
        .map(|p| p.as_path())
        .collect();

    // Members of both volumes named: the entry's UUID picks, its key file
    // is checked and written.
    let out = dry_run("va", &all, &tab_arg);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "'{}' > /sys/kernel/config/vtier/va/perf_device",
            s(&a.images[0])
        )),
        "{t}"
    );
    assert!(t.contains("/sys/kernel/config/vtier/va/key"), "{t}");
    let out = dry_run("vb", &all, &tab_arg);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!(
        "'{}' > /sys/kernel/config/vtier/vb/perf_device",
        s(&b.images[0])
    )));
    let out = dry_run("vk", &all, &tab_arg);
    assert!(
        text(&out).contains("echo 'vtier:va' > /sys/kernel/config/vtier/vk/key_name"),
        "{}",
        text(&out)
    );
    // The command line wins over the table.
    let (wrong, _) = key_file(dir.path(), "wrong", 2);
    refused(
        &dry_run("va", &all, &["--tab", s(&tab), "--key-file", s(&wrong)]),
        "wrong key",
    );
    refused(&dry_run("vc", &all, &tab_arg), "vc: not in");

    // Tables that are not one: each refused naming its line.
    for (line, want) in [
        ("va", "expected NAME UUID KEY"),
        ("va 1234 none", "is not a UUID"),
        ("va 0123456789abcdef0123456789abcdefff none", "is not a UUID"),
        ("va 01234567-89ab-cdef-0123-456789abcdef key.bin", "expected none, keyring:DESC or an absolute path"),
        ("va 01234567-89ab-cdef-0123-456789abcdef keyring:", "expected none, keyring:DESC or an absolute path"),
        ("a/b 01234567-89ab-cdef-0123-456789abcdef none", "volume name"),
        (
            "va 01234567-89ab-cdef-0123-456789abcdef none\nva 01234567-89ab-cdef-0123-456789abcdef none",
            "vtiertab:3: volume va named twice",
        ),
    ] {
        std::fs::write(&tab, format!("# a comment\n{line}\n")).unwrap();
        refused(&dry_run("va", &all, &tab_arg), want);
        refused(&dry_run("va", &all, &tab_arg), "vtiertab:");
    }
}

#[test]
fn stop_of_an_unknown_volume_is_an_error() {
    let out = vtierctl(&["stop", "vtier-test-no-such-volume"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no such volume"), "{}", text(&out));
}
