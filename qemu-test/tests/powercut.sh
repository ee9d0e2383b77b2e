#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 256M 64M 64M 64M 16M
# vtier-boots: 7
# vtier-boots-debug: 3
# vtier-timeout: 300
# vtier-needs: module
#
# Power cuts of the kernel path: the machine dies in the middle of writes,
# again and again, and each next boot's power=1 recovers the volume from
# its WAL. run.sh boots this test N times on the same disks (vtier-boots:
# 7 on the release kernel, 3 on the debug one, where a boot takes two
# minutes; `make soak` asks for hundreds) and kills QEMU with SIGKILL in all but
# the last: N-1 power cuts. vda is the performance device, vdb..vdd the
# capacity tier (2+1 stripes), vde a scratch disk that is no member: it
# carries the key, the expected state and the log of acknowledged writes
# from one boot to the next.
#
# Boot 1 formats an encrypted volume and writes region A (0..8 MiB, 2 on
# the debug kernel; fio verify=crc32c, fsynced, destaged into stripes and
# flushed). Every boot but the last then, on the live volume:
# - region C (24..56 MiB): fio writes 4 KiB random blocks without fsync
#   and the capacity tier destages in the background: much is in flight
#   and not durable when the machine dies;
# - region B (16 MiB, 32 slots of 4 KiB): a loop writes a new random block
#   into a random slot with O_DIRECT and fsync, one at a time; before each
#   write it logs "I boot i slot sum" on vde, after the fsync returned
#   "A boot i" (both O_DIRECT, complete before the loop goes on);
# - after some acknowledged writes and a random 0..2.9 s more of them, it
#   prints VTIER-KILL-NOW and goes on; the host kills QEMU at once. What
#   the virtio disks completed stays on them (cache=unsafe in QEMU only
#   loses what the host never wrote, and the host does not die); all the
#   guest held in memory is gone, as in a power cut.
#
# Every boot but the first first runs `vtierctl check` on the members as
# the cut left them (it must find them clean, replay the WAL in memory
# only and leave the performance device unchanged), then powers the
# volume on (WAL recovery; the module must replay as many transactions as
# the check did) and checks:
# - fio verify_only of region A passes (written before the first cut);
# - every slot of region B holds its last acknowledged write; only the
#   slot of the one write in flight at the cut (logged "I", no "A") may
#   hold that write instead; slots never written read as zeroes;
# - the log of the boot before is whole (I A I A ..., at most one "I"
#   unanswered) and has at least the acknowledged writes asked for;
# - region D (8..16 MiB; its first 2 on the debug kernel), never written,
#   reads as zeroes; region C (its first 4 MiB there) reads without an
#   I/O error (never made durable, so not checked further).
# The expected state of region B (a sum per slot) is then written to vde
# for the next boot. The module logs how many committed transactions it
# replayed from the WAL; at least half the cuts must have left some (else
# recovery went untested). The last boot also power cycles the volume
# cleanly (which must replay nothing), checks region B again and prints
# the totals:
#   power cuts: N, acknowledged writes checked: W, lost: 0
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

SCRATCH=/dev/vde
STATE0=16        # state records (sectors): "T cuts writes replays", then a sum per slot
REC0=64          # this boot's write log (sectors)
SLOTS=32
B_BLK=4096       # region B's first 4 KiB block (16 MiB)
# Acknowledged writes before the kill is asked for (fewer on the debug
# kernel, whose every write is slower).
ACKED_MIN=24
# Region A's size and how much of regions D and C each boot reads back
# (MiB): less on the debug kernel, where reads are several times slower.
A_MB=8 D_MB=8 C_MB=32
[ "${VTIER_FLAVOUR:-release}" = release ] || { ACKED_MIN=8 A_MB=2 D_MB=2 C_MB=4; }
boot=${VTIER_BOOT:-}
boots=${VTIER_BOOTS:-}
case $boot in '' | *[!0-9]*) fail "boot '$boot': run.sh boots this test (vtier-boots)" ;; esac
[ "$boots" -ge 2 ] || fail "$boots boots: a power cut needs at least two"

# The fio job of region A; the same in every boot.
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
size=${A_MB}M
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

# record SECTOR TEXT: TEXT as a 512-byte record on the scratch disk,
# written with O_DIRECT (complete on the virtio disk when dd returns).
record() {
	printf '%-511s\n' "$2" >/tmp/rec
	dd if=/tmp/rec of=$SCRATCH bs=512 seek="$1" count=1 oflag=direct conv=notrunc 2>/dev/null ||
		fail "writing record at sector $1 of $SCRATCH failed"
}

# records SECTOR COUNT FILE: COUNT records from SECTOR, NULs dropped.
records() {
	dd if=$SCRATCH bs=512 skip="$1" count="$2" iflag=direct 2>/dev/null | tr -d '\000' >"$3" ||
		fail "cannot read records from $SCRATCH"
}

key_in() {
	echo "+ key"
	od -An -v -tx1 /tmp/key.bin | tr -d ' \n' >"$VT/cut/key" || fail "writing the key failed"
}

# slot_sum SLOT: sha256 of region B's slot as the volume returns it.
slot_sum() {
	dd if="$dev" of=/tmp/got bs=4096 skip=$((B_BLK + $1)) count=1 iflag=direct 2>/dev/null ||
		fail "reading slot $1 failed"
	sha256sum </tmp/got | cut -d' ' -f1
}

# write_state CUTS WRITES REPLAYS: the expected sum of each slot
# (/tmp/state, a "slot sum" line each) and the totals, to the scratch disk.
write_state() {
	record $STATE0 "T $1 $2 $3"
	while read -r s sum; do
		record $((STATE0 + 1 + s)) "S $s $sum"
	done </tmp/state
}

vtier_load
if [ "$boot" = 1 ]; then
	step "boot 1 of $boots: format an encrypted volume, key on $SCRATCH"
	dd if=/dev/urandom of=/tmp/key.bin bs=64 count=1 2>/dev/null
	run dd if=/tmp/key.bin of=$SCRATCH bs=4096 conv=sync,notrunc oflag=direct
	run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd --encrypt --key-file /tmp/key.bin
	vtier_create cut /dev/vda /dev/vdb /dev/vdc /dev/vdd
	key_in
	disk=$(vtier_up cut)
	dev=/dev/$disk

	step "region A: $A_MB MiB with fio verify=crc32c and fsync, destaged, flushed"
	a_job "$dev"
	run_a "write and verify" --do_verify=1
	attr_write "$VT/cut/destage" 100000
	echo "destaged: $(cat "$VT/cut/destage")"
	moved=$(awk '{ print $3 }' "$VT/cut/destage")
	[ "$moved" -ge $((A_MB * 256)) ] || fail "only $moved blocks of region A destaged"
	run dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync

	zero=$(sha_zero 4096)
	s=0
	: >/tmp/state
	while [ $s -lt $SLOTS ]; do
		echo "$s $zero" >>/tmp/state
		s=$((s + 1))
	done
	write_state 0 0 0
	cuts=0
	total=0
	replays=0
else
	step "boot $boot of $boots: power on after power cut $((boot - 1)) (WAL recovery)"
	dd if=$SCRATCH bs=4096 count=1 iflag=direct 2>/dev/null | head -c 64 >/tmp/key.bin ||
		fail "cannot read the key from $SCRATCH"
	step "vtierctl check of the members as the cut left them (a dry run)"
	sum_before=$(dd if=/dev/vda bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
	if ! vtierctl check --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd \
		--key-file /tmp/key.bin --json >/tmp/check.json 2>&1; then
		cat /tmp/check.json
		fail "vtierctl check found errors after cut $((boot - 1))"
	fi
	grep -q '"clean": true' /tmp/check.json || fail "vtierctl check: no clean report"
	checked_replay=$(sed -n 's/.*"replayed_transactions": \([0-9]*\).*/\1/p' /tmp/check.json)
	grep -E '"(replayed_transactions|tree_nodes|mapped_blocks|blocks_read|stripes_scrubbed)"' /tmp/check.json |
		tr -d ' ,\n'
	echo
	[ "$(dd if=/dev/vda bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$sum_before" ] ||
		fail "vtierctl check wrote to the performance device"

	vtier_create cut /dev/vda /dev/vdb /dev/vdc /dev/vdd
	key_in
	disk=$(vtier_up cut)
	dev=/dev/$disk
	grep -E '^(health|stripes|destage):' "$VT/cut/status"
	# The module says how many committed transactions it found in the WAL
	# after the last checkpoint; a cut just after a checkpoint leaves none.
	replayed=$(dmesg | sed -n 's/.*cut: recovered from an unclean shutdown: \([0-9]*\) transactions replayed.*/\1/p' | tail -1)
	echo "WAL recovery: ${replayed:-0} transactions replayed"
	# The module and vtierctl's dry run recovered the same log.
	[ "${replayed:-0}" = "$checked_replay" ] ||
		fail "the module replayed ${replayed:-0} transactions, vtierctl check $checked_replay"

	step "region A: fio verify_only (written before the first cut)"
	a_job "$dev"
	run_a "after cut $((boot - 1))" --verify_only

	step "region B: every acknowledged write of boot $((boot - 1)) is there"
	records $STATE0 $((1 + SLOTS)) /tmp/staterec
	# The expected sums, updated by the previous boot's log: its writes in
	# order, "I" then "A"; the slot of a last unanswered "I" may hold the
	# expected sum or that write's. The log ends at the first record that
	# is not the next of that boot (older boots' records lie beyond).
	records $REC0 8000 /tmp/records
	awk -v slots=$SLOTS -v prev=$((boot - 1)) -v recfile=/tmp/records '
		FILENAME != recfile && $1 == "T" && NF == 4 { cuts = $2; total = $3; replays = $4; next }
		FILENAME != recfile && $1 == "S" && NF == 3 { want[$2] = $3; nstate++; next }
		FILENAME != recfile { bad = bad " [state: " $0 "]"; next }
		$1 == "I" && NF == 5 && $2 == prev && $3 == n && pend < 0 { pend = $3; slot = $4; sum = $5; next }
		$1 == "A" && NF == 3 && $2 == prev && $3 == pend { want[slot] = sum; n++; pend = -1; next }
		{ nextfile }
		END {
			if (bad != "" || nstate != slots) { print "BAD" bad " (" nstate " slot sums)"; exit }
			print "ACKED " n, cuts, total, replays, (pend >= 0 ? "in flight: write " pend " to slot " slot : "none in flight")
			for (s = 0; s < slots; s++)
				print s, want[s], (pend >= 0 && slot == s ? sum : "-")
		}' pend=-1 n=0 /tmp/staterec /tmp/records >/tmp/expect
	head -1 /tmp/expect
	case $(head -1 /tmp/expect) in
	BAD*) fail "the state or log on $SCRATCH is not whole: $(head -c 200 /tmp/expect)" ;;
	esac
	read -r _ acked cuts total replays _ </tmp/expect
	[ "$acked" -ge $ACKED_MIN ] || fail "only $acked acknowledged writes in boot $((boot - 1)), expected $ACKED_MIN"

	checked=0
	: >/tmp/state
	while read -r s want pending; do
		got=$(slot_sum "$s")
		if [ "$got" != "$want" ] && { [ "$pending" = - ] || [ "$got" != "$pending" ]; }; then
			fail "after cut $((boot - 1)): slot $s holds sha256 $got, its last acknowledged write was $want"
		fi
		[ "$got" = "$want" ] || echo "slot $s holds the write in flight at the cut"
		echo "$s $got" >>/tmp/state
		checked=$((checked + 1))
	done <<LIST
$(sed 1d /tmp/expect)
LIST
	[ $checked = $SLOTS ] || fail "$checked slots checked of $SLOTS"
	cuts=$((cuts + 1))
	total=$((total + acked))
	[ -z "$replayed" ] || replays=$((replays + 1))
	echo "cut $cuts: $acked acknowledged writes checked, all $SLOTS slots as expected"

	step "region D reads as zeroes, region C without errors"
	[ "$(sha_range "$dev" $((8 << 20)) $((D_MB << 20)))" = "$(sha_zero $((D_MB << 20)))" ] ||
		fail "region D (8 MiB + $D_MB MiB), never written, does not read as zeroes"
	sha_range "$dev" $((24 << 20)) $((C_MB << 20)) >/dev/null
	write_state $cuts $total "$replays"
fi

if [ "$boot" -lt "$boots" ]; then
	step "boot $boot: unsynced writes and background destage in region C"
	fio --name=region-c --filename="$dev" --ioengine=libaio --direct=1 --iodepth=8 \
		--rw=randwrite --bs=4k --offset=24M --size=32M --time_based --runtime=600 \
		--randseed="$boot" >/tmp/fio-c.out 2>&1 &
	(while :; do echo 4 >"$VT/cut/destage" || true; sleep 1; done) >/dev/null 2>&1 &

	step "boot $boot: fsynced 4 KiB writes into region B, each logged on $SCRATCH"
	# shellcheck disable=SC3028 # busybox ash has RANDOM
	delay=$((RANDOM % 30))
	delay="$((delay / 10)).$((delay % 10))"
	i=0
	while [ $i -lt 4000 ]; do
		# shellcheck disable=SC3028
		slot=$((RANDOM % SLOTS))
		dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
		sum=$(sha256sum </tmp/blk | cut -d' ' -f1)
		record $((REC0 + 2 * i)) "I $boot $i $slot $sum"
		dd if=/tmp/blk of="$dev" bs=4096 seek=$((B_BLK + slot)) count=1 oflag=direct conv=fsync,notrunc 2>/dev/null ||
			fail "write $i (slot $slot) failed"
		record $((REC0 + 2 * i + 1)) "A $boot $i"
		i=$((i + 1))
		if [ $i = $ACKED_MIN ]; then
			echo "$i writes acknowledged, asking the host to cut the power in $delay s"
			grep -E '^(requests|destage|stripes):' "$VT/cut/status" || true
			# Again and again: a kernel line on the console could split one.
			(sleep "$delay"; while :; do echo VTIER-KILL-NOW; sleep 1; done) &
		fi
	done
	fail "still running after $i writes: the host did not cut the power"
fi

step "last boot: a clean power cycle, region B again"
before=$(dmesg | grep -c 'cut: recovered from an unclean shutdown' || true)
vtier_down cut
disk=$(vtier_up cut)
[ "$(dmesg | grep -c 'cut: recovered from an unclean shutdown' || true)" = "$before" ] ||
	fail "power=0 then power=1 found transactions to replay: power=0 did not checkpoint"

dev=/dev/$disk
while read -r s want; do
	[ "$(slot_sum "$s")" = "$want" ] || fail "after a clean power cycle: slot $s changed"
done </tmp/state
grep -E '^(health|stripes|destage):' "$VT/cut/status"
# Cuts land among fsynced writes, each a committed transaction: most
# boots must have found some in the WAL, or recovery was never tested.
[ $((replays * 2)) -ge "$cuts" ] || fail "only $replays of $cuts boots replayed the WAL"
vtier_down cut
run rmdir "$VT/cut"
vtier_unload
echo "VTIER-FIGURE: power cuts: $cuts, acknowledged writes checked: $total, lost: 0 (WAL replayed after $replays)"
