// SPDX-License-Identifier: GPL-2.0

//! `vtierctl replay-log` as a command: two logs built here in the
//! dm-log-writes layout, replayed onto image files to each common mark with
//! a command that reads the targets and then scribbles on them; a broken
//! log is refused with a message and exit status 1, never a panic.

use std::path::Path;
use std::process::Command;

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");
const SS: usize = 512;

/// A log: (sector, data) writes, flushes and marks, as the kernel lays
/// them out.
enum E<'a> {
    Write(u64, &'a [u8]),
    Flush,
    Mark(&'a str),
}

fn log(entries: &[E]) -> Vec<u8> {
    let mut b = vec![0u8; SS];
    for e in entries {
        let at = b.len();
        b.resize(at + SS, 0);
        let (sector, nr, flags, len) = match e {
            E::Write(s, d) => (*s, (d.len() / SS) as u64, 0u64, 0u64),
            E::Flush => (0, 0, 1, 0),
            E::Mark(m) => (0, 0, 8, m.len() as u64),
        };
        for (i, v) in [sector, nr, flags, len].into_iter().enumerate() {
            b[at + 8 * i..at + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
        match e {
            E::Write(_, d) => b.extend_from_slice(d),
            E::Mark(m) => b[at + 32..at + 32 + m.len()].copy_from_slice(m.as_bytes()),
            E::Flush => {}
        }
    }
    b[0..8].copy_from_slice(&0x6a736677736872u64.to_le_bytes());
    b[8..16].copy_from_slice(&1u64.to_le_bytes());
    b[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
    b[24..28].copy_from_slice(&(SS as u32).to_le_bytes());
    b
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn replays_two_logs_to_each_common_mark() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a1, a2, b1) = ([1u8; SS], [2u8; SS], [3u8; 2 * SS]);
    std::fs::write(
        d.join("la"),
        log(&[
            E::Write(0, &a1),
            E::Flush,
            E::Mark("p-1"),
            E::Write(1, &a2),
            E::Mark("p-2"),
        ]),
    )
    .unwrap();
    std::fs::write(
        d.join("lb"),
        log(&[
            E::Mark("p-1"),
            E::Write(2, &b1),
            E::Mark("p-2"),
            E::Mark("end"),
        ]),
    )
    .unwrap();
    for t in ["ta", "tb"] {
        std::fs::write(d.join(t), vec![0xffu8; 4 * SS]).unwrap();
    }
    // At each point: save both targets under the mark's name, then write
    // over them as a power-on would.
    let cmd = format!(
        "cat {ta} {tb} > {d}/seen-$VTIER_REPLAY_MARK && echo $VTIER_REPLAY_NUMBER >> {d}/numbers && \
         printf xxxx | dd of={ta} conv=notrunc 2>/dev/null",
        ta = s(&d.join("ta")),
        tb = s(&d.join("tb")),
        d = s(d)
    );
    let out = Command::new(VTIERCTL)
        .args([
            "replay-log",
            "--log",
            s(&d.join("la")),
            "--target",
            s(&d.join("ta")),
        ])
        .args(["--log", s(&d.join("lb")), "--target", s(&d.join("tb"))])
        .args(["--each-mark", "p-", "--exec", &cmd])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("point 1/2: mark p-1 (3 + 1 entries replayed, targets written in "),
        "{text}"
    );
    assert!(text.contains("replay points: 2"), "{text}");
    let img = |parts: &[&[u8]]| parts.concat();
    let z = [0u8; SS];
    // Compared without printing kilobytes on a failure.
    let seen1 = std::fs::read(d.join("seen-p-1")).unwrap();
    assert!(
        seen1 == img(&[&a1, &z, &z, &z, &z, &z, &z, &z]),
        "targets at p-1"
    );
    let seen2 = std::fs::read(d.join("seen-p-2")).unwrap();
    assert!(
        seen2 == img(&[&a1, &a2, &z, &z, &z, &z, &b1]),
        "targets at p-2"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("numbers")).unwrap(),
        "1\n2\n"
    );

    // A failing command stops the replay at its point.
    let out = Command::new(VTIERCTL)
        .args([
            "replay-log",
            "--log",
            s(&d.join("la")),
            "--target",
            s(&d.join("ta")),
        ])
        .args(["--each-flush", "--exec", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flush at entry 1): the command failed"),
        "{err}"
    );
}

#[test]
fn a_broken_log_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut b = log(&[E::Write(0, &[7u8; SS]), E::Mark("m")]);
    b.truncate(SS + 100);
    std::fs::write(d.join("l"), &b).unwrap();
    std::fs::write(d.join("t"), vec![0u8; SS]).unwrap();
    std::fs::write(d.join("junk"), vec![0x5au8; 3000]).unwrap();
    for (l, want) in [("l", "truncated"), ("junk", "not a dm-log-writes log")] {
        let out = Command::new(VTIERCTL)
            .args([
                "replay-log",
                "--log",
                s(&d.join(l)),
                "--target",
                s(&d.join("t")),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{err}");
    }
    // --list prints the entries of a good log.
    std::fs::write(
        d.join("good"),
        log(&[E::Write(3, &[1u8; SS]), E::Flush, E::Mark("m")]),
    )
    .unwrap();
    let out = Command::new(VTIERCTL)
        .args(["replay-log", "--list", "--log", s(&d.join("good"))])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("0 write sector 3 +1")
            && text.contains("1 flush")
            && text.contains("2 mark m"),
        "{text}"
    );
}
