#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M 32M 32M 32M 32M 32M
# vtier-timeout: 300
# vtier-needs: module
# vtier-release-only: the CI budget: 136 s on the debug kernel, 24 s on the release one; the configfs parsing it drives is safe Rust, and the bring-up and teardown paths run under KASAN in smoke, busy and reload
#
# Every bad input of the configfs interface gets the writer an errno and
# exactly one KERN_ERR line naming the vtier device ("vtier NAME: ..."),
# leaves the device unpowered (or, for a powered one, as it was) and
# oopses nothing (the host checks the console for splats):
#   ENOENT        a path that does not exist (perf_device, capacity_devices)
#   ENOTBLK       /dev/null, a regular file, a directory
#   EINVAL        the same device twice (perf+capacity, twice in capacity,
#                 through another device node), power=1 without perf_device,
#                 power=garbage
#   ENAMETOOLONG  a value of >= 4095 bytes, one path of > 255 bytes (also one
#                 that exists)
#   EBUSY         power=1 on a device held by another powered vtier device or
#                 by a mounted ext4; writing paths while powered
#   EUCLEAN       power=1 on an unformatted performance device, or one whose
#                 two superblock copies are damaged or misplaced (one damaged
#                 copy is fine: the other one is used)
# and `vtierctl format` refuses, writing nothing, a member of a powered
# volume and a mounted file system (even with --force: the exclusive open
# fails), and without --force an unmounted ext4 and a vtier member;
# and at the end the one good device still works and everything unloads.
# Disks: vda perf + vdb, vdc, vdf capacity of the good device (2+1 stripes);
# vdd ext4 (mounted); vde a performance device of its own.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

ENOENT="No such file or directory"
ENOTBLK="Block device required"
EINVAL="Invalid argument"
ENAMETOOLONG="File name too long"
EBUSY="Device or resource busy"
EUCLEAN="Structure needs cleaning"

cases=0

# The device's error lines since the last mark: exactly one, at KERN_ERR,
# "vtier NAME: ..." (or "vtier: NAME: ...", the module's pr_fmt prefix).
check_err_line() { # NAME WHAT
	n=$(dmesg -r | grep '^<3>' | grep -cE "vtier:? $1: " || true)
	dmesg -r | grep -E "vtier:? $1: " | sed 's/^/  dmesg: /' || true
	[ "$n" = 1 ] || fail "$2: $n KERN_ERR lines naming 'vtier $1:' in dmesg, expected 1"
}

show() { # VALUE -> at most 60 characters of it, for messages
	if [ ${#1} -gt 60 ]; then
		printf '%s...(%d bytes)' "$(printf '%s' "$1" | cut -c1-60)" ${#1}
	else
		printf '%s' "$1"
	fi
}

# expect_write NAME ATTR VALUE ERRTEXT [POWER]: writing VALUE to
# $VT/NAME/ATTR fails with ERRTEXT and one error line; power stays POWER
# (default 0) and the attribute keeps its old value.
expect_write() {
	name=$1 attr=$2 value=$3 want=$4 power=${5:-0}
	file=$VT/$name/$attr
	what="echo '$(show "$value")' > $attr"
	echo "+ $what    # expect: $want"
	old=$(cat "$file")
	kmsg_mark
	if out=$( (echo "$value" >"$file") 2>&1); then
		fail "$what succeeded; expected '$want'"
	fi
	echo "  -> $out"
	case $out in
	*"$want"*) ;;
	*) fail "$what: '$out'; expected '$want'" ;;
	esac
	check_err_line "$name" "$what"
	[ "$(cat "$VT/$name/power")" = "$power" ] ||
		fail "$what: power reads $(cat "$VT/$name/power"), expected $power"
	[ "$(cat "$file")" = "$old" ] || fail "$what: $attr changed from '$old' to '$(cat "$file")'"
	if [ "$power" = 0 ]; then
		[ -z "$(cat "$VT/$name/disk")" ] || fail "$what: disk reads '$(cat "$VT/$name/disk")' while down"
	fi
	cases=$((cases + 1))
}

expect_power_fail() { # NAME ERRTEXT
	expect_write "$1" power 1 "$2"
}

vtier_load
step "formatting: vda+vdb+vdc+vdf as one volume, vde alone"
vtier_format /dev/vda /dev/vdb /dev/vdc /dev/vdf
vtier_format /dev/vde

run mkdir "$VT/bad"
step "paths that do not exist: ENOENT"
expect_write bad perf_device /dev/nonexistent "$ENOENT"
expect_write bad perf_device /dev/vdz "$ENOENT"
expect_write bad capacity_devices "/dev/vdb /dev/nonexistent" "$ENOENT"

step "not block devices: ENOTBLK"
: >/tmp/regular
expect_write bad perf_device /dev/null "$ENOTBLK"
expect_write bad perf_device /tmp/regular "$ENOTBLK"
expect_write bad perf_device /dev "$ENOTBLK"
expect_write bad capacity_devices "/dev/vdb /dev/null" "$ENOTBLK"

step "the same device twice: EINVAL"
attr_write "$VT/bad/perf_device" /dev/vda
expect_write bad capacity_devices "/dev/vdb /dev/vda" "$EINVAL"
expect_write bad capacity_devices "/dev/vdb /dev/vdb" "$EINVAL"
majmin=$(cat /sys/block/vda/dev)
run mknod /tmp/vda-alias b "${majmin%:*}" "${majmin#*:}"
expect_write bad capacity_devices "/tmp/vda-alias" "$EINVAL"
attr_write "$VT/bad/capacity_devices" "/dev/vdb /dev/vdc"
expect_write bad perf_device /dev/vdc "$EINVAL"
[ "$(cat "$VT/bad/perf_device")" = /dev/vda ] || fail "perf_device lost its value"

step "over-long values: ENAMETOOLONG"
long_name=/dev/$(printf '%0300d' 0 | tr 0 x)
expect_write bad perf_device "$long_name" "$ENAMETOOLONG"
# An existing device, named through a 265-byte path.
dots=$(printf '%0130d' 0 | sed 's/0/.\//g')
expect_write bad perf_device "/dev/${dots}vdb" "$ENAMETOOLONG"
expect_write bad capacity_devices "/dev/vdb /dev/${dots}vdc" "$ENAMETOOLONG"
# 5008 bytes: whatever configfs passes on (a page at most) is too long; cut
# at 4095 bytes it would name the directory /dev, which is not ENOTBLK's turn.
many_dots=$(printf '%02500d' 0 | sed 's/0/.\//g')
expect_write bad capacity_devices "/dev/${many_dots}vdc" "$ENAMETOOLONG"
spaces=$(printf '%04200d' 0 | tr 0 ' ')
expect_write bad capacity_devices "/dev/vdb${spaces}/dev/vdc" "$ENAMETOOLONG"

step "power: garbage is EINVAL"
expect_write bad power abc "$EINVAL"
expect_write bad power -1 "$EINVAL"
expect_write bad power "" "$EINVAL"

step "power=1 with no perf_device: EINVAL"
run mkdir "$VT/empty"
expect_power_fail empty "$EINVAL"
attr_write "$VT/empty/capacity_devices" "/dev/vdb"
expect_power_fail empty "$EINVAL"
run rmdir "$VT/empty"

step "unformatted or corrupted performance device: EUCLEAN"
run mkdir "$VT/sb"
dd if=/dev/zero of=/tmp/zero bs=1M count=1 2>/dev/null
run dd if=/tmp/zero of=/dev/vdd bs=1M count=1 oflag=direct conv=notrunc
attr_write "$VT/sb/perf_device" /dev/vdd
expect_power_fail sb "$EUCLEAN"
# vde is formatted (alone). The older superblock copy damaged: it comes up
# from the newer one (and the checkpoints of coming up and going down
# rewrite both). The newer copy damaged: refused, since the WAL shows a
# checkpoint that no valid superblock describes; rolling back silently
# would lose it.
attr_write "$VT/sb/perf_device" /dev/vde
attr_write "$VT/sb/capacity_devices" ""
# older_copy DEV: 0 or 1, the copy with the lower generation.
older_copy() {
	vtierctl show "$1" | sed -n 's/^copy \([01]\): generation \([0-9]*\).*/\2 \1/p' | sort -n | head -1 | cut -d' ' -f2
}
damage() { # COPY
	run_sh "printf garbage | dd of=/dev/vde bs=1 seek=$(($1 * 4096 + 512)) conv=notrunc"
	run blockdev --flushbufs /dev/vde
}
old=$(older_copy /dev/vde)
damage "$old"
kmsg_mark
disk=$(vtier_up sb)
echo "vde with its older copy $old damaged came up as $disk"
vtier_down sb
run dd if=/dev/vde of=/tmp/sb01 bs=4096 count=2 iflag=direct
new=$((1 - $(older_copy /dev/vde)))
damage "$new"
expect_power_fail sb "$EUCLEAN"
# Both copies damaged.
damage $((1 - new))
expect_power_fail sb "$EUCLEAN"
# The newer copy written to the other's place (a misdirected write).
run dd if=/tmp/sb01 of=/dev/vde bs=4096 count=1 skip="$new" seek=$((1 - new)) oflag=direct conv=notrunc
expect_power_fail sb "$EUCLEAN"
# Both copies repaired: up again.
run dd if=/tmp/sb01 of=/dev/vde bs=4096 count=2 oflag=direct conv=notrunc
disk=$(vtier_up sb)
vtier_down sb
run rmdir "$VT/sb"

step "the good device"
run mkdir "$VT/good"
attr_write "$VT/good/perf_device" /dev/vda
attr_write "$VT/good/capacity_devices" "/dev/vdb /dev/vdc /dev/vdf"
disk=$(vtier_up good)
dev=/dev/$disk

step "writing paths while powered: EBUSY"
expect_write good perf_device /dev/vde "$EBUSY" 1
expect_write good capacity_devices "/dev/vdb" "$EBUSY" 1
expect_write good capacity_devices "" "$EBUSY" 1
expect_write good perf_device /dev/vda "$EBUSY" 1

step "members held by someone else: EBUSY"
# bad still names vda (+ vdb vdc), which good holds.
expect_power_fail bad "$EBUSY"
run mkdir "$VT/other"
# vdd, an ext4 mounted, named as a performance device: the exclusive
# open fails before anything is read from it.
run mkfs.ext4 -q -F /dev/vdd
run mkdir -p /mnt/vdd
run mount -t ext4 /dev/vdd /mnt/vdd
attr_write "$VT/other/perf_device" /dev/vdd
expect_power_fail other "$EBUSY"

step "vtierctl format: a device in use is refused even with --force"
# head_sum DEV: sha256 of the part of DEV that vtierctl looks at and a
# format writes first.
head_sum() {
	dd if="$1" bs=4096 count=17 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1
}
# format_refused WHY WANT DEV [vtierctl format options]: vtierctl format
# fails with WANT in its message and DEV's start is unchanged. A device in
# use is not compared: its holder (the running volume, the mounted file
# system) may write there itself meanwhile (ext4 updates its superblock);
# that the exclusive open failed, which "in use" reports, is what shows
# vtierctl never had it open to write.
format_refused() {
	why=$1 want=$2 target=$3
	shift 3
	before=$(head_sum "$target")
	echo "+ vtierctl format $* --perf $target    # $why; expect: $want"
	if out=$(vtierctl format "$@" --perf "$target" 2>&1); then
		fail "vtierctl format of $target ($why) succeeded: $out"
	fi
	echo "$out" | sed 's/^/  -> /'
	case $out in
	*"$want"*) ;;
	*) fail "vtierctl format of $target ($why): no '$want' in: $out" ;;
	esac
	case $want in
	*"in use"*) ;;
	*) [ "$(head_sum "$target")" = "$before" ] || fail "vtierctl format of $target ($why) wrote to it" ;;
	esac
	cases=$((cases + 1))
}
format_refused "the performance device of a powered volume" "/dev/vda: in use" /dev/vda --force
format_refused "a capacity device of a powered volume" "/dev/vdc: in use" /dev/vdc --force
format_refused "a mounted ext4" "/dev/vdd: in use" /dev/vdd --force
run umount /mnt/vdd
format_refused "an ext4 not mounted, without --force" "/dev/vdd: carries an ext2/3/4 file system" /dev/vdd
format_refused "vde's vtier superblock, without --force" "/dev/vde: carries a vtier superblock (volume" /dev/vde

step "after all that, the good device works"
run dd if=/dev/urandom of=/tmp/pat bs=1M count=4
run dd if=/tmp/pat of="$dev" bs=1M oflag=direct conv=notrunc
[ "$(sha_range "$dev" 0 4194304)" = "$(sha256sum </tmp/pat | cut -d' ' -f1)" ] ||
	fail "the good device returned other data"

step "clean up"
vtier_down good
for d in good bad other; do
	run rmdir "$VT/$d"
done
vtier_unload
echo "$cases bad inputs rejected as specified"
