// SPDX-License-Identifier: GPL-2.0

//! Compiles `ec/c/gf_simd.c` (the SIMD kernels of `vtier.ko`) for userspace.

fn main() {
    let dir = std::path::Path::new("../c");
    for f in ["gf_simd.c", "gf_simd.h", "gf_simd_compat.h"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    cc::Build::new()
        .file(dir.join("gf_simd.c"))
        .include(dir)
        // The asm needs no compiler support for AVX; an optimised build
        // keeps the C around it cheap even in `cargo test`.
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .compile("vtier_ec_simd");
}
