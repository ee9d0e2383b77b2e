#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# check-shell.sh: shellcheck over every shell script of the repository, as
# `make check` runs it: the files named *.sh and every file whose first line
# is a sh or bash shebang (qemu-test/guest/init, .ci/run, ...), tracked or
# new. How sourced files are found is in .shellcheckrc. Exits non-zero on
# any finding.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$VTIER_TOP"

command -v shellcheck >/dev/null || die "shellcheck not found: run scripts/setup.sh"

# Every file of the work tree, NUL-separated, without build output.
list_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard
	else
		find . \( -path ./target -o -path ./.git -o -path ./qemu-test/out \) -prune \
			-o -type f -printf '%P\0'
	fi
}

scripts=()
while IFS= read -r -d '' f; do
	[ -f "$f" ] || continue # deleted, still in the index
	case $f in
	*.sh) scripts+=("$f") ;;
	*)
		first=
		IFS= read -r first <"$f" || true
		if [[ $first =~ ^#!.*[/[:space:]](ba|da)?sh([[:space:]]|$) ]]; then
			scripts+=("$f")
		fi
		;;
	esac
done < <(list_files)
[ ${#scripts[@]} -gt 0 ] || die "no shell scripts found"

# scripts/build-kernel.sh hashes its own text into the key of the cached
# kernel builds, so any edit to it rebuilds every kernel. Its two findings
# are harmless: an unquoted $flavour that is always "release" or "debug",
# and "$name[= ]" in a regular expression, which shellcheck takes for an
# array index. They wait for the next change that rebuilds the kernels
# anyway; until then they are excluded for that file alone.
others=()
kernel_script=
for f in "${scripts[@]}"; do
	if [ "$f" = scripts/build-kernel.sh ]; then
		kernel_script=$f
	else
		others+=("$f")
	fi
done

rc=0
shellcheck "${others[@]}" || rc=1
if [ -n "$kernel_script" ]; then
	shellcheck --exclude=SC1087,SC2086 "$kernel_script" || rc=1
fi
[ $rc = 0 ] && log "shellcheck: ${#scripts[@]} scripts clean"
exit $rc
