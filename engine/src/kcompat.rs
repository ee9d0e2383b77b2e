// SPDX-License-Identifier: GPL-2.0

//! Userspace stand-ins for the few kernel allocation names the engine uses,
//! and the library that computes its CRC32C.
//!
//! The kernel build replaces this file with `rust/kcompat.rs`, which
//! re-exports the real `kernel::alloc` types and calls the kernel's
//! `crc32c()`. Only the subset of the kernel API that the engine needs is
//! provided, with the same signatures, so engine code that compiles here
//! compiles in the kernel. Every allocation is fallible (`try_reserve`), as
//! in the kernel.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};

/// Allocation failure, as `kernel::alloc::AllocError`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AllocError;

/// Allocation flags, as `kernel::alloc::Flags`. Ignored in userspace.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Flags(u32);

/// `GFP_KERNEL`: may sleep and reclaim.
pub const GFP_KERNEL: Flags = Flags(0);
/// `GFP_NOWAIT`: must not sleep.
pub const GFP_NOWAIT: Flags = Flags(1);

/// A [`KVec`] that may be large, as `kernel::alloc::KVVec` (which falls
/// back to `vmalloc`); the same type here.
pub type KVVec<T> = KVec<T>;

/// A growable array whose every allocation can fail, as `kernel::alloc::KVec`.
///
/// Like the kernel's, it is not `Clone`: copying allocates, so it is spelled
/// out with [`KVec::extend_from_slice`].
#[derive(Debug, PartialEq, Eq)]
pub struct KVec<T>(Vec<T>);

/// Empty, for any `T` (a derive would require `T: Default`), as the kernel's.
impl<T> Default for KVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Index out of bounds in [`KVec::remove`], as `kernel::alloc::kvec::RemoveError`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RemoveError;

impl<T> KVec<T> {
    /// An empty vector; allocates nothing.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// An empty vector with room for `capacity` elements.
    pub fn with_capacity(capacity: usize, _flags: Flags) -> Result<Self, AllocError> {
        let mut v = Vec::new();
        v.try_reserve_exact(capacity).map_err(|_| AllocError)?;
        Ok(Self(v))
    }

    /// Appends `v`.
    pub fn push(&mut self, v: T, flags: Flags) -> Result<(), AllocError> {
        self.reserve(1, flags)?;
        self.0.push(v);
        Ok(())
    }

    /// Makes room for `additional` more elements.
    pub fn reserve(&mut self, additional: usize, _flags: Flags) -> Result<(), AllocError> {
        self.0.try_reserve(additional).map_err(|_| AllocError)
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }

    /// Removes the element at `i`, shifting the rest down.
    pub fn remove(&mut self, i: usize) -> Result<T, RemoveError> {
        if i < self.0.len() {
            Ok(self.0.remove(i))
        } else {
            Err(RemoveError)
        }
    }

    /// Drops every element, keeping the allocation.
    pub fn clear(&mut self) {
        self.0.clear()
    }

    /// Drops the elements from `len` on.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }

    /// Keeps the elements for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&mut T) -> bool) {
        self.0.retain_mut(|x| f(x))
    }

    /// Elements the vector holds without reallocating.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// The elements as a slice.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The elements as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Clone> KVec<T> {
    /// A vector of `n` copies of `value`.
    pub fn from_elem(value: T, n: usize, flags: Flags) -> Result<Self, AllocError> {
        let mut v = Self::with_capacity(n, flags)?;
        v.0.resize(n, value);
        Ok(v)
    }

    /// Appends a copy of every element of `other`.
    pub fn extend_from_slice(&mut self, other: &[T], flags: Flags) -> Result<(), AllocError> {
        self.reserve(other.len(), flags)?;
        self.0.extend_from_slice(other);
        Ok(())
    }

    /// Grows with copies of `value`, or shrinks, to `new_len` elements.
    pub fn resize(&mut self, new_len: usize, value: T, flags: Flags) -> Result<(), AllocError> {
        self.reserve(new_len.saturating_sub(self.0.len()), flags)?;
        self.0.resize(new_len, value);
        Ok(())
    }
}

impl<T> Deref for KVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> DerefMut for KVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// A heap allocation whose creation can fail, as `kernel::alloc::KBox`.
#[derive(Debug)]
pub struct KBox<T: ?Sized>(Box<T>);

impl<T> KBox<T> {
    /// Moves `x` to the heap.
    pub fn new(x: T, _flags: Flags) -> Result<Self, AllocError> {
        // `Box::try_new` is unstable; a zero-sized or small allocation failing
        // aborts in userspace, which only tests run.
        Ok(Self(Box::new(x)))
    }

    /// The boxed value.
    pub fn into_inner(b: Self) -> T {
        *b.0
    }
}

impl<T: ?Sized> Deref for KBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> DerefMut for KBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// CRC32C of `data` (reflected, initial value and final xor `0xffff_ffff`,
/// as `crate::format::crc32c`), by the `crc32c` crate, which uses SSE 4.2
/// where the CPU has it.
#[cfg(feature = "std")]
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// Without feature `std` (a check that the engine builds `no_std`; no
/// shipped build: the kernel brings its own `kcompat`), the definition.
#[cfg(not(feature = "std"))]
pub use self::crc32c_bitwise as crc32c;

/// CRC32C from its definition, a bit at a time: the `no_std` userspace
/// build's, and the tests' reference for the library.
#[cfg(any(test, not(feature = "std")))]
pub fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            // Shift out the low bit; where it was set, subtract (xor) the
            // reflected polynomial.
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
