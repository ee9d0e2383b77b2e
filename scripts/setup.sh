#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent, non-interactive set-up of everything vtier needs on a Debian
# bookworm machine: apt packages, rust-src, bindgen-cli and the Linux 7.3
# source tree. A second run on a machine that is already set up only checks
# and takes a few seconds.
#
# The backports suites are added with the URIs of the machine's own Debian
# source, never a hard-coded mirror, and trixie-backports gets a low pin
# priority so that nothing on the machine is upgraded from it: the kernel
# source is fetched with `apt-get download` + `dpkg-deb -x`.
set -euo pipefail

. "$(dirname "$0")/lib.sh"

BINDGEN_VERSION=0.72.1
KSRC_PKG=linux-source-7.3

APT_PACKAGES=(
	build-essential flex bison bc libelf-dev libssl-dev cpio kmod
	libclang-19-dev clang-19 lld-19 llvm-19
	busybox-static fio e2fsprogs util-linux
	# keyctl (logon keys) and dmsetup (dm-crypt) in the test guest.
	keyutils dmsetup
	# ISA-L, a peer the erasure-coding benchmark measures when present.
	libisal-dev
	# make check lints every shell script.
	shellcheck
)

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The URIs of the machine's main Debian archive (not -security).
debian_uris() {
	local f=/etc/apt/sources.list.d/debian.sources
	if [ -r "$f" ]; then
		awk 'BEGIN { RS = ""; FS = "\n" }
		     /Suites:[^\n]*bookworm/ && !/security/ {
			for (i = 1; i <= NF; i++)
				if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); print $i; exit }
		     }' "$f"
	elif [ -r /etc/apt/sources.list ]; then
		awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list
	fi
}

setup_apt_sources() {
	local list=/etc/apt/sources.list.d/vtier-backports.sources
	local pref=/etc/apt/preferences.d/vtier-backports
	[ -f "$list" ] && [ -f "$pref" ] && return 1
	local uris
	uris=$(debian_uris)
	[ -n "$uris" ] || die "cannot find the machine's Debian source URIs"
	log "adding bookworm-backports and trixie-backports from $uris"
	sudo_ tee "$list" >/dev/null <<EOF
# Added by vtier scripts/setup.sh (same URIs as debian.sources).
Types: deb
URIs: $uris
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	sudo_ tee "$pref" >/dev/null <<EOF
# Added by vtier scripts/setup.sh: never upgrade anything from trixie.
Package: *
Pin: release n=trixie-backports
Pin-Priority: 50
EOF
	return 0
}

missing_packages() {
	local p
	for p in "${APT_PACKAGES[@]}" qemu-system-x86; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			echo "$p"
	done
}

setup_packages() {
	local updated=0 missing
	if setup_apt_sources; then
		sudo_ apt-get update -qq
		updated=1
	fi
	missing=$(missing_packages)
	[ -z "$missing" ] && return 0
	log "installing: ${missing//$'\n'/ }"
	[ $updated = 1 ] || sudo_ apt-get update -qq
	export DEBIAN_FRONTEND=noninteractive
	sudo_ apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
	# QEMU 10 from bookworm-backports, like the machine's qemu-utils.
	sudo_ apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports qemu-system-x86 >/dev/null
}

setup_rust() {
	command -v rustup >/dev/null || die "rustup not found"
	if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
		log "adding rust-src"
		rustup component add rust-src
	fi
	if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
		log "building bindgen-cli $BINDGEN_VERSION"
		cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION"
	fi
}

setup_kernel_source() {
	local dst=$VTIER_CACHE/src
	[ -f "$dst/linux/Makefile" ] && return 0
	log "fetching $KSRC_PKG"
	local tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -qq "$KSRC_PKG" >/dev/null) ||
		{ sudo_ apt-get update -qq && (cd "$tmp" && apt-get download -qq "$KSRC_PKG"); }
	dpkg-deb -x "$tmp"/"$KSRC_PKG"_*.deb "$tmp/x"
	mkdir -p "$dst"
	rm -rf "$dst/linux" "$dst/linux.tmp"
	mkdir "$dst/linux.tmp"
	tar -xf "$tmp"/x/usr/src/"$KSRC_PKG".tar.* -C "$dst/linux.tmp" --strip-components=1
	dpkg-deb -f "$tmp"/"$KSRC_PKG"_*.deb Version >"$dst/linux.tmp/.vtier-source-version"
	mv "$dst/linux.tmp" "$dst/linux"
	rm -rf "$tmp"
	log "kernel source $(cat "$dst/linux/.vtier-source-version") in $dst/linux"
}

mkdir -p "$VTIER_CACHE"
setup_packages
setup_rust
setup_kernel_source
log "set-up complete"
