// SPDX-License-Identifier: GPL-2.0

//! Whole-tree consistency check, for tests and the offline checker.
//!
//! Walks a tree depth-first with an explicit stack (no recursion) and
//! verifies every node and every shape rule of [`crate::btree::tree`]: node
//! validity, levels, exact separators, global key order and no overlap of
//! extents, fill bounds, generations never above the parent's or the open
//! generation, and no block reachable twice.

use crate::btree::node_tm::{NodeStore, NodeTm};
use crate::btree::tree::BTreeConfig;
use crate::error::{Error, Result};
use crate::io::paddr::PAddr;
use crate::kcompat::{KVec, GFP_KERNEL};

/// What a check found in a healthy tree.
#[derive(Debug)]
pub struct TreeReport {
    /// Every node's address, in depth-first order.
    pub nodes: KVec<PAddr>,
    /// Leaves.
    pub leaves: u64,
    /// Extents in the leaves.
    pub extents: u64,
    /// Blocks mapped by those extents.
    pub mapped_blocks: u64,
    /// Levels (1 for a lone leaf).
    pub height: u32,
}

struct Todo {
    addr: PAddr,
    level: Option<u8>,
    /// Exact smallest key the parent promises, if any.
    first_key: Option<u64>,
    parent_gen: u64,
}

fn bad(addr: PAddr, what: &'static str) -> Error {
    Error::Corrupt {
        block: Some(addr.error_block()),
        what,
    }
}

/// Checks the tree at `root`.
pub fn check_tree<S: NodeStore>(
    tm: &NodeTm<S>,
    cfg: &BTreeConfig,
    root: PAddr,
) -> Result<TreeReport> {
    let mut report = TreeReport {
        nodes: KVec::new(),
        leaves: 0,
        extents: 0,
        mapped_blocks: 0,
        height: 0,
    };
    let mut stack = KVec::new();
    stack.push(
        Todo {
            addr: root,
            level: None,
            first_key: None,
            parent_gen: tm.generation(),
        },
        GFP_KERNEL,
    )?;
    let mut next_free: Option<u64> = None;
    while let Some(t) = stack.pop() {
        let node = tm.read(t.addr, cfg.tree)?;
        report.nodes.push(t.addr, GFP_KERNEL)?;
        let is_root = t.level.is_none();
        if t.level.is_some_and(|l| l != node.level) {
            return Err(bad(t.addr, "level"));
        }
        if is_root {
            report.height = u32::from(node.level) + 1;
        }
        if node.generation > t.parent_gen {
            return Err(bad(t.addr, "generation above parent's"));
        }
        let n = node.len();
        let fill_ok = if is_root {
            n <= cfg.max(node.level) && (node.is_leaf() || n >= 2)
        } else {
            n >= cfg.min(node.level) && n <= cfg.max(node.level)
        };
        if !fill_ok {
            return Err(bad(t.addr, "fill bounds"));
        }
        if t.first_key.is_some() && t.first_key != node.keys.first().copied() {
            return Err(bad(t.addr, "separator is not the child's first key"));
        }
        if node.is_leaf() {
            report.leaves += 1;
            for (&k, e) in node.keys.iter().zip(node.extents.iter()) {
                if next_free.is_some_and(|f| k < f) {
                    return Err(bad(t.addr, "extents overlap or out of order"));
                }
                next_free = Some(k + u64::from(e.len));
                report.extents += 1;
                report.mapped_blocks += u64::from(e.len);
            }
            continue;
        }
        for i in (0..n).rev() {
            stack.push(
                Todo {
                    addr: node.children[i],
                    level: Some(node.level - 1),
                    first_key: Some(node.keys[i]),
                    parent_gen: node.generation,
                },
                GFP_KERNEL,
            )?;
        }
    }
    let mut sorted = KVec::new();
    sorted.extend_from_slice(&report.nodes, GFP_KERNEL)?;
    crate::heap_sort::sort(&mut sorted);
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad(root, "block reachable twice"));
    }
    Ok(report)
}
