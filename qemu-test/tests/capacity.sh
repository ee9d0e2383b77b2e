#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M 64M 64M 64M 64M
# vtier-timeout: 400
# vtier-needs: module
# vtier-release-only: the CI budget: 130 s on the debug kernel, 30 s on the release one; reads and writes through the capacity tier's stripes run under KASAN in fio-verify and powercut
#
# The capacity tier: erasure-coded stripes on three capacity devices (2+1,
# vtierctl format's default for three), reached through /dev/vtier0
# in the kernel. Asserts:
# - `status` shows the geometry and every member ok;
# - data destaged (`destage`) into stripes reads back unchanged, and the
#   cipher is not called on the move (the cipher counter does not move);
# - with one capacity device failing every I/O (fail_make_request), reads
#   reconstruct and return the same data, writes and destage go on, and
#   `status` shows the member failed and the degraded reads;
# - `replace` puts a spare disk in its place and `rebuild`, paced in steps,
#   restores it (status: ok again, capacity_devices names the spare); a
#   scrub of every stripe then finds nothing wrong; and with another
#   original member failing, every read is still right (the rebuilt chunks
#   are used);
# - with two of three failing (more than m), reading destaged data fails
#   with an I/O error instead of returning wrong data, writes are refused
#   (EROFS, logged; the writer sees EIO), `status` says read-only and the
#   disk is marked read-only.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

FI=/sys/kernel/debug/fail_make_request

fail_disk() { # DEV: every bio to DEV fails from now on
	[ -d $FI ] || fail "no $FI (CONFIG_FAIL_MAKE_REQUEST, debugfs)"
	echo 100 >$FI/probability
	echo -1 >$FI/times
	echo 0 >$FI/verbose
	echo 1 >"/sys/block/$1/make-it-fail"
}

status() { cat "$VT/cap/status"; }

field() { # PATTERN: the first status line matching PATTERN
	status | grep -m1 "$1" || true
}

vtier_load
dd if=/dev/urandom of=/tmp/key.bin bs=64 count=1 2>/dev/null
run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd --encrypt --key-file /tmp/key.bin
vtier_create cap /dev/vda /dev/vdb /dev/vdc /dev/vdd
run_sh "od -An -v -tx1 /tmp/key.bin | tr -d ' \n' > $VT/cap/key"
disk=$(vtier_up cap)
dev=/dev/$disk
status
field '^geometry: 2+1 on 3 members' | grep -q . || fail "status shows no 2+1 geometry on 3 members"
[ "$(cat /sys/block/vtier0/ro)" = 0 ] || fail "a healthy volume's disk is read-only"
# The stripes are coded by the SIMD kernel chosen at load (the guest CPU has
# AVX2), the one the self-test line names.
chosen=$(dmesg | sed -n 's/.*GF kernel self-test passed.*; using \([a-z0-9-]*\).*/\1/p' | tail -1)
[ -n "$chosen" ] || fail "no GF kernel was chosen at load"
field '^geometry: ' | grep -q "coded by $chosen\$" || fail "stripes are not coded by $chosen: $(field '^geometry: ')"
[ "$(status | grep -c '^member [0-9]: ok')" = 3 ] || fail "not every member ok"

step "8 MiB written, then destaged"
run dd if=/dev/urandom of=/tmp/pat bs=1M count=8
run dd if=/tmp/pat of="$dev" bs=1M oflag=direct
run blockdev --flushbufs "$dev"
want=$(sha256sum </tmp/pat | cut -d' ' -f1)
cipher_before=$(field '^cipher:' | awk '{ print $2 }')
attr_write "$VT/cap/destage" 100000
moved=$(awk '{ print $3 }' "$VT/cap/destage")
echo "destaged: $(cat "$VT/cap/destage")"
[ "$moved" -ge 2048 ] || fail "only $moved blocks destaged of 2048 written"
cipher_after=$(field '^cipher:' | awk '{ print $2 }')
[ "$cipher_before" = "$cipher_after" ] || fail "destage called the cipher ($cipher_before -> $cipher_after blocks)"
[ "$(sha_range "$dev" 0 8388608)" = "$want" ] || fail "destaged data reads back wrong"
field '^destage:'

step "overwritten stripes are freed once a flush makes the map durable"
used_before=$(field '^stripes:' | awk '{ print $2 }')
# The first 4 MiB again (the same bytes, so the checks below hold): every
# stripe that held only them loses its last live block.
run dd if=/tmp/pat of="$dev" bs=1M count=4 oflag=direct conv=fsync
freed=$(field '^destage:' | sed -n 's/.*stripes freed \([0-9]*\).*/\1/p')
field '^destage:'
field '^stripes:'
[ "${freed:-0}" -gt 0 ] || fail "no stripe freed after overwriting destaged data and a flush"
field '^destage:' | grep -q '(errors 0)$' || fail "stripe frees counted errors: $(field '^destage:')"
# Free in memory now, durable (and counted free) at the capacity tier's
# next commit, which the next destage makes.
attr_write "$VT/cap/destage" 1
field '^stripes:'
used_after=$(field '^stripes:' | awk '{ print $2 }')
[ "$used_after" -lt "$used_before" ] || fail "stripes in use did not drop ($used_before -> $used_after)"
[ "$(sha_range "$dev" 0 8388608)" = "$want" ] || fail "data reads back wrong after the overwrite"

step "one capacity device fails: reads reconstruct"
fail_disk vdc
[ "$(sha_range "$dev" 0 8388608)" = "$want" ] || fail "degraded reads returned wrong data"
status
field '^health: degraded' | grep -q . || fail "status does not say degraded"
status | grep -q '^member 1: failed' || fail "status does not show member 1 (vdc) failed"
degraded=$(field '^io:' | sed -n 's/.* degraded \([0-9]*\).*/\1/p')
[ "${degraded:-0}" -gt 0 ] || fail "no degraded reads counted"
# Writes and destage go on with one member lost.
run dd if=/dev/urandom of=/tmp/pat2 bs=1M count=1
run dd if=/tmp/pat2 of="$dev" bs=1M seek=9 oflag=direct
attr_write "$VT/cap/destage" 100
[ "$(sha_range "$dev" 9437184 1048576)" = "$(sha256sum </tmp/pat2 | cut -d' ' -f1)" ] ||
	fail "data written and destaged while degraded reads back wrong"

step "replace vdc by the spare vde, rebuild in steps of 64 stripes"
echo 0 >/sys/block/vdc/make-it-fail
attr_write "$VT/cap/replace" "1 /dev/vde"
cat "$VT/cap/rebuild"
case "$(cat "$VT/cap/rebuild")" in "member 1 "*) ;; *) fail "no rebuild of member 1 running: $(cat "$VT/cap/rebuild")" ;; esac
steps=0
while [ "$(cat "$VT/cap/rebuild")" != none ]; do
	echo 64 >"$VT/cap/rebuild" || fail "rebuild step failed"
	steps=$((steps + 1))
	[ $steps -lt 1000 ] || fail "rebuild does not finish"
done
echo "rebuild done in $steps steps"
status | grep -E '^(member|rebuil)'
[ "$(status | grep -c '^member [0-9]: ok')" = 3 ] || fail "not every member ok after the rebuild"
grep -q /dev/vde "$VT/cap/capacity_devices" || fail "capacity_devices does not name the spare"
field '^rebuilt:'

step "scrub every stripe"
attr_write "$VT/cap/scrub" 1000000
field '^scrub:'
field '^scrub: checked [1-9]' | grep -q . || fail "scrub checked no stripe"
field ' unrepairable 0$' | grep -q . || fail "scrub found unrepairable stripes"
field ' checksum_errors 0 ' | grep -q . || fail "scrub found bad chunks after the rebuild"

step "vdb fails: the rebuilt chunks on vde stand in"
fail_disk vdb
[ "$(sha_range "$dev" 0 8388608)" = "$want" ] || fail "reads with vdb failed after the rebuild returned wrong data"

step "a second capacity device fails: errors, never wrong data"
fail_disk vdd
# Every MiB either reads back right or fails; the store counts read
# errors per member and takes one out of service after a few, so read
# until the second member is out (at most three passes).
errors=0
pass=0
while [ $pass -lt 3 ] && ! field '^health: read-only' | grep -q .; do
	i=0
	while [ $i -lt 8 ]; do
		if dd if="$dev" of=/tmp/out bs=1M skip=$i count=1 iflag=direct 2>/dev/null; then
			dd if=/tmp/pat of=/tmp/want bs=1M skip=$i count=1 2>/dev/null
			cmp -s /tmp/out /tmp/want || fail "MiB $i read back wrong data with 2 of 3 members failing"
		else
			errors=$((errors + 1))
		fi
		i=$((i + 1))
	done
	pass=$((pass + 1))
done
echo "reads refused: $errors in $pass passes"
[ $errors -gt 0 ] || fail "every read succeeded with 2 of 3 members failing"
status
field '^health: read-only' | grep -q . ||
	fail "status does not say read-only: $(status | grep -E '^(health|member|io)' | tr '\n' ';')"
if dd if=/tmp/pat2 of="$dev" bs=4096 count=1 seek=4096 oflag=direct 2>/tmp/dd.err; then
	fail "a write with more than m members lost succeeded"
fi
# The block layer has no status for EROFS: the writer sees an I/O error,
# the kernel log says why.
dmesg | grep 'vtier: cap: .*read-only, writes refused' >/dev/null || fail "the write was not refused as read-only (EROFS)"
# And the disk itself is read-only now, for mount and blockdev.
[ "$(cat /sys/block/vtier0/ro)" = 1 ] || fail "the disk is not marked read-only: ro=$(cat /sys/block/vtier0/ro)"
blockdev --getro "$dev" | grep -qx 1 || fail "blockdev --getro does not say read-only"
dmesg | grep 'vtier: cap:' | tail -5

step "power off"
echo 0 >/sys/block/vdb/make-it-fail
echo 0 >/sys/block/vdd/make-it-fail
vtier_down cap
run rmdir "$VT/cap"
vtier_unload
