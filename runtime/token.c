/*
 * runtime/token.c - secret tokens and their keyed hashes.
 *
 * Contract (see token.h): 256-bit tokens from randombytes_buf(), URL-safe
 * base64 without padding; the hash is HMAC-SHA256 under the server key of
 * the purpose, a 0x00 byte and the token's characters, in hex.  Only the
 * canonical encoding of 32 bytes is valid: the last character carries 2
 * unused bits, which must be zero, so one token has one spelling and one
 * hash.
 *
 * The check of a presented token is on every redemption's path, so it
 * reads a table instead of decoding: 43 characters of the alphabet always
 * decode to 32 bytes, and the re-encoding is the same spelling exactly
 * when the last character's 2 low bits are zero.
 */
#include <string.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/token.h"

#define X 0xff /* not in the alphabet */

/* The 6-bit value of each byte in URL-safe base64 ("A-Za-z0-9-_"). */
/* clang-format off */
static const unsigned char b64url[256] = {
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,
	X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63,
	X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
};
/* clang-format on */

#undef X

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
	const unsigned char *u = (const unsigned char *)s;
	unsigned acc = 0;

	if (s == NULL || len != SS_TOKEN_LEN)
		return false;
	/* No branch per character: a bad one sets the high bit. */
	for (size_t i = 0; i < SS_TOKEN_LEN; i++)
		acc |= b64url[u[i]];
	return (acc & 0x80) == 0 && (b64url[u[SS_TOKEN_LEN - 1]] & 3) == 0;
}

int
ss_token_hasher_init(ss_token_hasher *h, const char *key, size_t keylen,
                     const char *purpose)
{
	const unsigned char zero = 0;

	if (key == NULL || keylen < SS_TOKEN_KEY_MIN || purpose == NULL) {
		sodium_memzero(h, sizeof *h);
		return SS_EBADREQ;
	}
	if (sodium_init() < 0) {
		sodium_memzero(h, sizeof *h);
		return SS_EINTERNAL;
	}
	crypto_auth_hmacsha256_init(&h->st, (const unsigned char *)key, keylen);
	crypto_auth_hmacsha256_update(&h->st, (const unsigned char *)purpose,
	                              strlen(purpose));
	crypto_auth_hmacsha256_update(&h->st, &zero, 1);
	return 0;
}

int
ss_token_hasher_hash(const ss_token_hasher *h, const char *tok, size_t toklen,
                     char out[SS_TOKEN_HASH_LEN + 1])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	out[0] = '\0';
	if (!ss_token_valid(tok, toklen))
		return SS_EBADREQ;
	/* A copy: h stays as init left it, for the next token. */
	st = h->st;
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, toklen);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(out, SS_TOKEN_HASH_LEN + 1, mac, sizeof mac);
	sodium_memzero(&st, sizeof st);
	return 0;
}

void
ss_token_hasher_wipe(ss_token_hasher *h)
{
	sodium_memzero(h, sizeof *h);
}

int
ss_token_hash(const char *key, size_t keylen, const char *purpose,
              const char *tok, size_t toklen, char out[SS_TOKEN_HASH_LEN + 1])
{
	ss_token_hasher h;
	int rv;

	out[0] = '\0';
	if ((rv = ss_token_hasher_init(&h, key, keylen, purpose)) == 0)
		rv = ss_token_hasher_hash(&h, tok, toklen, out);
	ss_token_hasher_wipe(&h);
	return rv;
}
