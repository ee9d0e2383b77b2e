#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 256M
# vtier-timeout: 900
# vtier-needs: module
#
# In-guest encryption benchmark (scripts/bench-guest-crypt.sh boots it; not
# a test: it lives outside qemu-test/tests/ so `make test` never runs it).
# Over the same virtual disk (vda), one after the other, fio measures
# sequential writes (1 MiB, queue depth 8) and random writes (4 KiB, queue
# depth 16), libaio, O_DIRECT, time-based, on
#
#   raw      /dev/vda itself (for context: what the virtual disk does);
#   dmcrypt  dm-crypt, aes-xts-plain64, 64-byte random key,
#            no_read_workqueue no_write_workqueue, set up with `dmsetup
#            create` and a table (dm-mod/dm-crypt are modules of the guest
#            kernel, loaded from /peers in the order /peers/load-order);
#   vtier    /dev/vtier0 on an encrypted vtier volume (vtierctl format
#            --encrypt, the key written to configfs `key`) on vda alone.
#
# Every figure is one line on the console for the host to collect:
#
#   VTIER-BENCH TARGET WORKLOAD WRITE_KIB_S WRITE_IOPS
#
# and, so that a figure is not mistaken for one of an encrypted path, each
# target then gets 1 MiB of a text pattern written through it and the raw
# disk is searched for that text (`strings`):
#
#   VTIER-BENCH-PLAIN TARGET LINES_FOUND
#
# (raw must find it, which shows the search works; dm-crypt must not).
# A vtier run that fails (an I/O error, say) does not stop the benchmark:
# it is reported as
#
#   VTIER-BENCH-ERROR vtier WORKLOAD|plain MESSAGE
#
# and the other figures still count; the peers' failures are fatal.
#
# Under TCG the absolute figures mean little; the ratios between targets
# measured in the same boot are what counts.
# Environment (kernel command line vtier_bench_runtime=...):
#   VTIER_BENCH_RUNTIME  seconds per fio run (default 10)
set -eu
# shellcheck source=../guest/lib.sh
. /usr/lib/vtier/lib.sh

RUNTIME=${VTIER_BENCH_RUNTIME:-10}
DISK=/dev/vda

# bench_error TARGET WHAT MESSAGE: fatal for the peers, reported for vtier.
bench_error() {
	[ "$1" = vtier ] || fail "$1 $2: $3"
	echo "VTIER-BENCH-ERROR $1 $2 $(echo "$3" | tr '\n' ' ' | cut -c1-200)"
}

# fio_write TARGET WORKLOAD DEV: runs one workload, prints the result line.
fio_write() {
	case $2 in
	seq) job="--rw=write --bs=1M --iodepth=8" ;;
	rand) job="--rw=randwrite --bs=4k --iodepth=16" ;;
	*) fail "unknown workload $2" ;;
	esac
	size=$(($(bdev_size "$3") / 1048576))
	[ "$size" -gt 64 ] || fail "$3: only $size MiB"
	# shellcheck disable=SC2086 # $job is a list of options
	fio --name="$1-$2" --filename="$3" --ioengine=libaio --direct=1 $job \
		--size="${size}M" --time_based --runtime="$RUNTIME" --ramp_time=2 \
		--numjobs=1 --output-format=terse --minimal >/tmp/fio.out 2>&1 || {
		bench_error "$1" "$2" "fio failed: $(grep -v '^3;' /tmp/fio.out | head -2)"
		return 0
	}
	# Terse v3: field 48 write bandwidth in KiB/s, 49 write IOPS.
	bw=$(awk -F';' '{ print $48 }' /tmp/fio.out)
	iops=$(awk -F';' '{ print $49 }' /tmp/fio.out)
	if [ -z "$bw" ] || [ "$bw" -le 0 ]; then
		bench_error "$1" "$2" "no write bandwidth in: $(head -c 200 /tmp/fio.out)"
		return 0
	fi
	echo "VTIER-BENCH $1 $2 $bw $iops"
}

# plain_write DEV writes the pattern through DEV at 1 MiB; plain_count
# TARGET, once DEV is torn down, counts the pattern's lines on the raw disk.
plain_write() { # TARGET DEV
	echo "+ dd if=/tmp/plain of=$2 bs=1M seek=1 oflag=direct conv=notrunc"
	plain_ok=1
	dd if=/tmp/plain of="$2" bs=1M seek=1 oflag=direct conv=notrunc 2>/tmp/dd.err || {
		plain_ok=0
		bench_error "$1" plain "writing the pattern failed: $(cat /tmp/dd.err)"
	}
}
plain_count() { # TARGET
	[ "$plain_ok" = 1 ] || return 0
	run blockdev --flushbufs "$DISK"
	n=$(strings -n 24 "$DISK" | grep -c 'VTIER-BENCH-PLAINTEXT' || true)
	echo "VTIER-BENCH-PLAIN $1 $n"
}
yes VTIER-BENCH-PLAINTEXT-0123456789 | head -c 1048576 >/tmp/plain

# A random 64-byte key with distinct halves, as 128 hex digits (never shown).
head -c 64 /dev/urandom >/tmp/key.bin
od -An -v -tx1 /tmp/key.bin | tr -d ' \n' >/tmp/key.hex
KEY=$(cat /tmp/key.hex)
[ ${#KEY} = 128 ] || fail "key is ${#KEY} hex digits"

step "raw disk"
run blkdiscard -f "$DISK"
fio_write raw seq "$DISK"
fio_write raw rand "$DISK"
plain_write raw "$DISK"
plain_count raw

step "dm-crypt: aes-xts-plain64, no_read_workqueue no_write_workqueue"
[ -f /peers/load-order ] || fail "no /peers/load-order (dm modules missing from the initramfs)"
while read -r mod; do
	run insmod "/peers/$mod"
done </peers/load-order
# A fresh disk, as for vtier (and without the raw run's pattern).
run blkdiscard -f "$DISK"
# No udev in the guest: libdevmapper makes the /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1
sectors=$(blockdev --getsz "$DISK")
echo "+ dmsetup create bench (crypt aes-xts-plain64, $sectors sectors, key not shown)"
echo "0 $sectors crypt aes-xts-plain64 $KEY 0 $DISK 0 2 no_read_workqueue no_write_workqueue" |
	dmsetup create --noudevsync bench || fail "dmsetup create failed"
dmsetup table bench | sed 's/ [0-9a-f]\{128\} / <key> /'
dmsetup table bench | grep -q 'no_read_workqueue' || fail "dm-crypt table lost no_read_workqueue"
dm=/dev/mapper/bench
[ -b $dm ] || fail "no $dm"
fio_write dmcrypt seq $dm
fio_write dmcrypt rand $dm
plain_write dmcrypt $dm
run dmsetup remove --noudevsync bench
plain_count dmcrypt

step "vtier: encrypted volume on the same disk"
run blkdiscard -f "$DISK"
run vtierctl format --perf "$DISK" --encrypt --key-file /tmp/key.bin
vtier_load
run mkdir "$VT/bench"
attr_write "$VT/bench/perf_device" "$DISK"
sh -c "cat /tmp/key.hex > $VT/bench/key" || fail "key refused"
disk=$(vtier_up bench)
dmesg | grep 'vtier' | tail -5
fio_write vtier seq "/dev/$disk"
fio_write vtier rand "/dev/$disk"
plain_write vtier "/dev/$disk"
vtier_down bench
plain_count vtier
run rmdir "$VT/bench"
vtier_unload
