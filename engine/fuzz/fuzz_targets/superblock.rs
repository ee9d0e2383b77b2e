// SPDX-License-Identifier: GPL-2.0
//! Superblock decoding never panics; what decodes re-encodes identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE};

fuzz_target!(|data: &[u8]| {
    for block in [0u64, 1] {
        if let Ok(sb) = Superblock::decode(data, block) {
            let mut out = [0u8; BLOCK_SIZE];
            sb.encode(block, &mut out);
            assert_eq!(&out[..], data);
        }
    }
});
