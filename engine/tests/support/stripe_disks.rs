// SPDX-License-Identifier: GPL-2.0

//! Member devices for the stripe store tests: [`FaultDevice`]s that share
//! one power supply (a power cut after the N-th write of the whole set tears
//! that write and stops every device), can be killed one by one (every I/O
//! fails, as a dead or pulled disk), and can carry latent corruption (a
//! block reads back with a flipped byte until it is rewritten).

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use vtier_engine::error::{Error, Result};
use vtier_engine::io::device::{check_io, BlockDevice, BLOCK_SIZE};
use vtier_engine::testing::fault_device::{FaultDevice, Survivors};

/// State shared by every disk of a test.
#[derive(Default)]
pub struct Shared {
    /// Writes completed, over every disk.
    pub writes: Cell<u64>,
    /// Power is cut at this write (0-based, over every disk).
    pub cut_at: Cell<Option<u64>>,
    /// Sectors of the cut write that land.
    pub torn: Cell<usize>,
    /// Power is off.
    pub dead: Cell<bool>,
    /// Disks (by id) whose every I/O fails.
    pub killed: RefCell<BTreeSet<usize>>,
    /// (disk id, block) that read back corrupted until rewritten.
    pub flips: RefCell<BTreeSet<(usize, u64)>>,
    /// Next disk id.
    pub next_id: Cell<usize>,
}

/// One member disk.
pub struct Disk {
    pub id: usize,
    pub fd: FaultDevice,
    pub sh: Rc<Shared>,
}

impl Shared {
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }
}

/// A zero-filled disk of `blocks` blocks with a fresh id.
pub fn blank(sh: &Rc<Shared>, blocks: u64) -> Disk {
    from_image(sh, &vec![0u8; blocks as usize * BLOCK_SIZE])
}

/// A disk holding `image`, with a fresh id.
pub fn from_image(sh: &Rc<Shared>, image: &[u8]) -> Disk {
    let id = sh.next_id.get();
    sh.next_id.set(id + 1);
    Disk {
        id,
        fd: FaultDevice::new(image).unwrap(),
        sh: sh.clone(),
    }
}

impl Disk {
    /// The same disk (same id) as found after power returns: flushed
    /// writes, and the unflushed ones `seed` picks.
    pub fn after_power_loss(&self, seed: u64) -> Disk {
        let img = self.fd.crash_image(Survivors::Random(seed)).unwrap();
        Disk {
            id: self.id,
            fd: FaultDevice::new(img.image()).unwrap(),
            sh: self.sh.clone(),
        }
    }

    /// What reads would see now (corruption overlay not applied).
    pub fn image(&self) -> &[u8] {
        self.fd.current()
    }

    fn down(&self) -> bool {
        self.sh.dead.get() || self.sh.killed.borrow().contains(&self.id)
    }
}

impl BlockDevice for Disk {
    fn nr_blocks(&self) -> u64 {
        self.fd.nr_blocks()
    }

    fn read(&mut self, block: u64, buf: &mut [u8]) -> Result {
        let count = check_io(self.nr_blocks(), block, buf.len())?;
        if self.down() {
            return Err(Error::Io);
        }
        self.fd.read(block, buf)?;
        for &(_, b) in self
            .sh
            .flips
            .borrow()
            .range((self.id, block)..(self.id, block + count))
        {
            buf[(b - block) as usize * BLOCK_SIZE + 100] ^= 0x5a;
        }
        Ok(())
    }

    fn write(&mut self, block: u64, buf: &[u8]) -> Result {
        let count = check_io(self.nr_blocks(), block, buf.len())?;
        if self.down() {
            return Err(Error::Io);
        }
        let n = self.sh.writes.get();
        if self.sh.cut_at.get() == Some(n) {
            self.fd
                .cut_power_after(self.fd.writes(), self.sh.torn.get());
            let _ = self.fd.write(block, buf);
            self.sh.dead.set(true);
            return Err(Error::Io);
        }
        self.fd.write(block, buf)?;
        self.sh.writes.set(n + 1);
        let mut flips = self.sh.flips.borrow_mut();
        let hit: Vec<_> = flips
            .range((self.id, block)..(self.id, block + count))
            .copied()
            .collect();
        for f in hit {
            flips.remove(&f);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result {
        if self.down() {
            return Err(Error::Io);
        }
        self.fd.flush()
    }
}
