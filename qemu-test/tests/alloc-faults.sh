#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 128M 64M 64M 64M
# vtier-timeout: 120
# vtier-needs: module
# vtier-kmemleak: the error paths of failed allocations are where a leak is likeliest
# vtier-debug-only: failslab and fail_page_alloc are in the debug kernel only (qemu-test/kconfig/debug.config)
# vtier-alloc-failures: injected
#
# Memory allocations failing while fio verifies through /dev/vtier0.
# failslab and fail_page_alloc fail 2 % and 1 % of the allocations of
# the tasks marked make-it-fail (task-filter), whatever their gfp flags
# (ignore-gfp-wait N, and min-order 0, so that order-0 pages fail too):
# the kworkers serving the volume's requests and background destaging
# (found by their workqueue's name in their comm as soon as they serve
# it), and a shell that writes `destage` and `scrub` meanwhile.
# Asserts:
# - slab allocations failed (failslab's `times` counter went down);
#   page allocation failures are counted the same way and printed, not
#   required: the members' bounce pages and bios are set up at open, so
#   the I/O path asks for few pages, and a run may see none fail;
# - errors are allowed, wrong data is not: fio (verify=crc32c,
#   continue_on_error) reports no verify mismatch, only I/O errors; a
#   write that failed is not verified (fio drops it from its log);
# - no kernel splat (run.sh; the kernel's own "page allocation failure"
#   reports of the injected failures are expected here, see the header
#   vtier-alloc-failures in run.sh) and no leak (kmemleak, after the test);
# - after the faults stop, a power cycle (power=0, power=1) brings the
#   volume back with every fsynced write intact: the data fsynced before
#   the faults (fio verify_only, and a region against its sha256 taken
#   at write time), and every 1 MiB chunk whose write + fsync (dd
#   conv=fsync) succeeded while allocations failed;
# - the volume then takes and verifies new writes.
set -eu
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
# shellcheck source=SCRIPTDIR/../guest/lib.sh
. /usr/lib/vtier/lib.sh

FS=/sys/kernel/debug/failslab
FP=/sys/kernel/debug/fail_page_alloc
AF=$VT/af
TIMES=1000000
[ -d $FS ] || fail "no $FS (CONFIG_FAILSLAB, debugfs)"
[ -d $FP ] || fail "no $FP (CONFIG_FAIL_PAGE_ALLOC, debugfs)"

vtier_load
vtier_format /dev/vda /dev/vdb /dev/vdc /dev/vdd
vtier_create af /dev/vda /dev/vdb /dev/vdc /dev/vdd
# Background destaging runs while the faults are on.
attr_write "$AF/destage_watermarks" "10 5"
disk=$(vtier_up af)
dev=/dev/$disk

# Regions (MiB): A 0-4 fio, fsynced before the faults; C 4-6 dd,
# fsynced before; B 8-12 fio under faults; D 16-24 dd + fsync per MiB
# under faults; E 32-34 fio after the faults.
cat >/tmp/base.fio <<JOB
[base]
filename=$dev
ioengine=libaio
direct=1
iodepth=4
rw=randwrite
bsrange=4k-64k
size=4M
verify=crc32c
verify_fatal=1
do_verify=1
end_fsync=1
JOB
cat >/tmp/faults.fio <<JOB
[faults]
filename=$dev
ioengine=libaio
direct=1
iodepth=4
rw=randwrite
bsrange=4k-64k
offset=8M
size=4M
verify=crc32c
do_verify=1
continue_on_error=all
JOB

step "before the faults: 4 MiB with fio (verify, end_fsync), 2 MiB with dd conv=fsync"
fio /tmp/base.fio >/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "fio before the faults failed"; }
run dd if=/dev/urandom of=/tmp/c bs=1M count=2
run dd if=/tmp/c of="$dev" bs=1M seek=4 oflag=direct conv=fsync
c_sum=$(sha256sum </tmp/c | cut -d' ' -f1)

step "failslab + fail_page_alloc on the volume's kworkers and a control shell"
for d in $FS $FP; do
	echo Y >"$d/task-filter"
	echo N >"$d/ignore-gfp-wait"
	echo 0 >"$d/verbose"
	echo 0 >"$d/space"
	echo 1 >"$d/interval"
	echo 2 >"$d/probability"
	echo $TIMES >"$d/times"
done
# Order-0 pages fail too (the default min-order 1 spares them), at 1 %:
# a request allocates a page per block of member I/O.
echo 0 >$FP/min-order
echo 1 >$FP/probability
echo N >$FP/ignore-gfp-highmem

# Marks every kworker that has served the volume's workqueue (its comm
# names the last workqueue it worked for) until /tmp/mark.stop exists.
mark_loop() {
	while [ ! -e /tmp/mark.stop ]; do
		for c in /proc/[0-9]*/comm; do
			case $(cat "$c" 2>/dev/null) in
			kworker*vtier-af*)
				p=${c%/comm}
				if [ "$(cat "$p/make-it-fail" 2>/dev/null)" != 1 ]; then
					echo 1 >"$p/make-it-fail" 2>/dev/null && echo "${p#/proc/} $(cat "$c")" >>/tmp/marked
				fi
				;;
			esac
		done
		sleep 0.3
	done
}
: >/tmp/marked
: >/tmp/ctl.err
mark_loop &
mark_pid=$!
# A control shell whose own allocations fail too: configfs writes of
# destage and scrub (builtins, and a sleep between rounds).
(
	echo 1 >/proc/self/make-it-fail
	n=0
	while [ ! -e /tmp/mark.stop ] && [ $n -lt 400 ]; do
		n=$((n + 1))
		echo 2 >"$AF/destage" 2>/dev/null || echo "destage failed" >>/tmp/ctl.err
		echo 4 >"$AF/scrub" 2>/dev/null || echo "scrub failed" >>/tmp/ctl.err
		read -r _ <"$AF/status" 2>/dev/null || true
		# A pause for fio's requests (a fork that may fail too).
		sleep 0.3 2>/dev/null || true
	done
) &
ctl_pid=$!

# D: 1 MiB chunks, each written and fsynced with dd; the ones that
# succeed are listed with their sha256 in /tmp/synced.
: >/tmp/synced
(
	i=0
	while [ $i -lt 8 ]; do
		dd if=/dev/urandom of=/tmp/d$i bs=1M count=1 2>/dev/null
		if dd if=/tmp/d$i of="$dev" bs=1M seek=$((16 + i)) oflag=direct conv=fsync 2>/dev/null; then
			echo "$i $(sha256sum </tmp/d$i | cut -d' ' -f1)" >>/tmp/synced
		fi
		i=$((i + 1))
	done
) &
d_pid=$!

fio_rc=0
fio /tmp/faults.fio >/tmp/faults.out 2>&1 || fio_rc=$?
wait $d_pid
touch /tmp/mark.stop
wait $ctl_pid || true
wait $mark_pid
slab_failed=$((TIMES - $(cat $FS/times)))
page_failed=$((TIMES - $(cat $FP/times)))
# Faults off for everyone.
for d in $FS $FP; do
	echo 0 >"$d/probability"
done
for f in /proc/[0-9]*/make-it-fail; do
	echo 0 >"$f" 2>/dev/null || true
done
echo "kworkers marked:"
cat /tmp/marked
grep -E 'err=|error' /tmp/faults.out | head -8 || true
errors=$(sed -n 's/^requests: .* errors \([0-9]*\).*/\1/p' "$AF/status")
echo "VTIER-FIGURE: alloc-faults: injected failslab $slab_failed, fail_page_alloc $page_failed; requests failed $errors; fio status $fio_rc; chunks fsynced under faults $(wc -l </tmp/synced)/8; control writes failed $(wc -l </tmp/ctl.err)"
[ -s /tmp/marked ] || fail "no kworker of the volume was found to mark"
[ "$slab_failed" -gt 0 ] || fail "failslab injected no failure"
if grep -E 'verify failed|bad magic|bad header|verify: |bad pattern' /tmp/faults.out | head -5; then
	fail "fio read back wrong data while allocations failed"
fi
grep -q 'err=' /tmp/faults.out || { cat /tmp/faults.out; fail "fio under faults printed no result"; }
dmesg | grep -E 'af: ' | tail -5 || true

step "faults off: power cycle, fsynced data intact"
vtier_down af
disk=$(vtier_up af)
dev=/dev/$disk
dmesg | grep -E 'af: (recovered|vtier)' | tail -3 || true
sed -i "s|^filename=.*|filename=$dev|" /tmp/base.fio
fio --verify_only /tmp/base.fio >/tmp/fio.out 2>&1 || {
	st=$?
	cat /tmp/fio.out
	fail "fio verify_only of the data fsynced before the faults failed (status $st)"
}
[ "$(sha_range "$dev" 4194304 2097152)" = "$c_sum" ] || fail "the dd region fsynced before the faults reads back wrong"
while read -r i sum; do
	[ "$(sha_range "$dev" $(((16 + i) << 20)) 1048576)" = "$sum" ] ||
		fail "chunk $i, fsynced while allocations failed, reads back wrong after the power cycle"
done </tmp/synced
# Region B: whatever each block holds, it reads without an error.
sha_range "$dev" 8388608 4194304 >/dev/null
echo "fsynced data intact: fio region, dd region, $(wc -l </tmp/synced) chunks written under faults"

step "new writes verify after the faults"
cat >/tmp/after.fio <<JOB
[after]
filename=$dev
ioengine=libaio
direct=1
iodepth=4
rw=randwrite
bsrange=4k-64k
offset=32M
size=2M
verify=crc32c
verify_fatal=1
do_verify=1
JOB
fio /tmp/after.fio >/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "fio after the faults failed"; }

vtier_down af
run rmdir "$AF"
vtier_unload
