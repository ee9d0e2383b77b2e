/* SPDX-License-Identifier: GPL-2.0 */
/*
 * GF(2^8) multiply-accumulate with SIMD for vtier's Reed-Solomon codec
 * (ec/src): the C side of rust/ec_simd.rs and of the userspace crate
 * vtier-ec-simd (ec/simd).
 */
#ifndef VTIER_GF_SIMD_H
#define VTIER_GF_SIMD_H

#include "gf_simd_compat.h"

/* Implementations, numbered for the bit mask of vtier_ec_simd_supported(). */
enum vtier_ec_simd_kind {
	VTIER_EC_AVX2 = 0,	/* vpshufb on 4-bit tables, 32 bytes a step */
	VTIER_EC_GFNI_YMM = 1,	/* vgf2p8affineqb, ymm, 64 bytes a step */
	VTIER_EC_GFNI_ZMM = 2,	/* vgf2p8affineqb, zmm, 128 bytes a step */
	VTIER_EC_KINDS = 3,
};

/* Most inputs and outputs of one call (the codec's MAX_DATA/PARITY_SHARDS). */
#define VTIER_EC_MAX_IN 24
#define VTIER_EC_MAX_OUT 8

unsigned int vtier_ec_simd_supported(void);
int vtier_ec_simd_apply(unsigned int kind, const u8 *coef, size_t stride,
			unsigned int k, unsigned int m, const u8 *const *in,
			u8 *const *out, size_t len);

#endif /* VTIER_GF_SIMD_H */
