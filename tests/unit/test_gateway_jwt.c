/*
 * tests/unit/test_gateway_jwt.c - services/gateway/jwt.c: minting and the
 * pinned HS256 verification of bearer tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

static const char key[] = "unit-test-jwt-secret-0123456789abcdef";
#define KEYLEN (sizeof key - 1)
#define NOW    1800000000LL

static void
b64url(const void *in, size_t n, char *out, size_t cap)
{
	sodium_bin2base64(out, cap, in, n,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* A token from a header and payload given as JSON text, signed with k
 * using HMAC-SHA256 (whatever the header claims). */
static void
forge(const char *head, const char *payload, const char *k, char *out,
      size_t cap)
{
	char h[512], p[512], sig[64];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	char signed_part[1100];

	b64url(head, strlen(head), h, sizeof h);
	b64url(payload, strlen(payload), p, sizeof p);
	snprintf(signed_part, sizeof signed_part, "%s.%s", h, p);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)k, strlen(k));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)signed_part,
	                              strlen(signed_part));
	crypto_auth_hmacsha256_final(&st, mac);
	b64url(mac, sizeof mac, sig, sizeof sig);
	snprintf(out, cap, "%s.%s", signed_part, sig);
}

static int
verify(const char *tok, char user[GW_USER_MAX + 1])
{
	return gw_jwt_verify(key, KEYLEN, tok, strlen(tok), NOW, user, NULL);
}

static void
test_mint_then_verify(void **state)
{
	char user[GW_USER_MAX + 1], *tok = NULL;
	int64_t exp = 0;

	(void)state;
	assert_int_equal(gw_jwt_mint(key, KEYLEN, "alice", NOW, 3600, &tok), 0);
	assert_non_null(tok);
	assert_int_equal(
	    gw_jwt_verify(key, KEYLEN, tok, strlen(tok), NOW + 10, user, &exp),
	    0);
	assert_string_equal(user, "alice");
	assert_int_equal(exp, NOW + 3600);
	/* expired at exp, and under another key never valid */
	assert_int_equal(gw_jwt_verify(key, KEYLEN, tok, strlen(tok),
	                               NOW + 3600, user, &exp),
	                 SS_EUNAUTH);
	assert_string_equal(user, "");
	assert_int_equal(gw_jwt_verify("another-key-another-key-another-k", 33,
	                               tok, strlen(tok), NOW, user, &exp),
	                 SS_EUNAUTH);
	/* one flipped character anywhere breaks it */
	for (size_t i = 0; i < strlen(tok); i++) {
		char *t;
		if (tok[i] == '.')
			continue;
		t = strdup(tok);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_int_not_equal(verify(t, user), 0);
		free(t);
	}
	free(tok);
}

static void
test_mint_refuses_bad_users(void **state)
{
	char *tok = NULL;

	(void)state;
	assert_int_equal(gw_jwt_mint(key, KEYLEN, "", NOW, 60, &tok),
	                 SS_EBADREQ);
	assert_int_equal(gw_jwt_mint(key, KEYLEN, "a b", NOW, 60, &tok),
	                 SS_EBADREQ);
	assert_int_equal(gw_jwt_mint(key, KEYLEN, "alice", NOW, 0, &tok),
	                 SS_EBADREQ);
	assert_null(tok);
	assert_true(gw_user_valid("a.b_c-D9", 8));
	assert_false(gw_user_valid("../x", 4));
	assert_false(gw_user_valid("x\"", 2));
}

static void
test_forged_tokens_are_refused(void **state)
{
	static const struct {
		const char *head, *payload;
		int rv;
	} cases[] = {
	    /* the control: a well-formed token verifies */
	    {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     0},
	    {"{\"alg\":\"HS256\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     0},
	    /* the header must say exactly HS256 and nothing else */
	    {"{\"alg\":\"none\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"hs256\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"typ\":\"JWT\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\",\"kid\":\"../../x\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\",\"alg\":\"none\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"[\"HS256\"]",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    /* the claims */
	    {"{\"alg\":\"HS256\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1799999999}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\"}", SS_EUNAUTH},
	    {"{\"alg\":\"HS256\"}",
	     "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":"
	     "\"1800000100\"}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\"}",
	     "{\"sub\":\"alice\",\"iss\":\"other\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\"}",
	     "{\"sub\":\"al ice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\"}",
	     "{\"sub\":5,\"iss\":\"studyshare\",\"exp\":1800000100}",
	     SS_EUNAUTH},
	    {"{\"alg\":\"HS256\"}",
	     "{\"iss\":\"studyshare\",\"exp\":1800000100}", SS_EUNAUTH},
	};
	char tok[1200], user[GW_USER_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		forge(cases[i].head, cases[i].payload, key, tok, sizeof tok);
		if (verify(tok, user) != cases[i].rv)
			fail_msg("case %zu: %s %s", i, cases[i].head,
			         cases[i].payload);
	}
	/* right shape, wrong key */
	forge("{\"alg\":\"HS256\"}",
	      "{\"sub\":\"alice\",\"iss\":\"studyshare\",\"exp\":1800000100}",
	      "not-the-key", tok, sizeof tok);
	assert_int_equal(verify(tok, user), SS_EUNAUTH);
}

static void
test_malformed_tokens_are_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "a",
	    "a.b",
	    "a.b.c.d",
	    "..",
	    "a..c",
	    ".b.c",
	    "a.b.",
	    "eyJhbGciOiJIUzI1NiJ9.e30.!!!",
	    "eyJhbGciOiJIUzI1NiJ9.e30.a b",
	    "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
	};
	char user[GW_USER_MAX + 1], big[GW_JWT_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(verify(bad[i], user), SS_EUNAUTH);
	memset(big, 'A', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[10] = '.';
	big[20] = '.';
	assert_int_equal(verify(big, user), SS_EUNAUTH);
	assert_int_equal(gw_jwt_verify(key, 0, "a.b.c", 5, NOW, user, NULL),
	                 SS_EUNAUTH);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mint_then_verify),
	    cmocka_unit_test(test_mint_refuses_bad_users),
	    cmocka_unit_test(test_forged_tokens_are_refused),
	    cmocka_unit_test(test_malformed_tokens_are_refused),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
