/*
 * runtime/token.c - secret tokens and their keyed hashes.
 *
 * Contract (see token.h): 256-bit tokens from randombytes_buf(), URL-safe
 * base64 without padding; the hash is HMAC-SHA256 under the server key of
 * the purpose, a 0x00 byte and the token's characters, in hex.  Only the
 * canonical encoding of 32 bytes is valid: the last character carries 2
 * unused bits, which must be zero, so one token has one spelling and one
 * hash.
 */
#include <string.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/token.h"

int
ss_token_new(char out[SS_TOKEN_LEN + 1])
{
	unsigned char raw[SS_TOKEN_BYTES];

	out[0] = '\0';
	/* Idempotent and thread-safe; it seeds the CSPRNG. */
	if (sodium_init() < 0)
		return SS_EINTERNAL;
	randombytes_buf(raw, sizeof raw);
	sodium_bin2base64(out, SS_TOKEN_LEN + 1, raw, sizeof raw,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof raw);
	return 0;
}

bool
ss_token_valid(const char *s, size_t len)
{
	unsigned char raw[SS_TOKEN_BYTES];
	char again[SS_TOKEN_LEN + 1];
	size_t n = 0;
	bool ok;

	if (s == NULL || len != SS_TOKEN_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	if (sodium_base642bin(raw, sizeof raw, s, len, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof raw)
		return false;
	/* Re-encoding catches non-zero padding bits. */
	sodium_bin2base64(again, sizeof again, raw, sizeof raw,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	ok = memcmp(again, s, SS_TOKEN_LEN) == 0;
	sodium_memzero(raw, sizeof raw);
	sodium_memzero(again, sizeof again);
	return ok;
}

int
ss_token_hash(const char *key, size_t keylen, const char *purpose,
              const char *tok, size_t toklen, char out[SS_TOKEN_HASH_LEN + 1])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	const unsigned char zero = 0;

	out[0] = '\0';
	if (key == NULL || keylen < SS_TOKEN_KEY_MIN || purpose == NULL ||
	    !ss_token_valid(tok, toklen))
		return SS_EBADREQ;
	if (sodium_init() < 0)
		return SS_EINTERNAL;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)purpose,
	                              strlen(purpose));
	crypto_auth_hmacsha256_update(&st, &zero, 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, toklen);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(out, SS_TOKEN_HASH_LEN + 1, mac, sizeof mac);
	sodium_memzero(&st, sizeof st);
	return 0;
}
