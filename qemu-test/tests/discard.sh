#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M 32M
# vtier-timeout: 300
# vtier-needs: module
#
# DISCARD and WRITE_ZEROES on /dev/vtier0: the queue advertises both;
# blkdiscard (discard) and blkdiscard -z (BLKZEROOUT) succeed on a range;
# the zeroed range reads back as zeroes while the data on both sides of it
# is untouched; a discard of the whole device succeeds.
set -eu
# shellcheck source=../guest/lib.sh
. /usr/lib/vtier/lib.sh

MiB=1048576

vtier_load
vtier_format /dev/vda /dev/vdb
vtier_create dis /dev/vda /dev/vdb
disk=$(vtier_up dis)
dev=/dev/$disk
q=/sys/block/$disk/queue
for f in discard_max_bytes discard_granularity write_zeroes_max_bytes logical_block_size; do
	echo "$f: $(cat "$q/$f")"
done
[ "$(cat "$q/discard_max_bytes")" -gt 0 ] || fail "$disk does not advertise discard"
[ "$(cat "$q/write_zeroes_max_bytes")" -gt 0 ] || fail "$disk does not advertise write zeroes"

step "fill 48 MiB with random data"
run dd if=/dev/urandom of=/tmp/rand bs=1M count=48
run dd if=/tmp/rand of="$dev" bs=1M oflag=direct conv=notrunc
before=$(sha_range /tmp/rand 0 $((16 * MiB)))
after=$(sha_range /tmp/rand $((32 * MiB)) $((16 * MiB)))

step "zero out 16..32 MiB (BLKZEROOUT)"
run blkdiscard -z -o $((16 * MiB)) -l $((16 * MiB)) "$dev"
[ "$(sha_range "$dev" $((16 * MiB)) $((16 * MiB)))" = "$(sha_zero $((16 * MiB)))" ] ||
	fail "16..32 MiB does not read back as zeroes after BLKZEROOUT"
[ "$(sha_range "$dev" 0 $((16 * MiB)))" = "$before" ] || fail "0..16 MiB changed by a zero-out of 16..32 MiB"
[ "$(sha_range "$dev" $((32 * MiB)) $((16 * MiB)))" = "$after" ] || fail "32..48 MiB changed by a zero-out of 16..32 MiB"

step "zero out 4 KiB in the middle of the data"
run blkdiscard -z -o $((8 * MiB + 4096)) -l 4096 "$dev"
dd if="$dev" of=/tmp/blk bs=4096 skip=$((8 * 256 + 1)) count=1 iflag=direct 2>/dev/null
dd if=/dev/zero of=/tmp/zblk bs=4096 count=1 2>/dev/null
cmp /tmp/blk /tmp/zblk || fail "4 KiB zero-out at 8 MiB + 4 KiB did not read back as zeroes"
dd if="$dev" of=/tmp/blk bs=4096 skip=$((8 * 256)) count=1 iflag=direct 2>/dev/null
dd if=/tmp/rand of=/tmp/rblk bs=4096 skip=$((8 * 256)) count=1 2>/dev/null
cmp /tmp/blk /tmp/rblk || fail "the block before a 4 KiB zero-out changed"

step "discard 32..40 MiB, then the whole device"
run blkdiscard -o $((32 * MiB)) -l $((8 * MiB)) "$dev"
[ "$(sha_range "$dev" 0 $((8 * MiB)))" = "$(sha_range /tmp/rand 0 $((8 * MiB)))" ] ||
	fail "0..8 MiB changed by a discard of 32..40 MiB"
run blkdiscard -f "$dev"
run_sh "dd if=/tmp/rand of=$dev bs=1M count=4 oflag=direct conv=notrunc"
[ "$(sha_range "$dev" 0 $((4 * MiB)))" = "$(sha_range /tmp/rand 0 $((4 * MiB)))" ] ||
	fail "data written after a full discard does not read back"

vtier_down dis
run rmdir "$VT/dis"
vtier_unload
