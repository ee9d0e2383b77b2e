#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vtier-disks: 768M 256M 256M 256M
# vtier-timeout: 600
#
# The guest half of `make demo` (scripts/demo.sh): format four virtio disks
# as an encrypted volume with vtierctl, create /dev/vtier0 through
# configfs, show what it is, run fio with verify=crc32c, show that no
# plaintext reached the disks, move the data to the erasure-coded capacity
# tier, fail a capacity disk and read everything back, show the module's
# counters and kernel messages, take it all down. Every step is printed as
# the command a person would type.
set -eu
# shellcheck source=lib.sh
. /usr/lib/vtier/lib.sh

# Kernel messages still go to the console, where the host checks them for
# splats; scripts/demo.sh shows only this script's lines.
kmsg_mark

say() { printf '\n== %s\n' "$*"; }
# Runs a shell command line once, shows it and its output, fails on error.
do_() {
	printf '$ %s\n' "$1"
	if ! sh -c "$1" >/tmp/out 2>&1; then
		sed 's/^/  /' /tmp/out
		fail "demo step failed: $1"
	fi
	sed 's/^/  /' /tmp/out
}
mib() { echo $(($(bdev_size "$1") / 1048576)); }

say "vtier demo: Linux $(uname -r), QEMU/TCG guest with $(nproc) CPUs and $(($(sed -n 's/MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024)) MiB"
echo "Disks: vda $(mib /dev/vda) MiB (performance tier); vdb, vdc, vdd $(mib /dev/vdb) MiB each (capacity tier)"

say "1. Load the module, make a key, format an encrypted volume"
do_ "insmod /vtier.ko"
do_ "dd if=/dev/urandom of=/tmp/demo.key bs=64 count=1 2>/dev/null; chmod 600 /tmp/demo.key"
do_ "vtierctl format --perf /dev/vda --capacity /dev/vdb /dev/vdc /dev/vdd --encrypt --key-file /tmp/demo.key"

say "2. Create /dev/vtier0 through configfs"
C=/sys/kernel/config/vtier/demo
do_ "mkdir $C"
do_ "echo /dev/vda > $C/perf_device"
do_ "echo '/dev/vdb /dev/vdc /dev/vdd' > $C/capacity_devices"
do_ "od -An -v -tx1 /tmp/demo.key | tr -d ' \\n' > $C/key     # write-only: reads back 'set'"
do_ "echo 1 > $C/power"
do_ "cat $C/disk"
disk=$(cat $C/disk)
dev=/dev/$disk

say "3. What it is"
q=/sys/block/$disk/queue
/usr/bin/lsblk -o NAME,SIZE,LOG-SEC,PHY-SEC,DISC-MAX,TYPE "$dev" /dev/vda /dev/vdb /dev/vdc /dev/vdd | sed 's/^/  /'
printf '  %-22s %s\n' "size" "$(bdev_size "$dev") bytes ($(mib "$dev") MiB: vda less its 1 MiB metadata area)" \
	"logical block size" "$(cat "$q/logical_block_size") bytes" \
	"hardware queues" "$(find "/sys/block/$disk/mq" -mindepth 1 -maxdepth 1 | wc -l)" \
	"write cache" "$(cat "$q/write_cache")" \
	"FUA" "$(cat "$q/fua" 2>/dev/null || echo ?)" \
	"discard max" "$(cat "$q/discard_max_bytes") bytes" \
	"write zeroes max" "$(cat "$q/write_zeroes_max_bytes") bytes"

say "4. fio: 4 KiB random writes + 1 MiB sequential writes, 128 MiB each, verify=crc32c"
echo "  (every write lands encrypted in the data log on vda, found again through the B-tree map)"
cat >/tmp/demo.fio <<JOB
[global]
filename=$dev
ioengine=libaio
direct=1
iodepth=16
verify=crc32c
verify_fatal=1
randrepeat=1

[rand-4k-write]
rw=randwrite
bs=4k
offset=0
size=128M

[seq-1m-write]
rw=write
bs=1M
offset=128M
size=128M
JOB
echo "\$ fio verify.fio      # libaio, O_DIRECT, iodepth 16; each job reads back and checks what it wrote"
start=$(date +%s)
if fio /tmp/demo.fio >/tmp/fio.out 2>&1; then verify_ok=1; else verify_ok=0; fi
took=$(($(date +%s) - start))
grep -E '^[a-z0-9-]+: \(groupid|^ +(write|read): IOPS=|^ +(READ|WRITE): bw=' /tmp/fio.out | sed 's/^ */  /'
if [ $verify_ok = 1 ] && ! grep -q 'verify:' /tmp/fio.out && [ "$(grep -c 'err= 0' /tmp/fio.out)" = 2 ]; then
	echo "  verify: 256 MiB written and read back in ${took}s, crc32c of every block matched (0 mismatches)"
else
	cat /tmp/fio.out
	fail "fio verify failed"
fi

say "5. fio: 4 KiB random reads, iodepth 32, 8 seconds"
echo "\$ fio --name=randread --filename=$dev --rw=randread --bs=4k --iodepth=32 --ioengine=libaio --direct=1 --runtime=8 --time_based"
fio --name=randread --filename="$dev" --rw=randread --bs=4k --iodepth=32 --ioengine=libaio \
	--direct=1 --runtime=8 --time_based --size=256M >/tmp/fio2.out 2>&1 || { cat /tmp/fio2.out; fail "fio randread failed"; }
grep -E '^ +read: IOPS=|^ +READ: bw=' /tmp/fio2.out | sed 's/^ */  /'

say "6. No plaintext on the disks"
do_ "yes vtier-demo-plaintext-marker | head -c 1048576 | dd of=$dev bs=1M seek=260 oflag=direct 2>/dev/null"
do_ "dd if=$dev bs=1M skip=260 count=1 iflag=direct 2>/dev/null | strings | grep -c vtier-demo-plaintext-marker"
for d in vda vdb vdc vdd; do
	do_ "strings /dev/$d | grep -c vtier-demo-plaintext-marker || true      # raw $d"
done

say "7. Move the data to the capacity tier (2+1 erasure-coded stripes), ciphertext as it is"
do_ "grep -E '^(cipher|destage|geometry|health|stripes):' $C/status"
do_ "echo 100000 > $C/destage; cat $C/destage"
do_ "grep -E '^(cipher|destage|stripes):' $C/status      # the cipher count did not move"

say "8. vdc fails every I/O: reads reconstruct from the other two"
do_ "echo 100 > /sys/kernel/debug/fail_make_request/probability; echo -1 > /sys/kernel/debug/fail_make_request/times; echo 0 > /sys/kernel/debug/fail_make_request/verbose"
do_ "echo 1 > /sys/block/vdc/make-it-fail"
sed 's/^\[global\]$/[global]\nverify_only=1/' /tmp/demo.fio >/tmp/demo-verify.fio
echo "\$ fio verify-only.fio   # the same jobs with verify_only=1: read back and check crc32c"
if fio /tmp/demo-verify.fio >/tmp/fio3.out 2>&1 && [ "$(grep -c 'err= 0' /tmp/fio3.out)" = 2 ]; then
	echo "  verify: 256 MiB read back with one capacity disk failed, crc32c of every block matched"
else
	cat /tmp/fio3.out
	fail "degraded verify failed"
fi
do_ "grep -E '^(health|member [0-9]|io):' $C/status"
do_ "echo 0 > /sys/block/vdc/make-it-fail"

say "9. Take it down"
do_ "echo 0 > $C/power"
do_ "rmdir $C"
do_ "rmmod vtier"

say "10. The module's kernel messages"
# Without the time stamps (the host hides time-stamped lines: kernel noise).
dmesg | grep -E 'vtier' | sed 's/^\[ *[0-9.]*\] /  /'
echo
echo "Done: /dev/$disk worked, encrypted, data verified, also with a capacity disk failed. (TCG emulation: figures are far below real hardware.)"
