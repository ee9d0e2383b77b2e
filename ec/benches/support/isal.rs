// SPDX-License-Identifier: GPL-2.0

//! ISA-L's erasure coding, loaded at run time from Debian's `libisal2`
//! (`apt-get install libisal-dev`), for the benchmark only.
//!
//! ISA-L multiplies by any coefficient matrix, so it is handed *our* parity
//! and decoding rows: its output must then equal ours byte for byte.

use libloading::{Library, Symbol};
use std::os::raw::c_int;

type InitTables = unsafe extern "C" fn(c_int, c_int, *const u8, *mut u8);
type EncodeData =
    unsafe extern "C" fn(c_int, c_int, c_int, *const u8, *const *const u8, *const *mut u8);

/// The loaded library and the two entry points the benchmark calls.
pub struct Isal {
    _lib: Library,
    init_tables: InitTables,
    encode_data: EncodeData,
}

impl Isal {
    /// Loads ISA-L, or returns why it could not.
    pub fn load() -> Result<Self, String> {
        let mut last = String::new();
        for name in ["libisal.so.2", "libisal.so"] {
            // SAFETY: ISA-L's initialisers only set up its CPU dispatch
            // tables; loading it has no other side effects.
            match unsafe { Library::new(name) } {
                Ok(lib) => {
                    // SAFETY: the types match `erasure_code.h`:
                    // void ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls);
                    // void ec_encode_data(int len, int k, int rows, unsigned char *gftbls,
                    //                     unsigned char **data, unsigned char **coding);
                    let (init_tables, encode_data) = unsafe {
                        let i: Symbol<InitTables> =
                            lib.get(b"ec_init_tables\0").map_err(|e| e.to_string())?;
                        let e: Symbol<EncodeData> =
                            lib.get(b"ec_encode_data\0").map_err(|e| e.to_string())?;
                        (*i, *e)
                    };
                    return Ok(Self {
                        _lib: lib,
                        init_tables,
                        encode_data,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    /// Expanded multiplication tables for `rows` (each `k` coefficients).
    pub fn tables(&self, k: usize, rows: &[&[u8]]) -> Vec<u8> {
        let a: Vec<u8> = rows.iter().flat_map(|r| r[..k].iter().copied()).collect();
        let mut t = vec![0u8; 32 * k * rows.len()];
        // SAFETY: `a` holds rows.len()×k coefficients and `t` the 32 bytes
        // per coefficient that ec_init_tables writes.
        unsafe { (self.init_tables)(k as c_int, rows.len() as c_int, a.as_ptr(), t.as_mut_ptr()) };
        t
    }

    /// `out[j] = Σ_i row_j[i]·inputs[i]` with tables from [`Self::tables`].
    pub fn apply(&self, tables: &[u8], inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let len = inputs[0].len();
        assert!(inputs.iter().all(|s| s.len() == len) && outputs.iter().all(|s| s.len() == len));
        assert_eq!(tables.len(), 32 * inputs.len() * outputs.len());
        let ins: Vec<*const u8> = inputs.iter().map(|s| s.as_ptr()).collect();
        let outs: Vec<*mut u8> = outputs.iter_mut().map(|s| s.as_mut_ptr()).collect();
        // SAFETY: every pointer is to a live buffer of `len` bytes (checked
        // above), inputs are only read, outputs are distinct and writable, and
        // `tables` has the size ec_init_tables gave it for k×rows.
        unsafe {
            (self.encode_data)(
                len as c_int,
                ins.len() as c_int,
                outs.len() as c_int,
                tables.as_ptr(),
                ins.as_ptr(),
                outs.as_ptr(),
            )
        };
    }
}
