/*
 * tests/unit/test_sharecode.c - share codes: generation and the Crockford
 * normalisation of what people type.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/errors.h"
#include "services/authz/sharecode.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static void
test_new_alphabet(void **state)
{
	char first[AZ_CODE_LEN + 1], c[AZ_CODE_LEN + 1];
	unsigned seen[32] = {0};
	int differ = 0;

	(void)state;
	az_code_new(first);
	for (int i = 0; i < 10000; i++) {
		memset(c, '#', sizeof c);
		az_code_new(c);
		assert_int_equal(c[AZ_CODE_LEN], '\0');
		assert_int_equal(strlen(c), AZ_CODE_LEN);
		for (int k = 0; k < AZ_CODE_LEN; k++) {
			const char *p = strchr(alphabet, c[k]);
			assert_non_null(p);
			seen[p - alphabet]++;
		}
		if (strcmp(c, first) != 0)
			differ++;
	}
	/* 10,000 draws of 40 random bits are not all the same code. */
	assert_true(differ > 9990);
	/* 80,000 symbols: every one of the 32 appears (expected 2,500). */
	for (int k = 0; k < 32; k++)
		assert_true(seen[k] > 1000);
}

static void
test_new_is_normal(void **state)
{
	char c[AZ_CODE_LEN + 1], n[AZ_CODE_LEN + 1];

	(void)state;
	for (int i = 0; i < 100; i++) {
		az_code_new(c);
		assert_int_equal(az_code_norm(c, strlen(c), n), 0);
		assert_string_equal(c, n);
	}
}

static void
norm_ok(const char *in, const char *want)
{
	char out[AZ_CODE_LEN + 1];

	memset(out, '#', sizeof out);
	assert_int_equal(az_code_norm(in, strlen(in), out), 0);
	assert_string_equal(out, want);
}

static void
norm_bad(const char *in, size_t len)
{
	char out[AZ_CODE_LEN + 1];

	assert_int_equal(az_code_norm(in, len, out), SS_EBADREQ);
}

static void
test_norm_folds(void **state)
{
	(void)state;
	norm_ok("ABCD1234", "ABCD1234");
	norm_ok("abcd1234", "ABCD1234");
	norm_ok("aBcD1234", "ABCD1234");
	norm_ok("IiLl0000", "11110000");
	norm_ok("OoOo1111", "00001111");
	norm_ok("ABCD-1234", "ABCD1234");
	norm_ok("ABCD 1234", "ABCD1234");
	norm_ok("-A-B-C-D- 1 2 3 4 -", "ABCD1234");
	norm_ok("sothmsk1", "S0THMSK1");
	norm_ok("zzzzzzzz", "ZZZZZZZZ");
}

static void
test_norm_refuses(void **state)
{
	(void)state;
	norm_bad("ABCDU234", 8);
	norm_bad("abcdu234", 8);
	norm_bad("", 0);
	norm_bad("ABCD123", 7);
	norm_bad("ABCD12345", 9);
	norm_bad("ABCD-123", 8); /* seven symbols once '-' is dropped */
	norm_bad("--------", 8);
	norm_bad("ABCD_234", 8);
	norm_bad("ABCD.234", 8);
	norm_bad("ABCD*234", 8);
	norm_bad("ABCD\t234", 8);
	norm_bad("ABCD\xc3\xa9\x32\x33", 8);
	/* A NUL inside the given length is not a terminator. */
	norm_bad("ABCD\0001234", 9);
	norm_bad("ABCD\000123", 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_alphabet),
	    cmocka_unit_test(test_new_is_normal),
	    cmocka_unit_test(test_norm_folds),
	    cmocka_unit_test(test_norm_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
