#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 64M 32M 32M 32M 32M
# vtier-timeout: 300
# vtier-needs: module
# vtier-release-only: the CI budget: userspace pacing the scrub and rebuild steps that capacity and member-loss drive on the release kernel; under KASAN the stripe code runs in fio-verify and powercut
#
# `vtierctl scrub`, `vtierctl rebuild` and `vtierctl stop` on a running
# volume (vda + vdb vdc vdd, 2+1 stripes; vde a spare). Asserts:
# - `scrub` runs a whole pass (its line names stripes 0..total) and the
#   status then counts checked stripes, none unrepairable;
# - with vdc failing every I/O (fail_make_request) the data reads back
#   (reconstructed), `replace` puts vde in its place and `rebuild`, in
#   steps of 8 stripes, runs it to its end: every member ok, and
#   `rebuild` again has nothing to do;
# - a paced scrub (--rate 100) passes again, taking no less than the
#   rate allows, and the 16 MiB read back match
#   the sha256 taken of the file they were written from;
# - `stop` of a volume whose device is open is refused with that reason
#   and leaves it up; closed, it stops; scrub of an unknown volume fails.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

MiB=1048576
FI=/sys/kernel/debug/fail_make_request

status_line() { grep -m1 "$1" "$VT/m/status" || true; }

vtier_load
run vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd
run vtierctl assemble m /dev/vda /dev/vdb /dev/vdc /dev/vdd
dev=/dev/$(cat "$VT/m/disk")
wait_bdev "$dev" m

step "16 MiB written and destaged"
run dd if=/dev/urandom of=/tmp/pat bs=1M count=16
sum=$(sha256sum /tmp/pat | cut -d' ' -f1)
run dd if=/tmp/pat of="$dev" bs=1M oflag=direct conv=fsync
attr_write "$VT/m/destage" 1000000
total=$(cut -d/ -f2 "$VT/m/scrub")

step "vtierctl scrub: a whole pass"
out=$(vtierctl scrub m --step 32) || fail "vtierctl scrub failed: $out"
echo "$out"
case $out in *"m: scrubbed stripes 0..$total in "*) ;; *) fail "scrub did not run a whole pass of $total stripes: $out" ;; esac
checked=$(status_line '^scrub:' | sed -n 's/.* checked \([0-9]*\) .*/\1/p')
[ "${checked:-0}" -gt 0 ] || fail "no stripe checked: $(status_line '^scrub:')"
status_line '^scrub:' | grep -q ' unrepairable 0$' || fail "unrepairable stripes: $(status_line '^scrub:')"

step "vdc fails; replaced by vde; vtierctl rebuild"
[ -d $FI ] || fail "no $FI (CONFIG_FAIL_MAKE_REQUEST, debugfs)"
echo 100 >$FI/probability
echo -1 >$FI/times
echo 0 >$FI/verbose
echo 1 >/sys/block/vdc/make-it-fail
[ "$(sha_range "$dev" 0 $((16 * MiB)))" = "$sum" ] || fail "degraded reads returned wrong data"
grep -q '^member 1: failed' "$VT/m/status" || fail "member 1 (vdc) not failed: $(grep '^member' "$VT/m/status")"
echo 0 >/sys/block/vdc/make-it-fail
attr_write "$VT/m/replace" "1 /dev/vde"
out=$(vtierctl rebuild m --step 8) || fail "vtierctl rebuild failed: $out"
echo "$out"
case $out in "m: capacity member 1 rebuilt ("*" stripes in "*) ;; *) fail "rebuild said: $out" ;; esac
[ "$(cat "$VT/m/rebuild")" = none ] || fail "rebuild still running: $(cat "$VT/m/rebuild")"
[ "$(grep -c '^member [0-9]: ok' "$VT/m/status")" = 3 ] || fail "not every member ok: $(grep '^member' "$VT/m/status")"
out=$(vtierctl rebuild m) || fail "vtierctl rebuild (none running) failed: $out"
case $out in *"no rebuild to run"*) ;; *) fail "rebuild with none running said: $out" ;; esac

step "a paced scrub; the data"
out=$(vtierctl scrub m --rate 100) || fail "paced scrub failed: $out"
echo "$out"
# At 100 stripes a second a pass of $total stripes takes at least
# total/100 s, less the last step's share (unpaced, 2 s here).
secs=$(echo "$out" | sed -n 's/.* in \([0-9.]*\) s$/\1/p')
awk -v s="${secs:-0}" -v t="$total" 'BEGIN { exit !(s >= (t - 16) / 100) }' ||
	fail "a scrub of $total stripes at --rate 100 took only ${secs:-?} s"
status_line '^scrub:' | grep -q ' unrepairable 0$' || fail "unrepairable stripes after the rebuild: $(status_line '^scrub:')"
[ "$(sha_range "$dev" 0 $((16 * MiB)))" = "$sum" ] || fail "the 16 MiB read back differ after the rebuild"

step "stop while the device is open; unknown volumes"
exec 3<"$dev"
if out=$(vtierctl stop m 2>&1); then
	fail "stop of an open device succeeded: $out"
fi
echo "$out"
case $out in *"$dev is open or mounted"*) ;; *) fail "stop of an open device said: $out" ;; esac
[ "$(cat "$VT/m/power")" = 1 ] || fail "m not powered after the refused stop"
exec 3<&-
run vtierctl stop m
if out=$(vtierctl scrub m 2>&1); then
	fail "scrub of a stopped volume succeeded: $out"
fi
case $out in *"m: no such volume"*) ;; *) fail "scrub of an unknown volume said: $out" ;; esac
vtier_unload
echo "maintenance: scrub, rebuild and stop as expected"
