// SPDX-License-Identifier: GPL-2.0

//! `vtierctl format` with the erasure-coded stripe store and `vtierctl
//! status`, run as a program on image files; the store is opened with the
//! engine, as the module opens it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE, COPIES};
use vtier_engine::io::file_device::FileDevice;
use vtier_engine::kcompat::{KVec, GFP_KERNEL};
use vtier_engine::stripe::geometry::StripeGeometry;
use vtier_engine::stripe::store::StripeStore;

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");

fn vtierctl(args: &[&str]) -> Output {
    Command::new(VTIERCTL).args(args).output().unwrap()
}

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

struct Set {
    _dir: tempfile::TempDir,
    images: Vec<PathBuf>,
}

impl Set {
    /// A performance image of 16 MiB and capacity images of the sizes in
    /// MiB, filled with 0x5a so that changes show.
    fn new(capacity_mib: &[usize]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut images = Vec::new();
        for (i, mib) in [16].iter().chain(capacity_mib).enumerate() {
            let path = dir.path().join(format!("disk{i}.img"));
            std::fs::write(&path, vec![0x5a; mib << 20]).unwrap();
            images.push(path);
        }
        Set { _dir: dir, images }
    }

    fn capacity(&self) -> &[PathBuf] {
        &self.images[1..]
    }

    fn format(&self, extra: &[&str]) -> Output {
        let mut args = vec!["format", "--perf", s(&self.images[0]), "--capacity"];
        args.extend(self.capacity().iter().map(|p| s(p)));
        args.extend_from_slice(extra);
        vtierctl(&args)
    }

    fn status(&self, members: &[usize]) -> Output {
        let mut args = vec!["status", "--capacity"];
        args.extend(members.iter().map(|&i| s(&self.capacity()[i])));
        vtierctl(&args)
    }

    fn contents(&self) -> Vec<Vec<u8>> {
        self.images
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// Superblock copy 0 of capacity device `i`.
    fn superblock(&self, i: usize) -> Superblock {
        let image = std::fs::read(&self.capacity()[i]).unwrap();
        Superblock::decode(&image[..BLOCK_SIZE], COPIES[0]).unwrap()
    }

    /// Opens the stripe store as the module does: area from the largest
    /// `data_start`, the volume UUID.
    fn open_store(&self) -> StripeStore<FileDevice> {
        let n = self.capacity().len();
        let sbs: Vec<Superblock> = (0..n).map(|i| self.superblock(i)).collect();
        let area_start = sbs.iter().map(|sb| sb.data_start).max().unwrap();
        let mut devs = KVec::new();
        for p in self.capacity() {
            let dev = FileDevice::new(File::open(p).unwrap()).unwrap();
            devs.push(Some(dev), GFP_KERNEL).unwrap();
        }
        StripeStore::open(devs, area_start, &sbs[0].volume_uuid, 8).unwrap()
    }
}

/// Formats `set` with `extra`, checks the printed geometry line against the
/// store the engine opens, and returns that store's geometry.
fn format_ok(set: &Set, extra: &[&str]) -> StripeGeometry {
    let out = set.format(extra);
    assert!(out.status.success(), "{}", text(&out));
    let store = set.open_store();
    let g = *store.geometry();
    let line = format!(
        "capacity tier: {}+{} stripes, {} KiB chunks, {} stripes\n",
        g.k,
        g.m,
        g.chunk_blocks * 4,
        g.nr_stripes
    );
    assert!(text(&out).contains(&line), "{line:?} not in {}", text(&out));
    assert_eq!(store.free_stripes(), g.nr_stripes);
    assert_eq!(store.lost(), 0);
    // The area lies after every member's own metadata, and the members'
    // allocation maps reserve the blocks before data_start only.
    for i in 0..set.capacity().len() {
        let sb = set.superblock(i);
        assert!(sb.data_start <= g.area_start, "{sb:?} {g:?}");
        assert!(g.member_blocks() <= sb.nr_blocks);
    }
    g
}

#[test]
fn three_capacity_devices_get_2_plus_1_with_64k_chunks() {
    let set = Set::new(&[8, 8, 8]);
    let g = format_ok(&set, &[]);
    assert_eq!((g.k, g.m, g.nr_members, g.chunk_blocks), (2, 1, 3, 16));
    assert!(g.nr_stripes > 100, "{g:?}");
}

#[test]
fn format_says_the_exported_size_the_capacity_tier_gives() {
    // 8 MiB members in 2+1 stripes of 64 KiB chunks: the device exports
    // the stripes' data chunks but one stripe in eight, more than the
    // 16 MiB performance device would alone.
    let set = Set::new(&[8, 8, 8]);
    let out = set.format(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let g = *set.open_store().geometry();
    let blocks =
        (g.nr_stripes - (g.nr_stripes / 8).max(2)) * u64::from(g.k) * u64::from(g.chunk_blocks);
    let line = format!(
        "exported size: {blocks} blocks of 4096 bytes ({} MiB)",
        (blocks * 4096) >> 20
    );
    assert!(text(&out).contains(&line), "{line:?} not in {}", text(&out));
    assert!(blocks * 4096 > (16 << 20) / 2, "{blocks} blocks");
}

#[test]
fn five_capacity_devices_get_3_plus_2() {
    // Different sizes: the area starts after the largest map, and the
    // smallest device bounds the stripes.
    let set = Set::new(&[8, 12, 8, 8, 10]);
    let g = format_ok(&set, &[]);
    assert_eq!((g.k, g.m, g.nr_members, g.chunk_blocks), (3, 2, 5, 16));
    let starts: Vec<u64> = (0..5).map(|i| set.superblock(i).data_start).collect();
    assert_eq!(g.area_start, *starts.iter().max().unwrap());
    let smallest = 8 * 256;
    assert!(g.member_blocks() <= smallest);
    // No room for one more slot on the smallest device.
    assert!(g.member_blocks() + g.slot_blocks() > smallest, "{g:?}");
}

#[test]
fn explicit_options_are_used() {
    let set = Set::new(&[8, 8, 8, 8, 8]);
    let g = format_ok(
        &set,
        &[
            "--data-chunks",
            "2",
            "--parity-chunks",
            "2",
            "--chunk-kib",
            "32",
        ],
    );
    assert_eq!((g.k, g.m, g.nr_members, g.chunk_blocks), (2, 2, 5, 8));
    // Only the parity count given: the data chunks take the rest. (The
    // same images again: --force overwrites the set formatted before.)
    let g = format_ok(&set, &["--parity-chunks", "1", "--force"]);
    assert_eq!((g.k, g.m, g.chunk_blocks), (4, 1, 16));
    let g = format_ok(&set, &["--chunk-kib", "4", "--force"]);
    assert_eq!((g.k, g.m, g.chunk_blocks), (3, 2, 1));
}

#[test]
fn one_or_two_capacity_devices_are_refused() {
    for n in [1, 2] {
        let set = Set::new(&vec![8; n]);
        let before = set.contents();
        let out = set.format(&[]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("{n} capacity device"))
                && text(&out).contains("would hold nothing"),
            "{}",
            text(&out)
        );
        assert!(set.contents() == before, "a refused format wrote");
    }
}

#[test]
fn refusals_leave_every_device_untouched() {
    let cases: &[(&[usize], &[&str], &str)] = &[
        (
            &[8, 8, 8],
            &["--data-chunks", "3"],
            "need 4 capacity devices",
        ),
        (&[8, 8, 8, 8], &["--parity-chunks", "3"], "at least 2"),
        (&[8, 8, 8], &["--data-chunks", "1"], "at least 2"),
        (&[8, 8, 8], &["--parity-chunks", "0"], "at least 1"),
        (&[8, 8, 8], &["--chunk-kib", "6"], "multiple of 4 KiB"),
        (&[8, 8, 8], &["--chunk-kib", "0"], "multiple of 4 KiB"),
        (
            &[8, 8],
            &["--data-chunks", "2"],
            "at least 3 capacity devices",
        ),
        (&[8], &["--chunk-kib", "64"], "at least 3 capacity devices"),
        // StripeGeometry: chunk over 16 MiB, more than 8 parity chunks,
        // more than 24 data chunks, and devices too small for one stripe.
        (&[8, 8, 8], &["--chunk-kib", "65536"], "not possible"),
        (
            &[1; 11],
            &["--data-chunks", "2", "--parity-chunks", "9"],
            "not possible",
        ),
        (&[1; 27], &["--data-chunks", "25"], "not possible"),
        (&[1, 1, 1], &["--chunk-kib", "16384"], "not possible"),
    ];
    for (sizes, extra, why) in cases {
        let set = Set::new(sizes);
        let before = set.contents();
        let out = set.format(extra);
        assert!(!out.status.success(), "{extra:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{extra:?}: {why:?} not in {err}");
        assert!(out.stdout.is_empty(), "{extra:?}: {}", text(&out));
        assert!(set.contents() == before, "{extra:?} changed a device");
    }
}

#[test]
fn status_names_the_geometry_and_every_members_state() {
    let set = Set::new(&[8, 8, 8, 8]);
    let g = format_ok(&set, &[]);
    let before = set.contents();
    // Any order: members are placed by their device index.
    let out = set.status(&[2, 0, 3, 1]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    let geometry = format!(
        "capacity tier: 3+1 stripes, 64 KiB chunks, {} stripes\n",
        g.nr_stripes
    );
    assert!(t.contains(&geometry), "{t}");
    assert!(
        t.contains(&format!(
            "free stripes: {} of {}",
            g.nr_stripes, g.nr_stripes
        )),
        "{t}"
    );
    assert!(t.contains("health: ok, 0 members lost\n"), "{t}");
    for (i, p) in set.capacity().iter().enumerate() {
        assert!(t.contains(&format!("member {i} device: {}\n", s(p))), "{t}");
        assert!(t.contains(&format!("member {i}: ok ")), "{t}");
    }
    assert!(set.contents() == before, "status wrote");

    // A member not named is missing; the store is degraded.
    let out = set.status(&[0, 1, 3]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("member 2: missing "), "{t}");
    assert!(t.contains("member 2 device: (not given)\n"), "{t}");
    for i in [0, 1, 3] {
        assert!(t.contains(&format!("member {i}: ok ")), "{t}");
    }
    assert!(t.contains("health: degraded, 1 members lost\n"), "{t}");
    assert!(set.contents() == before, "status wrote");

    // Two members not named: more than m lost.
    let out = set.status(&[0, 3]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("health: read-only"), "{}", text(&out));
}

#[test]
fn status_refuses_a_device_of_another_volume_or_twice() {
    let a = Set::new(&[8, 8, 8]);
    let b = Set::new(&[8, 8, 8]);
    format_ok(&a, &[]);
    format_ok(&b, &[]);
    let out = vtierctl(&[
        "status",
        "--capacity",
        s(&a.capacity()[0]),
        s(&b.capacity()[1]),
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("belongs to volume"), "{}", text(&out));
    let out = a.status(&[0, 0]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("both capacity member 0 (device 1 of the set)"),
        "{}",
        text(&out)
    );
    // The performance device is not a member.
    let out = vtierctl(&["status", "--capacity", s(&a.images[0])]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a capacity device"),
        "{}",
        text(&out)
    );
}
