#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test.sh: every test, as `make test` and CI run them.
#
#   1. set-up (idempotent; seconds when done),
#   2. the userspace tests: cargo test --workspace (engine, ec, vtierctl,
#      including the crash harness),
#   3. the QEMU suites (qemu-test/run-all.sh) on the release kernel and on
#      the debug kernel (clang, KASAN, lockdep).
#
# Ends with one line "vtier: N passed, M failed, K skipped" over all of them and exits
# non-zero if anything failed. VTIER_TEST_FLAVOURS="release" limits the
# QEMU suites to some kernels (CI runs both).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$VTIER_TOP"

"$VTIER_TOP/scripts/setup.sh"

passed=0 failed=0 skipped=0
log_dir=$VTIER_TOP/target/test-logs
mkdir -p "$log_dir"

count_cargo() {
	local p f
	while read -r p f; do
		passed=$((passed + p))
		failed=$((failed + f))
	done < <(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$1")
}

log "cargo test --workspace"
cargo_ok=1
cargo test --workspace 2>&1 | tee "$log_dir/cargo.log" || cargo_ok=0
count_cargo "$log_dir/cargo.log"
[ $cargo_ok = 1 ] || { log "cargo test failed"; failed=$((failed + 1)); }
# The crash harnesses' figures (libtest captured them above; this re-run
# of the harnesses (WAL, B-tree, data log) takes seconds and only prints).
cargo test -q -p vtier-engine --test crash --test btree_crash --test store -- --nocapture 2>&1 |
	grep -E "crash points tried" || true
# The stripe store's model and crash harness figures (seconds).
cargo test -q -p vtier-engine --test stripe_model -- --nocapture 2>&1 |
	grep -oE "stripe (harness|crash points).*" | sort -u || true

for flavour in ${VTIER_TEST_FLAVOURS:-release debug}; do
	log "QEMU suite on the $flavour kernel"
	suite_ok=1
	"$VTIER_TOP/qemu-test/run-all.sh" "$flavour" 2>&1 | tee "$log_dir/guest-$flavour.log" || suite_ok=0
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log_dir/guest-$flavour.log" | tail -1 || true)
	if [ -n "$line" ]; then
		p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
		f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
		passed=$((passed + p))
		failed=$((failed + f))
		s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || true)
		skipped=$((skipped + ${s:-0}))
	fi
	if [ $suite_ok = 0 ] && { [ -z "$line" ] || [ "${f:-0}" = 0 ]; }; then
		log "QEMU suite on $flavour failed to run"
		failed=$((failed + 1))
	fi
done

echo
echo "vtier: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
