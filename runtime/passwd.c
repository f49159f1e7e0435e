/*
 * runtime/passwd.c - see passwd.h.
 */
#include <pthread.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/passwd.h"

static char dummy_hash[SS_PASSWD_HASH_LEN];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
prehash(const char *pepper, const char *pw, size_t pwlen,
        unsigned char out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;
	unsigned char key[crypto_auth_hmacsha256_KEYBYTES];

	/* The pepper may be any length: HMAC keys are hashed down anyway. */
	crypto_generichash(key, sizeof key, (const unsigned char *)pepper,
	                   strlen(pepper), NULL, 0);
	crypto_auth_hmacsha256_init(&st, key, sizeof key);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)pw, pwlen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(key, sizeof key);
}

int
ss_passwd_hash(const char *pepper, const char *pw, size_t pwlen,
               char out[SS_PASSWD_HASH_LEN])
{
	unsigned char pre[crypto_auth_hmacsha256_BYTES];
	int rv;

	if (sodium_init() < 0)
		return SS_EINTERNAL;
	prehash(pepper, pw, pwlen, pre);
	rv = crypto_pwhash_str(out, (const char *)pre, sizeof pre,
	                       SS_PASSWD_OPSLIMIT, SS_PASSWD_MEMLIMIT);
	sodium_memzero(pre, sizeof pre);
	return rv == 0 ? 0 : SS_ENOMEM;
}

static void
make_dummy(void)
{
	static const char pw[] = "no such account";

	/* On failure the dummy stays empty and verify fails fast: only
	 * timing evenness is lost, never safety. */
	if (crypto_pwhash_str(dummy_hash, pw, sizeof pw - 1, SS_PASSWD_OPSLIMIT,
	                      SS_PASSWD_MEMLIMIT) != 0)
		dummy_hash[0] = '\0';
}

bool
ss_passwd_verify(const char *pepper, const char *hash, const char *pw,
                 size_t pwlen)
{
	unsigned char pre[crypto_auth_hmacsha256_BYTES];
	bool ok;

	if (sodium_init() < 0)
		return false;
	prehash(pepper, pw, pwlen, pre);
	if (hash == NULL) {
		pthread_once(&dummy_once, make_dummy);
		volatile int sink = crypto_pwhash_str_verify(
		    dummy_hash, (const char *)pre, sizeof pre);
		(void)sink;
		ok = false;
	} else {
		ok = crypto_pwhash_str_verify(hash, (const char *)pre,
		                              sizeof pre) == 0;
	}
	sodium_memzero(pre, sizeof pre);
	return ok;
}
