/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vtier's glue to the kernel crypto API: AES-256-XTS on data units of up to
 * one 4 KiB block, encrypted or decrypted in place (or page to page) with a
 * caller-given 16-byte tweak. Rust calls these through extern "C"
 * declarations in rust/crypto.rs; keep the two in sync.
 */
#ifndef VTIER_CRYPTO_SHIM_XTS_H
#define VTIER_CRYPTO_SHIM_XTS_H

#include <linux/types.h>

struct crypto_skcipher;
struct page;

/* AES-256-XTS: two 32-byte AES keys, data key first, tweak key second. */
#define VTIER_XTS_KEY_SIZE	64
/* The tweak (the crypto API's IV): one AES block. */
#define VTIER_XTS_TWEAK_SIZE	16
/* A data unit is at least one AES block and at most one vtier block. */
#define VTIER_XTS_MIN_LEN	16
#define VTIER_XTS_MAX_LEN	4096

struct crypto_skcipher *vtier_xts_alloc(const u8 *key, unsigned int keylen);
void vtier_xts_free(struct crypto_skcipher *tfm);
const char *vtier_xts_driver_name(struct crypto_skcipher *tfm);
int vtier_xts_crypt_buf(struct crypto_skcipher *tfm, void *buf,
			unsigned int len, const u8 *tweak, bool encrypt);
int vtier_xts_crypt_page(struct crypto_skcipher *tfm, struct page *dst,
			 struct page *src, unsigned int offset,
			 unsigned int len, const u8 *tweak, bool encrypt);
void vtier_memzero_explicit(void *p, size_t len);

#endif /* VTIER_CRYPTO_SHIM_XTS_H */
