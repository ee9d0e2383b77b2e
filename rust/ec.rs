// SPDX-License-Identifier: GPL-2.0

//! Reed-Solomon erasure coding, from `ec/src/`, whose files refer to each
//! other as `super::`: so they are declared together, under `crate::ec`.

#[path = "../ec/src/apply.rs"]
pub(crate) mod apply;
#[path = "../ec/src/backend.rs"]
pub(crate) mod backend;
#[path = "../ec/src/codec.rs"]
pub(crate) mod codec;
#[path = "../ec/src/error.rs"]
pub(crate) mod error;
#[path = "../ec/src/gf.rs"]
pub(crate) mod gf;
#[path = "../ec/src/limits.rs"]
pub(crate) mod limits;
#[path = "../ec/src/matrix.rs"]
pub(crate) mod matrix;
