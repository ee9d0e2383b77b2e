// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the test programs that need them.

/// A UUID as blkid spells it (8-4-4-4-12 lowercase hex digits), written
/// here independently of vtierctl's own.
pub fn dashed(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
