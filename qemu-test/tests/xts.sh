#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M
# vtier-timeout: 120
# vtier-needs: module
#
# AES-256-XTS in the kernel (crypto_shim/xts.c behind rust/crypto.rs):
# - insmod runs the known-answer self-test (IEEE 1619 vectors 10-14 and the
#   deterministic 4 KiB block cases, buffers and pages, both ways) and logs
#   that it passed, naming the crypto API's implementation;
# - reading debugfs vtier/xts_selftest runs it again and prints the kernel's
#   ciphertexts of the block cases, which must equal byte for byte the ones
#   userspace computed with RustCrypto and OpenSSL
#   (/tests/data/xts-blocks.txt, checked by `cargo test --test xts`);
# - the configfs `key` attribute takes 128 hex digits, never shows them,
#   refuses anything else and changes while powered, and power=1 refuses a
#   key for a volume that is not encrypted (keys of encrypted volumes, the
#   key check value and the keyring: keys.sh).
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

EXPECTED=/tests/data/xts-blocks.txt
SELFTEST=/sys/kernel/debug/vtier/xts_selftest

[ -f "$EXPECTED" ] || fail "no $EXPECTED in the guest"
kmsg_mark
vtier_load

step "self-test at module load"
dmesg | grep 'vtier' || true
dmesg | grep 'xts(aes) self-test passed' >/dev/null || fail "no 'xts(aes) self-test passed' in the kernel log"

step "self-test on demand: $SELFTEST"
[ -r "$SELFTEST" ] || fail "no $SELFTEST"
run_sh "cat $SELFTEST > /tmp/xts.out"
cut -c1-80 /tmp/xts.out
if grep -q '^error' /tmp/xts.out; then
	fail "kernel self-test: $(grep '^error' /tmp/xts.out)"
fi
grep -q '^driver ' /tmp/xts.out || fail "no driver line"
echo "implementation: $(sed -n 's/^driver //p' /tmp/xts.out)"
grep -qx 'ieee1619 5 passed' /tmp/xts.out || fail "IEEE 1619 vectors not reported passed"
grep -qx 'pages ok' /tmp/xts.out || fail "page path not reported ok"

step "kernel ciphertexts against userspace (RustCrypto + OpenSSL)"
grep '^case ' /tmp/xts.out >/tmp/kernel.txt || true
grep '^case ' "$EXPECTED" >/tmp/expected.txt || true
want=$(wc -l </tmp/expected.txt)
got=$(wc -l </tmp/kernel.txt)
[ "$want" -gt 0 ] || fail "no case lines in $EXPECTED"
[ "$got" = "$want" ] || fail "kernel printed $got case lines, expected $want"
if ! cmp /tmp/kernel.txt /tmp/expected.txt; then
	while read -r _ n hex; do
		exp=$(sed -n "s/^case $n //p" /tmp/expected.txt)
		[ "$hex" = "$exp" ] && continue
		echo "case $n kernel:   $(echo "$hex" | cut -c1-64)..."
		echo "case $n userspace: $(echo "$exp" | cut -c1-64)..."
	done </tmp/kernel.txt
	fail "kernel and userspace AES-XTS ciphertexts differ"
fi
echo "$got block cases of 4096 bytes: kernel and userspace ciphertexts identical"

step "a second read gives the same bytes"
run_sh "cat $SELFTEST > /tmp/xts2.out"
cmp /tmp/xts.out /tmp/xts2.out || fail "two reads of $SELFTEST differ"

step "configfs key attribute"
KEY=$(i=0; while [ $i -lt 64 ]; do printf '%02x' $(((i * 37 + 5) % 256)); i=$((i + 1)); done)
[ ${#KEY} = 128 ] || fail "test key is ${#KEY} digits"
vtier_format /dev/vda
vtier_create k /dev/vda
[ "$(cat "$VT/k/key")" = unset ] || fail "new device: key reads '$(cat "$VT/k/key")'"
for bad in 00 "${KEY}00" "$(echo "$KEY" | sed 's/^./g/')"; do
	if sh -c "echo $bad > $VT/k/key" 2>/dev/null; then
		fail "key accepted a bad value (${#bad} characters)"
	fi
done
[ "$(cat "$VT/k/key")" = unset ] || fail "a refused key was stored"
# Not through attr_write, which echoes the command: keys are not printed,
# even test keys.
sh -c "echo $KEY > $VT/k/key" || fail "a good key was refused"
[ "$(cat "$VT/k/key")" = set ] || fail "key reads '$(cat "$VT/k/key")' after a good write"
! grep -rqi "$KEY" "$VT/k" 2>/dev/null || fail "the key is readable back"
kmsg_mark
if sh -c "echo 1 > $VT/k/power" 2>/dev/null; then
	fail "power=1 with a key on an unencrypted volume succeeded"
fi
dmesg | grep 'k: a key is set but the volume is not encrypted' >/dev/null || fail "no clear error for a key on an unencrypted volume"
if dmesg | grep -i "$KEY" >/dev/null; then fail "the key appeared in the kernel log"; fi
attr_write "$VT/k/key" ""
[ "$(cat "$VT/k/key")" = unset ] || fail "an empty write did not clear the key"
vtier_up k >/dev/null
if sh -c "echo $KEY > $VT/k/key" 2>/dev/null; then
	fail "key changed while powered"
fi
vtier_down k
run rmdir "$VT/k"

vtier_unload
