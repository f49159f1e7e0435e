/*
 * services/guestlink/crypto.c - tokens, ids, sessions and sealed values.
 *
 * A link's token is 256 bits (runtime/token.h).  From it and the server
 * key (--token-key) come two keyed hashes:
 *   th  HMAC("guestlink" 0x00 token), 64 hex: stored in the link, compared
 *       by the redemption script
 *   id  the first 20 hex of HMAC("guestlink.id" 0x00 token): the link's id
 *       and hash tag, so the link's slot is known from the token alone and
 *       a redemption is one script call.  The id is shown to creators and
 *       in logs; without the key it says nothing about the token.
 * A viewer session is "<id>.<token>": the id names the link's slot, the
 * token (256 bits of its own) is kept only as
 * link:{<id>}:s:<HMAC("guestlink.session" 0x00 token)>.
 *
 * The token (for the list's URL) and the frozen view (study and priors,
 * with the patient's name and birth date) are sealed (runtime/seal.h)
 * under --seal-key, with the link's id in the context, so neither is in
 * Redis in clear and neither opens under another link.
 *
 * Each purpose has its own ss_token_hasher in gl_server, set up once
 * from the key: a redemption hashes a token three times (th, id, then a
 * new session's key), and each hash pays only for the token's part of
 * the HMAC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "services/guestlink/guestlink.h"
#include "services/guestlink/upload.h"

static const char *const purposes[GL_NPURPOSES] = {
    [GL_H_LOOKUP] = GL_PURPOSE_LOOKUP,
    [GL_H_ID] = GL_PURPOSE_ID,
    [GL_H_SESSION] = GL_PURPOSE_SESSION,
    [GL_H_UPLOAD] = GL_UP_PURPOSE,
};

bool
gl_valid_id(const char *s, size_t n)
{
	if (n != GL_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int
gl_hashers_init(gl_server *s)
{
	const char *k = s->cfg->token_key;
	size_t kn = k != NULL ? strlen(k) : 0;
	int rv;

	for (int p = 0; p < GL_NPURPOSES; p++)
		if ((rv = ss_token_hasher_init(&s->hashers[p], k, kn,
		                               purposes[p])) != 0) {
			gl_hashers_wipe(s);
			return rv;
		}
	return 0;
}

void
gl_hashers_wipe(gl_server *s)
{
	for (int p = 0; p < GL_NPURPOSES; p++)
		ss_token_hasher_wipe(&s->hashers[p]);
}

int
gl_token_hash(gl_server *s, enum gl_purpose p, const char *tok, size_t n,
              char out[SS_TOKEN_HASH_LEN + 1])
{
	return ss_token_hasher_hash(&s->hashers[p], tok, n, out);
}

int
gl_token_ids(gl_server *s, const char *tok, size_t n,
             char th[SS_TOKEN_HASH_LEN + 1], char id[GL_ID_LEN + 1])
{
	char h[SS_TOKEN_HASH_LEN + 1];
	int rv;

	/* The first hash refuses what is not a token. */
	if ((rv = gl_token_hash(s, GL_H_LOOKUP, tok, n, th)) != 0 ||
	    (rv = gl_token_hash(s, GL_H_ID, tok, n, h)) != 0)
		return rv;
	memcpy(id, h, GL_ID_LEN);
	id[GL_ID_LEN] = '\0';
	return 0;
}

static int
session_key(gl_server *s, const char *id, const char *tok, char key[GL_KEY_MAX])
{
	char h[SS_TOKEN_HASH_LEN + 1];
	char suffix[4 + SS_TOKEN_HASH_LEN + 1];
	int rv;

	if ((rv = gl_token_hash(s, GL_H_SESSION, tok, SS_TOKEN_LEN, h)) != 0)
		return rv;
	snprintf(suffix, sizeof suffix, ":s:%s", h);
	return gl_key_link(key, id, suffix);
}

int
gl_session_new(gl_server *s, const char *id, char sess[GL_SESSION_LEN + 1],
               char key[GL_KEY_MAX])
{
	char tok[SS_TOKEN_LEN + 1];
	int rv;

	if ((rv = ss_token_new(tok)) != 0)
		return rv;
	snprintf(sess, GL_SESSION_LEN + 1, "%s.%s", id, tok);
	rv = session_key(s, id, tok, key);
	sodium_memzero(tok, sizeof tok);
	return rv;
}

int
gl_session_key(gl_server *s, const char *sess, size_t n, char id[GL_ID_LEN + 1],
               char key[GL_KEY_MAX])
{
	/* session_key()'s hash refuses a token part that is not a token. */
	if (n != GL_SESSION_LEN || sess[GL_ID_LEN] != '.' ||
	    !gl_valid_id(sess, GL_ID_LEN))
		return SS_EBADREQ;
	memcpy(id, sess, GL_ID_LEN);
	id[GL_ID_LEN] = '\0';
	return session_key(s, id, sess + GL_ID_LEN + 1, key);
}

static void
ctx(char out[32], const char *what, const char *id)
{
	snprintf(out, 32, "%s:%s", what, id);
}

int
gl_seal_token(gl_server *s, const char *id, const char *tok, unsigned char *out,
              size_t cap, size_t *outlen)
{
	char c[32];

	ctx(c, "tok", id);
	return ss_seal(&s->seal, c, tok, strlen(tok), out, cap, outlen);
}

int
gl_seal_view(gl_server *s, const char *id, const void *view, size_t len,
             unsigned char **out, size_t *outlen)
{
	char c[32];
	int rv;

	if ((*out = malloc(len + SS_SEAL_OVERHEAD)) == NULL)
		return SS_ENOMEM;
	ctx(c, "view", id);
	if ((rv = ss_seal(&s->seal, c, view, len, *out, len + SS_SEAL_OVERHEAD,
	                  outlen)) != 0) {
		free(*out);
		*out = NULL;
	}
	return rv;
}

int
gl_open_token(gl_server *s, const char *id, const char *sealed, size_t len,
              char tok[SS_TOKEN_LEN + 1])
{
	size_t n;
	char c[32];
	int rv;

	tok[0] = '\0';
	if (len != SS_TOKEN_LEN + SS_SEAL_OVERHEAD)
		return SS_EINTERNAL;
	ctx(c, "tok", id);
	if ((rv = ss_unseal(&s->seal, c, (const unsigned char *)sealed, len,
	                    (unsigned char *)tok, SS_TOKEN_LEN, &n)) != 0)
		return rv;
	tok[n] = '\0';
	return ss_token_valid(tok, n) ? 0 : SS_EINTERNAL;
}

int
gl_open_view(gl_server *s, const char *id, const char *sealed, size_t len,
             unsigned char **out, size_t *outlen)
{
	char c[32];
	int rv;

	*out = NULL;
	*outlen = 0;
	if (len < SS_SEAL_OVERHEAD)
		return SS_EINTERNAL;
	if ((*out = malloc(len - SS_SEAL_OVERHEAD + 1)) == NULL)
		return SS_ENOMEM;
	ctx(c, "view", id);
	if ((rv = ss_unseal(&s->seal, c, (const unsigned char *)sealed, len,
	                    *out, len - SS_SEAL_OVERHEAD, outlen)) != 0) {
		free(*out);
		*out = NULL;
	}
	return rv;
}
