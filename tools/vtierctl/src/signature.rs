// SPDX-License-Identifier: GPL-2.0

//! What a device already holds: the signatures `vtierctl format` looks for
//! before it overwrites anything.
//!
//! Each check reads a magic number (and where a magic alone is weak, a
//! field beside it that must be sane) at the place its format puts it, all
//! within the first [`PROBE_BYTES`] of the device: a vtier superblock, the
//! common Linux file systems, LUKS, LVM, md RAID, bcache and swap headers,
//! partition tables and boot sectors. Signatures kept at the end of a
//! device (md metadata 0.90 and 1.0, a GPT backup header) are not looked
//! for; a device with one of those and nothing at its start is not
//! recognised.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};

use vtier_engine::format::superblock::{Superblock, BLOCK_SIZE, COPIES, MAGIC};

/// Bytes read from the start of a device: enough for btrfs's superblock
/// at 64 KiB.
pub const PROBE_BYTES: usize = 68 << 10;

/// The start of `f` (zeroes past its end), for [`describe`].
pub fn read_head(f: &mut File) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; PROBE_BYTES];
    f.seek(SeekFrom::Start(0))?;
    let mut at = 0;
    while at < head.len() {
        match f.read(&mut head[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(head)
}

fn bytes_at(head: &[u8], offset: usize, magic: &[u8]) -> bool {
    head.get(offset..offset + magic.len()) == Some(magic)
}

fn u32_at(head: &[u8], offset: usize) -> Option<u32> {
    let b = head.get(offset..offset + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A vtier superblock in either copy: the member it makes the device, or
/// that it is damaged when the magic is there and the copy does not
/// decode.
fn vtier(head: &[u8]) -> Option<String> {
    let mut damaged = false;
    for block in COPIES {
        let at = block as usize * BLOCK_SIZE;
        let Some(raw) = head.get(at..at + BLOCK_SIZE) else {
            continue;
        };
        if !bytes_at(raw, 8, &MAGIC.to_le_bytes()) {
            continue;
        }
        let mut buf = [0u8; BLOCK_SIZE];
        buf.copy_from_slice(raw);
        match Superblock::decode(&buf, block) {
            Ok(sb) => {
                return Some(format!(
                    "a vtier superblock (volume {}, {:?} device {} of {})",
                    hex(&sb.volume_uuid),
                    sb.role,
                    sb.device_index,
                    sb.nr_devices
                ))
            }
            Err(_) => damaged = true,
        }
    }
    damaged.then(|| "a vtier superblock that does not decode (damaged or another version)".into())
}

/// Every signature found in `head`, the start of a device as
/// [`read_head`] returns it, described for a message; empty when none is.
pub fn describe(head: &[u8]) -> Vec<String> {
    let mut found: Vec<String> = vtier(head).into_iter().collect();
    let mut add = |hit: bool, what: &str| {
        if hit {
            found.push(what.to_string());
        }
    };
    add(bytes_at(head, 0, b"LUKS\xba\xbe"), "a LUKS header");
    add(bytes_at(head, 0, b"XFSB"), "an XFS file system");
    add(bytes_at(head, 0, b"hsqs"), "a squashfs image");
    // ext2/3/4: s_magic 0xEF53 in the superblock at 1024, with a block
    // size of 1..64 KiB (s_log_block_size 0..6) and some inodes.
    add(
        bytes_at(head, 1024 + 0x38, &[0x53, 0xef])
            && u32_at(head, 1024 + 0x18).is_some_and(|l| l <= 6)
            && u32_at(head, 1024).is_some_and(|inodes| inodes != 0),
        "an ext2/3/4 file system",
    );
    add(
        u32_at(head, 1024) == Some(0xf2f5_2010),
        "an F2FS file system",
    );
    add(
        bytes_at(head, 65536 + 64, b"_BHRfS_M"),
        "a btrfs file system",
    );
    add(bytes_at(head, 32769, b"CD001"), "an ISO 9660 image");
    // md RAID metadata 1.1 (at 0) and 1.2 (at 4 KiB): magic, major version 1.
    add(
        [0usize, 4096]
            .iter()
            .any(|&at| u32_at(head, at) == Some(0xa92b_4efc) && u32_at(head, at + 4) == Some(1)),
        "an md RAID member (metadata 1.1 or 1.2)",
    );
    add(
        (0..4).any(|s| {
            bytes_at(head, s * 512, b"LABELONE") && bytes_at(head, s * 512 + 24, b"LVM2 001")
        }),
        "an LVM2 physical volume",
    );
    add(
        bytes_at(
            head,
            4096 + 24,
            &[
                0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba,
                0x6d, 0x81,
            ],
        ),
        "a bcache device",
    );
    add(
        bytes_at(head, 4096 - 10, b"SWAPSPACE2") || bytes_at(head, 4096 - 10, b"SWAP-SPACE"),
        "a swap area",
    );
    add(bytes_at(head, 512, b"EFI PART"), "a GPT partition table");
    // 0x55 0xAA closes an MBR and the boot sector of FAT and NTFS alike.
    add(
        bytes_at(head, 510, &[0x55, 0xaa]),
        "a DOS partition table or boot sector (MBR, FAT, NTFS)",
    );
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut head = vec![0u8; PROBE_BYTES];
        head[offset..offset + bytes.len()].copy_from_slice(bytes);
        head
    }

    #[test]
    fn zeroes_and_noise_hold_nothing() {
        assert!(describe(&vec![0u8; PROBE_BYTES]).is_empty());
        // A device shorter than the probe reads as zeroes past its end.
        assert!(describe(&[0u8; 100]).is_empty());
        let noise: Vec<u8> = (0..PROBE_BYTES as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(describe(&noise).is_empty(), "{:?}", describe(&noise));
    }

    #[test]
    fn each_signature_is_named() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (with(0, b"LUKS\xba\xbe\x00\x02"), "LUKS"),
            (with(0, b"XFSB"), "XFS"),
            (with(65600, b"_BHRfS_M"), "btrfs"),
            (with(4096, &[0xfc, 0x4e, 0x2b, 0xa9, 1, 0, 0, 0]), "md RAID"),
            (with(4086, b"SWAPSPACE2"), "swap"),
            (with(512, b"EFI PART"), "GPT"),
            (with(510, &[0x55, 0xaa]), "DOS partition table"),
            (with(1024, &0xf2f5_2010u32.to_le_bytes()), "F2FS"),
            (with(32769, b"CD001"), "ISO 9660"),
        ];
        for (head, name) in cases {
            let d = describe(&head);
            assert!(d.iter().any(|s| s.contains(name)), "{name}: {d:?}");
        }
        let mut lvm = with(512, b"LABELONE");
        lvm[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
        assert!(describe(&lvm)[0].contains("LVM2"));
        // LABELONE without LVM's type is someone else's label.
        assert!(describe(&with(512, b"LABELONE")).is_empty());
    }

    #[test]
    fn ext_needs_a_sane_superblock_beside_its_magic() {
        let mut ext = with(1024 + 0x38, &[0x53, 0xef]);
        // Magic alone, no inodes: not taken for ext.
        assert!(describe(&ext).is_empty());
        ext[1024..1028].copy_from_slice(&8192u32.to_le_bytes());
        ext[1024 + 0x18..1024 + 0x1c].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(describe(&ext), vec!["an ext2/3/4 file system".to_string()]);
        // A block size of 2^(10+40) is not ext's.
        ext[1024 + 0x18..1024 + 0x1c].copy_from_slice(&40u32.to_le_bytes());
        assert!(describe(&ext).is_empty());
    }

    #[test]
    fn a_damaged_vtier_superblock_is_still_named() {
        let head = with(8, &MAGIC.to_le_bytes());
        let d = describe(&head);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].contains("vtier superblock that does not decode"),
            "{d:?}"
        );
        let head = with(BLOCK_SIZE + 8, &MAGIC.to_le_bytes());
        assert!(describe(&head)[0].contains("vtier"));
    }
}
