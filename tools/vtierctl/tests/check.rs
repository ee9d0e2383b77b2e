// SPDX-License-Identifier: GPL-2.0

//! `vtierctl check` on image files: a volume formatted by `vtierctl
//! format`, written through the engine as the module writes it (data on
//! the performance tier and destaged into 2+1 stripes), then checked clean
//! after a clean close and after a crash (which it replays without writing
//! the images), and checked with errors after a data block, a stripe chunk
//! or a B-tree node is damaged.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vtier_engine::crypt::soft::SoftXts;
use vtier_engine::data::store::Store;
use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE, COPIES};
use vtier_engine::io::file_device::FileDevice;
use vtier_engine::io::paddr::{Location, PAddr};
use vtier_engine::kcompat::{KVec, GFP_KERNEL};
use vtier_engine::map::lba_map::ROOT_SLOT_LBA_MAP;
use vtier_engine::stripe::store::StripeStore;

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");
/// A key whose halves differ (XTS refuses equal ones).
const KEY: [u8; 64] = {
    let mut k = [0x3c; 64];
    let mut i = 32;
    while i < 64 {
        k[i] = 0xa5;
        i += 1;
    }
    k
};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Set {
    _dir: tempfile::TempDir,
    images: Vec<PathBuf>,
    key: PathBuf,
}

impl Set {
    /// A 16 MiB performance image and three 8 MiB capacity images,
    /// formatted encrypted with 2+1 stripes.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut images = Vec::new();
        for (i, mib) in [16usize, 8, 8, 8].iter().enumerate() {
            let path = dir.path().join(format!("disk{i}.img"));
            std::fs::write(&path, vec![0u8; mib << 20]).unwrap();
            images.push(path);
        }
        let key = dir.path().join("key");
        std::fs::write(&key, KEY).unwrap();
        let set = Set {
            _dir: dir,
            images,
            key,
        };
        let mut args = vec!["format", "--perf", s(&set.images[0]), "--capacity"];
        args.extend(set.images[1..].iter().map(|p| s(p)));
        args.extend(["--encrypt", "--key-file", s(&set.key)]);
        let out = Command::new(VTIERCTL).args(&args).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        set
    }

    /// Opens the volume with the engine, as the module does.
    fn open(&self) -> Store<FileDevice, SoftXts> {
        let dev = |p: &PathBuf| {
            let f = File::options().read(true).write(true).open(p).unwrap();
            FileDevice::new(f).unwrap()
        };
        let sbs: Vec<Superblock> = self.images[1..]
            .iter()
            .map(|p| {
                let image = std::fs::read(p).unwrap();
                Superblock::decode(&image[..BLOCK_SIZE], COPIES[0]).unwrap()
            })
            .collect();
        let area_start = sbs.iter().map(|sb| sb.data_start).max().unwrap();
        let mut devs = KVec::new();
        for p in &self.images[1..] {
            devs.push(Some(dev(p)), GFP_KERNEL).unwrap();
        }
        let stripes = StripeStore::open(devs, area_start, &sbs[0].volume_uuid, 8).unwrap();
        let cipher = SoftXts::new(&KEY).unwrap();
        Store::open(dev(&self.images[0]), Some(stripes), Some(cipher)).unwrap()
    }

    fn check(&self, json: bool) -> Output {
        let mut args = vec!["check", "--perf", s(&self.images[0]), "--capacity"];
        // Any order: check places members by their device index.
        args.extend(self.images[1..].iter().rev().map(|p| s(p)));
        args.extend(["--key-file", s(&self.key)]);
        if json {
            args.push("--json");
        }
        Command::new(VTIERCTL).args(&args).output().unwrap()
    }

    fn contents(&self) -> Vec<Vec<u8>> {
        self.images
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// Flips a byte of block `block` of image `i`.
    fn damage(&self, i: usize, block: u64) {
        let f = File::options()
            .read(true)
            .write(true)
            .open(&self.images[i])
            .unwrap();
        let at = block * BLOCK_SIZE as u64 + 100;
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
    }
}

/// Blocks of distinct data: `lba` and `seed` in every 8 bytes.
fn pattern(lba: u64, blocks: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; blocks * BLOCK_SIZE];
    for (i, w) in v.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&(lba.wrapping_mul(0x9e37) ^ seed ^ i as u64).to_le_bytes());
    }
    v
}

/// Writes 256 blocks, destages them into stripes, overwrites some and
/// writes more that stay on the performance tier.
fn fill(store: &mut Store<FileDevice, SoftXts>) {
    for lba in (0..256).step_by(16) {
        store.write(lba, &mut pattern(lba, 16, 1)).unwrap();
    }
    store.flush().unwrap();
    let moved = store.destage(1000).unwrap();
    assert!(moved >= 256, "destaged {moved} blocks");
    for lba in (32..64).step_by(4) {
        store.write(lba, &mut pattern(lba, 4, 2)).unwrap();
    }
    store.write(512, &mut pattern(512, 8, 3)).unwrap();
    store.flush().unwrap();
}

fn expect_clean(set: &Set) -> serde_json::Value {
    let out = set.check(true);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    report
}

#[test]
fn a_clean_volume_checks_clean_and_check_writes_nothing() {
    let set = Set::new();
    let mut store = set.open();
    fill(&mut store);
    store.close().unwrap();
    let before = set.contents();
    let report = expect_clean(&set);
    assert_eq!(report["replayed_transactions"], 0, "{report}");
    // 256 + 8 blocks mapped, all read back, some of them from stripes.
    assert_eq!(report["mapped_blocks"], 264, "{report}");
    assert_eq!(report["blocks_read"], 264, "{report}");
    assert!(
        report["stripes_scrubbed"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(set.contents() == before, "check wrote to a member");
    let out = set.check(false);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("clean: no errors found"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_crashed_volume_is_replayed_in_memory_only() {
    let set = Set::new();
    let mut store = set.open();
    fill(&mut store);
    // A crash: the devices as they are, without the closing checkpoint.
    drop(store.into_devices());
    let before = set.contents();
    let report = expect_clean(&set);
    assert!(
        report["replayed_transactions"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(set.contents() == before, "check wrote to a member");
    // A second check replays the same: nothing was made durable.
    let again = expect_clean(&set);
    assert_eq!(
        again["replayed_transactions"],
        report["replayed_transactions"]
    );
}

#[test]
fn damaged_data_stripes_and_nodes_are_errors() {
    let set = Set::new();
    let mut store = set.open();
    fill(&mut store);
    // Where things live: the perf block of LBA 512, the stripe of LBA 0.
    let (perf_block, stripe) = {
        let map = store.map();
        let txn = map.begin().unwrap();
        let a = map.lookup(&txn, 512, 1).unwrap().value.unwrap();
        let b = map.lookup(&txn, 0, 1).unwrap().value.unwrap();
        map.abort(txn);
        let Location::Perf { block } = a.paddr.location() else {
            panic!("LBA 512 is not on the performance tier: {a:?}");
        };
        let Location::Stripe { stripe, .. } = b.paddr.location() else {
            panic!("LBA 0 is not in a stripe: {b:?}");
        };
        (block, stripe)
    };
    // Chunk 0 of that stripe: its member, and its first data block (after
    // the chunk's header block).
    let (member, chunk) = {
        let g = *store.stripes().unwrap().geometry();
        let (m, header) = g.chunk_location(stripe, 0).unwrap();
        (m + 1, header + 1)
    };
    store.close().unwrap();
    expect_clean(&set);

    // A data block on the performance tier: its entry's checksum fails.
    set.damage(0, perf_block);
    let out = set.check(false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("block 512"), "{}", text(&out));
    set.damage(0, perf_block);
    expect_clean(&set);

    // A data chunk of the stripe of LBA 0: the read reconstructs it, the
    // scrub reports it.
    set.damage(member, chunk);
    let out = set.check(false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("scrub"), "{}", text(&out));
    set.damage(member, chunk);
    expect_clean(&set);

    // The root of the B-tree the last checkpoint names: the volume does
    // not open or the tree check fails; either is an error, never a clean
    // report.
    let image = std::fs::read(&set.images[0]).unwrap();
    let copy = |i: usize| {
        let at = COPIES[i] as usize * BLOCK_SIZE;
        Superblock::decode(&image[at..at + BLOCK_SIZE], COPIES[i])
    };
    let sb = Superblock::choose(copy(0), copy(1)).unwrap();
    let root = PAddr::from_raw(sb.roots[ROOT_SLOT_LBA_MAP], None)
        .unwrap()
        .location();
    let Location::Perf { block } = root else {
        panic!("root is not on the performance tier: {root:?}");
    };
    set.damage(0, block);
    let out = set.check(false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn an_encrypted_volume_needs_its_key() {
    let set = Set::new();
    let out = Command::new(VTIERCTL)
        .args(["check", "--perf", s(&set.images[0]), "--capacity"])
        .args(set.images[1..].iter().map(|p| s(p)))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--key-file"), "{}", text(&out));
}

impl Set {
    fn dump(&self, json: bool) -> Output {
        let mut args = vec!["dump", "--perf", s(&self.images[0]), "--capacity"];
        args.extend(self.images[1..].iter().map(|p| s(p)));
        args.extend(["--key-file", s(&self.key)]);
        if json {
            args.push("--json");
        }
        Command::new(VTIERCTL).args(&args).output().unwrap()
    }
}

/// `vtierctl dump` lists exactly the ranges `fill` wrote, each where the
/// writes put it (destaged into stripes, or on the performance tier), the
/// B-tree's nodes, and writes nothing.
#[test]
fn dump_lists_what_was_written_and_writes_nothing() {
    let set = Set::new();
    let mut store = set.open();
    fill(&mut store);
    store.close().unwrap();
    let before = set.contents();
    let out = set.dump(true);
    assert!(out.status.success(), "{}", text(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["errors"].as_array().unwrap().len(), 0, "{d}");

    // Which tier each written block must be on, from fill's writes: 0..256
    // destaged, then 32..64 and 512..520 rewritten on the performance tier.
    let want_tier = |lba: u64| match lba {
        32..64 | 512..520 => Some("perf"),
        0..256 => Some("stripe"),
        _ => None,
    };
    let mut covered = 0u64;
    let mut last_end = 0u64;
    for e in d["extents"].as_array().unwrap() {
        let (lba, len) = (e["lba"].as_u64().unwrap(), e["len"].as_u64().unwrap());
        assert!(lba >= last_end, "extents overlap or are out of order: {e}");
        last_end = lba + len;
        for b in lba..lba + len {
            assert_eq!(
                Some(e["tier"].as_str().unwrap()),
                want_tier(b),
                "block {b} in {e}"
            );
        }
        assert_eq!(e["encrypted"], true, "{e}");
        covered += len;
    }
    assert_eq!(covered, 264, "{d}");
    let nodes = d["tree"]["nodes"].as_array().unwrap();
    assert!(
        !nodes.is_empty() && d["tree"]["height"].as_u64().unwrap() >= 1,
        "{d}"
    );
    assert!(d["stripes"].as_str().unwrap().contains("2+1"), "{d}");
    assert!(set.contents() == before, "dump wrote to a member");

    let out = set.dump(false);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "extents: {}",
            d["extents"].as_array().unwrap().len()
        )),
        "{t}"
    );
    assert!(t.contains("0+"), "{t}");
}
