/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vtier's glue to the kernel keyring: reads the payload of a "logon" key
 * (the key type whose payload userspace can set but never read back) into
 * a caller's buffer. Rust calls this through an extern "C" declaration in
 * rust/crypto.rs; keep the two in sync.
 */
#ifndef VTIER_CRYPTO_SHIM_KEYRING_H
#define VTIER_CRYPTO_SHIM_KEYRING_H

#include <linux/types.h>

int vtier_keyring_read_logon(const char *name, u8 *out, unsigned int len,
			     unsigned int *found_len);

#endif /* VTIER_CRYPTO_SHIM_KEYRING_H */
