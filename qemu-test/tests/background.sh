#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M 64M 64M 64M
# vtier-timeout: 600
# vtier-needs: module
# vtier-release-only: the CI budget: 300 s on the debug kernel, 52 s on the release one; its paths (destaging while writes go on) run under KASAN in fio-verify and powercut
#
# Background destaging between the watermarks of configfs
# `destage_watermarks`. With a 2+1 capacity tier and the watermarks at
# 20 % / 10 % of the performance tier in use, 64 MiB written with fio
# (verify=crc32c, read back at once) take the performance tier above the
# high watermark; with no `destage` written by anyone, the module must
# move data to the stripes on its own until less than 10 % is in use
# (`status`: "performance tier: N % in use; background: M stripes moved").
# Then fio re-reads everything (verify_only), before and after a power
# cycle. Watermarks `0 0` turn it off; bad watermarks are refused with
# EINVAL and change nothing.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

vtier_load
vtier_format /dev/vda /dev/vdb /dev/vdc /dev/vdd
vtier_create bg /dev/vda /dev/vdb /dev/vdc /dev/vdd

step "watermarks: default, bad input refused, set before power=1"
[ "$(cat "$VT/bg/destage_watermarks")" = "60 40" ] ||
	fail "default watermarks read '$(cat "$VT/bg/destage_watermarks")'"
for bad in "10 20" "101 50" "50 50" "abc" "20" "20 10 5"; do
	if echo "$bad" >"$VT/bg/destage_watermarks" 2>/dev/null; then
		fail "destage_watermarks took '$bad'"
	fi
done
[ "$(cat "$VT/bg/destage_watermarks")" = "60 40" ] || fail "a refused write changed the watermarks"
attr_write "$VT/bg/destage_watermarks" "20 10"
[ "$(cat "$VT/bg/destage_watermarks")" = "20 10" ] || fail "watermarks not taken"

disk=$(vtier_up bg)
dev=/dev/$disk
[ "$(bdev_size "$dev")" -ge $((96 << 20)) ] || fail "$dev: $(bdev_size "$dev") bytes, less than the capacity tier gives"
in_use() { sed -n 's/^performance tier: \([0-9]*\) % in use.*/\1/p' "$VT/bg/status"; }
moved() { sed -n 's/.*background: \([0-9]*\) stripes moved.*/\1/p' "$VT/bg/status"; }
[ "$(moved)" = 0 ] || fail "stripes moved before anything was written: $(moved)"

cat >/tmp/bg.fio <<JOB
[bg]
filename=$dev
ioengine=libaio
direct=1
iodepth=8
rw=write
bs=256k
size=64M
verify=crc32c
verify_fatal=1
do_verify=1
JOB

step "64 MiB written and read back; the tier destages on its own"
fio /tmp/bg.fio >/tmp/fio.out 2>&1 || {
	st=$?
	cat /tmp/fio.out
	fail "fio write+verify failed (status $st)"
}
grep -q 'err= 0' /tmp/fio.out || { cat /tmp/fio.out; fail "fio did not end with err=0"; }
i=0
while [ "$(in_use)" -ge 10 ]; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "still $(in_use) % in use after 60 s: $(grep '^performance tier' "$VT/bg/status")"
	sleep 0.2
done
grep -E '^(performance tier|destage):' "$VT/bg/status"
[ "$(moved)" -gt 0 ] || fail "below the low watermark, but no stripe moved in the background"
destaged=$(awk '{ print $3 }' "$VT/bg/destage")
echo "destaged since power=1: $(cat "$VT/bg/destage")"
[ "$destaged" -gt 0 ] || fail "destage counts no block"

step "everything reads back (verify_only), before and after a power cycle"
for pass in 1 2; do
	fio --verify_only /tmp/bg.fio >/tmp/fio.out 2>&1 || {
		st=$?
		cat /tmp/fio.out
		fail "pass $pass: fio verify_only failed (status $st)"
	}
	if [ $pass = 1 ]; then
		vtier_down bg
		disk=$(vtier_up bg)
		dev=/dev/$disk
		sed -i "s|^filename=.*|filename=$dev|" /tmp/bg.fio
	fi
done

step "watermarks 0 0: nothing moves in the background"
attr_write "$VT/bg/destage_watermarks" "0 0"
before=$(moved)
run dd if=/dev/urandom of="$dev" bs=1M count=32 seek=64 oflag=direct
sleep 2
[ "$(moved)" = "$before" ] || fail "background destaging ran with watermarks 0 0: $before -> $(moved)"
[ "$(in_use)" -ge 20 ] || fail "only $(in_use) % in use after 32 MiB more"

vtier_down bg
run rmdir "$VT/bg"
vtier_unload
