/*
 * services/gateway/form.c - percent-decoding, form bodies, query strings
 * and cookies: untrusted bytes, read without allocating.
 *
 * Contract (gateway.h): decoded values are NUL-terminated, bounded by the
 * caller's buffer, valid UTF-8 and free of NUL and other control bytes
 * (tab excepted), so they can be packed, logged about and put in pages
 * without further checks.  Anything else is SS_EBADREQ.
 */
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/utf8.h"
#include "services/gateway/gateway.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
gw_pct_decode(const char *s, size_t n, bool plus, char *out, size_t cap,
              size_t *outlen)
{
	size_t i, o = 0;
	int hi, lo;
	unsigned char c;

	if (cap == 0)
		return SS_EBADREQ;
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return SS_EBADREQ;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return SS_EBADREQ;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SS_EBADREQ;
		if (o + 1 >= cap)
			return SS_EBADREQ;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (!ss_utf8_valid(out, o))
		return SS_EBADREQ;
	if (outlen != NULL)
		*outlen = o;
	return 0;
}

/* Calls fn for each key=value pair; stops at fn's non-zero answer. */
typedef int (*pair_fn)(const char *k, size_t kn, const char *v, size_t vn,
                       void *arg);

static int
each_pair(const char *s, size_t n, pair_fn fn, void *arg)
{
	size_t i = 0, j, eq;
	int rv;

	while (i < n) {
		for (j = i; j < n && s[j] != '&'; j++)
			;
		if (j > i) {
			for (eq = i; eq < j && s[eq] != '='; eq++)
				;
			rv = eq < j ? fn(s + i, eq - i, s + eq + 1, j - eq - 1,
			                 arg)
			            : fn(s + i, j - i, "", 0, arg);
			if (rv != 0)
				return rv;
		}
		i = j + 1;
	}
	return 0;
}

typedef struct get_ctx {
	const char *name;
	char *out;
	size_t cap;
	size_t *outlen;
	int found;
} get_ctx;

static int
get_pair(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	get_ctx *g = arg;
	char key[GW_QUERY_MAX];
	int rv;

	if (gw_pct_decode(k, kn, true, key, sizeof key, NULL) != 0)
		return SS_EBADREQ;
	if (strcmp(key, g->name) != 0)
		return 0;
	if ((rv = gw_pct_decode(v, vn, true, g->out, g->cap, g->outlen)) != 0)
		return rv;
	g->found = 1;
	/* The first wins; gw_form_check, where a route uses it, refuses
	 * repeats. */
	return 1;
}

int
gw_form_get(const char *s, size_t n, const char *name, char *out, size_t cap,
            size_t *outlen)
{
	get_ctx g = {name, out, cap, outlen, 0};
	int rv;

	if (cap > 0)
		out[0] = '\0';
	rv = each_pair(s, n, get_pair, &g);
	if (rv < 0)
		return rv;
	return g.found;
}

typedef struct check_ctx {
	const char *const *allowed;
	unsigned seen; /* one bit per allowed name */
	char *why;
	size_t whylen;
} check_ctx;

static int
check_pair(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	check_ctx *c = arg;
	char key[GW_QUERY_MAX];
	unsigned i;

	(void)v;
	(void)vn;
	if (gw_pct_decode(k, kn, true, key, sizeof key, NULL) != 0) {
		snprintf(c->why, c->whylen, "malformed parameter name");
		return SS_EBADREQ;
	}
	for (i = 0; c->allowed[i] != NULL && i < 32; i++) {
		if (strcmp(key, c->allowed[i]) != 0)
			continue;
		if (c->seen & (1u << i)) {
			snprintf(c->why, c->whylen,
			         "duplicate parameter '%.64s'", key);
			return SS_EBADREQ;
		}
		c->seen |= 1u << i;
		return 0;
	}
	snprintf(c->why, c->whylen, "unknown parameter '%.64s'", key);
	return SS_EBADREQ;
}

int
gw_form_check(const char *s, size_t n, const char *const *allowed, char *why,
              size_t whylen)
{
	check_ctx c = {allowed, 0, why, whylen};

	return each_pair(s, n, check_pair, &c);
}

int
gw_cookie_get(const char *hdr, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), vl;
	const char *p = hdr, *end;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if ((end = strchr(p, ';')) == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 &&
		    p[nl] == '=') {
			vl = (size_t)(end - p) - nl - 1;
			while (vl > 0 &&
			       (p[nl + vl] == ' ' || p[nl + vl] == '\t'))
				vl--;
			if (vl + 1 > cap)
				return 0;
			memcpy(out, p + nl + 1, vl);
			out[vl] = '\0';
			return 1;
		}
		p = end;
	}
	return 0;
}
