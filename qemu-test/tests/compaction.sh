#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 256M 40M 40M 40M
# vtier-timeout: 1200
# vtier-needs: module
# vtier-release-only: its psync fio, dd and sha256 passes took 16 minutes under KASAN; compaction itself is engine code, cut at every write by the userspace crash harnesses
#
# Random overwrites of destaged data leave stripes partly live; without
# compaction they would fill the capacity tier. An encrypted volume with a
# 2+1 tier of 16 KiB chunks (2045 stripes of 32 KiB, 64 MiB of data; the
# device exports all but one stripe in eight of it) gets 32 MiB written
# and destaged, then three rounds of 16 MiB of 4 KiB random overwrites
# over the same 32 MiB, each destaged: 80 MiB in all, more than the tier
# holds. Asserts that every round destages without an error and reads
# back what was written, that the module compacted stripes to make room
# (status `compaction:`), that no stripe free failed, and that everything
# reads back after a power cycle.
#
# What was written is known without the device: the same data goes to a
# model file in /tmp first (the fill from /dev/urandom; each round's fio
# job, deterministic with psync, randrepeat=0 and its own randseed, run
# once on the model and once on the device), and the device must read
# back the model's sha256.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

mb=32
bytes=$((mb << 20))

vtier_load
dd if=/dev/urandom of=/tmp/key.bin bs=64 count=1 2>/dev/null
run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd --chunk-kib 16 \
	--encrypt --key-file /tmp/key.bin
vtier_create cmp /dev/vda /dev/vdb /dev/vdc /dev/vdd
run_sh "od -An -v -tx1 /tmp/key.bin | tr -d ' \n' > $VT/cmp/key"
disk=$(vtier_up cmp)
dev=/dev/$disk
[ "$(bdev_size "$dev")" -ge $bytes ] || fail "$dev is smaller than $mb MiB"
grep -m1 '^geometry:' "$VT/cmp/status"

destage_all() { # WHAT
	attr_write "$VT/cmp/destage" 1000000
	echo "$1: destaged $(cat "$VT/cmp/destage")"
	grep -E '^(destage|compaction|stripes):' "$VT/cmp/status"
	grep -m1 '^destage:' "$VT/cmp/status" | grep -q '(errors 0)$' ||
		fail "$1: stripe frees counted errors"
}

# over ROUND FILE [fio options]: round ROUND's 4 KiB random overwrites of
# the first $mb MiB of FILE; the same offsets and bytes for every FILE.
over() {
	r=$1 f=$2
	shift 2
	fio --name="over$r" --filename="$f" --ioengine=psync --rw=randwrite --bs=4k \
		--size=${mb}M --io_size=16M --randrepeat=0 --randseed="$r" --refill_buffers=1 \
		"$@" >/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "fio round $r on $f"; }
}

step "$mb MiB written in 1 MiB writes, then destaged"
run dd if=/dev/urandom of=/tmp/model bs=1M count=$mb
run dd if=/tmp/model of="$dev" bs=1M oflag=direct conv=notrunc
want=$(sha256sum </tmp/model | cut -d' ' -f1)
destage_all fill
[ "$(sha_range "$dev" 0 "$bytes")" = "$want" ] || fail "fill: the device does not hold what was written"

for round in 1 2 3; do
	step "round $round: 16 MiB of 4 KiB random overwrites, then destaged"
	prev=$want
	over $round /tmp/model
	want=$(sha256sum </tmp/model | cut -d' ' -f1)
	[ "$want" != "$prev" ] || fail "round $round changed nothing in the model"
	over $round "$dev" --direct=1
	destage_all "round $round"
	[ "$(sha_range "$dev" 0 "$bytes")" = "$want" ] || fail "round $round: the device does not hold what was written"
done

compacted=$(awk '/^compaction:/ { print $3 }' "$VT/cmp/status")
[ "${compacted:-0}" -gt 0 ] || fail "no stripe was compacted"
grep -m1 '^compaction:' "$VT/cmp/status" | grep -q '(errors 0)$' || fail "a compaction failed"
echo "compacted stripes: $compacted"

step "power off and on, then read everything back"
vtier_down cmp
disk=$(vtier_up cmp)
dev=/dev/$disk
[ "$(sha_range "$dev" 0 "$bytes")" = "$want" ] || fail "data differs after the power cycle"
dmesg | grep 'vtier: cmp:' | tail -4 || true

step "power off"
vtier_down cmp
run rmdir "$VT/cmp"
vtier_unload
