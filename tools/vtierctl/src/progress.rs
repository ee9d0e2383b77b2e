// SPDX-License-Identifier: GPL-2.0

//! `vtierctl scrub` and `vtierctl rebuild`: a running volume's scrub or
//! rebuild driven to its end through configfs, step by step, with a
//! progress bar.
//!
//! The module scrubs or rebuilds a given number of stripes per write to
//! the `scrub` or `rebuild` attribute, under the volume's lock: I/O waits
//! while a step runs, so the steps are small (`--step`), and `--rate`
//! caps the stripes per second for a volume that must keep serving.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::assemble::CONFIGFS;

/// Pacing of the steps.
pub struct Pace {
    /// Stripes per configfs write.
    pub step: u64,
    /// Most stripes per second, if limited.
    pub rate: Option<u64>,
}

/// The configfs attribute `attr` of volume `name`.
fn attribute(name: &str, attr: &str) -> Result<PathBuf, String> {
    let dir = Path::new(CONFIGFS).join(name);
    if !dir.is_dir() {
        return Err(format!(
            "{name}: no such volume ({} does not exist)",
            dir.display()
        ));
    }
    Ok(dir.join(attr))
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `A/B` as two numbers.
fn fraction(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once('/')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} stripes, {per_sec}, ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Sleeps as long as keeps `done` stripes since `start` at most `rate`
/// per second.
fn pace(pace: &Pace, start: Instant, done: u64) {
    if let Some(rate) = pace.rate.filter(|&r| r > 0) {
        let due = Duration::from_secs_f64(done as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            thread::sleep(wait);
        }
    }
}

/// The `scrub:` line of the volume's status.
fn scrub_counts(name: &str) -> Option<String> {
    let status = read(&attribute(name, "status").ok()?).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("scrub:"))
        .map(str::to_string)
}

/// `vtierctl scrub NAME`: runs the scrub pass under way to its end, or a
/// whole pass if none is (every allocated stripe's chunk checksums and
/// parity checked, what can be repaired repaired); prints the counts.
pub fn scrub(name: &str, p: &Pace) -> Result<(), String> {
    let attr = attribute(name, "scrub")?;
    let text = read(&attr)?;
    let (mut next, total) =
        fraction(&text).ok_or_else(|| format!("{name}: scrub reads '{text}', not next/total"))?;
    if next >= total {
        next = 0;
    } else if next > 0 {
        println!(
            "{name}: a scrub pass is under way at stripe {next} of {total}: running it to its end"
        );
    }
    let bar = bar(total, &format!("{name}: scrub"));
    bar.set_position(next);
    let (start, first) = (Instant::now(), next);
    while next < total {
        fs::write(&attr, p.step.to_string())
            .map_err(|e| format!("{name}: scrub step at stripe {next}: {e}"))?;
        let text = read(&attr)?;
        let (now, _) = fraction(&text)
            .ok_or_else(|| format!("{name}: scrub reads '{text}', not next/total"))?;
        if now <= next {
            return Err(format!("{name}: scrub did not advance past stripe {next}"));
        }
        next = now;
        bar.set_position(next);
        pace(p, start, next - first);
    }
    bar.finish_and_clear();
    println!(
        "{name}: scrubbed stripes {first}..{total} in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    if let Some(counts) = scrub_counts(name) {
        println!("{name}: {counts}");
    }
    Ok(())
}

/// `vtierctl rebuild NAME`: drives the rebuild onto a replacement member
/// (after configfs `replace`) to its end.
pub fn rebuild(name: &str, p: &Pace) -> Result<(), String> {
    let attr = attribute(name, "rebuild")?;
    // "member M done/total" or "none".
    let progress = |text: &str| -> Result<Option<(u64, u64, u64)>, String> {
        if text == "none" {
            return Ok(None);
        }
        let parsed = text.strip_prefix("member ").and_then(|rest| {
            let (m, f) = rest.split_once(' ')?;
            let (done, total) = fraction(f)?;
            Some((m.parse().ok()?, done, total))
        });
        parsed.map(Some).ok_or_else(|| {
            format!("{name}: rebuild reads '{text}', not 'member M done/total' or 'none'")
        })
    };
    let Some((member, mut done, total)) = progress(&read(&attr)?)? else {
        println!("{name}: no rebuild to run (configfs replace starts one)");
        return Ok(());
    };
    let bar = bar(
        total,
        &format!("{name}: rebuild of capacity member {member}"),
    );
    bar.set_position(done);
    let (start, first) = (Instant::now(), done);
    loop {
        fs::write(&attr, p.step.to_string())
            .map_err(|e| format!("{name}: rebuild step at stripe {done}: {e}"))?;
        match progress(&read(&attr)?)? {
            None => break,
            Some((_, now, _)) if now <= done => {
                return Err(format!(
                    "{name}: rebuild did not advance past stripe {done}"
                ))
            }
            Some((_, now, _)) => {
                done = now;
                bar.set_position(done);
                pace(p, start, done - first);
            }
        }
    }
    bar.finish_and_clear();
    println!(
        "{name}: capacity member {member} rebuilt ({} stripes in {:.1} s)",
        total - first,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
