#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M 32M
# vtier-timeout: 120
#
# Proves the harness without the module: the guest boots, sees its two
# virtio disks with the sizes the host gave them, and the tools the other
# tests use run (fio, mkfs.ext4, e2fsck, blkdiscard, vtierctl if present).
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

step "virtio disks"
[ -b /dev/vda ] || fail "no /dev/vda"
[ -b /dev/vdb ] || fail "no /dev/vdb"
[ ! -e /dev/vdc ] || fail "a third disk /dev/vdc that the host did not give"
[ "$(bdev_size /dev/vda)" = $((64 << 20)) ] || fail "vda is $(bdev_size /dev/vda) bytes, not 64 MiB"
[ "$(bdev_size /dev/vdb)" = $((32 << 20)) ] || fail "vdb is $(bdev_size /dev/vdb) bytes, not 32 MiB"

step "pseudo file systems"
grep -q ' /sys/kernel/config configfs ' /proc/mounts || fail "configfs not mounted"
grep -q ' /sys/kernel/debug debugfs ' /proc/mounts || fail "debugfs not mounted"

step "tools"
run fio --version
run mkfs.ext4 -q -F /dev/vdb
run e2fsck -fn /dev/vdb
run mount -t ext4 /dev/vdb /mnt
run_sh 'echo hello > /mnt/f && sync'
run umount /mnt
run blkdiscard -f /dev/vdb
run blockdev --getss /dev/vda
run lsblk
if [ -x /usr/bin/vtierctl ]; then
	run vtierctl --version
fi

step "fio verify on the raw disk (libaio, direct)"
run fio --name=smoke --filename=/dev/vda --ioengine=libaio --direct=1 \
	--iodepth=16 --rw=randwrite --bs=4k --size=8M --verify=crc32c \
	--verify_fatal=1 --output-format=terse --minimal >/tmp/fio.out
cat /tmp/fio.out
