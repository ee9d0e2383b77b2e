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
# The debug (KASAN) build makes objtool warn "falls through to next
# function" for a few functions of Rust's core library that vtier
# instantiates: each ends in a call to a core panic function
# (panic_const_div_by_zero, after KASAN's __asan_handle_no_return) that
# never returns, but that this kernel's objtool does not know as noreturn.
# The code is right; only objtool's stack-layout check of those functions
# stops short. One line says so instead of screens of mangled names;
# VTIER_OBJTOOL_WARNINGS=1 shows each.
objtool_filter() {
	awk -v all="${VTIER_OBJTOOL_WARNINGS:-0}" '
		all != 1 && /objtool: _R[^ ]*4core[^ ]*\(\) falls through to next function/ { n++; next }
		{ print }
		END {
			if (n)
				printf "vtier.o: %d objtool warnings \"falls through to next function\" in Rust core functions that end in a panic call objtool does not know never returns (harmless; VTIER_OBJTOOL_WARNINGS=1 shows them)\n", n
		}'
}
make -C "$kdir" M="$out" "${llvm[@]}" "${clippy[@]}" -s modules 2>&1 | objtool_filter >&2
echo "$out/vtier.ko"
