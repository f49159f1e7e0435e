/*
 * services/guestlink/unlock.c - guestlink.unlock: a locked link works
 * again.
 *
 *   {user, id, addr?} -> the link object
 *
 * Needs links.guest.create on the link's worklist (owner.c).  One script
 * resets the wrong-password count of a locked link that has not otherwise
 * ended (not deleted, expired or used up): those are a conflict naming
 * the status.  A link that is not locked is answered as it is, unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/errors.h"
#include "runtime/argv.h"
#include "runtime/log.h"
#include "services/guestlink/guestlink.h"

typedef struct ul_op {
	gl_owner o; /* must stay first */
} ul_op;

static int
answer(ul_op *op, const redisReply *r)
{
	gl_owner *o = &op->o;
	int64_t now = gl_now_ms();
	const char *status;
	char msg[64];
	gl_link l;
	int rv = 0;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		return SS_EINTERNAL;
	if (r->element[0]->integer == 0) {
		ss_call_reply_err(o->c, SS_ENOTFOUND, GL_GONE_MSG);
		return 0;
	}
	if (r->elements != 2 ||
	    (rv = gl_link_parse(&l, o->id, r->element[1])) != 0)
		return rv == SS_ENOTFOUND ? SS_ENOTFOUND : SS_EINTERNAL;
	status = gl_link_status(&l, now);
	if (r->element[0]->integer != 1 && strcmp(status, "active") != 0 &&
	    strcmp(status, "locked") != 0) {
		snprintf(msg, sizeof msg, "the link has ended (%s)", status);
		ss_call_reply_err(o->c, SS_ECONFLICT, msg);
		return 0;
	}
	if (r->element[0]->integer == 1) {
		ss_metric_add(o->s->m_unlocked, 1);
		ss_info("link.unlocked", ss_call_id(o->c), "link", o->id, NULL);
		gl_audit(o->s, ss_call_id(o->c), o->user, "guestlink.unlock",
		         o->id, o->wl,
		         json_pack("{s:s}", "study_uid", o->study), o->addr);
	}
	gl_link_pack(o->s, ss_call_reply_ok(o->c), &l, now, -1, 0);
	ss_call_reply_end(o->c);
	return 0;
}

static void
on_unlock(int err, redisReply *r, void *arg)
{
	ul_op *op = arg;
	int rv = err != 0 ? gl_err(err) : answer(op, r);

	if (rv == SS_ENOTFOUND)
		ss_call_reply_err(op->o.c, rv, GL_GONE_MSG);
	else if (rv != 0)
		ss_call_reply_err(op->o.c, rv, NULL);
	free(op);
}

static void
owned(gl_owner *o, int err)
{
	char key[GL_KEY_MAX], res[GL_KEY_MAX], now[24];
	int rv = err;
	ss_argv a;

	if (rv == 0 && (rv = gl_key_link(key, o->id, NULL)) == 0 &&
	    (rv = gl_key_link(res, o->id, ":res")) == 0) {
		snprintf(now, sizeof now, "%lld", (long long)gl_now_ms());
		ss_argv_init(&a);
		ss_argv_pushs(&a, key);
		ss_argv_pushs(&a, res);
		ss_argv_pushs(&a, now);
		gl_link_fields_push(&a);
		if ((rv = ss_argv_status(&a)) == 0)
			rv = ss_redis_eval(o->s->redis, &gl_script_unlock,
			                   on_unlock, o, 2, a.n, a.v, a.lens);
		ss_argv_free(&a);
	}
	if (rv == SS_EFORBIDDEN)
		ss_call_reply_err(o->c, rv,
		                  "links.guest.create is needed on the link's "
		                  "worklist");
	else if (rv == SS_ENOTFOUND)
		ss_call_reply_err(o->c, rv, GL_GONE_MSG);
	else if (rv != 0)
		ss_call_reply_err(o->c, gl_err(rv), NULL);
	if (rv != 0)
		free(o);
}

void
gl_handle_unlock(ss_call *c, const msgpack_object *body, void *arg)
{
	ul_op *op = calloc(1, sizeof *op);

	if (op == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	if (gl_owner_start(&op->o, arg, c, body, owned) != 0)
		free(op);
}
