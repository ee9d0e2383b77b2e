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
# --show-output: the crash harnesses print what they tried (crash points,
# device losses, bytes checked); libtest would otherwise keep it, and a
# second run only to print it took three minutes.
cargo test --workspace -- --show-output 2>&1 | tee "$log_dir/cargo.log" || cargo_ok=0
count_cargo "$log_dir/cargo.log"
[ $cargo_ok = 1 ] || { log "cargo test failed"; failed=$((failed + 1)); }
log "crash harnesses"
grep -hoE "[a-z ():]*crash points tried.*|stripe harness:.*" "$log_dir/cargo.log" | sort -u || true

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
