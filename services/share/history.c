/*
 * services/share/history.c - share records: writing them, and
 * share.history {user, worklist, study_uid}.
 *
 * Every share appends one record per target to the study's list
 * share:{study:<uid>}:shares (the last SH_MAX_HISTORY are kept).  The
 * history "as seen from" a worklist W shows the records shared from W and
 * those that landed in W: how the study came here and where it went from
 * here, but not what other organisations did with it elsewhere.
 *
 *   HS_CHECK  authz.check studies.view on W
 *   HS_HELD   HEXISTS: W holds the study (else not_found)
 *   HS_READ   LRANGE of the records; answered newest first
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/mpcheck.h"
#include "runtime/log.h"
#include "services/share/share.h"

void
sh_share_id(char *out)
{
	unsigned char raw[SH_SHARE_ID_LEN / 2];

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(out, SH_SHARE_ID_LEN + 1, raw, sizeof raw);
}

void
sh_record_pack(ss_pack *p, const sh_record *r)
{
	char at[SH_TIME_LEN + 1];

	sh_time_fmt(r->at_ms, at);
	msgpack_pack_map(&p->pk, 8);
	ss_pack_kv_cstr(p, "id", r->id);
	ss_pack_kv_cstr(p, "at", at);
	ss_pack_kv_cstr(p, "by", r->by);
	ss_pack_kv_cstr(p, "from", r->from);
	ss_pack_key(p, "target");
	if (r->target != NULL) {
		msgpack_pack_object(&p->pk, *r->target);
	} else {
		msgpack_pack_map(&p->pk, 2);
		ss_pack_kv_cstr(p, "kind", "email");
		ss_pack_kv_cstr(p, "email", r->email);
	}
	ss_pack_kv_cstr(p, "worklist", r->worklist);
	ss_pack_kv_cstr(p, "status", r->status);
	ss_pack_kv_bool(p, "changed", r->changed);
}

int
sh_history_append(sh_server *s, const char *uid, int n, const char *const *recs,
                  const size_t *lens, ss_redis_fn fn, void *arg)
{
	const char **argv;
	size_t *alens;
	char k[SH_KEY_MAX], keep[24];
	int rv;

	if (n <= 0 || sh_key_study(k, uid, "shares") != 0)
		return SS_EINTERNAL;
	argv = calloc((size_t)n + 2, sizeof *argv);
	alens = calloc((size_t)n + 2, sizeof *alens);
	if (argv == NULL || alens == NULL) {
		rv = SS_ENOMEM;
		goto done;
	}
	argv[0] = "RPUSH";
	alens[0] = 5;
	argv[1] = k;
	alens[1] = strlen(k);
	for (int i = 0; i < n; i++) {
		argv[i + 2] = recs[i];
		alens[i + 2] = lens[i];
	}
	if ((rv = ss_redis_cmdargv(s->redis, fn, arg, n + 2, argv, alens)) ==
	    0) {
		/* Same connection, so it runs right after the RPUSH. */
		snprintf(keep, sizeof keep, "-%d", SH_MAX_HISTORY);
		(void)ss_redis_cmd(s->redis, NULL, NULL, "LTRIM %s %s -1", k,
		                   keep);
	}
done:
	free(argv);
	free(alens);
	return rv;
}

/* --- share.history -------------------------------------------------- */

typedef enum hs_step {
	HS_CHECK,
	HS_HELD,
	HS_READ,
} hs_step;

typedef struct hs_op {
	sh_server *s;
	ss_call *c;
	hs_step step;
	char user[SH_MAX_USER + 1];
	char wl[SH_WL_MAX + 1];
	char uid[SH_UID_MAX + 1];
} hs_op;

static void
fail(hs_op *op, int err, const char *msg)
{
	ss_call_reply_err(op->c, err, msg);
	free(op);
}

/* A stored record decoded, when it is one and W may see it. */
static bool
visible(const redisReply *e, const char *wl, msgpack_unpacked *up)
{
	const msgpack_object *from, *to;
	const char *why;

	if (e->type != REDIS_REPLY_STRING ||
	    ss_mpcheck((const uint8_t *)e->str, e->len, 4, 4096, &why) != 0)
		return false;
	msgpack_unpacked_init(up);
	if (msgpack_unpack_next(up, e->str, e->len, NULL) ==
	        MSGPACK_UNPACK_SUCCESS &&
	    up->data.type == MSGPACK_OBJECT_MAP) {
		from = ss_map_get(&up->data, "from");
		to = ss_map_get(&up->data, "worklist");
		if ((from != NULL && ss_obj_streq(from, wl)) ||
		    (to != NULL && ss_obj_streq(to, wl)))
			return true;
	}
	msgpack_unpacked_destroy(up);
	return false;
}

static int
reply_history(hs_op *op, const redisReply *r)
{
	msgpack_unpacked up;
	uint32_t n = 0;
	ss_pack *p;

	if (r->type != REDIS_REPLY_ARRAY)
		return SS_EINTERNAL;
	for (size_t i = 0; i < r->elements; i++) {
		if (visible(r->element[i], op->wl, &up)) {
			n++;
			msgpack_unpacked_destroy(&up);
		}
	}
	p = ss_call_reply_ok(op->c);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, "shares");
	msgpack_pack_array(&p->pk, n);
	for (size_t i = r->elements; i-- > 0;) {
		if (visible(r->element[i], op->wl, &up)) {
			msgpack_pack_object(&p->pk, up.data);
			msgpack_unpacked_destroy(&up);
		}
	}
	ss_call_reply_end(op->c);
	return 0;
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	hs_op *op = arg;
	char k[SH_KEY_MAX];
	int rv;

	if (err != 0 || r->type == REDIS_REPLY_ERROR) {
		fail(op, err != 0 ? sh_err(err) : SS_EINTERNAL, NULL);
		return;
	}
	switch (op->step) {
	case HS_HELD:
		if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
			fail(op, SS_ENOTFOUND,
			     "the worklist does not hold that study");
			return;
		}
		op->step = HS_READ;
		if ((rv = sh_key_study(k, op->uid, "shares")) == 0)
			rv = ss_redis_cmd(op->s->redis, on_redis, op,
			                  "LRANGE %s 0 -1", k);
		if (rv != 0)
			fail(op, sh_err(rv), NULL);
		return;
	case HS_READ:
		if ((rv = reply_history(op, r)) != 0) {
			fail(op, rv, NULL);
			return;
		}
		free(op);
		return;
	default:
		fail(op, SS_EINTERNAL, NULL);
	}
}

static void
on_check(int err, const ss_msg *reply, void *arg)
{
	hs_op *op = arg;
	const msgpack_object *a;
	char k[SH_KEY_MAX];
	int rv = sh_authz_err(err, reply);

	if (rv != 0) {
		fail(op, rv == SS_EBADREQ ? SS_EINTERNAL : rv, NULL);
		return;
	}
	a = ss_map_get(reply->body, "allowed");
	if (a == NULL || a->type != MSGPACK_OBJECT_BOOLEAN || !a->via.boolean) {
		fail(op, SS_EFORBIDDEN,
		     "studies.view is needed on that worklist");
		return;
	}
	op->step = HS_HELD;
	if ((rv = sh_key_wl(k, op->wl, "studies")) == 0)
		rv = ss_redis_cmd(op->s->redis, on_redis, op, "HEXISTS %s %s",
		                  k, op->uid);
	if (rv != 0)
		fail(op, sh_err(rv), NULL);
}

void
sh_handle_history(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, SH_MAX_USER},
	    {"worklist", SS_F_STR, true, 1, SH_WL_MAX},
	    {"study_uid", SS_F_STR, true, 1, SH_UID_MAX},
	};
	const msgpack_object *f[3];
	hs_op *op;
	ss_pack *p;
	int rv;

	if (sh_parse(c, body, spec, 3, f) != 0)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = arg;
	op->c = c;
	(void)ss_obj_strcpy(f[0], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[1], op->wl, sizeof op->wl);
	(void)ss_obj_strcpy(f[2], op->uid, sizeof op->uid);
	if (!sh_valid_worklist(op->wl, strlen(op->wl))) {
		fail(op, SS_EBADREQ, "field 'worklist': expected <kind>:<id>");
		return;
	}
	if (!sh_valid_uid(op->uid, strlen(op->uid))) {
		fail(op, SS_EBADREQ, "field 'study_uid': expected a DICOM UID");
		return;
	}
	op->step = HS_CHECK;
	p = sh_authz_begin(op->s, "authz.check", ss_call_id(c));
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", op->user);
	ss_pack_kv_cstr(p, "permission", "studies.view");
	ss_pack_kv_cstr(p, "worklist", op->wl);
	if ((rv = sh_authz_send(op->s, on_check, op)) != 0)
		fail(op, sh_err(rv), NULL);
}
