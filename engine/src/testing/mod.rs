// SPDX-License-Identifier: GPL-2.0

//! Test doubles and checkers: a power-cutting device, an in-memory node
//! store and a whole-tree checker. Used by the tests, the benchmarks and
//! `vtierctl`; never compiled into `vtier.ko`.

pub mod fault_device;
pub mod mem_node_store;
pub mod tree_check;
