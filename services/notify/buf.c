/*
 * services/notify/buf.c - a growable byte buffer.
 *
 * Appends never fail loudly: a failed allocation sets oom and later appends
 * do nothing, so a builder makes all its appends and checks once, with
 * nt_buf_finish(), which also NUL-terminates for C string users.
 *
 * The buffers hold mails (tokens, names, addresses): a buffer is wiped
 * before it is freed, and growing copies into a new block and wipes the
 * old one instead of leaving it to realloc().
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "services/notify/notify.h"

void
nt_buf_free(nt_buf *b)
{
	if (b->p != NULL)
		sodium_memzero(b->p, b->cap);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
nt_buf_reset(nt_buf *b)
{
	b->n = 0;
	b->oom = false;
}

static bool
nt_buf_reserve(nt_buf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->oom)
		return false;
	if (extra > SIZE_MAX / 2 - b->n)
		goto oom;
	while (cap < b->n + extra + 1)
		cap *= 2;
	if (cap == b->cap)
		return true;
	if ((p = malloc(cap)) == NULL)
		goto oom;
	if (b->p != NULL) {
		memcpy(p, b->p, b->n);
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = p;
	b->cap = cap;
	return true;
oom:
	b->oom = true;
	return false;
}

/* Room for n more bytes and the NUL, without a call when there is. */
static bool
nt_buf_room(nt_buf *b, size_t n)
{
	return (!b->oom && b->cap - b->n > n) || nt_buf_reserve(b, n);
}

void
nt_buf_add(nt_buf *b, const void *p, size_t n)
{
	if (n == 0 || !nt_buf_room(b, n))
		return;
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

void
nt_buf_adds(nt_buf *b, const char *s)
{
	nt_buf_add(b, s, strlen(s));
}

void
nt_buf_addc(nt_buf *b, char c)
{
	if (!nt_buf_room(b, 1))
		return;
	b->p[b->n++] = c;
}

int
nt_buf_finish(nt_buf *b)
{
	if (!nt_buf_reserve(b, 0))
		return SS_ENOMEM;
	b->p[b->n] = '\0';
	return 0;
}
