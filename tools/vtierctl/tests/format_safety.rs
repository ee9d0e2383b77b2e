// SPDX-License-Identifier: GPL-2.0

//! `vtierctl format` does not overwrite what a device already holds unless
//! told to: a device with a vtier superblock or another known signature is
//! refused with a message naming it and what it carries, nothing on any
//! device of the set is written, and `--force` overwrites. Run as a
//! program on image files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE};

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A performance image of 16 MiB and three capacity images of 8 MiB, all
/// zeroes (as a new disk reads).
struct Set {
    _dir: tempfile::TempDir,
    images: Vec<PathBuf>,
}

impl Set {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let images = (0..4)
            .map(|i| {
                let path = dir.path().join(format!("disk{i}.img"));
                std::fs::write(&path, vec![0u8; if i == 0 { 16 << 20 } else { 8 << 20 }]).unwrap();
                path
            })
            .collect();
        Set { _dir: dir, images }
    }

    fn format(&self, extra: &[&str]) -> Output {
        let mut args = vec!["format", "--perf", s(&self.images[0]), "--capacity"];
        args.extend(self.images[1..].iter().map(|p| s(p)));
        args.extend_from_slice(extra);
        Command::new(VTIERCTL).args(&args).output().unwrap()
    }

    fn contents(&self) -> Vec<Vec<u8>> {
        self.images
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// Writes `bytes` at `offset` of image `i`.
    fn poke(&self, i: usize, offset: usize, bytes: &[u8]) {
        let mut image = std::fs::read(&self.images[i]).unwrap();
        image[offset..offset + bytes.len()].copy_from_slice(bytes);
        std::fs::write(&self.images[i], image).unwrap();
    }

    fn volume_uuid(&self) -> [u8; 16] {
        let image = std::fs::read(&self.images[0]).unwrap();
        let mut block = [0u8; BLOCK_SIZE];
        block.copy_from_slice(&image[..BLOCK_SIZE]);
        Superblock::decode(&block, 0).unwrap().volume_uuid
    }
}

/// `set.format(extra)` must fail, name every one of `expect` (a device
/// and what it carries), and leave every image as it was.
fn refused(set: &Set, extra: &[&str], expect: &[(usize, &str)]) {
    let before = set.contents();
    let out = set.format(extra);
    let msg = text(&out);
    assert!(!out.status.success(), "format succeeded:\n{msg}");
    for &(i, what) in expect {
        let line = format!("{}: carries {what}", s(&set.images[i]));
        assert!(msg.contains(&line), "no '{line}' in:\n{msg}");
    }
    assert!(msg.contains("--force"), "no hint at --force:\n{msg}");
    assert!(set.contents() == before, "a refused format wrote:\n{msg}");
}

#[test]
fn new_disks_format_without_force() {
    let set = Set::new();
    let out = set.format(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("overwritten"), "{}", text(&out));
}

#[test]
fn a_vtier_set_is_not_formatted_again_without_force() {
    let set = Set::new();
    let out = set.format(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let first = set.volume_uuid();
    let every: Vec<(usize, &str)> = (0..4).map(|i| (i, "a vtier superblock (volume")).collect();
    refused(&set, &[], &every);
    let out = set.format(&["--force"]);
    let msg = text(&out);
    assert!(out.status.success(), "{msg}");
    assert_eq!(msg.matches("overwritten (--force)").count(), 4, "{msg}");
    assert_ne!(
        set.volume_uuid(),
        first,
        "--force did not make a new volume"
    );
}

#[test]
fn one_member_with_a_signature_stops_the_whole_set() {
    let set = Set::new();
    // An ext4 superblock's magic, block size 4 KiB (log 2) and inode count.
    set.poke(2, 1024, &8192u32.to_le_bytes());
    set.poke(2, 1024 + 0x18, &2u32.to_le_bytes());
    set.poke(2, 1024 + 0x38, &[0x53, 0xef]);
    refused(&set, &[], &[(2, "an ext2/3/4 file system")]);
    let out = set.format(&["--force"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn other_signatures_are_refused() {
    let cases: [(usize, &[u8], &str); 4] = [
        (0, b"LUKS\xba\xbe", "a LUKS header"),
        (512, b"EFI PART", "a GPT partition table"),
        (65536 + 64, b"_BHRfS_M", "a btrfs file system"),
        (
            4096,
            &[0xfc, 0x4e, 0x2b, 0xa9, 1, 0, 0, 0],
            "an md RAID member",
        ),
    ];
    for (offset, magic, what) in cases {
        let set = Set::new();
        set.poke(1, offset, magic);
        refused(&set, &[], &[(1, what)]);
    }
}

#[test]
fn a_damaged_vtier_superblock_is_refused_too() {
    let set = Set::new();
    let out = set.format(&[]);
    assert!(out.status.success(), "{}", text(&out));
    // A byte of both copies' bodies changed: neither copy decodes, but the
    // magic says whose they were.
    set.poke(3, 0x100, &[0xff]);
    set.poke(3, BLOCK_SIZE + 0x100, &[0xff]);
    refused(&set, &[], &[(3, "a vtier superblock that does not decode")]);
}
