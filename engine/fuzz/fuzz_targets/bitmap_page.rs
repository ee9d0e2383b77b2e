// SPDX-License-Identifier: GPL-2.0
//! Bitmap-page summaries and run searches agree on any page contents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::space::bitmap;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4096 + 8 {
        return;
    }
    let page = &data[..4096];
    let from = u32::from_le_bytes(data[4096..4100].try_into().unwrap());
    let len = u32::from_le_bytes(data[4100..4104].try_into().unwrap()) % 40000;
    let s = bitmap::summarize(page);
    assert!(s.longest <= s.free);
    if let Some(at) = bitmap::find_run(page, from, len) {
        assert!(bitmap::all(page, at, len, false));
        assert!(len <= s.longest);
    }
});
