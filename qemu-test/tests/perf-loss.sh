#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M 32M 32M 32M
# vtier-timeout: 240
# vtier-needs: module
# vtier-release-only: not yet measured on the debug kernel (release: 25–65 s in the guest); it joins the debug suite once its time there fits the CI budget
#
# The performance device lost under load. vda is the performance device
# (the data log and all the metadata: WAL, allocation maps, B-tree), vdb..vdd
# a 2+1 capacity tier.
# - Region S (8 MiB at 0) is written with O_DIRECT and fsync and destaged
#   into the stripes; then its middle 4 MiB are overwritten and fsynced
#   again (those stay in the data log on vda). The sha256 of every MiB is
#   taken from the bytes written, at write time.
# - fio (four jobs, random reads and writes, going on after errors) loads
#   the device elsewhere; fail_make_request then fails every I/O to vda,
#   and vda is hot-removed through the QEMU monitor (device_del) while fio
#   still runs. I/O errors are expected; what must hold: fio ends when
#   stopped (no request hangs), `power=0` completes, the module's messages
#   name vda, and no kernel splat (the host checks the console).
# - The same image is attached again (drive_add + device_add); `vtierctl
#   check` must find the members clean (a crash state, nothing half
#   written), `power=1` recovers the volume from its WAL, and region S must
#   read back as acknowledged, every MiB against its write-time sum.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

FI=/sys/kernel/debug/fail_make_request
V=pl

status() { cat "$VT/$V/status"; }

# sums FILE: the sha256 of each MiB of FILE, one a line.
sums() {
	_i=0
	_n=$(($(wc -c <"$1") >> 20))
	while [ $_i -lt "$_n" ]; do
		dd if="$1" bs=1M skip=$_i count=1 2>/dev/null | sha256sum | cut -d' ' -f1
		_i=$((_i + 1))
	done
}

start=$(date +%s)
vtier_load
run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd
vtier_create $V /dev/vda /dev/vdb /dev/vdc /dev/vdd
disk=$(vtier_up $V)
dev=/dev/$disk

step "region S: 8 MiB written, fsynced, destaged; its middle 4 MiB overwritten and fsynced"
run dd if=/dev/urandom of=/tmp/s1 bs=1M count=8
run dd if=/dev/urandom of=/tmp/s2 bs=1M count=4
# What region S must hold: s1, with s2 over MiB 2..5.
run cp /tmp/s1 /tmp/expect
run dd if=/tmp/s2 of=/tmp/expect bs=1M seek=2 conv=notrunc
sums /tmp/expect >/tmp/expect.sums
run dd if=/tmp/s1 of="$dev" bs=1M oflag=direct conv=fsync
attr_write "$VT/$V/destage" 100000
moved=$(awk '{ print $3 }' "$VT/$V/destage")
[ "$moved" -ge 2048 ] || fail "only $moved blocks of region S destaged"
run dd if=/tmp/s2 of="$dev" bs=1M seek=2 oflag=direct conv=fsync
status | grep -E '^(destage|performance tier|stripes):'

step "fio load; vda fails every I/O (fail_make_request), then is hot-removed"
dmesg -c >/dev/null
fio --name=load --filename="$dev" --ioengine=libaio --direct=1 --iodepth=4 \
	--rw=randrw --bs=16k --offset=16M --size=16M --numjobs=4 --offset_increment=4M \
	--time_based --runtime=600 --continue_on_error=all --group_reporting \
	>/tmp/load.out 2>&1 &
load=$!
sleep 2
kill -0 $load 2>/dev/null || { cat /tmp/load.out; fail "fio load ended before vda failed"; }
[ -d $FI ] || fail "no $FI (CONFIG_FAIL_MAKE_REQUEST, debugfs)"
echo 100 >$FI/probability
echo -1 >$FI/times
echo 0 >$FI/verbose
echo 1 >/sys/block/vda/make-it-fail
sleep 2
kill -0 $load 2>/dev/null || { cat /tmp/load.out; fail "fio load ended before vda was removed"; }
host_do 1 "device_del disk0" '[ ! -e /sys/block/vda ]'
echo "vda is gone"
sleep 2
status | grep -E '^(requests|health):' || true

step "fio stops, power=0 completes"
kill $load 2>/dev/null || true
n=0
while kill -0 $load 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 150 ] || fail "fio did not end within 30 s of SIGTERM: a request hangs"
	sleep 0.2
done
wait $load || true
grep -E 'err=|io=' /tmp/load.out | head -4 || true
errors=$(status | sed -n 's/^requests: .* errors \([0-9]*\)$/\1/p')
echo "requests failed: $errors"
[ "${errors:-0}" -gt 0 ] || fail "no request failed with the performance device gone"
(if echo 0 >"$VT/$V/power"; then echo 0; else echo 1; fi >/tmp/power.rc) 2>/tmp/power.err &
n=0
while [ ! -s /tmp/power.rc ]; do
	n=$((n + 1))
	[ $n -lt 300 ] || fail "power=0 did not complete within 60 s"
	sleep 0.2
done
echo "power=0: status $(cat /tmp/power.rc) $(cat /tmp/power.err)"
[ "$(cat "$VT/$V/power")" = 0 ] || fail "power reads $(cat "$VT/$V/power") after power=0"
dmesg | grep 'vtier: ' | head -20
dmesg | grep -q 'vtier: .*vda' || fail "no kernel message names vda"

step "the same image attached again"
before=$(echo /sys/block/vd*)
# The removed disk's drive goes with it in QEMU; drive_del makes sure
# (an error if it is gone already), then drive_add and device_add attach
# the image again. Each is printed until the new disk is there.
i=0
new=
while [ -z "$new" ]; do
	[ $((i % 10)) != 0 ] || {
		echo "VTIER-HOST 2: drive_del drv0 :END"
		echo "VTIER-HOST 3: drive_add 0 file=@IMG0@,if=none,id=drv0b,format=raw,cache=unsafe :END"
		echo "VTIER-HOST 4: device_add virtio-blk-pci,drive=drv0b,id=disk0b :END"
	}
	sleep 0.5
	for d in /sys/block/vd*; do
		case " $before " in *" $d "*) ;; *) new=${d#/sys/block/} ;; esac
	done
	i=$((i + 1))
	[ $i -lt 240 ] || fail "the image of vda did not come back in 120 s"
done
perf=/dev/$new
wait_bdev "$perf" "the performance device"
echo "the performance device is back as $perf"
vtierctl show "$perf" | head -5

step "vtierctl check: the members are clean as the loss left them"
if ! vtierctl check --perf "$perf" --capacity /dev/vdb /dev/vdc /dev/vdd --json >/tmp/check.json 2>&1; then
	cat /tmp/check.json
	fail "vtierctl check found errors after the performance device was lost"
fi
grep -q '"clean": true' /tmp/check.json || fail "vtierctl check: no clean report"

step "power=1 on the returned device: region S as acknowledged"
attr_write "$VT/$V/perf_device" "$perf"
disk=$(vtier_up $V)
dev=/dev/$disk
dmesg | grep "vtier: $V: " | tail -4
i=0
while read -r want; do
	got=$(sha_range "$dev" $((i << 20)) 1048576)
	[ "$got" = "$want" ] || fail "region S, MiB $i: sha256 $got, acknowledged $want"
	i=$((i + 1))
done </tmp/expect.sums
[ $i = 8 ] || fail "$i MiB of region S checked, not 8"
echo "region S: all 8 MiB as acknowledged"
status | grep -E '^(health|member)'

vtier_down $V
run rmdir "$VT/$V"
vtier_unload
echo "VTIER-FIGURE: perf-loss: performance device failed and removed under load, 8 MiB acknowledged before it checked after its return, in $(($(date +%s) - start)) s"
