#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 768M 192M 192M 192M
# vtier-timeout: 900
# vtier-needs: module
#
# fio with verify=crc32c on /dev/vtier0 (libaio, O_DIRECT, iodepth 16): a
# 4 KiB random-write job and a 1 MiB sequential-write job side by side on
# two halves of VTIER_FIO_MB MiB (default 96; the suite runs 64, and 24
# on the debug kernel), each reading back and checking everything it
# wrote (verify_fatal). Then all of it is destaged
# into the 2+1 stripes of the three capacity devices, the device is
# powered down and up again and a verify-only pass re-reads all of it: the
# data must have reached the capacity tier's stripes, not just a cache.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

mb=${VTIER_FIO_MB:-96}
half=$((mb / 2))

vtier_load
vtier_format /dev/vda /dev/vdb /dev/vdc /dev/vdd
vtier_create fio /dev/vda /dev/vdb /dev/vdc /dev/vdd
disk=$(vtier_up fio)
dev=/dev/$disk
size=$(bdev_size "$dev")
ss=$(blockdev --getss "$dev")
echo "$dev: $size bytes, logical block size $ss"
[ "$ss" = 4096 ] || fail "$dev: logical block size $ss, not 4096"
[ "$size" -gt $((mb << 20)) ] || fail "$dev: $size bytes, too small for $mb MiB of fio"

cat >/tmp/verify.fio <<JOB
[global]
filename=$dev
ioengine=libaio
direct=1
iodepth=16
verify=crc32c
verify_fatal=1
do_verify=1
randrepeat=1
group_reporting=0

[rand-4k]
rw=randwrite
bs=4k
offset=0
size=${half}M

[seq-1m]
rw=write
bs=1M
offset=${half}M
size=${half}M
JOB

step "fio: write $mb MiB and verify (crc32c)"
cat /tmp/verify.fio
fio /tmp/verify.fio >/tmp/fio.out 2>&1 || {
	st=$?
	cat /tmp/fio.out
	fail "fio write+verify failed (status $st)"
}
cat /tmp/fio.out
grep -q 'verify:' /tmp/fio.out && fail "fio reported verify errors"
[ "$(grep -c 'err= 0' /tmp/fio.out)" = 2 ] || fail "fio: not both jobs ended with err=0"

step "destage all of it into the capacity tier's stripes"
grep -m1 '^geometry: 2+1 ' "$VT/fio/status" || fail "no 2+1 stripes: $(grep -m1 '^geometry:' "$VT/fio/status")"
attr_write "$VT/fio/destage" 1000000
echo "destaged: $(cat "$VT/fio/destage")"
moved=$(awk '{ print $3 }' "$VT/fio/destage")
[ "$moved" -ge $((mb * 256)) ] || fail "only $moved blocks destaged of $((mb * 256)) written"
grep -E '^(destage|stripes):' "$VT/fio/status"

step "power cycle, then verify everything again from the capacity tier"
vtier_down fio
disk=$(vtier_up fio)
dev=/dev/$disk
sed -i "s|^filename=.*|filename=$dev|" /tmp/verify.fio
fio --verify_only /tmp/verify.fio >/tmp/fio2.out 2>&1 || {
	st=$?
	cat /tmp/fio2.out
	fail "fio verify_only after power cycle failed (status $st)"
}
cat /tmp/fio2.out
grep -q 'verify:' /tmp/fio2.out && fail "fio verify_only reported verify errors"
[ "$(grep -c 'err= 0' /tmp/fio2.out)" = 2 ] || fail "fio verify_only: not both jobs ended with err=0"
read_kb=$(sed -n 's/.*READ: bw=.*io=\([0-9.]*\)\([KMG]\)i\{0,1\}B.*/\1 \2/p' /tmp/fio2.out | head -1)
echo "verify_only read: $read_kb"

vtier_down fio
run rmdir "$VT/fio"
vtier_unload
