// SPDX-License-Identifier: GPL-2.0
/*
 * Keys for vtier from the kernel keyring.
 *
 * An encrypted vtier volume can take its AES-256-XTS key from a "logon" key
 * (e.g. `keyctl padd logon vtier:v0 @u < key.bin`), named in configfs. The
 * key is looked up in the keyrings of the process that powers the device
 * on, with request_key() and no upcall: a key that is not there is -ENOKEY
 * at once. Its payload is copied, under the key's semaphore, straight into
 * the caller's buffer, which the caller wipes; this file keeps no copy (the
 * keyring's own copy is the keyring's business: user_destroy() frees it
 * with kfree_sensitive()).
 */

#include <linux/err.h>
#include <linux/errno.h>
#include <linux/key.h>
#include <linux/rwsem.h>
#include <linux/string.h>
#include <keys/user-type.h>

#include "keyring.h"

/**
 * vtier_keyring_read_logon() - copy the payload of a logon key
 * @name: the key's description, e.g. "vtier:v0" (logon keys need a
 *	  "prefix:" part); NUL-terminated
 * @out: receives exactly @len bytes on success
 * @len: the payload length expected
 * @found_len: set to the payload's actual length when the key was found
 *	       (0 otherwise), so that the caller can say what was wrong
 *
 * On failure @out is wiped.
 *
 * Context: process context; may sleep. Searches the current process's
 * keyrings.
 * Return: 0; -ENOKEY if there is no such key (or it is negative), -EINVAL
 * if the payload is not @len bytes or @name is not a logon key's name,
 * -EKEYREVOKED, -EKEYEXPIRED, -EACCES, or -EOPNOTSUPP without CONFIG_KEYS.
 */
int vtier_keyring_read_logon(const char *name, u8 *out, unsigned int len,
			     unsigned int *found_len)
{
#if IS_ENABLED(CONFIG_KEYS)
	const struct user_key_payload *payload;
	struct key *key;
	int err = 0;

	*found_len = 0;
	key = request_key(&key_type_logon, name, NULL);
	if (IS_ERR(key)) {
		err = PTR_ERR(key);
		goto out_wipe;
	}
	down_read(&key->sem);
	payload = user_key_payload_locked(key);
	if (!payload) {
		err = -EKEYREVOKED;
	} else {
		*found_len = payload->datalen;
		if (payload->datalen == len)
			memcpy(out, payload->data, len);
		else
			err = -EINVAL;
	}
	up_read(&key->sem);
	key_put(key);
	if (!err)
		return 0;
out_wipe:
	memzero_explicit(out, len);
	return err;
#else
	*found_len = 0;
	memzero_explicit(out, len);
	return -EOPNOTSUPP;
#endif
}
