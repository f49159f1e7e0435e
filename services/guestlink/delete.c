/*
 * services/guestlink/delete.c - guestlink.delete: a link stops working.
 *
 *   {user, id, addr?} -> {"id", "status": "deleted"}
 *
 * Needs links.guest.create on the link's worklist (owner.c).  One script
 * marks the link deleted and drops its secrets (sealed token, view,
 * password hash) at once: the next redemption, and every session made by
 * an earlier one, is not_found from then on.  What remains stays for the
 * grace period, so the list shows the link as deleted, then expires.
 * Deleting a deleted link answers the same and changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "services/guestlink/guestlink.h"

typedef struct dl_op {
	gl_owner o; /* must stay first */
} dl_op;

static void
on_delete(int err, redisReply *r, void *arg)
{
	dl_op *op = arg;
	gl_owner *o = &op->o;
	ss_pack *p;

	if (err != 0 || r->type != REDIS_REPLY_INTEGER) {
		ss_call_reply_err(o->c, err != 0 ? gl_err(err) : SS_EINTERNAL,
		                  NULL);
		free(op);
		return;
	}
	if (r->integer == 0) {
		ss_call_reply_err(o->c, SS_ENOTFOUND, GL_GONE_MSG);
		free(op);
		return;
	}
	if (r->integer == 1) {
		ss_metric_add(o->s->m_deleted, 1);
		ss_info("link.deleted", ss_call_id(o->c), "link", o->id, NULL);
		gl_audit(o->s, ss_call_id(o->c), o->user, "guestlink.delete",
		         o->id, o->wl,
		         json_pack("{s:s}", "study_uid", o->study), o->addr);
	}
	p = ss_call_reply_ok(o->c);
	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_cstr(p, "id", o->id);
	ss_pack_kv_cstr(p, "status", "deleted");
	ss_call_reply_end(o->c);
	free(op);
}

static void
owned(gl_owner *o, int err)
{
	char key[GL_KEY_MAX], res[GL_KEY_MAX], now[24], grace[24];
	const char *argv[5];
	int rv = err;

	if (rv == 0 && ((rv = gl_key_link(key, o->id, NULL)) == 0 &&
	                (rv = gl_key_link(res, o->id, ":res")) == 0)) {
		snprintf(now, sizeof now, "%lld", (long long)gl_now_ms());
		snprintf(grace, sizeof grace, "%lld",
		         (long long)o->s->cfg->grace_ms);
		argv[0] = key;
		argv[1] = res;
		argv[2] = now;
		argv[3] = grace;
		argv[4] = o->user;
		rv = ss_redis_eval(o->s->redis, &gl_script_delete, on_delete, o,
		                   2, 5, argv, NULL);
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
gl_handle_delete(ss_call *c, const msgpack_object *body, void *arg)
{
	dl_op *op = calloc(1, sizeof *op);

	if (op == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	if (gl_owner_start(&op->o, arg, c, body, owned) != 0)
		free(op);
}
