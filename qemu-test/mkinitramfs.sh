#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# mkinitramfs.sh OUT.cpio [SRC[=GUEST_PATH] ...]
#
# Builds the guest initramfs: an uncompressed newc cpio made of
#
#   1. a base image from the host's Debian packages (busybox-static with its
#      applet links, fio, e2fsprogs, a few util-linux tools, keyctl
#      (keyutils: logon keys for the keyring tests), dmsetup (dm-crypt, the
#      encryption benchmark's peer), the glibc dynamic loader and every
#      shared library they need). It is cached in
#      $VTIER_CACHE/initramfs/, keyed by the package versions and this
#      script, so a rebuild takes a second;
#   2. an overlay built every time: qemu-test/guest/ (the /init and the
#      guest helper library) and the files named on the command line. SRC
#      goes to /$(basename SRC) unless GUEST_PATH is given; a directory is
#      copied whole; a dynamic ELF executable brings its libraries along.
#
# The kernel unpacks concatenated cpio archives one after the other, so OUT
# is simply base.cpio followed by overlay.cpio.
set -euo pipefail
# shellcheck source=../scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"

[ $# -ge 1 ] || die "usage: mkinitramfs.sh OUT.cpio [SRC[=GUEST_PATH] ...]"
out=$1
shift

PACKAGES=(busybox-static fio e2fsprogs util-linux libc6 keyutils dmsetup)
# Real binaries (they replace busybox applets of the same name).
BINARIES=(
	/usr/bin/fio
	/usr/sbin/mke2fs /usr/sbin/mkfs.ext4 /usr/sbin/e2fsck /usr/sbin/fsck.ext4
	/usr/sbin/tune2fs /usr/sbin/debugfs /usr/sbin/dumpe2fs
	/usr/sbin/blkdiscard /usr/sbin/blockdev /usr/bin/lsblk
	/usr/bin/keyctl /usr/sbin/dmsetup
)
CONFIGS=(/etc/mke2fs.conf)

guest_dir=$VTIER_TOP/qemu-test/guest

# Libraries of a dynamic ELF file, one path a line (the loader included).
elf_libs() {
	ldd "$1" 2>/dev/null | awk '
		/=> \// { print $3; next }
		/^[ \t]*\/[^ ]+ \(0x/ { print $1 }'
}

is_dynamic_elf() {
	[ -f "$1" ] && [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ] &&
		ldd "$1" >/dev/null 2>&1
}

# The guest has a merged /usr (/lib -> usr/lib ...): name files by their
# path under /usr, so that the overlay's directories never shadow the
# base's symlinks and paths compare equal.
canon() {
	case $1 in
	/bin/* | /sbin/* | /lib/* | /lib64/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}

# copy_with_libs ROOT SRC DEST: SRC (dereferenced) to ROOT/DEST, and its
# libraries to the same paths under ROOT, unless ROOT/path exists already or
# SKIP_LIST (a file of guest paths) lists it.
copy_with_libs() {
	local root=$1 src=$2 dest lib
	dest=$(canon "$3")
	mkdir -p "$root/$(dirname "$dest")"
	rm -f "$root/$dest"
	cp -L "$src" "$root/$dest"
	if is_dynamic_elf "$src"; then
		while read -r lib; do
			lib=$(canon "$lib")
			[ -e "$root/$lib" ] && continue
			if [ -n "${SKIP_LIST:-}" ] && grep -qxF "$lib" "$SKIP_LIST"; then
				continue
			fi
			mkdir -p "$root/$(dirname "$lib")"
			cp -L "$lib" "$root/$lib"
		done < <(elf_libs "$src")
	fi
}

mkcpio() { # DIR OUT
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0) >"$2"
}

build_base() {
	local dest=$1 stage applet
	stage=$(mktemp -d "$VTIER_CACHE/initramfs/stage.XXXXXX")
	# A merged-/usr layout like the host's, so ldd's paths work as they are.
	mkdir -p "$stage"/usr/{bin,sbin,lib,lib64} "$stage"/{dev,proc,sys,tmp,etc,root,mnt}
	mkdir -p "$stage/run" "$stage/var"
	ln -s usr/bin "$stage/bin"
	ln -s usr/sbin "$stage/sbin"
	ln -s usr/lib "$stage/lib"
	ln -s usr/lib64 "$stage/lib64"
	chmod 1777 "$stage/tmp"
	if [ "$(id -u)" = 0 ]; then
		mknod -m 600 "$stage/dev/console" c 5 1
		mknod -m 666 "$stage/dev/null" c 1 3
	fi # otherwise /init reopens the console once devtmpfs is mounted

	cp /usr/bin/busybox "$stage/usr/bin/busybox"
	while read -r applet; do
		[ "$applet" = bin/busybox ] && continue
		mkdir -p "$stage/$(dirname "$applet")"
		ln -sf /usr/bin/busybox "$stage/$applet"
	done < <(/usr/bin/busybox --list-full)

	local b d
	for b in "${BINARIES[@]}"; do
		[ -e "$b" ] || die "$b missing: run scripts/setup.sh"
		copy_with_libs "$stage" "$b" "$b"
		# Drop a busybox applet of that name elsewhere in $PATH.
		for d in /usr/bin /usr/sbin; do
			[ "$d/$(basename "$b")" = "$(canon "$b")" ] && continue
			[ -L "$stage/$d/$(basename "$b")" ] && rm "$stage/$d/$(basename "$b")"
		done
	done
	for b in "${CONFIGS[@]}"; do
		[ -e "$b" ] && cp -L "$b" "$stage/$b"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
	printf 'root:x:0:\n' >"$stage/etc/group"
	: >"$stage/etc/fstab"

	mkcpio "$stage" "$dest.tmp"
	# The guest paths of every file in the base, so the overlay adds no
	# library twice.
	(cd "$stage" && find . -mindepth 1 | sed 's|^\./|/|' | LC_ALL=C sort) >"$dest.list"
	mv "$dest.tmp" "$dest"
	rm -rf "$stage"
}

mkdir -p "$VTIER_CACHE/initramfs"
versions=$(dpkg-query -W -f='${Package}=${Version}\n' "${PACKAGES[@]}")
key=$( { echo "$versions"; printf '%s\n' "${BINARIES[@]}" "${CONFIGS[@]}"
	sed -n '/^build_base()/,/^}/p;/^copy_with_libs()/,/^}/p;/^canon()/,/^}/p' "$0"; } |
	sha256sum | cut -c1-16)
base=$VTIER_CACHE/initramfs/base-$key.cpio
if [ ! -f "$base" ]; then
	log "building initramfs base image $base"
	exec 8>"$VTIER_CACHE/initramfs/.lock"
	flock 8
	[ -f "$base" ] || build_base "$base"
	exec 8>&-
fi

# The overlay: /init, the guest library, and what the caller passed.
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
SKIP_LIST=$base.list
mkdir -p "$overlay/usr/lib/vtier"
cp "$guest_dir/init" "$overlay/init"
chmod 755 "$overlay/init"
cp "$guest_dir/lib.sh" "$overlay/usr/lib/vtier/lib.sh"
for arg in "$@"; do
	src=${arg%%=*}
	if [ "$src" = "$arg" ]; then
		dest=/$(basename "$src")
	else
		dest=${arg#*=}
	fi
	[ -e "$src" ] || die "$src does not exist"
	case $dest in /*) ;; *) dest=/$dest ;; esac
	dest=$(canon "$dest")
	if [ -d "$src" ]; then
		mkdir -p "$overlay/$dest"
		cp -rL "$src/." "$overlay/$dest/"
	else
		copy_with_libs "$overlay" "$src" "$dest"
		# Debug info of our own binaries only costs guest memory.
		if is_dynamic_elf "$src"; then
			objcopy --strip-debug "$overlay/$dest"
		fi
	fi
done
mkcpio "$overlay" "$out.overlay"
cat "$base" "$out.overlay" >"$out.tmp"
rm -f "$out.overlay"
mv "$out.tmp" "$out"
