/*
 * tests/unit/test_token.c - runtime/token.c: generation, shape, keyed hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/token.h"

static const char key[] = "0123456789abcdef0123456789abcdef";

static void
test_new_tokens_are_valid_and_distinct(void **state)
{
	char a[SS_TOKEN_LEN + 1], b[SS_TOKEN_LEN + 1];
	unsigned char raw[SS_TOKEN_BYTES];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(ss_token_new(a), 0);
		assert_int_equal(ss_token_new(b), 0);
		assert_int_equal(strlen(a), SS_TOKEN_LEN);
		assert_true(ss_token_valid(a, strlen(a)));
		assert_string_not_equal(a, b);
		/* URL-safe: nothing that needs escaping in a query string. */
		assert_null(strpbrk(a, "+/=%&?#"));
		assert_int_equal(
		    sodium_base642bin(raw, sizeof raw, a, strlen(a), NULL, &n,
		                      NULL,
		                      sodium_base64_VARIANT_URLSAFE_NO_PADDING),
		    0);
		assert_int_equal(n, SS_TOKEN_BYTES);
	}
}

static void
test_bad_shapes_are_refused(void **state)
{
	char t[SS_TOKEN_LEN + 1], bad[SS_TOKEN_LEN + 2];

	(void)state;
	assert_int_equal(ss_token_new(t), 0);
	assert_false(ss_token_valid(NULL, 0));
	assert_false(ss_token_valid("", 0));
	assert_false(ss_token_valid(t, SS_TOKEN_LEN - 1));
	memcpy(bad, t, SS_TOKEN_LEN);
	bad[SS_TOKEN_LEN] = 'A';
	bad[SS_TOKEN_LEN + 1] = '\0';
	assert_false(ss_token_valid(bad, SS_TOKEN_LEN + 1));
	memcpy(bad, t, sizeof t);
	bad[5] = '+'; /* the standard alphabet, not the URL-safe one */
	assert_false(ss_token_valid(bad, SS_TOKEN_LEN));
	memcpy(bad, t, sizeof t);
	bad[7] = '=';
	assert_false(ss_token_valid(bad, SS_TOKEN_LEN));
	memcpy(bad, t, sizeof t);
	bad[9] = '\0';
	assert_false(ss_token_valid(bad, SS_TOKEN_LEN));
	/* 43 characters carry 258 bits: the last one's 2 low bits must be
	 * zero, so "B" (1) at the end is a second spelling and refused. */
	memset(bad, 'A', SS_TOKEN_LEN);
	bad[SS_TOKEN_LEN] = '\0';
	assert_true(ss_token_valid(bad, SS_TOKEN_LEN));
	bad[SS_TOKEN_LEN - 1] = 'B';
	assert_false(ss_token_valid(bad, SS_TOKEN_LEN));
	bad[SS_TOKEN_LEN - 1] = 'E'; /* 4: low bits zero */
	assert_true(ss_token_valid(bad, SS_TOKEN_LEN));
}

/* The hash is HMAC-SHA256(key, purpose 0x00 token), checked against
 * libsodium's one-shot HMAC over the same bytes. */
static void
test_hash_is_hmac_of_purpose_and_token(void **state)
{
	unsigned char msg[64], mac[crypto_auth_hmacsha256_BYTES];
	char t[SS_TOKEN_LEN + 1], h[SS_TOKEN_HASH_LEN + 1];
	char want[SS_TOKEN_HASH_LEN + 1];
	crypto_auth_hmacsha256_state st;

	(void)state;
	assert_int_equal(ss_token_new(t), 0);
	assert_int_equal(
	    ss_token_hash(key, strlen(key), "invite", t, strlen(t), h), 0);
	assert_int_equal(strlen(h), SS_TOKEN_HASH_LEN);
	memcpy(msg, "invite", 6);
	msg[6] = 0;
	memcpy(msg + 7, t, SS_TOKEN_LEN);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
	                            strlen(key));
	crypto_auth_hmacsha256_update(&st, msg, 7 + SS_TOKEN_LEN);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(want, sizeof want, mac, sizeof mac);
	assert_string_equal(h, want);
	/* The hash does not contain the token. */
	assert_null(strstr(h, t));
}

static void
test_hash_depends_on_key_purpose_and_token(void **state)
{
	static const char key2[] = "fedcba9876543210fedcba9876543210";
	char t[SS_TOKEN_LEN + 1], u[SS_TOKEN_LEN + 1];
	char h1[SS_TOKEN_HASH_LEN + 1], h2[SS_TOKEN_HASH_LEN + 1];

	(void)state;
	assert_int_equal(ss_token_new(t), 0);
	assert_int_equal(ss_token_new(u), 0);
	assert_int_equal(ss_token_hash(key, 32, "invite", t, SS_TOKEN_LEN, h1),
	                 0);
	assert_int_equal(ss_token_hash(key, 32, "invite", t, SS_TOKEN_LEN, h2),
	                 0);
	assert_string_equal(h1, h2); /* deterministic: usable for look-ups */
	assert_int_equal(ss_token_hash(key2, 32, "invite", t, SS_TOKEN_LEN, h2),
	                 0);
	assert_string_not_equal(h1, h2);
	assert_int_equal(
	    ss_token_hash(key, 32, "guestlink", t, SS_TOKEN_LEN, h2), 0);
	assert_string_not_equal(h1, h2);
	assert_int_equal(ss_token_hash(key, 32, "invite", u, SS_TOKEN_LEN, h2),
	                 0);
	assert_string_not_equal(h1, h2);
}

static void
test_hash_refuses_bad_input(void **state)
{
	char t[SS_TOKEN_LEN + 1], h[SS_TOKEN_HASH_LEN + 1];

	(void)state;
	assert_int_equal(ss_token_new(t), 0);
	assert_int_equal(ss_token_hash(key, 31, "invite", t, SS_TOKEN_LEN, h),
	                 SS_EBADREQ);
	assert_string_equal(h, "");
	assert_int_equal(ss_token_hash(NULL, 0, "invite", t, SS_TOKEN_LEN, h),
	                 SS_EBADREQ);
	assert_int_equal(ss_token_hash(key, 32, "invite", "short", 5, h),
	                 SS_EBADREQ);
	assert_string_equal(h, "");
	assert_int_equal(ss_token_hash(key, 32, NULL, t, SS_TOKEN_LEN, h),
	                 SS_EBADREQ);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_tokens_are_valid_and_distinct),
	    cmocka_unit_test(test_bad_shapes_are_refused),
	    cmocka_unit_test(test_hash_is_hmac_of_purpose_and_token),
	    cmocka_unit_test(test_hash_depends_on_key_purpose_and_token),
	    cmocka_unit_test(test_hash_refuses_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
