/*
 * runtime/seal.c - sealing small secrets for storage in Redis.
 *
 * Contract (see seal.h): nonce || secretbox(value) under a per-context
 * subkey, BLAKE2b-256(key = master, message = "studyshare.seal" 0x00
 * ctx).  A random 192-bit nonce per value: values sealed under one subkey
 * never share a nonce in practice, so no counter has to be kept anywhere.
 */
#include <stdint.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/seal.h"

#define SEAL_DOMAIN "studyshare.seal"

int
ss_seal_key_init(ss_seal_key *key, const char *secret, size_t len)
{
	static const unsigned char zero = 0;
	crypto_generichash_state st;

	memset(key, 0, sizeof *key);
	if (secret == NULL || len < SS_SEAL_SECRET_MIN)
		return SS_EBADREQ;
	if (sodium_init() < 0)
		return SS_EINTERNAL;
	/* The secret may be any length: hash it down to a key. */
	crypto_generichash_init(&st, NULL, 0, sizeof key->k);
	crypto_generichash_update(&st, (const unsigned char *)SEAL_DOMAIN,
	                          sizeof SEAL_DOMAIN - 1);
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)secret, len);
	crypto_generichash_final(&st, key->k, sizeof key->k);
	sodium_memzero(&st, sizeof st);
	return 0;
}

void
ss_seal_key_clear(ss_seal_key *key)
{
	sodium_memzero(key, sizeof *key);
}

static void
subkey(const ss_seal_key *key, const char *ctx,
       unsigned char out[crypto_secretbox_KEYBYTES])
{
	static const unsigned char zero = 0;
	crypto_generichash_state st;

	crypto_generichash_init(&st, key->k, sizeof key->k,
	                        crypto_secretbox_KEYBYTES);
	crypto_generichash_update(&st, (const unsigned char *)SEAL_DOMAIN,
	                          sizeof SEAL_DOMAIN - 1);
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)ctx, strlen(ctx));
	crypto_generichash_final(&st, out, crypto_secretbox_KEYBYTES);
	sodium_memzero(&st, sizeof st);
}

int
ss_seal(const ss_seal_key *key, const char *ctx, const void *msg, size_t len,
        unsigned char *out, size_t outcap, size_t *outlen)
{
	unsigned char k[crypto_secretbox_KEYBYTES];

	if (len > SIZE_MAX - SS_SEAL_OVERHEAD ||
	    outcap < len + SS_SEAL_OVERHEAD)
		return SS_EBADREQ;
	subkey(key, ctx, k);
	randombytes_buf(out, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, msg, len, out,
	                      k);
	sodium_memzero(k, sizeof k);
	*outlen = len + SS_SEAL_OVERHEAD;
	return 0;
}

int
ss_unseal(const ss_seal_key *key, const char *ctx, const unsigned char *in,
          size_t len, unsigned char *out, size_t outcap, size_t *outlen)
{
	unsigned char k[crypto_secretbox_KEYBYTES];
	int rv;

	*outlen = 0;
	if (len < SS_SEAL_OVERHEAD)
		return SS_EINTERNAL;
	if (outcap < len - SS_SEAL_OVERHEAD)
		return SS_EBADREQ;
	subkey(key, ctx, k);
	rv = crypto_secretbox_open_easy(out, in + crypto_secretbox_NONCEBYTES,
	                                len - crypto_secretbox_NONCEBYTES, in,
	                                k);
	sodium_memzero(k, sizeof k);
	if (rv != 0) {
		sodium_memzero(out, len - SS_SEAL_OVERHEAD);
		return SS_EINTERNAL;
	}
	*outlen = len - SS_SEAL_OVERHEAD;
	return 0;
}
