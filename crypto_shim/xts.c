// SPDX-License-Identifier: GPL-2.0
/*
 * AES-256-XTS for vtier through the kernel crypto API.
 *
 * One transform ("xts(aes)", whichever implementation the crypto API picks,
 * synchronous or asynchronous) per key. A data unit of 16 to 4096 bytes is
 * encrypted or decrypted with one 16-byte tweak, either in a kernel buffer
 * (kmalloc'ed or vmalloc'ed, in place) or from one page to another (or in
 * place when both are the same page). Every call may sleep: it allocates its
 * request with GFP_NOIO and waits for an asynchronous implementation to
 * finish. Errors are negative errnos.
 *
 * The transform holds the only copy of the key that this file makes; the
 * crypto API wipes it when the transform is freed, and request memory (which
 * holds the tweak) is wiped here with kfree_sensitive().
 */

#include <crypto/skcipher.h>
#include <linux/crypto.h>
#include <linux/err.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "xts.h"

/* A data unit of at most 4096 bytes spans at most two pages. */
#define VTIER_XTS_MAX_SG	2

/**
 * vtier_xts_alloc() - allocate an AES-256-XTS transform and set its key
 * @key: VTIER_XTS_KEY_SIZE bytes, data key then tweak key
 * @keylen: must be VTIER_XTS_KEY_SIZE
 *
 * Keys whose two halves are equal are refused (-EINVAL), as the XTS
 * standard requires. The caller keeps ownership of @key and wipes it.
 *
 * Return: the transform, or an ERR_PTR: -EINVAL for a bad key, -ENOENT when
 * the kernel has no xts(aes), -ENOMEM.
 */
struct crypto_skcipher *vtier_xts_alloc(const u8 *key, unsigned int keylen)
{
	struct crypto_skcipher *tfm;
	int err;

	if (keylen != VTIER_XTS_KEY_SIZE)
		return ERR_PTR(-EINVAL);
	tfm = crypto_alloc_skcipher("xts(aes)", 0, 0);
	if (IS_ERR(tfm))
		return tfm;
	if (crypto_skcipher_ivsize(tfm) != VTIER_XTS_TWEAK_SIZE) {
		err = -EINVAL;
		goto err_free;
	}
	crypto_skcipher_set_flags(tfm, CRYPTO_TFM_REQ_FORBID_WEAK_KEYS);
	err = crypto_skcipher_setkey(tfm, key, keylen);
	if (err)
		goto err_free;
	return tfm;

err_free:
	crypto_free_skcipher(tfm);
	return ERR_PTR(err);
}

/**
 * vtier_xts_free() - free a transform from vtier_xts_alloc(); wipes its key
 * @tfm: the transform; no request may be in flight on it
 */
void vtier_xts_free(struct crypto_skcipher *tfm)
{
	crypto_free_skcipher(tfm);
}

/**
 * vtier_xts_driver_name() - the implementation behind @tfm
 * @tfm: a transform from vtier_xts_alloc()
 *
 * Return: a string such as "xts-aes-aesni-avx", valid as long as @tfm.
 */
const char *vtier_xts_driver_name(struct crypto_skcipher *tfm)
{
	return crypto_skcipher_driver_name(tfm);
}

/*
 * Runs one request of @len bytes from @src to @dst with a copy of @tweak and
 * waits for it, whether the implementation completes it at once or later.
 */
static int vtier_xts_crypt(struct crypto_skcipher *tfm,
			   struct scatterlist *src, struct scatterlist *dst,
			   unsigned int len, const u8 *tweak, bool encrypt)
{
	unsigned int align = crypto_skcipher_alignmask(tfm) + 1;
	unsigned int reqsize = sizeof(struct skcipher_request) +
			       crypto_skcipher_reqsize(tfm);
	struct skcipher_request *req;
	DECLARE_CRYPTO_WAIT(wait);
	u8 *iv;
	int err;

	/*
	 * The IV lives after the request, in the same allocation: the
	 * implementation may write to it, and an asynchronous one may read it
	 * by DMA, so it is neither the caller's buffer nor on the stack.
	 */
	req = kmalloc(reqsize + align - 1 + VTIER_XTS_TWEAK_SIZE, GFP_NOIO);
	if (!req)
		return -ENOMEM;
	iv = PTR_ALIGN((u8 *)req + reqsize, align);
	memcpy(iv, tweak, VTIER_XTS_TWEAK_SIZE);

	skcipher_request_set_tfm(req, tfm);
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG |
					   CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &wait);
	skcipher_request_set_crypt(req, src, dst, len, iv);
	if (encrypt)
		err = crypto_wait_req(crypto_skcipher_encrypt(req), &wait);
	else
		err = crypto_wait_req(crypto_skcipher_decrypt(req), &wait);
	kfree_sensitive(req);
	return err;
}

static bool vtier_xts_len_ok(unsigned int len)
{
	return len >= VTIER_XTS_MIN_LEN && len <= VTIER_XTS_MAX_LEN;
}

/*
 * Describes @len bytes at @buf, a kmalloc'ed (linear map) or vmalloc'ed
 * (including a virtually mapped stack) buffer, as a scatterlist of at most
 * VTIER_XTS_MAX_SG entries. Anything else, such as module data, is -EINVAL.
 */
static int vtier_xts_buf_to_sg(struct scatterlist *sg, u8 *buf,
			       unsigned int len)
{
	unsigned int nents = 0;

	sg_init_table(sg, VTIER_XTS_MAX_SG);
	while (len) {
		unsigned int offset = offset_in_page(buf);
		unsigned int n = min_t(unsigned int, len, PAGE_SIZE - offset);
		struct page *page;

		if (nents == VTIER_XTS_MAX_SG)
			return -EINVAL;
		if (is_vmalloc_addr(buf))
			page = vmalloc_to_page(buf);
		else if (virt_addr_valid(buf))
			page = virt_to_page(buf);
		else
			return -EINVAL;
		if (!page)
			return -EINVAL;
		sg_set_page(&sg[nents++], page, n, offset);
		buf += n;
		len -= n;
	}
	sg_mark_end(&sg[nents - 1]);
	return 0;
}

/**
 * vtier_xts_crypt_buf() - encrypt or decrypt one data unit in place
 * @tfm: a transform from vtier_xts_alloc()
 * @buf: the data unit, in kmalloc'ed or vmalloc'ed memory
 * @len: its length, VTIER_XTS_MIN_LEN to VTIER_XTS_MAX_LEN bytes
 * @tweak: VTIER_XTS_TWEAK_SIZE bytes; not modified
 * @encrypt: true to encrypt, false to decrypt
 *
 * Context: process context; may sleep.
 * Return: 0, -EINVAL for a bad length or buffer, -ENOMEM, or the
 * implementation's error.
 */
int vtier_xts_crypt_buf(struct crypto_skcipher *tfm, void *buf,
			unsigned int len, const u8 *tweak, bool encrypt)
{
	struct scatterlist sg[VTIER_XTS_MAX_SG];
	int err;

	if (!vtier_xts_len_ok(len))
		return -EINVAL;
	err = vtier_xts_buf_to_sg(sg, buf, len);
	if (err)
		return err;
	return vtier_xts_crypt(tfm, sg, sg, len, tweak, encrypt);
}

/**
 * vtier_xts_crypt_page() - encrypt or decrypt one data unit between pages
 * @tfm: a transform from vtier_xts_alloc()
 * @dst: the page that receives the result
 * @src: the page read; may be @dst, for an in-place operation
 * @offset: byte offset of the data unit in both pages
 * @len: its length, VTIER_XTS_MIN_LEN to VTIER_XTS_MAX_LEN bytes, within
 *	 the page
 * @tweak: VTIER_XTS_TWEAK_SIZE bytes; not modified
 * @encrypt: true to encrypt, false to decrypt
 *
 * Context: process context; may sleep.
 * Return: 0, -EINVAL for a bad length or offset, -ENOMEM, or the
 * implementation's error.
 */
int vtier_xts_crypt_page(struct crypto_skcipher *tfm, struct page *dst,
			 struct page *src, unsigned int offset,
			 unsigned int len, const u8 *tweak, bool encrypt)
{
	struct scatterlist sg_src, sg_dst;

	if (!vtier_xts_len_ok(len) || offset > PAGE_SIZE - len)
		return -EINVAL;
	sg_init_table(&sg_src, 1);
	sg_set_page(&sg_src, src, len, offset);
	if (dst == src)
		return vtier_xts_crypt(tfm, &sg_src, &sg_src, len, tweak,
				       encrypt);
	sg_init_table(&sg_dst, 1);
	sg_set_page(&sg_dst, dst, len, offset);
	return vtier_xts_crypt(tfm, &sg_src, &sg_dst, len, tweak, encrypt);
}

/**
 * vtier_memzero_explicit() - wipe key material; never optimised away
 * @p: start of the memory
 * @len: its length in bytes
 */
void vtier_memzero_explicit(void *p, size_t len)
{
	memzero_explicit(p, len);
}
