/*
 * tests/unit/test_passwd.c - password hashing: Argon2id over a peppered
 * HMAC, verified against right and wrong passwords and peppers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/passwd.h"

#define PEPPER "pepper-for-the-tests"

static void
test_hash_verify(void **state)
{
	char h[SS_PASSWD_HASH_LEN];
	const char *pw = "alice-password";

	(void)state;
	assert_int_equal(ss_passwd_hash(PEPPER, pw, strlen(pw), h), 0);
	assert_true(strlen(h) < SS_PASSWD_HASH_LEN);
	assert_true(ss_passwd_verify(PEPPER, h, pw, strlen(pw)));
	assert_false(ss_passwd_verify(PEPPER, h, "alice-passwore", 14));
	assert_false(ss_passwd_verify(PEPPER, h, "alice-password ", 15));
	assert_false(ss_passwd_verify(PEPPER, h, pw, strlen(pw) - 1));
	assert_false(ss_passwd_verify(PEPPER, h, "", 0));
}

static void
test_hash_format(void **state)
{
	char h[SS_PASSWD_HASH_LEN];
	const char *pw = "correct horse battery staple";

	(void)state;
	assert_int_equal(ss_passwd_hash(PEPPER, pw, strlen(pw), h), 0);
	assert_memory_equal(h, "$argon2id$", 10);
	assert_null(strstr(h, pw));
	assert_null(strstr(h, "horse"));
	assert_null(strstr(h, PEPPER));
	/* At least the documented cost (m=19 MiB, t=2). */
	assert_non_null(strstr(h, "$m=19456,t=2,"));
	assert_int_equal(crypto_pwhash_str_needs_rehash(h, SS_PASSWD_OPSLIMIT,
	                                                SS_PASSWD_MEMLIMIT),
	                 0);
}

static void
test_salted(void **state)
{
	char h1[SS_PASSWD_HASH_LEN], h2[SS_PASSWD_HASH_LEN];
	const char *pw = "same-password";

	(void)state;
	assert_int_equal(ss_passwd_hash(PEPPER, pw, strlen(pw), h1), 0);
	assert_int_equal(ss_passwd_hash(PEPPER, pw, strlen(pw), h2), 0);
	assert_string_not_equal(h1, h2);
	assert_true(ss_passwd_verify(PEPPER, h1, pw, strlen(pw)));
	assert_true(ss_passwd_verify(PEPPER, h2, pw, strlen(pw)));
}

static void
test_pepper(void **state)
{
	char h[SS_PASSWD_HASH_LEN];
	const char *pw = "bob-password";

	(void)state;
	assert_int_equal(ss_passwd_hash(PEPPER, pw, strlen(pw), h), 0);
	assert_false(ss_passwd_verify("another pepper", h, pw, strlen(pw)));
	assert_false(ss_passwd_verify("", h, pw, strlen(pw)));
	/* Without the pepper the plain password is not what was hashed. */
	assert_int_not_equal(crypto_pwhash_str_verify(h, pw, strlen(pw)), 0);
	assert_true(ss_passwd_verify(PEPPER, h, pw, strlen(pw)));
}

static void
test_binary_password(void **state)
{
	static const char pw[] = {'a', '\0', 'b', 'c', 'd', 'e', 'f', 'g'};
	char h[SS_PASSWD_HASH_LEN];

	(void)state;
	assert_int_equal(ss_passwd_hash(PEPPER, pw, sizeof pw, h), 0);
	assert_true(ss_passwd_verify(PEPPER, h, pw, sizeof pw));
	/* The bytes after the NUL count. */
	assert_false(ss_passwd_verify(PEPPER, h, "a", 1));
	assert_false(ss_passwd_verify(PEPPER, h, "a\0bcdefh", sizeof pw));
}

static void
test_null_and_garbage_hash(void **state)
{
	const char *pw = "whatever-password";

	(void)state;
	assert_false(ss_passwd_verify(PEPPER, NULL, pw, strlen(pw)));
	assert_false(ss_passwd_verify(PEPPER, NULL, "", 0));
	/* Twice: the dummy hash is made once and reused. */
	assert_false(ss_passwd_verify(PEPPER, NULL, "no such account", 15));
	assert_false(ss_passwd_verify(PEPPER, "", pw, strlen(pw)));
	assert_false(
	    ss_passwd_verify(PEPPER, "$argon2id$garbage", pw, strlen(pw)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_verify),
	    cmocka_unit_test(test_hash_format),
	    cmocka_unit_test(test_salted),
	    cmocka_unit_test(test_pepper),
	    cmocka_unit_test(test_binary_password),
	    cmocka_unit_test(test_null_and_garbage_hash),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
