// SPDX-License-Identifier: GPL-2.0
//! WAL block verification and record iteration never panic, and a block
//! that verifies yields exactly the records its header counts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtier_engine::journal::wal_block;

fuzz_target!(|data: &[u8]| {
    let n = wal_block::records(data).count();
    if let Ok(info) = wal_block::verify(data, 0, 0) {
        assert_eq!(n as u32, info.nr_records);
    }
});
