#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh: what `make demo` runs. Builds what it needs (set-up, the release
# kernel, vtier.ko, vtierctl, the guest initramfs), boots QEMU/TCG with four
# virtio disks and runs qemu-test/guest/demo.sh in the guest: vtierctl
# format, /dev/vtier0 through configfs, about 30 s of fio with
# verify=crc32c, the module's kernel messages. Prints the guest's steps as
# they happen and ends with "demo: PASS" (exit 0) or "demo: FAIL ..."; the
# full console log is qemu-test/out/demo/demo.log.
#
# Options: --kvm (use KVM instead of TCG; hangs on some hosts),
#          --no-setup (skip scripts/setup.sh).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

kvm=()
setup=1
for a in "$@"; do
	case $a in
	--kvm) kvm=(--kvm) ;;
	--no-setup) setup=0 ;;
	*) die "usage: demo.sh [--kvm] [--no-setup]" ;;
	esac
done

t0=$(date +%s)
[ $setup = 0 ] || "$VTIER_TOP/scripts/setup.sh"
log "kernel (built once, then cached in $VTIER_CACHE)"
kdir=$("$VTIER_TOP/scripts/build-kernel.sh" release)
log "vtier.ko"
module=$("$VTIER_TOP/scripts/build-module.sh" release | tail -1)
[ -f "$module" ] || die "build-module.sh did not give a module"
log "vtierctl"
(cd "$VTIER_TOP" && cargo build --quiet --release -p vtierctl)
log "guest initramfs"
initrd=$VTIER_CACHE/initramfs/demo.cpio
mkdir -p "$VTIER_CACHE/initramfs"
"$VTIER_TOP/qemu-test/mkinitramfs.sh" "$initrd" \
	"$VTIER_TOP/target/release/vtierctl=/usr/bin/vtierctl" \
	"$module=/vtier.ko" \
	"$VTIER_TOP/qemu-test/guest/demo.sh=/tests/demo.sh"
log "ready in $(($(date +%s) - t0))s; booting QEMU (TCG, 2 CPUs, 1 GiB, 4 virtio disks)"

if result=$("$VTIER_TOP/qemu-test/run.sh" --live --quiet --flavour demo \
	--script "$VTIER_TOP/qemu-test/guest/demo.sh" \
	--kernel "$kdir" --initrd "$initrd" "${kvm[@]}" demo); then
	echo
	echo "demo: PASS ($(sed -n 's/.*(guest up in \(.*\))/guest up in \1/p' <<<"$result"), total $(($(date +%s) - t0))s)"
else
	echo
	echo "demo: FAIL: ${result#FAIL }"
	echo "console log: qemu-test/out/demo/demo.log"
	tail -30 "$VTIER_TOP/qemu-test/out/demo/demo.log" | tr -d '\r'
	exit 1
fi
