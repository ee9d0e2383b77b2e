/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What gf_simd.c needs from its environment: the kernel's headers in
 * vtier.ko, stand-ins for them in the userspace build (ec/simd/build.rs),
 * where the same file is compiled for the tests and the benchmark.
 */
#ifndef VTIER_GF_SIMD_COMPAT_H
#define VTIER_GF_SIMD_COMPAT_H

#ifdef __KERNEL__

#include <linux/types.h>
#include <linux/errno.h>
#include <linux/minmax.h>
#include <asm/cpufeature.h>
#include <asm/fpu/api.h>
#include <asm/fpu/xcr.h>

/* The kernel's C code never uses vector registers of its own. */
#define GF_CLOBBERS "memory"

#else /* userspace */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#define u8 uint8_t
#define u64 uint64_t
#define min(a, b) ((a) < (b) ? (a) : (b))

/* Userspace may use vector registers anywhere: the asm blocks own theirs. */
#define irq_fpu_usable() 1
#define kernel_fpu_begin() do { } while (0)
#define kernel_fpu_end() do { } while (0)

/* The compiler's own registers too, so say which ones the asm overwrites. */
#define GF_CLOBBERS "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", \
	"xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", \
	"xmm14", "xmm15"

#endif /* __KERNEL__ */

#endif /* VTIER_GF_SIMD_COMPAT_H */
