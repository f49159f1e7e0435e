/*
 * tests/unit/test_notify_mime.c - the message notify puts on the wire.
 *
 * Everything nt_mime_* writes is decoded again here (quoted-printable,
 * RFC 2047 encoded words, folded headers) and compared with what went in,
 * and every line is checked against the limits of RFC 5322 and RFC 2045.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/mailq.h"
#include "services/notify/notify.h"

/* ---- decoders ----------------------------------------------------------- */

static int
unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Quoted-printable back to bytes; hard breaks stay CRLF. */
static size_t
qp_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '=') {
			out[o++] = s[i];
			continue;
		}
		assert_true(i + 2 < n);
		if (s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2; /* soft break */
			continue;
		}
		assert_true(unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0);
		out[o++] = (char)(unhex(s[i + 1]) * 16 + unhex(s[i + 2]));
		i += 2;
	}
	return o;
}

/* Every line break of s as CRLF, as the encoder writes them. */
static size_t
crlf(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			out[o++] = s[i];
		}
	}
	return o;
}

/* Checks the lines of s (CRLF-separated): at most max characters, no bare
 * CR or LF. */
static void
check_lines(const char *s, size_t n, size_t max)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < n && s[i + 1] == '\n');
			if (i - start > max)
				fail_msg("line of %zu > %zu: %.*s", i - start,
				         max, (int)(i - start), s + start);
			i++;
			start = i + 1;
		} else {
			assert_int_not_equal(s[i], '\n');
		}
	}
	assert_true(n - start <= max);
}

static void
check_qp(const char *in, size_t n)
{
	char *enc, *dec = malloc(3 * n + 8), *want = malloc(2 * n + 8);
	nt_buf b = {0};
	size_t dn, wn;

	assert_non_null(dec);
	assert_non_null(want);
	nt_mime_qp(&b, in, n);
	assert_int_equal(nt_buf_finish(&b), 0);
	enc = b.p;
	check_lines(enc, b.n, 76);
	for (size_t i = 0; i < b.n; i++) {
		unsigned char c = (unsigned char)enc[i];

		assert_true((c >= 32 && c <= 126) || c == '\t' || c == '\r' ||
		            c == '\n');
		/* No trailing white space: it could be stripped in transit. */
		if (c == '\r')
			assert_true(i == 0 ||
			            (enc[i - 1] != ' ' && enc[i - 1] != '\t'));
		/* Nothing a relay might mangle at the start of a line. */
		if (i == 0 || enc[i - 1] == '\n') {
			assert_int_not_equal(c, '.');
			assert_false(strncmp(enc + i, "From ", 5) == 0);
		}
	}
	assert_true(b.n == 0 || (enc[b.n - 1] != ' ' && enc[b.n - 1] != '\t'));
	assert_null(strstr(enc, "=_"));
	dn = qp_decode(enc, b.n, dec);
	wn = crlf(in, n, want);
	assert_int_equal(dn, wn);
	assert_memory_equal(dec, want, dn);
	nt_buf_free(&b);
	free(dec);
	free(want);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_date(void **state)
{
	char d[40];

	(void)state;
	nt_mime_date(d, 0);
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	nt_mime_date(d, 951782400 + 3600 * 13 + 60 * 5 + 9);
	assert_string_equal(d, "Tue, 29 Feb 2000 13:05:09 +0000");
	nt_mime_date(d, 1767225599);
	assert_string_equal(d, "Wed, 31 Dec 2025 23:59:59 +0000");
}

static void
test_qp(void **state)
{
	static const char *const cases[] = {
	    "",
	    "plain text",
	    "a = b",
	    "trailing space \nand tab\t\r\nend ",
	    ".leading dot\n.\n..",
	    "From here\nFrom there\nFromage",
	    "Zoë Müller, 東京, emoji \xf0\x9f\x98\x80",
	    "CR\ronly\r\rand LF\n\nand CRLF\r\n\r\n",
	    "=_studyshare_ must not survive",
	};
	char line[400];
	unsigned char rnd[2048];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_qp(cases[i], strlen(cases[i]));
	/* Long lines get soft breaks, whatever sits at the break. */
	for (size_t len = 70; len < 160; len++) {
		for (size_t i = 0; i < len; i++)
			line[i] = "ab =\xc3\xa9 ."[i % 8];
		check_qp(line, len);
	}
	/* Arbitrary bytes, NUL included. */
	for (int round = 0; round < 200; round++) {
		size_t n = randombytes_uniform(sizeof rnd);

		randombytes_buf(rnd, n);
		check_qp((const char *)rnd, n);
	}
}

/* Unfolds a header block and returns the value of name (static buffer). */
static const char *
header_value(const char *hdrs, const char *name)
{
	static char out[65536];
	size_t nlen = strlen(name), o = 0;
	const char *p = hdrs;

	while (*p != '\0') {
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			p += nlen + 1;
			while (*p == ' ')
				p++;
			for (; *p != '\0'; p++) {
				if (p[0] == '\r' && p[1] == '\n' &&
				    (p[2] == ' ' || p[2] == '\t')) {
					p += 1; /* unfold: drop the CRLF */
					continue;
				}
				if (p[0] == '\r' && p[1] == '\n')
					break;
				assert_true(o + 1 < sizeof out);
				out[o++] = *p;
			}
			out[o] = '\0';
			return out;
		}
		p = strstr(p, "\r\n");
		if (p == NULL)
			break;
		p += 2;
	}
	return NULL;
}

/* Decodes a value made of encoded words (and the space between them). */
static void
decode_words(const char *v, char *out, size_t *outlen)
{
	*outlen = 0;
	while (*v != '\0') {
		const char *end;
		unsigned char bin[64];
		size_t blen;

		if (*v == ' ') {
			v++;
			continue;
		}
		assert_int_equal(strncmp(v, "=?UTF-8?B?", 10), 0);
		v += 10;
		end = strstr(v, "?=");
		assert_non_null(end);
		assert_true(end - v <= 75 - 12);
		assert_int_equal(
		    sodium_base642bin(bin, sizeof bin, v, (size_t)(end - v),
		                      NULL, &blen, NULL,
		                      sodium_base64_VARIANT_ORIGINAL),
		    0);
		/* Each word holds whole characters (RFC 2047 section 5). */
		assert_true(ss_mail_utf8_ok((const char *)bin, blen));
		memcpy(out + *outlen, bin, blen);
		*outlen += blen;
		v = end + 2;
	}
}

static void
header_roundtrip(const char *value, bool want_encoded)
{
	nt_buf b = {0};
	const char *got;

	nt_mime_header(&b, "Subject", value, strlen(value));
	assert_int_equal(nt_buf_finish(&b), 0);
	check_lines(b.p, b.n - 2, 78);
	assert_true(b.n >= 2 && strcmp(b.p + b.n - 2, "\r\n") == 0);
	got = header_value(b.p, "Subject");
	assert_non_null(got);
	if (want_encoded) {
		char dec[8192];
		size_t n;

		decode_words(got, dec, &n);
		assert_int_equal(n, strlen(value));
		assert_memory_equal(dec, value, n);
	} else {
		assert_null(strstr(got, "=?"));
		assert_string_equal(got, value);
	}
	nt_buf_free(&b);
}

static void
test_headers(void **state)
{
	char long_ascii[600], long_word[300], long_utf8[900];

	(void)state;
	header_roundtrip("Hello world", false);
	header_roundtrip("", false);
	for (size_t i = 0; i < sizeof long_ascii - 1; i++)
		long_ascii[i] = i % 9 == 8 ? ' ' : 'a' + (char)(i % 26);
	long_ascii[sizeof long_ascii - 1] = '\0';
	header_roundtrip(long_ascii, false);
	memset(long_word, 'x', sizeof long_word - 1);
	long_word[sizeof long_word - 1] = '\0';
	header_roundtrip(long_word, true);
	header_roundtrip("Dr. Zoë Müller shared a study", true);
	header_roundtrip("looks like =?UTF-8?B?eA==?= a word", true);
	header_roundtrip(" leading space", true);
	header_roundtrip("tab\there", true);
	for (size_t i = 0; i + 2 < sizeof long_utf8; i += 2)
		memcpy(long_utf8 + i, "\xc3\xa9", 2);
	long_utf8[sizeof long_utf8 - 2] = '\0';
	header_roundtrip(long_utf8, true);
	{
		/* 3- and 4-byte characters across every chunk boundary. */
		char mix[400] = "";

		for (int i = 0; i < 40; i++)
			strcat(mix, i % 2 ? "東京" : "a\xf0\x9f\x98\x80");
		header_roundtrip(mix, true);
	}
}

static void
test_from(void **state)
{
	char why[NT_WHY_MAX];
	nt_from f;

	(void)state;
	assert_int_equal(nt_from_parse(&f, "a@b.example", why, sizeof why), 0);
	assert_string_equal(f.addr, "a@b.example");
	assert_string_equal(f.name, "");
	assert_int_equal(
	    nt_from_parse(&f, "studyshare <no-reply@x.org>", why, sizeof why),
	    0);
	assert_string_equal(f.addr, "no-reply@x.org");
	assert_string_equal(f.name, "studyshare");
	assert_int_equal(
	    nt_from_parse(&f, "\"Dr. X, PACS\" <a@b>", why, sizeof why), 0);
	assert_string_equal(f.name, "Dr. X, PACS");
	assert_int_equal(nt_from_parse(&f, "Zoë <a@b>", why, sizeof why), 0);
	assert_string_equal(f.name, "Zoë");
	assert_int_equal(nt_from_parse(&f, "Name <bad>", why, sizeof why),
	                 SS_EBADREQ);
	assert_int_equal(nt_from_parse(&f, "<a@b", why, sizeof why),
	                 SS_EBADREQ);
	assert_int_equal(nt_from_parse(&f, "a@b\r\nBcc: c@d", why, sizeof why),
	                 SS_EBADREQ);
	assert_int_equal(nt_from_parse(&f, "Na\"me <a@b>", why, sizeof why),
	                 SS_EBADREQ);
	assert_int_equal(nt_from_parse(&f, "Na\nme <a@b>", why, sizeof why),
	                 SS_EBADREQ);
	assert_non_null(strstr(why, "display name"));
}

/* Builds a whole message and takes it apart again. */
static void
check_message(const nt_from *from, const char *subject, const char *text,
              const char *html, const char *want_from)
{
	nt_rendered r = {0};
	nt_mail m = {from, "bob@example.org",
	             "00112233445566778899aabbccddeeff", &r, 1767225599};
	nt_buf out = {0};
	char *hdrs, *body, boundary[128], delim[140], *dec, *want;
	const char *v, *p;
	size_t hlen, n, wn;
	int parts = 0;

	nt_buf_adds(&r.subject, subject);
	nt_buf_adds(&r.text, text);
	nt_buf_adds(&r.html, html);
	assert_int_equal(nt_buf_finish(&r.subject), 0);
	assert_int_equal(nt_buf_finish(&r.text), 0);
	assert_int_equal(nt_buf_finish(&r.html), 0);
	assert_int_equal(nt_mime_build(&out, &m), 0);
	check_lines(out.p, out.n, 998);

	body = strstr(out.p, "\r\n\r\n");
	assert_non_null(body);
	hlen = (size_t)(body - out.p) + 2;
	hdrs = strndup(out.p, hlen);
	check_lines(hdrs, hlen - 2, 78);
	body += 4;
	assert_string_equal(header_value(hdrs, "Date"),
	                    "Wed, 31 Dec 2025 23:59:59 +0000");
	assert_string_equal(header_value(hdrs, "Message-ID"),
	                    "<00112233445566778899aabbccddeeff@studyshare>");
	assert_string_equal(header_value(hdrs, "From"), want_from);
	assert_string_equal(header_value(hdrs, "To"), "bob@example.org");
	assert_string_equal(header_value(hdrs, "MIME-Version"), "1.0");
	assert_string_equal(header_value(hdrs, "Auto-Submitted"),
	                    "auto-generated");
	assert_non_null(header_value(hdrs, "Subject"));
	v = header_value(hdrs, "Content-Type");
	assert_non_null(v);
	assert_int_equal(strncmp(v, "multipart/alternative; boundary=\"", 33),
	                 0);
	snprintf(boundary, sizeof boundary, "%s", v + 33);
	assert_true(strlen(boundary) > 20);
	boundary[strlen(boundary) - 1] = '\0'; /* the closing quote */
	snprintf(delim, sizeof delim, "--%s", boundary);

	/* The boundary occurs only as delimiter lines: two parts, one end. */
	for (p = body; (p = strstr(p, delim)) != NULL; p += strlen(delim)) {
		assert_true(p == body || (p[-2] == '\r' && p[-1] == '\n'));
		parts++;
	}
	assert_int_equal(parts, 3);
	snprintf(delim, sizeof delim, "\r\n--%s--\r\n", boundary);
	assert_string_equal(out.p + out.n - strlen(delim), delim);

	/* Each part: its headers, then the QP body that decodes back. */
	for (int i = 0; i < 2; i++) {
		const char *src = i == 0 ? text : html;
		const char *type = i == 0 ? "text/plain" : "text/html";
		char head[256], *start, *end;

		snprintf(delim, sizeof delim, "--%s\r\n", boundary);
		start = strstr(body, delim);
		for (int k = 0; k < i; k++)
			start = strstr(start + 1, delim);
		assert_non_null(start);
		start += strlen(delim);
		snprintf(head, sizeof head,
		         "Content-Type: %s; charset=utf-8\r\n"
		         "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		         type);
		assert_int_equal(strncmp(start, head, strlen(head)), 0);
		start += strlen(head);
		snprintf(delim, sizeof delim, "\r\n--%s", boundary);
		end = strstr(start, delim);
		assert_non_null(end);
		dec = malloc((size_t)(end - start) + 1);
		want = malloc(2 * strlen(src) + 1);
		n = qp_decode(start, (size_t)(end - start), dec);
		wn = crlf(src, strlen(src), want);
		assert_int_equal(n, wn);
		assert_memory_equal(dec, want, n);
		free(dec);
		free(want);
	}
	free(hdrs);
	nt_buf_free(&out);
	nt_rendered_free(&r);
}

static void
test_build(void **state)
{
	nt_from plain, quoted, utf8;
	char why[NT_WHY_MAX], big[5000];

	(void)state;
	assert_int_equal(
	    nt_from_parse(&plain, "studyshare <ss@x.org>", why, sizeof why), 0);
	assert_int_equal(
	    nt_from_parse(&quoted, "Dr. X <ss@x.org>", why, sizeof why), 0);
	assert_int_equal(
	    nt_from_parse(&utf8, "Zoë <ss@x.org>", why, sizeof why), 0);
	check_message(&plain, "Hello", "Hi Bob,\n\nbye\n", "<p>Hi</p>",
	              "studyshare <ss@x.org>");
	check_message(&quoted, "Zoë shared", "caf\xc3\xa9\n.\nFrom me\n",
	              "<p>caf&eacute;</p>\n", "\"Dr. X\" <ss@x.org>");
	check_message(&utf8, "", "", "", "=?UTF-8?B?Wm/Dqw==?= <ss@x.org>");
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	check_message(&plain, big, big, big, "studyshare <ss@x.org>");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_date),    cmocka_unit_test(test_qp),
	    cmocka_unit_test(test_headers), cmocka_unit_test(test_from),
	    cmocka_unit_test(test_build),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
