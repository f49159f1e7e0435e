/*
 * tests/unit/test_seal.c - runtime/seal.c: values sealed for storage open
 * only under the same key and context, unaltered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "proto/errors.h"
#include "runtime/seal.h"

#define SECRET  "seal-test-secret-0123456789abcdef"
#define SECRET2 "seal-test-secret-0123456789abcdeF"
#define MSG     "JHBbGBe0P-_x9optNyh2BdsdLHyAnlE-lfYP_5rLQ94"

static ss_seal_key key;

static int
setup(void **state)
{
	(void)state;
	return ss_seal_key_init(&key, SECRET, strlen(SECRET));
}

static void
seal(const ss_seal_key *k, const char *ctx, unsigned char *out, size_t *n)
{
	assert_int_equal(ss_seal(k, ctx, MSG, strlen(MSG), out,
	                         strlen(MSG) + SS_SEAL_OVERHEAD, n),
	                 0);
	assert_int_equal(*n, strlen(MSG) + SS_SEAL_OVERHEAD);
}

static void
test_round_trip(void **state)
{
	unsigned char box[128], plain[128];
	size_t n, m;

	(void)state;
	seal(&key, "tok:abc", box, &n);
	/* Nothing of the plaintext shows. */
	assert_null(memmem(box, n, "JHBbGBe0", 8));
	assert_int_equal(
	    ss_unseal(&key, "tok:abc", box, n, plain, sizeof plain, &m), 0);
	assert_int_equal(m, strlen(MSG));
	assert_memory_equal(plain, MSG, m);
}

static void
test_fresh_nonce_each_time(void **state)
{
	unsigned char a[128], b[128];
	size_t na, nb;

	(void)state;
	seal(&key, "tok:abc", a, &na);
	seal(&key, "tok:abc", b, &nb);
	assert_int_equal(na, nb);
	assert_memory_not_equal(a, b, na);
}

static void
test_other_context_does_not_open(void **state)
{
	unsigned char box[128], plain[128];
	size_t n, m = 99;

	(void)state;
	seal(&key, "tok:abc", box, &n);
	assert_int_equal(
	    ss_unseal(&key, "tok:abd", box, n, plain, sizeof plain, &m),
	    SS_EINTERNAL);
	assert_int_equal(m, 0);
	assert_int_equal(
	    ss_unseal(&key, "view:abc", box, n, plain, sizeof plain, &m),
	    SS_EINTERNAL);
}

static void
test_other_key_does_not_open(void **state)
{
	unsigned char box[128], plain[128];
	ss_seal_key k2;
	size_t n, m;

	(void)state;
	assert_int_equal(ss_seal_key_init(&k2, SECRET2, strlen(SECRET2)), 0);
	seal(&key, "tok:abc", box, &n);
	assert_int_equal(
	    ss_unseal(&k2, "tok:abc", box, n, plain, sizeof plain, &m),
	    SS_EINTERNAL);
	ss_seal_key_clear(&k2);
	assert_int_equal(k2.k[0] | k2.k[31], 0);
}

static void
test_any_altered_byte_refused(void **state)
{
	unsigned char box[128], plain[128];
	size_t n, m;

	(void)state;
	seal(&key, "tok:abc", box, &n);
	for (size_t i = 0; i < n; i++) {
		box[i] ^= 0x01;
		assert_int_equal(
		    ss_unseal(&key, "tok:abc", box, n, plain, sizeof plain, &m),
		    SS_EINTERNAL);
		box[i] ^= 0x01;
	}
	/* Truncated, or shorter than nonce + MAC. */
	assert_int_equal(
	    ss_unseal(&key, "tok:abc", box, n - 1, plain, sizeof plain, &m),
	    SS_EINTERNAL);
	assert_int_equal(ss_unseal(&key, "tok:abc", box, SS_SEAL_OVERHEAD - 1,
	                           plain, sizeof plain, &m),
	                 SS_EINTERNAL);
}

static void
test_bounds(void **state)
{
	unsigned char box[128], plain[128];
	ss_seal_key k;
	size_t n, m;

	(void)state;
	assert_int_equal(ss_seal(&key, "c", MSG, strlen(MSG), box,
	                         strlen(MSG) + SS_SEAL_OVERHEAD - 1, &n),
	                 SS_EBADREQ);
	seal(&key, "c", box, &n);
	assert_int_equal(
	    ss_unseal(&key, "c", box, n, plain, strlen(MSG) - 1, &m),
	    SS_EBADREQ);
	/* The empty value seals too. */
	assert_int_equal(ss_seal(&key, "c", "", 0, box, SS_SEAL_OVERHEAD, &n),
	                 0);
	assert_int_equal(ss_unseal(&key, "c", box, n, plain, 0, &m), 0);
	assert_int_equal(m, 0);
	/* A secret shorter than the minimum is refused. */
	assert_int_equal(ss_seal_key_init(&k, "short", 5), SS_EBADREQ);
	assert_int_equal(ss_seal_key_init(&k, NULL, 0), SS_EBADREQ);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_fresh_nonce_each_time),
	    cmocka_unit_test(test_other_context_does_not_open),
	    cmocka_unit_test(test_other_key_does_not_open),
	    cmocka_unit_test(test_any_altered_byte_refused),
	    cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
