// SPDX-License-Identifier: GPL-2.0

//! Reed-Solomon erasure coding for vtier's capacity tier.

#![no_std]
