// SPDX-License-Identifier: GPL-2.0

//! Physical addresses: where a block lives, on either tier.
//!
//! One `u64` names a block anywhere in a volume set, so B-tree child
//! pointers and extent values can point at the performance tier or, once
//! T1 migrates leaves and data, into an erasure-coded stripe of the capacity
//! tier, with the same field width. The top four bits are the [`Kind`]:
//!
//! | bits 63..60 | kind | bits 59..0 |
//! |---|---|---|
//! | 0 | none | zero (the null address; never valid on disk) |
//! | 1 | performance tier | block number (60 bits) on device 0 |
//! | 2 | capacity device, not striped | device index (12 bits, 1..4095) · block number (48 bits) |
//! | 3 | erasure-coded stripe | stripe id (40 bits) · block offset within the stripe's data (20 bits) |
//!
//! A stripe address names a block of the stripe's *data* (its logical
//! content, before parity); the EC layer finds the chunk and device.
//! Addresses are decoded with [`PAddr::from_raw`], which rejects unknown
//! kinds and out-of-range fields, so nothing read from a device is trusted.

use crate::error::{Error, Result};

const KIND_SHIFT: u32 = 60;
const LOW_MASK: u64 = (1 << KIND_SHIFT) - 1;
const DEV_SHIFT: u32 = 48;
const DEV_BLOCK_MASK: u64 = (1 << DEV_SHIFT) - 1;
const STRIPE_SHIFT: u32 = 20;
const STRIPE_OFFSET_MASK: u64 = (1 << STRIPE_SHIFT) - 1;

/// Largest performance-tier block number.
pub const MAX_PERF_BLOCK: u64 = LOW_MASK;
/// Largest block number on a capacity device.
pub const MAX_DEVICE_BLOCK: u64 = DEV_BLOCK_MASK;
/// Largest capacity device index.
pub const MAX_DEVICE_INDEX: u16 = 0xfff;
/// Largest stripe id.
pub const MAX_STRIPE: u64 = (1 << 40) - 1;
/// Blocks of data one stripe address can reach (4 GiB).
pub const STRIPE_DATA_BLOCKS: u32 = 1 << STRIPE_SHIFT;

/// Which tier and layout an address points into.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Block `block` of the performance device.
    Perf {
        /// Block number.
        block: u64,
    },
    /// Block `block` of capacity device `device`, outside any stripe.
    Device {
        /// Device index in the set (1..=[`MAX_DEVICE_INDEX`]).
        device: u16,
        /// Block number.
        block: u64,
    },
    /// Data block `offset` of erasure-coded stripe `stripe`.
    Stripe {
        /// Stripe id.
        stripe: u64,
        /// Block offset in the stripe's data (< [`STRIPE_DATA_BLOCKS`]).
        offset: u32,
    },
}

/// A validated, non-null physical block address.
///
/// # Invariants
///
/// The raw value has a known kind (1, 2 or 3) and every field in range.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PAddr(u64);

impl PAddr {
    /// Block `block` of the performance device.
    pub const fn perf(block: u64) -> Result<Self> {
        if block > MAX_PERF_BLOCK {
            return Err(Error::InvalidArgument);
        }
        // INVARIANT: kind 1, block in range.
        Ok(Self((1 << KIND_SHIFT) | block))
    }

    /// Block `block` of capacity device `device`.
    pub const fn device(device: u16, block: u64) -> Result<Self> {
        if device == 0 || device > MAX_DEVICE_INDEX || block > MAX_DEVICE_BLOCK {
            return Err(Error::InvalidArgument);
        }
        Ok(Self(
            (2 << KIND_SHIFT) | ((device as u64) << DEV_SHIFT) | block,
        ))
    }

    /// Data block `offset` of stripe `stripe`.
    pub const fn stripe(stripe: u64, offset: u32) -> Result<Self> {
        if stripe > MAX_STRIPE || offset >= STRIPE_DATA_BLOCKS {
            return Err(Error::InvalidArgument);
        }
        Ok(Self(
            (3 << KIND_SHIFT) | (stripe << STRIPE_SHIFT) | offset as u64,
        ))
    }

    /// Builds an address from a [`Location`].
    pub const fn new(loc: Location) -> Result<Self> {
        match loc {
            Location::Perf { block } => Self::perf(block),
            Location::Device { device, block } => Self::device(device, block),
            Location::Stripe { stripe, offset } => Self::stripe(stripe, offset),
        }
    }

    /// Decodes an address read from disk; `block` names the block it was
    /// read from, for the error (`None` if it was not read from one block).
    pub fn from_raw(raw: u64, block: Option<u64>) -> Result<Self> {
        let low = raw & LOW_MASK;
        let ok = match raw >> KIND_SHIFT {
            1 => true,
            2 => {
                let dev = low >> DEV_SHIFT;
                dev != 0 && dev <= u64::from(MAX_DEVICE_INDEX)
            }
            3 => true,
            _ => false,
        };
        if ok {
            Ok(Self(raw))
        } else {
            Err(Error::Corrupt {
                block,
                what: "physical address",
            })
        }
    }

    /// The on-disk encoding.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// Where the address points.
    pub const fn location(self) -> Location {
        let low = self.0 & LOW_MASK;
        match self.0 >> KIND_SHIFT {
            2 => Location::Device {
                device: (low >> DEV_SHIFT) as u16,
                block: low & DEV_BLOCK_MASK,
            },
            3 => Location::Stripe {
                stripe: low >> STRIPE_SHIFT,
                offset: (low & STRIPE_OFFSET_MASK) as u32,
            },
            // INVARIANT: kind is 1, 2 or 3.
            _ => Location::Perf { block: low },
        }
    }

    /// The number to report in an [`Error`] about this block: the block
    /// number for performance-tier addresses (the common case), else the
    /// raw address.
    pub const fn error_block(self) -> u64 {
        match self.location() {
            Location::Perf { block } => block,
            _ => self.0,
        }
    }

    /// True if the address is on the performance tier.
    pub const fn is_perf(self) -> bool {
        self.0 >> KIND_SHIFT == 1
    }

    /// The address `n` blocks further in the same device or stripe, or
    /// `None` if that leaves the field's range (never wraps into another
    /// device or stripe).
    pub const fn offset_by(self, n: u64) -> Option<Self> {
        let (field_mask, low) = match self.0 >> KIND_SHIFT {
            2 => (DEV_BLOCK_MASK, self.0 & DEV_BLOCK_MASK),
            3 => (STRIPE_OFFSET_MASK, self.0 & STRIPE_OFFSET_MASK),
            _ => (LOW_MASK, self.0 & LOW_MASK),
        };
        match low.checked_add(n) {
            Some(v) if v <= field_mask => Some(Self(self.0 - low + v)),
            _ => None,
        }
    }

    /// A sort-and-distance key: the block number in the same device or
    /// stripe, used for allocation hints.
    pub const fn block_in_field(self) -> u64 {
        match self.location() {
            Location::Perf { block } | Location::Device { block, .. } => block,
            Location::Stripe { offset, .. } => offset as u64,
        }
    }
}

impl core::fmt::Display for PAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.location() {
            Location::Perf { block } => write!(f, "perf:{block}"),
            Location::Device { device, block } => write!(f, "dev{device}:{block}"),
            Location::Stripe { stripe, offset } => write!(f, "stripe{stripe}+{offset}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let locs = [
            Location::Perf { block: 0 },
            Location::Perf {
                block: MAX_PERF_BLOCK,
            },
            Location::Device {
                device: 1,
                block: 77,
            },
            Location::Device {
                device: MAX_DEVICE_INDEX,
                block: MAX_DEVICE_BLOCK,
            },
            Location::Stripe {
                stripe: MAX_STRIPE,
                offset: STRIPE_DATA_BLOCKS - 1,
            },
        ];
        for loc in locs {
            let a = PAddr::new(loc).unwrap();
            assert_eq!(a.location(), loc);
            assert_eq!(PAddr::from_raw(a.to_raw(), Some(0)), Ok(a));
        }
    }

    #[test]
    fn rejects_bad_raw_and_bad_fields() {
        for raw in [0, 4 << 60, 15 << 60, 2 << 60] {
            assert!(PAddr::from_raw(raw, Some(9)).is_err(), "{raw:#x}");
        }
        assert!(PAddr::device(0, 1).is_err());
        assert!(PAddr::perf(MAX_PERF_BLOCK + 1).is_err());
        assert!(PAddr::stripe(0, STRIPE_DATA_BLOCKS).is_err());
    }

    #[test]
    fn offset_stays_in_its_field() {
        let s = PAddr::stripe(5, STRIPE_DATA_BLOCKS - 2).unwrap();
        assert_eq!(
            s.offset_by(1).map(|a| a.location()),
            Some(Location::Stripe {
                stripe: 5,
                offset: STRIPE_DATA_BLOCKS - 1
            })
        );
        assert_eq!(s.offset_by(2), None);
        let d = PAddr::device(3, MAX_DEVICE_BLOCK).unwrap();
        assert_eq!(d.offset_by(1), None);
        assert_eq!(PAddr::perf(10).unwrap().offset_by(5), PAddr::perf(15).ok());
    }
}
