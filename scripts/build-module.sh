#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build-module.sh FLAVOUR   (release | debug)
#
# Builds vtier.ko against the cached kernel of FLAVOUR (scripts/build-kernel.sh)
# and prints its path. The module sources are copied to a per-flavour
# directory first, because kbuild writes its objects next to the sources and
# the two flavours use different compilers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: build-module.sh release|debug}
kdir=$("$VTIER_TOP/scripts/build-kernel.sh" "$flavour")
llvm=()
[ "$flavour" = debug ] && llvm=(LLVM=-19)

out=$VTIER_TOP/target/kmod/$flavour
mkdir -p "$out"
# Only the files the module is built from; tar keeps timestamps so kbuild
# rebuilds only what changed.
srcs=()
for p in Kbuild rust engine/src ec/src ec/c crypto_shim; do
	[ -e "$VTIER_TOP/$p" ] && srcs+=("$p")
done
(cd "$VTIER_TOP" && tar -cf - "${srcs[@]}") | (cd "$out" && tar -xf -)
# VTIER_CLIPPY=1 lints the Rust code with clippy while building (make check).
clippy=()
if [ "${VTIER_CLIPPY:-0}" = 1 ]; then
	clippy=(CLIPPY=1)
	touch "$out/rust/vtier.rs"
fi
make -C "$kdir" M="$out" "${llvm[@]}" "${clippy[@]}" -s modules >&2
echo "$out/vtier.ko"
