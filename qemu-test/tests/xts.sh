#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
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
#   (/tests/data/xts-blocks.txt, checked by `cargo test --test xts`).
set -eu
# shellcheck source=../guest/lib.sh
. /usr/lib/vtier/lib.sh

EXPECTED=/tests/data/xts-blocks.txt
SELFTEST=/sys/kernel/debug/vtier/xts_selftest

[ -f "$EXPECTED" ] || fail "no $EXPECTED in the guest"
kmsg_mark
vtier_load

step "self-test at module load"
dmesg | grep 'vtier' || true
dmesg | grep -q 'xts(aes) self-test passed' || fail "no 'xts(aes) self-test passed' in the kernel log"

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

vtier_unload
