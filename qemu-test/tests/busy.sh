#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M
# vtier-timeout: 300
# vtier-needs: module
# vtier-kmemleak: a volume torn down while it is held open frees what the open kept
#
# Taking down a device that is in use:
# - power=0 while a process holds /dev/vtier0 open, or while ext4 is mounted
#   on it, fails with EBUSY and one error line, and the device keeps
#   working; once closed/unmounted, power=0 works;
# - rmmod while a device exists fails (the configfs item holds the module);
# - rmdir of the configuration while ext4 is mounted (configfs cannot refuse
#   an rmdir) takes the disk away under the file system: I/O fails, nothing
#   oopses (the host checks), umount completes, and the module unloads;
#   the file synced before the rmdir is intact afterwards (its sha256,
#   taken of the data written, matches).
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

EBUSY="Device or resource busy"

# The error lines naming the device since the last mark.
err_lines() { dmesg -r | grep '^<3>' | grep -cE "vtier:? $1: " || true; }

vtier_load
vtier_format /dev/vda
vtier_create busy /dev/vda
disk=$(vtier_up busy)
dev=/dev/$disk

step "power=0 while a process holds $dev open"
exec 3<"$dev"
kmsg_mark
if out=$( (echo 0 >"$VT/busy/power") 2>&1); then
	fail "power=0 succeeded while $dev was open"
fi
echo "  -> $out"
case $out in *"$EBUSY"*) ;; *) fail "power=0 while open: '$out', expected '$EBUSY'" ;; esac
[ "$(err_lines busy)" = 1 ] || fail "power=0 while open: $(err_lines busy) error lines, expected 1"
[ "$(cat "$VT/busy/power")" = 1 ] || fail "refused power=0 changed power"
[ -b "$dev" ] || fail "refused power=0 removed $dev"
exec 3<&-
vtier_down busy
disk=$(vtier_up busy)
dev=/dev/$disk

step "power=0 and rmmod while ext4 is mounted"
run mkfs.ext4 -q -F "$dev"
run mkdir -p /mnt/b
run mount -t ext4 "$dev" /mnt/b
run dd if=/dev/urandom of=/tmp/f bs=1M count=4
want=$(sha256sum </tmp/f | cut -d' ' -f1)
run cp /tmp/f /mnt/b/f
kmsg_mark
if (echo 0 >"$VT/busy/power") 2>/dev/null; then
	fail "power=0 succeeded while $dev was mounted"
fi
[ "$(cat "$VT/busy/power")" = 1 ] || fail "refused power=0 changed power"
if rmmod vtier 2>/dev/null; then
	fail "rmmod succeeded while $dev was mounted"
fi
grep -q '^vtier ' /proc/modules || fail "vtier unloaded under a mount"
run sync

step "rmdir while mounted: the disk goes away under ext4"
run rmdir "$VT/busy"
i=0
while [ -e "$dev" ]; do
	i=$((i + 1))
	[ $i -lt 50 ] || fail "$dev still exists 5 s after rmdir"
	sleep 0.1
done
if dd if=/dev/urandom of=/mnt/b/g bs=1M count=4 conv=fsync 2>/dev/null; then
	echo "note: a write + fsync after the disk went away succeeded"
else
	echo "a write + fsync after the disk went away failed, as it should"
fi
run umount /mnt/b
sleep 1
vtier_unload

step "the data written before is on the performance device"
vtier_load
vtier_create busy /dev/vda
disk=$(vtier_up busy)
run e2fsck -fn "/dev/$disk" || true
run mount -t ext4 -o ro "/dev/$disk" /mnt/b
[ "$(stat -c %s /mnt/b/f)" = 4194304 ] || fail "the file written before rmdir is not 4 MiB"
got=$(sha256sum </mnt/b/f | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "the file written before rmdir has other content (sha256 $got, written $want)"
run umount /mnt/b
vtier_down busy
run rmdir "$VT/busy"
vtier_unload
