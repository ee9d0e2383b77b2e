#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 96M 32M
# vtier-timeout: 300
# vtier-needs: module
#
# The stage-1 data path: /dev/vtierN is the performance device's data area,
# 1:1, after a reserved metadata area at its start. (Retire this test when
# the B-tree map lands; the rest of the suite does not depend on the layout.)
# Asserts: 4 KiB logical blocks; size = perf size - reserved area, reserved
# a whole number of blocks; data written at the start and at the end of
# /dev/vtier0 is on the performance device at that offset; a write past the
# end fails; the superblocks survive (vtierctl show).
set -eu
# shellcheck source=../guest/lib.sh
. /usr/lib/vtier/lib.sh

vtier_load
vtier_format /dev/vda /dev/vdb
vtier_create lay /dev/vda /dev/vdb
disk=$(vtier_up lay)
dev=/dev/$disk

perf_size=$(bdev_size /dev/vda)
size=$(bdev_size "$dev")
reserved=$((perf_size - size))
echo "perf $perf_size bytes, $dev $size bytes, reserved $reserved bytes"
[ "$(blockdev --getss "$dev")" = 4096 ] || fail "$dev: logical block size $(blockdev --getss "$dev")"
[ $reserved -gt 0 ] || fail "no reserved area: $dev is $size bytes, perf is $perf_size"
[ $((reserved % 4096)) = 0 ] || fail "reserved area $reserved is not a whole number of 4 KiB blocks"
[ $reserved -le $((64 << 20)) ] || fail "reserved area $reserved bytes is more than 64 MiB"
[ -f "/sys/block/$disk/size" ] || fail "no /sys/block/$disk"

step "write 4 MiB at the start and at the end of $dev"
run dd if=/dev/urandom of=/tmp/a bs=1M count=4
run dd if=/dev/urandom of=/tmp/b bs=1M count=4
run dd if=/tmp/a of="$dev" bs=4096 oflag=direct conv=notrunc
end_blk=$((size / 4096 - 1024))
run dd if=/tmp/b of="$dev" bs=4096 seek=$end_blk oflag=direct conv=notrunc
run blockdev --flushbufs "$dev"

step "they are on /dev/vda after the reserved area"
res_blk=$((reserved / 4096))
dd if=/dev/vda of=/tmp/a2 bs=4096 skip=$res_blk count=1024 iflag=direct 2>/dev/null
dd if=/dev/vda of=/tmp/b2 bs=4096 skip=$((res_blk + end_blk)) count=1024 iflag=direct 2>/dev/null
cmp /tmp/a /tmp/a2 || fail "start of $dev is not at byte $reserved of /dev/vda"
cmp /tmp/b /tmp/b2 || fail "end of $dev is not at the end of /dev/vda"
dd if="$dev" of=/tmp/a3 bs=4096 count=1024 iflag=direct 2>/dev/null
cmp /tmp/a /tmp/a3 || fail "reading back the start of $dev gave other data"

step "a write past the end fails"
if dd if=/tmp/a of="$dev" bs=4096 seek=$((size / 4096)) count=1 oflag=direct conv=notrunc 2>/tmp/dd.err; then
	# dd may report success having written 0 bytes; the device must not grow.
	cat /tmp/dd.err
	grep -q '^0+0 records out' /tmp/dd.err || fail "a write past the end of $dev succeeded"
fi
[ "$(bdev_size "$dev")" = "$size" ] || fail "$dev changed size"

step "the superblocks are intact"
vtier_down lay
run vtierctl show /dev/vda
run vtierctl show /dev/vdb
run rmdir "$VT/lay"
vtier_unload
