#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh [options] TEST
#
# Boots one in-guest test (qemu-test/tests/TEST.sh, already inside the
# initramfs) under QEMU/TCG with the virtio disks its header asks for, and
# decides PASS or FAIL from the console log:
#
#   PASS  the guest printed "VTIER-TEST-RESULT: PASS TEST" and the kernel
#         log has no KASAN, lockdep, WARNING, BUG, Oops ... line;
#   FAIL  anything else: a FAIL marker, no marker at all (timeout, panic,
#         hang), or a kernel splat even when the script passed.
#
# Options:
#   --kernel DIR|bzImage   built kernel tree or image (required)
#   --initrd FILE          initramfs from mkinitramfs.sh (required)
#   --flavour NAME         release or debug: the kernel booted (log directory
#                          qemu-test/out/NAME; default: release)
#   --timeout-scale N      multiply the test's timeout by N (default 1)
#   --append "ARGS"        extra kernel command line (e.g. vtier_fio_mb=128)
#   --kvm                  use KVM instead of TCG (hangs on some hosts)
#   --quiet                do not print the log tail of a failing test
#   --script FILE          read the header from FILE instead of
#                          qemu-test/tests/TEST.sh (the guest still runs
#                          /tests/TEST.sh; the demo uses this)
#   --live                 show the guest's own output on stderr while it
#                          runs (kernel lines only when they are splats)
#   --boots N              boot N times instead of the header's vtier-boots
#                          (the power-cut soak runs hundreds)
#
# Test header lines (in the first 30 lines of TEST.sh):
#   # vtier-disks: 512M 256M ...    one raw virtio disk per size (vda, vdb, ...)
#   # vtier-timeout: SECONDS        host timeout for a release kernel (each boot)
#   # vtier-append: ARGS            extra kernel command line for this test
#   # vtier-kmemleak: REASON        boot with kmemleak tracking allocations
#                                   (on a kernel that has it: the debug
#                                   one), scanned after the test; every
#                                   other test boots with kmemleak=off,
#                                   since under TCG its bookkeeping makes a
#                                   boot and a test two to three times
#                                   slower
#   # vtier-boots: N                boot N times on the same disk images (a
#                                   crash test; default 1, see below)
#   # vtier-boots-debug: N          boots on the debug kernel (--flavour
#                                   debug), where each boot is slower
#   # vtier-alloc-failures: injected
#                                   the test injects memory allocation
#                                   failures (failslab, fail_page_alloc):
#                                   the kernel's reports of a failed
#                                   allocation (warn_alloc: a "page
#                                   allocation failure" or "vmalloc error"
#                                   line, then its stack trace up to
#                                   </TASK>) are not splats; every other
#                                   splat line still fails the test
#
# The guest may ask the host for a QEMU monitor (HMP) command by printing
#
#   VTIER-HOST N: COMMAND :END
#
# with N counting from 1; each N is run once, in order, however often the
# line is printed (a guest prints it again until it sees the effect, since
# a kernel line on the console can split it). In COMMAND, @IMGk@ stands for
# the image file of disk k (0 = vda) and the disks are the devices disk0,
# disk1, ... on drives drv0, drv1, ...: "device_del disk2" hot-removes vdc.
#
# VTIER_QEMU_LOCK=FILE makes run.sh hold an flock on FILE while QEMU runs,
# so that checkouts sharing the machine boot one guest at a time (TCG
# guests starved of CPU time miss their deadlines).
#
# A test of N boots is told which one it runs in (VTIER_BOOT=1..N, and
# VTIER_BOOTS=N). Every boot but the last must end in a crash: the guest
# prints VTIER-KILL-NOW on the console and goes on working; the host then
# kills QEMU with SIGKILL, so no guest code runs after that moment, and
# boots the next one on the same disks. A boot before the last that
# prints a result, is not killed, or has a kernel splat fails the test;
# the last boot decides as above. Those boots' logs are kept as
# TEST.bootB.log.
#
# A test may report figures by printing "VTIER-FIGURE: TEXT" lines; after
# a PASS they follow its line, indented.
#
# Prints one line "PASS TEST (...)" or "FAIL TEST (reason)" on stdout and
# exits 0 for PASS, 1 for FAIL. The console log is kept in
# qemu-test/out/FLAVOUR/TEST.log.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"

kernel='' initrd='' flavour=release scale=1 append='' accel=tcg quiet=0 script='' live=0 boots_opt=''
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--initrd) initrd=$2; shift 2 ;;
	--flavour) flavour=$2; shift 2 ;;
	--timeout-scale) scale=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--kvm) accel=kvm; shift ;;
	--quiet) quiet=1; shift ;;
	--script) script=$2; shift 2 ;;
	--live) live=1; shift ;;
	--boots) boots_opt=$2; shift 2 ;;
	-h | --help) sed -n '3,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# = 1 ] || die "usage: run.sh --kernel DIR --initrd FILE [options] TEST"
test=$1
script=${script:-$VTIER_TOP/qemu-test/tests/$test.sh}
[ -f "$script" ] || die "no test $script"
{ [ -n "$kernel" ] && [ -n "$initrd" ]; } || die "--kernel and --initrd are required"
[ -d "$kernel" ] && kernel=$kernel/arch/x86/boot/bzImage
[ -f "$kernel" ] || die "no kernel image $kernel"
[ -f "$initrd" ] || die "no initramfs $initrd"

header() { sed -n "1,30s/^# $1:[[:space:]]*//p" "$script" | head -1; }
disks=$(header vtier-disks)
timeout_s=$(header vtier-timeout)
timeout_s=${timeout_s:-300}
timeout_s=$(awk -v t="$timeout_s" -v s="$scale" 'BEGIN { printf "%d", t * s }')
test_append=$(header vtier-append)
[ -n "$(header vtier-kmemleak)" ] || test_append="kmemleak=off $test_append"
alloc_failures=$(header vtier-alloc-failures)
boots=$(header vtier-boots)
[ "$flavour" != debug ] || [ -z "$(header vtier-boots-debug)" ] || boots=$(header vtier-boots-debug)
boots=${boots_opt:-$boots}
boots=${boots:-1}
case $boots in [1-9] | [1-9][0-9] | [1-9][0-9][0-9]) ;; *) die "$test: boots '$boots' is not 1..999" ;; esac
[ $live = 0 ] || [ "$boots" = 1 ] || die "--live runs tests of one boot only ($test has $boots)"

outdir=$VTIER_TOP/qemu-test/out/$flavour
mkdir -p "$outdir"
log_file=$outdir/$test.log
host_log=$outdir/$test.host.log
rm -f "$host_log"
work=$(mktemp -d "${TMPDIR:-/tmp}/vtier-$test.XXXXXX")

drives=()
i=0
for size in $disks; do
	truncate -s "$size" "$work/disk$i.img"
	drives+=(-drive "file=$work/disk$i.img,if=none,id=drv$i,format=raw,cache=unsafe,discard=unmap"
		-device "virtio-blk-pci,drive=drv$i,id=disk$i")
	i=$((i + 1))
done

# The guest stops its script a little before the host gives up, so that a
# hung test still reports through the console.
guest_timeout=$((timeout_s > 60 ? timeout_s - 30 : timeout_s))
# no_timer_check: under TCG on a loaded host the early IO-APIC timer
# check can miss its ticks and panic the boot; the timer works regardless.
# watchdog_thresh=30: a soft lockup is reported after 60 s, not 20 s: a TCG
# vCPU thread that the loaded host does not run for a while is no lockup.
cmdline="console=ttyS0 panic=-1 printk.devkmsg=on no_timer_check watchdog_thresh=30 vtier_test=$test"
cmdline+=" vtier_guest_timeout=$guest_timeout $test_append $append"

cpu=max
[ $accel = kvm ] && cpu=host
# qemu_for_boot B: the command line of boot B in ${qemu[@]}.
qemu_for_boot() {
	qemu=(timeout --kill-after=10 "$timeout_s"
		qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m 1G -smp 2
		-nographic -no-reboot
		-monitor "unix:$work/monitor,server=on,wait=off"
		-kernel "$kernel" -initrd "$initrd"
		-append "$cmdline vtier_boot=$1 vtier_boots=$boots"
		"${drives[@]}")
}

# Kernel lines carry a printk time stamp; only those are searched for
# splats, so a test that prints such words itself does not trip this.
KLINE='\[ *[0-9]+\.[0-9]+\]'
SPLAT='BUG:|KASAN:|UBSAN:|WARNING:|Oops|kernel BUG|general protection fault|Call Trace|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|DEBUG_LOCKS_WARN_ON|Kernel panic|Unable to handle|refcount_t:|list_(add|del) corruption|detected stall|soft lockup|hard LOCKUP|blocked for more than'

# A guest that has not reached /init (VTIER-GUEST-UP) by then is hung in
# boot; run_guest stops it and returns BOOT_HANG.
boot_limit=$(awk -v s="$scale" 'BEGIN { printf "%d", (s > 1 ? 300 : 150) }')
BOOT_HANG=200
KILLED=201
qpid=
trap 'rm -rf "$work"; [ -n "$qpid" ] && kill "$qpid" 2>/dev/null' EXIT
trap 'exit 143' TERM INT

# host_commands: runs the guest's VTIER-HOST requests not run yet (see
# the header) through the QEMU monitor, each logged in
# qemu-test/out/FLAVOUR/TEST.host.log.
host_done=0
host_commands() {
	local n cmd
	while :; do
		n=$((host_done + 1))
		cmd=$(tr -d '\r' <"$log_file" | sed -n "s/.*VTIER-HOST $n: \(.*\) :END.*/\1/p" | head -1)
		[ -n "$cmd" ] || return 0
		for ((k = 0; k < 26; k++)); do
			cmd=${cmd//@IMG$k@/$work/disk$k.img}
		done
		echo "host command $n: $cmd" >>"$host_log"
		python3 - "$work/monitor" "$cmd" >>"$host_log" 2>&1 <<'PY' || log "$test: monitor command $n ($cmd) failed"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(5)
def until_prompt():
    out = b""
    while not out.endswith(b"(qemu) "):
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
    return out
until_prompt()
s.sendall(sys.argv[2].encode() + b"\n")
print(until_prompt().decode(errors="replace").replace("\r", ""))
PY
		host_done=$n
	done
}

# Whether /init has run in the boot logged in $log_file: its VTIER-GUEST-UP
# line, or any line a test prints (`+ CMD`, `==> STEP`, its result), in
# case a kernel message on the console split that one line.
GUEST_RAN='VTIER-GUEST-UP|VTIER-TEST-RESULT|^([+]|==>) '
guest_ran() {
	tr -d '\r' <"$log_file" 2>/dev/null | grep -qE "$GUEST_RAN"
}

# fresh_disks: the disk images zeroed again, as before boot 1.
fresh_disks() {
	local i=0 size
	for size in $disks; do
		rm -f "$work/disk$i.img"
		truncate -s "$size" "$work/disk$i.img"
		i=$((i + 1))
	done
}

# run_guest [kill]: runs ${qemu[@]}, the console into $log_file, until QEMU
# exits (its status), and the guest's VTIER-HOST requests meanwhile. With
# "kill", once the guest has printed VTIER-KILL-NOW, QEMU is killed
# (SIGKILL) and KILLED returned.
run_guest() {
	local waited=0 up=0 rc
	host_done=0
	"${qemu[@]}" </dev/null >"$log_file" 2>&1 &
	qpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		if [ $up = 0 ] && guest_ran; then
			up=1
		fi
		if [ $up = 1 ]; then
			if grep -q VTIER-HOST "$log_file" 2>/dev/null; then
				host_commands
			fi
			if [ "${1:-}" = kill ] && grep -q VTIER-KILL-NOW "$log_file" 2>/dev/null; then
				# timeout(1) leads a process group of its own, QEMU in it.
				kill -KILL -- "-$qpid" 2>/dev/null
				{ wait "$qpid"; } 2>/dev/null # no "Killed" notice
				qpid=
				return $KILLED
			fi
			sleep 0.3
			continue
		fi
		if [ "$waited" -ge "$boot_limit" ]; then
			kill "$qpid" 2>/dev/null
			wait "$qpid"
			qpid=
			return $BOOT_HANG
		fi
		sleep 2
		waited=$((waited + 2))
	done
	wait "$qpid"
	rc=$?
	qpid=
	return $rc
}

# Whether the kernel reported a splat before /init ran (see guest_ran).
boot_splat() {
	local early
	early=$(tr -d '\r' <"$log_file" | awk -v ran="$GUEST_RAN" '{ print } $0 ~ ran { exit }')
	grep -E "$KLINE" <<<"$early" | grep -E "$SPLAT" >/dev/null
}

# retry_disks B: before boot B is booted again: for boot 1, disks as
# fresh as they were (should the test have run after all, unseen, it
# starts over); later boots keep theirs, the state of the cuts before.
retry_disks() {
	[ "$1" != 1 ] || fresh_disks
}

# boot_guest B: boot B of $boots, its console into $log_file (TEST.log for
# the last boot, TEST.bootB.log before), booted once more after a hang or
# a splat before /init (no vtier code has run, the disks are untouched);
# sets qrc.
boot_guest() {
	local name=$test kill=''
	if [ "$1" -lt "$boots" ]; then
		name=$test.boot$1
		kill='kill'
	fi
	log_file=$outdir/$name.log
	logs+=("$log_file")
	qemu_for_boot "$1"
	run_guest $kill
	qrc=$?
	if [ $qrc = $BOOT_HANG ]; then
		# Seen about once in 35 boots under TCG, before /init runs (so
		# before any vtier code): the guest spins early in boot. Boot once
		# more and say so, keeping the hung boot's log.
		log "$test: guest not up after ${boot_limit}s, booting again (log kept as $name.hang.log)"
		mv "$log_file" "$outdir/$name.hang.log"
		retry_disks "$1"
		run_guest $kill
		qrc=$?
	elif boot_splat; then
		# Seen on the KASAN kernel about once in 12 boots under TCG: an
		# interrupt during early CPU set-up makes KASAN report
		# rcu_is_watching (swapper, before /init and before vtier.ko is
		# even loaded). Boot once more and say so, keeping the log; a splat
		# in the second boot fails the test as always.
		log "$test: guest kernel splat before /init (no vtier code yet), booting again (log kept as $name.bootsplat.log)"
		mv "$log_file" "$outdir/$name.bootsplat.log"
		retry_disks "$1"
		run_guest $kill
		qrc=$?
	fi
}

# What is wrong with boot B before the last (empty: it crashed as asked).
crash_boot_problem() {
	local m
	m=$(tr -d '\r' <"$log_file" | grep -o "VTIER-TEST-RESULT: .*" | tail -1 || true)
	if [ -n "$m" ]; then
		echo "boot $1 of $boots ended with '${m#VTIER-TEST-RESULT: }' instead of a crash"
	elif [ "$qrc" != $KILLED ]; then
		if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
			echo "boot $1 of $boots: host timeout after ${timeout_s}s, never asked to be killed"
		else
			echo "boot $1 of $boots: QEMU exited with status $qrc, never asked to be killed"
		fi
	fi
}

if [ -n "${VTIER_QEMU_LOCK:-}" ]; then
	exec 8>"$VTIER_QEMU_LOCK"
	flock 8
fi
start=$(date +%s)
logs=()
early_problem=''
set +e
if [ $live = 1 ]; then
	# The guest's own lines from /init on, and kernel lines that are splats.
	qemu_for_boot 1
	logs+=("$log_file")
	"${qemu[@]}" </dev/null 2>&1 | tee "$log_file" |
		KLINE=$KLINE SPLAT=$SPLAT awk '
			BEGIN { kline = ENVIRON["KLINE"]; splat = ENVIRON["SPLAT"] }
			{ sub(/\r$/, "") }
			/VTIER-GUEST-UP/ { up = 1; next }
			/VTIER-TEST-RESULT/ { next }
			!up { next }
			$0 ~ kline { if ($0 ~ splat) { print; fflush() } next }
			{ print; fflush() }' >&2
	qrc=${PIPESTATUS[0]}
else
	b=1
	while [ $b -lt "$boots" ]; do
		boot_guest $b
		early_problem=$(crash_boot_problem $b)
		[ -z "$early_problem" ] || break
		b=$((b + 1))
	done
	[ -n "$early_problem" ] || boot_guest "$boots"
fi
set -e
elapsed=$(($(date +%s) - start))

# A test that injects allocation failures expects the kernel to report
# them: those reports (at most 80 lines each) are left out of the scan.
alloc_reports() {
	if [ -n "$alloc_failures" ]; then
		awk '/page allocation failure:|vmalloc error:/ { skip = 80 }
			skip > 0 { skip--; if ($0 ~ /<\/TASK>/) skip = 0; next }
			{ print }'
	else
		cat
	fi
}
splats=$(cat "${logs[@]}" | tr -d '\r' | grep -E "$KLINE" | alloc_reports | grep -E "$SPLAT" | head -5 || true)
marker=$(tr -d '\r' <"$log_file" | grep -o "VTIER-TEST-RESULT: .*" | tail -1 || true)
boot=$(tr -d '\r' <"$log_file" | sed -n 's/.*VTIER-GUEST-UP \([0-9.]*s\).*/\1/p' | sed -n 1p)

verdict=FAIL
case $marker in
"VTIER-TEST-RESULT: PASS $test")
	verdict=PASS
	reason=
	;;
"VTIER-TEST-RESULT: FAIL "*) reason=${marker#VTIER-TEST-RESULT: FAIL "$test" } ;;
*)
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		reason="(no result: host timeout after ${timeout_s}s)"
	else
		reason="(no result: QEMU exited with status $qrc)"
	fi
	;;
esac
if [ -n "$early_problem" ]; then
	# A boot before the last went wrong; its log is $log_file.
	verdict=FAIL
	case $marker in
	"VTIER-TEST-RESULT: FAIL "*) ;;
	*) reason="($early_problem)" ;;
	esac
fi
if [ -n "$splats" ]; then
	verdict=FAIL
	reason="$reason (kernel splat: $(head -1 <<<"$splats" | sed 's/^.*\] //' | cut -c1-120))"
fi

if [ $verdict = PASS ]; then
	printf 'PASS %-14s %4ds (guest up in %s)\n' "$test" "$elapsed" "${boot:-?}"
	# The figures a test reports (VTIER-FIGURE: ...), one line each.
	tr -d '\r' <"$log_file" | sed -n 's/^VTIER-FIGURE: /     /p'
	exit 0
fi
printf 'FAIL %-14s %4ds %s\n' "$test" "$elapsed" "$reason"
if [ $quiet = 0 ]; then
	{
		echo "---- last 40 lines of $log_file ----"
		tr -d '\r' <"$log_file" | tail -40
		if [ -n "$splats" ]; then
			echo "---- kernel splat lines ----"
			echo "$splats"
		fi
		echo "----"
	} >&2
fi
exit 1
