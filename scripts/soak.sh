#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# soak.sh [CUTS] [FLAVOUR]   (default: 200 cuts, release kernel)
#
# Power cuts of the kernel path, many of them: boots the power-cut guest
# test (qemu-test/tests/powercut.sh) CUTS+1 times on the same disks; QEMU
# is killed with SIGKILL in the middle of fsynced and unsynced writes and
# background destaging in all but the last boot, and every boot after a
# cut recovers the volume and checks every acknowledged write. Ends with
#
#   power cuts: N, acknowledged writes checked: W, lost: 0
#
# and exits non-zero if any check failed (the test stops at the first).
# `make test` runs the same test with 6 cuts (2 on the debug kernel); this
# is the long run (200 cuts for a release: one to two hours under TCG).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cuts=${1:-200}
flavour=${2:-release}
case $cuts in '' | *[!0-9]*) die "cuts '$cuts' is not a number" ;; esac
{ [ "$cuts" -ge 1 ] && [ "$cuts" -le 998 ]; } || die "cuts must be 1..998"

"$VTIER_TOP/scripts/setup.sh"
log "soak: $cuts power cuts on the $flavour kernel"
# run-all.sh builds what the guest needs; --boots reaches run.sh through it.
VTIER_BOOTS_POWERCUT=$((cuts + 1)) "$VTIER_TOP/qemu-test/run-all.sh" --only powercut "$flavour" |
	tee "$VTIER_TOP/target/soak.log"
line=$(grep -E '^ *power cuts: ' "$VTIER_TOP/target/soak.log" | tail -1 | sed 's/^ *//' || true)
[ -n "$line" ] || die "soak: no figures (see qemu-test/out/$flavour/powercut.log)"
echo "$line"
