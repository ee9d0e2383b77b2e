#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M 32M 32M 32M 64M
# vtier-timeout: 240
# vtier-needs: module
# vtier-release-only: the CI budget: userspace driving configfs, whose writes and the bring-up and teardown behind them run under KASAN in smoke, busy and reload
#
# `vtierctl assemble` and `vtierctl stop` against the module: volume a is
# encrypted, vda + vdb vdc vdd (2+1 stripes); volume b is vde alone,
# without encryption. Asserts:
# - `assemble --scan` with members of both volumes present refuses and
#   names both, and creates nothing in configfs; with --uuid it brings a
#   up (key file checked) as /dev/vtierN;
# - data written through it (sha256 taken from the file it was written
#   from) reads back after `stop` and an `assemble` that names the members
#   in another order (they are placed by their superblocks' device index);
# - a wrong key, no key, a missing member and an existing name are refused
#   without leaving a configfs directory behind;
# - a member held by a running volume: the kernel's EBUSY is reported and
#   the directory removed again;
# - b comes up by name while a is up; `stop` takes both down and removes
#   their directories; `stop` of a volume that is not there fails;
# - a volume table (NAME UUID KEY): `assemble --all` brings up both (a's
#   data intact), again says both are assembled already, `stop --all`
#   takes both down, `assemble b` finds b's members by the table's UUID,
#   and a name not in the table is refused.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

MiB=1048576

# The volumes configfs holds (its directories; the subsystem's own
# attributes, such as features, are files).
volumes() {
	for d in "$VT"/*; do
		[ ! -d "$d" ] || echo "${d##*/}"
	done
}

# refused WANT CMD...: CMD fails, its message contains WANT, and configfs
# holds no volume afterwards beyond those listed in $UP.
refused() {
	expect=$1
	shift
	echo "+ $*    # expect: $expect"
	if out=$("$@" 2>&1); then
		fail "$* succeeded: $out"
	fi
	echo "$out"
	case $out in
	*"$expect"*) ;;
	*) fail "$*: no '$expect' in: $out" ;;
	esac
	left=$(volumes)
	[ "$left" = "$UP" ] || fail "$*: configfs holds '$left' afterwards (expected '$UP')"
}

vtier_load
dd if=/dev/urandom of=/tmp/key.bin bs=64 count=1 2>/dev/null
dd if=/dev/urandom of=/tmp/wrong.bin bs=64 count=1 2>/dev/null
chmod 600 /tmp/key.bin /tmp/wrong.bin
run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd --encrypt --key-file /tmp/key.bin
run vtierctl format --perf /dev/vde
uuid_a=$(vtierctl probe --export /dev/vdc | sed -n 's/^ID_FS_UUID=//p')
uuid_b=$(vtierctl probe --export /dev/vde | sed -n 's/^ID_FS_UUID=//p')
{ [ -n "$uuid_a" ] && [ -n "$uuid_b" ]; } || fail "probe gave no volume UUID"
UP=''

step "--scan finds both volumes: it must be told which"
refused "members of 2 volumes found" vtierctl assemble --scan a --key-file /tmp/key.bin
case $out in *"$uuid_a"*"$uuid_b"* | *"$uuid_b"*"$uuid_a"*) ;; *) fail "not both volumes named: $out" ;; esac

step "--scan --uuid: volume a up"
out=$(vtierctl assemble --scan a --uuid "$uuid_a" --key-file /tmp/key.bin) || fail "assemble --scan a failed: $out"
echo "$out"
disk=$(cat "$VT/a/disk")
[ -n "$disk" ] || fail "a: no disk after assemble"
case $out in "a: /dev/$disk, volume $uuid_a, performance /dev/vda, capacity /dev/vdb /dev/vdc /dev/vdd, encrypted") ;;
*) fail "assemble said: $out" ;; esac
[ "$(cat "$VT/a/power")" = 1 ] || fail "a: not powered after assemble"
[ "$(cat "$VT/a/capacity_devices")" = "/dev/vdb /dev/vdc /dev/vdd" ] || fail "a: capacity_devices $(cat "$VT/a/capacity_devices")"
wait_bdev "/dev/$disk" a
UP=a

step "8 MiB written through /dev/$disk, then destaged"
run dd if=/dev/urandom of=/tmp/pat bs=1M count=8
sum=$(sha256sum /tmp/pat | cut -d' ' -f1)
run dd if=/tmp/pat of="/dev/$disk" bs=1M oflag=direct conv=fsync
[ "$(sha_range "/dev/$disk" 0 $((8 * MiB)))" = "$sum" ] || fail "a: the 8 MiB read back differ right after the write"
attr_write "$VT/a/destage" 1000000
moved=$(awk '{ print $3 }' "$VT/a/destage")
[ "$moved" -ge 2048 ] || fail "only $moved blocks destaged of 2048 written"
[ "$(sha_range "/dev/$disk" 0 $((8 * MiB)))" = "$sum" ] || fail "a: the 8 MiB read back differ after destage"

step "refusals while a is up"
refused "exists already" vtierctl assemble a /dev/vde
refused "in use" vtierctl assemble a2 /dev/vda /dev/vdb /dev/vdc /dev/vdd --key-file /tmp/key.bin

[ "$(sha_range "/dev/$disk" 0 $((8 * MiB)))" = "$sum" ] || fail "a: the 8 MiB read back differ after the refusals"

step "b up by name beside a"
out=$(vtierctl assemble b /dev/vde) || fail "assemble b failed: $out"
echo "$out"
case $out in "b: /dev/vtier"*", volume $uuid_b, performance /dev/vde, no capacity tier") ;;
*) fail "assemble b said: $out" ;; esac
run vtierctl stop b
[ ! -d "$VT/b" ] || fail "b: configfs directory left after stop"

[ "$(sha_range "/dev/$disk" 0 $((8 * MiB)))" = "$sum" ] || fail "a: the 8 MiB read back differ after b came and went"
step "stop a; refusals with nothing up"
run vtierctl stop a
[ ! -d "$VT/a" ] || fail "a: configfs directory left after stop"
UP=''
refused "wrong key" vtierctl assemble a /dev/vda /dev/vdb /dev/vdc /dev/vdd --key-file /tmp/wrong.bin
refused "the volume is encrypted" vtierctl assemble a /dev/vda /dev/vdb /dev/vdc /dev/vdd
refused "device 3 (capacity member 2) of 4 not found" vtierctl assemble a /dev/vda /dev/vdb /dev/vdc --key-file /tmp/key.bin
refused "no such volume" vtierctl stop a

step "a again, its members named in another order: the data is there"
out=$(vtierctl assemble a /dev/vdd /dev/vdb /dev/vda /dev/vdc --key-file /tmp/key.bin) || fail "assemble a failed: $out"
echo "$out"
disk=$(cat "$VT/a/disk")
wait_bdev "/dev/$disk" a
[ "$(cat "$VT/a/capacity_devices")" = "/dev/vdb /dev/vdc /dev/vdd" ] || fail "a: capacity_devices $(cat "$VT/a/capacity_devices")"
got=$(sha_range "/dev/$disk" 0 $((8 * MiB)))
[ "$got" = "$sum" ] || fail "a: the 8 MiB read back differ from what was written"
run vtierctl stop a

step "the volume table: assemble --all, by name, stop --all"
cat >/tmp/vtiertab <<TAB
# name uuid key
a $uuid_a /tmp/key.bin
b $(echo "$uuid_b" | tr a-f A-F) none   # either case
TAB
run cat /tmp/vtiertab
run vtierctl assemble --all --tab /tmp/vtiertab
[ "$(volumes | tr '\n' ' ')" = "a b " ] || fail "assemble --all: configfs holds '$(volumes)'"
disk=$(cat "$VT/a/disk")
wait_bdev "/dev/$disk" a
[ "$(sha_range "/dev/$disk" 0 $((8 * MiB)))" = "$sum" ] || fail "a (from the table): the 8 MiB read back differ"
out=$(vtierctl assemble --all --tab /tmp/vtiertab) || fail "assemble --all again failed: $out"
[ "$out" = "a: assembled already
b: assembled already" ] || fail "assemble --all again said: $out"
run vtierctl stop --all --tab /tmp/vtiertab
[ -z "$(volumes)" ] || fail "stop --all left: $(volumes)"
out=$(vtierctl assemble b --tab /tmp/vtiertab) || fail "assemble b (table) failed: $out"
echo "$out"
UP=b
refused "c: not in /tmp/vtiertab" vtierctl assemble c --tab /tmp/vtiertab
run vtierctl stop b
[ -z "$(volumes)" ] || fail "volumes left in configfs at the end: $(volumes)"
vtier_unload
echo "assemble: --scan, order, key check, refusals, the volume table and stop as expected"
