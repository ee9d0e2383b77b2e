// SPDX-License-Identifier: GPL-2.0
//! Superblock decoding. A valid superblock (its fields drawn from the
//! input, sealed by the engine's encoder) has fields edited and is sealed
//! again; what decodes must satisfy the layout rules of `doc/FORMAT.md`
//! and re-encode to the same bytes, and anything else is `Corrupt` (or,
//! when the common header was edited, the validator's error). Raw mode
//! feeds the bytes as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::crypt::encryption::Encryption;
use vtier_engine::format::superblock::{
    MapRoot, Role, Superblock, WalPosition, BLOCK_SIZE, NR_ROOTS, SUPERBLOCK,
};
use vtier_engine_fuzz::{
    allowed_error, mutate, reseal, split, Field, Input, Seal, COMMON, MODE_RAW,
};

/// Every field after the common header (FORMAT.md, Superblock), the pads
/// and a few reserved bytes included.
const FIELDS: [Field; 33] = [
    COMMON[0],
    COMMON[1],
    COMMON[2],
    (0x018, 8),
    (0x020, 8),
    (0x030, 8),
    (0x040, 4),
    (0x044, 4),
    (0x048, 8),
    (0x050, 4),
    (0x054, 4),
    (0x058, 8),
    (0x060, 8),
    (0x068, 8),
    (0x070, 8),
    (0x078, 8),
    (0x080, 8),
    (0x088, 8),
    (0x090, 4),
    (0x094, 4),
    (0x098, 8),
    (0x0a0, 8),
    (0x0a8, 8),
    (0x120, 8),
    (0x128, 4),
    (0x12c, 4),
    (0x130, 8),
    (0x138, 8),
    (0x140, 8),
    (0x148, 8),
    (0x150, 8),
    (0x800, 1),
    (0xff8, 8),
];

/// A superblock that satisfies every rule, shaped by `inp`.
fn seed(inp: &mut Input) -> Superblock {
    let perf = inp.bool();
    let nr_devices = 1 + u32::from(inp.u8() % 8) + u32::from(!perf);
    let device_index = if perf {
        0
    } else {
        inp.range(1, u64::from(nr_devices) - 1) as u32
    };
    let wal_blocks = if perf { inp.range(2, 200) } else { 0 };
    let map_blocks = inp.range(1, 64);
    let gap = inp.range(0, 8);
    let wal_start = if perf { 2 + gap } else { 0 };
    let first_copy = 2 + gap + wal_blocks + inp.range(0, 8);
    let second_copy = first_copy + map_blocks + inp.range(0, 8);
    let end = second_copy + map_blocks;
    let nr_blocks = if inp.bool() {
        end + inp.range(0, 100_000)
    } else {
        inp.range(end, 1 << 32)
    };
    let data_start = inp.range(end, nr_blocks);
    let copies = if inp.bool() {
        [first_copy, second_copy]
    } else {
        [second_copy, first_copy]
    };
    let tail = if perf {
        inp.range(0, wal_blocks - 1)
    } else {
        0
    };
    let mut roots = [0u64; NR_ROOTS];
    for r in roots.iter_mut().take(inp.u8() as usize % (NR_ROOTS + 1)) {
        *r = inp.u64();
    }
    Superblock {
        generation: inp.u64(),
        volume_uuid: inp.bytes(),
        device_uuid: inp.bytes(),
        role: if perf {
            Role::Performance
        } else {
            Role::Capacity
        },
        nr_blocks,
        device_index,
        nr_devices,
        wal: WalPosition {
            start: wal_start,
            blocks: wal_blocks,
            tail,
            tail_seq: if perf { inp.u64() } else { 0 },
        },
        map: MapRoot {
            copies,
            blocks: map_blocks,
            crc: inp.u32(),
            free: inp.range(0, nr_blocks - data_start),
        },
        data_start,
        roots,
        encryption: if inp.bool() {
            Encryption::AesXts {
                tweak: inp.bytes(),
                kcv: inp.bytes(),
            }
        } else {
            Encryption::None
        },
    }
}

/// The rules a decoded superblock keeps.
fn check(sb: &Superblock, block: u64, buf: &[u8]) {
    assert!(sb.nr_blocks > 2 && sb.nr_blocks <= 1 << 32, "{sb:?}");
    assert!(sb.data_start <= sb.nr_blocks, "{sb:?}");
    assert!(
        sb.nr_devices > 0 && sb.device_index < sb.nr_devices,
        "{sb:?}"
    );
    assert_eq!(sb.role == Role::Performance, sb.device_index == 0, "{sb:?}");
    assert!(
        sb.map.blocks > 0 && sb.map.free <= sb.nr_blocks - sb.data_start,
        "{sb:?}"
    );
    let w = sb.wal;
    if sb.role == Role::Performance {
        assert!(w.blocks >= 2 && w.tail < w.blocks, "{sb:?}");
    } else {
        assert_eq!(
            (w.start, w.blocks, w.tail, w.tail_seq),
            (0, 0, 0, 0),
            "{sb:?}"
        );
    }
    let regions = [
        (w.start, w.blocks),
        (sb.map.copies[0], sb.map.blocks),
        (sb.map.copies[1], sb.map.blocks),
    ];
    for (i, &(s, n)) in regions.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let e = s.checked_add(n).expect("region end overflows");
        assert!(
            s >= 2 && e <= sb.data_start,
            "region {i} outside 2..data_start: {sb:?}"
        );
        for &(s2, n2) in &regions[i + 1..] {
            assert!(
                n2 == 0 || e <= s2 || s2 + n2 <= s,
                "regions overlap: {sb:?}"
            );
        }
    }
    if let Encryption::None = sb.encryption {
        assert!(buf[0x128..0x150].iter().all(|&b| b == 0));
    }
    let mut out = [0u8; BLOCK_SIZE];
    sb.encode(block, &mut out);
    assert!(
        out[..] == buf[..],
        "decoded superblock does not re-encode to its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = split(data);
    if mode == MODE_RAW {
        for block in [0u64, 1] {
            if let Ok(sb) = Superblock::decode(rest, block) {
                check(&sb, block, rest);
            }
        }
        return;
    }
    let how = Seal::from_mode(mode);
    let mut inp = Input::new(rest);
    let block = u64::from(inp.u8() & 1);
    let sb = seed(&mut inp);
    let mut buf = [0u8; BLOCK_SIZE];
    sb.encode(block, &mut buf);
    assert_eq!(
        Superblock::decode(&buf, block),
        Ok(sb),
        "a valid superblock is refused"
    );
    mutate(&mut buf, &FIELDS, &mut inp);
    reseal(&mut buf, SUPERBLOCK, block, how);
    match Superblock::decode(&buf, block) {
        Ok(sb) => check(&sb, block, &buf),
        Err(e) => assert!(allowed_error(&e, how), "{e:?}"),
    }
});
