/*
 * proto/utf8.c - see utf8.h.
 */
#include <stdint.h>

#include "proto/utf8.h"

size_t
ss_utf8_seq(const unsigned char *s, size_t left)
{
	uint32_t cp;

	return ss_utf8_next(s, left, &cp);
}

size_t
ss_utf8_next(const unsigned char *s, size_t left, uint32_t *out)
{
	unsigned char c = s[0];
	uint32_t cp;
	size_t n;

	*out = c;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0; /* a continuation byte, C0, C1 or F5..FF */
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	*out = cp;
	return n;
}

bool
ss_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((len = ss_utf8_seq(p + i, n - i)) == 0)
			return false;
		i += len;
	}
	return true;
}

size_t
ss_utf8_scrub(char *s, size_t n)
{
	unsigned char *p = (unsigned char *)s;
	size_t i = 0, len, bad = 0;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((len = ss_utf8_seq(p + i, n - i)) == 0) {
			p[i++] = '?';
			bad++;
			continue;
		}
		i += len;
	}
	return bad;
}

bool
ss_text_cp_ok(uint32_t cp, int flags)
{
	if (cp < 0x20)
		return (flags & SS_TEXT_LINES) &&
		       (cp == '\t' || cp == '\n' || cp == '\r');
	if (cp < 0x7f)
		return true;
	if (cp <= 0x9f) /* DEL, C1 */
		return false;
	return !(cp == 0x2028 || cp == 0x2029 ||
	         (cp >= 0x202a && cp <= 0x202e) ||
	         (cp >= 0x2066 && cp <= 0x2069));
}

bool
ss_text_valid(const char *s, size_t n, int flags)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t len;

	for (size_t i = 0; i < n; i += len) {
		if ((len = ss_utf8_next(p + i, n - i, &cp)) == 0 ||
		    !ss_text_cp_ok(cp, flags))
			return false;
	}
	return true;
}
