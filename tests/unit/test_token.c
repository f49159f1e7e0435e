/*
 * tests/unit/test_token.c - runtime/token.c: generation, shape, keyed hash
 * and the keyed hasher.
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

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789-_";

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

/* What ss_token_valid() accepts, the long way: libsodium decodes the
 * string to exactly 32 bytes and encodes them back to the same text. */
static bool
valid_by_decoding(const char *s, size_t len)
{
	unsigned char raw[SS_TOKEN_BYTES];
	char again[SS_TOKEN_LEN + 1];
	size_t n = 0;

	if (sodium_base642bin(raw, sizeof raw, s, len, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof raw)
		return false;
	sodium_bin2base64(again, sizeof again, raw, sizeof raw,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return len == strlen(again) && memcmp(again, s, len) == 0;
}

/* len random characters of the alphabet. */
static void
random_chars(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		s[i] = alphabet[randombytes_uniform(64)];
}

/* Counts of both answers, so a test cannot pass on one side only. */
static int n_valid, n_invalid;

static void
check_same(const char *s, size_t len)
{
	bool want = valid_by_decoding(s, len);

	if (ss_token_valid(s, len) != want) {
		print_error("ss_token_valid(\"%.*s\", %zu) != %d\n", (int)len,
		            s, len, want);
		fail();
	}
	if (want)
		n_valid++;
	else
		n_invalid++;
}

static void
test_valid_is_decode_and_reencode(void **state)
{
	char t[SS_TOKEN_LEN + 2], u[SS_TOKEN_LEN + 2];

	(void)state;
	n_valid = n_invalid = 0;
	for (int round = 0; round < 20; round++) {
		assert_int_equal(ss_token_new(t), 0);
		/* Every byte as the last character: 16 of the 64 letters
		 * leave the 2 unused bits zero. */
		memcpy(u, t, SS_TOKEN_LEN);
		for (int c = 0; c < 256; c++) {
			u[SS_TOKEN_LEN - 1] = (char)c;
			check_same(u, SS_TOKEN_LEN);
		}
		/* Every byte at every position. */
		for (size_t i = 0; i < SS_TOKEN_LEN; i++) {
			memcpy(u, t, SS_TOKEN_LEN);
			for (int c = 0; c < 256; c++) {
				u[i] = (char)c;
				check_same(u, SS_TOKEN_LEN);
			}
		}
		/* One character short or long of a token. */
		memcpy(u, t, SS_TOKEN_LEN);
		check_same(u, SS_TOKEN_LEN - 1);
		for (int c = 0; c < 256; c++) {
			u[SS_TOKEN_LEN] = (char)c;
			check_same(u, SS_TOKEN_LEN + 1);
		}
	}
	/* Random strings of the alphabet, 42 to 44 long. */
	for (int i = 0; i < 30000; i++) {
		size_t len = SS_TOKEN_LEN - 1 + (size_t)(i % 3);

		random_chars(u, len);
		check_same(u, len);
	}
	/* Random bytes. */
	for (int i = 0; i < 5000; i++) {
		randombytes_buf(u, SS_TOKEN_LEN);
		check_same(u, SS_TOKEN_LEN);
	}
	/* Edges of the alphabet and of the value range. */
	memset(u, 'A', SS_TOKEN_LEN);
	check_same(u, SS_TOKEN_LEN);
	memset(u, '_', SS_TOKEN_LEN);
	check_same(u, SS_TOKEN_LEN);
	u[SS_TOKEN_LEN - 1] = '8'; /* 60 */
	check_same(u, SS_TOKEN_LEN);
	memset(u, '-', SS_TOKEN_LEN);
	check_same(u, SS_TOKEN_LEN);
	check_same("", 0);
	assert_true(n_valid > 1000);
	assert_true(n_invalid > 1000);
}

/* HMAC-SHA256(key, purpose 0x00 token) in hex, in one update. */
static void
hmac_hex(const char *k, size_t klen, const char *purpose, const char *tok,
         char out[SS_TOKEN_HASH_LEN + 1])
{
	unsigned char msg[256 + 1 + SS_TOKEN_LEN];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	size_t pn = strlen(purpose);

	assert_true(pn <= 256);
	memcpy(msg, purpose, pn);
	msg[pn] = 0;
	memcpy(msg + pn + 1, tok, SS_TOKEN_LEN);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)k, klen);
	crypto_auth_hmacsha256_update(&st, msg, pn + 1 + SS_TOKEN_LEN);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(out, SS_TOKEN_HASH_LEN + 1, mac, sizeof mac);
}

/* The stored format, pinned: computed elsewhere (Python's hmac) for the
 * test key and a fixed token. */
static void
test_hasher_known_vectors(void **state)
{
	static const char tok[] = "The_quick-brown_fox-jumps_over-the_lazy_dog";
	static const struct {
		const char *purpose, *hex;
	} v[] = {
	    {"guestlink", "3398f6d8d67302ecff0b0b9b5e128824"
	                  "a7a59d611557987cc7806e32474d5190"},
	    {"guestlink.id", "c3f90e618cfa3bb406ba5588f0d57fab"
	                     "9fbdda86192da602d29a80f9e3e70a74"},
	    {"invite", "898a7a4ad13e612396243c8588686b64"
	               "523c7e2533abbd98e43a15e9687f63ec"},
	};
	unsigned char msg[64], mac[crypto_auth_hmacsha256_BYTES];
	char h[SS_TOKEN_HASH_LEN + 1], want[SS_TOKEN_HASH_LEN + 1];
	ss_token_hasher th;

	(void)state;
	assert_true(ss_token_valid(tok, strlen(tok)));
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		size_t pn = strlen(v[i].purpose);

		assert_int_equal(
		    ss_token_hasher_init(&th, key, strlen(key), v[i].purpose),
		    0);
		assert_int_equal(
		    ss_token_hasher_hash(&th, tok, SS_TOKEN_LEN, h), 0);
		assert_string_equal(h, v[i].hex);
		ss_token_hasher_wipe(&th);
		/* libsodium's one-shot HMAC (32-byte keys) agrees. */
		memcpy(msg, v[i].purpose, pn);
		msg[pn] = 0;
		memcpy(msg + pn + 1, tok, SS_TOKEN_LEN);
		assert_int_equal(sizeof key - 1,
		                 crypto_auth_hmacsha256_KEYBYTES);
		crypto_auth_hmacsha256(mac, msg, pn + 1 + SS_TOKEN_LEN,
		                       (const unsigned char *)key);
		sodium_bin2hex(want, sizeof want, mac, sizeof mac);
		assert_string_equal(want, v[i].hex);
		assert_int_equal(ss_token_hash(key, strlen(key), v[i].purpose,
		                               tok, SS_TOKEN_LEN, h),
		                 0);
		assert_string_equal(h, v[i].hex);
	}
}

static void
test_hasher_equals_hash(void **state)
{
	static const char *const purposes[] = {
	    "",
	    "invite",
	    "guestlink",
	    "guestlink.id",
	    "guestlink.session",
	    "guestlink.upload",
	    /* Longer than SHA-256's block. */
	    ("a-purpose-of-more-than-sixty-four-bytes-"
	     "so-that-it-spans-two-blocks-of-the-inner-hash"),
	};
	/* HMAC hashes keys longer than the block (64) down first. */
	static const size_t keylens[] = {32, 33, 63, 64, 65, 200};
	char k[200], t[SS_TOKEN_LEN + 1];
	char h[SS_TOKEN_HASH_LEN + 1], one[SS_TOKEN_HASH_LEN + 1];
	char want[SS_TOKEN_HASH_LEN + 1];
	ss_token_hasher th;

	(void)state;
	for (size_t ki = 0; ki < sizeof keylens / sizeof keylens[0]; ki++) {
		randombytes_buf(k, keylens[ki]); /* any bytes, even 0 */
		for (size_t pi = 0; pi < sizeof purposes / sizeof purposes[0];
		     pi++) {
			assert_int_equal(ss_token_hasher_init(
			                     &th, k, keylens[ki], purposes[pi]),
			                 0);
			for (int i = 0; i < 10; i++) {
				assert_int_equal(ss_token_new(t), 0);
				assert_int_equal(ss_token_hasher_hash(
				                     &th, t, SS_TOKEN_LEN, h),
				                 0);
				assert_int_equal(
				    ss_token_hash(k, keylens[ki], purposes[pi],
				                  t, SS_TOKEN_LEN, one),
				    0);
				hmac_hex(k, keylens[ki], purposes[pi], t, want);
				assert_string_equal(h, want);
				assert_string_equal(one, want);
			}
			ss_token_hasher_wipe(&th);
		}
	}
}

static void
test_hasher_refuses_bad_input(void **state)
{
	char t[SS_TOKEN_LEN + 2], h[SS_TOKEN_HASH_LEN + 1];
	ss_token_hasher th;

	(void)state;
	assert_int_equal(ss_token_hasher_init(&th, key, 31, "invite"),
	                 SS_EBADREQ);
	assert_true(sodium_is_zero((const unsigned char *)&th, sizeof th));
	assert_int_equal(ss_token_hasher_init(&th, NULL, 0, "invite"),
	                 SS_EBADREQ);
	assert_int_equal(ss_token_hasher_init(&th, NULL, 32, "invite"),
	                 SS_EBADREQ);
	assert_int_equal(ss_token_hasher_init(&th, key, 32, NULL), SS_EBADREQ);

	assert_int_equal(ss_token_hasher_init(&th, key, 32, "invite"), 0);
	assert_int_equal(ss_token_new(t), 0);
	memset(h, 'x', sizeof h);
	assert_int_equal(ss_token_hasher_hash(&th, "short", 5, h), SS_EBADREQ);
	assert_string_equal(h, "");
	memset(h, 'x', sizeof h);
	assert_int_equal(ss_token_hasher_hash(&th, NULL, SS_TOKEN_LEN, h),
	                 SS_EBADREQ);
	assert_string_equal(h, "");
	assert_int_equal(ss_token_hasher_hash(&th, t, SS_TOKEN_LEN - 1, h),
	                 SS_EBADREQ);
	t[SS_TOKEN_LEN] = 'A';
	assert_int_equal(ss_token_hasher_hash(&th, t, SS_TOKEN_LEN + 1, h),
	                 SS_EBADREQ);
	t[SS_TOKEN_LEN] = '\0';
	t[3] = '/';
	assert_int_equal(ss_token_hasher_hash(&th, t, SS_TOKEN_LEN, h),
	                 SS_EBADREQ);
	t[3] = 'A';
	t[SS_TOKEN_LEN - 1] = 'B'; /* non-zero unused bits */
	memset(h, 'x', sizeof h);
	assert_int_equal(ss_token_hasher_hash(&th, t, SS_TOKEN_LEN, h),
	                 SS_EBADREQ);
	assert_string_equal(h, "");
	t[SS_TOKEN_LEN - 1] = 'A';
	assert_int_equal(ss_token_hasher_hash(&th, t, SS_TOKEN_LEN, h), 0);
	ss_token_hasher_wipe(&th);
	assert_true(sodium_is_zero((const unsigned char *)&th, sizeof th));
}

/* A hasher is not changed by hashing: many tokens (and refusals) through
 * one give what fresh ones give, and the first answer again at the end. */
static void
test_hasher_reused(void **state)
{
	enum { N = 1000 };
	static char toks[N][SS_TOKEN_LEN + 1];
	static char hashes[N][SS_TOKEN_HASH_LEN + 1];
	char h[SS_TOKEN_HASH_LEN + 1], bad[SS_TOKEN_LEN + 1];
	ss_token_hasher th, fresh;

	(void)state;
	assert_int_equal(ss_token_hasher_init(&th, key, 32, "guestlink"), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(ss_token_new(toks[i]), 0);
		assert_int_equal(
		    ss_token_hasher_hash(&th, toks[i], SS_TOKEN_LEN, hashes[i]),
		    0);
		assert_int_equal(
		    ss_token_hasher_init(&fresh, key, 32, "guestlink"), 0);
		assert_int_equal(
		    ss_token_hasher_hash(&fresh, toks[i], SS_TOKEN_LEN, h), 0);
		ss_token_hasher_wipe(&fresh);
		assert_string_equal(hashes[i], h);
		if (i % 7 == 0) {
			memcpy(bad, toks[i], sizeof bad);
			bad[i % SS_TOKEN_LEN] = '.';
			assert_int_equal(
			    ss_token_hasher_hash(&th, bad, SS_TOKEN_LEN, h),
			    SS_EBADREQ);
		}
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(
		    ss_token_hasher_hash(&th, toks[i], SS_TOKEN_LEN, h), 0);
		assert_string_equal(hashes[i], h);
	}
	ss_token_hasher_wipe(&th);
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
	    cmocka_unit_test(test_valid_is_decode_and_reencode),
	    cmocka_unit_test(test_hasher_known_vectors),
	    cmocka_unit_test(test_hasher_equals_hash),
	    cmocka_unit_test(test_hasher_refuses_bad_input),
	    cmocka_unit_test(test_hasher_reused),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
