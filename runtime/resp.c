/*
 * runtime/resp.c - see resp.h.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/resp.h"

/* A buffer that grew for one long command is not kept for good. */
#define RESP_KEEP (64 * 1024)

static size_t
digits(size_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* "<c><v>\r\n" at p; the end. */
static char *
put_head(char *p, char c, size_t v)
{
	size_t n = digits(v);

	*p++ = c;
	for (size_t i = n; i > 0; i--) {
		p[i - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	p += n;
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

int
ss_resp_format(ss_resp_buf *b, int argc, const char *const *argv,
               const size_t *lens)
{
	size_t need, len, i;
	char *p;

	b->len = 0;
	if (argc < 0)
		return SS_EINTERNAL;
	need = 1 + digits((size_t)argc) + 2;
	for (i = 0; i < (size_t)argc; i++) {
		len = lens != NULL ? lens[i] : strlen(argv[i]);
		need += 1 + digits(len) + 2 + len + 2;
	}
	if (need > b->cap || (b->cap > RESP_KEEP && need <= RESP_KEEP)) {
		char *d = malloc(need);
		if (d == NULL)
			return SS_ENOMEM;
		free(b->data);
		b->data = d;
		b->cap = need;
	}
	p = put_head(b->data, '*', (size_t)argc);
	for (i = 0; i < (size_t)argc; i++) {
		len = lens != NULL ? lens[i] : strlen(argv[i]);
		p = put_head(p, '$', len);
		if (len > 0)
			memcpy(p, argv[i], len);
		p += len;
		*p++ = '\r';
		*p++ = '\n';
	}
	b->len = (size_t)(p - b->data);
	return 0;
}

void
ss_resp_free(ss_resp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
