#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 256M 64M 64M 64M 16M
# vtier-boots: 2
# vtier-timeout: 400
# vtier-needs: module
#
# A crash of the kernel path: the machine dies in the middle of writes and
# the next boot's power=1 recovers the volume from its WAL. Two boots on
# the same disks (run.sh, vtier-boots): vda is the performance device,
# vdb..vdd the capacity tier (2+1 stripes), vde a scratch disk that is no
# member and carries the key and the log of acknowledged writes from boot
# 1 to boot 2.
#
# Boot 1, on an encrypted volume:
# - region A (0..8 MiB): fio writes 4 KiB random blocks with
#   verify=crc32c, checks them, fsyncs, and all of it is destaged into
#   stripes and flushed;
# - region C (24..56 MiB): fio writes 4 KiB random blocks without any
#   fsync in the background, and the capacity tier destages in the
#   background: much is in flight and not durable when the machine dies;
# - region B (16 MiB, 32 slots of 4 KiB): a loop writes a new random block
#   into slot i mod 32 with O_DIRECT and fsync, one at a time; before each
#   write it logs the block's sha256 on vde ("I i slot sum"), after the
#   fsync returned it logs "A i" (both O_DIRECT, completed before the loop
#   goes on);
# - after 48 acknowledged writes, and a random 0..1.9 s more of them, it
#   prints VTIER-KILL-NOW and goes on; the host kills QEMU with SIGKILL
#   within a moment, mid-workload. What the virtio disks completed stays on
#   them; everything the guest held in memory (vtier's state, caches) is
#   gone, as in a power cut.
#
# Boot 2 powers the volume on (WAL recovery) and asserts:
# - fio verify_only of region A passes (read from the stripes);
# - every slot of region B holds the last block logged as acknowledged for
#   it; only the slot of the one write that was in flight (logged "I" but
#   not "A") may hold that write's block instead;
# - the log on vde is whole (I0 A0 I1 A1 ..., at most one "I" unanswered)
#   and has at least 48 acknowledged writes;
# - region C reads without an I/O error (its content was never made
#   durable, so it is not checked);
# - after a clean power cycle region B is the same again.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

SCRATCH=/dev/vde
REC0=16          # first record sector on the scratch disk (the key is in 0..15)
SLOTS=32
B_BLK=4096       # region B's first 4 KiB block (16 MiB)
ACKED_MIN=48     # acknowledged writes before the kill is asked for
boot=${VTIER_BOOT:-}
case $boot in 1 | 2) ;; *) fail "boot '$boot': run.sh boots this test twice (vtier-boots: 2)" ;; esac

# The fio job of region A; the same in both boots.
a_job() {
	cat >/tmp/a.fio <<JOB
[global]
filename=$1
ioengine=libaio
direct=1
iodepth=16
verify=crc32c
verify_fatal=1
randrepeat=1

[region-a]
rw=randwrite
bs=4k
offset=0
size=8M
end_fsync=1
JOB
}

# run_a WHAT [fio options]: region A's job, fio's status and err=0 required.
run_a() {
	what=$1
	shift
	if ! fio "$@" /tmp/a.fio >/tmp/fio-a.out 2>&1; then
		cat /tmp/fio-a.out
		fail "region A, $what: fio failed"
	fi
	! grep -q 'verify:' /tmp/fio-a.out || fail "region A, $what: fio reported verify errors"
	grep -q 'err= 0' /tmp/fio-a.out || fail "region A, $what: fio did not end with err=0"
	echo "region A, $what: fio verify passed"
}

# record N TEXT: TEXT as 512-byte record N on the scratch disk, written
# with O_DIRECT (complete on the virtio disk when dd returns).
record() {
	printf '%-511s\n' "$2" >/tmp/rec
	dd if=/tmp/rec of=$SCRATCH bs=512 seek=$((REC0 + $1)) count=1 oflag=direct conv=notrunc 2>/dev/null ||
		fail "writing record $1 to $SCRATCH failed"
}

key_in() {
	echo "+ key"
	od -An -v -tx1 /tmp/key.bin | tr -d ' \n' >"$VT/crash/key" || fail "writing the key failed"
}

vtier_load
if [ "$boot" = 1 ]; then
	step "boot 1: format an encrypted volume, key on $SCRATCH"
	dd if=/dev/urandom of=/tmp/key.bin bs=64 count=1 2>/dev/null
	run dd if=/tmp/key.bin of=$SCRATCH bs=4096 conv=sync,notrunc oflag=direct
	run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd --encrypt --key-file /tmp/key.bin
	vtier_create crash /dev/vda /dev/vdb /dev/vdc /dev/vdd
	key_in
	disk=$(vtier_up crash)
	dev=/dev/$disk

	step "region A: 8 MiB with fio verify=crc32c and fsync, destaged, flushed"
	a_job "$dev"
	run_a "write and verify" --do_verify=1
	attr_write "$VT/crash/destage" 100000
	echo "destaged: $(cat "$VT/crash/destage")"
	moved=$(awk '{ print $3 }' "$VT/crash/destage")
	[ "$moved" -ge 2048 ] || fail "only $moved blocks of region A destaged"
	# fsync of the device: a flush, so the map with the stripes is durable.
	run dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync

	step "region C: unsynced writes and destaging in the background"
	fio --name=region-c --filename="$dev" --ioengine=libaio --direct=1 --iodepth=8 \
		--rw=randwrite --bs=4k --offset=24M --size=32M --time_based --runtime=600 \
		>/tmp/fio-c.out 2>&1 &
	(while :; do echo 4 >"$VT/crash/destage" || true; sleep 1; done) >/dev/null 2>&1 &

	step "region B: one fsynced 4 KiB write at a time, each logged on $SCRATCH"
	i=0
	while [ $i -lt 2000 ]; do
		slot=$((i % SLOTS))
		dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
		sum=$(sha256sum </tmp/blk | cut -d' ' -f1)
		record $((2 * i)) "I $i $slot $sum"
		dd if=/tmp/blk of="$dev" bs=4096 seek=$((B_BLK + slot)) count=1 oflag=direct conv=fsync,notrunc 2>/dev/null ||
			fail "write $i (slot $slot) failed"
		record $((2 * i + 1)) "A $i"
		i=$((i + 1))
		if [ $i = $ACKED_MIN ]; then
			# shellcheck disable=SC3028 # busybox ash has RANDOM
			delay=$((RANDOM % 20))
			delay="$((delay / 10)).$((delay % 10))"
			echo "$i writes acknowledged, asking the host to kill the machine in $delay s"
			grep -E '^(requests|destage|stripes):' "$VT/crash/status" || true
			# Again and again: a kernel line on the console could split one.
			(sleep "$delay"; while :; do echo VTIER-KILL-NOW; sleep 1; done) &
		fi
	done
	fail "still running after $i writes: the host did not kill the machine"
fi

step "boot 2: power on after the crash (WAL recovery)"
dd if=$SCRATCH bs=4096 count=1 iflag=direct 2>/dev/null | head -c 64 >/tmp/key.bin ||
	fail "cannot read the key from $SCRATCH"
vtier_create crash /dev/vda /dev/vdb /dev/vdc /dev/vdd
key_in
disk=$(vtier_up crash)
dev=/dev/$disk
dmesg | grep 'vtier: crash:' || true
grep -E '^(health|stripes|destage):' "$VT/crash/status"

step "region A: fio verify_only (destaged and flushed before the crash)"
a_job "$dev"
run_a "after the crash" --verify_only

step "region B: every acknowledged write is there"
dd if=$SCRATCH bs=512 skip=$REC0 count=8192 iflag=direct 2>/dev/null | tr -d '\000' >/tmp/records ||
	fail "cannot read the records from $SCRATCH"
# Per slot: the sum of its last acknowledged write, and of the write in
# flight when the machine died if that went to this slot ("-" for none).
# The log must be I0 A0 I1 A1 ... with at most a last "I" unanswered.
awk -v slots=$SLOTS '
	$1 == "I" && NF == 4 && $2 == n { pend = $2; slot = $3; sum = $4; next }
	$1 == "A" && NF == 2 && $2 == pend && pend == n { acked[slot] = sum; n++; pend = -1; next }
	NF > 0 { bad = bad " [" $0 "]" }
	END {
		if (bad != "") { print "BAD" bad; exit }
		print "ACKED " n, (pend >= 0 ? "in flight: write " pend " to slot " slot : "none in flight")
		for (s = 0; s < slots; s++)
			print s, (s in acked ? acked[s] : "none"), (pend >= 0 && slot == s ? sum : "-")
	}' pend=-1 /tmp/records >/tmp/expect
head -1 /tmp/expect
case $(head -1 /tmp/expect) in
BAD*) fail "the log of writes on $SCRATCH is not whole: $(head -c 200 /tmp/expect)" ;;
esac
acked=$(sed -n '1s/^ACKED \([0-9]*\).*/\1/p' /tmp/expect)
[ "$acked" -ge $ACKED_MIN ] || fail "only $acked acknowledged writes before the crash, expected $ACKED_MIN"

check_b() { # WHEN
	checked=0
	inflight=''
	while read -r slot want pending; do
		dd if="$dev" of=/tmp/got bs=4096 skip=$((B_BLK + slot)) count=1 iflag=direct 2>/dev/null ||
			fail "$1: reading slot $slot failed"
		got=$(sha256sum </tmp/got | cut -d' ' -f1)
		if [ "$got" = "$want" ]; then
			checked=$((checked + 1))
		elif [ "$pending" != - ] && [ "$got" = "$pending" ]; then
			inflight=" (slot $slot holds the write in flight at the crash)"
			checked=$((checked + 1))
		else
			fail "$1: slot $slot holds sha256 $got, acknowledged was $want"
		fi
	done <<EOF
$(sed 1d /tmp/expect)
EOF
	[ $checked = $SLOTS ] || fail "$1: $checked slots checked of $SLOTS"
	echo "$1: all $SLOTS slots hold their last acknowledged write$inflight"
}
check_b "after the crash"

step "region C reads without errors"
sha_range "$dev" $((24 << 20)) $((32 << 20)) >/dev/null
echo "region C: 32 MiB read"

step "clean power cycle, region B again"
vtier_down crash
disk=$(vtier_up crash)
dev=/dev/$disk
check_b "after a clean power cycle"
grep -E '^(health|stripes|destage):' "$VT/crash/status"

vtier_down crash
run rmdir "$VT/crash"
vtier_unload
