/*
 * runtime/seal.h - sealing small secrets for storage in Redis.
 *
 * DESIGN.md "Security": where a secret must be shown again (the list of
 * guest links shows each link's URL, token included), Redis holds it
 * encrypted under a key that is not in Redis.  A sealed value is
 *
 *   nonce (24 bytes, random) || XSalsa20-Poly1305 secretbox of the value
 *
 * under a subkey derived from the server key and a context string:
 * BLAKE2b-256 keyed by the master key over the context.  The context names
 * what the value is and whose it is ("tok:<link id>"), so a sealed value
 * copied to another link or another field does not open there: a copy of
 * Redis, or write access to it, can neither read nor move a secret.
 *
 * The master key is derived from a configured secret of at least
 * SS_SEAL_SECRET_MIN bytes.  Thread: any (the key is read-only).
 */
#ifndef SS_RUNTIME_SEAL_H
#define SS_RUNTIME_SEAL_H

#include <stddef.h>
#include <sodium.h>

#define SS_SEAL_KEY_BYTES  crypto_secretbox_KEYBYTES
#define SS_SEAL_SECRET_MIN 32
/* Bytes a sealed value has beyond its plaintext. */
#define SS_SEAL_OVERHEAD                                                       \
	(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)

typedef struct ss_seal_key {
	unsigned char k[SS_SEAL_KEY_BYTES];
} ss_seal_key;

/* Derives the master key from a configured secret; SS_EBADREQ when the
 * secret is shorter than SS_SEAL_SECRET_MIN, SS_EINTERNAL when libsodium
 * cannot start. */
int ss_seal_key_init(ss_seal_key *key, const char *secret, size_t len);
/* Wipes the key. */
void ss_seal_key_clear(ss_seal_key *key);

/*
 * Seals len bytes of msg for ctx into out, which must have room for
 * len + SS_SEAL_OVERHEAD bytes; *outlen gets that length.  0, or
 * SS_EBADREQ when outcap is too small.
 */
int ss_seal(const ss_seal_key *key, const char *ctx, const void *msg,
            size_t len, unsigned char *out, size_t outcap, size_t *outlen);

/*
 * Opens a sealed value of len bytes into out (room for len -
 * SS_SEAL_OVERHEAD bytes); *outlen gets the plaintext's length.
 * SS_EINTERNAL when the value is too short, was not sealed with this key
 * and context, or was altered (out is then wiped); SS_EBADREQ when outcap
 * is too small.
 */
int ss_unseal(const ss_seal_key *key, const char *ctx, const unsigned char *in,
              size_t len, unsigned char *out, size_t outcap, size_t *outlen);

#endif
