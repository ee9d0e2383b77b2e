# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
# Helpers for the in-guest tests (busybox sh). Source it:
#   . /usr/lib/vtier/lib.sh
# A test fails by calling `fail REASON` (or by exiting non-zero under set -e);
# /init turns that into the result line the host reads.

VT=/sys/kernel/config/vtier
VTIER_KO=/vtier.ko

fail() {
	echo "TEST FAILED: $*" >&2
	printf '%s\n' "$*" >/tmp/vtier-fail-reason
	exit 1
}

step() { echo "==> $*"; }

# run CMD...: show the command, run it, fail if it fails.
run() {
	echo "+ $*"
	"$@" || fail "command failed (status $?): $*"
}

# Like run, but for a shell snippet: run_sh 'echo 1 > /x'
run_sh() {
	echo "+ $1"
	sh -c "$1" || fail "command failed (status $?): $1"
}

have_module() { [ -f "$VTIER_KO" ] || fail "no $VTIER_KO in the guest (module not built?)"; }

vtier_load() {
	have_module
	run insmod "$VTIER_KO"
	[ -d "$VT" ] || fail "insmod succeeded but $VT did not appear"
}

vtier_unload() {
	run rmmod vtier
	[ ! -d "$VT" ] || fail "rmmod succeeded but $VT is still there"
	! grep -q '^vtier ' /proc/modules || fail "vtier still in /proc/modules after rmmod"
}

# vtier_format [--force] PERF [CAP...]: --force when a device formatted
# before is formatted again (vtierctl refuses it otherwise).
vtier_format() {
	force=''
	if [ "$1" = --force ]; then
		force=--force
		shift
	fi
	perf=$1
	shift
	if [ $# = 0 ]; then
		run vtierctl format $force --perf "$perf"
	else
		run vtierctl format $force --perf "$perf" --capacity "$@"
	fi
}

# attr_write FILE VALUE: write VALUE (with a newline, as `echo` does).
attr_write() {
	run_sh "echo '$2' > $1"
}

# vtier_create NAME PERF [CAP...]: mkdir + perf_device + capacity_devices.
vtier_create() {
	name=$1
	perf=$2
	shift 2
	run mkdir "$VT/$name"
	attr_write "$VT/$name/perf_device" "$perf"
	attr_write "$VT/$name/capacity_devices" "$*"
	got=$(cat "$VT/$name/perf_device")
	[ "$got" = "$perf" ] || fail "perf_device reads '$got', wrote '$perf'"
	got=$(cat "$VT/$name/capacity_devices")
	[ "$got" = "$*" ] || fail "capacity_devices reads '$got', wrote '$*'"
	[ "$(cat "$VT/$name/power")" = 0 ] || fail "$name: new device reads power=$(cat "$VT/$name/power")"
}

# vtier_up NAME: power=1; prints the disk name (e.g. vtier0) on stdout.
vtier_up() {
	attr_write "$VT/$1/power" 1 >&2
	[ "$(cat "$VT/$1/power")" = 1 ] || fail "$1: power reads $(cat "$VT/$1/power") after power=1"
	disk=$(cat "$VT/$1/disk")
	[ -n "$disk" ] || fail "$1: disk attribute empty while powered"
	wait_bdev "/dev/$disk" "$1"
	echo "$disk"
}

# wait_bdev DEV WHAT: waits up to 5 s for block device node DEV to appear;
# fails naming WHAT if it does not.
wait_bdev() {
	_i=0
	while [ ! -b "$1" ]; do
		_i=$((_i + 1))
		[ $_i -lt 50 ] || fail "$2: $1 did not appear"
		sleep 0.1
	done
}

vtier_down() {
	attr_write "$VT/$1/power" 0
	[ "$(cat "$VT/$1/power")" = 0 ] || fail "$1: power reads $(cat "$VT/$1/power") after power=0"
	[ -z "$(cat "$VT/$1/disk")" ] || fail "$1: disk attribute reads '$(cat "$VT/$1/disk")' while down"
}

# Size in bytes of a block device.
bdev_size() { blockdev --getsize64 "$1"; }

# sha256 of LEN bytes of FILE at byte offset OFF, read with O_DIRECT in 1 MiB
# blocks (OFF and LEN multiples of 1 MiB). A read error or a short read
# fails the test: the sum of what was read before it is no answer.
sha_range() {
	_n=$(($3 / 1048576))
	# shellcheck disable=SC3040 # busybox ash has pipefail
	_sum=$(set -o pipefail
		dd if="$1" bs=1M skip=$(($2 / 1048576)) count=$_n iflag=direct 2>/tmp/sha_range.err |
			sha256sum) || fail "reading $1 at $2 (+$3 bytes) failed: $(tail -1 /tmp/sha_range.err)"
	grep -q "^$_n+0 records in" /tmp/sha_range.err ||
		fail "short read of $1 at $2 (+$3 bytes): $(head -1 /tmp/sha_range.err)"
	echo "${_sum%% *}"
}

# sha256 of LEN bytes of zeroes.
sha_zero() {
	head -c "$1" /dev/zero | sha256sum | cut -d' ' -f1
}

# The guest's kernel log is the place a test checks for the module's lines;
# splats are checked by the host on the console log.
kmsg_mark() { dmesg -c >/dev/null; }

# Debian's busybox runs its own applets before anything in $PATH (its sh is
# built "standalone"); these names must reach the util-linux tools, whose
# options (blkdiscard -z ...) the busybox applets lack.
blkdiscard() { /usr/sbin/blkdiscard "$@"; }
blockdev() { /usr/sbin/blockdev "$@"; }

# host_do N COMMAND CHECK: asks the host to run the QEMU monitor COMMAND
# (request N, counting from 1 in each boot; see run.sh) and waits until
# the shell snippet CHECK succeeds, up to 120 s. The request is printed
# again every 5 s: a kernel line on the console can split it, and the host
# runs each N once however often it is printed.
host_do() {
	_i=0
	while :; do
		[ $((_i % 10)) != 0 ] || echo "VTIER-HOST $1: $2 :END"
		sleep 0.5
		! sh -c "$3" || return 0
		_i=$((_i + 1))
		[ $_i -lt 240 ] || fail "the host did not run '$2' (waited 120 s for: $3)"
	done
}
