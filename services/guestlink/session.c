/*
 * services/guestlink/session.c - guestlink.session: a viewer comes back
 * with the session a use gave them (the gateway's cookie).
 *
 *   {session} -> {"study", "priors", "session", "expires_at"}
 *                not_found "no such guest link" (the same answer as for
 *                every unusable link)
 *
 * Not a use: one script checks that the session lives and that its link
 * was neither deleted nor expired, and returns the frozen view.  A
 * session grants exactly the link's study and frozen priors, nothing
 * else, and is not extended by being used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "services/guestlink/guestlink.h"

typedef struct sn_op {
	gl_server *s;
	ss_call *c;
	char id[GL_ID_LEN + 1];
	char sess[GL_SESSION_LEN + 1];
} sn_op;

static void
on_redis(int err, redisReply *r, void *arg)
{
	sn_op *op = arg;
	int rv = 0;

	if (err != 0) {
		rv = gl_err(err);
	} else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	           r->element[0]->type != REDIS_REPLY_INTEGER) {
		rv = SS_EINTERNAL;
	} else if (r->element[0]->integer == 0) {
		gl_reply_gone(op->s, op->c);
	} else if (r->elements != 3 ||
	           r->element[2]->type != REDIS_REPLY_INTEGER) {
		rv = SS_EINTERNAL;
	} else {
		rv = gl_reply_view(op->s, op->c, op->id, r->element[1],
		                   op->sess, r->element[2]->integer);
		if (rv == 0)
			ss_metric_add(op->s->m_session, 1);
	}
	if (rv != 0)
		ss_call_reply_err(op->c, rv, NULL);
	sodium_memzero(op->sess, sizeof op->sess);
	free(op);
}

void
gl_handle_session(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"session", SS_F_STR, true, 0, 0},
	};
	const msgpack_object *f[1];
	char k_link[GL_KEY_MAX], k_sess[GL_KEY_MAX], now[24];
	const char *argv[3];
	gl_server *s = arg;
	sn_op *op;
	ss_str v;
	int rv;

	if (gl_parse(c, body, spec, 1, f) != 0)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = s;
	op->c = c;
	v = ss_obj_str(f[0]);
	if (gl_session_key(s, v.p, v.n, op->id, k_sess) != 0) {
		gl_reply_gone(s, c);
		free(op);
		return;
	}
	memcpy(op->sess, v.p, v.n);
	snprintf(now, sizeof now, "%lld", (long long)gl_now_ms());
	argv[0] = k_link;
	argv[1] = k_sess;
	argv[2] = now;
	if ((rv = gl_key_link(k_link, op->id, NULL)) == 0)
		rv = ss_redis_eval(s->redis, &gl_script_session, on_redis, op,
		                   2, 3, argv, NULL);
	if (rv != 0) {
		ss_call_reply_err(c, gl_err(rv), NULL);
		free(op);
	}
}
