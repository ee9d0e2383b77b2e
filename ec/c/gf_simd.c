// SPDX-License-Identifier: GPL-2.0
/*
 * GF(2^8) multiply-accumulate with SIMD for vtier's Reed-Solomon codec.
 *
 * vtier_ec_simd_apply() computes out[j] = sum over i of coef[j][i] * in[i]
 * in the field of ec/src/gf.rs (polynomial 0x11d), the operation behind
 * encode and reconstruct, with one of three implementations:
 *
 *   AVX2      each coefficient as two 16-byte tables (products with the low
 *             and the high nibble), looked up with vpshufb: 64 bytes a step;
 *   GFNI ymm  each coefficient as the 8x8 bit matrix of "multiply by c",
 *             applied with vgf2p8affineqb: 64 bytes a step;
 *   GFNI zmm  the same on 512-bit registers: 128 bytes a step.
 *
 * Each step loads a column of every input once and feeds up to four
 * outputs, whose sums stay in registers. Outputs go four at a time, inputs
 * eight at a time (later groups of inputs add to what the first stored), so
 * the tables of one pass (at most 1 KiB) fit on the kernel stack. Bytes past
 * the last whole step go through a plain C loop.
 *
 * The kernel's C code cannot use vector registers outside
 * kernel_fpu_begin()/kernel_fpu_end() and cannot include the compiler's
 * intrinsics, so every loop is one asm statement that owns its registers.
 * The same file is built in userspace by ec/simd/build.rs, for the tests
 * and the benchmark (gf_simd_compat.h).
 */
#include "gf_simd.h"

#define GROUP_OUT 4
#define GROUP_IN 8
#define TABLE 32
/* Bytes of each shard per kernel_fpu_begin() section. */
#define CHUNK 32768

static u8 gf_mul2(u8 a)
{
	return (u8)(a << 1) ^ ((a & 0x80) ? 0x1d : 0);
}

/* pow[b] = c * 2^b, for b < 8. */
static void gf_powers(u8 c, u8 *pow)
{
	unsigned int b;

	pow[0] = c;
	for (b = 1; b < 8; b++)
		pow[b] = gf_mul2(pow[b - 1]);
}

static u8 gf_mul(u8 a, u8 b)
{
	u8 r = 0;

	while (b) {
		if (b & 1)
			r ^= a;
		a = gf_mul2(a);
		b >>= 1;
	}
	return r;
}

/*
 * AVX2: products of c with 0x00..0x0f, then with 0x00, 0x10, .. 0xf0;
 * each from a smaller one, as the product is linear in n.
 */
static void table_avx2(u8 c, u8 *t)
{
	u8 pow[8];
	unsigned int n;

	gf_powers(c, pow);
	t[0] = 0;
	t[16] = 0;
	for (n = 1; n < 16; n++) {
		unsigned int low = __builtin_ctz(n);

		t[n] = t[n & (n - 1)] ^ pow[low];
		t[16 + n] = t[16 + (n & (n - 1))] ^ pow[4 + low];
	}
}

/*
 * GFNI: vgf2p8affineqb sets bit i of each result byte to the parity of
 * (source byte AND byte 7 - i of the matrix). Bit i of c * x is the XOR
 * of bit i of c * 2^b over the bits b set in x, so byte 7 - i of the
 * matrix has bit b set when bit i of c * 2^b is. Four copies fill 32
 * bytes: the ymm form reads all four, the zmm form broadcasts the first
 * into a register (not from memory: LLVM 19's assembler encodes the
 * displacement of vgf2p8affineqb's {1to8} memory form wrongly).
 */
static void table_gfni(u8 c, u8 *t)
{
	u8 pow[8];
	unsigned int i, b;

	gf_powers(c, pow);
	for (i = 0; i < 8; i++) {
		u8 row = 0;

		for (b = 0; b < 8; b++)
			row |= ((pow[b] >> i) & 1) << b;
		for (b = 0; b < 4; b++)
			t[8 * b + 7 - i] = row;
	}
}

/*
 * One pass: for p in [p, end) step by STEP, outputs out[0..G) (plus their
 * old contents if accumulate) get the sum over inputs in[0..n) of the
 * products given by the tables at tbl (TABLE bytes per coefficient, G
 * coefficients per input, ts = G * TABLE bytes per input).
 */
#define GF_PASS(name, outs, step, prologue, load, zero, acc, mul, store)	\
static void name(const u8 *tbl, size_t ts, size_t n,			\
		 const u8 *const *in, u8 *const *out,			\
		 size_t p, size_t end, size_t accumulate)		\
{									\
	const u8 *const *ip;						\
	const u8 *t;							\
	size_t cnt;							\
									\
	asm volatile(prologue						\
		     "1:\n\t"						\
		     zero						\
		     "test %[accumulate], %[accumulate]\n\t"		\
		     "jz 2f\n\t"					\
		     acc						\
		     "2:\n\t"						\
		     "mov %[in], %[ip]\n\t"				\
		     "mov %[tbl], %[t]\n\t"				\
		     "mov %[n], %[cnt]\n\t"				\
		     "3:\n\t"						\
		     "mov (%[ip]), %%rax\n\t"				\
		     load						\
		     mul						\
		     "add $8, %[ip]\n\t"				\
		     "add %[ts], %[t]\n\t"				\
		     "dec %[cnt]\n\t"					\
		     "jnz 3b\n\t"					\
		     store						\
		     "add $" #step ", %[p]\n\t"				\
		     "cmp %[end], %[p]\n\t"				\
		     "jb 1b\n\t"					\
		     "vzeroupper\n\t"					\
		     : [p] "+r" (p), [ip] "=&r" (ip), [t] "=&r" (t),	\
		       [cnt] "=&r" (cnt)				\
		     : [in] "r" (in), [out] "r" (out), [tbl] "r" (tbl),	\
		       [ts] "r" (ts), [n] "r" (n), [end] "r" (end),	\
		       [accumulate] "r" (accumulate), [g] "i" (outs)	\
		     : "rax", "cc", GF_CLOBBERS);		\
}

/* ymm: output j sums in ymm(2j) (bytes 0..31) and ymm(2j+1) (32..63). */
#define Y_ZERO(a, b)							\
	"vpxor %%" #a ", %%" #a ", %%" #a "\n\t"			\
	"vpxor %%" #b ", %%" #b ", %%" #b "\n\t"
#define Y_ACC(j, a, b)							\
	"mov " #j "(%[out]), %%rax\n\t"					\
	"vpxor (%%rax,%[p]), %%" #a ", %%" #a "\n\t"			\
	"vpxor 32(%%rax,%[p]), %%" #b ", %%" #b "\n\t"
#define Y_STORE(j, a, b)						\
	"mov " #j "(%[out]), %%rax\n\t"					\
	"vmovdqu %%" #a ", (%%rax,%[p])\n\t"				\
	"vmovdqu %%" #b ", 32(%%rax,%[p])\n\t"

#define Y_ZERO_ALL	\
	Y_ZERO(ymm0, ymm1)	\
	".if %c[g] > 1\n\t"	\
	Y_ZERO(ymm2, ymm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	Y_ZERO(ymm4, ymm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	Y_ZERO(ymm6, ymm7)	\
	".endif\n\t"
#define Y_ACC_ALL	\
	Y_ACC(0, ymm0, ymm1)	\
	".if %c[g] > 1\n\t"	\
	Y_ACC(8, ymm2, ymm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	Y_ACC(16, ymm4, ymm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	Y_ACC(24, ymm6, ymm7)	\
	".endif\n\t"
#define Y_STORE_ALL	\
	Y_STORE(0, ymm0, ymm1)	\
	".if %c[g] > 1\n\t"	\
	Y_STORE(8, ymm2, ymm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	Y_STORE(16, ymm4, ymm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	Y_STORE(24, ymm6, ymm7)	\
	".endif\n\t"

/* GFNI ymm: the input column in ymm8/ymm9. */
#define GY_LOAD								\
	"vmovdqu (%%rax,%[p]), %%ymm8\n\t"				\
	"vmovdqu 32(%%rax,%[p]), %%ymm9\n\t"
#define GY_MUL(off, a, b)						\
	"vgf2p8affineqb $0, " #off "(%[t]), %%ymm8, %%ymm10\n\t"	\
	"vgf2p8affineqb $0, " #off "(%[t]), %%ymm9, %%ymm11\n\t"	\
	"vpxor %%ymm10, %%" #a ", %%" #a "\n\t"				\
	"vpxor %%ymm11, %%" #b ", %%" #b "\n\t"
#define GY_MUL_ALL	\
	GY_MUL(0, ymm0, ymm1)	\
	".if %c[g] > 1\n\t"	\
	GY_MUL(32, ymm2, ymm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	GY_MUL(64, ymm4, ymm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	GY_MUL(96, ymm6, ymm7)	\
	".endif\n\t"

GF_PASS(gfni_y1, 1, 64, "", GY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, GY_MUL_ALL, Y_STORE_ALL)
GF_PASS(gfni_y2, 2, 64, "", GY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, GY_MUL_ALL, Y_STORE_ALL)
GF_PASS(gfni_y3, 3, 64, "", GY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, GY_MUL_ALL, Y_STORE_ALL)
GF_PASS(gfni_y4, 4, 64, "", GY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, GY_MUL_ALL, Y_STORE_ALL)

/*
 * AVX2: ymm15 holds 0x0f in every byte; the input column's low nibbles go
 * to ymm8/ymm9, its high nibbles to ymm10/ymm11; the coefficient's two
 * tables to ymm12 (low) and ymm13 (high), in both 128-bit lanes.
 */
#define AY_PROLOGUE							\
	"mov $0x0f, %%eax\n\t"						\
	"vmovd %%eax, %%xmm15\n\t"					\
	"vpbroadcastb %%xmm15, %%ymm15\n\t"
#define AY_LOAD								\
	"vmovdqu (%%rax,%[p]), %%ymm8\n\t"				\
	"vmovdqu 32(%%rax,%[p]), %%ymm9\n\t"				\
	"vpsrlw $4, %%ymm8, %%ymm10\n\t"				\
	"vpsrlw $4, %%ymm9, %%ymm11\n\t"				\
	"vpand %%ymm15, %%ymm8, %%ymm8\n\t"				\
	"vpand %%ymm15, %%ymm9, %%ymm9\n\t"				\
	"vpand %%ymm15, %%ymm10, %%ymm10\n\t"				\
	"vpand %%ymm15, %%ymm11, %%ymm11\n\t"
#define AY_MUL(off, a, b)						\
	"vbroadcasti128 " #off "(%[t]), %%ymm12\n\t"			\
	"vbroadcasti128 " #off "+16(%[t]), %%ymm13\n\t"			\
	"vpshufb %%ymm8, %%ymm12, %%ymm14\n\t"				\
	"vpxor %%ymm14, %%" #a ", %%" #a "\n\t"				\
	"vpshufb %%ymm9, %%ymm12, %%ymm14\n\t"				\
	"vpxor %%ymm14, %%" #b ", %%" #b "\n\t"				\
	"vpshufb %%ymm10, %%ymm13, %%ymm14\n\t"				\
	"vpxor %%ymm14, %%" #a ", %%" #a "\n\t"				\
	"vpshufb %%ymm11, %%ymm13, %%ymm14\n\t"				\
	"vpxor %%ymm14, %%" #b ", %%" #b "\n\t"
#define AY_MUL_ALL	\
	AY_MUL(0, ymm0, ymm1)	\
	".if %c[g] > 1\n\t"	\
	AY_MUL(32, ymm2, ymm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	AY_MUL(64, ymm4, ymm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	AY_MUL(96, ymm6, ymm7)	\
	".endif\n\t"

GF_PASS(avx2_1, 1, 64, AY_PROLOGUE, AY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, AY_MUL_ALL, Y_STORE_ALL)
GF_PASS(avx2_2, 2, 64, AY_PROLOGUE, AY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, AY_MUL_ALL, Y_STORE_ALL)
GF_PASS(avx2_3, 3, 64, AY_PROLOGUE, AY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, AY_MUL_ALL, Y_STORE_ALL)
GF_PASS(avx2_4, 4, 64, AY_PROLOGUE, AY_LOAD, Y_ZERO_ALL, Y_ACC_ALL, AY_MUL_ALL, Y_STORE_ALL)

/* zmm: output j sums in zmm(2j) (bytes 0..63) and zmm(2j+1) (64..127). */
#define Z_ZERO(a, b)							\
	"vpxorq %%" #a ", %%" #a ", %%" #a "\n\t"			\
	"vpxorq %%" #b ", %%" #b ", %%" #b "\n\t"
#define Z_ACC(j, a, b)							\
	"mov " #j "(%[out]), %%rax\n\t"					\
	"vpxorq (%%rax,%[p]), %%" #a ", %%" #a "\n\t"			\
	"vpxorq 64(%%rax,%[p]), %%" #b ", %%" #b "\n\t"
#define Z_STORE(j, a, b)						\
	"mov " #j "(%[out]), %%rax\n\t"					\
	"vmovdqu64 %%" #a ", (%%rax,%[p])\n\t"				\
	"vmovdqu64 %%" #b ", 64(%%rax,%[p])\n\t"
#define Z_ZERO_ALL	\
	Z_ZERO(zmm0, zmm1)	\
	".if %c[g] > 1\n\t"	\
	Z_ZERO(zmm2, zmm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	Z_ZERO(zmm4, zmm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	Z_ZERO(zmm6, zmm7)	\
	".endif\n\t"
#define Z_ACC_ALL	\
	Z_ACC(0, zmm0, zmm1)	\
	".if %c[g] > 1\n\t"	\
	Z_ACC(8, zmm2, zmm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	Z_ACC(16, zmm4, zmm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	Z_ACC(24, zmm6, zmm7)	\
	".endif\n\t"
#define Z_STORE_ALL	\
	Z_STORE(0, zmm0, zmm1)	\
	".if %c[g] > 1\n\t"	\
	Z_STORE(8, zmm2, zmm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	Z_STORE(16, zmm4, zmm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	Z_STORE(24, zmm6, zmm7)	\
	".endif\n\t"

#define GZ_LOAD								\
	"vmovdqu64 (%%rax,%[p]), %%zmm8\n\t"				\
	"vmovdqu64 64(%%rax,%[p]), %%zmm9\n\t"
#define GZ_MUL(off, a, b)						\
	"vpbroadcastq " #off "(%[t]), %%zmm12\n\t"			\
	"vgf2p8affineqb $0, %%zmm12, %%zmm8, %%zmm10\n\t"		\
	"vgf2p8affineqb $0, %%zmm12, %%zmm9, %%zmm11\n\t"		\
	"vpxorq %%zmm10, %%" #a ", %%" #a "\n\t"			\
	"vpxorq %%zmm11, %%" #b ", %%" #b "\n\t"
#define GZ_MUL_ALL	\
	GZ_MUL(0, zmm0, zmm1)	\
	".if %c[g] > 1\n\t"	\
	GZ_MUL(32, zmm2, zmm3)	\
	".endif\n\t"	\
	".if %c[g] > 2\n\t"	\
	GZ_MUL(64, zmm4, zmm5)	\
	".endif\n\t"	\
	".if %c[g] > 3\n\t"	\
	GZ_MUL(96, zmm6, zmm7)	\
	".endif\n\t"

GF_PASS(gfni_z1, 1, 128, "", GZ_LOAD, Z_ZERO_ALL, Z_ACC_ALL, GZ_MUL_ALL, Z_STORE_ALL)
GF_PASS(gfni_z2, 2, 128, "", GZ_LOAD, Z_ZERO_ALL, Z_ACC_ALL, GZ_MUL_ALL, Z_STORE_ALL)
GF_PASS(gfni_z3, 3, 128, "", GZ_LOAD, Z_ZERO_ALL, Z_ACC_ALL, GZ_MUL_ALL, Z_STORE_ALL)
GF_PASS(gfni_z4, 4, 128, "", GZ_LOAD, Z_ZERO_ALL, Z_ACC_ALL, GZ_MUL_ALL, Z_STORE_ALL)

typedef void (*gf_pass_fn)(const u8 *tbl, size_t ts, size_t n,
			   const u8 *const *in, u8 *const *out,
			   size_t p, size_t end, size_t accumulate);

static const gf_pass_fn passes[VTIER_EC_KINDS][GROUP_OUT] = {
	[VTIER_EC_AVX2] = { avx2_1, avx2_2, avx2_3, avx2_4 },
	[VTIER_EC_GFNI_YMM] = { gfni_y1, gfni_y2, gfni_y3, gfni_y4 },
	[VTIER_EC_GFNI_ZMM] = { gfni_z1, gfni_z2, gfni_z3, gfni_z4 },
};

static const size_t steps[VTIER_EC_KINDS] = {
	[VTIER_EC_AVX2] = 64,
	[VTIER_EC_GFNI_YMM] = 64,
	[VTIER_EC_GFNI_ZMM] = 128,
};

#ifdef __KERNEL__

unsigned int vtier_ec_simd_supported(void)
{
	unsigned int s = 0;
	bool ymm = boot_cpu_has(X86_FEATURE_AVX) &&
		   boot_cpu_has(X86_FEATURE_AVX2) &&
		   cpu_has_xfeatures(XFEATURE_MASK_SSE | XFEATURE_MASK_YMM,
				     NULL);
	bool zmm = ymm && boot_cpu_has(X86_FEATURE_AVX512F) &&
		   cpu_has_xfeatures(XFEATURE_MASK_SSE | XFEATURE_MASK_YMM |
				     XFEATURE_MASK_AVX512, NULL);
	bool gfni = boot_cpu_has(X86_FEATURE_GFNI);

	if (ymm)
		s |= 1u << VTIER_EC_AVX2;
	if (ymm && gfni)
		s |= 1u << VTIER_EC_GFNI_YMM;
	if (zmm && gfni)
		s |= 1u << VTIER_EC_GFNI_ZMM;
	return s;
}

#else

unsigned int vtier_ec_simd_supported(void)
{
	unsigned int s = 0;
	int ymm, zmm, gfni;

	__builtin_cpu_init();
	ymm = __builtin_cpu_supports("avx2");
	zmm = ymm && __builtin_cpu_supports("avx512f");
	gfni = __builtin_cpu_supports("gfni");
	if (ymm)
		s |= 1u << VTIER_EC_AVX2;
	if (ymm && gfni)
		s |= 1u << VTIER_EC_GFNI_YMM;
	if (zmm && gfni)
		s |= 1u << VTIER_EC_GFNI_ZMM;
	return s;
}

#endif /* __KERNEL__ */

/* Bytes [from, len) of every output, one at a time. */
static void apply_tail(const u8 *coef, size_t stride, unsigned int k,
		       unsigned int m, const u8 *const *in, u8 *const *out,
		       size_t from, size_t len)
{
	unsigned int i, j;
	size_t x;

	for (j = 0; j < m; j++) {
		for (x = from; x < len; x++) {
			u8 v = 0;

			for (i = 0; i < k; i++)
				v ^= gf_mul(coef[j * stride + i], in[i][x]);
			out[j][x] = v;
		}
	}
}

/* Tables of coefficients [j0, j0 + g) x [i0, i0 + n), by input. */
static void tables(unsigned int kind, const u8 *coef, size_t stride,
		   unsigned int i0, unsigned int n, unsigned int j0,
		   unsigned int g, u8 *tbl)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < g; j++) {
			u8 c = coef[(j0 + j) * stride + i0 + i];
			u8 *t = tbl + (i * g + j) * TABLE;

			if (kind == VTIER_EC_AVX2)
				table_avx2(c, t);
			else
				table_gfni(c, t);
		}
	}
}

/*
 * out[j][x] = sum over i < k of coef[j * stride + i] * in[i][x], for j < m
 * and x < len, with implementation kind. Every in[i] and out[j] holds at
 * least len bytes; outputs must not overlap inputs or each other. Returns
 * 0, -EINVAL (kind not supported here, k or m out of range) or -EBUSY
 * (vector registers unusable in this context, see irq_fpu_usable(): the
 * caller then uses its scalar code). Outputs are unchanged on an error.
 */
int vtier_ec_simd_apply(unsigned int kind, const u8 *coef, size_t stride,
			unsigned int k, unsigned int m, const u8 *const *in,
			u8 *const *out, size_t len)
{
	u8 tbl[GROUP_OUT * GROUP_IN * TABLE];
	size_t step, vec, pos;
	unsigned int i0, j0;
	bool single;

	if (kind >= VTIER_EC_KINDS ||
	    !(vtier_ec_simd_supported() & (1u << kind)))
		return -EINVAL;
	if (!k || k > VTIER_EC_MAX_IN || !m || m > VTIER_EC_MAX_OUT ||
	    stride < k)
		return -EINVAL;
	if (!irq_fpu_usable())
		return -EBUSY;
	step = steps[kind];
	vec = len - len % step;

	/* One group of each: the tables are built once, not per chunk. */
	single = k <= GROUP_IN && m <= GROUP_OUT;
	if (single)
		tables(kind, coef, stride, 0, k, 0, m, tbl);
	for (pos = 0; pos < vec; pos += CHUNK) {
		size_t end = min(vec, pos + CHUNK);

		kernel_fpu_begin();
		for (j0 = 0; j0 < m; j0 += GROUP_OUT) {
			unsigned int g = min(m - j0, (unsigned int)GROUP_OUT);

			for (i0 = 0; i0 < k; i0 += GROUP_IN) {
				unsigned int n = min(k - i0,
						     (unsigned int)GROUP_IN);

				if (!single)
					tables(kind, coef, stride, i0, n, j0, g,
					       tbl);
				passes[kind][g - 1](tbl, (size_t)g * TABLE, n,
						    in + i0, out + j0, pos,
						    end, i0 > 0);
			}
		}
		kernel_fpu_end();
	}
	apply_tail(coef, stride, k, m, in, out, vec, len);
	return 0;
}
