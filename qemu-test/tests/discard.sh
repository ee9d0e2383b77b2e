#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M
# vtier-timeout: 300
# vtier-needs: module
# vtier-release-only: the CI budget: 144 s on the debug kernel, 80 s on the release one; requests reach the same intake and map updates as the writes of fio-verify and powercut
#
# DISCARD and WRITE_ZEROES on /dev/vtier0: the queue advertises both;
# blkdiscard (discard) and blkdiscard -z (BLKZEROOUT) succeed on a range;
# the zeroed range reads back as zeroes while the data on both sides of it
# is untouched; a discarded range reads back as zeroes too, its
# neighbours unchanged; after a discard of the whole device the data
# written before reads as zeroes, and new data reads back. "Unchanged" is
# the sha256 of the source file the data was written from.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

MiB=1048576

vtier_load
vtier_format /dev/vda
vtier_create dis /dev/vda
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
run dd if="$dev" of=/tmp/blk bs=4096 skip=$((8 * 256 + 1)) count=1 iflag=direct
run dd if=/dev/zero of=/tmp/zblk bs=4096 count=1
cmp /tmp/blk /tmp/zblk || fail "4 KiB zero-out at 8 MiB + 4 KiB did not read back as zeroes"
for b in 0 2; do
	run dd if="$dev" of=/tmp/blk bs=4096 skip=$((8 * 256 + b)) count=1 iflag=direct
	run dd if=/tmp/rand of=/tmp/rblk bs=4096 skip=$((8 * 256 + b)) count=1
	cmp /tmp/blk /tmp/rblk || fail "block $b of 8 MiB, beside a 4 KiB zero-out, changed"
done
# The zero-out is inside 0..16 MiB: what is checked below must not count it.
run dd if=/dev/zero of=/tmp/rand bs=4096 seek=$((8 * 256 + 1)) count=1 conv=notrunc

step "discard 32..40 MiB"
run blkdiscard -o $((32 * MiB)) -l $((8 * MiB)) "$dev"
[ "$(sha_range "$dev" $((32 * MiB)) $((8 * MiB)))" = "$(sha_zero $((8 * MiB)))" ] ||
	fail "32..40 MiB does not read back as zeroes after a discard"
[ "$(sha_range "$dev" $((40 * MiB)) $((8 * MiB)))" = "$(sha_range /tmp/rand $((40 * MiB)) $((8 * MiB)))" ] ||
	fail "40..48 MiB changed by a discard of 32..40 MiB"
[ "$(sha_range "$dev" $((16 * MiB)) $((16 * MiB)))" = "$(sha_zero $((16 * MiB)))" ] ||
	fail "the zeroed 16..32 MiB changed by a discard of 32..40 MiB"
[ "$(sha_range "$dev" 0 $((8 * MiB)))" = "$(sha_range /tmp/rand 0 $((8 * MiB)))" ] ||
	fail "0..8 MiB changed by a discard of 32..40 MiB"

step "discard the whole device"
run blkdiscard -f "$dev"
[ "$(sha_range "$dev" 0 $((48 * MiB)))" = "$(sha_zero $((48 * MiB)))" ] ||
	fail "0..48 MiB does not read back as zeroes after a discard of the whole device"
run dd if=/tmp/rand of="$dev" bs=1M count=4 oflag=direct conv=notrunc
[ "$(sha_range "$dev" 0 $((4 * MiB)))" = "$(sha_range /tmp/rand 0 $((4 * MiB)))" ] ||
	fail "data written after a full discard does not read back"
[ "$(sha_range "$dev" $((4 * MiB)) $((44 * MiB)))" = "$(sha_zero $((44 * MiB)))" ] ||
	fail "4..48 MiB is not zeroes after writing 0..4 MiB on a discarded device"

vtier_down dis
run rmdir "$VT/dis"
vtier_unload
