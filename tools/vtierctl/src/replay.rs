// SPDX-License-Identifier: GPL-2.0

//! `vtierctl replay-log`: replays dm-log-writes logs ([`crate::logwrites`])
//! onto targets, one log per target, up to a replay point or to each
//! point in turn.
//!
//! A target is zeroed before the log's writes are put on it: the log must
//! have recorded its device from zeroes (dm-log-writes set up on a zeroed
//! device before `vtierctl format`). A discard is replayed as zeroes.
//!
//! Several logs, one per member of a volume, are replayed together only to
//! their common marks: a mark sent to every log while the volume is
//! quiescent (no request in flight) is a moment at which each member holds
//! what its log holds up to that mark, the writes the member had flushed
//! (and its FUA writes). That is a state a power cut at that moment may
//! leave, with every write not yet flushed lost on every member. A mark
//! name must occur at most once in each log, and the common marks must
//! come in the same order in every log.
//!
//! With a command (`--exec`), the targets are brought to each point in
//! turn and the command run there; it may write to the targets (power the
//! volume on, recover it): before the next point every target is zeroed
//! and written again with what the logs hold up to it, kept in memory.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::logwrites::{Entry, Log};

/// Bytes written to a target at a time.
const WRITE_CHUNK: usize = 1 << 20;

/// Where the logs are replayed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// Every entry the logs count.
    End,
    /// Entries 0 to N (one log).
    Entry(u64),
    /// Each log up to and with its mark of that name.
    Mark(String),
    /// Each flush in turn (one log).
    EachFlush,
    /// Each mark common to all logs in turn (whose name starts with the
    /// prefix).
    EachMark(String),
}

/// One replay point: for each log, how many of its entries it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// What the point is, for messages (`mark NAME`, `flush at entry N`).
    pub name: String,
    /// The mark's name, if the point is one.
    pub mark: Option<String>,
    /// Entries replayed from each log (a prefix of it).
    pub entries: Vec<u64>,
}

fn marks(log: &Log<File>) -> Result<BTreeMap<String, u64>, String> {
    let mut m = BTreeMap::new();
    for e in &log.entries {
        if let Some(name) = &e.mark {
            if let Some(first) = m.insert(name.clone(), e.index) {
                return Err(format!(
                    "{}: mark '{name}' occurs twice (entries {first} and {}): replay points need unique marks",
                    log.name(),
                    e.index
                ));
            }
        }
    }
    Ok(m)
}

/// The replay points of `until` in `logs`.
pub fn points(logs: &[Log<File>], until: &Until) -> Result<Vec<Point>, String> {
    let one = |what: &str| -> Result<&Log<File>, String> {
        match logs {
            [log] => Ok(log),
            _ => Err(format!(
                "{what} names entries of one log; {} logs given (replay several to their common marks)",
                logs.len()
            )),
        }
    };
    Ok(match until {
        Until::End => vec![Point {
            name: "the end of the logs".to_string(),
            mark: None,
            entries: logs.iter().map(|l| l.entries.len() as u64).collect(),
        }],
        Until::Entry(n) => {
            let log = one("--to-entry")?;
            if *n >= log.entries.len() as u64 {
                return Err(format!(
                    "{}: no entry {n}: the log has {} entries",
                    log.name(),
                    log.entries.len()
                ));
            }
            vec![Point {
                name: format!("entry {n}"),
                mark: None,
                entries: vec![n + 1],
            }]
        }
        Until::EachFlush => {
            let log = one("--each-flush")?;
            log.entries
                .iter()
                .filter(|e| e.is_flush())
                .map(|e| Point {
                    name: format!("flush at entry {}", e.index),
                    mark: None,
                    entries: vec![e.index + 1],
                })
                .collect()
        }
        Until::Mark(name) => {
            let mut entries = Vec::new();
            for log in logs {
                let m = marks(log)?;
                let Some(&at) = m.get(name) else {
                    return Err(format!("{}: no mark '{name}'", log.name()));
                };
                entries.push(at + 1);
            }
            vec![Point {
                name: format!("mark {name}"),
                mark: Some(name.clone()),
                entries,
            }]
        }
        Until::EachMark(prefix) => {
            let all: Vec<BTreeMap<String, u64>> =
                logs.iter().map(marks).collect::<Result<_, _>>()?;
            let Some(first) = all.first() else {
                return Ok(Vec::new());
            };
            // The common marks in the first log's order.
            let mut common: Vec<(&String, u64)> = first
                .iter()
                .filter(|(n, _)| n.starts_with(prefix.as_str()))
                .filter(|(n, _)| all.iter().all(|m| m.contains_key(*n)))
                .map(|(n, &at)| (n, at))
                .collect();
            common.sort_by_key(|&(_, at)| at);
            let mut pts: Vec<Point> = Vec::with_capacity(common.len());
            for (name, _) in common {
                let entries: Vec<u64> = all.iter().map(|m| m[name] + 1).collect();
                if let Some(prev) = pts.last() {
                    if let Some(i) = (0..logs.len()).find(|&i| entries[i] <= prev.entries[i]) {
                        return Err(format!(
                            "marks out of order: '{}' comes before '{name}' in {}, after it in {}",
                            prev.mark.as_deref().unwrap_or(""),
                            logs[0].name(),
                            logs[i].name()
                        ));
                    }
                }
                pts.push(Point {
                    name: format!("mark {name}"),
                    mark: Some(name.clone()),
                    entries,
                });
            }
            pts
        }
    })
}

/// What the logs hold up to a point, per target: each written sector's
/// bytes (sectors never written, or discarded, are zeroes).
pub struct Image {
    sector_size: u64,
    /// The target's size in sectors.
    sectors: u64,
    data: BTreeMap<u64, Box<[u8]>>,
}

impl Image {
    fn new(sector_size: u32, bytes: u64) -> Self {
        Self {
            sector_size: u64::from(sector_size),
            sectors: bytes / u64::from(sector_size),
            data: BTreeMap::new(),
        }
    }

    /// Applies `e` of `log` (data read from it).
    fn apply(&mut self, log: &mut Log<File>, e: &Entry, target: &Path) -> Result<(), String> {
        if e.mark.is_some() || e.nr_sectors == 0 {
            return Ok(());
        }
        let end = e.sector + e.nr_sectors; // checked by the decoder
        if end > self.sectors {
            return Err(format!(
                "{}: entry {} {} sectors {}..{}, beyond the end of target {} ({} sectors)",
                log.name(),
                e.index,
                if e.data_at.is_some() {
                    "writes"
                } else {
                    "discards"
                },
                e.sector,
                end,
                target.display(),
                self.sectors
            ));
        }
        if e.data_at.is_none() {
            let gone: Vec<u64> = self.data.range(e.sector..end).map(|(&s, _)| s).collect();
            for s in gone {
                self.data.remove(&s);
            }
            return Ok(());
        }
        let ss = self.sector_size as usize;
        let len = usize::try_from(e.nr_sectors * self.sector_size)
            .map_err(|_| format!("{}: entry {} is too large", log.name(), e.index))?;
        let mut buf = vec![0u8; len];
        log.read_data(e, &mut buf)?;
        for (i, chunk) in buf.chunks_exact(ss).enumerate() {
            self.data.insert(e.sector + i as u64, chunk.into());
        }
        Ok(())
    }

    /// Zeroes `target` and writes the image onto it, runs of sectors at a
    /// time, then syncs it.
    fn write_to(&self, target: &Path) -> Result<(), String> {
        let f = zero_target(target)?;
        let err = |e: std::io::Error| format!("{}: writing: {e}", target.display());
        let mut run: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
        let mut run_start = 0u64;
        let mut next = 0u64;
        for (&s, bytes) in &self.data {
            if !run.is_empty() && (s != next || run.len() >= WRITE_CHUNK) {
                f.write_all_at(&run, run_start * self.sector_size)
                    .map_err(err)?;
                run.clear();
            }
            if run.is_empty() {
                run_start = s;
            }
            run.extend_from_slice(bytes);
            next = s + 1;
        }
        if !run.is_empty() {
            f.write_all_at(&run, run_start * self.sector_size)
                .map_err(err)?;
        }
        f.sync_all().map_err(err)
    }
}

/// `_IO(0x12, 127)`: zero a byte range of a block device.
const BLKZEROOUT: libc::c_ulong = 0x127f;

/// Opens `target` for writing with every byte zero: a regular file is
/// truncated to nothing and back to its size (it reads as zeroes), a
/// block device gets BLKZEROOUT over its whole size.
fn zero_target(target: &Path) -> Result<File, String> {
    let err = |e: std::io::Error| format!("{}: {e}", target.display());
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .map_err(err)?;
    let len = f.seek(SeekFrom::End(0)).map_err(err)?;
    if f.metadata().map_err(err)?.file_type().is_block_device() {
        let range: [u64; 2] = [0, len];
        use std::os::fd::AsRawFd;
        // SAFETY: BLKZEROOUT reads two u64 (start, length) from the
        // pointer, which points at `range`, alive and of that layout for
        // the whole call; the descriptor is owned by `f`, open for writing.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKZEROOUT, range.as_ptr()) };
        if rc != 0 {
            return Err(format!(
                "{}: zeroing the device (BLKZEROOUT): {}",
                target.display(),
                std::io::Error::last_os_error()
            ));
        }
    } else {
        f.set_len(0).and_then(|_| f.set_len(len)).map_err(err)?;
    }
    Ok(f)
}

fn target_len(target: &Path) -> Result<u64, String> {
    File::open(target)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .map_err(|e| format!("{}: {e}", target.display()))
}

/// Replays `logs` onto `targets` (pairwise) to each point of `until`, and
/// calls `at_point` there. Stops at the first error of either.
pub fn replay(
    logs: &mut [Log<File>],
    targets: &[PathBuf],
    until: &Until,
    mut at_point: impl FnMut(usize, usize, &Point, Duration) -> Result<(), String>,
) -> Result<usize, String> {
    if logs.len() != targets.len() {
        return Err(format!(
            "{} logs and {} targets: give one --target per --log, in the same order",
            logs.len(),
            targets.len()
        ));
    }
    let pts = points(logs, until)?;
    let mut images = Vec::with_capacity(logs.len());
    for (log, t) in logs.iter().zip(targets) {
        images.push(Image::new(log.sector_size, target_len(t)?));
    }
    let mut done = vec![0u64; logs.len()];
    for (n, p) in pts.iter().enumerate() {
        let started = Instant::now();
        for i in 0..logs.len() {
            let upto = p.entries[i];
            let entries: Vec<Entry> = logs[i].entries[done[i] as usize..upto as usize].to_vec();
            for e in &entries {
                images[i].apply(&mut logs[i], e, &targets[i])?;
            }
            done[i] = upto;
            images[i].write_to(&targets[i])?;
        }
        at_point(n + 1, pts.len(), p, started.elapsed())?;
    }
    Ok(pts.len())
}

/// `vtierctl replay-log`.
pub fn run(
    log_paths: &[PathBuf],
    targets: &[PathBuf],
    until: &Until,
    exec: Option<&str>,
    list: bool,
) -> Result<(), String> {
    let mut logs = log_paths
        .iter()
        .map(|p| Log::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    if list {
        for log in &logs {
            println!(
                "{}: {} entries, sector size {}",
                log.name(),
                log.entries.len(),
                log.sector_size
            );
            for e in &log.entries {
                println!("  {}", e.describe());
            }
        }
        return Ok(());
    }
    if exec.is_none() && matches!(until, Until::EachFlush | Until::EachMark(_)) {
        return Err(
            "--each-flush and --each-mark need --exec: a command to run at each point".into(),
        );
    }
    let n = replay(&mut logs, targets, until, |n, total, p, took| {
        let counts: Vec<String> = p.entries.iter().map(u64::to_string).collect();
        println!(
            "point {n}/{total}: {} ({} entries replayed, targets written in {} ms)",
            p.name,
            counts.join(" + "),
            took.as_millis()
        );
        let Some(cmd) = exec else {
            return Ok(());
        };
        let status = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("VTIER_REPLAY_POINT", &p.name)
            .env("VTIER_REPLAY_MARK", p.mark.as_deref().unwrap_or(""))
            .env("VTIER_REPLAY_NUMBER", n.to_string())
            .status()
            .map_err(|e| format!("cannot run the command: {e}"))?;
        if !status.success() {
            return Err(format!(
                "point {n}/{total} ({}): the command failed ({status})",
                p.name
            ));
        }
        Ok(())
    })?;
    println!("replay points: {n}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logwrites::tests::{Builder, Rng};
    use crate::logwrites::FLAG_FUA;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn log(&self, name: &str, b: &Builder) -> Log<File> {
            let p = self.dir.path().join(name);
            std::fs::write(&p, b.build()).unwrap();
            Log::open(&p).unwrap()
        }

        fn target(&self, name: &str, bytes: usize, fill: u8) -> PathBuf {
            let p = self.dir.path().join(name);
            std::fs::write(&p, vec![fill; bytes]).unwrap();
            p
        }
    }

    fn sec(ss: usize, v: u8, n: usize) -> Vec<u8> {
        vec![v; ss * n]
    }

    /// The bytes of each target at each point.
    fn images(logs: &mut [Log<File>], targets: &[PathBuf], until: &Until) -> Vec<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        replay(logs, targets, until, |_, _, _, _| {
            out.push(targets.iter().map(|t| std::fs::read(t).unwrap()).collect());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn replays_to_an_entry_a_mark_and_the_end() {
        let f = Files::new();
        let mut b = Builder::new(512);
        b.write(2, &sec(512, 1, 2), 0)
            .flush()
            .mark("a")
            .write(3, &sec(512, 2, 1), FLAG_FUA)
            .discard(2, 1)
            .mark("b");
        let t = f.target("t", 8 * 512, 0x77);
        let mut logs = vec![f.log("l", &b)];
        let targets = [t.clone()];
        let mut want = vec![0u8; 8 * 512];
        let at = images(&mut logs, &targets, &Until::Entry(0));
        want[1024..2048].fill(1);
        assert_eq!(at, vec![vec![want.clone()]]);
        let at = images(&mut logs, &targets, &Until::Mark("a".into()));
        assert_eq!(at, vec![vec![want.clone()]]);
        let at = images(&mut logs, &targets, &Until::End);
        want[1536..2048].fill(2);
        want[1024..1536].fill(0);
        assert_eq!(at, vec![vec![want.clone()]]);
        assert!(replay(&mut logs, &targets, &Until::Entry(6), |_, _, _, _| Ok(())).is_err());
        assert!(replay(
            &mut logs,
            &targets,
            &Until::Mark("c".into()),
            |_, _, _, _| Ok(())
        )
        .is_err());
    }

    /// Each flush in turn, and the target written again at each point even
    /// when the command changed it.
    #[test]
    fn each_flush_restores_what_the_command_wrote() {
        let f = Files::new();
        let mut b = Builder::new(4096);
        b.write(0, &sec(4096, 1, 1), 0)
            .flush()
            .write(1, &sec(4096, 2, 1), 0)
            .write(0, &sec(4096, 3, 1), 0)
            .flush()
            .flush();
        let t = f.target("t", 3 * 4096, 0);
        let mut logs = vec![f.log("l", &b)];
        let mut seen = Vec::new();
        let n = replay(
            &mut logs,
            std::slice::from_ref(&t),
            &Until::EachFlush,
            |n, total, p, _| {
                seen.push((n, total, p.entries.clone(), std::fs::read(&t).unwrap()));
                // What a power-on would do: write somewhere.
                std::fs::write(&t, sec(4096, 9, 3)).unwrap();
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 3);
        let img = |a: u8, b: u8| [sec(4096, a, 1), sec(4096, b, 1), sec(4096, 0, 1)].concat();
        assert_eq!(
            seen,
            vec![
                (1, 3, vec![2], img(1, 0)),
                (2, 3, vec![5], img(3, 2)),
                (3, 3, vec![6], img(3, 2)),
            ]
        );
    }

    #[test]
    fn several_logs_meet_at_their_common_marks() {
        let f = Files::new();
        let mut a = Builder::new(512);
        a.write(0, &sec(512, 1, 1), 0)
            .mark("m1")
            .mark("only-a")
            .write(0, &sec(512, 2, 1), 0)
            .mark("m2")
            .mark("x-3");
        let mut b = Builder::new(512);
        b.mark("m1")
            .write(1, &sec(512, 5, 1), 0)
            .flush()
            .mark("m2")
            .write(1, &sec(512, 6, 1), 0)
            .mark("x-3");
        let ta = f.target("ta", 1024, 0);
        let tb = f.target("tb", 1024, 0);
        let mut logs = vec![f.log("a", &a), f.log("b", &b)];
        let targets = [ta, tb];
        let pts = points(&logs, &Until::EachMark(String::new())).unwrap();
        let names: Vec<_> = pts.iter().map(|p| p.mark.clone().unwrap()).collect();
        assert_eq!(names, ["m1", "m2", "x-3"]);
        assert_eq!(pts[1].entries, vec![5, 4]);
        let pts = points(&logs, &Until::EachMark("x-".into())).unwrap();
        assert_eq!(pts.len(), 1);
        let got = images(&mut logs, &targets, &Until::EachMark("m".into()));
        let s = |x: u8, y: u8| [sec(512, x, 1), sec(512, y, 1)].concat();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], vec![s(1, 0), s(0, 0)]);
        assert_eq!(got[1], vec![s(2, 0), s(0, 5)]);
        // An entry or a flush names one log only.
        assert!(points(&logs, &Until::Entry(0)).is_err());
        assert!(points(&logs, &Until::EachFlush).is_err());
        // One target per log.
        assert!(replay(&mut logs, &targets[..1], &Until::End, |_, _, _, _| Ok(())).is_err());
    }

    #[test]
    fn refuses_marks_out_of_order_or_twice() {
        let f = Files::new();
        let mut a = Builder::new(512);
        a.mark("p").mark("q");
        let mut b = Builder::new(512);
        b.mark("q").mark("p");
        let logs = vec![f.log("a", &a), f.log("b", &b)];
        let e = points(&logs, &Until::EachMark(String::new())).unwrap_err();
        assert!(e.contains("out of order"), "{e}");
        let mut c = Builder::new(512);
        c.mark("p").mark("p");
        let logs = vec![f.log("c", &c)];
        let e = points(&logs, &Until::EachMark(String::new())).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn refuses_writes_beyond_the_target() {
        let f = Files::new();
        let mut b = Builder::new(512);
        b.write(3, &sec(512, 1, 2), 0);
        let t = f.target("t", 4 * 512, 0);
        let mut logs = vec![f.log("l", &b)];
        let e = replay(&mut logs, &[t], &Until::End, |_, _, _, _| Ok(())).unwrap_err();
        assert!(e.contains("beyond the end of target"), "{e}");
    }

    /// A random log of writes, discards and flushes replays to each flush
    /// as a model of the device does.
    #[test]
    fn random_logs_replay_as_the_model() {
        let f = Files::new();
        let mut rng = Rng(12345);
        for round in 0..20 {
            let ss = if round % 2 == 0 { 512 } else { 4096 };
            let sectors = 64u64;
            let mut b = Builder::new(ss);
            let mut model = vec![0u8; ss * sectors as usize];
            let mut want = Vec::new();
            for _ in 0..60 {
                let s = rng.next() % sectors;
                let n = 1 + rng.next() % (sectors - s).min(8);
                match rng.next() % 5 {
                    0 => {
                        b.discard(s, n);
                        model[(s as usize) * ss..((s + n) as usize) * ss].fill(0);
                    }
                    1 => {
                        b.flush();
                        want.push(model.clone());
                    }
                    _ => {
                        let data: Vec<u8> =
                            (0..n as usize * ss).map(|_| rng.next() as u8).collect();
                        b.write(s, &data, 0);
                        model[(s as usize) * ss..((s + n) as usize) * ss].copy_from_slice(&data);
                    }
                }
            }
            let t = f.target("t", ss * sectors as usize, 0xee);
            let mut logs = vec![f.log("l", &b)];
            let got = images(&mut logs, &[t], &Until::EachFlush);
            let got: Vec<Vec<u8>> = got.into_iter().map(|mut v| v.remove(0)).collect();
            assert_eq!(got, want, "round {round}");
        }
    }
}
