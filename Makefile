# SPDX-License-Identifier: GPL-2.0
#
# vtier: the commands people run. kbuild itself reads ./Kbuild.
#
#   make               build vtier.ko against our cached 7.3 kernel (release)
#   make KDIR=<tree>   build vtier.ko against your own built Rust-enabled 7.3 tree
#   make demo          boot QEMU, create /dev/vtier0 on virtio disks, run a workload
#   make test          every test: cargo test + the QEMU suites on both kernels
#   make bench         every benchmark; results in bench/results/
#   make soak          power cuts of the kernel path (CUTS=200, FLAVOUR)
#   make check         rustfmt, clippy (userspace, fuzz targets, the module),
#                      shellcheck
#   make fuzz          every cargo fuzz target of the engine, 60 s each
#                      (FUZZ_SECONDS=N, FUZZ_RUNS=N, FUZZ_TARGETS="a b")
#
# FLAVOUR=debug builds the module against the clang/KASAN/lockdep kernel.

FLAVOUR ?= release
KDIR ?=

# Recipes run in bash with pipefail: a pipeline fails if any part fails.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all module setup test demo bench soak check fuzz clean

all: module

setup:
	@scripts/setup.sh

ifeq ($(KDIR),)
module: setup
	@scripts/build-module.sh $(FLAVOUR)
else
module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules
endif

test:
	@scripts/test.sh

demo:
	@scripts/demo.sh

bench:
	@scripts/bench.sh

CUTS ?= 200
soak:
	@scripts/soak.sh $(CUTS) $(FLAVOUR)

fuzz:
	@FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_RUNS='$(FUZZ_RUNS)' FUZZ_TARGETS='$(FUZZ_TARGETS)' scripts/fuzz.sh

check: setup
	scripts/check-shell.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo fmt --manifest-path engine/fuzz/Cargo.toml --all -- --check
	cargo clippy --manifest-path engine/fuzz/Cargo.toml --all-targets -- -D warnings
	VTIER_CLIPPY=1 scripts/build-module.sh $(FLAVOUR) 2>&1 | tee target/kmod/clippy.log
	! grep -q '^warning' target/kmod/clippy.log

clean:
	rm -rf target/kmod qemu-test/out
	cargo clean
	$(if $(KDIR),$(MAKE) -C $(KDIR) M=$(CURDIR) clean)
