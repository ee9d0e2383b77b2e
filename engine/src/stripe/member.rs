// SPDX-License-Identifier: GPL-2.0

//! The members (capacity devices) of a stripe store: their states and
//! counters, and the mirrored view of the store's metadata across them.
//!
//! # Member states
//!
//! - `Ok`: in service; its chunks are read and written.
//! - `Failed`: a write or flush failed, or too many reads did; never read
//!   or written again until a replacement is rebuilt in its place.
//! - `Missing`: absent (not given at open, removed, or not carrying this
//!   store's header); treated like `Failed`, and persisted as failed by the
//!   next metadata write, since it misses that write.
//! - `Rebuilding`: a replacement; written like `Ok`, but its chunks of
//!   stripes at or after the rebuild cursor are never read (they may be
//!   missing or stale), only reconstructed from the others.

use crate::error::{Error, Result};
use crate::io::device::{check_io, BlockDevice};

/// Read errors after which a member is failed.
pub const READ_ERROR_LIMIT: u64 = 16;

/// State of one member; see the module docs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum MemberState {
    /// In service.
    #[default]
    Ok,
    /// Failed after I/O errors.
    Failed,
    /// Absent.
    Missing,
    /// A replacement being rebuilt.
    Rebuilding,
}

impl MemberState {
    /// The state's name, for status output.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Ok => "ok",
            MemberState::Failed => "failed",
            MemberState::Missing => "missing",
            MemberState::Rebuilding => "rebuilding",
        }
    }
}

/// Counters of one member, for debugfs, sysfs and `vtierctl status`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberStats {
    /// Current state.
    pub state: MemberState,
    /// Reads that failed with an I/O error.
    pub read_errors: u64,
    /// Writes or flushes that failed.
    pub write_errors: u64,
    /// Chunks that did not verify (header, data CRC, or an older write).
    pub checksum_errors: u64,
    /// Chunks of this member reconstructed from the others for a read.
    pub reconstructions: u64,
    /// Chunks rewritten on this member by scrub or rebuild.
    pub repairs: u64,
}

/// One member: its device (if present) and counters.
pub struct Member<D> {
    pub(crate) dev: Option<D>,
    pub(crate) stats: MemberStats,
}

impl<D: BlockDevice> Member<D> {
    pub(crate) fn state(&self) -> MemberState {
        self.stats.state
    }

    /// Receives metadata writes (and data writes).
    pub(crate) fn in_service(&self) -> bool {
        self.dev.is_some() && matches!(self.state(), MemberState::Ok | MemberState::Rebuilding)
    }

    /// Fails the member after a write error.
    pub(crate) fn write_failed(&mut self) {
        self.stats.write_errors += 1;
        self.stats.state = MemberState::Failed;
    }

    /// Counts a read error; fails the member past [`READ_ERROR_LIMIT`].
    pub(crate) fn read_failed(&mut self) {
        self.stats.read_errors += 1;
        if self.stats.read_errors >= READ_ERROR_LIMIT {
            self.stats.state = MemberState::Failed;
        }
    }

    /// Writes `buf` at `block`; a failure fails the member.
    pub(crate) fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        let live = self.in_service();
        let r = match (&mut self.dev, live) {
            (Some(dev), true) => dev.write(block, buf),
            _ => return Err(Error::Io),
        };
        if r.is_err() {
            self.write_failed();
        }
        r
    }

    /// Flushes; a failure fails the member.
    pub(crate) fn flush(&mut self) -> Result {
        let live = self.in_service();
        let r = match (&mut self.dev, live) {
            (Some(dev), true) => dev.flush(),
            _ => return Err(Error::Io),
        };
        if r.is_err() {
            self.write_failed();
        }
        r
    }

    /// Reads `buf` from `block`; an I/O error is counted.
    pub(crate) fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        let Some(dev) = &mut self.dev else {
            return Err(Error::Io);
        };
        let r = dev.read(block, buf);
        if r == Err(Error::Io) {
            self.read_failed();
        }
        r
    }
}

/// The store's metadata blocks (`base .. base + blocks` on every member)
/// as one device: writes and flushes go to every member in service (a
/// member that fails one is failed; the call fails only if all do), reads
/// come from `primary` or, on an I/O error, from the next member in service.
pub(crate) struct MetaView<'a, D> {
    pub(crate) members: &'a mut [Member<D>],
    pub(crate) primary: usize,
    pub(crate) base: u64,
    pub(crate) blocks: u64,
}

impl<D: BlockDevice> MetaView<'_, D> {
    fn all(&mut self, mut op: impl FnMut(&mut Member<D>) -> Result) -> Result {
        let mut done = false;
        for m in self.members.iter_mut().filter(|m| m.in_service()) {
            done |= op(m).is_ok();
        }
        if done {
            Ok(())
        } else {
            Err(Error::Io)
        }
    }
}

impl<D: BlockDevice> BlockDevice for MetaView<'_, D> {
    fn nr_blocks(&self) -> u64 {
        self.blocks
    }

    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        check_io(self.blocks, block, buf.len())?;
        let n = self.members.len();
        for i in (0..n).map(|i| (i + self.primary) % n) {
            let m = &mut self.members[i];
            if m.in_service() && m.read(self.base + block, buf).is_ok() {
                return Ok(());
            }
        }
        Err(Error::Io)
    }

    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        check_io(self.blocks, block, buf.len())?;
        let at = self.base + block;
        self.all(|m| m.write(at, buf))
    }

    fn flush(&mut self) -> Result {
        self.all(|m| m.flush())
    }
}
