/*
 * runtime/resp.h - a command's argv as RESP, the bytes Redis reads.
 *
 *   *<argc>\r\n  then, for each argument,  $<len>\r\n<bytes>\r\n
 *
 * hiredis's own formatter grows a string argument by argument (a
 * printf-style append and a possible realloc each); this one measures
 * first and writes once, into a buffer the caller keeps and reuses.  The
 * bytes are the same as redisFormatCommandArgv()'s.
 */
#ifndef SS_RUNTIME_RESP_H
#define SS_RUNTIME_RESP_H

#include <stddef.h>

typedef struct ss_resp_buf {
	char *data;
	size_t len; /* bytes of the last command */
	size_t cap;
} ss_resp_buf;

/*
 * Writes argv (lens NULL: each is NUL-terminated) into b, growing it.
 * 0, or SS_ENOMEM (b keeps its old buffer, len 0).
 */
int ss_resp_format(ss_resp_buf *b, int argc, const char *const *argv,
                   const size_t *lens);

/* Frees b's buffer; b may be used again. */
void ss_resp_free(ss_resp_buf *b);

#endif
