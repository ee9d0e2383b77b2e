#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 16M 8M 8M 8M 48M 24M 24M 24M 16M 8M 8M 8M
# vtier-timeout: 300
# vtier-needs: module
# vtier-release-only: not yet measured on the debug kernel (release: 61–89 s); it joins the debug suite once its time there fits the CI budget
#
# Crash consistency under the members, with dm-log-writes: every write
# each member completes is recorded, in the order it became durable (a
# write once a flush after it completed, a FUA write at once), and the
# members are then rebuilt as they stood at chosen moments, from zeroes,
# by `vtierctl replay-log`.
#
# vda..vdd are the members' disks (performance, then three capacity
# disks: 2+1 stripes), vde..vdh their logs, vdi..vdl the replay targets
# (as large as the members). Each member is used through a log-writes
# device (/dev/mapper/lwN) from before `vtierctl format` on, so its log
# starts from zeroes.
#
# The workload on the encrypted volume: WRITES fsynced writes of 32 KiB of
# random data into random slots of a 1 MiB region, destaging into
# stripes every few writes in the first half, in the background (from
# 1 % in use on) in the second. After each acknowledged write the data
# goes into an image of what the region must hold, and a mark p-N is
# sent to every log at one moment: the four
# log-writes devices are suspended (their requests in flight complete,
# new ones wait), marked and resumed, so the marks cut the volume's I/O at
# one point. A last mark follows a clean power=0.
#
# Replayed to a mark, each member holds what it had flushed by then and
# nothing of what it had not: a power cut there with every unflushed
# write lost. At every mark (vtierctl replay-log --each-mark, which
# rebuilds the targets from zeroes each time) the targets must pass
# `vtierctl check`, power on (WAL recovery; the module must replay as many
# transactions as the check did), and read the region back exactly as the
# image was when the mark was placed, and zeroes beyond it. Finally the
# whole logs replayed must give back the members' disks byte for byte
# (the replay itself checked against what the disks received). It ends
# with
#   replay points: N, acknowledged writes checked: W, lost: 0
# where W counts, over all points, the acknowledged writes before the
# point (each one there, or overwritten by a later acknowledged write).
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

MEMBERS="/dev/vda /dev/vdb /dev/vdc /dev/vdd"
LOGS="/dev/vde /dev/vdf /dev/vdg /dev/vdh"
TARGETS="/dev/vdi /dev/vdj /dev/vdk /dev/vdl"
SLOT=32768
SLOTS=32
REGION=$((SLOT * SLOTS))
# Fewer writes, so fewer replay points, on the debug kernel, whose every
# power cycle is several times slower.
# On request, the first half destages after every DESTAGE_EVERY writes.
# The release kernel's 12 writes of the second half fill 1 % of the
# performance tier and destage in the background (4 stripes measured);
# the debug kernel's 3 may not, so there it is not required.
WRITES=24 DESTAGE_EVERY=4
[ "${VTIER_FLAVOUR:-release}" = release ] || WRITES=6 DESTAGE_EVERY=2
W=/tmp/lw
export DM_DISABLE_UDEV=1

key_in() {
	read -r hex <$W/key.hex
	echo "$hex" >"$VT/$1/key" || fail "writing the key failed"
}

# now VAR: hundredths of a second since boot into VAR, without a process.
now() {
	read -r _up _ </proc/uptime
	eval "$1=\${_up%.*}\${_up#*.}"
}

# The region and the MiB after it (never written) as DEV returns them:
# their MD5, in one O_DIRECT read (a checksum against accidents, which
# costs less than SHA-256 under TCG).
region_sum() {
	dd if="$1" bs=1M count=2 iflag=direct 2>/dev/null | md5sum
}

# One replay point, run by `vtierctl replay-log --exec` with the targets
# as the logs hold them at mark $VTIER_REPLAY_MARK.
point() {
	mark=${VTIER_REPLAY_MARK:?}
	now t0
	want='' acked='' replay_expected=''
	while read -r name sum n rep; do
		[ "$name" != "$mark" ] || { want=$sum acked=$n replay_expected=$rep; }
	done <$W/marks
	[ -n "$want" ] || fail "point $mark: no such mark was placed"
	# shellcheck disable=SC2086 # word lists
	set -- $TARGETS
	if ! vtierctl check --perf "$1" --capacity "$2" "$3" "$4" --key-file $W/key.bin --json \
		>$W/check.json 2>&1; then
		cat $W/check.json
		fail "point $mark: vtierctl check of the replayed members found errors"
	fi
	clean='' checked=''
	while read -r k v; do
		case $k in
		'"clean":') clean=${v%,} ;;
		'"replayed_transactions":') checked=${v%,} ;;
		esac
	done <$W/check.json
	[ "$clean" = true ] || fail "point $mark: vtierctl check: no clean report"
	[ "$replay_expected" = any ] || [ "$checked" = "$replay_expected" ] ||
		fail "point $mark: vtierctl check replayed $checked transactions, expected $replay_expected"
	now t1
	mkdir "$VT/r" || fail "mkdir $VT/r"
	echo "$1" >"$VT/r/perf_device"
	echo "$2 $3 $4" >"$VT/r/capacity_devices"
	key_in r
	dmesg -c >/dev/null
	echo 1 >"$VT/r/power" || fail "point $mark: power=1 failed on the replayed members"
	disk=$(cat "$VT/r/disk")
	n=0
	while [ ! -b "/dev/$disk" ]; do
		n=$((n + 1))
		[ $n -lt 50 ] || fail "point $mark: no /dev/$disk after power=1"
		sleep 0.1
	done
	dmesg >$W/kmsg
	replayed=0
	while read -r line; do
		case $line in
		*" r: recovered from an unclean shutdown: "*)
			replayed=${line#* r: recovered from an unclean shutdown: }
			replayed=${replayed%% *}
			;;
		esac
	done <$W/kmsg
	[ "$replayed" = "$checked" ] ||
		fail "point $mark: the module replayed $replayed transactions, vtierctl check $checked"
	now t2
	got=$(region_sum "/dev/$disk") || fail "point $mark: reading the region failed"
	if [ "${got%% *}" != "$want" ]; then
		dd if="/dev/$disk" of=$W/got bs=1M count=2 iflag=direct 2>/dev/null
		bad=$(cmp -l $W/got "$W/exp-$mark.img" | awk -v s=$SLOT '{ print int(($1 - 1) / s) }' | uniq | head -8 | tr '\n' ' ')
		fail "point $mark ($acked acknowledged writes): slots $bad differ from the acknowledged data (slot $SLOTS on: the zeroes after the region)"
	fi
	now t3
	echo 0 >"$VT/r/power" || fail "point $mark: power=0 failed"
	rmdir "$VT/r" || fail "rmdir $VT/r"
	now t4
	echo "$acked" >>$W/checked
	# shellcheck disable=SC2154 # t0..t4 are set by now
	echo "point $mark: clean, $checked transactions replayed, region as acknowledged ($acked writes);" \
		"check $((t1 - t0))0 ms, power=1 $((t2 - t1))0 ms, read $((t3 - t2))0 ms, power=0 $((t4 - t3))0 ms"
}

if [ "${1:-}" = point ]; then
	point
	exit 0
fi

mkdir -p $W
[ -f /dm/load-order ] || fail "no /dm/load-order (dm modules missing from the initramfs)"
while read -r mod; do
	run insmod "/dm/$mod"
done </dm/load-order

step "dm-log-writes under each member"
i=0
# shellcheck disable=SC2086 # word lists
set -- $LOGS
for m in $MEMBERS; do
	echo "0 $(blockdev --getsz "$m") log-writes $m $1" | dmsetup create --noudevsync "lw$i" ||
		fail "dmsetup create lw$i ($m, log $1) failed"
	[ -b "/dev/mapper/lw$i" ] || fail "no /dev/mapper/lw$i"
	shift
	i=$((i + 1))
done
dmsetup table | sort
LW="/dev/mapper/lw0 /dev/mapper/lw1 /dev/mapper/lw2 /dev/mapper/lw3"
NAMES="lw0 lw1 lw2 lw3"

# mark NAME: the same mark in every log at one moment of the volume's I/O.
mark() {
	# shellcheck disable=SC2086 # word lists
	dmsetup suspend --nolockfs $NAMES || fail "dmsetup suspend failed"
	for n in $NAMES; do
		dmsetup message "$n" 0 mark "$1" || fail "mark $1 on $n failed"
	done
	# shellcheck disable=SC2086
	dmsetup resume $NAMES || fail "dmsetup resume failed"
}

# placed NAME ACKED REPLAYS: the mark's expected region, the MiB of
# zeroes after it included (its image kept for a diagnosis, and its sum).
placed() {
	cp $W/expect.img "$W/exp-$1.img"
	sum=$(md5sum <$W/expect.img)
	echo "$1 ${sum%% *} $2 $3" >>$W/marks
}

step "an encrypted volume with 2+1 stripes on the log-writes devices"
vtier_load
dd if=/dev/urandom of=$W/key.bin bs=64 count=1 2>/dev/null
# As one line of hex (read back with `read`).
{ od -An -v -tx1 $W/key.bin | tr -d ' \n'; echo; } >$W/key.hex
# shellcheck disable=SC2086
set -- $LW
run vtierctl format --perf "$1" --capacity "$2" "$3" "$4" --encrypt --key-file $W/key.bin
vtier_create lw "$1" "$2" "$3" "$4"
key_in lw
disk=$(vtier_up lw)
dev=/dev/$disk
# The first half destages on request only, the second in the background.
attr_write "$VT/lw/destage_watermarks" "0 0"
# The expected region and the MiB after it; the data of every write.
head -c $((REGION + (1 << 20))) /dev/zero >$W/expect.img
dd if=/dev/urandom of=$W/data bs=$SLOT count="$WRITES" 2>/dev/null

step "$WRITES fsynced writes of 32 KiB, destaging, a mark after each"
now w0
i=1
while [ $i -le "$WRITES" ]; do
	# shellcheck disable=SC3028 # busybox ash has RANDOM
	slot=$((RANDOM % SLOTS))
	dd if=$W/data of="$dev" bs=$SLOT skip=$((i - 1)) seek=$slot count=1 oflag=direct conv=fsync,notrunc 2>/dev/null ||
		fail "write $i (slot $slot) failed"
	# Acknowledged: it is in the expected region from now on.
	dd if=$W/data of=$W/expect.img bs=$SLOT skip=$((i - 1)) seek=$slot count=1 conv=notrunc 2>/dev/null
	if [ $((i % DESTAGE_EVERY)) = 0 ] && [ $((2 * i)) -le "$WRITES" ]; then
		echo 2 >"$VT/lw/destage" || fail "destage after write $i failed"
	fi
	if [ $((2 * i)) = "$WRITES" ]; then
		# From 1 % in use on, as long as there is data to move: a
		# stripe step after every write, racing the next one and the mark.
		echo "1 0" >"$VT/lw/destage_watermarks" || fail "destage_watermarks 1 0 refused"
	fi
	mark "p-$i"
	placed "p-$i" $i any
	i=$((i + 1))
done
now w1
# shellcheck disable=SC2154 # w0 and w1 are set by now
echo "$WRITES writes and marks in $((w1 - w0))0 ms"
grep -E '^(destage|stripes|requests|performance tier|compaction):' "$VT/lw/status" || true
moved=$(awk '{ print $3 }' "$VT/lw/destage")
echo "destaged: $(cat "$VT/lw/destage")"
[ "$moved" -gt 0 ] || fail "nothing was destaged into stripes"
background=$(sed -n 's/^performance tier:.*background: \([0-9]*\) stripes moved.*/\1/p' "$VT/lw/status")
[ "${VTIER_FLAVOUR:-release}" != release ] || [ "${background:-0}" -gt 0 ] ||
	fail "no stripe was destaged in the background"

step "clean power=0, a last mark, the log-writes devices removed"
vtier_down lw
run rmdir "$VT/lw"
mark p-off
placed p-off "$WRITES" 0
for n in $NAMES; do
	echo "$n: $(dmsetup status "$n")"
done
# shellcheck disable=SC2086
run dmsetup remove --noudevsync $NAMES
marks=$(wc -l <$W/marks)

step "replay all logs to each of the $marks marks: check, power on, read back"
: >$W/checked
args=''
# shellcheck disable=SC2086
set -- $TARGETS
for l in $LOGS; do
	args="$args --log $l --target $1"
	shift
done
# shellcheck disable=SC2086
vtierctl replay-log $args --each-mark p- --exec "sh /tests/logwrites.sh point" 2>&1 | tee $W/replay.out ||
	fail "$(cat /tmp/vtier-fail-reason 2>/dev/null || tail -1 $W/replay.out)"
points=$(sed -n 's/^replay points: //p' $W/replay.out)
[ "$points" = "$marks" ] || fail "replay-log replayed $points points, $marks marks were placed"
[ "$(wc -l <$W/checked)" = "$marks" ] || fail "$(wc -l <$W/checked) points checked of $marks"
total=$(awk '{ s += $1 } END { print s }' $W/checked)

step "the whole logs replayed give back the members' disks"
# shellcheck disable=SC2086
run vtierctl replay-log $args
# shellcheck disable=SC2086
set -- $TARGETS
for m in $MEMBERS; do
	a=$(md5sum <"$m") || fail "reading $m failed"
	b=$(md5sum <"$1") || fail "reading $1 failed"
	[ "$a" = "$b" ] || fail "the replayed log of $m differs from $m"
	shift
done
echo "all four members equal their replayed logs"
vtier_unload
echo "VTIER-FIGURE: replay points: $points, acknowledged writes checked: $total, lost: 0"
