/*
 * tests/unit/test_utf8.c - strict UTF-8: every code point encoded is taken
 * whole, and every malformed shape (overlong, surrogate, past U+10FFFF,
 * truncated, stray continuation) is refused, and scrubbed to valid text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/utf8.h"

static size_t
encode(uint32_t cp, unsigned char *b)
{
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (unsigned char)(0xf0 | cp >> 18);
	b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	b[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Every code point: its shortest form is one sequence of its length,
 * except the surrogates; every cut of it is refused. */
static void
test_every_code_point(void **state)
{
	unsigned char b[4];

	(void)state;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		size_t n = encode(cp, b);
		bool sur = cp >= 0xd800 && cp <= 0xdfff;

		assert_int_equal(ss_utf8_seq(b, n), sur ? 0 : n);
		assert_true(ss_utf8_valid((const char *)b, n) == !sur);
		for (size_t cut = 1; cut < n; cut++)
			assert_int_equal(ss_utf8_seq(b, cut), 0);
	}
}

/* Every two-byte pair: valid exactly for C2..DF then 80..BF. */
static void
test_every_pair(void **state)
{
	unsigned char b[2];

	(void)state;
	for (unsigned a = 0x80; a <= 0xff; a++) {
		for (unsigned c = 0; c <= 0xff; c++) {
			bool ok =
			    a >= 0xc2 && a <= 0xdf && c >= 0x80 && c <= 0xbf;
			b[0] = (unsigned char)a;
			b[1] = (unsigned char)c;
			assert_true(ss_utf8_valid((const char *)b, 2) == ok);
		}
	}
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
	    "\xc0\x80",         /* overlong NUL */
	    "\xc1\xbf",         /* overlong */
	    "\xe0\x9f\xbf",     /* overlong 3 */
	    "\xf0\x8f\xbf\xbf", /* overlong 4 */
	    "\xed\xa0\x80",     /* high surrogate */
	    "\xed\xbf\xbf",     /* low surrogate */
	    "\xf4\x90\x80\x80", /* past U+10FFFF */
	    "\xf5\x80\x80\x80", "\xff", "\xfe", "\x80", "\xbf",
	    "a\x80z",         /* stray continuation */
	    "\xe2\x82",       /* truncated */
	    "\xe2\x28\xa1",   /* bad continuation */
	    "ok\xf0\x9f\x98", /* truncated at the end */
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(ss_utf8_valid(bad[i], strlen(bad[i])));
	assert_true(ss_utf8_valid("", 0));
	assert_true(ss_utf8_valid("a\0b", 3)); /* NUL is the caller's rule */
	assert_true(
	    ss_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
}

/* Scrubbing keeps every valid sequence, replaces each byte that does not
 * begin one, and always leaves valid text. */
static void
test_scrub(void **state)
{
	static const struct {
		const char *in, *out;
		size_t bad;
	} cases[] = {
	    {"plain", "plain", 0},
	    {"caf\xc3\xa9", "caf\xc3\xa9", 0},
	    {"caf\xc3", "caf?", 1},          /* cut at a byte limit */
	    {"ok\xf0\x9f\x98", "ok???", 3},  /* cut 4-byte sequence */
	    {"a\x80z", "a?z", 1},            /* stray continuation */
	    {"\xed\xa0\x80!", "\?\?\?!", 3}, /* surrogate */
	    {"\xe2\x28\xa1", "?(?", 2},      /* bad continuation */
	    {"\xc0\xaf\xe2\x82\xac", "??\xe2\x82\xac",
	     2}, /* overlong, then a euro */
	};
	char buf[32];
	unsigned char b[4];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = strlen(cases[i].in);

		memcpy(buf, cases[i].in, n + 1);
		assert_int_equal(ss_utf8_scrub(buf, n), cases[i].bad);
		assert_string_equal(buf, cases[i].out);
		assert_true(ss_utf8_valid(buf, n));
	}
	/* Every byte pair comes out valid and keeps its length. */
	for (unsigned x = 0; x < 256; x++)
		for (unsigned y = 0; y < 256; y++) {
			b[0] = (unsigned char)x;
			b[1] = (unsigned char)y;
			ss_utf8_scrub((char *)b, 2);
			assert_true(ss_utf8_valid((const char *)b, 2));
		}
}

/* Text people read: C0 (but tab, CR, LF in lines), DEL, C1, the line
 * and paragraph separators and the direction embeddings, overrides and
 * isolates are refused; everything else valid is taken. */
static void
test_text(void **state)
{
	unsigned char b[4];

	(void)state;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		size_t n = encode(cp, b);
		bool sur = cp >= 0xd800 && cp <= 0xdfff;
		bool ws = cp == '\t' || cp == '\n' || cp == '\r';
		bool no = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
		          cp == 0x2028 || cp == 0x2029 ||
		          (cp >= 0x202a && cp <= 0x202e) ||
		          (cp >= 0x2066 && cp <= 0x2069);

		if (sur)
			continue;
		assert_true(ss_text_cp_ok(cp, 0) == !no);
		assert_true(ss_text_cp_ok(cp, SS_TEXT_LINES) == (!no || ws));
		assert_true(ss_text_valid((const char *)b, n, 0) == !no);
		assert_true(ss_text_valid((const char *)b, n, SS_TEXT_LINES) ==
		            (!no || ws));
	}
	assert_true(ss_text_valid("Dr Zo\xc3\xab \xe2\x80\x8f", 11, 0));
	assert_false(ss_text_valid("a\0b", 3, SS_TEXT_LINES));
	assert_false(ss_text_valid("ok\xe2\x80\xaeko", 7, SS_TEXT_LINES));
	assert_false(ss_text_valid("caf\xc3", 4, 0)); /* broken UTF-8 */
	assert_true(ss_text_valid("line\r\nnext\tx", 12, SS_TEXT_LINES));
	assert_false(ss_text_valid("line\nnext", 9, 0));
	assert_true(ss_text_valid("", 0, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_point),
	    cmocka_unit_test(test_every_pair),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_scrub),
	    cmocka_unit_test(test_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
