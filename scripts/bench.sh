#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh: every benchmark (`make bench`). Each one prints a table for
# people, with figures of its peers measured in the same run and the ratios,
# and writes machine-readable results to bench/results/NAME.json.
# Benchmarks are not tests: nothing here passes or fails on a figure.
#
#   VTIER_BENCH="ec btree"   run only these (guest-crypt: the in-guest
#                            dm-crypt comparison, scripts/bench-guest-crypt.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$VTIER_TOP"
"$VTIER_TOP/scripts/setup.sh"
mkdir -p bench/results

# crate:bench pairs; every [[bench]] target of the workspace.
all=(vtier-ec:ec vtier-engine:alloc vtier-engine:wal vtier-engine:btree vtier-engine:xts)
want=${VTIER_BENCH:-}
for pair in "${all[@]}"; do
	crate=${pair%%:*} name=${pair#*:}
	if [ -n "$want" ] && ! grep -qw "$name" <<<"$want"; then
		continue
	fi
	log "benchmark $name ($crate)"
	cargo bench -q -p "$crate" --bench "$name"
done
# In the QEMU guest: vtier's encrypted writes against dm-crypt on one disk.
if [ -z "$want" ] || grep -qw guest-crypt <<<"$want"; then
	log "benchmark guest-crypt (QEMU guest)"
	"$VTIER_TOP/scripts/bench-guest-crypt.sh"
fi
log "results in bench/results/"
ls -l bench/results/
