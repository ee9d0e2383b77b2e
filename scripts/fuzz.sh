#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# fuzz.sh: runs the cargo fuzz targets of engine/fuzz/, one after the
# other, as `make fuzz` does.
#
#   FUZZ_SECONDS=N     seconds per target (default 60)
#   FUZZ_RUNS=N        executions per target; without FUZZ_SECONDS the
#                      target then runs until it has done them
#   FUZZ_TARGETS="a b" only these targets (default: every target)
#
# Installs cargo-fuzz if it is missing; needs the nightly toolchain (installed
# with rustup if absent). Each target runs alone (-jobs=1) at the lowest
# priority. Corpora stay in target/fuzz-corpus/TARGET (kept between runs,
# not in git), crash inputs go to target/fuzz-artifacts/TARGET, logs to
# target/fuzz-logs/TARGET/ (run.log; libFuzzer's fuzz-0.log of the job).
# Prints one line per target as it finishes, "fuzz TARGET: N executions,
# C crashes", then a table of every target (executions, executions per
# second, seconds, crashes) and a total line, and exits non-zero if any
# target crashed or did not run.
#
# The targets are built without a sanitizer (-s none): the engine has no
# unsafe code, so AddressSanitizer finds nothing Rust's own checks would
# not, and it costs half the speed. Debug assertions and overflow checks
# stay on. bitmap_page is also built without comparison tracing, in a
# target directory of its own: the allocator scans whole pages byte by
# byte, and tracing each of those comparisons makes it four times slower.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$VTIER_TOP"

fuzz_dir=$VTIER_TOP/engine/fuzz
seconds=${FUZZ_SECONDS:-}
runs=${FUZZ_RUNS:-}
if [ -z "$seconds" ] && [ -z "$runs" ]; then
	seconds=60
fi
for v in "$seconds" "$runs"; do
	[[ -z $v || $v =~ ^[0-9]+$ ]] || die "FUZZ_SECONDS and FUZZ_RUNS take a number of seconds or runs"
done

command -v rustup >/dev/null || die "rustup not found: run scripts/setup.sh"
if ! rustup toolchain list | grep -q '^nightly'; then
	log "installing the nightly toolchain (cargo fuzz needs it)"
	rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
	log "installing cargo-fuzz"
	cargo install cargo-fuzz --locked
fi

all_targets=$(cargo +nightly fuzz list --fuzz-dir "$fuzz_dir")
targets=${FUZZ_TARGETS:-$all_targets}
for t in $targets; do
	grep -qx -- "$t" <<<"$all_targets" || die "no fuzz target '$t' (targets: $(echo "$all_targets" | tr '\n' ' '))"
done

# Build options and target directory of one target.
build_flags() {
	case $1 in
	bitmap_page) echo "-s none --no-trace-compares --target-dir $VTIER_TOP/target/fuzz-build-notc" ;;
	*) echo "-s none --target-dir $VTIER_TOP/target/fuzz-build" ;;
	esac
}

total_execs=0 total_crashes=0 failed=0
rows=()
for t in $targets; do
	corpus=$VTIER_TOP/target/fuzz-corpus/$t
	artifacts=$VTIER_TOP/target/fuzz-artifacts/$t
	logdir=$VTIER_TOP/target/fuzz-logs/$t
	logfile=$logdir/run.log
	mkdir -p "$corpus" "$artifacts" "$logdir"
	read -r -a flags <<<"$(build_flags "$t")"
	limits=()
	[ -n "$seconds" ] && limits+=("-max_total_time=$seconds")
	[ -n "$runs" ] && limits+=("-runs=$runs")
	log "fuzzing $t (${seconds:+${seconds}s}${seconds:+${runs:+, }}${runs:+$runs runs})"
	rc=0 start=$SECONDS
	# libFuzzer writes the job's output to fuzz-0.log in the current
	# directory, then copies it to its own output.
	(cd "$logdir" && nice -n 19 cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" "${flags[@]}" "$t" "$corpus" -- \
		-jobs=1 -print_final_stats=1 "${limits[@]}" \
		-artifact_prefix="$artifacts/") >"$logfile" 2>&1 || rc=$?
	elapsed=$((SECONDS - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$logfile" | tail -1)
	if [ -z "$execs" ]; then
		# No final statistics (killed): the last progress line.
		execs=$(sed -n 's/^#\([0-9][0-9]*\)\t.*/\1/p' "$logfile" | tail -1)
	fi
	rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$logfile" | tail -1)
	crashes=$(grep -c 'Test unit written to' "$logfile" || true)
	if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then
		# Failed without writing an input: a build error, or killed.
		crashes=1
		log "$t failed (exit $rc) before any crash input was written; see $logfile"
	fi
	if [ -z "$execs" ]; then
		execs=0
		failed=$((failed + 1))
	fi
	echo "fuzz $t: $execs executions, $crashes crashes"
	rows+=("$(printf '%-14s %12s %8s %8s %8s' "$t" "$execs" "${rate:--}" "$elapsed" "$crashes")")
	total_execs=$((total_execs + execs))
	total_crashes=$((total_crashes + crashes))
	if [ "$crashes" != 0 ]; then
		grep -E 'panicked at|Test unit written to' "$logfile" >&2 || true
	fi
done
echo
printf '%-14s %12s %8s %8s %8s\n' target executions exec/s seconds crashes
printf '%s\n' "${rows[@]}"
echo "fuzz total: $total_execs executions, $total_crashes crashes, $(wc -w <<<"$targets") targets"
[ "$total_crashes" = 0 ] && [ "$failed" = 0 ]
