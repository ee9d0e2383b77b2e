#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M 32M 32M 32M 32M
# vtier-timeout: 240
# vtier-needs: module
# vtier-release-only: the CI budget: 140 s on the debug kernel, 24 s on the release one; the key's path into the kernel crypto API runs under KASAN in xts, smoke and powercut
#
# Keys of an encrypted volume, end to end:
# - `vtierctl format --encrypt --key-file` (key file in /tmp) writes the
#   same tweak and key check value on every member, `vtierctl show` prints
#   the tweak and never the key, `vtierctl check-key` tells right from wrong;
# - power=1 without a key is ENOKEY; a wrong key through `key` is
#   EKEYREJECTED with one kernel message naming the device; the right key
#   brings /dev/vtier0 up, and again after a power cycle;
# - through the kernel keyring (`key_name`, a logon key added with keyctl):
#   the right key brings the device up; a name with no key (never added,
#   unlinked since, or a `user` key of that name) is ENOKEY; a logon key
#   whose payload is not 64 bytes is EINVAL; a wrong one EKEYREJECTED;
#   `key` and `key_name` both set is EINVAL; bad names are refused;
# - an unencrypted volume with a key (either way) is refused (EINVAL);
# - no key ever shows in an attribute, vtierctl's output or the kernel log.
# Disks: vda perf + vdb, vdc, vdd capacity (encrypted set, 2+1 stripes),
# vde alone (unencrypted).
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

ENOKEY="Required key not available"
EKEYREJECTED="Key was rejected by service"
EINVAL="Invalid argument"

cases=0

# Random 64-byte keys with distinct halves, raw and as hex. Never echoed.
newkey() { # NAME
	while :; do
		head -c 64 /dev/urandom >"/tmp/$1.bin"
		od -An -v -tx1 "/tmp/$1.bin" | tr -d ' \n' >"/tmp/$1.hex"
		hex=$(cat "/tmp/$1.hex")
		[ ${#hex} = 128 ] || fail "$1: hex key is ${#hex} digits"
		[ "$(echo "$hex" | cut -c1-64)" != "$(echo "$hex" | cut -c65-128)" ] && break
	done
}
newkey key
newkey wrong
KEY=$(cat /tmp/key.hex)
WRONG=$(cat /tmp/wrong.hex)

# No part of either key (16 hex digits from the start, the middle or the
# end of it, either case) in TEXT.
no_key_in() { # WHAT TEXT
	for k in "$KEY" "$WRONG"; do
		for part in "$(echo "$k" | cut -c1-16)" "$(echo "$k" | cut -c57-72)" \
			"$(echo "$k" | cut -c113-128)"; do
			if printf '%s' "$2" | grep -qi "$part"; then
				fail "key material in $1"
			fi
		done
	done
}

# The device's kernel error lines since the last mark: exactly one, naming
# it, containing WANT; and no key material in the whole log.
check_err_line() { # NAME WANT WHAT
	lines=$(dmesg -r | grep '^<3>' | grep -E "vtier:? $1: " || true)
	printf '%s\n' "$lines" | sed 's/^/  dmesg: /'
	n=$(printf '%s\n' "$lines" | grep -c . || true)
	[ "$n" = 1 ] || fail "$3: $n KERN_ERR lines naming 'vtier $1:', expected 1"
	case $lines in
	*"$2"*) ;;
	*) fail "$3: kernel message does not say '$2'" ;;
	esac
	no_key_in "the kernel log" "$(dmesg)"
}

# expect_power_fail NAME ERRTEXT MSG: power=1 fails with ERRTEXT, one
# kernel error line containing MSG, and the device stays down.
expect_power_fail() {
	what="$1: power=1 ($3)"
	echo "+ echo 1 > $VT/$1/power    # expect: $2"
	kmsg_mark
	if out=$( (echo 1 >"$VT/$1/power") 2>&1); then
		fail "$what succeeded; expected '$2'"
	fi
	echo "  -> $out"
	case $out in
	*"$2"*) ;;
	*) fail "$what: '$out'; expected '$2'" ;;
	esac
	check_err_line "$1" "$3" "$what"
	[ "$(cat "$VT/$1/power")" = 0 ] || fail "$what: power reads $(cat "$VT/$1/power")"
	[ -z "$(cat "$VT/$1/disk")" ] || fail "$what: disk reads '$(cat "$VT/$1/disk")'"
	cases=$((cases + 1))
}

# set_key NAME FILE|"": writes a hex key file (or nothing) to `key`; not
# through attr_write, which echoes the command.
set_key() {
	if [ -n "$2" ]; then
		sh -c "cat $2 > $VT/$1/key" || fail "$1: key $2 refused"
		[ "$(cat "$VT/$1/key")" = set ] || fail "$1: key reads '$(cat "$VT/$1/key")'"
	else
		sh -c "echo > $VT/$1/key" || fail "$1: clearing key refused"
		[ "$(cat "$VT/$1/key")" = unset ] || fail "$1: key reads '$(cat "$VT/$1/key")'"
	fi
}

set_key_name() { # NAME VALUE
	attr_write "$VT/$1/key_name" "$2"
	[ "$(cat "$VT/$1/key_name")" = "$2" ] || fail "$1: key_name reads '$(cat "$VT/$1/key_name")', wrote '$2'"
}

# Up, a 1 MiB round trip through the disk, down.
up_and_down() { # NAME HOW
	disk=$(vtier_up "$1")
	[ "$disk" = vtier0 ] || fail "$1 ($2): came up as $disk, expected vtier0"
	run dd if=/dev/urandom of=/tmp/pat bs=1M count=1
	run dd if=/tmp/pat of=/dev/vtier0 bs=1M oflag=direct
	[ "$(sha_range /dev/vtier0 0 1048576)" = "$(sha256sum </tmp/pat | cut -d' ' -f1)" ] ||
		fail "$1 ($2): /dev/vtier0 returned other data"
	echo "$1: up as /dev/$disk with the key from $2"
	no_key_in "the kernel log" "$(dmesg)"
	vtier_down "$1"
}

step "vtierctl format --encrypt (key file in /tmp)"
out=$(vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd --encrypt --key-file /tmp/key.hex 2>&1) ||
	fail "vtierctl format --encrypt failed: $out"
echo "$out"
no_key_in "vtierctl format's output" "$out"
out=$( (for d in vda vdb vdc vdd; do vtierctl show /dev/$d; done) 2>&1) || fail "vtierctl show failed: $out"
echo "$out"
no_key_in "vtierctl show's output" "$out"
[ "$(echo "$out" | grep -c 'encrypted AES-256-XTS, tweak ')" = 8 ] ||
	fail "not all 8 superblock copies say encrypted"
tweaks=$(echo "$out" | sed -n 's/.*tweak \([0-9a-f]*\).*/\1/p' | sort -u)
if [ "$(echo "$tweaks" | wc -l)" != 1 ] || [ ${#tweaks} != 32 ]; then
	fail "members disagree on the tweak: $tweaks"
fi
run vtierctl check-key /dev/vdb --key-file /tmp/key.bin
if vtierctl check-key /dev/vda --key-file /tmp/wrong.hex; then
	fail "vtierctl check-key accepted the wrong key"
fi

vtier_load
vtier_create enc /dev/vda /dev/vdb /dev/vdc /dev/vdd
[ "$(cat "$VT/enc/key")" = unset ] || fail "new device: key reads '$(cat "$VT/enc/key")'"
[ -z "$(cat "$VT/enc/key_name")" ] || fail "new device: key_name reads '$(cat "$VT/enc/key_name")'"

step "no key: ENOKEY"
expect_power_fail enc "$ENOKEY" "the volume is encrypted"

step "wrong key through key: EKEYREJECTED"
set_key enc /tmp/wrong.hex
expect_power_fail enc "$EKEYREJECTED" "wrong key"

step "right key through key: up, and again after a power cycle"
set_key enc /tmp/key.hex
no_key_in "the attributes" "$(cat "$VT"/enc/* 2>/dev/null)"
up_and_down enc key
up_and_down enc key

step "key_name naming a key that is not there: ENOKEY"
set_key enc ""
set_key_name enc vtier:v0
expect_power_fail enc "$ENOKEY" "key_name vtier:v0: no such logon key"
# A user key of that name is not a logon key.
uid=$(keyctl padd user vtier:v0 @u </tmp/key.bin) || fail "keyctl padd user failed"
expect_power_fail enc "$ENOKEY" "key_name vtier:v0: no such logon key"
run keyctl unlink "$uid" @u

step "right key through the keyring: up"
id=$(keyctl padd logon vtier:v0 @u </tmp/key.bin) || fail "keyctl padd logon failed"
echo "logon key vtier:v0 is key $id"
if keyctl print "$id" 2>/dev/null; then
	fail "the logon key's payload is readable from userspace"
fi
up_and_down enc key_name
[ "$(cat "$VT/enc/key")" = unset ] || fail "the keyring's key was left in key: reads '$(cat "$VT/enc/key")'"
[ "$(cat "$VT/enc/key_name")" = vtier:v0 ] || fail "key_name reads '$(cat "$VT/enc/key_name")'"
no_key_in "the attributes" "$(cat "$VT"/enc/* 2>/dev/null)"

step "key and key_name both set: EINVAL"
set_key enc /tmp/key.hex
expect_power_fail enc "$EINVAL" "both key and key_name are set"
set_key enc ""

step "the key is read at power=1: unlinked, it is gone (ENOKEY)"
run keyctl unlink "$id" @u
expect_power_fail enc "$ENOKEY" "key_name vtier:v0: no such logon key"

step "logon keys with a wrong payload"
run keyctl add logon vtier:short 0123456789 @u
set_key_name enc vtier:short
expect_power_fail enc "$EINVAL" "payload is 10 bytes, expected 64"
run_sh "cat /tmp/key.bin /tmp/key.bin | head -c 65 | keyctl padd logon vtier:long @u"
set_key_name enc vtier:long
expect_power_fail enc "$EINVAL" "payload is 65 bytes, expected 64"
run_sh "keyctl padd logon vtier:wrong @u </tmp/wrong.bin"
set_key_name enc vtier:wrong
expect_power_fail enc "$EKEYREJECTED" "wrong key"

step "bad key names are refused when written"
for bad in novalue "has blank:x" :noprefix "$(printf '%0300d' 0):x"; do
	kmsg_mark
	if (echo "$bad" >"$VT/enc/key_name") 2>/dev/null; then
		fail "key_name accepted '$(echo "$bad" | cut -c1-40)'"
	fi
	check_err_line enc "key_name: expected prefix:name" "key_name '$(echo "$bad" | cut -c1-20)'"
	[ "$(cat "$VT/enc/key_name")" = vtier:wrong ] || fail "a refused key_name was stored"
	cases=$((cases + 1))
done

step "key_name cannot change while powered; an empty write clears it"
run_sh "keyctl padd logon vtier:v0 @u </tmp/key.bin >/dev/null"
set_key_name enc vtier:v0
disk=$(vtier_up enc)
if (echo vtier:wrong >"$VT/enc/key_name") 2>/dev/null; then
	fail "key_name changed while powered"
fi
if sh -c "cat /tmp/key.hex > $VT/enc/key" 2>/dev/null; then
	fail "key changed while powered"
fi
vtier_down enc
attr_write "$VT/enc/key_name" ""
[ -z "$(cat "$VT/enc/key_name")" ] || fail "an empty write did not clear key_name"

step "an unencrypted volume with a key: EINVAL"
vtier_format /dev/vde
run mkdir "$VT/plain"
attr_write "$VT/plain/perf_device" /dev/vde
set_key_name plain vtier:v0
expect_power_fail plain "$EINVAL" "the volume is not encrypted"
attr_write "$VT/plain/key_name" ""
set_key plain /tmp/key.hex
expect_power_fail plain "$EINVAL" "the volume is not encrypted"
set_key plain ""
disk=$(vtier_up plain)
vtier_down plain

step "clean up"
run rmdir "$VT/plain"
run rmdir "$VT/enc"
vtier_unload
no_key_in "the kernel log" "$(dmesg)"
echo "$cases refusals as specified"
