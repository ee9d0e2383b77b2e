# SPDX-License-Identifier: GPL-2.0
# Shared helpers for vtier's scripts. Source it, do not run it.
# shellcheck shell=bash
# shellcheck disable=SC2034 # VTIER_TOP and KSRC are for the scripts that source this

VTIER_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VTIER_CACHE=${VTIER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vtier}
KSRC=$VTIER_CACHE/src/linux
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
export PATH=$HOME/.cargo/bin:$PATH

log() { printf '[vtier] %s\n' "$*" >&2; }
die() { printf '[vtier] error: %s\n' "$*" >&2; exit 1; }
