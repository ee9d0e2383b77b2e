#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M 64M 64M 64M 64M
# vtier-timeout: 300
# vtier-needs: module
# vtier-release-only: it passed on the debug kernel in 463 s (fio max latency 5 s), too long for the CI budget; release: 46–65 s
#
# The configfs control operations while I/O runs. A volume with a 2+1
# capacity tier (vdb vdc vdd, vde a spare); fio writes and verifies
# (verify=crc32c, three jobs, each its own region, random block sizes over
# data written sequentially just before, verify_backlog: blocks are read
# back while the writing goes on) while a
# loop keeps reading `status` and `rebuild` and writing `destage`, `scrub`,
# `rebuild` and `replace`, in small steps as a caller pacing them would.
# Asserts:
# - fio verifies every block (wrong data ends it with an error);
# - every operation ran many times and none failed, except `replace` of a
#   healthy member, which must be refused with EBUSY;
# - a capacity member failing mid-run (fail_make_request) is replaced by
#   the spare and rebuilt in steps while the writes go on, then the first
#   device is put back the same way (two full replace + rebuild cycles
#   under I/O);
# - a full scrub afterwards checks stripes and finds nothing wrong;
# - the longest fio completion latency stays under a bound (10 s on the
#   release kernel, 60 s on the debug one): the operations hold the
#   volume's lock one small step at a time, never for the whole of a scrub
#   or rebuild; printed as a figure;
# - with writes still running, `power=0` is refused (EBUSY, the disk is
#   open), and `rmdir` of the configfs directory takes the volume down
#   without a hang: the writer sees I/O errors and exits;
# - after mkdir + power=1 on the same members (WAL recovery), everything
#   fsynced before the rmdir reads back: fio verify_only over the first
#   run's data (end_fsync) and the sha256 of a region written with
#   conv=fsync, against its checksum taken when it was written.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

FI=/sys/kernel/debug/fail_make_request
CO=$VT/co
flavour=${VTIER_FLAVOUR:-release}
# MiB each fio job writes: 6 on the release kernel, 3 on the
# (several times slower) debug kernel.
job_mb=$(( ${VTIER_FIO_MB:-256} >= 128 ? 6 : 3 ))
max_lat_ms=10000
[ "$flavour" = release ] || max_lat_ms=60000

status() { cat "$CO/status"; }

vtier_load
vtier_format /dev/vda /dev/vdb /dev/vdc /dev/vdd
vtier_create co /dev/vda /dev/vdb /dev/vdc /dev/vdd
# Background destaging starts early, next to the operations.
attr_write "$CO/destage_watermarks" "15 5"
disk=$(vtier_up co)
dev=/dev/$disk
status | grep -q '^geometry: 2+1 on 3 members' || fail "no 2+1 capacity tier: $(status)"

cat >/tmp/fill.fio <<JOB
[fill]
filename=$dev
ioengine=libaio
direct=1
iodepth=4
rw=write
bs=1M
size=$((3 * job_mb))M
JOB
cat >/tmp/co.fio <<JOB
[global]
filename=$dev
ioengine=libaio
direct=1
iodepth=4
rw=randwrite
bsrange=4k-64k
size=${job_mb}M
offset_increment=${job_mb}M
verify=crc32c
verify_backlog=32
verify_fatal=1
do_verify=1
end_fsync=1
numjobs=3
group_reporting=0
[co]
JOB

# The region written with conv=fsync just before the rmdir, and the one
# the writer that is running during the rmdir uses: both after fio's.
keep_off=$((3 * job_mb))
busy_off=$((keep_off + 4))

# The control loop. Each operation's outcome is appended to /tmp/ops
# ("OP ok" or "OP FAIL message"); it runs until /tmp/ops.stop exists.
# Member 2 is failed (fail_make_request) in the 3rd round and replaced by
# the spare as soon as status shows it failed; once that rebuild is done,
# the new member fails and the first device goes back in.
: >/tmp/ops
op() { # NAME COMMAND...: run it, record the outcome
	_n=$1
	shift
	if _err=$("$@" 2>&1); then
		echo "$_n ok" >>/tmp/ops
	else
		echo "$_n FAIL $_err" >>/tmp/ops
	fi
}
write_attr() { echo "$2" >"$CO/$1"; }
control_loop() {
	round=0
	cycle=0 # replace cycles started
	failing='' spare=/dev/vde
	while [ ! -e /tmp/ops.stop ]; do
		round=$((round + 1))
		op status sh -c "grep -q '^logical blocks:' $CO/status"
		op destage write_attr destage 2
		op scrub write_attr scrub 16
		rb=$(cat "$CO/rebuild")
		if [ "$rb" != none ]; then
			op rebuild write_attr rebuild 128
		fi
		# A healthy member is never replaced: EBUSY.
		if [ "$rb" = none ] && [ -z "$failing" ]; then
			if _err=$(write_attr replace "0 $spare" 2>&1); then
				echo "replace-healthy FAIL taken" >>/tmp/ops
			else
				case $_err in
				*busy*) echo "replace-healthy ok" >>/tmp/ops ;;
				*) echo "replace-healthy FAIL $_err" >>/tmp/ops ;;
				esac
			fi
		fi
		if [ -z "$failing" ] && [ "$rb" = none ] && [ $cycle -lt 2 ] && [ $round -ge $((3 + cycle * 3)) ]; then
			failing=$(cut -d' ' -f3 "$CO/capacity_devices")
			failing=${failing#/dev/}
			echo 100 >$FI/probability
			echo -1 >$FI/times
			echo 0 >$FI/verbose
			echo 1 >"/sys/block/$failing/make-it-fail"
			echo "member 2 ($failing) fails from now on" >>/tmp/ops.log
		fi
		if [ -n "$failing" ] && ! grep -q '^member 2: failed' "$CO/status"; then
			# Reads of destaged data reach the failing member.
			dd if="$dev" of=/dev/null bs=1M count=4 skip=$(((round * 4) % (3 * job_mb))) iflag=direct 2>/dev/null || true
		fi
		if [ -n "$failing" ] && grep -q '^member 2: failed' "$CO/status"; then
			echo 0 >"/sys/block/$failing/make-it-fail"
			op replace write_attr replace "2 $spare"
			echo "member 2 ($failing) replaced by $spare: $(tail -1 /tmp/ops)" >>/tmp/ops.log
			spare=/dev/$failing
			failing=''
			cycle=$((cycle + 1))
		fi
		sleep 0.2
	done
	echo "$round rounds, $cycle replace cycles" >>/tmp/ops.log
}

# The longest completion latency in fio's output, in ms (clat or lat
# lines; their unit is in the line, a k or M suffix scales the figure).
fio_max_lat_ms() {
	awk '
		/^ *c?lat \((n|u|m)sec\):.*max=/ {
			unit = $0; sub(/^[^(]*\(/, "", unit); sub(/\).*/, "", unit)
			v = $0; sub(/.*max= */, "", v); sub(/,.*/, "", v)
			mul = 1
			if (v ~ /k$/) { mul = 1000; sub(/k$/, "", v) }
			if (v ~ /M$/) { mul = 1000000; sub(/M$/, "", v) }
			ms = v * mul / (unit == "nsec" ? 1000000 : unit == "usec" ? 1000 : 1)
			if (ms > best) best = ms
		}
		END { printf "%d\n", best }' "$1"
}

step "fio write + verify ($((3 * job_mb)) MiB over as much written before) while the control loop runs"
[ -d $FI ] || fail "no $FI (CONFIG_FAIL_MAKE_REQUEST, debugfs)"
kmsg_mark
control_loop &
loop_pid=$!
t0=$(date +%s)
fio_rc=0
fio /tmp/fill.fio >/tmp/fill.out 2>&1 || { cat /tmp/fill.out; fail "the sequential fill failed"; }
fio /tmp/co.fio >/tmp/fio.out 2>&1 || fio_rc=$?
t1=$(date +%s)
# Let a rebuild in progress finish under the loop, up to 60 s.
i=0
while [ "$(cat "$CO/rebuild")" != none ] || [ "$(grep -c '^replace ok' /tmp/ops)" -lt 2 ]; do
	i=$((i + 1))
	[ $i -lt 300 ] || break
	sleep 0.2
done
touch /tmp/ops.stop
wait $loop_pid
cat /tmp/ops.log
if [ $fio_rc != 0 ] || grep -q 'err= *[1-9]' /tmp/fio.out || [ "$(grep -c 'err= 0' /tmp/fio.out)" != 3 ]; then
	cat /tmp/fio.out
	fail "fio write+verify failed under the control operations (status $fio_rc)"
fi
grep -E 'verify|err=' /tmp/fio.out | head -5 || true
echo "fio ran $((t1 - t0)) s"
for o in status destage scrub rebuild replace replace-healthy; do
	echo "$o: $(grep -c "^$o ok" /tmp/ops) ok, $(grep -c "^$o FAIL" /tmp/ops || true) failed"
done
if grep ' FAIL' /tmp/ops | head -5; then
	fail "control operations failed under I/O: $(grep -m1 ' FAIL' /tmp/ops)"
fi
for o in status destage scrub; do
	[ "$(grep -c "^$o ok" /tmp/ops)" -ge 5 ] || fail "$o ran fewer than 5 times during fio"
done
[ "$(grep -c '^replace ok' /tmp/ops)" = 2 ] || fail "not two replace cycles under I/O: $(cat /tmp/ops.log)"
grep -q '^rebuild ok' /tmp/ops || fail "no rebuild step ran"
grep -q '^replace-healthy ok' /tmp/ops || fail "replace of a healthy member was never tried"
status | grep -E '^(health|member|rebuild|scrub):'
[ "$(status | grep -c '^member [0-9]: ok')" = 3 ] || fail "not every member ok after the rebuilds"
# Every stripe, written, rebuilt twice and destaged into under I/O,
# checks out.
attr_write "$CO/scrub" 1000000 # the end of the pass the loop began
attr_write "$CO/scrub" 1000000 # a whole pass
status | grep '^scrub:'
status | grep -q '^scrub: checked [1-9]' || fail "a full scrub checked no stripe"
status | grep -q '^scrub: .* checksum_errors 0 read_errors 0 parity_mismatches 0 repaired 0 unrepairable 0$' ||
	fail "the full scrub after the rebuilds under I/O found errors: $(status | grep '^scrub:')"
members=$(cat "$CO/capacity_devices")
[ "$members" = "/dev/vdb /dev/vdc /dev/vdd" ] || fail "capacity_devices reads '$members' after two replaces"

lat=$(fio_max_lat_ms /tmp/fio.out)
echo "VTIER-FIGURE: control-ops ($flavour): fio max completion latency ${lat} ms under destage/scrub/rebuild/replace (bound ${max_lat_ms} ms), fio ran $((t1 - t0)) s"
[ "$lat" -gt 0 ] || { cat /tmp/fio.out; fail "no latency figure in fio's output"; }
[ "$lat" -le $max_lat_ms ] || fail "an I/O waited ${lat} ms (bound ${max_lat_ms} ms) under the control operations"

step "rmdir while a writer runs; what was fsynced before survives"
run dd if=/dev/urandom of=/tmp/keep bs=1M count=4
run dd if=/tmp/keep of="$dev" bs=1M seek=$keep_off oflag=direct conv=fsync
keep_sum=$(sha256sum </tmp/keep | cut -d' ' -f1)
cat >/tmp/busy.fio <<JOB
[busy]
filename=$dev
ioengine=libaio
direct=1
iodepth=8
rw=randwrite
bs=16k
offset=${busy_off}M
size=8M
time_based=1
runtime=120
JOB
fio /tmp/busy.fio >/tmp/busy.out 2>&1 &
busy_pid=$!
# The writer has the disk open once requests are counted.
w0=$(status | sed -n 's/^requests: .* writes \([0-9]*\).*/\1/p')
i=0
while [ "$(status | sed -n 's/^requests: .* writes \([0-9]*\).*/\1/p')" -lt $((w0 + 50)) ]; do
	i=$((i + 1))
	[ $i -lt 150 ] || fail "the writer did not start (status: $(status | head -3))"
	sleep 0.2
done
if err=$(write_attr power 0 2>&1); then
	fail "power=0 taken while the disk is open and written"
fi
case $err in *busy*) echo "power=0 refused while open: $err" ;; *) fail "power=0 while open: '$err', not EBUSY" ;; esac
# rmdir cannot be refused by the module: it takes the volume down under
# the writer (del_gendisk), which must not hang.
rmdir "$CO" >/tmp/rmdir.out 2>&1 &
rmdir_pid=$!
i=0
while kill -0 $rmdir_pid 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "rmdir of a volume under I/O still running after 60 s"
	sleep 0.2
done
rmdir_rc=0
wait $rmdir_pid || rmdir_rc=$?
[ $rmdir_rc = 0 ] || fail "rmdir failed (status $rmdir_rc): $(cat /tmp/rmdir.out)"
[ ! -d "$CO" ] || fail "$CO still there after rmdir"
i=0
while kill -0 $busy_pid 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 150 ] || fail "the writer still runs 30 s after its disk went away"
	sleep 0.2
done
busy_rc=0
wait $busy_pid || busy_rc=$?
[ $busy_rc != 0 ] || { cat /tmp/busy.out; fail "the writer ended without an error although its disk was removed"; }
grep -m1 -iE 'error|err=' /tmp/busy.out || true
[ ! -b "$dev" ] || fail "$dev still exists after rmdir"
dmesg | grep -E 'vtier|co:' | tail -5 || true

step "mkdir + power=1 on the same members: fsynced data intact"
vtier_create co /dev/vda /dev/vdb /dev/vdc /dev/vdd
disk=$(vtier_up co)
dev=/dev/$disk
dmesg | grep -E 'co: (recovered|vtier)' | tail -3 || true
sed -i "s|^filename=.*|filename=$dev|" /tmp/co.fio
# verify_only replays the jobs' writes (randrepeat: the same offsets,
# sizes and seeds) and reads every block back against its checksum.
fio --verify_only /tmp/co.fio >/tmp/fio.out 2>&1 || {
	st=$?
	cat /tmp/fio.out
	fail "fio verify_only after rmdir and power=1 failed (status $st)"
}
[ "$(sha_range "$dev" $((keep_off << 20)) 4194304)" = "$keep_sum" ] ||
	fail "the region fsynced before the rmdir reads back wrong after power=1"
echo "fio data and the fsynced region read back after rmdir under I/O and power=1"

vtier_down co
run rmdir "$CO"
vtier_unload
