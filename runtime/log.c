/*
 * runtime/log.c - JSON-lines logs on stderr.
 *
 * Contract: every ss_log() call that passes the level filter produces one
 * line of JSON, written to fd 2 with a single write(2) (looped only on a
 * short write), so lines from several threads never interleave.  Every key
 * and value is escaped: quotes and backslashes, control characters as
 * \u00XX, and bytes that are not valid UTF-8 as U+FFFD, so any consumer can
 * parse every line whatever the caller passed.  The time is UTC with
 * milliseconds.  Safe to call from any thread; ss_log_init() runs once at
 * start-up before other threads exist.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "proto/utf8.h"
#include "runtime/log.h"

/* A line grows on the heap only past this; most lines fit on the stack. */
#define LOG_STACK   1024
#define LOG_SVC_MAX 64

static char log_service[LOG_SVC_MAX] = "studyshare";
static atomic_int log_min = SS_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

typedef struct lbuf {
	char *p;
	size_t len;
	size_t cap;
	bool heap;
	bool failed; /* out of memory: the line is dropped */
	char stack[LOG_STACK];
} lbuf;

void
ss_log_init(const char *service, int min_level)
{
	if (service != NULL)
		snprintf(log_service, sizeof(log_service), "%s", service);
	if (min_level < SS_LOG_DEBUG)
		min_level = SS_LOG_DEBUG;
	if (min_level > SS_LOG_ERROR)
		min_level = SS_LOG_ERROR;
	atomic_store(&log_min, min_level);
}

int
ss_log_level_parse(const char *s)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

static bool
lbuf_reserve(lbuf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (b->failed)
		return false;
	need = b->len + more;
	if (need <= b->cap)
		return true;
	cap = b->cap * 2;
	while (cap < need)
		cap *= 2;
	if (b->heap) {
		p = realloc(b->p, cap);
	} else {
		p = malloc(cap);
		if (p != NULL)
			memcpy(p, b->p, b->len);
	}
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	b->heap = true;
	return true;
}

static void
lbuf_put(lbuf *b, const char *s, size_t n)
{
	if (!lbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
lbuf_puts(lbuf *b, const char *s)
{
	lbuf_put(b, s, strlen(s));
}

/* Appends s as a JSON string, quotes included; NULL becomes null. */
static void
lbuf_json_str(lbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t left, n;
	char esc[6];

	if (s == NULL) {
		lbuf_puts(b, "null");
		return;
	}
	left = strlen(s);
	lbuf_put(b, "\"", 1);
	while (left > 0) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			lbuf_put(b, esc, 2);
			n = 1;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 0xf];
			lbuf_put(b, esc, 6);
			n = 1;
		} else if ((n = ss_utf8_seq(p, left)) == 0) {
			lbuf_puts(b, "\\ufffd");
			n = 1;
		} else {
			lbuf_put(b, (const char *)p, n);
		}
		p += n;
		left -= n;
	}
	lbuf_put(b, "\"", 1);
}

static void
lbuf_field(lbuf *b, const char *key, const char *val)
{
	lbuf_put(b, ",", 1);
	lbuf_json_str(b, key);
	lbuf_put(b, ":", 1);
	lbuf_json_str(b, val);
}

static void
lbuf_time(lbuf *b)
{
	struct timespec ts;
	struct tm tm;
	char t[40];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(t + n, sizeof(t) - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
	lbuf_json_str(b, t);
}

static void
write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report it */
		}
		p += w;
		n -= (size_t)w;
	}
}

void
ss_log(int level, const char *event, const char *reqid, ...)
{
	lbuf b;
	va_list ap;
	const char *key, *val;

	if (level < SS_LOG_DEBUG || level > SS_LOG_ERROR)
		level = SS_LOG_ERROR;
	if (level < atomic_load(&log_min))
		return;

	b.p = b.stack;
	b.len = 0;
	b.cap = sizeof(b.stack);
	b.heap = false;
	b.failed = false;

	lbuf_puts(&b, "{\"time\":");
	lbuf_time(&b);
	lbuf_field(&b, "level", level_names[level]);
	lbuf_field(&b, "service", log_service);
	lbuf_field(&b, "event", event);
	if (reqid != NULL)
		lbuf_field(&b, "request_id", reqid);
	va_start(ap, reqid);
	while ((key = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		lbuf_field(&b, key, val);
	}
	va_end(ap);
	lbuf_put(&b, "}\n", 2);

	if (!b.failed)
		write_all(b.p, b.len);
	if (b.heap)
		free(b.p);
}
