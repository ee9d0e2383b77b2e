#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 256M 40M 40M 40M
# vtier-timeout: 1200
# vtier-needs: module
#
# Random overwrites of destaged data leave stripes partly live; on a
# capacity tier smaller than the device they would fill it. An encrypted
# volume with a 2+1 tier of 16 KiB chunks (2045 stripes, 64 MiB of data)
# gets 48 MiB written and destaged, then three rounds of 24 MiB of 4 KiB
# random overwrites over the same 48 MiB, each destaged: 120 MiB in all.
# Asserts that every round destages without an error and reads back what
# was written, that the module compacted stripes to make room (status
# `compaction:`), that no stripe free failed, and that everything reads
# back after a power cycle.
set -eu
# shellcheck source=../guest/lib.sh
. /usr/lib/vtier/lib.sh

mb=48
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

step "$mb MiB written in 1 MiB writes, then destaged"
fio --name=fill --filename="$dev" --ioengine=libaio --direct=1 --iodepth=16 \
	--rw=write --bs=1M --size=${mb}M >/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "fio fill"; }
want=$(sha_range "$dev" 0 "$bytes")
destage_all fill
[ "$(sha_range "$dev" 0 "$bytes")" = "$want" ] || fail "fill: data differs after the destage"

for round in 1 2 3; do
	step "round $round: 24 MiB of 4 KiB random overwrites, then destaged"
	fio --name=over$round --filename="$dev" --ioengine=libaio --direct=1 --iodepth=16 \
		--rw=randwrite --bs=4k --size=${mb}M --io_size=24M --randseed=$round \
		>/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "fio round $round"; }
	want=$(sha_range "$dev" 0 "$bytes")
	destage_all "round $round"
	[ "$(sha_range "$dev" 0 "$bytes")" = "$want" ] || fail "round $round: data differs after the destage"
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
dmesg | grep 'vtier: cmp:' | tail -4

step "power off"
vtier_down cmp
run rmdir "$VT/cmp"
vtier_unload
