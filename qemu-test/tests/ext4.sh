#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 256M 48M 48M 48M
# vtier-timeout: 600
# vtier-needs: module
# vtier-release-only: the CI budget: 172 s on the debug kernel, 45 s on the release one; its I/O is the writes, flushes and reads that fio-verify and powercut drive under KASAN
#
# ext4 on /dev/vtier0: mkfs.ext4, mount, write a tree of files (sizes from
# 0 bytes to 24 MiB, random content) and their sha256 sums, umount,
# destage everything into the 2+1 stripes of the three capacity devices,
# power the vtier device down and up, mount again and check every sum
# (read from the capacity tier), write more, umount, and `e2fsck -fn` must
# find the file system clean. The files are made in /tmp and their sums
# taken there, before they are copied onto the file system.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

vtier_load
vtier_format /dev/vda /dev/vdb /dev/vdc /dev/vdd
vtier_create fs /dev/vda /dev/vdb /dev/vdc /dev/vdd
disk=$(vtier_up fs)
dev=/dev/$disk

step "mkfs.ext4 $dev"
run mkfs.ext4 -q -F "$dev"
run e2fsck -fn "$dev"
run mkdir -p /mnt/fs
run mount -t ext4 "$dev" /mnt/fs

step "write files"
# Made in /tmp first: their sums are taken of the source, then copied.
src=/tmp/src
mkdir -p $src/d1/d2/d3
: >$src/empty
echo "hello vtier" >$src/small
run dd if=/dev/urandom of=$src/d1/one-block bs=4096 count=1
run dd if=/dev/urandom of=$src/d1/odd bs=1 count=12345
run dd if=/dev/urandom of=$src/d1/d2/big bs=1M count=24
i=0
while [ $i -lt 200 ]; do
	dd if=/dev/urandom of="$src/d1/d2/d3/f$i" bs=512 count=$((i % 17 + 1)) 2>/dev/null
	i=$((i + 1))
done
(cd $src && find . -type f | sort | xargs sha256sum) >/tmp/sums || fail "sha256 of the files failed"
nfiles=$(wc -l </tmp/sums)
echo "$nfiles files"
[ "$nfiles" = 205 ] || fail "expected 205 files, the sums list has $nfiles"
run cp -a $src/. /mnt/fs/
run umount /mnt/fs

step "destage everything into the capacity tier's stripes"
grep -m1 '^geometry: 2+1 ' "$VT/fs/status" || fail "no 2+1 stripes: $(grep -m1 '^geometry:' "$VT/fs/status")"
attr_write "$VT/fs/destage" 1000000
echo "destaged: $(cat "$VT/fs/destage")"
moved=$(awk '{ print $3 }' "$VT/fs/destage")
# The files' data alone is 6465 blocks.
[ "$moved" -ge 6465 ] || fail "only $moved blocks destaged"
grep -E '^(destage|stripes):' "$VT/fs/status"

step "power cycle, mount again, compare"
vtier_down fs
disk=$(vtier_up fs)
dev=/dev/$disk
run mount -t ext4 "$dev" /mnt/fs
(cd /mnt/fs && sha256sum -c -s /tmp/sums) || fail "files differ from their sums after destage and power cycle"
[ "$(find /mnt/fs -type f | wc -l)" = 205 ] || fail "file count changed"

step "write more after the remount, delete some"
run dd if=/dev/urandom of=/tmp/after bs=1M count=8
sha256sum /tmp/after | sed 's|/tmp/|/mnt/fs/|' >/tmp/sum-after
run cp /tmp/after /mnt/fs/after
rm -f /mnt/fs/d1/d2/d3/f1*
run umount /mnt/fs
run mount -t ext4 "$dev" /mnt/fs
run sha256sum -c -s /tmp/sum-after
run umount /mnt/fs

step "e2fsck -fn"
run e2fsck -fn "$dev"

vtier_down fs
run rmdir "$VT/fs"
vtier_unload
