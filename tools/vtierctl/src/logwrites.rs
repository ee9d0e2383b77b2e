// SPDX-License-Identifier: GPL-2.0

//! Reading a dm-log-writes log: the kernel's `log-writes` device-mapper
//! target records every write its device completes, in the order the
//! writes became durable (a write is logged once a flush after it
//! completed, a FUA write when it completes), together with the flushes
//! and the marks sent to it with `dmsetup message DEV 0 mark NAME`.
//!
//! The log device holds, all little-endian:
//!
//! - sector 0: the super: magic `0x6a736677736872` (u64), version 1
//!   (u64), the number of entries (u64) and the sector size (u32) of the
//!   logged device, in which the whole log is laid out;
//! - from sector 1 on, each entry: one sector with its header (the
//!   device sector written (u64), the number of sectors (u64), flags (u64):
//!   FLUSH 1, FUA 2, DISCARD 4, MARK 8, METADATA 16, and the length of
//!   the entry's own data (u64)); a mark's name follows the header in the
//!   same sector; a write's data (`nr_sectors` sectors) follows in the
//!   sectors after it; a discard and a flush have none.
//!
//! Everything read from a log is checked before it is used: a log that is
//! not one, truncated, or whose entries do not add up is an error that
//! says where, never a panic.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The super's magic number.
pub const MAGIC: u64 = 0x006a_7366_7773_6872;
/// The only format version.
pub const VERSION: u64 = 1;
/// The entry is a flush (the writes logged before it were flushed).
pub const FLAG_FLUSH: u64 = 1;
/// The write was FUA.
pub const FLAG_FUA: u64 = 2;
/// The entry is a discard (no data follows).
pub const FLAG_DISCARD: u64 = 4;
/// The entry is a mark (its name follows the header).
pub const FLAG_MARK: u64 = 8;
/// The write was metadata (REQ_META).
pub const FLAG_METADATA: u64 = 16;
const KNOWN_FLAGS: u64 = FLAG_FLUSH | FLAG_FUA | FLAG_DISCARD | FLAG_MARK | FLAG_METADATA;
/// Bytes of the super's fields.
const SUPER_LEN: usize = 28;
/// Bytes of an entry header.
pub const ENTRY_LEN: usize = 32;
/// The sector sizes a log may have (logical block sizes of block devices).
const MIN_SECTOR: u32 = 512;
const MAX_SECTOR: u32 = 65536;

/// One entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its number in the log, from 0.
    pub index: u64,
    /// Flags (`FLAG_*`).
    pub flags: u64,
    /// First device sector written or discarded (in the log's sector size).
    pub sector: u64,
    /// Sectors written or discarded.
    pub nr_sectors: u64,
    /// Byte offset in the log of the data written (writes with sectors).
    pub data_at: Option<u64>,
    /// The name of a mark.
    pub mark: Option<String>,
}

impl Entry {
    /// Whether the entry is a flush.
    pub fn is_flush(&self) -> bool {
        self.flags & FLAG_FLUSH != 0
    }

    /// What the entry is, for messages and `--list`.
    pub fn describe(&self) -> String {
        let mut names = Vec::new();
        for (bit, name) in [
            (FLAG_FLUSH, "flush"),
            (FLAG_FUA, "fua"),
            (FLAG_DISCARD, "discard"),
            (FLAG_MARK, "mark"),
            (FLAG_METADATA, "meta"),
        ] {
            if self.flags & bit != 0 {
                names.push(name);
            }
        }
        let flags = if names.is_empty() {
            "write".to_string()
        } else {
            names.join(",")
        };
        match &self.mark {
            Some(m) => format!("{} {flags} {m}", self.index),
            None => format!(
                "{} {flags} sector {} +{}",
                self.index, self.sector, self.nr_sectors
            ),
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// A log opened for reading: its super checked, its entries decoded.
pub struct Log<R> {
    r: R,
    /// What the log is called in messages.
    name: String,
    /// The sector size of the logged device and of the log's layout.
    pub sector_size: u32,
    /// Bytes of the log device.
    len: u64,
    /// Every entry the super counts, in order.
    pub entries: Vec<Entry>,
}

impl Log<File> {
    /// Opens and decodes the log on `path` (a log device or an image).
    pub fn open(path: &Path) -> Result<Self, String> {
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Log::decode(f, &path.display().to_string())
    }
}

impl<R: Read + Seek> Log<R> {
    fn read_at(&mut self, at: u64, buf: &mut [u8], what: &str) -> Result<(), String> {
        let end = at.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(format!(
                "{}: {what} at byte {at} (+{}) lies beyond the end of the log ({} bytes): truncated log",
                self.name,
                buf.len(),
                self.len
            ));
        }
        self.r
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.r.read_exact(buf))
            .map_err(|e| format!("{}: reading {what} at byte {at}: {e}", self.name))
    }

    /// Reads the super and every entry header of the log in `r`, `name`
    /// naming it in messages; checks each before going on.
    pub fn decode(mut r: R, name: &str) -> Result<Self, String> {
        let len = r
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("{name}: {e}"))?;
        let mut log = Log {
            r,
            name: name.to_string(),
            sector_size: MIN_SECTOR,
            len,
            entries: Vec::new(),
        };
        let mut sb = [0u8; SUPER_LEN];
        log.read_at(0, &mut sb, "the super")?;
        let magic = le64(&sb, 0);
        if magic != MAGIC {
            return Err(format!(
                "{name}: not a dm-log-writes log (magic {magic:#x}, expected {MAGIC:#x})"
            ));
        }
        let version = le64(&sb, 8);
        if version != VERSION {
            return Err(format!(
                "{name}: log format version {version}, only {VERSION} is known"
            ));
        }
        let nr_entries = le64(&sb, 16);
        let sector_size = u32::from_le_bytes([sb[24], sb[25], sb[26], sb[27]]);
        if !sector_size.is_power_of_two() || !(MIN_SECTOR..=MAX_SECTOR).contains(&sector_size) {
            return Err(format!(
                "{name}: sector size {sector_size} is not a power of two from {MIN_SECTOR} to {MAX_SECTOR}"
            ));
        }
        log.sector_size = sector_size;
        let ss = u64::from(sector_size);
        // Every entry takes at least its header sector, after the super's.
        let room = (len / ss).saturating_sub(1);
        if nr_entries > room {
            return Err(format!(
                "{name}: the super counts {nr_entries} entries, the log has room for {room} at most: truncated or corrupt"
            ));
        }
        log.entries.reserve(nr_entries as usize);
        let mut at = ss;
        let mut header = vec![0u8; sector_size as usize];
        for index in 0..nr_entries {
            log.read_at(at, &mut header, &format!("entry {index}"))?;
            let (entry, next) = Self::entry(name, &header, index, at, ss)?;
            if entry.data_at.is_some() && next > len {
                return Err(format!(
                    "{name}: entry {index} at byte {at}: its {} sectors of data end at byte {next}, \
                     beyond the end of the log ({len} bytes): truncated log",
                    entry.nr_sectors
                ));
            }
            log.entries.push(entry);
            at = next;
        }
        Ok(log)
    }

    /// Decodes the header sector `h` of entry `index` at byte `at`;
    /// returns it and the byte where the next entry starts.
    fn entry(name: &str, h: &[u8], index: u64, at: u64, ss: u64) -> Result<(Entry, u64), String> {
        let bad = |what: String| format!("{name}: entry {index} at byte {at}: {what}");
        let sector = le64(h, 0);
        let nr_sectors = le64(h, 8);
        let flags = le64(h, 16);
        let data_len = le64(h, 24);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(bad(format!("unknown flags {flags:#x}")));
        }
        if sector.checked_add(nr_sectors).is_none() {
            return Err(bad(format!(
                "sectors {sector} +{nr_sectors} overflow a 64-bit sector number"
            )));
        }
        let next_header = at + ss;
        let mut entry = Entry {
            index,
            flags,
            sector,
            nr_sectors,
            data_at: None,
            mark: None,
        };
        if flags & FLAG_MARK != 0 {
            if flags != FLAG_MARK || nr_sectors != 0 {
                return Err(bad(format!(
                    "a mark with flags {flags:#x} and {nr_sectors} sectors"
                )));
            }
            let room = ss - ENTRY_LEN as u64;
            if data_len > room {
                return Err(bad(format!(
                    "a mark name of {data_len} bytes, a sector holds {room}"
                )));
            }
            let raw = &h[ENTRY_LEN..ENTRY_LEN + data_len as usize];
            let name = std::str::from_utf8(raw)
                .map_err(|_| bad("a mark name that is not UTF-8".to_string()))?;
            entry.mark = Some(name.to_string());
            return Ok((entry, next_header));
        }
        if data_len != 0 {
            return Err(bad(format!(
                "{data_len} bytes of entry data on an entry that is no mark"
            )));
        }
        if flags & FLAG_DISCARD != 0 || nr_sectors == 0 {
            return Ok((entry, next_header));
        }
        let next = nr_sectors
            .checked_mul(ss)
            .and_then(|b| b.checked_add(next_header))
            .ok_or_else(|| bad(format!("{nr_sectors} sectors of data overflow the log")))?;
        entry.data_at = Some(next_header);
        Ok((entry, next))
    }

    /// Reads the data of `entry` (a write of this log) into `buf`, which
    /// must be `nr_sectors` sectors long.
    pub fn read_data(&mut self, entry: &Entry, buf: &mut [u8]) -> Result<(), String> {
        let Some(at) = entry.data_at else {
            return Err(format!("{}: entry {} has no data", self.name, entry.index));
        };
        self.read_at(at, buf, &format!("the data of entry {}", entry.index))
    }

    /// The log's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::Cursor;

    /// Builds a log as the kernel lays it out.
    pub struct Builder {
        pub ss: usize,
        pub bytes: Vec<u8>,
        pub nr_entries: u64,
    }

    impl Builder {
        pub fn new(ss: usize) -> Self {
            Self {
                ss,
                bytes: vec![0u8; ss],
                nr_entries: 0,
            }
        }

        fn header(&mut self, sector: u64, nr: u64, flags: u64, data_len: u64) -> usize {
            let at = self.bytes.len();
            self.bytes.resize(at + self.ss, 0);
            for (i, v) in [sector, nr, flags, data_len].into_iter().enumerate() {
                self.bytes[at + 8 * i..at + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
            }
            self.nr_entries += 1;
            at
        }

        pub fn write(&mut self, sector: u64, data: &[u8], flags: u64) -> &mut Self {
            assert_eq!(data.len() % self.ss, 0);
            self.header(sector, (data.len() / self.ss) as u64, flags, 0);
            self.bytes.extend_from_slice(data);
            self
        }

        pub fn flush(&mut self) -> &mut Self {
            self.header(0, 0, FLAG_FLUSH, 0);
            self
        }

        pub fn discard(&mut self, sector: u64, nr: u64) -> &mut Self {
            self.header(sector, nr, FLAG_DISCARD, 0);
            self
        }

        pub fn mark(&mut self, name: &str) -> &mut Self {
            let at = self.header(0, 0, FLAG_MARK, name.len() as u64);
            self.bytes[at + ENTRY_LEN..at + ENTRY_LEN + name.len()]
                .copy_from_slice(name.as_bytes());
            self
        }

        /// The log with its super (counting every entry).
        pub fn build(&self) -> Vec<u8> {
            let mut b = self.bytes.clone();
            b[0..8].copy_from_slice(&MAGIC.to_le_bytes());
            b[8..16].copy_from_slice(&VERSION.to_le_bytes());
            b[16..24].copy_from_slice(&self.nr_entries.to_le_bytes());
            b[24..28].copy_from_slice(&(self.ss as u32).to_le_bytes());
            b
        }
    }

    fn decode(b: &[u8]) -> Result<Log<Cursor<Vec<u8>>>, String> {
        Log::decode(Cursor::new(b.to_vec()), "log")
    }

    fn sample(ss: usize) -> Builder {
        let mut b = Builder::new(ss);
        b.write(8, &vec![0xaa; 2 * ss], 0)
            .write(2, &vec![0xbb; ss], FLAG_FUA | FLAG_METADATA)
            .flush()
            .mark("one")
            .discard(8, 1)
            .write(0, &vec![0xcc; 3 * ss], FLAG_FLUSH)
            .mark("two");
        b
    }

    #[test]
    fn decodes_every_kind_of_entry() {
        for ss in [512usize, 4096] {
            let log_bytes = sample(ss).build();
            let mut log = decode(&log_bytes).unwrap();
            assert_eq!(log.sector_size as usize, ss);
            let e = log.entries.clone();
            assert_eq!(e.len(), 7);
            assert_eq!((e[0].sector, e[0].nr_sectors, e[0].flags), (8, 2, 0));
            assert_eq!(e[0].data_at, Some(2 * ss as u64));
            assert_eq!(e[1].flags, FLAG_FUA | FLAG_METADATA);
            assert_eq!(e[1].data_at, Some(5 * ss as u64));
            assert!(e[2].is_flush() && e[2].data_at.is_none());
            assert_eq!(e[3].mark.as_deref(), Some("one"));
            assert_eq!(
                (e[4].flags, e[4].sector, e[4].nr_sectors),
                (FLAG_DISCARD, 8, 1)
            );
            assert_eq!(e[4].data_at, None);
            assert!(e[5].is_flush());
            assert_eq!(e[6].mark.as_deref(), Some("two"));
            let mut buf = vec![0u8; 3 * ss];
            log.read_data(&e[5], &mut buf).unwrap();
            assert!(buf.iter().all(|&x| x == 0xcc));
            let mut buf = vec![0u8; ss];
            log.read_data(&e[1], &mut buf).unwrap();
            assert!(buf.iter().all(|&x| x == 0xbb));
            assert!(log.read_data(&e[3], &mut buf).is_err());
        }
    }

    #[test]
    fn an_empty_log_has_no_entries() {
        let log = decode(&Builder::new(512).build()).unwrap();
        assert!(log.entries.is_empty());
    }

    /// Entries past the super's count (logged after its last update) are
    /// not read.
    #[test]
    fn reads_only_the_entries_the_super_counts() {
        let mut b = sample(512);
        let mut bytes = b.build();
        bytes[16..24].copy_from_slice(&3u64.to_le_bytes());
        assert_eq!(decode(&bytes).unwrap().entries.len(), 3);
        b.nr_entries = 0;
        assert!(decode(&b.build()).unwrap().entries.is_empty());
    }

    fn err(bytes: &[u8]) -> String {
        match decode(bytes) {
            Ok(_) => panic!("decoded a bad log"),
            Err(e) => e,
        }
    }

    /// The byte offset of entry `i`'s header in `sample(512)`.
    fn header_at(i: usize) -> usize {
        [1, 4, 6, 7, 8, 9, 13][i] * 512
    }

    #[test]
    fn refuses_bad_supers() {
        let good = sample(512).build();
        assert!(err(&good[..20]).contains("truncated"));
        assert!(err(&[]).contains("truncated"));
        let mut b = good.clone();
        b[0] ^= 1;
        assert!(err(&b).contains("not a dm-log-writes log"));
        let mut b = good.clone();
        b[8] = 2;
        assert!(err(&b).contains("version 2"));
        for ss in [0u32, 1, 256, 1000, 4097, 1 << 17, u32::MAX] {
            let mut b = good.clone();
            b[24..28].copy_from_slice(&ss.to_le_bytes());
            assert!(err(&b).contains("sector size"), "{ss}");
        }
        let mut b = good.clone();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&b).contains("room for"));
        // A sector size larger than the log holds.
        let mut b = good.clone();
        b[24..28].copy_from_slice(&65536u32.to_le_bytes());
        assert!(err(&b).contains("room for"));
    }

    #[test]
    fn refuses_bad_entries() {
        let good = sample(512).build();
        let set = |i: usize, field: usize, v: u64| {
            let mut b = good.clone();
            let at = header_at(i) + 8 * field;
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            b
        };
        assert!(err(&set(0, 2, 1 << 5)).contains("unknown flags"));
        assert!(err(&set(0, 0, u64::MAX)).contains("overflow"));
        assert!(err(&set(0, 1, u64::MAX / 2)).contains("overflow"));
        assert!(err(&set(0, 1, 1 << 40)).contains("truncated"));
        assert!(err(&set(0, 3, 5)).contains("no mark"));
        assert!(err(&set(3, 3, 481)).contains("a sector holds 480"));
        assert!(err(&set(3, 1, 1)).contains("a mark with"));
        assert!(err(&set(3, 2, FLAG_MARK | FLAG_FLUSH)).contains("a mark with"));
        let mut b = good.clone();
        b[header_at(3) + ENTRY_LEN] = 0xff;
        assert!(err(&b).contains("not UTF-8"));
        // Cut inside the last entry's header, and inside a write's data.
        assert!(err(&good[..header_at(6) + 100]).contains("truncated"));
        assert!(err(&good[..header_at(5) + 600]).contains("truncated"));
    }

    /// A tiny deterministic generator for the mutation test.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random bytes and random edits of a good log decode or fail, never
    /// panic, and what decodes keeps every entry inside the log.
    #[test]
    fn mutated_logs_never_panic() {
        let good = sample(512).build();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000 {
            let mut b = good.clone();
            if round % 10 == 0 {
                let n = (rng.next() % 4096) as usize;
                b = (0..n).map(|_| rng.next() as u8).collect();
                if n >= 28 && round % 20 == 0 {
                    b[..8].copy_from_slice(&MAGIC.to_le_bytes());
                    b[8..16].copy_from_slice(&VERSION.to_le_bytes());
                }
            } else {
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() % b.len() as u64) as usize;
                    b[at] = rng.next() as u8;
                }
                if round % 7 == 0 {
                    let cut = (rng.next() % b.len() as u64) as usize;
                    b.truncate(cut);
                }
            }
            let len = b.len() as u64;
            if let Ok(mut log) = decode(&b) {
                for e in log.entries.clone() {
                    if let Some(at) = e.data_at {
                        assert!(at + e.nr_sectors * u64::from(log.sector_size) <= len);
                        let mut buf = vec![0u8; (e.nr_sectors * 512) as usize];
                        log.read_data(&e, &mut buf).unwrap();
                    }
                }
            }
        }
    }
}
