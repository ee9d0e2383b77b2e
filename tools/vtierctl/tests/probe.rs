// SPDX-License-Identifier: GPL-2.0

//! `vtierctl probe [--export]`, run as a program on image files: a member
//! reports the identity its superblock holds (decoded here with the
//! engine), anything else exits 2 and prints nothing on standard output.

mod common;

use std::collections::HashMap;
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

/// `probe --export` of `path`: exit code and the KEY=value pairs.
fn export(path: &Path) -> (Option<i32>, HashMap<String, String>, String) {
    let out = vtierctl(&["probe", "--export", s(path)]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let pairs = stdout
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    (out.status.code(), pairs, stdout)
}

fn image(dir: &Path, name: &str, bytes: usize) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, vec![0u8; bytes]).unwrap();
    path
}

#[test]
fn members_report_their_superblock() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<PathBuf> = (0..4)
        .map(|i| {
            image(
                dir.path(),
                &format!("disk{i}.img"),
                if i == 0 { 16 << 20 } else { 8 << 20 },
            )
        })
        .collect();
    let mut args = vec!["format", "--perf", s(&images[0]), "--capacity"];
    args.extend(images[1..].iter().map(|p| s(p)));
    let out = vtierctl(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut devices = Vec::new();
    for (i, path) in images.iter().enumerate() {
        let raw = std::fs::read(path).unwrap();
        let sb = Superblock::decode(&raw[..BLOCK_SIZE], 0).unwrap();
        let (code, kv, text) = export(path);
        assert_eq!(code, Some(0), "{text}");
        let want = [
            ("ID_FS_TYPE", "vtier_member".to_string()),
            ("ID_FS_UUID", dashed(&sb.volume_uuid)),
            ("ID_FS_UUID_ENC", dashed(&sb.volume_uuid)),
            ("ID_FS_UUID_SUB", dashed(&sb.device_uuid)),
            (
                "VTIER_ROLE",
                if i == 0 { "performance" } else { "capacity" }.to_string(),
            ),
            ("VTIER_DEVICE_INDEX", i.to_string()),
            ("VTIER_NR_DEVICES", "4".to_string()),
            ("VTIER_ENCRYPTED", "0".to_string()),
        ];
        for (k, v) in want {
            assert_eq!(kv.get(k), Some(&v), "{}: {k} in:\n{text}", path.display());
        }
        devices.push(kv["ID_FS_UUID_SUB"].clone());

        let out = vtierctl(&["probe", s(path)]);
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(
            line.contains(&format!(
                "device {i} of 4 of volume {}",
                dashed(&sb.volume_uuid)
            )),
            "{line}"
        );
    }
    devices.sort();
    devices.dedup();
    assert_eq!(devices.len(), 4, "member UUIDs repeat");

    // One copy damaged: the other one still identifies the member.
    let mut raw = std::fs::read(&images[1]).unwrap();
    raw[100] ^= 0xff;
    std::fs::write(&images[1], &raw).unwrap();
    let (code, kv, text) = export(&images[1]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(kv["VTIER_DEVICE_INDEX"], "1");
    // Both damaged: no member.
    raw[BLOCK_SIZE + 100] ^= 0xff;
    std::fs::write(&images[1], &raw).unwrap();
    let (code, _, text) = export(&images[1]);
    assert_eq!((code, text.as_str()), (Some(2), ""));
}

#[test]
fn other_devices_are_no_members() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("zero.img", 8 << 20), ("short.img", 100), ("empty.img", 0)] {
        let path = image(dir.path(), name, bytes);
        let (code, _, text) = export(&path);
        assert_eq!((code, text.as_str()), (Some(2), ""), "{name}");
    }
    let out = vtierctl(&["probe", "--export", s(&dir.path().join("absent.img"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}
