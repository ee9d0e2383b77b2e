// SPDX-License-Identifier: GPL-2.0
//! B-tree node decoding. A valid leaf or internal node (entries drawn from
//! the input, written by `NodeData::encode`) has header and entry fields
//! edited and is sealed again, now and then as the other node kind; a node
//! that decodes has a level within the height bound that matches its kind,
//! counts within the block, keys in order, extents that stay inside their
//! device or stripe, and encodes back to the same bytes. Raw mode feeds
//! the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use vtier_engine::btree::node::{
    NodeData, INTERNAL, INTERNAL_CAPACITY, LEAF, LEAF_CAPACITY, MAX_HEIGHT, TREE_LBA_MAP,
};
use vtier_engine::io::device::BLOCK_SIZE;
use vtier_engine::io::paddr::{PAddr, MAX_DEVICE_INDEX, MAX_STRIPE, STRIPE_DATA_BLOCKS};
use vtier_engine::map::extent::{Extent, EXTENT_KNOWN_FLAGS, MAX_EXTENT_LEN};
use vtier_engine_fuzz::{
    allowed_error, mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW,
};

#[rustfmt::skip]
const HEADER_FIELDS: [Field; 10] = [
    COMMON[0], COMMON[1], COMMON[2],
    (0x18, 8), (0x20, 4), (0x24, 2), (0x26, 2), (0x28, 8), (0x30, 8), (0x38, 8),
];
/// Entries whose fields are offered to the edits.
const EDITED_ENTRIES: usize = 4;

thread_local! {
    /// One node decoded into over and over, as the node cache does.
    static NODE: RefCell<NodeData> = RefCell::new(NodeData::default());
}

/// A valid address with room for `len` blocks from it.
fn paddr(inp: &mut Input, len: u32) -> PAddr {
    let room = u64::from(len.max(1)) - 1;
    match inp.u8() % 4 {
        0 => PAddr::perf(inp.range(0, 1 << 40)),
        1 => PAddr::device(
            inp.range(1, u64::from(MAX_DEVICE_INDEX)) as u16,
            inp.range(0, (1 << 48) - 1 - room),
        ),
        2 => PAddr::stripe(
            inp.range(0, MAX_STRIPE),
            inp.range(
                0,
                u64::from(STRIPE_DATA_BLOCKS) - 1 - room.min(u64::from(STRIPE_DATA_BLOCKS) - 1),
            ) as u32,
        ),
        _ => PAddr::perf(inp.range(0, 5000)),
    }
    .expect("valid address")
}

/// A valid node at `addr`, shaped by `inp`.
fn seed(inp: &mut Input, addr: PAddr) -> NodeData {
    let mut n = NodeData {
        addr: Some(addr),
        generation: inp.u64(),
        tree: TREE_LBA_MAP,
        level: if inp.u8().is_multiple_of(3) {
            inp.range(1, MAX_HEIGHT as u64 - 1) as u8
        } else {
            0
        },
        ..NodeData::default()
    };
    let mut key = inp.range(0, 1 << 40);
    let step = inp.u8();
    if n.is_leaf() {
        let count = inp.range(0, LEAF_CAPACITY as u64) as usize;
        for i in 0..count {
            let len = if i % 4 == 0 {
                inp.range(1, u64::from(MAX_EXTENT_LEN)) as u32
            } else {
                1 + u32::from(step)
            };
            let ext = Extent {
                paddr: paddr(inp, len),
                len,
                csum: inp.u32(),
                flags: u32::from(inp.u8()) & EXTENT_KNOWN_FLAGS,
            };
            if key.checked_add(u64::from(len)).is_none() {
                break;
            }
            n.insert_extent(i, key, ext).expect("insert");
            key += u64::from(len) + u64::from(inp.u8() % 3);
        }
    } else {
        let count = inp.range(1, INTERNAL_CAPACITY as u64) as usize;
        for i in 0..count {
            if i > 0 {
                match key.checked_add(1 + u64::from(step)) {
                    Some(k) => key = k,
                    None => break,
                }
            }
            n.insert_child(i, key, paddr(inp, 1)).expect("insert");
        }
    }
    n
}

/// Checks a node that decoded from `buf` at `addr`.
fn check(node: &NodeData, buf: &[u8], addr: PAddr) {
    assert_eq!(node.addr, Some(addr));
    assert_eq!(node.tree, TREE_LBA_MAP);
    assert!((node.level as usize) < MAX_HEIGHT);
    assert_eq!(node.is_leaf(), LEAF.magic_of(buf));
    if node.is_leaf() {
        assert!(node.len() <= LEAF_CAPACITY && node.extents.len() == node.len());
        assert!(node.children.is_empty());
        let mut next = 0u64;
        for (i, (&lba, e)) in node.keys.iter().zip(node.extents.iter()).enumerate() {
            assert_eq!(e.validate(None), Ok(()), "extent {i}");
            assert!(e.paddr.offset_by(u64::from(e.len) - 1).is_some());
            assert!(i == 0 || lba >= next, "extents overlap");
            next = lba
                .checked_add(u64::from(e.len))
                .expect("extent end overflows");
        }
    } else {
        assert!(!node.is_empty() && node.len() <= INTERNAL_CAPACITY);
        assert!(node.extents.is_empty() && node.children.len() == node.len());
        assert!(
            node.keys.windows(2).all(|w| w[0] < w[1]),
            "keys out of order"
        );
    }
    let mut out = [0u8; BLOCK_SIZE];
    node.encode(&mut out).expect("encode");
    assert!(
        out[..] == buf[..],
        "a decoded node does not encode back to its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    NODE.with(|cell| {
        let node = &mut *cell.borrow_mut();
        if mode == MODE_RAW {
            let mut inp = Input::new(rest);
            let addr = paddr(&mut inp, 1);
            let body = inp.rest();
            if node.decode(body, addr, TREE_LBA_MAP).is_ok() {
                check(node, body, addr);
            }
            return;
        }
        let how = Seal::from_mode(mode);
        let mut inp = Input::new(rest);
        let addr = paddr(&mut inp, 1);
        let seeded = seed(&mut inp, addr);
        let mut buf = [0u8; BLOCK_SIZE];
        seeded.encode(&mut buf).expect("encode");
        assert_eq!(
            node.decode(&buf, addr, TREE_LBA_MAP),
            Ok(()),
            "a valid node is refused"
        );
        assert!(
            node.keys.as_slice() == seeded.keys.as_slice()
                && node.extents.as_slice() == seeded.extents.as_slice()
                && node.children.as_slice() == seeded.children.as_slice()
        );

        let mut fields = [(0usize, 0usize); HEADER_FIELDS.len() + 6 * EDITED_ENTRIES];
        fields[..HEADER_FIELDS.len()].copy_from_slice(&HEADER_FIELDS);
        let mut count = HEADER_FIELDS.len();
        for _ in 0..EDITED_ENTRIES {
            let i = inp.range(0, seeded.len() as u64) as usize;
            let (at, widths): (usize, &[usize]) = if seeded.is_leaf() {
                (0x40 + 32 * i.min(LEAF_CAPACITY - 1), &[8, 8, 4, 4, 4, 4])
            } else {
                (0x40 + 16 * i.min(INTERNAL_CAPACITY - 1), &[8, 8])
            };
            let mut off = at;
            for &w in widths {
                fields[count] = (off, w);
                count += 1;
                off += w;
            }
        }
        mutate(&mut buf, &fields[..count], &mut inp);
        // Now and then sealed as the other kind of node.
        let leaf = seeded.is_leaf() != inp.u8().is_multiple_of(8);
        reseal(
            &mut buf,
            if leaf { LEAF } else { INTERNAL },
            addr.to_raw(),
            how,
        );
        match node.decode(&buf, addr, TREE_LBA_MAP) {
            Ok(()) => check(node, &buf, addr),
            Err(e) => assert!(allowed_error(&e, how), "{e:?}"),
        }
    });
});
