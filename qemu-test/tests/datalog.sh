#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M
# vtier-timeout: 300
# vtier-needs: module
# vtier-release-only: the CI budget: 285 s on the debug kernel, 98 s on the release one; the encrypted data log runs under KASAN in smoke, xts, fio-verify and powercut
#
# The data path: /dev/vtierN is served from an encrypted data log on the
# performance device, through the LBA map.
# Asserts, on an encrypted volume:
# - 4 KiB logical blocks; a size of two fifths of the data area;
# - a known plaintext written through /dev/vtier0 reads back, also after a
#   power cycle and a module reload, and is found nowhere on either raw
#   member device; while on an unencrypted volume (the control) it is;
# - equal plaintext blocks are stored as equal ciphertext (the fixed
#   tweak): one marker block written at two places shows up as the same
#   ciphertext block twice on the device;
# - a write past the end fails and changes nothing.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

MARK="vtier-known-plaintext-0123456789abcdef"

# A 4 KiB block of the marker, repeated.
mark_block() {
	i=0
	while [ $i -lt 64 ]; do
		printf '%s-%024d\n' "$MARK" $i
		i=$((i + 1))
	done
}

# Occurrences of the marker on a raw device.
marks_on() {
	strings -n 30 "$1" >/tmp/strings || fail "cannot read $1"
	grep -c -F "$MARK" /tmp/strings || true
}

# key_in NAME: on an encrypted volume, the key to NAME's configfs `key`.
key_in() {
	if [ "$mode" = encrypted ]; then
		echo "+ key for $1"
		od -An -v -tx1 /tmp/key.bin | tr -d ' \n' >"$VT/$1/key" || fail "$1: writing the key failed"
	fi
}

vtier_load
dd if=/dev/urandom of=/tmp/key.bin bs=64 count=1 2>/dev/null
mark_block >/tmp/mark
[ "$(stat -c %s /tmp/mark)" = 4096 ] || fail "marker block is $(stat -c %s /tmp/mark) bytes"
# 1 MiB: the marker block at 0, then random data, the marker again at 512 KiB.
dd if=/dev/urandom of=/tmp/pat bs=4096 count=256 2>/dev/null
dd if=/tmp/mark of=/tmp/pat bs=4096 conv=notrunc 2>/dev/null
dd if=/tmp/mark of=/tmp/pat bs=4096 seek=128 conv=notrunc 2>/dev/null
want=$(sha256sum </tmp/pat | cut -d' ' -f1)

for mode in encrypted plain; do
	step "$mode volume"
	if [ $mode = encrypted ]; then
		run vtierctl format --perf /dev/vda --encrypt --key-file /tmp/key.bin
	else
		# Over the encrypted volume of the first round.
		vtier_format --force /dev/vda
	fi
	[ "$(marks_on /dev/vda)" = 0 ] || fail "marker on /dev/vda before anything was written"
	vtier_create dl /dev/vda
	key_in dl
	disk=$(vtier_up dl)
	dev=/dev/$disk
	[ "$(blockdev --getss "$dev")" = 4096 ] || fail "$dev: logical block size $(blockdev --getss "$dev")"
	perf=$(bdev_size /dev/vda)
	size=$(bdev_size "$dev")
	echo "perf $perf bytes, $dev $size bytes"
	if [ $((size * 5)) -gt $((perf * 2)) ] || [ $((size * 5)) -le $((perf * 2 * 9 / 10)) ]; then
		fail "$dev is $size bytes: not two fifths of the data area of $perf bytes"
	fi

	run dd if=/tmp/pat of="$dev" bs=1M count=1 oflag=direct
	run dd if=/tmp/pat of="$dev" bs=1M count=1 seek=3 oflag=direct
	run blockdev --flushbufs "$dev"
	[ "$(sha_range "$dev" 0 1048576)" = "$want" ] || fail "$mode: the first MiB reads back wrong"

	step "$mode: a write past the end fails"
	if dd if=/tmp/mark of="$dev" bs=4096 seek=$((size / 4096)) count=1 oflag=direct conv=notrunc 2>/tmp/dd.err; then
		cat /tmp/dd.err
		grep -q '^0+0 records out' /tmp/dd.err || fail "a write past the end of $dev succeeded"
	fi
	[ "$(bdev_size "$dev")" = "$size" ] || fail "$dev changed size"

	vtier_down dl
	found=$(marks_on /dev/vda)
	echo "$mode: marker lines on /dev/vda: $found"
	if [ $mode = encrypted ]; then
		if [ "$found" != 0 ]; then
			fail "plaintext found on a raw member of an encrypted volume"
		fi
		# Four copies of the marker block were written: with the fixed
		# tweak they are four equal ciphertext blocks on /dev/vda.
		dd if=/dev/vda of=/tmp/raw bs=4096 count=4096 iflag=direct 2>/dev/null
		dups=$(od -An -v -w4096 -tx1 /tmp/raw | sort | uniq -c | sort -rn | awk '$1 == 4 { n++ } END { print n + 0 }')
		echo "ciphertext blocks stored exactly four times: $dups"
		[ "$dups" -ge 1 ] || fail "the four equal plaintext blocks are not four equal ciphertext blocks"
	else
		# 4 marker blocks x 64 lines each.
		[ "$found" -ge 256 ] || fail "control: only $found marker lines on /dev/vda of a plain volume"
	fi

	step "$mode: power cycle keeps the data"
	disk=$(vtier_up dl)
	[ "$(sha_range "/dev/$disk" 0 1048576)" = "$want" ] || fail "$mode: data at 0 changed over a power cycle"
	[ "$(sha_range "/dev/$disk" $((3 << 20)) 1048576)" = "$want" ] || fail "$mode: data at 3 MiB changed over a power cycle"
	vtier_down dl
	run rmdir "$VT/dl"

	step "$mode: module reload keeps the data (same members, no new format)"
	vtier_unload
	vtier_load
	vtier_create dl /dev/vda
	key_in dl
	disk=$(vtier_up dl)
	[ "$(sha_range "/dev/$disk" 0 1048576)" = "$want" ] || fail "$mode: data at 0 changed over a module reload"
	[ "$(sha_range "/dev/$disk" $((3 << 20)) 1048576)" = "$want" ] || fail "$mode: data at 3 MiB changed over a module reload"
	vtier_down dl
	run rmdir "$VT/dl"
done
vtier_unload
