// SPDX-License-Identifier: GPL-2.0

//! `vtierctl dump`: what a volume that is not powered holds, as the engine
//! reads it, for people (text) and programs (`--json`): every member's
//! superblock copies, the WAL state, the B-tree's shape and node
//! addresses, every mapped extent and where its data lives, and the
//! stripe store's state. The volume is opened as `vtierctl check` opens
//! it (read-only, the WAL replayed in memory only), so a dump never
//! changes a member.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vtier_engine::io::paddr::{Location, PAddr};
use vtier_engine::map::extent::{Extent, EXTENT_CSUM, EXTENT_ENCRYPTED, EXTENT_HEADED};
use vtier_engine::testing::tree_check::check_tree;

use crate::check::{self, Report};

/// One mapped range.
#[derive(Serialize)]
pub struct ExtentDump {
    /// First logical block.
    pub lba: u64,
    /// Blocks.
    pub len: u64,
    /// "perf", "stripe" or "device".
    pub tier: &'static str,
    /// Performance or capacity-device block; for a stripe, the stripe id.
    pub at: u64,
    /// Block offset in the stripe's data (stripes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_offset: Option<u32>,
    /// Capacity device index (outside stripes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<u16>,
    /// The physical address as stored.
    pub paddr: u64,
    /// CRC32C of the whole extent's data, when the extent has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csum: Option<u32>,
    /// A data-log entry header precedes the data.
    pub headed: bool,
    /// The data is ciphertext.
    pub encrypted: bool,
}

impl ExtentDump {
    fn new(lba: u64, len: u64, e: &Extent) -> Self {
        let (tier, at, stripe_offset, device) = match e.paddr.location() {
            Location::Perf { block } => ("perf", block, None, None),
            Location::Stripe { stripe, offset } => ("stripe", stripe, Some(offset), None),
            Location::Device { device, block } => ("device", block, None, Some(device)),
        };
        Self {
            lba,
            len,
            tier,
            at,
            stripe_offset,
            device,
            paddr: e.paddr.to_raw(),
            csum: (e.flags & EXTENT_CSUM != 0).then_some(e.csum),
            headed: e.flags & EXTENT_HEADED != 0,
            encrypted: e.flags & EXTENT_ENCRYPTED != 0,
        }
    }

    fn line(&self) -> String {
        let place = match (self.tier, self.stripe_offset, self.device) {
            ("stripe", Some(o), _) => format!("stripe {} block {o}", self.at),
            ("device", _, Some(d)) => format!("capacity device {d} block {}", self.at),
            _ => format!("performance block {}", self.at),
        };
        let mut flags = Vec::new();
        if let Some(c) = self.csum {
            flags.push(format!("crc32c {c:08x}"));
        }
        if self.headed {
            flags.push("headed".to_string());
        }
        if self.encrypted {
            flags.push("encrypted".to_string());
        }
        format!(
            "{}+{} -> {place}{}",
            self.lba,
            self.len,
            if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            }
        )
    }
}

/// The B-tree's shape.
#[derive(Serialize, Default)]
pub struct TreeDump {
    /// Levels, leaves included.
    pub height: u32,
    /// Leaf nodes.
    pub leaves: u64,
    /// Every node, root first.
    pub nodes: Vec<NodeDump>,
}

/// Where a B-tree node lives.
#[derive(Serialize)]
pub struct NodeDump {
    /// The physical address as stored.
    pub paddr: u64,
    /// "perf", "stripe" or "device".
    pub tier: &'static str,
    /// Performance block, stripe id or capacity-device block.
    pub at: u64,
}

impl NodeDump {
    fn new(a: PAddr) -> Self {
        let (tier, at) = match a.location() {
            Location::Perf { block } => ("perf", block),
            Location::Stripe { stripe, .. } => ("stripe", stripe),
            Location::Device { block, .. } => ("device", block),
        };
        Self {
            paddr: a.to_raw(),
            tier,
            at,
        }
    }
}

/// Everything `dump` prints.
#[derive(Serialize, Default)]
pub struct Dump {
    /// What opening the volume found: superblock copies, WAL, stripes.
    pub notes: Vec<String>,
    /// What could not be read.
    pub errors: Vec<String>,
    /// Transactions the open replayed from the WAL (in memory).
    pub replayed_transactions: u64,
    /// Blocks the device exports.
    pub nr_blocks: u64,
    /// The B-tree.
    pub tree: TreeDump,
    /// Every mapped range, in logical order.
    pub extents: Vec<ExtentDump>,
    /// The stripe store's status, as the module's `status` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripes: Option<String>,
}

/// `vtierctl dump`: prints the volume (text or JSON). `Err` when it cannot
/// be opened; what cannot be read once it is open is listed in `errors`
/// and makes the exit status 1.
pub fn dump(
    perf: &Path,
    capacity: &[PathBuf],
    key_file: Option<&Path>,
    json: bool,
) -> Result<bool, String> {
    let mut report = Report::default();
    let mut d = Dump::default();
    if let Some(mut store) = check::open_volume(perf, capacity, key_file, &mut report)? {
        d.nr_blocks = store.nr_lbas();
        {
            let (tm, root, cfg) = store.map().tree_parts();
            match check_tree(tm, &cfg, root) {
                Ok(t) => {
                    d.tree = TreeDump {
                        height: t.height,
                        leaves: t.leaves,
                        nodes: t.nodes.iter().map(|&a| NodeDump::new(a)).collect(),
                    }
                }
                Err(e) => report.errors.push(format!("B-tree: {e}")),
            }
        }
        match check::mapped_extents(&mut store)? {
            Ok(found) => {
                d.extents = found
                    .iter()
                    .map(|(lba, len, e)| ExtentDump::new(*lba, *len, e))
                    .collect()
            }
            Err(e) => report.errors.push(e),
        }
        if let Some(st) = store.stripes() {
            let mut s = String::new();
            st.write_status(&mut s)
                .map_err(|_| "cannot format the stripe status".to_string())?;
            d.stripes = Some(s);
        }
    }
    d.notes = report.notes;
    d.errors = report.errors;
    d.replayed_transactions = report.replayed_transactions;
    if json {
        let text =
            serde_json::to_string_pretty(&d).map_err(|e| format!("cannot write the dump: {e}"))?;
        println!("{text}");
    } else {
        for n in &d.notes {
            println!("{n}");
        }
        println!("exported size: {} blocks", d.nr_blocks);
        println!(
            "B-tree: height {}, {} nodes, {} leaves",
            d.tree.height,
            d.tree.nodes.len(),
            d.tree.leaves
        );
        for n in &d.tree.nodes {
            println!("  node {:#x}: {} {}", n.paddr, n.tier, n.at);
        }
        println!("extents: {}", d.extents.len());
        for e in &d.extents {
            println!("  {}", e.line());
        }
        if let Some(s) = &d.stripes {
            print!("{s}");
        }
        for e in &d.errors {
            println!("error: {e}");
        }
    }
    Ok(d.errors.is_empty())
}
