// SPDX-License-Identifier: GPL-2.0
//! Summary-page verification and entry reads never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::space::summary::{self, PageId};

fuzz_target!(|data: &[u8]| {
    let n = data.first().copied().unwrap_or(0) as u32;
    let id = PageId { level: 1, index: 0, copy: 0, nr_entries: n };
    if summary::verify(data, 0, id, u64::MAX).is_ok() {
        for i in 0..n {
            let e = summary::entry(data, i);
            assert!(e.longest <= e.free);
        }
    }
    let _ = summary::content_crc(data.get(..4096).unwrap_or(&[0u8; 4096]), true);
});
