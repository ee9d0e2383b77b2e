// SPDX-License-Identifier: GPL-2.0

//! The capacity tier's erasure-coded stripe store: the geometry `format`
//! chooses (and checks before any device is written), its creation on the
//! capacity devices, and `vtierctl status`.
//!
//! The store's area starts at the largest `data_start` of the capacity
//! devices (what the module passes to `StripeStore::open`), so it lies
//! after every member's superblocks and allocation map.

use std::fs::File;
use std::path::{Path, PathBuf};

use clap::Args;
use vtier_engine::ec::limits::MAX_DATA_SHARDS;
use vtier_engine::format::superblock::{Role, Superblock, BLOCK_SIZE};
use vtier_engine::io::file_device::FileDevice;
use vtier_engine::journal::meta_device::MetaDevice;
use vtier_engine::kcompat::{KVec, GFP_KERNEL};
use vtier_engine::stripe::geometry::{StripeGeometry, MAX_MEMBERS};
use vtier_engine::stripe::store::{StripeOptions, StripeStore};

/// Fewest capacity devices that get a stripe store (2 data + 1 parity).
pub const MIN_MEMBERS: usize = 3;
/// Default chunk size.
pub const DEFAULT_CHUNK_KIB: u32 = 64;
const OOM: &str = "out of memory";
/// Allocation-map pages `status` keeps cached (it reads little).
const CACHE_PAGES: usize = 8;

/// The stripe options of `vtierctl format`.
#[derive(Args, Debug, Clone, Default)]
pub struct StripeArgs {
    /// Data chunks per erasure-coded stripe (at least 2). Default: the
    /// number of capacity devices minus the parity chunks (at most 24).
    #[arg(long, value_name = "K")]
    pub data_chunks: Option<u32>,
    /// Parity chunks per stripe (at least 1): how many capacity devices may
    /// fail. Default: 1 with up to 4 capacity devices, else 2.
    #[arg(long, value_name = "M")]
    pub parity_chunks: Option<u32>,
    /// Chunk size in KiB, a multiple of 4 [default: 64].
    #[arg(long, value_name = "C")]
    pub chunk_kib: Option<u32>,
}

impl StripeArgs {
    fn any(&self) -> bool {
        self.data_chunks.is_some() || self.parity_chunks.is_some() || self.chunk_kib.is_some()
    }
}

/// What `format` will write on the capacity devices, checked up front.
#[derive(Debug)]
pub struct StripePlan {
    /// `data_start` that `MetaDevice::format_capacity` will give each capacity
    /// device (in order).
    pub data_starts: Vec<u64>,
    /// The store's options (`uuid` is filled in at format).
    pub opts: StripeOptions,
    /// The geometry `StripeStore::format` will choose.
    pub geom: StripeGeometry,
}

/// The `data_start` that `MetaDevice::format_capacity` gives a capacity device
/// of `nr_blocks` blocks (`MetaDevice::capacity_layout`). `format` checks the
/// superblock it wrote against it.
pub fn capacity_data_start(nr_blocks: u64) -> Result<u64, String> {
    MetaDevice::capacity_layout(nr_blocks)
        .map(|(_, data_start)| data_start)
        .map_err(|e| format!("{nr_blocks} blocks: no allocation map fits: {e}"))
}

/// The stripe store for capacity devices of `sizes` blocks, or `None` (no
/// store) for fewer than [`MIN_MEMBERS`] devices and no stripe options.
/// Every refusal is an error here, before anything is written.
pub fn plan(sizes: &[u64], args: &StripeArgs) -> Result<Option<StripePlan>, String> {
    let n = sizes.len();
    if n < MIN_MEMBERS {
        if args.any() {
            return Err(format!(
                "erasure-coded stripes need at least {MIN_MEMBERS} capacity devices \
                 (2 data + 1 parity chunks), {n} given"
            ));
        }
        return Ok(None);
    }
    let nr_members = u32::try_from(n).map_err(|_| "too many capacity devices".to_string())?;
    let m = args
        .parity_chunks
        .unwrap_or(if nr_members <= 4 { 1 } else { 2 });
    let k = match args.data_chunks {
        Some(k) => k,
        None => nr_members.saturating_sub(m).min(MAX_DATA_SHARDS as u32),
    };
    if m < 1 {
        return Err("--parity-chunks must be at least 1".to_string());
    }
    if k < 2 {
        return Err(format!("--data-chunks must be at least 2 (got {k})"));
    }
    if u64::from(k) + u64::from(m) > n as u64 {
        return Err(format!(
            "{k} data + {m} parity chunks need {} capacity devices, {n} given",
            u64::from(k) + u64::from(m)
        ));
    }
    let kib = args.chunk_kib.unwrap_or(DEFAULT_CHUNK_KIB);
    let block_kib = (BLOCK_SIZE / 1024) as u32;
    if kib == 0 || kib % block_kib != 0 {
        return Err(format!(
            "--chunk-kib {kib}: the chunk size must be a non-zero multiple of {block_kib} KiB"
        ));
    }
    let chunk_blocks = kib / block_kib;
    let data_starts = sizes
        .iter()
        .map(|&b| capacity_data_start(b))
        .collect::<Result<Vec<_>, _>>()?;
    let area_start = data_starts.iter().copied().max().unwrap_or(0);
    // As StripeStore::format: the largest geometry the smallest device holds.
    let area = sizes
        .iter()
        .map(|&b| b.saturating_sub(area_start))
        .min()
        .unwrap_or(0);
    let geom =
        StripeGeometry::new(k, m, nr_members, chunk_blocks, area_start, area).map_err(|e| {
            format!(
                "{k}+{m} stripes of {kib} KiB chunks on {n} capacity devices \
                 ({area} blocks each from block {area_start}) are not possible: {e} \
                 (at most 24 data and 8 parity chunks, 16 MiB chunks, 4 GiB of data per stripe)"
            )
        })?;
    Ok(Some(StripePlan {
        data_starts,
        opts: StripeOptions {
            uuid: [0; 16],
            k,
            m,
            chunk_blocks,
            area_start,
        },
        geom,
    }))
}

/// Checks that capacity device `i` (`path`, superblock `sb` just written)
/// got the `data_start` the plan assumed, so the store's area lies after
/// its metadata.
pub fn check_data_start(
    plan: Option<&StripePlan>,
    i: usize,
    path: &Path,
    sb: &Superblock,
) -> Result<(), String> {
    match plan.and_then(|p| p.data_starts.get(i).map(|&d| (d, p.opts.area_start))) {
        Some((expected, area_start)) if sb.data_start != expected || sb.data_start > area_start => {
            Err(format!(
                "{}: data starts at block {}, expected {expected}: stripe store not written",
                path.display(),
                sb.data_start
            ))
        }
        _ => Ok(()),
    }
}

/// One line naming a geometry, as `format` and `status` print it.
pub fn describe(g: &StripeGeometry) -> String {
    format!(
        "capacity tier: {}+{} stripes, {} KiB chunks, {} stripes",
        g.k,
        g.m,
        u64::from(g.chunk_blocks) * (BLOCK_SIZE / 1024) as u64,
        g.nr_stripes
    )
}

/// The line `status` prints for a set without a stripe store (one made
/// before `format` refused one or two capacity devices).
pub const NOT_CODED: &str = "capacity tier: not erasure coded (needs at least 3 capacity devices)";

/// Formats the store of `plan` on `devs` (the capacity devices, in order,
/// already carrying their superblocks) for volume `uuid`.
pub fn format_store(
    plan: &StripePlan,
    devs: Vec<FileDevice>,
    uuid: [u8; 16],
) -> Result<StripeGeometry, String> {
    let mut members = KVec::with_capacity(devs.len(), GFP_KERNEL).map_err(|_| OOM.to_string())?;
    for d in devs {
        members.push(d, GFP_KERNEL).map_err(|_| OOM.to_string())?;
    }
    let opts = StripeOptions { uuid, ..plan.opts };
    let store = StripeStore::format(members, &opts)
        .map_err(|e| format!("capacity devices: cannot format the stripe store: {e}"))?;
    let g = *store.geometry();
    if g != plan.geom {
        return Err(format!(
            "capacity devices: the stripe store got {g:?}, expected {:?}",
            plan.geom
        ));
    }
    Ok(g)
}

/// The capacity members of one volume, placed by their device index.
pub struct Members {
    /// Member `i` (device index `i + 1`); `None` where none was given.
    pub slots: Vec<Option<PathBuf>>,
    /// Where the stripe area starts (the largest `data_start`).
    pub area_start: u64,
    /// The volume's UUID.
    pub uuid: [u8; 16],
}

/// Reads the superblocks of `capacity` and places each device by its
/// index; `None` when the volume has fewer capacity devices than a stripe
/// store needs. Devices of another volume, other roles, a bad index or one
/// index given twice are errors.
pub fn order_members(capacity: &[PathBuf]) -> Result<Option<Members>, String> {
    if capacity.is_empty() {
        return Err("name the capacity devices with --capacity".to_string());
    }
    let mut volume = None;
    let mut nr_members = None;
    let mut slots: Vec<Option<PathBuf>> = Vec::new();
    let mut area_start = 0;
    for path in capacity {
        let sb = crate::read_superblock(path, false)?;
        if sb.role != Role::Capacity {
            return Err(format!(
                "{}: is the {:?} device, not a capacity device",
                path.display(),
                sb.role
            ));
        }
        if *volume.get_or_insert(sb.volume_uuid) != sb.volume_uuid {
            return Err(format!(
                "{}: belongs to volume {}, not to {}",
                path.display(),
                crate::hex(&sb.volume_uuid),
                crate::hex(&volume.unwrap_or_default())
            ));
        }
        let n = sb.nr_devices.saturating_sub(1) as usize;
        if n > MAX_MEMBERS {
            return Err(format!(
                "{}: its superblock says {n} capacity devices, a stripe store has at most {MAX_MEMBERS}",
                path.display()
            ));
        }
        if *nr_members.get_or_insert(n) != n {
            return Err(format!(
                "{}: its superblock says {n} capacity devices, another says {}",
                path.display(),
                nr_members.unwrap_or_default()
            ));
        }
        slots.resize_with(n, || None);
        let pos = (sb.device_index as usize)
            .checked_sub(1)
            .filter(|&p| p < n)
            .ok_or_else(|| format!("{}: bad device index {}", path.display(), sb.device_index))?;
        if let Some(other) = &slots[pos] {
            return Err(format!(
                "{} and {} are both capacity member {pos} (device {} of the set)",
                other.display(),
                path.display(),
                sb.device_index
            ));
        }
        area_start = area_start.max(sb.data_start);
        slots[pos] = Some(path.clone());
    }
    if nr_members.unwrap_or(0) < MIN_MEMBERS {
        return Ok(None);
    }
    Ok(Some(Members {
        slots,
        area_start,
        uuid: volume.unwrap_or_default(),
    }))
}

/// `vtierctl status --capacity DEV...`: opens the stripe store of the
/// capacity devices read-only and prints its geometry and state.
pub fn status(capacity: &[PathBuf]) -> Result<(), String> {
    let Some(members) = order_members(capacity)? else {
        println!("{NOT_CODED}");
        return Ok(());
    };
    let n = members.slots.len();
    let absent = members.slots.iter().filter(|s| s.is_none()).count();
    let mut devs = KVec::with_capacity(n, GFP_KERNEL).map_err(|_| OOM.to_string())?;
    let mut names = Vec::new();
    for slot in &members.slots {
        let d = match slot {
            // Opened read-only: status never writes (StripeStore::open
            // only reads).
            Some(path) => {
                let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let blocks = crate::device_blocks(&mut f, path)?;
                names.push(path.display().to_string());
                Some(FileDevice::with_blocks(f, blocks))
            }
            None => {
                names.push("(not given)".to_string());
                None
            }
        };
        devs.push(d, GFP_KERNEL).map_err(|_| OOM.to_string())?;
    }
    let area_start = members.area_start;
    let store = StripeStore::open(devs, area_start, &members.uuid, CACHE_PAGES).map_err(|e| {
        let hint = if absent > 0 {
            format!(" ({absent} of {n} capacity devices not given)")
        } else {
            String::new()
        };
        format!("capacity devices: cannot open the stripe store at block {area_start}: {e}{hint}")
    })?;
    let g = store.geometry();
    println!("{}", describe(g));
    println!(
        "area: from block {} on {} members, {} metadata blocks, {} slots of {} blocks each",
        g.area_start,
        g.nr_members,
        g.meta_blocks,
        g.slots_per_member,
        g.slot_blocks()
    );
    println!(
        "free stripes: {} of {} ({} KiB of data each)",
        store.free_stripes(),
        g.nr_stripes,
        g.data_blocks() * (BLOCK_SIZE / 1024) as u64
    );
    println!("generation: {}", store.generation());
    for (i, name) in names.iter().enumerate() {
        println!("member {i} device: {name}");
    }
    let mut text = String::new();
    store
        .write_status(&mut text)
        .map_err(|_| "cannot format the status".to_string())?;
    print!("{text}");
    Ok(())
}
