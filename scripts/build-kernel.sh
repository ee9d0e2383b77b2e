#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build-kernel.sh FLAVOUR   (release | debug)
#
# Builds the guest kernel (bzImage + the peer modules + the Rust metadata an
# out-of-tree Rust module needs) from tinyconfig plus our fragments, into
# $VTIER_CACHE/build/FLAVOUR-KEY, where KEY hashes the source version, the
# fragments, this script and the compiler versions. A tree already built
# for the same key is reused, so a second run builds nothing. Only one kernel
# build runs at a time (flock). Prints the build directory on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: build-kernel.sh release|debug}
frags=("$VTIER_TOP/qemu-test/kconfig/base.config")
case $flavour in
release) llvm=() ;;
debug)
	llvm=(LLVM=-19)
	frags+=("$VTIER_TOP/qemu-test/kconfig/debug.config")
	;;
*) die "unknown flavour $flavour" ;;
esac

[ -f "$KSRC/Makefile" ] || die "no kernel source in $KSRC: run scripts/setup.sh"

compilers=$(gcc --version | head -1; rustc --version; bindgen --version 2>&1 | head -1)
[ $flavour = debug ] && compilers+=$(clang-19 --version | head -1)
key=$( { cat "$KSRC/.vtier-source-version" "${frags[@]}" "$0"; echo "$compilers"; } |
	sha256sum | cut -c1-16)
out=$VTIER_CACHE/build/$flavour-$key

if [ -f "$out/.vtier-built" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$VTIER_CACHE/build"
exec 9>"$VTIER_CACHE/build/.lock"
flock 9
if [ -f "$out/.vtier-built" ]; then
	echo "$out"
	exit 0
fi

log "building $flavour kernel in $out (a few minutes)"
mkdir -p "$out"
mk() { make -C "$KSRC" O="$out" "${llvm[@]}" "$@"; }
mk -s tinyconfig >/dev/null
"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${frags[@]}" >/dev/null
mk -s olddefconfig >/dev/null

# Every requested option must have survived olddefconfig.
bad=0
for f in "${frags[@]}"; do
	while read -r line; do
		case $line in
		CONFIG_*=*) want=$line ;;
		"# CONFIG_"*" is not set") want=$line ;;
		*) continue ;;
		esac
		name=${want#\# }
		name=${name%%[= ]*}
		got=$(grep -E "^(# )?$name[= ]" "$out/.config" || echo "# $name is not set")
		if [ "$got" != "$want" ]; then
			log "config: wanted '$want', got '$got'"
			bad=1
		fi
	done <"$f"
done
[ $bad = 0 ] || die "kernel configuration lost requested options (see above)"

mk -j"$(nproc)" -s bzImage modules >"$out/build.log" 2>&1 ||
	{ tail -40 "$out/build.log" >&2; die "kernel build failed: $out/build.log"; }
touch "$out/.vtier-built"
log "$flavour kernel ready"
echo "$out"
