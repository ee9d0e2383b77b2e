// SPDX-License-Identifier: GPL-2.0

//! `vtierctl assemble` and `vtierctl stop`: a volume brought up and down
//! through configfs without writing its attributes by hand.
//!
//! `assemble` reads the superblock of every device it is given (or, with
//! `--scan`, of every block device in `/sys/class/block`), keeps the
//! members of one volume, places them by the device index their
//! superblocks record (the performance device is index 0, the capacity
//! devices follow in format order, which configfs needs), checks the key
//! of an encrypted volume against its key check value, and only then
//! creates the configfs directory and writes `perf_device`,
//! `capacity_devices`, the key and `power`. Everything that can be found
//! wrong is found before configfs is touched; a write the kernel refuses
//! removes the directory again, so a failed assemble leaves nothing
//! behind. Nothing is written to the member devices.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::format::superblock::{Role, Superblock};
use zeroize::Zeroizing;

/// Where the module's configfs subsystem lives.
pub const CONFIGFS: &str = "/sys/kernel/config/vtier";

/// How the key of an encrypted volume reaches the module.
pub enum KeySource<'a> {
    /// None given (fine for a volume that is not encrypted).
    None,
    /// A key file, checked here and written to the `key` attribute.
    File(&'a Path),
    /// The description of a `logon` key in the kernel keyring, written to
    /// `key_name` (the module reads the keyring at `power=1`).
    Name(&'a str),
}

/// Where `assemble` and `stop` look up volumes by name when no device is
/// named.
pub const TAB: &str = "/etc/vtiertab";

/// One line of the volume table: `NAME UUID KEY`.
pub struct TabEntry {
    pub name: String,
    pub uuid: String,
    pub key: TabKey,
}

/// The KEY field of a volume table line.
pub enum TabKey {
    /// `none`: the volume is not encrypted.
    None,
    /// An absolute path: a key file.
    File(PathBuf),
    /// `keyring:DESC`: a logon key in the kernel keyring.
    Name(String),
}

impl TabEntry {
    /// The key source this entry names.
    pub fn key_source(&self) -> KeySource<'_> {
        match &self.key {
            TabKey::None => KeySource::None,
            TabKey::File(p) => KeySource::File(p),
            TabKey::Name(n) => KeySource::Name(n),
        }
    }
}

/// Reads the volume table `path`: one volume per line, `NAME UUID KEY`
/// separated by blanks, where KEY is `none`, `keyring:DESC` or the
/// absolute path of a key file; `#` starts a comment. A line that is not
/// one, or a name given twice, is an error naming the line.
pub fn read_tab(path: &Path) -> Result<Vec<TabEntry>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut entries: Vec<TabEntry> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{}:{}", path.display(), n + 1);
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, uuid, key] = fields[..] else {
            return Err(format!(
                "{at}: expected NAME UUID KEY (KEY: none, keyring:DESC or /path/to/key), got {} fields",
                fields.len()
            ));
        };
        check_name(name).map_err(|e| format!("{at}: {e}"))?;
        if parse_uuid(uuid).is_none() {
            return Err(format!("{at}: '{uuid}' is not a UUID"));
        }
        let key = match key {
            "none" => TabKey::None,
            k if k.starts_with("keyring:") && k.len() > "keyring:".len() => {
                TabKey::Name(k["keyring:".len()..].to_string())
            }
            k if k.starts_with('/') => TabKey::File(PathBuf::from(k)),
            k => {
                return Err(format!(
                    "{at}: key '{k}': expected none, keyring:DESC or an absolute path"
                ))
            }
        };
        if entries.iter().any(|e| e.name == name) {
            return Err(format!("{at}: volume {name} named twice"));
        }
        entries.push(TabEntry {
            name: name.to_string(),
            uuid: uuid.to_ascii_lowercase(),
            key,
        });
    }
    Ok(entries)
}

/// The entry for `name` in the table `path`.
pub fn tab_entry(path: &Path, name: &str) -> Result<TabEntry, String> {
    read_tab(path)?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| {
            format!(
                "{name}: not in {}; name its devices or use --scan",
                path.display()
            )
        })
}

/// Whether configfs holds volume `name`.
pub fn exists(name: &str) -> bool {
    Path::new(CONFIGFS).join(name).is_dir()
}

/// A UUID in either spelling (dashed or 32 hex digits, either case).
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    if digits.len() != 32 || (text.len() != 32 && text.len() != 36) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// A device that holds a valid vtier superblock.
struct Member {
    path: PathBuf,
    sb: Superblock,
}

/// `vtierctl assemble` as the command line gives it: volume `name` from
/// `devices`, or from every block device (`scan`, or no device named:
/// then the volume table gives UUID and key, unless the command line
/// does); with `all`, every volume of the table that configfs does not
/// hold yet. `tab` replaces /etc/vtiertab.
#[allow(clippy::too_many_arguments)]
pub fn command(
    name: Option<&str>,
    devices: &[PathBuf],
    scan: bool,
    all: bool,
    tab: Option<&Path>,
    uuid: Option<&str>,
    key: KeySource<'_>,
    dry_run: bool,
) -> Result<(), String> {
    let tab_path = tab.unwrap_or(Path::new(TAB));
    if all {
        let entries = read_tab(tab_path)?;
        let mut failed = 0;
        for e in &entries {
            if exists(&e.name) {
                println!("{}: assembled already", e.name);
                continue;
            }
            if let Err(why) = assemble(&e.name, &[], Some(&e.uuid), e.key_source(), dry_run) {
                eprintln!("vtierctl: {}", with_name(&e.name, &why));
                failed += 1;
            }
        }
        return match failed {
            0 => Ok(()),
            n => Err(format!(
                "{n} of the {} volumes of {} not assembled",
                entries.len(),
                tab_path.display()
            )),
        };
    }
    let name = name.ok_or("name a volume, or --all")?;
    let entry = if tab.is_some() || (devices.is_empty() && !scan) {
        Some(tab_entry(tab_path, name)?)
    } else {
        None
    };
    let uuid = uuid.or(entry.as_ref().map(|e| e.uuid.as_str()));
    let key = match (key, &entry) {
        (KeySource::None, Some(e)) => e.key_source(),
        (k, _) => k,
    };
    assemble(name, devices, uuid, key, dry_run)
}

/// `vtierctl stop` as the command line gives it: volume `name`, or with
/// `all` every volume of the table (`tab`, default /etc/vtiertab) that
/// configfs holds.
pub fn stop_command(name: Option<&str>, all: bool, tab: Option<&Path>) -> Result<(), String> {
    if !all {
        return stop(name.ok_or("name a volume, or --all")?);
    }
    let tab_path = tab.unwrap_or(Path::new(TAB));
    let entries = read_tab(tab_path)?;
    let mut failed = 0;
    for e in entries.iter().filter(|e| exists(&e.name)) {
        if let Err(why) = stop(&e.name) {
            eprintln!("vtierctl: {}", with_name(&e.name, &why));
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} volumes of {} not stopped", tab_path.display())),
    }
}

/// `why`, starting with the volume's name.
fn with_name(name: &str, why: &str) -> String {
    if why.starts_with(&format!("{name}: ")) {
        why.to_string()
    } else {
        format!("{name}: {why}")
    }
}

/// `vtierctl assemble`: brings up volume `name` from `devices` (every
/// block device when none is named), optionally only the volume `uuid`.
/// With `dry_run`, prints the configfs writes instead of making them.
pub fn assemble(
    name: &str,
    devices: &[PathBuf],
    uuid: Option<&str>,
    key: KeySource<'_>,
    dry_run: bool,
) -> Result<(), String> {
    check_name(name)?;
    let scan = devices.is_empty();
    let candidates = if scan {
        scan_block_devices()?
    } else {
        devices.to_vec()
    };
    let mut members = Vec::new();
    for path in &candidates {
        match crate::member_superblock(path) {
            Ok(Some(sb)) => members.push(Member {
                path: path.clone(),
                sb,
            }),
            // A named device must be a member; a scanned one may be
            // anything (or unreadable: a CD drive without a disc).
            Ok(None) if !scan => {
                return Err(format!(
                    "{}: no valid vtier superblock (not a member)",
                    path.display()
                ))
            }
            Err(e) if !scan => return Err(e),
            Ok(None) | Err(_) => {}
        }
    }
    let (volume, members) = one_volume(members, uuid)?;
    let ordered = order(&volume, members)?;
    let encrypted = ordered[0].sb.encryption != Encryption::None;
    let key_attr = key_attribute(&ordered[0], encrypted, &key)?;

    let perf = ordered[0].path.display().to_string();
    let capacity: Vec<String> = ordered[1..]
        .iter()
        .map(|m| m.path.display().to_string())
        .collect();
    let dir = Path::new(CONFIGFS).join(name);
    let mut writes: Vec<(&str, Zeroizing<String>)> = vec![
        ("perf_device", Zeroizing::new(perf)),
        ("capacity_devices", Zeroizing::new(capacity.join(" "))),
    ];
    if let Some(attr) = key_attr {
        writes.push(attr);
    }
    writes.push(("power", Zeroizing::new("1".to_string())));

    if dry_run {
        println!("mkdir {}", dir.display());
        for (attr, value) in &writes {
            let shown: &str = if *attr == "key" {
                "(the key: 128 hex digits)"
            } else {
                value.as_str()
            };
            println!("echo '{shown}' > {}", dir.join(attr).display());
        }
        return Ok(());
    }
    if !Path::new(CONFIGFS).is_dir() {
        return Err(format!(
            "{CONFIGFS} does not exist: load the module first (modprobe vtier or insmod vtier.ko; \
             configfs mounted on /sys/kernel/config)"
        ));
    }
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(format!(
                "{name}: a volume of this name exists already ({}); `vtierctl stop {name}` \
                 takes it down",
                dir.display()
            ))
        }
        Err(e) => return Err(format!("mkdir {}: {e}", dir.display())),
    }
    for (attr, value) in &writes {
        if let Err(e) = fs::write(dir.join(attr), value.as_bytes()) {
            let why = explain(attr, &e);
            // Leave nothing behind: the directory goes with what was
            // written into it (not powered, so rmdir only forgets it).
            let cleanup = match fs::remove_dir(&dir) {
                Ok(()) => String::new(),
                Err(r) => format!("; and rmdir {} failed: {r}", dir.display()),
            };
            return Err(format!("{name}: {attr}: {why}{cleanup}"));
        }
    }
    let disk = fs::read_to_string(dir.join("disk")).unwrap_or_default();
    let disk = disk.trim();
    println!(
        "{name}: /dev/{disk}, volume {}, performance {}, {}{}",
        crate::uuid_string(&volume),
        ordered[0].path.display(),
        if capacity.is_empty() {
            "no capacity tier".to_string()
        } else {
            format!("capacity {}", capacity.join(" "))
        },
        if encrypted { ", encrypted" } else { "" }
    );
    Ok(())
}

/// `vtierctl stop`: powers volume `name` off (a checkpoint: everything
/// written is on its members) and removes its configfs directory.
pub fn stop(name: &str) -> Result<(), String> {
    check_name(name)?;
    let dir = Path::new(CONFIGFS).join(name);
    if !dir.is_dir() {
        return Err(format!(
            "{name}: no such volume ({} does not exist)",
            dir.display()
        ));
    }
    let power = fs::read_to_string(dir.join("power")).map_err(|e| format!("{name}: power: {e}"))?;
    if power.trim() == "1" {
        fs::write(dir.join("power"), "0").map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                let disk = fs::read_to_string(dir.join("disk")).unwrap_or_default();
                format!(
                    "{name}: /dev/{} is open or mounted: unmount it (or close it) first",
                    disk.trim()
                )
            } else {
                format!("{name}: power=0: {e}; the kernel log names the cause")
            }
        })?;
    }
    fs::remove_dir(&dir).map_err(|e| format!("rmdir {}: {e}", dir.display()))?;
    println!("{name}: stopped");
    Ok(())
}

/// A volume name as configfs takes it: one path component.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.len() > 64 {
        return Err(format!(
            "volume name '{name}': expected 1 to 64 characters, no '/', not . or .."
        ));
    }
    Ok(())
}

/// Every block device the kernel lists (disks and partitions), as
/// `/dev/NAME`.
fn scan_block_devices() -> Result<Vec<PathBuf>, String> {
    let sys = Path::new("/sys/class/block");
    let entries = fs::read_dir(sys).map_err(|e| format!("{}: {e}", sys.display()))?;
    let mut devices: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| Path::new("/dev").join(e.file_name()))
        .filter(|p| p.exists())
        .collect();
    devices.sort();
    Ok(devices)
}

/// The members of the one volume among `members` (or of volume `uuid`).
fn one_volume(members: Vec<Member>, uuid: Option<&str>) -> Result<([u8; 16], Vec<Member>), String> {
    let mut volumes: BTreeMap<[u8; 16], Vec<Member>> = BTreeMap::new();
    for m in members {
        volumes.entry(m.sb.volume_uuid).or_default().push(m);
    }
    if let Some(text) = uuid {
        let want = parse_uuid(text).ok_or_else(|| format!("'{text}' is not a UUID"))?;
        return volumes
            .into_iter()
            .find(|(u, _)| *u == want)
            .ok_or_else(|| format!("no member of volume {} found", crate::uuid_string(&want)));
    }
    let count = volumes.len();
    let mut each = volumes.iter();
    match (each.next(), each.next()) {
        (None, _) => Err("no vtier member found".to_string()),
        (Some(_), None) => volumes
            .into_iter()
            .next()
            .ok_or_else(|| "no vtier member found".to_string()),
        _ => {
            let list: Vec<String> = volumes
                .iter()
                .map(|(u, ms)| {
                    let paths: Vec<String> =
                        ms.iter().map(|m| m.path.display().to_string()).collect();
                    format!("  {} ({})", crate::uuid_string(u), paths.join(" "))
                })
                .collect();
            Err(format!(
                "members of {count} volumes found; name one with --uuid:\n{}",
                list.join("\n")
            ))
        }
    }
}

/// The members of `volume` by device index: the performance device first,
/// then the capacity devices in format order. Every member must be there
/// once.
fn order(volume: &[u8; 16], members: Vec<Member>) -> Result<Vec<Member>, String> {
    let uuid = crate::uuid_string(volume);
    let nr = members.iter().map(|m| m.sb.nr_devices).max().unwrap_or(0);
    if let Some(m) = members.iter().find(|m| m.sb.nr_devices != nr) {
        return Err(format!(
            "{}: its superblock says volume {uuid} has {} devices, another member's says {nr}",
            m.path.display(),
            m.sb.nr_devices
        ));
    }
    let mut slots: Vec<Option<Member>> = (0..nr).map(|_| None).collect();
    for m in members {
        let i = m.sb.device_index;
        let Some(slot) = usize::try_from(i).ok().and_then(|i| slots.get_mut(i)) else {
            return Err(format!(
                "{}: device index {i} out of range for {nr} devices",
                m.path.display()
            ));
        };
        if let Some(other) = slot {
            return Err(format!(
                "{} and {} are both device {i} of volume {uuid} (a copy of a member?)",
                other.path.display(),
                m.path.display()
            ));
        }
        let want = if i == 0 {
            Role::Performance
        } else {
            Role::Capacity
        };
        if m.sb.role != want {
            return Err(format!(
                "{}: device {i} of volume {uuid} says it is a {:?} device",
                m.path.display(),
                m.sb.role
            ));
        }
        *slot = Some(m);
    }
    let missing: Vec<String> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| match i {
            0 => "0 (the performance device)".to_string(),
            i => format!("{i} (capacity member {})", i - 1),
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "volume {uuid}: device {} of {nr} not found; the module starts a volume only \
             with all of its members",
            missing.join(", ")
        ));
    }
    Ok(slots.into_iter().flatten().collect())
}

/// The key attribute to write for `perf` (the performance member) of a
/// volume, the key file checked against the key check value first.
fn key_attribute(
    perf: &Member,
    encrypted: bool,
    key: &KeySource<'_>,
) -> Result<Option<(&'static str, Zeroizing<String>)>, String> {
    match (encrypted, key) {
        (false, KeySource::None) => Ok(None),
        (false, _) => Err("the volume is not encrypted: no key is needed".to_string()),
        (true, KeySource::None) => Err(
            "the volume is encrypted: give its key with --key-file FILE or --key-name NAME \
             (a logon key in the kernel keyring)"
                .to_string(),
        ),
        (true, KeySource::Name(desc)) => {
            Ok(Some(("key_name", Zeroizing::new((*desc).to_string()))))
        }
        (true, KeySource::File(file)) => {
            warn_if_others_read(file);
            let key = crate::matching_key(&perf.path, &perf.sb, file)?;
            // Digit by digit into one buffer of its final size: no
            // temporary string holds a part of the key.
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut hex = Zeroizing::new(String::with_capacity(2 * key.len()));
            for &b in key.iter() {
                hex.push(char::from(DIGITS[usize::from(b >> 4)]));
                hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
            }
            Ok(Some(("key", hex)))
        }
    }
}

/// Warns (on standard error) when users other than the key file's owner
/// may read it, as cryptsetup does for crypttab key files.
fn warn_if_others_read(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(file) {
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o044 != 0 {
            eprintln!(
                "vtierctl: warning: key file {} can be read by other users (mode {mode:04o}); \
                 chmod 400 it",
                file.display()
            );
        }
    }
}

/// What an errno from a configfs write means here.
fn explain(attr: &str, e: &std::io::Error) -> String {
    let hint = match (attr, e.raw_os_error()) {
        ("power", Some(libc::EBUSY)) => {
            " (a member is in use: mounted, held by another driver or by a running volume; \
             or the device is open)"
        }
        ("power", Some(libc::EUCLEAN)) => " (a member's superblocks do not check out)",
        ("power", Some(libc::EKEYREJECTED)) => " (the key does not match)",
        ("power", Some(libc::ENOKEY)) => " (no such logon key in the keyrings)",
        _ => "",
    };
    format!("{e}{hint}; the kernel log names the cause")
}
