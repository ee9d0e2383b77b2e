#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 256M 32M 32M
# vtier-timeout: 600
# vtier-needs: module
#
# ext4 on /dev/vtier0: mkfs.ext4, mount, write a tree of files (sizes from
# 0 bytes to 24 MiB, random content) and their sha256 sums, umount, power
# the vtier device down and up, mount again and check every sum, write
# more, umount, and `e2fsck -fn` must find the file system clean.
set -eu
# shellcheck source=../guest/lib.sh
. /usr/lib/vtier/lib.sh

vtier_load
vtier_format /dev/vda /dev/vdb /dev/vdc
vtier_create fs /dev/vda /dev/vdb /dev/vdc
disk=$(vtier_up fs)
dev=/dev/$disk

step "mkfs.ext4 $dev"
run mkfs.ext4 -q -F "$dev"
run e2fsck -fn "$dev"
run mkdir -p /mnt/fs
run mount -t ext4 "$dev" /mnt/fs

step "write files"
mkdir -p /mnt/fs/d1/d2/d3
: >/mnt/fs/empty
echo "hello vtier" >/mnt/fs/small
run dd if=/dev/urandom of=/mnt/fs/d1/one-block bs=4096 count=1
run dd if=/dev/urandom of=/mnt/fs/d1/odd bs=1 count=12345
run dd if=/dev/urandom of=/mnt/fs/d1/d2/big bs=1M count=24
i=0
while [ $i -lt 200 ]; do
	dd if=/dev/urandom of="/mnt/fs/d1/d2/d3/f$i" bs=512 count=$((i % 17 + 1)) 2>/dev/null
	i=$((i + 1))
done
run_sh 'cd /mnt/fs && find . -type f | sort | xargs sha256sum > /tmp/sums'
nfiles=$(wc -l </tmp/sums)
echo "$nfiles files"
[ "$nfiles" = 205 ] || fail "expected 205 files, the sums list has $nfiles"
run umount /mnt/fs

step "power cycle, mount again, compare"
vtier_down fs
disk=$(vtier_up fs)
dev=/dev/$disk
run mount -t ext4 "$dev" /mnt/fs
run_sh 'cd /mnt/fs && sha256sum -c -s /tmp/sums'
[ "$(find /mnt/fs -type f | wc -l)" = 205 ] || fail "file count changed"

step "write more after the remount, delete some"
run dd if=/dev/urandom of=/mnt/fs/after bs=1M count=8
rm -f /mnt/fs/d1/d2/d3/f1*
run_sh 'sha256sum /mnt/fs/after > /tmp/sum-after'
run umount /mnt/fs
run mount -t ext4 "$dev" /mnt/fs
run sha256sum -c -s /tmp/sum-after
run umount /mnt/fs

step "e2fsck -fn"
run e2fsck -fn "$dev"

vtier_down fs
run rmdir "$VT/fs"
vtier_unload
