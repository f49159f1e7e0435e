/*
 * tests/fuzz/fuzz_smtp_reply.c - nt_smtp_reply_line() on an SMTP server's
 * bytes, as notify reads a session: line after line until no whole line
 * is left or one is refused.
 *
 * A line read must lie inside what is left, end with LF and carry a code
 * of 200..599 made of its first three bytes; "no whole line" must mean
 * there is no LF; a refusal consumes nothing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "services/notify/notify.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy the exact size of the input, so reading past it is caught. */
	char *buf = malloc(size ? size : 1);
	size_t off = 0, used;
	long code;
	bool last;
	int rv;

	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	while ((rv = nt_smtp_reply_line(buf + off, size - off, &used, &code,
	                                &last)) == 1) {
		if (used < 4 || used > size - off ||
		    buf[off + used - 1] != '\n')
			abort();
		if (code < 200 || code > 599 ||
		    code != (buf[off] - '0') * 100 + (buf[off + 1] - '0') * 10 +
		                (buf[off + 2] - '0'))
			abort();
		if (last != (buf[off + 3] != '-'))
			abort();
		off += used;
	}
	if (rv == 0 && memchr(buf + off, '\n', size - off) != NULL)
		abort();
	if (rv != 0 && (rv != SS_EBADREQ || used != 0))
		abort();
	free(buf);
	return 0;
}
