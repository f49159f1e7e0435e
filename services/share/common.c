/*
 * services/share/common.c - what every handler of share uses: parsing a
 * body against its spec (answering bad_request itself) and turning a
 * dependency's error into the error to answer.
 */
#include <stddef.h>
#include <stdio.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "services/share/share.h"

int
sh_parse(ss_call *c, const msgpack_object *body, const ss_field_spec *spec,
         size_t n, const msgpack_object **out)
{
	char why[256];

	if (ss_fields_parse(body, spec, n, out, why, sizeof why) != 0) {
		ss_call_reply_err(c, SS_EBADREQ, why);
		return SS_EBADREQ;
	}
	return 0;
}

/* A peer that did not answer, or Redis gone: "unavailable", which tells
 * the caller to retry later.  An error reply from Redis itself (a script
 * bug) is internal. */
int
sh_err(int err)
{
	switch (err) {
	case 0:
		return 0;
	case SS_ETIMEDOUT:
	case SS_EUNAVAIL:
		return SS_EUNAVAIL;
	case SS_ENOMEM:
		return SS_ENOMEM;
	default:
		return err < 0 ? err : SS_EINTERNAL;
	}
}

void
sh_fan_err(sh_fan *f, int err, const char *msg)
{
	if (f->err != 0)
		return;
	f->err = err;
	snprintf(f->errmsg, sizeof f->errmsg, "%s", msg ? msg : "");
}

void
sh_fan_sent(sh_fan *f, int rv)
{
	if (rv == 0)
		f->pending++;
	else
		sh_fan_err(f, sh_err(rv), NULL);
}

bool
sh_fan_answered(sh_fan *f)
{
	return --f->pending == 0;
}

bool
sh_fan_redis_ok(sh_fan *f, int err, const redisReply *r)
{
	if (err != 0) {
		sh_fan_err(f, sh_err(err), NULL);
		return false;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		ss_error("redis.error", f->reqid, "error", r->str, NULL);
		sh_fan_err(f, SS_EINTERNAL, NULL);
		return false;
	}
	return true;
}
