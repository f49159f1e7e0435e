/*
 * services/gateway/jwt.c - the bearer tokens of the HTTP API.
 *
 * Contract (gateway.h): tokens are JWTs signed with HS256 under the
 * configured secret, with the claims sub (the user id), iss
 * ("studyshare"), iat and exp.  libjwt (1.10) mints and parses them; but
 * before libjwt sees a presented token the gateway checks what libjwt
 * leaves to its caller: the header must name exactly HS256 (no "none", no
 * other algorithm a confused library could be talked into), and the
 * signature is recomputed and compared in constant time (libjwt 1.10
 * compares with strcmp).  Then libjwt decodes it and exp, iss and sub are
 * checked.  Every refusal is the same SS_EUNAUTH.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <sodium.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

#define SEG_MAX 2048 /* decoded bytes of the header or the payload */

bool
gw_user_valid(const char *s, size_t n)
{
	if (n == 0 || n > GW_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

int
gw_jwt_mint(const char *key, size_t keylen, const char *user, int64_t now,
            int64_t ttl_s, char **out)
{
	jwt_t *j = NULL;
	char *s;
	int rv = SS_ENOMEM;

	*out = NULL;
	if (!gw_user_valid(user, strlen(user)) || ttl_s <= 0 || keylen == 0)
		return SS_EBADREQ;
	if (jwt_new(&j) != 0)
		return SS_ENOMEM;
	if (jwt_add_grant(j, "sub", user) != 0 ||
	    jwt_add_grant(j, "iss", GW_JWT_ISSUER) != 0 ||
	    jwt_add_grant_int(j, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(j, "exp", (long)(now + ttl_s)) != 0 ||
	    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)key,
	                (int)keylen) != 0)
		goto fail;
	if ((s = jwt_encode_str(j)) == NULL)
		goto fail;
	*out = s;
	rv = 0;
fail:
	jwt_free(j);
	return rv;
}

static bool
b64url_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int
b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap,
              size_t *outlen)
{
	const char *end = NULL;

	if (sodium_base642bin(out, cap, s, n, NULL, outlen, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != s + n)
		return SS_EUNAUTH;
	return 0;
}

/* The header must be {"alg":"HS256"} with at most "typ":"JWT" beside. */
static int
check_header(const char *seg, size_t n)
{
	unsigned char buf[SEG_MAX];
	const char *k;
	json_t *h, *v;
	size_t len;
	int rv = SS_EUNAUTH;

	if (b64url_decode(seg, n, buf, sizeof buf, &len) != 0)
		return SS_EUNAUTH;
	if ((h = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES,
	                    NULL)) == NULL)
		return SS_EUNAUTH;
	if (!json_is_object(h))
		goto fail;
	json_object_foreach(h, k, v)
	{
		if (strcmp(k, "alg") == 0) {
			if (!json_is_string(v) ||
			    strcmp(json_string_value(v), "HS256") != 0)
				goto fail;
		} else if (strcmp(k, "typ") == 0) {
			if (!json_is_string(v) ||
			    strcmp(json_string_value(v), "JWT") != 0)
				goto fail;
		} else {
			goto fail;
		}
	}
	if (json_object_get(h, "alg") != NULL)
		rv = 0;
fail:
	json_decref(h);
	return rv;
}

static int
check_signature(const char *key, size_t keylen, const char *tok,
                size_t signed_len, const char *sig, size_t siglen)
{
	unsigned char want[crypto_auth_hmacsha256_BYTES];
	unsigned char got[crypto_auth_hmacsha256_BYTES + 1];
	crypto_auth_hmacsha256_state st;
	size_t len;
	int rv = SS_EUNAUTH;

	if (b64url_decode(sig, siglen, got, sizeof got, &len) != 0 ||
	    len != sizeof want)
		return SS_EUNAUTH;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok,
	                              signed_len);
	crypto_auth_hmacsha256_final(&st, want);
	if (sodium_memcmp(want, got, sizeof want) == 0)
		rv = 0;
	sodium_memzero(&st, sizeof st);
	return rv;
}

int
gw_jwt_verify(const char *key, size_t keylen, const char *tok, size_t n,
              int64_t now, char user[GW_USER_MAX + 1], int64_t *exp)
{
	char buf[GW_JWT_MAX + 1];
	const char *sub, *iss;
	size_t dot1 = 0, dot2 = 0, i;
	jwt_t *j = NULL;
	long e;
	int rv = SS_EUNAUTH;

	user[0] = '\0';
	if (n < 5 || n > GW_JWT_MAX || keylen == 0 || sodium_init() < 0)
		return SS_EUNAUTH;
	for (i = 0; i < n; i++) {
		if (tok[i] == '.') {
			if (dot1 == 0)
				dot1 = i;
			else if (dot2 == 0)
				dot2 = i;
			else
				return SS_EUNAUTH;
		} else if (!b64url_char(tok[i])) {
			return SS_EUNAUTH;
		}
	}
	if (dot1 == 0 || dot2 == 0 || dot2 == dot1 + 1 || dot2 == n - 1)
		return SS_EUNAUTH;
	if (check_header(tok, dot1) != 0 ||
	    check_signature(key, keylen, tok, dot2, tok + dot2 + 1,
	                    n - dot2 - 1) != 0)
		return SS_EUNAUTH;
	memcpy(buf, tok, n);
	buf[n] = '\0';
	if (jwt_decode(&j, buf, (const unsigned char *)key, (int)keylen) != 0)
		return SS_EUNAUTH;
	if (jwt_get_alg(j) != JWT_ALG_HS256)
		goto fail;
	sub = jwt_get_grant(j, "sub");
	iss = jwt_get_grant(j, "iss");
	errno = 0;
	e = jwt_get_grant_int(j, "exp");
	if (errno != 0 || sub == NULL || iss == NULL ||
	    strcmp(iss, GW_JWT_ISSUER) != 0 || !gw_user_valid(sub, strlen(sub)))
		goto fail;
	if ((int64_t)e <= now)
		goto fail;
	memcpy(user, sub, strlen(sub) + 1);
	if (exp != NULL)
		*exp = (int64_t)e;
	rv = 0;
fail:
	jwt_free(j);
	return rv;
}
