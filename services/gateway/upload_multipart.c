/*
 * services/gateway/upload_multipart.c - the parts of a multipart body
 * (RFC 2046), for POST /u/{token}/files with several files.
 *
 * Contract in upload.h.  Pure and bounded: the boundary comes from the
 * Content-Type (1..70 characters, quoted or not), every search is limited
 * to the body, and a part is only a view into it.  Preamble and epilogue
 * are ignored; a body without its closing delimiter is refused.  Each
 * part's headers are read only for its Content-Type (multipart/related)
 * or the presence of a filename (multipart/form-data): a part is a file
 * when it says application/dicom or application/octet-stream, or is a
 * form-data file.  Other parts (a form field) are skipped.
 */
#include "services/gateway/upload.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/errors.h"

#define BOUNDARY_MAX 70
#define HEADERS_MAX  8192

static int
refuse(char *why, size_t n, const char *s)
{
	if (why != NULL && n > 0)
		snprintf(why, n, "%s", s);
	return SS_EBADREQ;
}

/* The boundary parameter of ctype into b (NUL-terminated). */
static int
boundary(const char *ctype, char b[BOUNDARY_MAX + 1])
{
	const char *p = ctype;
	size_t n = 0;

	while ((p = strcasestr(p, "boundary=")) != NULL) {
		/* a parameter name, not the tail of another one */
		if (p == ctype || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t')
			break;
		p++;
	}
	if (p == NULL)
		return SS_EBADREQ;
	p += 9;
	if (*p == '"') {
		p++;
		while (p[n] != '\0' && p[n] != '"')
			n++;
		if (p[n] != '"')
			return SS_EBADREQ;
	} else {
		n = strcspn(p, "; \t");
	}
	if (n == 0 || n > BOUNDARY_MAX)
		return SS_EBADREQ;
	memcpy(b, p, n);
	b[n] = '\0';
	return 0;
}

/* The value of header name in [h, h+n) (lines "Name: value\r\n"): a view,
 * or NULL. */
static const char *
header(const char *h, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *end = h + n;

	while (h < end) {
		const char *eol = memchr(h, '\n', (size_t)(end - h));
		size_t ll = eol != NULL ? (size_t)(eol - h) : (size_t)(end - h);
		if (ll > nl && strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
			const char *v = h + nl + 1;
			size_t vl = ll - nl - 1;
			while (vl > 0 && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl > 0 &&
			       (v[vl - 1] == '\r' || v[vl - 1] == ' '))
				vl--;
			*vlen = vl;
			return v;
		}
		if (eol == NULL)
			break;
		h = eol + 1;
	}
	return NULL;
}

static bool
starts(const char *v, size_t n, const char *s)
{
	size_t k = strlen(s);
	return n >= k && strncasecmp(v, s, k) == 0 &&
	       (n == k || v[k] == ';' || v[k] == ' ');
}

/* Is this part a file? */
static bool
is_file(const char *h, size_t n)
{
	size_t ctl, cdl;
	const char *ct = header(h, n, "Content-Type", &ctl);
	const char *cd;

	if (ct != NULL && (starts(ct, ctl, "application/dicom") ||
	                   starts(ct, ctl, "application/octet-stream")))
		return true;
	cd = header(h, n, "Content-Disposition", &cdl);
	if (cd == NULL || !starts(cd, cdl, "form-data"))
		return false;
	for (size_t i = 0; i + 9 <= cdl; i++)
		if (strncasecmp(cd + i, "filename=", 9) == 0)
			return ct == NULL || !starts(ct, ctl, "text/plain");
	return false;
}

int
gw_multipart_split(const char *ctype, const uint8_t *body, size_t len,
                   gw_part *parts, size_t max, size_t *nparts, char *why,
                   size_t why_len)
{
	char b[BOUNDARY_MAX + 1], delim[BOUNDARY_MAX + 5];
	const uint8_t *p, *end = body + len;
	size_t dl, n = 0;

	*nparts = 0;
	if (boundary(ctype, b) != 0)
		return refuse(why, why_len, "multipart: no usable boundary");
	/* The first delimiter may start the body; later ones follow CRLF. */
	dl = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", b);
	if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0)
		p = body + dl - 2;
	else if ((p = memmem(body, len, delim, dl)) != NULL)
		p += dl;
	else
		return refuse(why, why_len, "multipart: no part");
	for (;;) {
		/* After a delimiter: "--" closes, else (padding and) CRLF. */
		if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
			*nparts = n;
			return 0;
		}
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return refuse(why, why_len, "multipart: malformed");
		p += 2;
		const uint8_t *next = memmem(p, (size_t)(end - p), delim, dl);
		if (next == NULL)
			return refuse(why, why_len,
			              "multipart: no closing boundary");
		/* The part's headers end at the first empty line. */
		const uint8_t *hend = NULL;
		if (p + 2 <= next && p[0] == '\r' && p[1] == '\n')
			hend = p;
		else {
			size_t span = (size_t)(next - p);
			if (span > HEADERS_MAX)
				span = HEADERS_MAX;
			const uint8_t *e = memmem(p, span, "\r\n\r\n", 4);
			if (e != NULL)
				hend = e + 2;
		}
		if (hend == NULL)
			return refuse(why, why_len,
			              "multipart: a part without headers' end");
		const uint8_t *data = hend + 2;
		if (is_file((const char *)p, (size_t)(hend - p))) {
			if (n == max)
				return refuse(why, why_len,
				              "multipart: too many files");
			parts[n].data = data;
			parts[n].len = (size_t)(next - data);
			n++;
		}
		p = next + dl;
	}
}
