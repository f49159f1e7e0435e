/*
 * services/share/list.c - reading studies: a worklist's list, one study
 * with its priors.
 *
 *   share.studies.list {user, worklist, limit?, cursor?}  studies.view
 *   share.study.get    {user, worklist, study_uid}        studies.view
 *   share.study.lookup {worklist, study_uid}              no user: for
 *       services (guestlink) that checked their own permission
 *
 *   LS_CHECK   authz.check studies.view (user-checked forms only)
 *   LS_READ    a page: one script on the worklist's slot; one study: HGET
 *              of its blob from the worklist's hash
 *   LS_PRIORS  one study: the priors script on its patient's set, which
 *              the opened study names (skipped without a patient id or a
 *              date)
 *
 * Listing is newest study_date first, then newest arrival in the
 * worklist.  A page is one ZRANGE BYLEX ... LIMIT from the cursor (the
 * last member of the previous page) plus one HMGET: its cost depends on
 * the page size, not on how many studies the worklist holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "services/share/share.h"

typedef enum ls_kind {
	LS_LIST,
	LS_GET,
	LS_LOOKUP,
} ls_kind;

typedef enum ls_step {
	LS_CHECK,
	LS_READ,
	LS_PRIORS,
} ls_step;

typedef struct ls_op {
	sh_server *s;
	ss_call *c;
	ls_kind kind;
	ls_step step;
	char user[SH_MAX_USER + 1];
	char wl[SH_WL_MAX + 1];
	char uid[SH_UID_MAX + 1];
	char cursor[SH_INDEX_MAX + 1];
	int limit;
	char *blob; /* one study: its sealed blob, once read */
	size_t bloblen;
} ls_op;

static void
op_free(ls_op *op)
{
	free(op->blob);
	free(op);
}

static void
fail(ls_op *op, int err, const char *msg)
{
	ss_call_reply_err(op->c, err, msg);
	op_free(op);
}

/* A listing member's blob, when it opens under the member's uid (a
 * checked member: sh_index_added() accepted it). */
static bool
listed(const ls_op *op, const redisReply *m, const redisReply *b)
{
	return b->type == REDIS_REPLY_STRING &&
	       sh_blob_ok(op->s, m->str + SH_INDEX_UID_AT,
	                  m->len - SH_INDEX_UID_AT, b->str, b->len);
}

/* The list script's answer: {members, blobs}, at most limit + 1 of each;
 * the extra one only tells that there is a next page. */
static int
reply_list(ls_op *op, const redisReply *r)
{
	const redisReply *m, *b;
	size_t n, shown = 0;
	ss_pack *p;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY ||
	    r->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[1]->elements != r->element[0]->elements)
		return SS_EINTERNAL;
	m = r->element[0];
	b = r->element[1];
	n = m->elements < (size_t)op->limit ? m->elements : (size_t)op->limit;
	for (size_t i = 0; i < n; i++) {
		if (m->element[i]->type != REDIS_REPLY_STRING ||
		    sh_index_added(m->element[i]->str, m->element[i]->len) < 0)
			return SS_EINTERNAL;
		if (listed(op, m->element[i], b->element[i]))
			shown++;
		else
			ss_error("study.index_orphan", ss_call_id(op->c),
			         "worklist", op->wl, NULL);
	}
	p = ss_call_reply_ok(op->c);
	msgpack_pack_map(&p->pk, 2);
	ss_pack_key(p, "studies");
	msgpack_pack_array(&p->pk, (uint32_t)shown);
	for (size_t i = 0; i < n; i++) {
		char at[SH_TIME_LEN + 1];
		const redisReply *e = m->element[i];

		if (!listed(op, e, b->element[i]))
			continue;
		sh_time_fmt(sh_index_added(e->str, e->len), at);
		(void)sh_pack_blob(p, op->s, e->str + SH_INDEX_UID_AT,
		                   e->len - SH_INDEX_UID_AT, b->element[i]->str,
		                   b->element[i]->len, at);
	}
	ss_pack_key(p, "next_cursor");
	if (m->elements > (size_t)op->limit && n > 0)
		ss_pack_strn(p, m->element[n - 1]->str, m->element[n - 1]->len);
	else
		msgpack_pack_nil(&p->pk);
	ss_call_reply_end(op->c);
	return 0;
}

static void on_read(int err, redisReply *r, void *arg);

/* One study and its priors (r: the priors script's answer, or NULL). */
static void
reply_study(ls_op *op, const redisReply *r)
{
	ss_pack *p = ss_call_reply_ok(op->c);

	int rv = sh_pack_lookup(p, op->s, op->uid, op->blob, op->bloblen, r);

	if (rv != 0) {
		if (rv != SS_ENOMEM)
			ss_error("study.corrupt", ss_call_id(op->c),
			         "study_uid", op->uid, NULL);
		fail(op, rv == SS_ENOMEM ? SS_ENOMEM : SS_EINTERNAL, NULL);
		return;
	}
	ss_call_reply_end(op->c);
	op_free(op);
}

/* The study's blob: open it, for the patient whose priors set to read. */
static void
read_priors(ls_op *op, const redisReply *r)
{
	sh_study st;
	int rv;

	if (r->type == REDIS_REPLY_NIL) {
		fail(op, SS_ENOTFOUND, "the worklist does not hold that study");
		return;
	}
	if (r->type != REDIS_REPLY_STRING) {
		fail(op, SS_EINTERNAL, NULL);
		return;
	}
	if ((op->blob = malloc(r->len > 0 ? r->len : 1)) == NULL) {
		fail(op, SS_ENOMEM, NULL);
		return;
	}
	memcpy(op->blob, r->str, r->len);
	op->bloblen = r->len;
	if (sh_study_open(&op->s->seal, op->uid, op->blob, op->bloblen, &st) !=
	    0) {
		ss_error("study.corrupt", ss_call_id(op->c), "study_uid",
		         op->uid, NULL);
		fail(op, SS_EINTERNAL, NULL);
		return;
	}
	op->step = LS_PRIORS;
	rv = sh_store_priors(op->s, op->wl, &st, on_read, op);
	sodium_memzero(&st, sizeof st);
	if (rv == SS_ENOTFOUND)
		reply_study(op, NULL);
	else if (rv != 0)
		fail(op, sh_err(rv), NULL);
}

static void
on_read(int err, redisReply *r, void *arg)
{
	ls_op *op = arg;
	int rv;

	if (err != 0 || r->type == REDIS_REPLY_ERROR) {
		if (err == 0)
			ss_error("redis.error", ss_call_id(op->c), "error",
			         r->str, NULL);
		fail(op, err != 0 ? sh_err(err) : SS_EINTERNAL, NULL);
		return;
	}
	if (op->kind == LS_LIST) {
		if ((rv = reply_list(op, r)) != 0) {
			fail(op, rv, NULL);
			return;
		}
		op_free(op);
	} else if (op->step == LS_READ) {
		read_priors(op, r);
	} else {
		reply_study(op, r);
	}
}

static int
read_store(ls_op *op)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX], count[16];
	const char *argv[4];

	op->step = LS_READ;
	if (sh_key_wl(k1, op->wl, "studies") != 0)
		return SS_EINTERNAL;
	if (op->kind != LS_LIST)
		return ss_redis_cmd(op->s->redis, on_read, op, "HGET %s %s", k1,
		                    op->uid);
	if (sh_key_wl(k2, op->wl, "index") != 0)
		return SS_EINTERNAL;
	snprintf(count, sizeof count, "%d", op->limit + 1);
	argv[0] = k1;
	argv[1] = k2;
	argv[2] = op->cursor;
	argv[3] = count;
	return ss_redis_eval(op->s->redis, &sh_script_list, on_read, op, 2, 4,
	                     argv, NULL);
}

static void
on_check(int err, const ss_msg *reply, void *arg)
{
	ls_op *op = arg;
	const msgpack_object *a;
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
	if ((rv = read_store(op)) != 0)
		fail(op, sh_err(rv), NULL);
}

/* Common start: validate ids, then check or read. */
static void
start(ls_op *op)
{
	ss_pack *p;
	int rv;

	if (!sh_valid_worklist(op->wl, strlen(op->wl))) {
		fail(op, SS_EBADREQ, "field 'worklist': expected <kind>:<id>");
		return;
	}
	if (op->kind != LS_LIST && !sh_valid_uid(op->uid, strlen(op->uid))) {
		fail(op, SS_EBADREQ, "field 'study_uid': expected a DICOM UID");
		return;
	}
	if (op->kind == LS_LOOKUP) {
		if ((rv = read_store(op)) != 0)
			fail(op, sh_err(rv), NULL);
		return;
	}
	op->step = LS_CHECK;
	p = sh_authz_begin(op->s, "authz.check", ss_call_id(op->c));
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", op->user);
	ss_pack_kv_cstr(p, "permission", "studies.view");
	ss_pack_kv_cstr(p, "worklist", op->wl);
	if ((rv = sh_authz_send(op->s, on_check, op)) != 0)
		fail(op, sh_err(rv), NULL);
}

static ls_op *
op_new(ss_call *c, void *arg, ls_kind kind)
{
	ls_op *op = calloc(1, sizeof *op);

	if (op == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return NULL;
	}
	op->s = arg;
	op->c = c;
	op->kind = kind;
	return op;
}

void
sh_handle_list(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, SH_MAX_USER},
	    {"worklist", SS_F_STR, true, 1, SH_WL_MAX},
	    {"limit", SS_F_INT, false, 1, SH_MAX_PAGE},
	    {"cursor", SS_F_STR, false, 1, SH_INDEX_MAX},
	};
	const msgpack_object *f[4];
	ls_op *op;

	if (sh_parse(c, body, spec, 4, f) != 0 ||
	    (op = op_new(c, arg, LS_LIST)) == NULL)
		return;
	(void)ss_obj_strcpy(f[0], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[1], op->wl, sizeof op->wl);
	op->limit = f[2] != NULL ? (int)ss_obj_int(f[2]) : SH_DEF_PAGE;
	if (f[3] != NULL) {
		ss_str cur = ss_obj_str(f[3]);
		if (!sh_valid_cursor(cur.p, cur.n)) {
			fail(op, SS_EBADREQ,
			     "field 'cursor': not a cursor from a previous "
			     "page");
			return;
		}
		(void)ss_obj_strcpy(f[3], op->cursor, sizeof op->cursor);
	}
	start(op);
}

void
sh_handle_get(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, SH_MAX_USER},
	    {"worklist", SS_F_STR, true, 1, SH_WL_MAX},
	    {"study_uid", SS_F_STR, true, 1, SH_UID_MAX},
	};
	const msgpack_object *f[3];
	ls_op *op;

	if (sh_parse(c, body, spec, 3, f) != 0 ||
	    (op = op_new(c, arg, LS_GET)) == NULL)
		return;
	(void)ss_obj_strcpy(f[0], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[1], op->wl, sizeof op->wl);
	(void)ss_obj_strcpy(f[2], op->uid, sizeof op->uid);
	start(op);
}

void
sh_handle_lookup(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"worklist", SS_F_STR, true, 1, SH_WL_MAX},
	    {"study_uid", SS_F_STR, true, 1, SH_UID_MAX},
	};
	const msgpack_object *f[2];
	ls_op *op;

	if (sh_parse(c, body, spec, 2, f) != 0 ||
	    (op = op_new(c, arg, LS_LOOKUP)) == NULL)
		return;
	(void)ss_obj_strcpy(f[0], op->wl, sizeof op->wl);
	(void)ss_obj_strcpy(f[1], op->uid, sizeof op->uid);
	start(op);
}
