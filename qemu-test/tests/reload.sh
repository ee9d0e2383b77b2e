#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M 32M 32M 32M
# vtier-timeout: 300
# vtier-needs: module
# vtier-kmemleak: module unload and load again, and power cycles: every object the volume made is freed
#
# Module unload and reload with data intact, and the ways down:
# - rmmod while a device is powered either refuses (and the device keeps
#   working) or takes it down cleanly (and the configfs tree is gone);
# - rmdir of a powered device takes it down first (/dev/vtierN goes away);
# - after power=0 + rmdir, rmmod succeeds; insmod, the same configuration
#   and power=1 give back the same bytes, at the start and at the end.
# The pattern is destaged into the 2+1 stripes of the three capacity
# devices right after it is written, so the reads after every reload come
# from the capacity tier; they are compared with the pattern's sha256.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

MiB=1048576

vtier_load
vtier_format /dev/vda /dev/vdb /dev/vdc /dev/vdd
vtier_create r /dev/vda /dev/vdb /dev/vdc /dev/vdd
disk=$(vtier_up r)
dev=/dev/$disk
size=$(bdev_size "$dev")

step "write a pattern at the start and the end of $dev"
run dd if=/dev/urandom of=/tmp/pat bs=1M count=8
run dd if=/tmp/pat of="$dev" bs=1M oflag=direct conv=notrunc
last=$((size / MiB - 8))
run dd if=/tmp/pat of="$dev" bs=1M seek=$last oflag=direct conv=notrunc
want=$(sha256sum </tmp/pat | cut -d' ' -f1)
grep -m1 '^geometry: 2+1 ' "$VT/r/status" || fail "no 2+1 stripes: $(grep -m1 '^geometry:' "$VT/r/status")"
attr_write "$VT/r/destage" 100000
echo "destaged: $(cat "$VT/r/destage")"
moved=$(awk '{ print $3 }' "$VT/r/destage")
[ "$moved" -ge 4096 ] || fail "only $moved blocks destaged of 4096 written"

step "rmmod while $disk is powered"
if rmmod vtier 2>/tmp/rmmod.err; then
	echo "rmmod took the powered device down"
	[ ! -e "$dev" ] || fail "rmmod succeeded but $dev still exists"
	[ ! -d "$VT" ] || fail "rmmod succeeded but $VT still exists"
	vtier_load
	vtier_create r /dev/vda /dev/vdb /dev/vdc /dev/vdd
	disk=$(vtier_up r)
	dev=/dev/$disk
else
	echo "rmmod refused: $(cat /tmp/rmmod.err)"
	grep -q '^vtier ' /proc/modules || fail "rmmod failed but the module is gone"
	[ "$(cat "$VT/r/power")" = 1 ] || fail "a refused rmmod changed power to $(cat "$VT/r/power")"
	[ -b "$dev" ] || fail "a refused rmmod removed $dev"
fi
[ "$(sha_range "$dev" 0 $((8 * MiB)))" = "$want" ] || fail "start of $dev changed across rmmod"

step "rmdir of a powered device takes it down"
run rmdir "$VT/r"
i=0
while [ -e "$dev" ]; do
	i=$((i + 1))
	[ $i -lt 50 ] || fail "$dev still exists 5 s after rmdir of its powered config"
	sleep 0.1
done
[ ! -e /sys/block/"$disk" ] || fail "/sys/block/$disk still exists after rmdir"
vtier_unload

step "reload and recreate"
vtier_load
vtier_create r /dev/vda /dev/vdb /dev/vdc /dev/vdd
disk=$(vtier_up r)
dev=/dev/$disk
[ "$(bdev_size "$dev")" = "$size" ] || fail "$dev is $(bdev_size "$dev") bytes after reload, was $size"
[ "$(sha_range "$dev" 0 $((8 * MiB)))" = "$want" ] || fail "start of $dev changed across reload"
[ "$(sha_range "$dev" $((last * MiB)) $((8 * MiB)))" = "$want" ] || fail "end of $dev changed across reload"

step "power=0, rmdir, rmmod"
vtier_down r
[ ! -e "$dev" ] || fail "$dev still exists after power=0"
run rmdir "$VT/r"
vtier_unload

step "twice more: load, up, down, unload"
n=0
while [ $n -lt 2 ]; do
	vtier_load
	vtier_create r /dev/vda /dev/vdb /dev/vdc /dev/vdd
	disk=$(vtier_up r)
	[ "$(sha_range "/dev/$disk" 0 $((8 * MiB)))" = "$want" ] || fail "data changed in reload round $n"
	vtier_down r
	run rmdir "$VT/r"
	vtier_unload
	n=$((n + 1))
done
