// SPDX-License-Identifier: GPL-2.0

//! `vtierctl`: the userspace tool for vtier devices.
//!
//! It is built from the same engine source as `vtier.ko`, so what it writes
//! is what the module reads, and what it checks is checked the same way.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vtier_engine::alloc_io::DEFAULT_CACHE_PAGES;
use vtier_engine::checkpoint::{FormatOptions, Volume};
use vtier_engine::file_device::FileDevice;
use vtier_engine::superblock::{Superblock, BLOCK_SIZE, COPIES};

#[derive(Parser)]
#[command(name = "vtierctl", version, about = "Manage vtier devices offline")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write fresh superblocks to a performance device and its capacity devices.
    Format {
        /// The performance-tier device or image.
        #[arg(long)]
        perf: PathBuf,
        /// The capacity-tier devices or images.
        #[arg(long, num_args = 0..)]
        capacity: Vec<PathBuf>,
        /// Blocks of write-ahead log on the performance device.
        #[arg(long, default_value_t = 64)]
        wal_blocks: u64,
    },
    /// Print the superblocks of a member device.
    Show {
        /// Device or image.
        device: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Format {
            perf,
            capacity,
            wal_blocks,
        } => format(&perf, &capacity, wal_blocks),
        Cmd::Show { device } => show(&device),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vtierctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn random_uuid() -> Result<[u8; 16], String> {
    let mut u = [0u8; 16];
    getrandom::fill(&mut u).map_err(|e| format!("no random source: {e}"))?;
    u[6] = (u[6] & 0x0f) | 0x40; // RFC 4122 version 4
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

fn device_blocks(f: &mut File, path: &Path) -> Result<u64, String> {
    let bytes = f
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes / BLOCK_SIZE as u64)
}

fn format(perf: &Path, capacity: &[PathBuf], wal_blocks: u64) -> Result<(), String> {
    let mut all: Vec<&Path> = vec![perf];
    all.extend(capacity.iter().map(PathBuf::as_path));
    for (i, a) in all.iter().enumerate() {
        if all[..i].iter().any(|b| b == a) {
            return Err(format!("{} named twice", a.display()));
        }
    }
    let nr_devices = u32::try_from(all.len()).map_err(|_| "too many devices".to_string())?;
    let volume_uuid = random_uuid()?;
    for (index, path) in all.iter().enumerate() {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let nr_blocks = device_blocks(&mut f, path)?;
        let opts = FormatOptions {
            volume_uuid,
            device_uuid: random_uuid()?,
            nr_devices,
            wal_blocks,
        };
        let mut dev = FileDevice::with_blocks(f, nr_blocks);
        let sb = if index == 0 {
            Volume::format(&mut dev, &opts, DEFAULT_CACHE_PAGES).map(|v| *v.superblock())
        } else {
            Volume::format_capacity(&mut dev, &opts, index as u32)
        }
        .map_err(|e| {
            format!(
                "{}: cannot format ({nr_blocks} blocks): {e}",
                path.display()
            )
        })?;
        println!(
            "{}: formatted as {:?} device {index} of {nr_devices}, {nr_blocks} blocks",
            path.display(),
            sb.role
        );
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn show(path: &Path) -> Result<(), String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut results = Vec::new();
    for block in COPIES {
        let mut buf = [0u8; BLOCK_SIZE];
        f.seek(SeekFrom::Start(block * BLOCK_SIZE as u64))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let r = Superblock::decode(&buf, block);
        match &r {
            Ok(sb) => println!(
                "copy {block}: generation {} {:?} device {} of {}, {} blocks, volume {}, \
                 WAL {}+{} tail {} seq {}, map copies {:?} ({} blocks each), \
                 {} free, data from block {}",
                sb.generation,
                sb.role,
                sb.device_index,
                sb.nr_devices,
                sb.nr_blocks,
                hex(&sb.volume_uuid),
                sb.wal.start,
                sb.wal.blocks,
                sb.wal.tail,
                sb.wal.tail_seq,
                sb.map.copies,
                sb.map.blocks,
                sb.map.free,
                sb.data_start
            ),
            Err(e) => println!("copy {block}: {e}"),
        }
        results.push(r);
    }
    let b = results.pop().unwrap_or(Err(vtier_engine::error::Error::Io));
    let a = results.pop().unwrap_or(Err(vtier_engine::error::Error::Io));
    Superblock::choose(a, b)
        .map(|sb| println!("mounts generation {}", sb.generation))
        .map_err(|e| format!("{}: no valid superblock: {e}", path.display()))
}
