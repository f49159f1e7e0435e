/*
 * runtime/token.h - secret tokens: invitations, guest links, upload links.
 *
 * DESIGN.md "Security": a token is 256 bits from libsodium's CSPRNG,
 * written as URL-safe base64 without padding (43 characters), and Redis
 * holds only a keyed hash of it: HMAC-SHA256(server key, purpose || 0x00 ||
 * token), in lower-case hex.  The purpose ("invite", "guestlink", ...)
 * keeps a token of one kind from ever matching the hash of another.  The
 * server key comes from configuration, never from Redis, so a copy of
 * Redis alone maps no hash back to a usable token.
 *
 * A daemon that hashes tokens on a hot path keeps one ss_token_hasher per
 * (key, purpose): the key and the purpose are absorbed once, at start-up,
 * and each hash then costs only the token's part of the HMAC.
 * ss_token_hash() is the one-shot form and gives the same bytes.
 *
 * Look tokens up by their hash; never compare a presented token with a
 * stored one.  Never log a token.  Thread: any.  A hasher is read-only
 * after ss_token_hasher_init(), so one may be shared by threads until it
 * is wiped; it holds key material, so wipe it when done.
 */
#ifndef SS_RUNTIME_TOKEN_H
#define SS_RUNTIME_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include <sodium.h>

#define SS_TOKEN_BYTES    32 /* random bytes in a token */
#define SS_TOKEN_LEN      43 /* characters of its URL-safe base64 */
#define SS_TOKEN_HASH_LEN 64 /* hex characters of its keyed hash */
#define SS_TOKEN_KEY_MIN  32 /* bytes a server key must have */

/* A fresh token, NUL-terminated; 0, or SS_EINTERNAL when libsodium
 * cannot start (out is then empty). */
int ss_token_new(char out[SS_TOKEN_LEN + 1]);

/* True when s (len bytes) has the shape of a token: exactly
 * SS_TOKEN_LEN characters of canonical URL-safe base64.  Check before
 * hashing, so junk is refused without touching Redis. */
bool ss_token_valid(const char *s, size_t len);

/*
 * Writes the keyed hash of a token into out (NUL-terminated hex).
 * Returns 0, or SS_EBADREQ when the token is not valid (out is then
 * empty) or the key is shorter than SS_TOKEN_KEY_MIN (SS_EINTERNAL when
 * libsodium cannot start).
 */
int ss_token_hash(const char *key, size_t keylen, const char *purpose,
                  const char *tok, size_t toklen,
                  char out[SS_TOKEN_HASH_LEN + 1]);

/* The HMAC state with a key and "purpose" 0x00 absorbed. */
typedef struct ss_token_hasher {
	crypto_auth_hmacsha256_state st;
} ss_token_hasher;

/* Sets h up for (key, purpose).  Returns 0, SS_EBADREQ when the key is
 * shorter than SS_TOKEN_KEY_MIN or purpose is NULL, or SS_EINTERNAL
 * when libsodium cannot start; h is then wiped. */
int ss_token_hasher_init(ss_token_hasher *h, const char *key, size_t keylen,
                         const char *purpose);

/* ss_token_hash() under h's key and purpose: the same return values and
 * the same hash.  h is not changed. */
int ss_token_hasher_hash(const ss_token_hasher *h, const char *tok,
                         size_t toklen, char out[SS_TOKEN_HASH_LEN + 1]);

/* Erases h's key material; init it again before the next use. */
void ss_token_hasher_wipe(ss_token_hasher *h);

#endif
