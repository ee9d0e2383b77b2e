// SPDX-License-Identifier: GPL-2.0

//! The capacity tier's erasure-coded stripe store.
//!
//! A [`StripeStore`] keeps stripes of `k` data and `m` parity chunks on `n ≥
//! k + m` members (see [`crate::stripe::geometry`] for the placement). Stripe
//! ids come from an [`Allocator`] over the stripe-id space, whose map is
//! mirrored on every member after the store header ([`crate::stripe::meta`]).
//!
//! # Rules
//!
//! - Stripes are written whole ([`StripeStore::write_stripe`] allocates a
//!   fresh id and writes every chunk) and never rewritten while live: new
//!   content goes to a new stripe and the old one is freed. So there is no
//!   write hole; the only in-place writes are of chunks whose content is
//!   derived from the stripe's other chunks (scrub repair, rebuild).
//! - Data is opaque bytes (ciphertext for encrypted volumes): the store
//!   never looks at or transforms it.
//! - [`StripeStore::commit`] makes the stripes written and freed so far
//!   durable: it flushes the members, writes the map copy, flushes, then
//!   the store header on every member in service. After a crash the store
//!   is the last commit (or the one in flight, if its header reached a
//!   member): stripes written after it are free again, stripes freed after
//!   it are still allocated and readable. Frees take effect at the commit.
//! - Every chunk carries a header with the stripe id, a write sequence
//!   number and the CRC32C of its data ([`crate::stripe::chunk`]). A read
//!   uses only chunks that verify and carry the newest sequence number
//!   found; up to `m` missing, failing or bad chunks are reconstructed. With
//!   fewer than `k` good chunks the read fails with `Error::Corrupt` naming
//!   the stripe's address (never wrong data).
//! - With more than `m` members lost (failed, missing or being rebuilt) the
//!   store takes no more writes, frees or commits (`Error::ReadOnly`);
//!   reads of stripes that still have `k` good chunks keep working. A failed
//!   commit makes the store read-only until it is reopened.
//! - A member absent or failed at a metadata write is recorded as failed
//!   and is never used again until a replacement
//!   ([`StripeStore::replace_member`]) has been rebuilt
//!   ([`StripeStore::rebuild_step`], in `stripe/repair.rs`).

use crate::ec::backend::{GfKernel, Scalar};
use crate::ec::codec::ReedSolomon;
use crate::ec::limits::MAX_TOTAL_SHARDS;
use crate::error::{Error, Result};
use crate::format::superblock::volume_tag;
use crate::io::device::{BlockDevice, BLOCK_SIZE};
use crate::io::paddr::{Location, PAddr};
use crate::kcompat::{KVVec, KVec, GFP_KERNEL};
use crate::space::allocator::{AllocLayout, AllocRoot, Allocator};
use crate::space::geometry::Geometry;
use crate::stripe::chunk::{self, ChunkHeader};
use crate::stripe::geometry::{StripeGeometry, HEADER_COPIES, MAX_MEMBERS};
use crate::stripe::member::{Member, MemberState, MemberStats, MetaView};
use crate::stripe::meta::{self, StoreHeader, STATE_FAILED, STATE_OK, STATE_REBUILDING};

/// Write sequence numbers reserved by one header write.
pub const SEQ_BATCH: u64 = 1 << 16;

/// What [`StripeStore::format`] needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StripeOptions {
    /// Store UUID (the volume's).
    pub uuid: [u8; 16],
    /// Data chunks per stripe.
    pub k: u32,
    /// Parity chunks per stripe.
    pub m: u32,
    /// Data blocks per chunk.
    pub chunk_blocks: u32,
    /// First block of the store's area on every member.
    pub area_start: u64,
}

/// Store-wide counters.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct StripeStats {
    /// Stripes written.
    pub stripes_written: u64,
    /// Reads served.
    pub reads: u64,
    /// Reads that needed a reconstruction.
    pub degraded_reads: u64,
    /// Reads refused because fewer than `k` chunks were good.
    pub unreadable_reads: u64,
    /// Stripes freed.
    pub stripes_freed: u64,
    /// Commits completed.
    pub commits: u64,
}

/// What a read of one chunk found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// Not read yet.
    Unread,
    /// Its member is not usable for this stripe.
    Unavailable,
    /// The read failed.
    ReadError,
    /// It did not verify, or it belongs to an older write.
    Bad,
    /// It verified; its write sequence number.
    Good(u64),
}

/// An erasure-coded stripe store on `n` members; see the module docs.
pub struct StripeStore<D> {
    pub(crate) geom: StripeGeometry,
    uuid: [u8; 16],
    tag: u64,
    pub(crate) codec: ReedSolomon,
    /// Who runs the codec's hot loop: the scalar loop unless the caller
    /// chose otherwise ([`StripeStore::set_gf_kernel`]).
    pub(crate) gf: &'static (dyn GfKernel + Sync),
    pub(crate) members: KVec<Member<D>>,
    pub(crate) alloc: Allocator,
    pub(crate) primary: usize,
    generation: u64,
    map_generation: u64,
    map_root: AllocRoot,
    next_seq: u64,
    seq_limit: u64,
    /// Member being rebuilt and the first stripe not yet rebuilt on it.
    pub(crate) rebuild: Option<(usize, u64)>,
    /// Stripes freed since the last commit, in the order they were freed.
    frees: KVec<u64>,
    /// The same stripes, one bit each (`nr_stripes` bits, 8 MiB for 64 Mi
    /// stripes: may be vmalloc'ed), so that a second free of one is
    /// refused without a search of `frees`.
    pending: KVVec<u64>,
    pub(crate) failed: bool,
    pub(crate) stats: StripeStats,
    /// Room for the `k + m` slots of one stripe.
    pub(crate) scratch: KVec<u8>,
    pub(crate) repair: crate::stripe::repair::RepairState,
    /// Allocation hint: after the last stripe allocated.
    hint: u64,
}

/// The engine error for a codec error (bad arguments are our bug, too few
/// shards is damage).
pub(crate) fn ec_error(e: crate::ec::error::Error) -> Error {
    match e {
        crate::ec::error::Error::TooFewShardsPresent => Error::Corrupt {
            block: None,
            what: "stripe: too few chunks to reconstruct",
        },
        _ => Error::InvalidArgument,
    }
}

/// The `k + m` chunk data areas of `scratch` (one slot each, header first).
pub(crate) fn shards<'a>(
    scratch: &'a mut [u8],
    geom: &StripeGeometry,
) -> [&'a mut [u8]; MAX_TOTAL_SHARDS] {
    let mut out: [&mut [u8]; MAX_TOTAL_SHARDS] = core::array::from_fn(|_| <&mut [u8]>::default());
    for (o, slot) in out
        .iter_mut()
        .zip(scratch.chunks_exact_mut(geom.slot_bytes()))
    {
        *o = &mut slot[BLOCK_SIZE..];
    }
    out
}

/// The allocation map layout of `geom`, in blocks of the metadata view.
fn layout(geom: &StripeGeometry) -> Result<AllocLayout> {
    let copy = Geometry::new(geom.nr_stripes)?.copy_blocks();
    Ok(AllocLayout {
        nr_blocks: geom.nr_stripes,
        copies: [HEADER_COPIES, HEADER_COPIES + copy],
    })
}

/// The metadata view of `members`.
pub(crate) fn view<'a, D>(
    members: &'a mut [Member<D>],
    geom: &StripeGeometry,
    primary: usize,
) -> MetaView<'a, D> {
    MetaView {
        members,
        primary,
        base: geom.area_start,
        blocks: geom.meta_blocks,
    }
}

impl<D: BlockDevice> StripeStore<D> {
    fn assemble(
        geom: StripeGeometry,
        uuid: [u8; 16],
        members: KVec<Member<D>>,
        alloc: Allocator,
    ) -> Result<Self> {
        let codec = ReedSolomon::new(geom.k as usize, geom.m as usize).map_err(ec_error)?;
        let bytes = geom
            .slot_bytes()
            .checked_mul(geom.width())
            .ok_or(Error::InvalidArgument)?;
        let pending_words =
            usize::try_from(geom.nr_stripes.div_ceil(64)).map_err(|_| Error::InvalidArgument)?;
        Ok(Self {
            geom,
            uuid,
            tag: volume_tag(&uuid),
            codec,
            gf: &Scalar,
            members,
            alloc,
            primary: 0,
            generation: 0,
            map_generation: 1,
            map_root: AllocRoot {
                copy: 1,
                crc: 0,
                free: 0,
            },
            next_seq: 1,
            seq_limit: 1,
            rebuild: None,
            frees: KVec::new(),
            pending: KVVec::from_elem(0u64, pending_words, GFP_KERNEL)?,
            failed: false,
            stats: StripeStats::default(),
            scratch: KVec::from_elem(0u8, bytes, GFP_KERNEL)?,
            repair: Default::default(),
            hint: 0,
        })
    }

    /// Formats a new store on `devs` (member `i` = `devs[i]`): the largest
    /// geometry that fits the smallest device, an empty allocation map, and
    /// both header copies on every member.
    pub fn format(mut devs: KVec<D>, opts: &StripeOptions) -> Result<Self> {
        let area = devs
            .iter()
            .map(|d| d.nr_blocks().saturating_sub(opts.area_start))
            .min()
            .ok_or(Error::InvalidArgument)?;
        let n = u32::try_from(devs.len()).map_err(|_| Error::InvalidArgument)?;
        let geom =
            StripeGeometry::new(opts.k, opts.m, n, opts.chunk_blocks, opts.area_start, area)?;
        let mut members = KVec::with_capacity(devs.len(), GFP_KERNEL)?;
        // KVec has no by-value iterator in userspace: take them from the end.
        while let Some(dev) = devs.pop() {
            members.push(
                Member {
                    dev: Some(dev),
                    stats: MemberStats::default(),
                },
                GFP_KERNEL,
            )?;
        }
        members.reverse();
        let (alloc, root) =
            Allocator::format(&mut view(&mut members, &geom, 0), layout(&geom)?, &[], 1)?;
        let mut store = Self::assemble(geom, opts.uuid, members, alloc)?;
        store.map_root = root;
        view(&mut store.members, &geom, 0).flush()?;
        store.write_headers()?;
        store.write_headers()?;
        if store.lost() > 0 {
            return Err(Error::Io);
        }
        Ok(store)
    }

    /// The newest valid header copy on `dev`, if any, or the error of copy 0.
    fn read_header(dev: &mut D, area_start: u64, buf: &mut [u8]) -> Result<StoreHeader> {
        let mut best: Option<StoreHeader> = None;
        let mut err = None;
        for c in 0..HEADER_COPIES {
            let block = area_start + c;
            match dev.read(block, buf).and_then(|()| meta::decode(buf, block)) {
                Ok(h) if best.is_none_or(|b| b.generation < h.generation) => best = Some(h),
                Ok(_) => {}
                Err(e) => err = err.or(Some(e)),
            }
        }
        best.ok_or(err.unwrap_or(Error::Io))
    }

    /// Opens the store `uuid` on `devs` (member `i` = `devs[i]`, `None` if
    /// absent) whose area starts at `area_start`: takes the newest header of
    /// that store found on any member, accepts the members that carry its
    /// header for their position (a device of another store is missing), and mounts the allocation map from the first member
    /// whose copy verifies completely. A rebuild in progress resumes at its
    /// cursor with [`StripeStore::rebuild_step`].
    pub fn open(
        mut devs: KVec<Option<D>>,
        area_start: u64,
        uuid: &[u8; 16],
        cache_pages: usize,
    ) -> Result<Self> {
        let mut buf = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
        let mut own: KVec<Option<StoreHeader>> = KVec::with_capacity(devs.len(), GFP_KERNEL)?;
        let mut members = KVec::with_capacity(devs.len(), GFP_KERNEL)?;
        let mut first_err = None;
        devs.reverse();
        while let Some(mut dev) = devs.pop() {
            let h = match &mut dev {
                Some(d) => match Self::read_header(d, area_start, &mut buf) {
                    Ok(h) if h.uuid == *uuid => Some(h),
                    Ok(_) => {
                        first_err = first_err.or(Some(Error::Corrupt {
                            block: Some(area_start),
                            what: "stripe store header of another store",
                        }));
                        None
                    }
                    Err(e) => {
                        first_err = first_err.or(Some(e));
                        None
                    }
                },
                None => None,
            };
            own.push(h, GFP_KERNEL)?;
            members.push(
                Member {
                    dev,
                    stats: MemberStats::default(),
                },
                GFP_KERNEL,
            )?;
        }
        let best = own
            .iter()
            .flatten()
            .max_by_key(|h| h.generation)
            .copied()
            .ok_or(first_err.unwrap_or(Error::InvalidArgument))?;
        let geom = best.geom;
        if members.len() != geom.nr_members as usize {
            return Err(Error::InvalidArgument);
        }
        for (i, (m, h)) in members.iter_mut().zip(own.iter()).enumerate() {
            let mine = h.is_some_and(|h| h.member as usize == i && h.geom == geom)
                && m.dev
                    .as_ref()
                    .is_some_and(|d| d.nr_blocks() >= geom.member_blocks());
            m.stats.state = match (best.states[i], mine) {
                (STATE_FAILED, _) => MemberState::Failed,
                (STATE_OK, true) => MemberState::Ok,
                (STATE_REBUILDING, true) => MemberState::Rebuilding,
                _ => MemberState::Missing,
            };
        }
        let alloc = Self::mount_map(&mut members, &best, cache_pages)?;
        let mut store = Self::assemble(geom, best.uuid, members, alloc.0)?;
        store.primary = alloc.1;
        store.generation = best.generation;
        store.map_generation = best.map_generation;
        store.map_root = best.map;
        store.next_seq = best.seq_limit.max(1);
        store.seq_limit = store.next_seq;
        store.rebuild = best
            .rebuild
            .map(|(r, c)| (r as usize, c))
            .filter(|&(r, _)| store.members[r].state() == MemberState::Rebuilding);
        Ok(store)
    }

    /// Mounts the allocation map from the first member in service whose
    /// copy verifies (summaries and every bitmap page).
    fn mount_map(
        members: &mut [Member<D>],
        h: &StoreHeader,
        cache_pages: usize,
    ) -> Result<(Allocator, usize)> {
        let geom = h.geom;
        let mut err = Error::Io;
        for primary in 0..members.len() {
            if !members[primary].in_service() {
                continue;
            }
            let mut v = view(members, &geom, primary);
            let r = Allocator::open(&mut v, layout(&geom)?, h.map, h.map_generation, cache_pages)
                .and_then(|mut a| a.verify_all(&mut v).map(|_| a));
            match r {
                Ok(a) => return Ok((a, primary)),
                Err(e) => err = e,
            }
        }
        Err(err)
    }

    /// Gives the members back (for a crash test, or to close the store).
    pub fn into_members(mut self) -> KVec<Option<D>> {
        let mut out = KVec::new();
        while let Some(m) = self.members.pop() {
            // Only fails without memory; the devices are dropped then.
            if out.push(m.dev, GFP_KERNEL).is_err() {
                break;
            }
        }
        out.reverse();
        out
    }

    /// Has `gf` run the codec's hot loop from now on: `vtier.ko` passes the
    /// fastest SIMD kernel that passed its self-test at load. Parity checks
    /// (`verify`, in scrub and repair) stay on the scalar loop, which
    /// compares a block at a time without a buffer for the parity.
    pub fn set_gf_kernel(&mut self, gf: &'static (dyn GfKernel + Sync)) {
        self.gf = gf;
    }

    /// The layout.
    pub fn geometry(&self) -> &StripeGeometry {
        &self.geom
    }

    /// Store-wide counters.
    pub fn stats(&self) -> StripeStats {
        self.stats
    }

    /// Counters and state of member `i`.
    pub fn member_stats(&self, i: usize) -> Option<MemberStats> {
        self.members.get(i).map(|m| m.stats)
    }

    /// Members failed, missing or being rebuilt.
    pub fn lost(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.state() != MemberState::Ok)
            .count()
    }

    /// Whether writes are refused: more than `m` members lost, or a failed
    /// commit.
    pub fn is_read_only(&self) -> bool {
        self.failed || self.lost() > self.geom.m as usize
    }

    /// Header generation of the last metadata write.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Free stripe ids (frees not yet committed still count as used).
    pub fn free_stripes(&self) -> u64 {
        self.alloc.free_blocks()
    }

    /// Stripes freed since the last commit: free once it is made. A caller
    /// whose store is full commits before it writes, or it gets
    /// `Error::NoSpace`.
    pub fn pending_frees(&self) -> u64 {
        self.frees.len() as u64
    }

    /// Writes the store's state and counters as text, one fact per line
    /// (`name: value ...`), for debugfs and `vtierctl status`.
    pub fn write_status(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let g = &self.geom;
        let health = if self.failed {
            "failed (read-only until reopened)"
        } else if self.is_read_only() {
            "read-only (more than m members lost)"
        } else if self.lost() > 0 {
            "degraded"
        } else {
            "ok"
        };
        writeln!(
            out,
            "geometry: {}+{} on {} members, chunk {} blocks, {} stripes, coded by {}",
            g.k,
            g.m,
            g.nr_members,
            g.chunk_blocks,
            g.nr_stripes,
            self.gf.name()
        )?;
        writeln!(out, "health: {health}, {} members lost", self.lost())?;
        let free = self.alloc.free_blocks();
        writeln!(
            out,
            "stripes: {} used, {free} free, {} of them freed at the next commit",
            g.nr_stripes - free,
            self.frees.len()
        )?;
        for (i, m) in self.members.iter().enumerate() {
            let st = &m.stats;
            writeln!(
                out,
                "member {i}: {} read_errors {} write_errors {} checksum_errors {} reconstructions {} repairs {}",
                st.state.name(),
                st.read_errors,
                st.write_errors,
                st.checksum_errors,
                st.reconstructions,
                st.repairs
            )?;
        }
        let s = &self.stats;
        writeln!(
            out,
            "io: written {} reads {} degraded {} unreadable {} freed {} commits {}",
            s.stripes_written,
            s.reads,
            s.degraded_reads,
            s.unreadable_reads,
            s.stripes_freed,
            s.commits
        )?;
        let r = self.rebuild_progress();
        match r.member {
            Some(i) => writeln!(out, "rebuild: member {i} {}/{} stripes", r.done, r.total)?,
            None => writeln!(out, "rebuild: none")?,
        }
        writeln!(
            out,
            "rebuilt: {} chunks, {} stripes unrecoverable",
            r.rebuilt, r.unrecoverable
        )?;
        let c = self.scrub_report();
        writeln!(
            out,
            "scrub: checked {} checksum_errors {} read_errors {} parity_mismatches {} repaired {} unrepairable {}",
            c.stripes_checked, c.checksum_errors, c.read_errors, c.parity_mismatches, c.repaired, c.unrepairable
        )?;
        if !c.listed().is_empty() {
            write!(out, "unrepairable stripes:")?;
            for s in c.listed() {
                write!(out, " {s}")?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    fn check_writable(&self) -> Result {
        if self.is_read_only() {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn check_stripe(&self, s: u64) -> Result {
        if s < self.geom.nr_stripes {
            Ok(())
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// Whether stripe `s` is allocated (written and not freed, or freed
    /// since the last commit).
    pub fn is_allocated(&mut self, s: u64) -> Result<bool> {
        self.check_stripe(s)?;
        self.alloc
            .is_allocated(&mut view(&mut self.members, &self.geom, self.primary), s)
    }

    /// The error for a stripe with fewer than `k` good chunks.
    pub(crate) fn unreadable(s: u64) -> Error {
        Error::Corrupt {
            block: Some(PAddr::stripe(s, 0).map_or(s, |a| a.to_raw())),
            what: "stripe: fewer than k chunks readable",
        }
    }

    /// What the header of chunk `j` of stripe `s` must say.
    pub(crate) fn chunk_header(&self, s: u64, j: usize, seq: u64) -> ChunkHeader {
        ChunkHeader {
            tag: self.tag,
            stripe: s,
            seq,
            k: self.geom.k as u8,
            m: self.geom.m as u8,
            index: j as u8,
            chunk_blocks: self.geom.chunk_blocks,
        }
    }

    /// Whether member `i`'s chunk of stripe `s` may be read.
    pub(crate) fn readable(&self, i: usize, s: u64) -> bool {
        let m = &self.members[i];
        m.dev.is_some()
            && match m.state() {
                MemberState::Ok => true,
                MemberState::Rebuilding => {
                    matches!(self.rebuild, Some((r, c)) if r == i && s < c)
                }
                _ => false,
            }
    }

    /// Reads and verifies chunk `j` of stripe `s` into `slot`.
    pub(crate) fn load_chunk(&mut self, s: u64, j: usize, slot: &mut [u8]) -> Chunk {
        let Some((i, block)) = self.geom.chunk_location(s, j) else {
            return Chunk::Unavailable;
        };
        if !self.readable(i, s) {
            return Chunk::Unavailable;
        }
        let want = self.chunk_header(s, j, 0);
        let m = &mut self.members[i];
        if m.read(block, slot).is_err() {
            return Chunk::ReadError;
        }
        match chunk::verify(slot, block, &want) {
            Ok(seq) => Chunk::Good(seq),
            Err(_) => {
                m.stats.checksum_errors += 1;
                Chunk::Bad
            }
        }
    }

    /// Reads every chunk of `s` still `Unread` in `st`, then keeps as good
    /// only the chunks of the newest write; returns its sequence number, or
    /// the unreadable error if fewer than `k` chunks are good.
    pub(crate) fn load_rest(
        &mut self,
        s: u64,
        scratch: &mut [u8],
        st: &mut [Chunk; MAX_TOTAL_SHARDS],
    ) -> Result<u64> {
        let sb = self.geom.slot_bytes();
        for (j, slot) in scratch.chunks_exact_mut(sb).enumerate() {
            if st[j] == Chunk::Unread {
                st[j] = self.load_chunk(s, j, slot);
            }
        }
        let w = self.geom.width();
        let seq = st[..w]
            .iter()
            .filter_map(|c| match c {
                Chunk::Good(q) => Some(*q),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let mut good = 0;
        for (j, c) in st[..w].iter_mut().enumerate() {
            match *c {
                Chunk::Good(q) if q == seq => good += 1,
                Chunk::Good(_) => {
                    *c = Chunk::Bad;
                    if let Some((i, _)) = self.geom.chunk_location(s, j) {
                        self.members[i].stats.checksum_errors += 1;
                    }
                }
                _ => {}
            }
        }
        if good < self.geom.k as usize {
            return Err(Self::unreadable(s));
        }
        Ok(seq)
    }

    /// Presence flags for the codec: the good chunks of write `seq`.
    pub(crate) fn present(
        &self,
        st: &[Chunk; MAX_TOTAL_SHARDS],
        seq: u64,
    ) -> [bool; MAX_TOTAL_SHARDS] {
        core::array::from_fn(|j| st[j] == Chunk::Good(seq))
    }

    /// Writes `data` (exactly `k` chunks of data) as a new stripe and
    /// returns its id. Chunks of lost members are left out (a degraded
    /// write); the stripe is durable at the next commit.
    pub fn write_stripe(&mut self, data: &[u8]) -> Result<u64> {
        self.check_writable()?;
        if data.len() != self.geom.data_bytes() {
            return Err(Error::InvalidArgument);
        }
        if self.next_seq >= self.seq_limit {
            self.seq_limit = self.next_seq + SEQ_BATCH;
            self.write_headers()?;
        }
        let hint = self.hint;
        let s = self
            .alloc
            .alloc(&mut view(&mut self.members, &self.geom, self.primary), hint)?;
        self.hint = s + 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut scratch = core::mem::take(&mut self.scratch);
        let r = self.write_slots(s, seq, data, &mut scratch);
        self.scratch = scratch;
        match r {
            Ok(()) => {
                self.stats.stripes_written += 1;
                Ok(s)
            }
            Err(e) => {
                // Never committed as written: give the id back at the next
                // commit (if the store still takes one).
                let v = &mut view(&mut self.members, &self.geom, self.primary);
                if self.alloc.free(v, s, 1).is_ok() {
                    self.remember_free(s)?;
                }
                Err(e)
            }
        }
    }

    fn write_slots(&mut self, s: u64, seq: u64, data: &[u8], scratch: &mut [u8]) -> Result {
        let (cb, sb, w) = (
            self.geom.chunk_bytes(),
            self.geom.slot_bytes(),
            self.geom.width(),
        );
        for (slot, d) in scratch.chunks_exact_mut(sb).zip(data.chunks_exact(cb)) {
            slot[BLOCK_SIZE..].copy_from_slice(d);
        }
        let mut sh = shards(scratch, &self.geom);
        self.codec
            .encode_shards_with(self.gf, &mut sh[..w])
            .map_err(ec_error)?;
        for (j, slot) in scratch.chunks_exact_mut(sb).enumerate() {
            self.write_chunk(s, j, seq, slot)?;
        }
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Seals and writes chunk `j` of stripe `s` (write `seq`) from `slot`
    /// if its member is in service; a failure fails the member. Errors
    /// only for a bad argument.
    pub(crate) fn write_chunk(&mut self, s: u64, j: usize, seq: u64, slot: &mut [u8]) -> Result {
        let (i, block) = self
            .geom
            .chunk_location(s, j)
            .ok_or(Error::InvalidArgument)?;
        chunk::seal(slot, block, &self.chunk_header(s, j, seq))?;
        let m = &mut self.members[i];
        if m.in_service() {
            // A failure is recorded in the member's state and counters.
            let _ = m.write(block, slot);
        }
        Ok(())
    }

    /// Reads the whole data of stripe `s` into `out`.
    pub fn read_stripe(&mut self, s: u64, out: &mut [u8]) -> Result {
        if out.len() != self.geom.data_bytes() {
            return Err(Error::InvalidArgument);
        }
        self.read_blocks(s, 0, out)
    }

    /// Reads `out.len() / BLOCK_SIZE` data blocks of stripe `s` from block
    /// `offset` of its data: only the chunks that hold them when those
    /// verify, else every chunk, reconstructing up to `m` missing ones.
    pub fn read_blocks(&mut self, s: u64, offset: u64, out: &mut [u8]) -> Result {
        self.check_stripe(s)?;
        let len = out.len() as u64 / BLOCK_SIZE as u64;
        if out.is_empty()
            || out.len() % BLOCK_SIZE != 0
            || offset
                .checked_add(len)
                .is_none_or(|e| e > self.geom.data_blocks())
        {
            return Err(Error::InvalidArgument);
        }
        if !self.is_allocated(s)? {
            return Err(Error::InvalidArgument);
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        let r = self.read_into(s, offset as usize * BLOCK_SIZE, out, &mut scratch);
        self.scratch = scratch;
        match r {
            Ok(()) => self.stats.reads += 1,
            Err(Error::Corrupt { .. }) => self.stats.unreadable_reads += 1,
            Err(_) => {}
        }
        r
    }

    fn read_into(&mut self, s: u64, at: usize, out: &mut [u8], scratch: &mut [u8]) -> Result {
        let (cb, sb, w) = (
            self.geom.chunk_bytes(),
            self.geom.slot_bytes(),
            self.geom.width(),
        );
        let (first, last) = (at / cb, (at + out.len() - 1) / cb);
        let mut st = [Chunk::Unread; MAX_TOTAL_SHARDS];
        let mut seq = None;
        let mut fast = true;
        for (j, slot) in scratch
            .chunks_exact_mut(sb)
            .enumerate()
            .take(last + 1)
            .skip(first)
        {
            st[j] = self.load_chunk(s, j, slot);
            match (st[j], seq) {
                (Chunk::Good(q), None) => seq = Some(q),
                (Chunk::Good(q), Some(p)) if p == q => {}
                _ => fast = false,
            }
        }
        if !fast {
            let seq = self.load_rest(s, scratch, &mut st)?;
            let present = self.present(&st, seq);
            let mut sh = shards(scratch, &self.geom);
            self.codec
                .reconstruct_data_with(self.gf, &mut sh[..w], &present[..w])
                .map_err(ec_error)?;
            for j in (0..self.geom.k as usize).filter(|&j| !present[j]) {
                if let Some((i, _)) = self.geom.chunk_location(s, j) {
                    self.members[i].stats.reconstructions += 1;
                }
            }
            self.stats.degraded_reads += 1;
        }
        let mut done = 0;
        while done < out.len() {
            let pos = at + done;
            let (j, off) = (pos / cb, pos % cb);
            let n = (cb - off).min(out.len() - done);
            let src = j * sb + BLOCK_SIZE + off;
            out[done..done + n].copy_from_slice(&scratch[src..src + n]);
            done += n;
        }
        Ok(())
    }

    /// Reads the data blocks at stripe address `addr` (kind 3) into `out`.
    pub fn read_paddr(&mut self, addr: PAddr, out: &mut [u8]) -> Result {
        match addr.location() {
            Location::Stripe { stripe, offset } => self.read_blocks(stripe, offset.into(), out),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Frees stripe `s` at the next commit (until then it stays readable).
    pub fn free_stripe(&mut self, s: u64) -> Result {
        self.check_writable()?;
        self.check_stripe(s)?;
        if self.is_pending(s) {
            return Err(Error::InvalidArgument);
        }
        self.alloc
            .free(&mut view(&mut self.members, &self.geom, self.primary), s, 1)?;
        self.remember_free(s)?;
        self.stats.stripes_freed += 1;
        Ok(())
    }

    /// The word of `pending` that holds stripe `s`, and its bit.
    fn pending_bit(&self, s: u64) -> Option<(usize, u64)> {
        let w = usize::try_from(s / 64).ok()?;
        (w < self.pending.len()).then_some((w, 1 << (s % 64)))
    }

    /// Whether stripe `s` was freed since the last commit.
    fn is_pending(&self, s: u64) -> bool {
        self.pending_bit(s)
            .is_some_and(|(w, bit)| self.pending.get(w).is_some_and(|v| v & bit != 0))
    }

    /// Sets (`on`) or clears stripe `s`'s bit in `pending`; `None` for a
    /// stripe the store does not have.
    fn mark_pending(&mut self, s: u64, on: bool) -> Option<()> {
        let (w, bit) = self.pending_bit(s)?;
        let v = self.pending.get_mut(w)?;
        if on {
            *v |= bit;
        } else {
            *v &= !bit;
        }
        Some(())
    }

    /// Records the free of stripe `s` (already given to the allocator).
    fn remember_free(&mut self, s: u64) -> Result {
        self.pending_bit(s).ok_or(Error::InvalidArgument)?;
        self.frees.push(s, GFP_KERNEL)?;
        self.mark_pending(s, true);
        Ok(())
    }

    /// Makes every stripe written and freed so far durable (see the module
    /// docs). A failure makes the store read-only until reopened.
    pub fn commit(&mut self) -> Result {
        self.check_writable()?;
        let r = self.commit_steps();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn commit_steps(&mut self) -> Result {
        for m in self.members.iter_mut().filter(|m| m.in_service()) {
            // A failure fails the member; counted below.
            let _ = m.flush();
        }
        self.check_writable()?;
        let generation = self.map_generation + 1;
        let v = &mut view(&mut self.members, &self.geom, self.primary);
        let root = self.alloc.write_copy(v, generation)?;
        v.flush()?;
        self.map_generation = generation;
        self.map_root = root;
        self.seq_limit = self.next_seq + SEQ_BATCH;
        self.write_headers()?;
        let mut frees = core::mem::take(&mut self.frees);
        for &s in frees.iter() {
            self.mark_pending(s, false);
        }
        frees.clear();
        self.frees = frees;
        self.stats.commits += 1;
        Ok(())
    }

    /// Writes the next header generation to every member in service and
    /// flushes each; repeats while members fail on the way, so the header
    /// records them. Absent members are recorded as failed.
    pub(crate) fn write_headers(&mut self) -> Result {
        let r = self.write_headers_once();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn write_headers_once(&mut self) -> Result {
        let mut buf = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
        let mut first = true;
        loop {
            if let Some((r, _)) = self.rebuild {
                if self.members[r].state() != MemberState::Rebuilding {
                    self.rebuild = None;
                }
            }
            let lost_before = self.lost();
            let generation = self.generation + 1;
            let mut states = [0u8; MAX_MEMBERS];
            for (s, m) in states.iter_mut().zip(self.members.iter()) {
                *s = match m.state() {
                    MemberState::Ok => STATE_OK,
                    MemberState::Rebuilding => STATE_REBUILDING,
                    MemberState::Failed | MemberState::Missing => STATE_FAILED,
                };
            }
            let mut h = StoreHeader {
                generation,
                uuid: self.uuid,
                member: 0,
                geom: self.geom,
                map_generation: self.map_generation,
                map: self.map_root,
                seq_limit: self.seq_limit,
                rebuild: self.rebuild.map(|(r, c)| (r as u32, c)),
                states,
            };
            let block = meta::header_block(&self.geom, generation);
            let mut written = false;
            for (i, m) in self.members.iter_mut().enumerate() {
                if !m.in_service() {
                    continue;
                }
                h.member = i as u32;
                meta::encode(&h, block, &mut buf)?;
                written |= m.write(block, &buf).and_then(|()| m.flush()).is_ok();
            }
            if !written {
                // Only the first pass decides: a later one merely records
                // members that failed during the first, which is durable.
                return if first { Err(Error::Io) } else { Ok(()) };
            }
            self.generation = generation;
            first = false;
            if self.lost() == lost_before {
                return Ok(());
            }
        }
    }

    /// Marks member `i` failed (an administrator's decision, or a test's).
    pub fn fail_member(&mut self, i: usize) -> Result {
        let m = self.members.get_mut(i).ok_or(Error::InvalidArgument)?;
        if m.state() != MemberState::Missing {
            m.stats.state = MemberState::Failed;
        }
        Ok(())
    }

    /// Takes member `i`'s device out (hot removal); it is missing from now on.
    pub fn remove_member(&mut self, i: usize) -> Result<Option<D>> {
        let m = self.members.get_mut(i).ok_or(Error::InvalidArgument)?;
        m.stats.state = MemberState::Missing;
        Ok(m.dev.take())
    }

    /// Puts `dev` in the place of failed or missing member `i` and starts
    /// rebuilding it (one rebuild at a time): copies the allocation map
    /// copies onto it, then records it as rebuilding from stripe 0. Returns
    /// the device it replaces, if any.
    pub fn replace_member(&mut self, i: usize, mut dev: D) -> Result<Option<D>> {
        if self.failed {
            return Err(Error::ReadOnly);
        }
        let state = self.members.get(i).ok_or(Error::InvalidArgument)?.state();
        if !matches!(state, MemberState::Failed | MemberState::Missing)
            || self.rebuild.is_some()
            || dev.nr_blocks() < self.geom.member_blocks()
        {
            return Err(Error::InvalidArgument);
        }
        const STEP: u64 = 64;
        let mut buf = KVec::from_elem(0u8, STEP as usize * BLOCK_SIZE, GFP_KERNEL)?;
        let mut b = HEADER_COPIES;
        while b < self.geom.meta_blocks {
            let n = STEP.min(self.geom.meta_blocks - b);
            let part = &mut buf[..n as usize * BLOCK_SIZE];
            view(&mut self.members, &self.geom, self.primary).read(b, part)?;
            dev.write(self.geom.area_start + b, part)?;
            b += n;
        }
        dev.flush()?;
        let m = &mut self.members[i];
        let old = m.dev.replace(dev);
        m.stats.state = MemberState::Rebuilding;
        self.rebuild = Some((i, 0));
        self.write_headers()?;
        if self.rebuild.is_none() {
            // The replacement failed its header write.
            return Err(Error::Io);
        }
        Ok(old)
    }
}
