/*
 * runtime/audit.h - entries of the Redis stream "audit".
 *
 * The audit stream is the durable record of who did what, when, from
 * where (DESIGN.md "Security"); PUB events are lossy, this is not.  Every
 * daemon writes the same shape (services/share/README.md "Audit
 * entries"), one XADD per action, all values strings:
 *
 *   time      RFC 3339 UTC with milliseconds, "2026-11-29T09:15:00.123Z"
 *   service   the daemon's name ("share", "guestlink", ...)
 *   actor     the user who acted ("-" when none, e.g. a guest)
 *   action    "share.create", "guestlink.use", ...
 *   object    what was acted on (a study uid, a link id)
 *   worklist  the worklist acted from ("-" when none)
 *   detail    a JSON object with the rest
 *   addr      the client's address as the gateway saw it ("-" unknown)
 *
 * Empty or NULL values are written as "-" (detail as "{}").  Never put a
 * token, a password, a date of birth or a patient name in an entry: the
 * stream is read by operators.  Nobody trims the stream: operators
 * archive it.
 */
#ifndef SS_RUNTIME_AUDIT_H
#define SS_RUNTIME_AUDIT_H

#include "runtime/redis.h"

#define SS_AUDIT_STREAM "audit"

typedef struct ss_audit {
	const char *actor;
	const char *action;
	const char *object;
	const char *worklist;
	const char *detail; /* JSON object text */
	const char *addr;
} ss_audit;

/* XADDs one entry; fn (may be NULL) gets the XADD reply.  0, or the
 * error of ss_redis_cmdargv (then fn is not called). */
int ss_audit_append(ss_redis *r, const char *service, const ss_audit *a,
                    ss_redis_fn fn, void *arg);

#endif
