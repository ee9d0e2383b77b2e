#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 16M
# vtier-timeout: 120
# vtier-needs: module
# vtier-kmemleak: the erasure-code kernels' tables and buffers, set up and freed (a short test)
#
# Erasure coding's SIMD kernels (ec/c/gf_simd.c behind rust/ec_simd.rs):
# insmod checks every GF(2^8) kernel the guest CPU supports (AVX2 vpshufb
# tables, GFNI on ymm and zmm) against the scalar Rust loop on random
# stripes of 2+1 ... 24+8 (encode, then reconstruct of lost shards) and
# logs which passed and which one the codec uses. TCG's `-cpu max` may lack
# some of the instructions: then fewer kinds are listed, or none, and the
# codec uses the scalar loop; what must never happen is a kind that fails.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

kmsg_mark
vtier_load

step "GF kernel self-test at module load"
dmesg | grep 'vtier: ec:' || true
if dmesg | grep 'vtier: ec:' | grep 'FAILED' >/dev/null; then
	fail "a SIMD GF kernel gives other bytes than the scalar code"
fi
line=$(dmesg | grep 'vtier: ec: GF kernel self-test passed:' | tail -n 1 || true)
[ -n "$line" ] || fail "no 'ec: GF kernel self-test passed' line in the kernel log"
using=$(echo "$line" | sed -n 's/.*; using \([a-z0-9-]*\)$/\1/p')
[ -n "$using" ] || fail "no 'using' in: $line"
case $using in
scalar)
	echo "$line" | grep -q 'passed: none ' || fail "scalar chosen although a kind passed: $line" ;;
avx2 | gfni-ymm | gfni-zmm)
	echo "$line" | grep -q "passed: .*$using" || fail "$using chosen but not listed as passed: $line" ;;
*)
	fail "unknown GF kernel '$using'" ;;
esac
echo "guest CPU flags: $(grep -o -w 'avx2\|avx512f\|gfni' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "codec uses: $using"

vtier_unload
