// SPDX-License-Identifier: GPL-2.0

//! A fault-injecting device for crash and error tests.
//!
//! [`FaultDevice`] keeps two images: what reads see (every completed write)
//! and what would survive a power cut (the state at the last completed
//! flush). It can
//!
//! - cut power after write number N ([`FaultDevice::cut_power_after`]):
//!   write N + 1 is torn (a chosen number of 512-byte sectors of it reach the
//!   medium) and it and every later call fail with `Error::Io`;
//!   [`FaultDevice::crash_image`] then gives the device as it would be found
//!   after power returns: the durable image plus a chosen subset of the
//!   writes not yet covered by a flush, plus the torn part;
//! - fail reads or writes of chosen blocks ([`FaultDevice::fail_reads`],
//!   [`FaultDevice::fail_writes`]);
//! - record every write and flush ([`FaultDevice::record`]), so a crash
//!   harness can run a workload once and rebuild the image after a power cut
//!   at any write with [`image_after_cut`].

use crate::error::{Error, Result};
use crate::io::device::{byte_offset, check_io, BlockDevice, MemDevice};
use crate::kcompat::{KVec, GFP_KERNEL};

/// Bytes of a sector, the unit a torn write is cut at.
pub const SECTOR_SIZE: usize = 512;

/// One device operation, as recorded.
#[derive(Debug)]
pub enum LogOp {
    /// A completed write of whole blocks.
    Write {
        /// First block.
        block: u64,
        /// The bytes written.
        data: KVec<u8>,
    },
    /// A completed flush.
    Flush,
}

/// Which unflushed writes survive a power cut.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Survivors {
    /// None of them (the medium kept only what was flushed).
    None,
    /// All of them (the medium kept everything it was sent).
    All,
    /// Each one independently, chosen by a pseudo-random sequence from this seed.
    Random(u64),
}

impl Survivors {
    fn chooser(self) -> impl FnMut() -> bool {
        let mut state = match self {
            Survivors::Random(s) => s | 1,
            _ => 0,
        };
        move || match self {
            Survivors::None => false,
            Survivors::All => true,
            Survivors::Random(_) => {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state & 1 == 1
            }
        }
    }
}

/// A device that loses, tears and fails writes on demand.
pub struct FaultDevice {
    current: MemDevice,
    durable: MemDevice,
    pending: KVec<LogOp>,
    torn: Option<LogOp>,
    writes: u64,
    cut_after: Option<u64>,
    torn_sectors: usize,
    dead: bool,
    bad_reads: KVec<u64>,
    bad_writes: KVec<u64>,
    log: Option<KVec<LogOp>>,
}

impl FaultDevice {
    /// A healthy device starting from a copy of `image`.
    pub fn new(image: &[u8]) -> Result<Self> {
        Ok(Self {
            current: MemDevice::from_image(image)?,
            durable: MemDevice::from_image(image)?,
            pending: KVec::new(),
            torn: None,
            writes: 0,
            cut_after: None,
            torn_sectors: 0,
            dead: false,
            bad_reads: KVec::new(),
            bad_writes: KVec::new(),
            log: None,
        })
    }

    /// Cuts power once `n` writes have completed: the next write lands only
    /// its first `torn_sectors` sectors, then every call fails.
    pub fn cut_power_after(&mut self, n: u64, torn_sectors: usize) {
        self.cut_after = Some(n);
        self.torn_sectors = torn_sectors;
    }

    /// Makes reads of `block` fail with `Error::Io`.
    pub fn fail_reads(&mut self, block: u64) -> Result {
        Ok(self.bad_reads.push(block, GFP_KERNEL)?)
    }

    /// Makes writes touching `block` fail with `Error::Io`.
    pub fn fail_writes(&mut self, block: u64) -> Result {
        Ok(self.bad_writes.push(block, GFP_KERNEL)?)
    }

    /// Makes every read and write of a healthy block succeed again (the
    /// failures of [`FaultDevice::fail_reads`] and
    /// [`FaultDevice::fail_writes`] end; a power cut does not).
    pub fn heal(&mut self) {
        self.bad_reads.clear();
        self.bad_writes.clear();
    }

    /// Starts recording every write and flush (see [`FaultDevice::take_log`]).
    pub fn record(&mut self) {
        self.log = Some(KVec::new());
    }

    /// The operations recorded so far.
    pub fn take_log(&mut self) -> KVec<LogOp> {
        self.log.take().unwrap_or_default()
    }

    /// Writes completed so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Whether power has been cut.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// What reads currently see.
    pub fn current(&self) -> &[u8] {
        self.current.image()
    }

    /// The device as found after the power cut: the durable image, the
    /// unflushed writes that `survivors` picks, in order, and the torn write.
    pub fn crash_image(&self, survivors: Survivors) -> Result<MemDevice> {
        let mut dev = MemDevice::from_image(self.durable.image())?;
        let mut keep = survivors.chooser();
        for op in self.pending.iter() {
            if keep() {
                apply(&mut dev, op, usize::MAX)?;
            }
        }
        if let Some(op) = &self.torn {
            apply(&mut dev, op, self.torn_sectors)?;
        }
        Ok(dev)
    }

    fn blocked(list: &[u64], block: u64, count: u64) -> bool {
        list.iter().any(|&b| b >= block && b - block < count)
    }

    fn copy_op(block: u64, buf: &[u8]) -> Result<LogOp> {
        let mut data = KVec::with_capacity(buf.len(), GFP_KERNEL)?;
        data.extend_from_slice(buf, GFP_KERNEL)?;
        Ok(LogOp::Write { block, data })
    }
}

/// Applies the first `sectors` sectors of a recorded write (all of it for
/// `usize::MAX`) to `dev`; flushes are no-ops.
fn apply(dev: &mut MemDevice, op: &LogOp, sectors: usize) -> Result {
    let LogOp::Write { block, data } = op else {
        return Ok(());
    };
    let bytes = data.len().min(sectors.saturating_mul(SECTOR_SIZE));
    let off = byte_offset(*block).ok_or(Error::InvalidArgument)?;
    let image = dev.image_mut();
    let end = off.checked_add(bytes).ok_or(Error::InvalidArgument)?;
    image
        .get_mut(off..end)
        .ok_or(Error::InvalidArgument)?
        .copy_from_slice(&data[..bytes]);
    Ok(())
}

/// Rebuilds, from a recorded `log` that started on `base`, the device as
/// found after a power cut during write number `cut` (0-based among the
/// log's writes): every write before the last flush preceding it is durable,
/// `survivors` picks among the later ones, and the first `torn_sectors`
/// sectors of write `cut` itself land. Returns `None` if the log has fewer
/// writes.
pub fn image_after_cut(
    base: &[u8],
    log: &[LogOp],
    cut: usize,
    survivors: Survivors,
    torn_sectors: usize,
) -> Result<Option<MemDevice>> {
    let mut dev = MemDevice::from_image(base)?;
    let mut nth = 0;
    let mut unflushed = 0;
    let mut cut_at = None;
    for (i, op) in log.iter().enumerate() {
        match op {
            LogOp::Flush => unflushed = i + 1,
            LogOp::Write { .. } if nth == cut => {
                cut_at = Some(i);
                break;
            }
            LogOp::Write { .. } => nth += 1,
        }
    }
    let Some(cut_at) = cut_at else {
        return Ok(None);
    };
    for op in &log[..unflushed] {
        apply(&mut dev, op, usize::MAX)?;
    }
    let mut keep = survivors.chooser();
    for op in &log[unflushed..cut_at] {
        if matches!(op, LogOp::Write { .. }) && keep() {
            apply(&mut dev, op, usize::MAX)?;
        }
    }
    apply(&mut dev, &log[cut_at], torn_sectors)?;
    Ok(Some(dev))
}

impl BlockDevice for FaultDevice {
    fn nr_blocks(&self) -> u64 {
        self.current.nr_blocks()
    }

    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        let count = check_io(self.nr_blocks(), block, buf.len())?;
        if self.dead || Self::blocked(&self.bad_reads, block, count) {
            return Err(Error::Io);
        }
        self.current.read(block, buf)
    }

    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        let count = check_io(self.nr_blocks(), block, buf.len())?;
        if self.dead || Self::blocked(&self.bad_writes, block, count) {
            return Err(Error::Io);
        }
        if self.cut_after == Some(self.writes) {
            self.dead = true;
            self.torn = Some(Self::copy_op(block, buf)?);
            return Err(Error::Io);
        }
        self.current.write(block, buf)?;
        self.pending.push(Self::copy_op(block, buf)?, GFP_KERNEL)?;
        if let Some(log) = &mut self.log {
            log.push(Self::copy_op(block, buf)?, GFP_KERNEL)?;
        }
        self.writes += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result {
        if self.dead {
            return Err(Error::Io);
        }
        for op in self.pending.iter() {
            apply(&mut self.durable, op, usize::MAX)?;
        }
        self.pending.clear();
        if let Some(log) = &mut self.log {
            log.push(LogOp::Flush, GFP_KERNEL)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::device::BLOCK_SIZE;

    fn block(v: u8) -> [u8; BLOCK_SIZE] {
        [v; BLOCK_SIZE]
    }

    #[test]
    fn power_cut_keeps_flushed_and_tears_the_cut_write() {
        let mut d = FaultDevice::new(&[0u8; 4 * BLOCK_SIZE]).unwrap();
        d.cut_power_after(2, 3);
        d.write(0, &block(1)).unwrap();
        d.flush().unwrap();
        d.write(1, &block(2)).unwrap();
        assert_eq!(d.write(2, &block(3)), Err(Error::Io));
        assert_eq!(d.flush(), Err(Error::Io));
        let none = d.crash_image(Survivors::None).unwrap();
        assert!(none.image()[..BLOCK_SIZE].iter().all(|&b| b == 1));
        assert!(none.image()[BLOCK_SIZE..2 * BLOCK_SIZE]
            .iter()
            .all(|&b| b == 0));
        let torn = &none.image()[2 * BLOCK_SIZE..3 * BLOCK_SIZE];
        assert!(torn[..3 * SECTOR_SIZE].iter().all(|&b| b == 3));
        assert!(torn[3 * SECTOR_SIZE..].iter().all(|&b| b == 0));
        let all = d.crash_image(Survivors::All).unwrap();
        assert!(all.image()[BLOCK_SIZE..2 * BLOCK_SIZE]
            .iter()
            .all(|&b| b == 2));
    }

    #[test]
    fn failing_blocks_fail_only_themselves() {
        let mut d = FaultDevice::new(&[0u8; 4 * BLOCK_SIZE]).unwrap();
        d.fail_reads(1).unwrap();
        d.fail_writes(3).unwrap();
        let mut buf = block(0);
        assert_eq!(d.read(1, &mut buf), Err(Error::Io));
        d.read(0, &mut buf).unwrap();
        assert_eq!(d.write(2, &[0u8; 2 * BLOCK_SIZE]), Err(Error::Io));
        d.write(2, &block(9)).unwrap();
    }

    #[test]
    fn recorded_log_rebuilds_the_same_crash_image() {
        let base = [0u8; 4 * BLOCK_SIZE];
        let mut d = FaultDevice::new(&base).unwrap();
        d.record();
        d.write(0, &block(1)).unwrap();
        d.flush().unwrap();
        d.write(1, &block(2)).unwrap();
        d.write(2, &block(3)).unwrap();
        let log = d.take_log();
        let img = image_after_cut(&base, &log, 2, Survivors::None, 1)
            .unwrap()
            .unwrap();
        let mut live = FaultDevice::new(&base).unwrap();
        live.cut_power_after(2, 1);
        live.write(0, &block(1)).unwrap();
        live.flush().unwrap();
        live.write(1, &block(2)).unwrap();
        let _ = live.write(2, &block(3));
        assert_eq!(
            img.image(),
            live.crash_image(Survivors::None).unwrap().image()
        );
        assert!(image_after_cut(&base, &log, 3, Survivors::All, 0)
            .unwrap()
            .is_none());
    }
}
