// SPDX-License-Identifier: GPL-2.0

//! `vtierctl blocks` and `vtierctl reseal` on image files: the metadata
//! blocks of a fresh volume are listed with their checksums, an edited
//! superblock shows as bad until it is resealed, and after the reseal the
//! edit stays and the checksum is the CRC32C of the rest of the block
//! (checked with the crc32c crate, not the engine's CRC). A block without a
//! vtier magic is refused, and nothing is written then, not even the good
//! blocks named with it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");
const BLOCK: usize = 4096;

fn vtierctl(args: &[&str]) -> Output {
    Command::new(VTIERCTL).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn image(dir: &Path, name: &str, mib: u64) -> PathBuf {
    let p = dir.join(name);
    File::create(&p).unwrap().set_len(mib << 20).unwrap();
    p
}

fn read_block(p: &Path, nr: u64) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    File::open(p)
        .unwrap()
        .read_exact_at(&mut b, nr * BLOCK as u64)
        .unwrap();
    b
}

fn write_block(p: &Path, nr: u64, b: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(b, nr * BLOCK as u64).unwrap();
}

#[test]
fn blocks_lists_and_reseal_fixes_only_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let perf = image(dir.path(), "perf", 16);
    let caps: Vec<PathBuf> = (0..3)
        .map(|i| image(dir.path(), &format!("cap{i}"), 8))
        .collect();
    let mut args = vec!["format", "--perf", perf.to_str().unwrap(), "--capacity"];
    args.extend(caps.iter().map(|p| p.to_str().unwrap()));
    assert!(vtierctl(&args).status.success());

    let list = vtierctl(&["blocks", perf.to_str().unwrap()]);
    assert!(list.status.success());
    let text = stdout(&list);
    assert!(
        text.starts_with("0 superblock 0 ok\n1 superblock 1 ok\n"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.contains(" wal ")), "{text}");
    assert!(text.lines().all(|l| l.ends_with(" ok")), "{text}");
    let cap = stdout(&vtierctl(&["blocks", caps[0].to_str().unwrap()]));
    assert!(cap.lines().any(|l| l.contains(" stripe-meta ")), "{cap}");

    // An edit behind the checksum: the block lists as bad.
    let mut sb = read_block(&perf, 0);
    sb[0x20] ^= 0x5a;
    write_block(&perf, 0, &sb);
    let text = stdout(&vtierctl(&["blocks", perf.to_str().unwrap()]));
    assert!(text.starts_with("0 superblock 0 bad-checksum\n"), "{text}");

    // Block 5 of a fresh performance device holds no metadata: refused,
    // and block 0, named first, is not written either.
    assert!(!read_block(&perf, 5)[8..16].starts_with(b"VT"));
    let refused = vtierctl(&["reseal", perf.to_str().unwrap(), "0", "5"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("block 5 carries no vtier magic"));
    assert_eq!(read_block(&perf, 0), sb);

    let ok = vtierctl(&["reseal", perf.to_str().unwrap(), "0"]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    let after = read_block(&perf, 0);
    assert_eq!(after[4..], sb[4..], "reseal changed more than the checksum");
    assert_eq!(after[..4], crc32c::crc32c(&after[4..]).to_le_bytes());
    let text = stdout(&vtierctl(&["blocks", perf.to_str().unwrap()]));
    assert!(text.starts_with("0 superblock 0 ok\n"), "{text}");
}
