// SPDX-License-Identifier: GPL-2.0

//! configfs control: `/sys/kernel/config/vtier/<name>/`.
//!
//! `mkdir` makes a device configuration with these attributes:
//!
//! | attribute | access | meaning |
//! |---|---|---|
//! | `perf_device` | rw | path of the performance-tier block device |
//! | `capacity_devices` | rw | white-space separated paths of the capacity devices |
//! | `power` | rw | `1` brings the device up as `/dev/vtierN`, `0` takes it down |
//! | `disk` | ro | `vtierN` while powered, empty otherwise |
//! | `key` | rw | key of an encrypted volume, 128 hex digits (AES-256-XTS); reads only `set` or `unset`; an empty write clears it |
//! | `key_name` | rw | or: the name of a `logon` key in the kernel keyring holding the 64-byte key (e.g. `vtier:v0`), looked up at `power=1`; reads the name; an empty write clears it |
//! | `status` | ro | while powered: the volume's counters (requests, data log, cipher, destage) and its capacity tier's state (geometry, health, every member's state and error counts) |
//! | `scrub` | rw | while powered: `N` checks the next N stripes (chunk checksums, parity) and repairs what it can; reads `next/total` (next is total once a pass has ended; the next write starts another), `none` without a capacity tier; the counts are in `status` |
//! | `rebuild` | rw | while powered: `N` rebuilds the next N stripes onto a replacement device; reads `member done/total`, or `none` (the caller paces it: throttling) |
//! | `replace` | rw | while powered: `INDEX PATH` puts the block device PATH in the place of failed capacity member INDEX (0-based, as `status` numbers them: the capacity device named INDEX+1st in `capacity_devices`), which then needs `rebuild`; `capacity_devices` follows |
//! | `destage` | rw | reads the stripes and blocks destaged since `power=1`; while powered: `N` moves up to N stripes of data from the performance tier to the capacity tier now (`EOPNOTSUPP` without erasure-coded stripes) |
//! | `destage_watermarks` | rw | `HIGH LOW`: with a capacity tier, data moves to it in the background once more than HIGH percent of the performance tier is in use, until less than LOW percent is (default `60 40`; `0 0` turns it off; `LOW < HIGH <= 100`); may change while powered |
//!
//! Device attributes cannot change while powered (`EBUSY`). Paths are checked
//! when written (`ENOENT`, `ENOTBLK`, `ENAMETOOLONG`, `EINVAL` for a device
//! named twice) and again when the device is opened at `power=1`. `rmdir`
//! takes a powered device down first; `power=0` is refused (`EBUSY`) while
//! the disk is open or mounted.
//!
//! # Keys
//!
//! An encrypted volume needs its key at `power=1`, from exactly one of `key`
//! and `key_name` (both set is `EINVAL`). A `key_name` is resolved when
//! `power=1` is written, with `request_key` in the keyrings of the writing
//! process (`keyctl padd logon vtier:v0 @u < key.bin`): `ENOKEY` if there
//! is no such key, `EINVAL` if its payload is not 64 bytes. The payload is
//! copied into a [`KeyBuf`] that lives only while the device comes up (the
//! cipher keeps its own copy, wiped when it is freed); the keyring stays
//! the place the key is kept. No attribute ever shows key material, and no
//! message prints it.
//!
//! # Locking
//!
//! One mutex per device, [`DeviceConfig::inner`]; every check and update of
//! an attribute happens under a single guard, so `power` cannot race with a
//! path change. It is the first lock of a device's lock order, which
//! `volume.rs` states: the volume's operations take the store's lock under
//! it.

use core::ffi::c_void;

use kernel::configfs::{self, AttributeOperations};
use kernel::configfs_attrs;
use kernel::fmt::Write as _;
use kernel::new_mutex;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::str::{kstrtobool_bytes, BStr, CString, Formatter};
use kernel::sync::Mutex;

use crate::bdev;
use crate::crypto::KeyBuf;
use crate::crypt::encryption::parse_key_hex;
use crate::data::store::Watermarks;
use crate::volume::{Config, Member, Volume, MAX_CAPACITY_DEVICES};
use crate::path::{tokens, DevPath};

/// The subsystem: `/sys/kernel/config/vtier`.
pub(crate) fn subsystem() -> impl PinInit<configfs::Subsystem<Root>, Error> {
    let item_type = configfs_attrs! {
        container: configfs::Subsystem<Root>,
        data: Root,
        child: DeviceConfig,
        attributes: [
            features: 0,
        ],
    };
    configfs::Subsystem::new(c"vtier", item_type, try_pin_init!(Root {}))
}

/// Data of the subsystem's root directory.
#[pin_data]
pub(crate) struct Root {}

#[vtable]
impl AttributeOperations<0> for Root {
    type Data = Root;

    fn show(_this: &Root, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut w = Formatter::new(page);
        w.write_fmt(fmt!(
            "perf_device,capacity_devices,power,disk,key,key_name format={}\n",
            crate::format::superblock::FORMAT_VERSION
        ))?;
        Ok(w.bytes_written())
    }
}

#[vtable]
impl configfs::GroupOperations for Root {
    type Child = DeviceConfig;

    fn make_group(&self, name: &CStr) -> Result<impl PinInit<configfs::Group<DeviceConfig>, Error>> {
        let item_type = configfs_attrs! {
            container: configfs::Group<DeviceConfig>,
            data: DeviceConfig,
            attributes: [
                power: 0,
                perf_device: 1,
                capacity_devices: 2,
                disk: 3,
                key: 4,
                key_name: 5,
                status: 6,
                destage: 7,
                scrub: 8,
                rebuild: 9,
                replace: 10,
                destage_watermarks: 11,
            ],
        };
        let dir_name: CString = name.try_into()?;
        let name: CString = name.try_into()?;
        Ok(configfs::Group::new(
            dir_name,
            item_type,
            try_pin_init!(DeviceConfig {
                name,
                inner <- new_mutex!(Inner { config: Config::default(), device: None, key_name: None }),
            }),
        ))
    }
}

/// One device's configuration and, while powered, the device.
#[pin_data]
pub(crate) struct DeviceConfig {
    /// The configfs name, for messages (fixed at `mkdir`).
    name: CString,
    /// The configuration and the powered volume; see [`Inner`].
    #[pin]
    inner: Mutex<Inner>,
}

/// What [`DeviceConfig::inner`] protects: the device's configuration and,
/// while it is powered, its [`Volume`].
///
/// Taken by every attribute access that reads or changes them, once per
/// access, and held from its first check to its last update (some
/// `store`s parse their value before taking it). A `store` that brings the
/// volume up or down, or runs one of its operations, holds it throughout,
/// also while a kworker does the work (power-on and the volume's deep
/// operations run on a fresh stack); the volume's store lock is taken
/// under it, never the other way round. Not taken: when the directory is
/// removed (`rmdir`) and configfs runs no more accesses of it, `Inner` is
/// dropped, which takes a powered volume down.
struct Inner {
    config: Config,
    device: Option<Volume>,
    /// `key_name`: a `logon` key to look up at `power=1`.
    key_name: Option<CString>,
}

/// Longest `key_name` accepted.
const MAX_KEY_NAME: usize = 255;

/// Which path attribute a write is for.
#[derive(Copy, Clone, PartialEq)]
enum PathAttr {
    Perf,
    Capacity,
}

impl PathAttr {
    fn name(self) -> &'static str {
        match self {
            PathAttr::Perf => "perf_device",
            PathAttr::Capacity => "capacity_devices",
        }
    }
}

impl DeviceConfig {
    fn name(&self) -> &BStr {
        BStr::from_bytes(self.name.to_bytes())
    }

    /// The claim holder for this device's members: its own address, stable
    /// because configfs groups are pinned.
    fn holder(&self) -> *mut c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }

    fn reject(&self, attr: PathAttr, err: Error, why: core::fmt::Arguments<'_>) -> Error {
        pr_err!("{}: {}: {} ({})\n", self.name(), attr.name(), why, err.to_errno());
        err
    }

    /// Parses, checks and stores a write to a path attribute.
    fn store_paths(&self, attr: PathAttr, page: &[u8]) -> Result {
        // configfs truncates writes to a page; a full page may be truncated.
        if page.len() >= PAGE_SIZE - 1 {
            return Err(self.reject(attr, ENAMETOOLONG, fmt!("value too long")));
        }
        let mut inner = self.inner.lock();
        if inner.device.is_some() {
            return Err(self.reject(attr, EBUSY, fmt!("cannot change while powered")));
        }
        let max = if attr == PathAttr::Perf { 1 } else { MAX_CAPACITY_DEVICES };
        let mut members: KVec<Member> = KVec::new();
        for token in tokens(page) {
            if members.len() == max {
                return Err(self.reject(attr, EINVAL, fmt!("more than {} devices", max)));
            }
            let path = DevPath::parse(token).map_err(|e| {
                self.reject(attr, e, fmt!("{}: not an absolute path of at most {} bytes", BStr::from_bytes(token), crate::path::MAX_PATH_LEN))
            })?;
            let dev = bdev::lookup(&path).map_err(|e| {
                let why = if e == ENOTBLK { "not a block device" } else { "no such device" };
                self.reject(attr, e, fmt!("{}: {}", path.as_bstr(), why))
            })?;
            let other = match attr {
                PathAttr::Perf => &inner.config.capacity[..],
                PathAttr::Capacity => inner.config.perf.as_slice(),
            };
            if Iterator::chain(members.iter(), other.iter()).any(|m| m.dev == dev) {
                return Err(self.reject(attr, EINVAL, fmt!("{}: named twice", path.as_bstr())));
            }
            members.push(Member { path, dev }, GFP_KERNEL)?;
        }
        match attr {
            PathAttr::Perf => inner.config.perf = members.pop(),
            PathAttr::Capacity => inner.config.capacity = members,
        }
        Ok(())
    }

    /// The key from the keyring if `key_name` is set (`None` if not), after
    /// checking that `key` is not set too. Every failure is logged once.
    fn keyring_key(&self, inner: &Inner) -> Result<Option<KeyBuf>> {
        let Some(key_name) = inner.key_name.as_ref() else {
            return Ok(None);
        };
        if inner.config.key.is_some() {
            pr_err!("{}: power: both key and key_name are set; clear one ({})\n", self.name(), EINVAL.to_errno());
            return Err(EINVAL);
        }
        let shown = BStr::from_bytes(key_name.to_bytes());
        KeyBuf::from_logon_key(key_name).map(Some).map_err(|(e, found_len)| {
            let why = match e {
                e if e == ENOKEY => "no such logon key in the keyrings of the writer of power",
                e if e == EINVAL && found_len != 0 => {
                    pr_err!(
                        "{}: key_name {}: the key's payload is {} bytes, expected {} ({})\n",
                        self.name(),
                        shown,
                        found_len,
                        crate::crypt::cipher::XTS_KEY_SIZE,
                        e.to_errno()
                    );
                    return e;
                }
                e if e == EINVAL => "not the name of a logon key (prefix:name)",
                e if e == EKEYREVOKED => "the key was revoked",
                e if e == EKEYEXPIRED => "the key has expired",
                e if e == EACCES => "no permission to search for the key",
                _ => "cannot read the key",
            };
            pr_err!("{}: key_name {}: {} ({})\n", self.name(), shown, why, e.to_errno());
            e
        })
    }

    fn show_paths(&self, attr: PathAttr, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let inner = self.inner.lock();
        let members = match attr {
            PathAttr::Perf => inner.config.perf.as_slice(),
            PathAttr::Capacity => &inner.config.capacity[..],
        };
        let mut w = Formatter::new(page);
        for (i, m) in members.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            w.write_fmt(fmt!("{}{}", sep, m.path.as_bstr()))?;
        }
        w.write_str("\n")?;
        Ok(w.bytes_written())
    }
}

#[vtable]
impl AttributeOperations<0> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let powered = this.inner.lock().device.is_some();
        let mut w = Formatter::new(page);
        w.write_str(if powered { "1\n" } else { "0\n" })?;
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let on = kstrtobool_bytes(page).inspect_err(|e| {
            pr_err!("{}: power: expected 0 or 1 ({})\n", this.name(), e.to_errno());
        })?;
        let mut inner = this.inner.lock();
        match (inner.device.is_some(), on) {
            (false, true) => {
                // A key from the keyring stands in for `key` while the
                // device comes up, and is wiped (dropped) right after.
                let keyring_key = this.keyring_key(&inner)?;
                let from_keyring = keyring_key.is_some();
                if from_keyring {
                    inner.config.key = keyring_key;
                }
                let dev = Volume::power_on(this.name(), &inner.config, this.holder());
                if from_keyring {
                    inner.config.key = None;
                }
                inner.device = Some(dev?);
            }
            (true, false) => {
                // Tearing down a mounted disk would throw away whatever
                // its user has not written yet: refuse, as md does.
                if inner.device.as_ref().is_some_and(Volume::is_open) {
                    pr_err!("{}: power: disk in use, close or unmount it first\n", this.name());
                    return Err(EBUSY);
                }
                drop(inner.device.take());
            }
            _ => {}
        }
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<1> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        this.show_paths(PathAttr::Perf, page)
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        this.store_paths(PathAttr::Perf, page)
    }
}

#[vtable]
impl AttributeOperations<2> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        this.show_paths(PathAttr::Capacity, page)
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        this.store_paths(PathAttr::Capacity, page)
    }
}

#[vtable]
impl AttributeOperations<3> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let index = this.inner.lock().device.as_ref().map(Volume::index);
        let mut w = Formatter::new(page);
        match index {
            Some(i) => w.write_fmt(fmt!("vtier{}\n", i))?,
            None => w.write_str("\n")?,
        }
        Ok(w.bytes_written())
    }
}

#[vtable]
impl AttributeOperations<4> for DeviceConfig {
    type Data = DeviceConfig;

    /// Never shows the key, only whether one is set.
    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let set = this.inner.lock().config.key.is_some();
        let mut w = Formatter::new(page);
        w.write_str(if set { "set\n" } else { "unset\n" })?;
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        // Parsed before taking the lock, straight into memory that is wiped
        // when dropped (as is the key this one replaces).
        let key = if page.strip_suffix(b"\n").unwrap_or(page).is_empty() {
            None
        } else {
            let mut key = KeyBuf::new()?;
            parse_key_hex(page, key.key_mut()).map_err(|_| {
                pr_err!("{}: key: expected 128 hex digits\n", this.name());
                EINVAL
            })?;
            Some(key)
        };
        let mut inner = this.inner.lock();
        if inner.device.is_some() {
            pr_err!("{}: key: cannot change while powered\n", this.name());
            return Err(EBUSY);
        }
        inner.config.key = key;
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<5> for DeviceConfig {
    type Data = DeviceConfig;

    /// The name (not secret), or an empty line.
    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let inner = this.inner.lock();
        let mut w = Formatter::new(page);
        if let Some(name) = inner.key_name.as_ref() {
            w.write_fmt(fmt!("{}", BStr::from_bytes(name.to_bytes())))?;
        }
        w.write_str("\n")?;
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let value = page.strip_suffix(b"\n").unwrap_or(page);
        let key_name = if value.is_empty() {
            None
        } else {
            // What request_key takes for a logon key: printable, no
            // blanks, `prefix:name`.
            if value.len() > MAX_KEY_NAME
                || !value.iter().all(u8::is_ascii_graphic)
                || !value.contains(&b':')
                || value.first() == Some(&b':')
            {
                pr_err!(
                    "{}: key_name: expected prefix:name, at most {} printable characters without blanks\n",
                    this.name(),
                    MAX_KEY_NAME
                );
                return Err(EINVAL);
            }
            Some(CString::try_from_fmt(fmt!("{}", BStr::from_bytes(value)))?)
        };
        let mut inner = this.inner.lock();
        if inner.device.is_some() {
            pr_err!("{}: key_name: cannot change while powered\n", this.name());
            return Err(EBUSY);
        }
        inner.key_name = key_name;
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<6> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let inner = this.inner.lock();
        let mut w = Formatter::new(page);
        match &inner.device {
            Some(v) => v.write_status(&mut w)?,
            None => w.write_str("not powered\n")?,
        }
        Ok(w.bytes_written())
    }
}

#[vtable]
impl AttributeOperations<7> for DeviceConfig {
    type Data = DeviceConfig;

    /// Stripes and blocks destaged since `power=1`.
    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let inner = this.inner.lock();
        let mut w = Formatter::new(page);
        match inner.device.as_ref().and_then(|v| v.stats()) {
            Some(s) => w.write_fmt(fmt!("{} stripes {} blocks\n", s.destaged_stripes, s.destaged_blocks))?,
            None => w.write_str("\n")?,
        }
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let value = page.strip_suffix(b"\n").unwrap_or(page);
        let stripes = core::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                pr_err!("{}: destage: expected a number of stripes, 1 or more\n", this.name());
                EINVAL
            })?;
        let inner = this.inner.lock();
        let Some(v) = &inner.device else {
            pr_err!("{}: destage: not powered\n", this.name());
            return Err(EINVAL);
        };
        match v.destage(stripes) {
            Ok(blocks) => {
                pr_info!("{}: destage: {} blocks moved to the capacity tier\n", this.name(), blocks);
                Ok(())
            }
            Err(e) => {
                pr_err!("{}: destage failed ({})\n", this.name(), e.to_errno());
                Err(e)
            }
        }
    }
}

/// Parses a positive count of stripes written to `attr`.
#[vtable]
impl AttributeOperations<11> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let w = this.inner.lock().config.watermarks;
        let mut f = Formatter::new(page);
        f.write_fmt(fmt!("{} {}\n", w.high, w.low))?;
        Ok(f.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let bad = || {
            pr_err!("{}: destage_watermarks: expected HIGH LOW, 0 <= LOW < HIGH <= 100 (or 0 0)\n", this.name());
            EINVAL
        };
        let mut it = tokens(page);
        let mut number = || {
            it.next()
                .and_then(|t| core::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<u8>().ok())
                .ok_or_else(bad)
        };
        let (high, low) = (number()?, number()?);
        if it.next().is_some() {
            return Err(bad());
        }
        let w = Watermarks::new(high, low).map_err(|_| bad())?;
        let mut inner = this.inner.lock();
        if let Some(v) = inner.device.as_ref() {
            v.set_watermarks(w)?;
        }
        inner.config.watermarks = w;
        Ok(())
    }
}

fn parse_count(this: &DeviceConfig, attr: &str, page: &[u8]) -> Result<u64> {
    let value = page.strip_suffix(b"\n").unwrap_or(page);
    core::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            pr_err!("{}: {}: expected a number of stripes, 1 or more\n", this.name(), attr);
            EINVAL
        })
}

#[vtable]
impl AttributeOperations<8> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let inner = this.inner.lock();
        let mut w = Formatter::new(page);
        match inner.device.as_ref().map(|v| v.scrub_position()) {
            Some(Some((next, total))) => w.write_fmt(fmt!("{}/{}\n", next, total))?,
            Some(None) => w.write_str("none\n")?,
            None => w.write_str("\n")?,
        }
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let n = parse_count(this, "scrub", page)?;
        let inner = this.inner.lock();
        let v = inner.device.as_ref().ok_or(EINVAL)?;
        let (next, total) = v.scrub(n).inspect_err(|e| {
            pr_err!("{}: scrub failed ({})\n", this.name(), e.to_errno());
        })?;
        pr_info!("{}: scrub: next stripe {} of {}\n", this.name(), next, total);
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<9> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let inner = this.inner.lock();
        let mut w = Formatter::new(page);
        match inner.device.as_ref().and_then(|v| v.rebuild_progress()) {
            Some((m, done, total)) => w.write_fmt(fmt!("member {} {}/{}\n", m, done, total))?,
            None => w.write_str("none\n")?,
        }
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let n = parse_count(this, "rebuild", page)?;
        let inner = this.inner.lock();
        let v = inner.device.as_ref().ok_or(EINVAL)?;
        let (done, total) = v.rebuild(n).inspect_err(|e| {
            pr_err!("{}: rebuild failed ({})\n", this.name(), e.to_errno());
        })?;
        if done == total {
            pr_info!("{}: rebuild complete\n", this.name());
        }
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<10> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(_this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut w = Formatter::new(page);
        w.write_str("\n")?;
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let bad = || {
            pr_err!("{}: replace: expected INDEX PATH\n", this.name());
            EINVAL
        };
        let mut it = tokens(page);
        let index = it
            .next()
            .and_then(|t| core::str::from_utf8(t).ok())
            .and_then(|t| t.parse::<usize>().ok())
            .ok_or_else(bad)?;
        let token = it.next().ok_or_else(bad)?;
        if it.next().is_some() {
            return Err(bad());
        }
        let path = DevPath::parse(token).map_err(|_| bad())?;
        let dev = bdev::lookup(&path).inspect_err(|e| {
            pr_err!("{}: replace: {}: no such block device ({})\n", this.name(), path.as_bstr(), e.to_errno());
        })?;
        let mut inner = this.inner.lock();
        if index >= inner.config.capacity.len() {
            pr_err!("{}: replace: there is no capacity member {}\n", this.name(), index);
            return Err(EINVAL);
        }
        if Iterator::chain(inner.config.perf.iter(), inner.config.capacity.iter()).any(|m| m.dev == dev) {
            pr_err!("{}: replace: {} is already a member\n", this.name(), path.as_bstr());
            return Err(EINVAL);
        }
        let member = Member { path, dev };
        let v = inner.device.as_ref().ok_or_else(|| {
            pr_err!("{}: replace: not powered\n", this.name());
            EINVAL
        })?;
        v.replace(index, &member, this.holder()).inspect_err(|e| {
            pr_err!("{}: replace failed ({})\n", this.name(), e.to_errno());
        })?;
        pr_info!("{}: capacity member {} replaced by {}; rebuild it with `rebuild`\n", this.name(), index, member.path.as_bstr());
        inner.config.capacity[index] = member;
        Ok(())
    }
}
