// SPDX-License-Identifier: GPL-2.0

//! The module's crate root (`rust/vtier.rs`) must mount every engine layer
//! that is not userspace-only, or the kernel build silently stops proving
//! that layer is `no_std` and allocation-fallible. Only `kcompat` (the
//! module has its own) and `testing` (test doubles) stay out.

use std::fs;
use std::path::Path;

#[test]
fn every_kernel_capable_engine_module_is_in_the_kernel_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = fs::read_to_string(root.join("src/lib.rs")).expect("engine/src/lib.rs");
    let kernel = fs::read_to_string(root.join("../rust/vtier.rs")).expect("rust/vtier.rs");
    let mut std_only = false;
    let mut missing = Vec::new();
    for line in lib.lines().map(str::trim) {
        if line.starts_with("#[cfg(feature = \"std\")]") {
            std_only = true;
            continue;
        }
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            let file = format!("{name} = \"../engine/src/{name}.rs\";");
            let layer = format!("{name} = \"../engine/src/{name}/mod.rs\";");
            let mounted = kernel.contains(&file) || kernel.contains(&layer);
            if !std_only && !["kcompat", "testing"].contains(&name) && !mounted {
                missing.push(name.to_string());
            }
        }
        std_only = false;
    }
    assert!(
        missing.is_empty(),
        "not declared in rust/vtier.rs: {missing:?}"
    );
}
