/*
 * runtime/argv.c - see argv.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/argv.h"

void
ss_argv_init(ss_argv *a)
{
	memset(a, 0, sizeof *a);
}

void
ss_argv_free(ss_argv *a)
{
	for (int i = 0; i < a->n; i++)
		free((char *)a->v[i]);
	free(a->v);
	free(a->lens);
	memset(a, 0, sizeof *a);
}

static int
grow(ss_argv *a)
{
	int cap = a->cap ? a->cap * 2 : 16;
	const char **v = realloc(a->v, (size_t)cap * sizeof *v);
	size_t *lens;

	if (v == NULL)
		return SS_ENOMEM;
	a->v = v;
	if ((lens = realloc(a->lens, (size_t)cap * sizeof *lens)) == NULL)
		return SS_ENOMEM;
	a->lens = lens;
	a->cap = cap;
	return 0;
}

void
ss_argv_push(ss_argv *a, const char *s, size_t len)
{
	char *copy;

	if (len == (size_t)-1)
		len = strlen(s);
	if (a->oom || (a->n == a->cap && grow(a) != 0) ||
	    (copy = malloc(len + 1)) == NULL) {
		a->oom = 1;
		return;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	a->v[a->n] = copy;
	a->lens[a->n] = len;
	a->n++;
}

void
ss_argv_pushs(ss_argv *a, const char *s)
{
	ss_argv_push(a, s, (size_t)-1);
}

void
ss_argv_pushi(ss_argv *a, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%" PRId64, v);
	ss_argv_pushs(a, buf);
}

int
ss_argv_status(const ss_argv *a)
{
	return a->oom ? SS_ENOMEM : 0;
}
