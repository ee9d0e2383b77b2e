#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M 32M 32M 32M 32M 32M 32M 32M
# vtier-timeout: 240
# vtier-needs: module
# vtier-release-only: not yet measured on the debug kernel (release: 89–108 s in the guest); it joins the debug suite once its time there fits the CI budget
#
# Capacity members lost under load. vda is the performance device, vdb..vdg
# the capacity tier (six devices: 4+2 stripes, so two may be lost), vdh a
# spare. Four regions of the device are written by fio, each with four
# jobs (verify=crc32c, 16 KiB random writes, read back at the end of each
# job), while a loop destages into the stripes all the time (and the
# background destage runs from a low watermark), so that data really moves
# into stripes while members go away:
# - region A is written and destaged whole while the volume is healthy;
# - (a) region B is written, and A re-read (fio verify_only), while
#   fail_make_request makes every I/O to vdc (member 1) fail: `status`
#   must show it failed, and A's reads reconstruct (degraded reads);
# - (b) region C is written, and A re-read, while vde (member 3) is
#   hot-removed through the QEMU monitor (device_del): two members lost,
#   as many as the parity covers, and every read still right;
# - (c) the removed member is replaced by the spare (configfs `replace`)
#   and rebuilt, paced in steps, while region D is written and A and B
#   are re-read;
# - then vdb (member 0) fails too: with members 0 and 1 lost, the chunks
#   rebuilt onto the spare are needed, and fio verify_only of all four
#   regions must pass.
# Every fio run must end with err=0 and no verify error; the host fails
# the test on any kernel splat in the console log.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

FI=/sys/kernel/debug/fail_make_request
V=ml
# KiB per fio job (four jobs a region): less on the debug kernel, whose
# every request is several times slower.
JOB_KB=1024
[ "${VTIER_FLAVOUR:-release}" = release ] || JOB_KB=512
REGION_KB=$((4 * JOB_KB))

fail_disk() { # DEV: every bio to DEV fails from now on
	[ -d $FI ] || fail "no $FI (CONFIG_FAIL_MAKE_REQUEST, debugfs)"
	echo 100 >$FI/probability
	echo -1 >$FI/times
	echo 0 >$FI/verbose
	echo 1 >"/sys/block/$1/make-it-fail"
}

status() { cat "$VT/$V/status"; }
# The io: line's degraded reads of the stripe store.
degraded() { status | sed -n 's/^io: .* degraded \([0-9]*\) .*/\1/p'; }
member_state() { status | sed -n "s/^member $1: \([a-z]*\) .*/\1/p"; }
destaged() { status | sed -n 's/^destage: stripes \([0-9]*\) .*/\1/p'; }

# wait_for SECONDS WHAT CHECK: until the shell snippet CHECK succeeds.
wait_for() {
	_n=0
	until sh -c "$3"; do
		_n=$((_n + 1))
		[ $_n -lt $(($1 * 5)) ] || fail "after $1 s: $2 ($(status | grep -E '^(health|member|io)' | tr '\n' ';'))"
		sleep 0.2
	done
}

# region_job NAME INDEX: /tmp/NAME.fio, four jobs over region INDEX.
region_job() {
	cat >"/tmp/$1.fio" <<JOB
[global]
filename=$dev
ioengine=libaio
direct=1
iodepth=4
rw=randwrite
bs=16k
verify=crc32c
verify_fatal=1
do_verify=1
randrepeat=1
size=${JOB_KB}k
offset=$(($2 * REGION_KB))k
offset_increment=${JOB_KB}k
numjobs=4
group_reporting=0

[$1]
JOB
}

# fio_start NAME WHAT [fio options]: runs region NAME's job in the
# background (output in /tmp/NAME-WHAT.out); its pid in $fio_pid.
fio_start() {
	_name=$1 _what=$2
	shift 2
	fio "$@" "/tmp/$_name.fio" >"/tmp/$_name-$_what.out" 2>&1 &
	fio_pid=$!
}

# fio_check NAME WHAT PID: waits for that fio; it must have passed.
fio_check() {
	if ! wait "$3"; then
		cat "/tmp/$1-$2.out"
		fail "region $1, $2: fio failed"
	fi
	if grep -q 'verify:' "/tmp/$1-$2.out"; then
		cat "/tmp/$1-$2.out"
		fail "region $1, $2: fio reported verify errors"
	fi
	[ "$(grep -c 'err= 0' "/tmp/$1-$2.out")" = 4 ] || {
		cat "/tmp/$1-$2.out"
		fail "region $1, $2: not all four fio jobs ended with err=0"
	}
	echo "region $1, $2: fio passed"
}

# verify_regions WHAT NAME...: fio verify_only of each region, in turn.
verify_regions() {
	_what=$1
	shift
	for _r in "$@"; do
		fio_start "$_r" "$_what" --verify_only
		fio_check "$_r" "$_what" "$fio_pid"
	done
}

start=$(date +%s)
vtier_load
run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd /dev/vde /dev/vdf /dev/vdg
vtier_create $V /dev/vda /dev/vdb /dev/vdc /dev/vdd /dev/vde /dev/vdf /dev/vdg
attr_write "$VT/$V/destage_watermarks" "20 10"
disk=$(vtier_up $V)
dev=/dev/$disk
status | grep -m1 '^geometry: 4+2 on 6 members' || fail "no 4+2 stripes on 6 members: $(status | grep -m1 '^geometry')"
[ "$(bdev_size "$dev")" -ge $((4 * REGION_KB << 10)) ] || fail "$dev: $(bdev_size "$dev") bytes, too small"
region_job A 0
region_job B 1
region_job C 2
region_job D 3

step "region A ($REGION_KB KiB, 4 fio jobs) written and verified, destaged whole"
fio_start A write
fio_check A write "$fio_pid"
attr_write "$VT/$V/destage" 100000
echo "destaged: $(cat "$VT/$V/destage")"
moved=$(awk '{ print $3 }' "$VT/$V/destage")
[ "$moved" -ge $((REGION_KB / 4)) ] || fail "only $moved blocks of region A destaged"
[ "$(degraded)" = 0 ] || fail "degraded reads on a healthy volume"

# From here on data moves into stripes all the time.
(while :; do echo 4 >"$VT/$V/destage" || true; sleep 1; done) >/dev/null 2>&1 &
destager=$!

step "(a) vdc (member 1) fails under load: region B written, region A re-read"
dmesg -c >/dev/null
stripes_before=$(destaged)
fio_start B write
b_pid=$fio_pid
fio_start A read-a --verify_only
a_pid=$fio_pid
sleep 1
fail_disk vdc
fio_check B write "$b_pid"
fio_check A read-a "$a_pid"
# A's stripes all have a chunk on member 1: reading A again now must
# reconstruct, whatever the reads above found.
verify_regions read-a2 A
wait_for 20 "member 1 (vdc) not failed" "grep -q '^member 1: failed' $VT/$V/status"
status | grep -E '^(health|member|io|destage):'
[ "$(degraded)" -gt 0 ] || fail "no degraded read with member 1 failed"
[ "$(destaged)" -gt "$stripes_before" ] || fail "no stripe destaged while region B was written"
dmesg | grep -q 'vtier: .*vdc' || fail "no kernel message names vdc"
dmesg | grep 'vtier: .*vdc' | head -3

step "(b) vde (member 3) hot-removed under load: region C written, region A re-read"
dmesg -c >/dev/null
degraded_before=$(degraded)
stripes_before=$(destaged)
fio_start C write
c_pid=$fio_pid
fio_start A read-b --verify_only
a_pid=$fio_pid
host_do 1 "device_del disk4" '[ ! -e /sys/block/vde ]'
echo "vde is gone"
fio_check C write "$c_pid"
fio_check A read-b "$a_pid"
# The destage loop writes stripes, and the chunk writes to the removed
# member fail it.
wait_for 30 "member 3 (vde, removed) not failed" "grep -q '^member 3: failed' $VT/$V/status"
verify_regions read-b2 B
status | grep -E '^(health|member|io|destage):'
status | grep -q '^health: degraded, 2 members lost' || fail "status does not say degraded with 2 members lost"
[ "$(degraded)" -gt "$degraded_before" ] || fail "no degraded read with vde removed"
[ "$(destaged)" -gt "$stripes_before" ] || fail "no stripe destaged while region C was written"
dmesg | grep -q 'vtier: .*vde' || fail "no kernel message names vde"
dmesg | grep 'vtier: .*vde' | head -3

step "(c) the spare vdh replaces member 3, rebuilt under load: region D written, A and B re-read"
fio_start D write
d_pid=$fio_pid
fio_start A read-c --verify_only
a_pid=$fio_pid
fio_start B read-c --verify_only
b_pid=$fio_pid
attr_write "$VT/$V/replace" "3 /dev/vdh"
case "$(cat "$VT/$V/rebuild")" in "member 3 "*) ;; *) fail "no rebuild of member 3 running: $(cat "$VT/$V/rebuild")" ;; esac
steps=0
under_load=0
while [ "$(cat "$VT/$V/rebuild")" != none ]; do
	echo 64 >"$VT/$V/rebuild" || fail "rebuild step failed"
	! kill -0 "$d_pid" 2>/dev/null || under_load=$((under_load + 1))
	steps=$((steps + 1))
	[ $steps -lt 1000 ] || fail "rebuild does not finish"
done
echo "rebuild done in $steps steps, $under_load of them while region D was written"
[ $under_load -gt 0 ] || fail "the rebuild did not run under load"
fio_check D write "$d_pid"
fio_check A read-c "$a_pid"
fio_check B read-c "$b_pid"
status | grep -E '^(health|member|rebuil)'
[ "$(member_state 3)" = ok ] || fail "member 3 is $(member_state 3) after the rebuild"
grep -q /dev/vdh "$VT/$V/capacity_devices" || fail "capacity_devices does not name the spare"
status | grep -q '^rebuilt: [1-9][0-9]* chunks, 0 stripes unrecoverable' || fail "rebuild: $(status | grep '^rebuilt:')"

step "vdb (member 0) fails too: the rebuilt chunks stand in; every region verified"
kill "$destager"
wait "$destager" 2>/dev/null || true
attr_write "$VT/$V/destage" 100000
fail_disk vdb
verify_regions final A B C D
wait_for 20 "member 0 (vdb) not failed" "grep -q '^member 0: failed' $VT/$V/status"
status | grep -E '^(health|member|io|destage|rebuil)'
status | grep -q '^health: degraded, 2 members lost' || fail "status does not say degraded with 2 members lost"

step "power off"
echo 0 >/sys/block/vdb/make-it-fail
echo 0 >/sys/block/vdc/make-it-fail
vtier_down $V
run rmdir "$VT/$V"
vtier_unload
echo "VTIER-FIGURE: member-loss: $((4 * REGION_KB)) KiB in 4 regions verified through a failed, a removed and a rebuilt member in $(($(date +%s) - start)) s"
