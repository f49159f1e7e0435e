/*
 * runtime/audit.c - entries of the Redis stream "audit".
 *
 * Contract (see audit.h): one XADD audit * with the eight fields, in a
 * fixed order, the time taken from the wall clock when the entry is made.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "runtime/argv.h"
#include "runtime/audit.h"

static void
time_ms(char out[32])
{
	struct timespec ts;
	struct tm tm;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", sec, (int)(ts.tv_nsec / 1000000));
}

static const char *
or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

int
ss_audit_append(ss_redis *r, const char *service, const ss_audit *a,
                ss_redis_fn fn, void *arg)
{
	char t[32];
	ss_argv v;
	int rv;

	time_ms(t);
	ss_argv_init(&v);
	ss_argv_pushs(&v, "XADD");
	ss_argv_pushs(&v, SS_AUDIT_STREAM);
	ss_argv_pushs(&v, "*");
	ss_argv_pushs(&v, "time");
	ss_argv_pushs(&v, t);
	ss_argv_pushs(&v, "service");
	ss_argv_pushs(&v, or_dash(service));
	ss_argv_pushs(&v, "actor");
	ss_argv_pushs(&v, or_dash(a->actor));
	ss_argv_pushs(&v, "action");
	ss_argv_pushs(&v, or_dash(a->action));
	ss_argv_pushs(&v, "object");
	ss_argv_pushs(&v, or_dash(a->object));
	ss_argv_pushs(&v, "worklist");
	ss_argv_pushs(&v, or_dash(a->worklist));
	ss_argv_pushs(&v, "detail");
	ss_argv_pushs(&v, a->detail != NULL && a->detail[0] != '\0' ? a->detail
	                                                            : "{}");
	ss_argv_pushs(&v, "addr");
	ss_argv_pushs(&v, or_dash(a->addr));
	if ((rv = ss_argv_status(&v)) == 0)
		rv = ss_redis_cmdargv(r, fn, arg, v.n, v.v, v.lens);
	ss_argv_free(&v);
	return rv;
}
