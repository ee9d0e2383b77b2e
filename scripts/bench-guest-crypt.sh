#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-guest-crypt.sh: the in-guest encryption benchmark (part of `make
# bench`, through scripts/bench.sh; never part of `make test`).
#
# Boots the release guest once with qemu-test/bench/crypt-bench.sh, which
# measures fio sequential and random write throughput over one virtual disk
# on the raw disk, on dm-crypt (aes-xts-plain64, no_read_workqueue
# no_write_workqueue) and on /dev/vtier0 of an encrypted vtier volume, and
# writes bench/results/guest-crypt.json with the figures and the ratios
# vtier/dm-crypt. Under TCG absolute figures mean little; the ratios count.
#
# Environment:
#   VTIER_BENCH_RUNTIME   seconds per fio run (default 10)
#   VTIER_BENCH_KVM=1     boot with KVM instead of TCG
#   VTIER_BENCH_LOG=FILE  no boot: only turn FILE, the console log of an
#                         earlier run, into the JSON
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$VTIER_TOP"

flavour=release
name=crypt-bench
script=$VTIER_TOP/qemu-test/bench/$name.sh
runtime=${VTIER_BENCH_RUNTIME:-10}
runtime=$((runtime + 0))
out=$VTIER_TOP/bench/results/guest-crypt.json

log_file=${VTIER_BENCH_LOG:-$VTIER_TOP/qemu-test/out/$flavour/$name.log}
kvm=()
[ "${VTIER_BENCH_KVM:-0}" = 1 ] && kvm=(--kvm)
mkdir -p bench/results

# Builds what the guest needs and boots it; the console log goes to $log_file.
boot() {
	kdir=$("$VTIER_TOP/scripts/build-kernel.sh" "$flavour")
	module=$("$VTIER_TOP/scripts/build-module.sh" "$flavour" | tail -1)
	[ -f "$module" ] || die "no vtier.ko ($module)"
	cargo build --quiet --release -p vtierctl
	vtierctl=$VTIER_TOP/target/release/vtierctl

	# dm-crypt and the modules it needs, dependencies first, from the kernel
	# build tree (the guest kernel builds them as modules).
	peers=$(mktemp -d)
	trap 'rm -rf "$peers"' EXIT
	order=()
	add_module() { # NAME (as modinfo spells it: dm-crypt, dm-mod, ...)
		local m=$1 ko dep
		for dep in "${order[@]}"; do
			[ "$dep" = "$m.ko" ] && return 0
		done
		ko=$(find "$kdir" -name "$m.ko" -o -name "${m//-/_}.ko" | head -1)
		[ -n "$ko" ] || die "$m.ko not in $kdir (CONFIG_DM_CRYPT=m?)"
		for dep in $(modinfo -F depends "$ko" | tr ',' ' '); do
			add_module "$dep"
		done
		cp "$ko" "$peers/$m.ko"
		order+=("$m.ko")
	}
	add_module dm-crypt
	printf '%s\n' "${order[@]}" >"$peers/load-order"
	log "guest-crypt: peer modules ${order[*]}"

	mkdir -p "$VTIER_CACHE/initramfs"
	initrd=$VTIER_CACHE/initramfs/bench-$flavour.cpio
	"$VTIER_TOP/qemu-test/mkinitramfs.sh" "$initrd" "$vtierctl=/usr/bin/vtierctl" \
		"$module=/vtier.ko" "$peers=/peers" "$script=/tests/$name.sh"

	log "guest-crypt: booting (fio ${runtime}s per run, 6 runs)"
	"$VTIER_TOP/qemu-test/run.sh" --kernel "$kdir" --initrd "$initrd" --flavour "$flavour" \
		--script "$script" --append "vtier_bench_runtime=$runtime" "${kvm[@]}" "$name" ||
		die "the benchmark guest failed (log: qemu-test/out/$flavour/$name.log)"
}
[ -n "${VTIER_BENCH_LOG:-}" ] || boot

lines=$(tr -d '\r' <"$log_file" | grep -E '^VTIER-BENCH [a-z]+ (seq|rand) [0-9]+ [0-9]+$' || true)
# vtier's failures are reported, not fatal (the peers' are).
errors=$(tr -d '\r' <"$log_file" | grep -E '^VTIER-BENCH-ERROR vtier ' || true)
n_fig=$(awk '$3 == "seq" || $3 == "rand"' <<<"$errors" | grep -c . || true)
[ "$(grep -c . <<<"$lines")" = $((6 - n_fig)) ] ||
	die "expected $((6 - n_fig)) result lines in $log_file, found: $lines"
# Lines of the plaintext pattern found on the raw disk after writing it
# through each target: raw must find it (the search works), dm-crypt not.
plain=$(tr -d '\r' <"$log_file" | grep -E '^VTIER-BENCH-PLAIN [a-z]+ [0-9]+$' || true)
found() { awk -v t="$1" '$2 == t { print $3 }' <<<"$plain"; }
if [ -z "$(found raw)" ] || [ -z "$(found dmcrypt)" ]; then
	die "plaintext checks missing in $log_file: $plain"
fi
[ "$(found raw)" -gt 0 ] || die "the plaintext search found nothing on the raw disk: it does not work"
[ "$(found dmcrypt)" = 0 ] || die "plaintext on the disk under dm-crypt: the peer is not encrypting"
vtier_plain=$(found vtier)
vtier_plain=${vtier_plain:--1}
# vtier's errors as JSON strings: "WORKLOAD|plain MESSAGE".
errors_json=''
while IFS= read -r line; do
	[ -n "$line" ] || continue
	line=$(sed 's/^VTIER-BENCH-ERROR vtier //; s/\\/\\\\/g; s/"/\\"/g' <<<"$line" | tr -d '\000-\037')
	errors_json+="${errors_json:+, }\"$line\""
done <<<"$errors"

if commit=$(git rev-parse --short HEAD 2>/dev/null); then
	git diff --quiet HEAD -- rust engine/src crypto_shim Kbuild || commit="$commit+dirty"
else
	commit=unknown
fi
accel=tcg
[ ${#kvm[@]} = 0 ] || accel=kvm
# (The errors through the environment: awk -v would undo their escapes.)
ERRORS=$errors_json awk -v commit="$commit" -v runtime="$runtime" -v accel="$accel" \
	-v vplain="$vtier_plain" '
	{ bw[$2, $3] = $4; iops[$2, $3] = $5 }
	# Figures as JSON; null where vtier has none (its run failed).
	function mbs(t, w) { return ((t, w) in bw) ? sprintf("%.1f", bw[t, w] * 1024 / 1e6) : "null" }
	function io(t, w) { return ((t, w) in iops) ? sprintf("%d", iops[t, w]) : "null" }
	function ratio(a, b, w) {
		return ((a, w) in bw && (b, w) in bw) ? sprintf("%.3f", bw[a, w] / bw[b, w]) : "null"
	}
	END {
		printf "{\n"
		printf "  \"benchmark\": \"guest-crypt\",\n"
		printf "  \"unit\": \"MB/s written by fio (libaio, O_DIRECT) in the QEMU guest, one virtual disk; ratios vtier/dm-crypt\",\n"
		printf "  \"accel\": \"%s\", \"fio_runtime_s\": %d, \"vtier_commit\": \"%s\",\n", accel, runtime, commit
		printf "  \"dmcrypt\": \"aes-xts-plain64, 64-byte key, no_read_workqueue no_write_workqueue\",\n"
		printf "  \"vtier\": \"/dev/vtier0, vtierctl format --encrypt, perf device only\",\n"
		printf "  \"vtier_wrote_plaintext\": %s,\n", (vplain < 0) ? "null" : (vplain > 0) ? "true" : "false"
		printf "  \"vtier_plaintext_lines_found\": %s,\n", (vplain < 0) ? "null" : vplain
		printf "  \"vtier_errors\": [%s],\n", ENVIRON["ERRORS"]
		printf "  \"results\": [\n"
		n = split("seq rand", ws, " ")
		for (i = 1; i <= n; i++) {
			w = ws[i]
			desc = (w == "seq") ? "1 MiB writes, queue depth 8" : "4 KiB random writes, queue depth 16"
			printf "    {\"workload\": \"%s\", \"what\": \"%s\", \"raw_mbs\": %s, \"dmcrypt_mbs\": %s, \"vtier_mbs\": %s, \"raw_iops\": %s, \"dmcrypt_iops\": %s, \"vtier_iops\": %s, \"vtier_over_dmcrypt\": %s, \"dmcrypt_over_raw\": %s, \"vtier_over_raw\": %s}%s\n",
				w, desc, mbs("raw", w), mbs("dmcrypt", w), mbs("vtier", w),
				io("raw", w), io("dmcrypt", w), io("vtier", w),
				ratio("vtier", "dmcrypt", w), ratio("dmcrypt", "raw", w),
				ratio("vtier", "raw", w), (i < n) ? "," : ""
		}
		printf "  ]\n}\n"
	}' <<<"$lines" >"$out.tmp"
mv "$out.tmp" "$out"

printf '%-8s %12s %12s %12s %14s\n' workload raw dm-crypt vtier vtier/dm-crypt
awk '{ bw[$2, $3] = $4 }
	function mbs(t, w) { return ((t, w) in bw) ? sprintf("%7.1f MB/s", bw[t, w] * 1024 / 1e6) : "failed" }
	END {
		split("seq rand", ws, " ")
		for (i = 1; i <= 2; i++) {
			w = ws[i]
			r = (("vtier", w) in bw) ? sprintf("%.3f", bw["vtier", w] / bw["dmcrypt", w]) : "-"
			printf "%-8s %12s %12s %12s %14s\n", w, mbs("raw", w), mbs("dmcrypt", w), mbs("vtier", w), r
		}
	}' <<<"$lines"
if [ -n "$errors_json" ]; then
	log "guest-crypt: vtier failed:"
	while read -r line; do log "  ${line#VTIER-BENCH-ERROR }"; done <<<"$errors"
fi
if [ "$vtier_plain" -gt 0 ]; then
	log "guest-crypt: NOTE: vtier wrote plaintext ($vtier_plain pattern lines found on the disk):"
	log "guest-crypt: its figures are of an unencrypted data path, not comparable with dm-crypt"
fi
log "guest-crypt: results in $out"
