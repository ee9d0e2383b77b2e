// SPDX-License-Identifier: GPL-2.0

//! `vtierctl`: the userspace tool for vtier devices.
//!
//! It is built from the same engine source as `vtier.ko`, so what it writes
//! is what the module reads, and what it checks is checked the same way.
//!
//! Keys: `format --encrypt` and `check-key` read the AES-256-XTS key from a
//! key file ([`key`]); it is used to compute or check the volume's key
//! check value and is never printed, logged or written to the devices.

mod assemble;
mod check;
mod dump;
mod key;
mod logwrites;
mod progress;
mod replay;
mod reseal;
mod signature;
mod stripes;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use vtier_engine::crypt::cipher::TWEAK_SIZE;
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::crypt::soft::SoftXts;
use vtier_engine::error::Error;
use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE, COPIES};
use vtier_engine::io::file_device::FileDevice;
use vtier_engine::journal::meta_device::{FormatOptions, MetaDevice};
use vtier_engine::map::lba_map::LbaMap;

#[derive(Parser)]
#[command(
    name = "vtierctl",
    version,
    about = "Format, assemble, check and inspect vtier volumes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The members of a volume that is not powered, for `check` and `dump`.
#[derive(clap::Args)]
struct VolumeArgs {
    /// The performance device or image.
    #[arg(long)]
    perf: PathBuf,
    /// The capacity devices or images (any order; a missing member may be
    /// left out, up to the parity count).
    #[arg(long, num_args = 0..)]
    capacity: Vec<PathBuf>,
    /// The key of an encrypted volume, as for `format --key-file`.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Print it as JSON.
    #[arg(long)]
    json: bool,
}

/// A running volume and the pace of its scrub or rebuild.
#[derive(clap::Args)]
struct PaceArgs {
    /// The configfs name of the volume.
    name: String,
    /// Stripes per step: I/O to the volume waits while a step runs.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    step: u64,
    /// At most this many stripes per second.
    #[arg(long, value_name = "STRIPES", value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
}

impl PaceArgs {
    fn pace(&self) -> progress::Pace {
        progress::Pace {
            step: self.step,
            rate: self.rate,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Write fresh superblocks to a performance device and its capacity
    /// devices, and with 3 or more capacity devices the erasure-coded
    /// stripe store on them. Every option is checked before a device is
    /// written.
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
        /// Encrypt the volume set with AES-256-XTS (needs --key-file).
        /// Without it the volume is not encrypted.
        #[arg(long, requires = "key_file")]
        encrypt: bool,
        /// The 64-byte AES-256-XTS key (data key, then tweak key) as 128 hex
        /// digits or 64 raw bytes; `-` reads standard input. Used for the
        /// key check value only; never printed or written to the devices.
        #[arg(long, value_name = "FILE", requires = "encrypt")]
        key_file: Option<PathBuf>,
        #[command(flatten)]
        stripes: stripes::StripeArgs,
        /// Overwrite devices that carry a vtier superblock or another
        /// known signature (a file system, LUKS, LVM, md RAID, a
        /// partition table). Without it such a device is refused and
        /// nothing is written.
        #[arg(long)]
        force: bool,
    },
    /// Print the stripe store of the capacity devices: geometry, free
    /// stripes and each member's state. Opens the devices read-only and
    /// never writes them; members are placed by their superblock's device
    /// index, a member not named shows as missing.
    Status {
        /// The capacity-tier devices or images (any order).
        #[arg(long, num_args = 1.., required = true)]
        capacity: Vec<PathBuf>,
    },
    /// Say whether a device is a vtier member, for udev and scripts. With
    /// --export (the form a udev rule IMPORTs): KEY=value lines,
    /// ID_FS_TYPE=vtier_member, ID_FS_UUID (the volume's UUID),
    /// ID_FS_UUID_SUB (the member's), VTIER_ROLE, VTIER_DEVICE_INDEX,
    /// VTIER_NR_DEVICES, VTIER_ENCRYPTED. Exit status 0 for a member, 2
    /// when the device holds no valid vtier superblock, 1 when it cannot
    /// be read.
    Probe {
        /// Device or image.
        device: PathBuf,
        /// Print KEY=value lines instead of a sentence.
        #[arg(long)]
        export: bool,
    },
    /// Bring a volume up through configfs: its members found by their
    /// superblocks (the devices named, in any order, or with --scan every
    /// block device), placed by device index, the key checked, then
    /// perf_device, capacity_devices, the key and power=1 written. Nothing
    /// is written to configfs when something is wrong, and nothing ever
    /// to the members. Prints the device (/dev/vtierN).
    Assemble {
        /// The configfs name of the volume (/sys/kernel/config/vtier/NAME).
        /// With no device named and no --scan, its line in the volume
        /// table gives its UUID and key, and every block device is looked
        /// at.
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// The members, in any order.
        #[arg(conflicts_with = "scan")]
        devices: Vec<PathBuf>,
        /// Look at every block device (/sys/class/block).
        #[arg(long)]
        scan: bool,
        /// Every volume of the volume table that is not assembled yet.
        #[arg(long, conflicts_with_all = ["name", "devices", "scan", "uuid", "key_file", "key_name"])]
        all: bool,
        /// The volume table instead of /etc/vtiertab: one volume per line,
        /// NAME UUID KEY, where KEY is none, keyring:DESC (a logon key) or
        /// the absolute path of a key file; # starts a comment.
        #[arg(long, value_name = "FILE")]
        tab: Option<PathBuf>,
        /// Assemble only volume UUID (as probe prints it): needed when
        /// members of several volumes are found.
        #[arg(long, value_name = "UUID")]
        uuid: Option<String>,
        /// The key of an encrypted volume, as for `format --key-file`;
        /// checked against the key check value before anything is written.
        #[arg(long, value_name = "FILE", conflicts_with = "key_name")]
        key_file: Option<PathBuf>,
        /// The description of a logon key in the kernel keyring that holds
        /// the key of an encrypted volume (configfs key_name).
        #[arg(long, value_name = "NAME")]
        key_name: Option<String>,
        /// Print the configfs writes (the key not shown) instead of making
        /// them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Take a volume down: power=0 (a checkpoint: what was written is on
    /// the members), then its configfs directory removed.
    Stop {
        /// The configfs name of the volume.
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// Every volume of the volume table that configfs holds.
        #[arg(long, conflicts_with = "name")]
        all: bool,
        /// The volume table instead of /etc/vtiertab.
        #[arg(long, value_name = "FILE")]
        tab: Option<PathBuf>,
    },
    /// Scrub a running volume's capacity tier: the pass under way run to
    /// its end, or a whole one (every stripe's checksums and parity
    /// checked, what can be repaired repaired), in steps through configfs
    /// with a progress bar; prints the scrub counts.
    Scrub(PaceArgs),
    /// Run a running volume's rebuild onto a replacement capacity device
    /// (after configfs replace) to its end, in steps, with a progress bar.
    Rebuild(PaceArgs),
    /// Print the superblocks of a member device (never key material).
    Show {
        /// Device or image.
        device: PathBuf,
    },
    /// Check a volume that is not powered, offline and without writing to
    /// it: superblocks, a dry-run WAL replay, the B-tree, every mapped
    /// extent against the allocation maps, data-log checksums, every mapped
    /// block read back, and a scrub of the stripes. Exit status 0 when
    /// clean, 1 when errors were found (as fsck), 2 when it cannot check.
    Check(VolumeArgs),
    /// Print what a volume that is not powered holds, offline and without
    /// writing to it: the members' superblocks, the WAL (replayed in
    /// memory only), the B-tree's shape and nodes, every mapped extent and
    /// where its data lives, and the stripe store. Exit status 0, or 1
    /// when part of it could not be read.
    Dump(VolumeArgs),
    /// Replay dm-log-writes logs onto targets, one log per target (a
    /// volume's members, each logged by its own log): to the end, to an
    /// entry or a mark, or to each flush or each common mark in turn with
    /// a command run at each. Every target is zeroed first: the logs must
    /// have recorded their devices from zeroes. Several logs are replayed
    /// together only to marks sent to all of them while the volume was
    /// quiescent.
    ReplayLog {
        /// A dm-log-writes log device or image (repeat for several).
        #[arg(long = "log", required = true, value_name = "LOG")]
        logs: Vec<PathBuf>,
        /// The device or image the log before it is replayed onto (one
        /// per --log, in the same order).
        #[arg(long = "target", value_name = "TARGET")]
        targets: Vec<PathBuf>,
        /// Replay entries 0 to N (one log; numbered as --list numbers them).
        #[arg(long, value_name = "N", group = "until")]
        to_entry: Option<u64>,
        /// Replay each log up to its mark NAME.
        #[arg(long, value_name = "NAME", group = "until")]
        to_mark: Option<String>,
        /// Replay to each flush in turn (one log), running --exec at each.
        #[arg(long, group = "until", requires = "exec")]
        each_flush: bool,
        /// Replay to each mark common to all logs in turn (those whose name
        /// starts with PREFIX), running --exec at each.
        #[arg(long, value_name = "PREFIX", group = "until", requires = "exec",
              num_args = 0..=1, default_missing_value = "")]
        each_mark: Option<String>,
        /// A shell command run at each point (sh -c), with
        /// VTIER_REPLAY_POINT, VTIER_REPLAY_MARK and VTIER_REPLAY_NUMBER set;
        /// it may change the targets. A failure stops the replay.
        #[arg(long, value_name = "COMMAND")]
        exec: Option<String>,
        /// Print each log's entries instead of replaying.
        #[arg(long)]
        list: bool,
    },
    /// List the metadata blocks of a member device: block number, the
    /// structure its magic names, the location it records and whether its
    /// checksum holds. Read-only.
    Blocks {
        /// Device or image.
        device: PathBuf,
    },
    /// Recompute the checksum of metadata blocks after a hand edit (each
    /// must carry a vtier magic); nothing else changes. A resealed block
    /// passes the checksum whatever it holds: for repairs of last resort
    /// and for tests that reach the field checks behind the checksum.
    Reseal {
        /// Device or image (of a volume that is not powered).
        device: PathBuf,
        /// Block numbers (4 KiB blocks), as `blocks` lists them.
        #[arg(required = true)]
        blocks: Vec<u64>,
    },
    /// Print shell completions for vtierctl, e.g. `vtierctl completions
    /// bash > /usr/share/bash-completion/completions/vtierctl`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print vtierctl's man page (roff, section 8), or that of one
    /// subcommand (vtierctl-NAME), e.g. `vtierctl man | man -l -`.
    Man {
        /// A subcommand.
        subcommand: Option<String>,
    },
    /// Check a key against an encrypted device's key check value.
    CheckKey {
        /// Device or image (any member of the set).
        device: PathBuf,
        /// The key, as for `format --key-file`.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Format {
            perf,
            capacity,
            wal_blocks,
            encrypt: _,
            key_file,
            stripes,
            force,
        } => format(
            &perf,
            &capacity,
            wal_blocks,
            key_file.as_deref(),
            &stripes,
            force,
        ),
        Cmd::Status { capacity } => stripes::status(&capacity),
        Cmd::Assemble {
            name,
            devices,
            scan,
            all,
            tab,
            uuid,
            key_file,
            key_name,
            dry_run,
        } => {
            let key = match (&key_file, &key_name) {
                (Some(f), _) => assemble::KeySource::File(f),
                (_, Some(n)) => assemble::KeySource::Name(n),
                _ => assemble::KeySource::None,
            };
            assemble::command(
                name.as_deref(),
                &devices,
                scan,
                all,
                tab.as_deref(),
                uuid.as_deref(),
                key,
                dry_run,
            )
        }
        Cmd::Stop { name, all, tab } => {
            assemble::stop_command(name.as_deref(), all, tab.as_deref())
        }
        Cmd::Scrub(a) => progress::scrub(&a.name, &a.pace()),
        Cmd::Rebuild(a) => progress::rebuild(&a.name, &a.pace()),
        Cmd::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "vtierctl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Cmd::Man { subcommand } => man(subcommand.as_deref()),
        Cmd::Show { device } => show(&device),
        Cmd::Probe { device, export } => {
            return match probe(&device, export) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(2),
                Err(e) => {
                    eprintln!("vtierctl: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::Blocks { device } => reseal::blocks(&device),
        Cmd::Reseal { device, blocks } => reseal::reseal(&device, &blocks),
        Cmd::CheckKey { device, key_file } => check_key(&device, &key_file),
        Cmd::ReplayLog {
            logs,
            targets,
            to_entry,
            to_mark,
            each_flush,
            each_mark,
            exec,
            list,
        } => {
            let until = match (to_entry, to_mark, each_flush, each_mark) {
                (Some(n), ..) => replay::Until::Entry(n),
                (_, Some(m), ..) => replay::Until::Mark(m),
                (_, _, true, _) => replay::Until::EachFlush,
                (_, _, _, Some(prefix)) => replay::Until::EachMark(prefix),
                _ => replay::Until::End,
            };
            replay::run(&logs, &targets, &until, exec.as_deref(), list)
        }
        Cmd::Dump(v) => {
            return fsck_status(dump::dump(
                &v.perf,
                &v.capacity,
                v.key_file.as_deref(),
                v.json,
            ))
        }
        Cmd::Check(v) => {
            return fsck_status(check::check(
                &v.perf,
                &v.capacity,
                v.key_file.as_deref(),
                v.json,
            ))
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vtierctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `vtierctl man [SUBCOMMAND]`: the page rendered from the clap
/// definitions.
fn man(subcommand: Option<&str>) -> Result<(), String> {
    let cli = Cli::command();
    let page = match subcommand {
        None => clap_mangen::Man::new(cli),
        Some(name) => {
            let sub = cli
                .find_subcommand(name)
                .ok_or_else(|| format!("no subcommand {name}"))?
                .clone();
            let title = format!("vtierctl-{name}");
            clap_mangen::Man::new(sub.name(title.clone()).bin_name(title))
        }
    };
    page.section("8")
        .render(&mut std::io::stdout())
        .map_err(|e| format!("writing the man page: {e}"))
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

/// The encryption parameters of a new volume set: none without a key file;
/// with one, a fresh random tweak and the key check value of the file's
/// key under it.
fn new_encryption(key_file: Option<&Path>) -> Result<Encryption, String> {
    let Some(path) = key_file else {
        return Ok(Encryption::None);
    };
    let key = key::read_key_file(path)?;
    let cipher = SoftXts::new(&key).map_err(|e| format!("key file {}: {e}", path.display()))?;
    let mut tweak = [0u8; TWEAK_SIZE];
    getrandom::fill(&mut tweak).map_err(|e| format!("no random source: {e}"))?;
    Encryption::aes_xts(&cipher, tweak).map_err(|e| format!("key check value: {e}"))
}

fn describe(enc: &Encryption) -> String {
    match enc {
        Encryption::None => "not encrypted".to_string(),
        Encryption::AesXts { tweak, .. } => format!("encrypted AES-256-XTS, tweak {}", hex(tweak)),
    }
}

fn format(
    perf: &Path,
    capacity: &[PathBuf],
    wal_blocks: u64,
    key_file: Option<&Path>,
    stripe_args: &stripes::StripeArgs,
    force: bool,
) -> Result<(), String> {
    let mut all: Vec<&Path> = vec![perf];
    all.extend(capacity.iter().map(PathBuf::as_path));
    for (i, a) in all.iter().enumerate() {
        if all[..i].iter().any(|b| b == a) {
            return Err(format!("{} named twice", a.display()));
        }
    }
    if !capacity.is_empty() && capacity.len() < stripes::MIN_MEMBERS {
        return Err(format!(
            "{} capacity device{} would hold nothing: the capacity tier stores \
             erasure-coded stripes (at least 2 data + 1 parity chunks), which need at \
             least {} capacity devices; name none for a volume of the performance \
             device alone",
            capacity.len(),
            if capacity.len() == 1 { "" } else { "s" },
            stripes::MIN_MEMBERS
        ));
    }
    let nr_devices = u32::try_from(all.len()).map_err(|_| "too many devices".to_string())?;
    // The key is read and checked before any device is touched.
    let encryption = new_encryption(key_file)?;
    let volume_uuid = random_uuid()?;
    // Every device is opened and the stripe geometry checked before any
    // device is written.
    let mut files = Vec::with_capacity(all.len());
    let mut signatures = Vec::new();
    for path in &all {
        let mut f = open_for_format(path)?;
        let nr_blocks = device_blocks(&mut f, path)?;
        let head = signature::read_head(&mut f).map_err(|e| format!("{}: {e}", path.display()))?;
        for what in signature::describe(&head) {
            signatures.push(format!("{}: carries {what}", path.display()));
        }
        files.push((f, nr_blocks));
    }
    if !signatures.is_empty() {
        if !force {
            return Err(format!(
                "{}\nnothing was written; `vtierctl format --force` overwrites {}",
                signatures.join("\n"),
                if signatures.len() == 1 { "it" } else { "them" }
            ));
        }
        for s in &signatures {
            println!("{s}: overwritten (--force)");
        }
    }
    let sizes: Vec<u64> = files[1..].iter().map(|&(_, b)| b).collect();
    let stripe_plan = stripes::plan(&sizes, stripe_args)?;
    let mut capacity_devs = Vec::with_capacity(sizes.len());
    let mut perf_sb = None;
    for (index, (path, (f, nr_blocks))) in all.iter().zip(files).enumerate() {
        let opts = FormatOptions {
            volume_uuid,
            device_uuid: random_uuid()?,
            nr_devices,
            wal_blocks,
            encryption,
        };
        let mut dev = FileDevice::with_blocks(f, nr_blocks);
        let sb = if index == 0 {
            // The performance device gets the empty LBA map too.
            LbaMap::format(&mut dev, &opts).map(|mut m| m.superblock())
        } else {
            MetaDevice::format_capacity(&mut dev, &opts, index as u32)
        }
        .map_err(|e| {
            format!(
                "{}: cannot format ({nr_blocks} blocks): {e}",
                path.display()
            )
        })?;
        println!(
            "{}: formatted as {}, device {index} of {nr_devices}, {nr_blocks} blocks",
            path.display(),
            member_name(sb.device_index)
        );
        if index == 0 {
            perf_sb = Some(sb);
        } else {
            stripes::check_data_start(stripe_plan.as_ref(), index - 1, path, &sb)?;
            capacity_devs.push(dev);
        }
    }
    let geometry = match &stripe_plan {
        Some(plan) => {
            let g = stripes::format_store(plan, capacity_devs, volume_uuid)?;
            println!("{}", stripes::describe(&g));
            Some(g)
        }
        // No capacity devices (one or two were refused above).
        None => {
            println!("capacity tier: none");
            None
        }
    };
    println!("volume set {}", describe(&encryption));
    if let Some(sb) = perf_sb {
        let blocks = vtier_engine::data::store::capacity(&sb, geometry.as_ref());
        println!(
            "exported size: {blocks} blocks of 4096 bytes ({} MiB), {}",
            (blocks * 4096) >> 20,
            if geometry.is_some() {
                "what the capacity tier's stripes hold, less one stripe in eight kept for compaction"
            } else {
                "two fifths of the performance device's data area"
            }
        );
    }
    Ok(())
}

/// Opens a device to format it: a block device exclusively (`O_EXCL`), so
/// that one mounted, held by a running volume or by device-mapper or md is
/// refused by the kernel instead of overwritten under its user.
fn open_for_format(path: &Path) -> Result<File, String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let block_device = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .file_type()
        .is_block_device();
    let mut opts = OpenOptions::new();
    opts.read(true).write(true);
    if block_device {
        opts.custom_flags(libc::O_EXCL);
    }
    opts.open(path).map_err(|e| {
        if block_device && e.raw_os_error() == Some(libc::EBUSY) {
            format!(
                "{}: in use (mounted, a member of a running volume, or held by \
                 another driver): {e}",
                path.display()
            )
        } else {
            format!("{}: {e}", path.display())
        }
    })
}

/// fsck's exit status: 0 clean, 1 errors found (and printed), 2 could not
/// look.
fn fsck_status(r: Result<bool, String>) -> ExitCode {
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vtierctl: {e}");
            ExitCode::from(2)
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Both superblock copies of `path`, each with its block number, as they
/// decode.
fn superblock_copies(
    path: &Path,
) -> Result<Vec<(u64, vtier_engine::error::Result<Superblock>)>, String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut copies = Vec::new();
    for block in COPIES {
        let mut buf = [0u8; BLOCK_SIZE];
        f.seek(SeekFrom::Start(block * BLOCK_SIZE as u64))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        copies.push((block, Superblock::decode(&buf, block)));
    }
    Ok(copies)
}

/// Reads both superblock copies of `path`; prints one line per copy if
/// `print`. Returns the one that mounts.
fn read_superblock(path: &Path, print: bool) -> Result<Superblock, String> {
    let mut results = Vec::new();
    for (block, r) in superblock_copies(path)? {
        match &r {
            Ok(sb) if print => println!(
                "copy {block}: generation {} {:?} device {} of {}, {} blocks, volume {}, \
                 WAL {}+{} tail {} seq {}, map copies {:?} ({} blocks each), \
                 {} free, data from block {}, {}",
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
                sb.data_start,
                describe(&sb.encryption)
            ),
            Ok(_) => {}
            Err(e) if print => println!("copy {block}: {e}"),
            Err(_) => {}
        }
        results.push(r);
    }
    let b = results.pop().unwrap_or(Err(Error::Io));
    let a = results.pop().unwrap_or(Err(Error::Io));
    Superblock::choose(a, b).map_err(|e| format!("{}: no valid superblock: {e}", path.display()))
}

fn show(path: &Path) -> Result<(), String> {
    let sb = read_superblock(path, true)?;
    println!("mounts generation {}", sb.generation);
    Ok(())
}

/// A UUID as blkid and udev spell it: 8-4-4-4-12 lowercase hex digits.
fn uuid_string(u: &[u8; 16]) -> String {
    let h = hex(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// What device `index` of a set is, as the module's `status` names it:
/// the performance device, or capacity member `index - 1` (`member N`
/// there, and the N that configfs `replace` takes).
fn member_name(index: u32) -> String {
    match index.checked_sub(1) {
        None => "the performance device".to_string(),
        Some(m) => format!("capacity member {m}"),
    }
}

/// The newest valid superblock copy of `path`, None when neither copy is
/// one (a device shorter than the superblocks, as udev probes every block
/// device, reads as zeroes past its end: no member), Err when `path`
/// cannot be read.
fn member_superblock(path: &Path) -> Result<Option<Superblock>, String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let head = signature::read_head(&mut f).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(COPIES
        .iter()
        .filter_map(|&block| {
            let at = block as usize * BLOCK_SIZE;
            Superblock::decode(&head[at..at + BLOCK_SIZE], block).ok()
        })
        .max_by_key(|sb| sb.generation))
}

/// `vtierctl probe`: Ok(true) and the member's identity printed when
/// `path` holds a valid vtier superblock (either copy), Ok(false) and a
/// note on standard error when it holds none, Err when it cannot be read.
fn probe(path: &Path, export: bool) -> Result<bool, String> {
    let Some(sb) = member_superblock(path)? else {
        eprintln!("{}: no valid vtier superblock", path.display());
        return Ok(false);
    };
    let role = match sb.role {
        vtier_engine::format::superblock::Role::Performance => "performance",
        vtier_engine::format::superblock::Role::Capacity => "capacity",
    };
    let encrypted = sb.encryption != Encryption::None;
    let (volume, device) = (uuid_string(&sb.volume_uuid), uuid_string(&sb.device_uuid));
    if export {
        println!("ID_FS_TYPE=vtier_member");
        println!("ID_FS_USAGE=raid");
        println!(
            "ID_FS_VERSION={}",
            vtier_engine::format::superblock::FORMAT_VERSION
        );
        println!("ID_FS_UUID={volume}");
        println!("ID_FS_UUID_ENC={volume}");
        println!("ID_FS_UUID_SUB={device}");
        println!("ID_FS_UUID_SUB_ENC={device}");
        println!("VTIER_ROLE={role}");
        println!("VTIER_DEVICE_INDEX={}", sb.device_index);
        println!("VTIER_NR_DEVICES={}", sb.nr_devices);
        println!("VTIER_ENCRYPTED={}", u8::from(encrypted));
    } else {
        println!(
            "{}: vtier {}, device {} of {} of volume {volume}{}",
            path.display(),
            member_name(sb.device_index),
            sb.device_index,
            sb.nr_devices,
            if encrypted { ", encrypted" } else { "" }
        );
    }
    Ok(true)
}

fn check_key(path: &Path, key_file: &Path) -> Result<(), String> {
    let sb = read_superblock(path, false)?;
    if sb.encryption == Encryption::None {
        return Err(format!("{}: the volume is not encrypted", path.display()));
    }
    matching_key(path, &sb, key_file)?;
    println!(
        "{}: the key matches the volume's key check value",
        path.display()
    );
    Ok(())
}

/// The key in `key_file` if it matches the key check value of `sb`, the
/// superblock of `path` (an encrypted volume's member).
fn matching_key(
    path: &Path,
    sb: &Superblock,
    key_file: &Path,
) -> Result<zeroize::Zeroizing<vtier_engine::crypt::cipher::XtsKey>, String> {
    let key = key::read_key_file(key_file)?;
    let cipher = SoftXts::new(&key).map_err(|e| format!("key file {}: {e}", key_file.display()))?;
    match sb.encryption.check_key(&cipher) {
        Ok(()) => Ok(key),
        Err(Error::WrongKey) => Err(format!(
            "{}: wrong key: it does not match the volume's key check value",
            path.display()
        )),
        Err(e) => Err(format!("{}: key check failed: {e}", path.display())),
    }
}
