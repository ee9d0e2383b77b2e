#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# run-all.sh [--only NAME[,NAME...]] [--kvm] FLAVOUR      (release | debug)
# (options may also follow FLAVOUR)
#
# Runs the in-guest test suite on one kernel flavour: gets the kernel from
# scripts/build-kernel.sh, vtier.ko from scripts/build-module.sh, builds
# vtierctl and the initramfs, boots every qemu-test/tests/*.sh (smoke first)
# one after the other, prints one line per test and finally
#
#   guest-FLAVOUR: N passed, M failed
#
# and exits non-zero if any test failed. A test whose header says
# "# vtier-needs: module" fails without booting when the module cannot be
# built; the others still run.
#
# Environment:
#   VTIER_TESTS     tests to run (names, space or comma separated), like --only
#   VTIER_FIO_MB    MiB that fio-verify writes (default 64 release, 24 debug)
#   VTIER_MANY_MB   MiB of each many-extents job (default 32; the test's own
#                   default, make demo's workload, is 48)
#   VTIER_BOOTS_POWERCUT  boots of the power-cut test instead of its header's
#                   (scripts/soak.sh sets it)
#   VTIER_QEMU_APPEND  extra kernel command line for every test
#   VTIER_DEBUG_ALL=1  on the debug kernel, run the release-only tests too
#                   (most are release-only for the CI time alone; their
#                   lines say)
#
# A test whose header says "# vtier-release-only: REASON" runs on the
# release kernel only; on the debug kernel it is listed as SKIP with its
# reason, and the summary counts it as skipped. "# vtier-debug-only:
# REASON" is the converse: the test runs on the debug kernel only (it
# needs one of its options, e.g. fault injection) and is a SKIP on the
# release kernel.
# "# vtier-disabled: REASON" skips a test on both kernels with its reason
# printed: a test that finds a fault not yet fixed.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"

only=${VTIER_TESTS:-}
kvm=()
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=$2; shift 2 ;;
	--only=*) only=${1#--only=}; shift ;;
	--kvm) kvm=(--kvm); shift ;;
	-h | --help) sed -n '3,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) args+=("$1"); shift ;;
	esac
done
set -- "${args[@]}"
[ $# = 1 ] || die "usage: run-all.sh [--only NAME[,NAME]] [--kvm] release|debug"
flavour=$1
case $flavour in
release) scale=1 fio_mb=${VTIER_FIO_MB:-64} many_mb=${VTIER_MANY_MB:-32} ;;
# The KASAN/lockdep kernel is several times slower under TCG: the data
# volumes are smaller there, the code paths the same.
debug) scale=4 fio_mb=${VTIER_FIO_MB:-24} many_mb=${VTIER_MANY_MB:-32} ;;
*) die "unknown flavour $flavour" ;;
esac
qt=$VTIER_TOP/qemu-test

# The tests, smoke first, then by name; filtered by --only / VTIER_TESTS.
tests=()
for t in "$qt"/tests/*.sh; do
	t=$(basename "$t" .sh)
	[ "$t" = smoke ] && continue
	tests+=("$t")
done
tests=(smoke "${tests[@]}")
if [ -n "$only" ]; then
	wanted=()
	for t in ${only//,/ }; do
		[ -f "$qt/tests/$t.sh" ] || die "no test named $t (qemu-test/tests/$t.sh)"
		wanted+=("$t")
	done
	tests=("${wanted[@]}")
fi

log "guest-$flavour: kernel"
kdir=$("$VTIER_TOP/scripts/build-kernel.sh" "$flavour")
[ -f "$kdir/arch/x86/boot/bzImage" ] || die "no bzImage in $kdir"

module=''
module_problem=''
if [ ! -x "$VTIER_TOP/scripts/build-module.sh" ]; then
	module_problem='scripts/build-module.sh does not exist yet'
else
	log "guest-$flavour: module"
	if module=$("$VTIER_TOP/scripts/build-module.sh" "$flavour"); then
		module=$(tail -1 <<<"$module")
		[ -f "$module" ] || { module_problem="build-module.sh printed '$module', not a file"; module=''; }
	else
		module=''
		module_problem='scripts/build-module.sh failed'
	fi
fi
[ -z "$module_problem" ] || log "guest-$flavour: no module: $module_problem"

log "guest-$flavour: vtierctl"
(cd "$VTIER_TOP" && cargo build --quiet --release -p vtierctl) || die "cargo build -p vtierctl failed"
vtierctl=${CARGO_TARGET_DIR:-$VTIER_TOP/target}/release/vtierctl

log "guest-$flavour: initramfs"
# In this checkout's target directory: two checkouts testing at once must
# not boot each other's tests or module.
initrd_dir=${CARGO_TARGET_DIR:-$VTIER_TOP/target}/initramfs
mkdir -p "$initrd_dir"
initrd=$initrd_dir/guest-$flavour.cpio
extra=("$vtierctl=/usr/bin/vtierctl" "$qt/tests=/tests")
# Device-mapper modules a test may load (dm-log-writes under a volume's
# members): in /dm of the guest, /dm/load-order naming them dependencies
# first. The kernel builds them as modules (qemu-test/kconfig).
dm_dir=$initrd_dir/dm-$flavour
rm -rf "$dm_dir"
mkdir -p "$dm_dir"
dm_order=()
add_dm_module() { # NAME as modinfo spells it (dm-log-writes, dm-mod)
	local m=$1 ko dep
	for dep in "${dm_order[@]}"; do
		[ "$dep" = "$m.ko" ] && return 0
	done
	ko=$(find "$kdir" -name "$m.ko" -o -name "${m//-/_}.ko" | head -1)
	[ -n "$ko" ] || die "$m.ko not in $kdir"
	for dep in $(modinfo -F depends "$ko" | tr ',' ' '); do
		add_dm_module "$dep"
	done
	cp "$ko" "$dm_dir/$m.ko"
	dm_order+=("$m.ko")
}
add_dm_module dm-log-writes
printf '%s\n' "${dm_order[@]}" >"$dm_dir/load-order"
extra+=("$dm_dir=/dm")
[ -n "$module" ] && extra+=("$module=/vtier.ko")
"$qt/mkinitramfs.sh" "$initrd" "${extra[@]}"

append="vtier_fio_mb=$fio_mb vtier_many_mb=$many_mb vtier_flavour=$flavour ${VTIER_QEMU_APPEND:-}"
passed=0
failed=0
skipped=0
failed_names=()
suite_start=$(date +%s)
for t in "${tests[@]}"; do
	why=$(sed -n 's/^# vtier-disabled: //p' "$qt/tests/$t.sh")
	if [ -n "$why" ]; then
		printf 'SKIP %-14s    0s (disabled: %s)\n' "$t" "$why"
		skipped=$((skipped + 1))
		continue
	fi
	why=$(sed -n 's/^# vtier-release-only: //p' "$qt/tests/$t.sh")
	if [ "$flavour" != release ] && [ -n "$why" ] && [ "${VTIER_DEBUG_ALL:-0}" != 1 ]; then
		printf 'SKIP %-14s    0s (release kernel only: %s)\n' "$t" "$why"
		skipped=$((skipped + 1))
		continue
	fi
	why=$(sed -n 's/^# vtier-debug-only: //p' "$qt/tests/$t.sh")
	if [ "$flavour" != debug ] && [ -n "$why" ]; then
		printf 'SKIP %-14s    0s (debug kernel only: %s)\n' "$t" "$why"
		skipped=$((skipped + 1))
		continue
	fi
	if [ -z "$module" ] && grep -q '^# vtier-needs:.*module' "$qt/tests/$t.sh"; then
		printf 'FAIL %-14s    0s (needs the module: %s)\n' "$t" "$module_problem"
		failed=$((failed + 1))
		failed_names+=("$t")
		continue
	fi
	boots=()
	[ "$t" != powercut ] || [ -z "${VTIER_BOOTS_POWERCUT:-}" ] || boots=(--boots "$VTIER_BOOTS_POWERCUT")
	if nice "$qt/run.sh" --kernel "$kdir" --initrd "$initrd" --flavour "$flavour" \
		--timeout-scale "$scale" --append "$append" "${kvm[@]}" "${boots[@]}" "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names+=("$t")
	fi
done
log "guest-$flavour: ${#tests[@]} tests in $(($(date +%s) - suite_start))s; logs in qemu-test/out/$flavour/"
[ $failed = 0 ] || log "guest-$flavour: failed: ${failed_names[*]}"
echo "guest-$flavour: $passed passed, $failed failed, $skipped skipped"
[ $failed = 0 ]
