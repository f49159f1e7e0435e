/*
 * services/guestlink/list.c - guestlink.list: the links of a study made
 * from a worklist.
 *
 *   {user, worklist, study_uid} -> {"links": [<link> + "can_delete", ...]}
 *
 * newest first, at most GL_MAX_LIST.  Links made from other worklists
 * (another organisation's, say) are not shown: a worklist sees its own.
 *
 *   LS_CHECK  authz.check_batch: links.guest.view (needed) and
 *             links.guest.create (can_delete) on the worklist
 *   LS_INDEX  the index script: ids of the links still kept
 *   LS_LINKS  one HMGET per link, all sent at once (each link is its own
 *             slot); each answer is packed as it comes in
 *
 * Links whose keys expired meanwhile are left out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/argv.h"
#include "runtime/log.h"
#include "services/guestlink/guestlink.h"

typedef struct ls_op ls_op;

typedef struct ls_slot {
	ls_op *op;
	char id[GL_ID_LEN + 1];
	int64_t at_ms;
	char *bytes; /* the packed link object; NULL when left out */
	size_t len;
} ls_slot;

struct ls_op {
	gl_server *s;
	ss_call *c;
	char user[GL_MAX_USER + 1];
	char wl[GL_WL_MAX + 1];
	char uid[GL_UID_MAX + 1];
	bool can_delete;
	int64_t now;
	ls_slot *slots;
	size_t n;
	size_t pending;
	int err;
};

static void
op_free(ls_op *op)
{
	for (size_t i = 0; i < op->n; i++)
		free(op->slots[i].bytes);
	free(op->slots);
	free(op);
}

static void
fail(ls_op *op, int err, const char *msg)
{
	ss_call_reply_err(op->c, err, msg);
	op_free(op);
}

static int
newest_first(const void *a, const void *b)
{
	const ls_slot *x = a, *y = b;

	return x->at_ms < y->at_ms ? 1 : x->at_ms > y->at_ms ? -1 : 0;
}

static void
finish(ls_op *op)
{
	uint32_t shown = 0;
	ss_pack *p;

	if (op->err != 0) {
		fail(op, op->err, NULL);
		return;
	}
	if (op->n > 1)
		qsort(op->slots, op->n, sizeof *op->slots, newest_first);
	for (size_t i = 0; i < op->n; i++)
		shown += op->slots[i].bytes != NULL;
	p = ss_call_reply_ok(op->c);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, "links");
	msgpack_pack_array(&p->pk, shown);
	for (size_t i = 0; i < op->n; i++)
		if (op->slots[i].bytes != NULL)
			msgpack_sbuffer_write(&p->sb, op->slots[i].bytes,
			                      op->slots[i].len);
	ss_call_reply_end(op->c);
	op_free(op);
}

static bool
same(ss_str a, const char *b)
{
	return a.n == strlen(b) && memcmp(a.p, b, a.n) == 0;
}

static void
on_link(int err, redisReply *r, void *arg)
{
	ls_slot *sl = arg;
	ls_op *op = sl->op;
	ss_pack p;
	gl_link l;
	int rv;

	if (err != 0) {
		op->err = gl_err(err);
	} else if ((rv = gl_link_parse(&l, sl->id, r)) == SS_ENOTFOUND) {
		/* expired since the index was read */
	} else if (rv != 0) {
		ss_error("link.corrupt", ss_call_id(op->c), "link", sl->id,
		         NULL);
	} else if (same(l.wl, op->wl) && same(l.study, op->uid)) {
		ss_pack_init(&p);
		gl_link_pack(op->s, &p, &l, op->now, op->can_delete, 0);
		sl->at_ms = l.at_ms;
		sl->len = p.sb.size;
		sl->bytes = msgpack_sbuffer_release(&p.sb);
		ss_pack_free(&p);
	}
	if (--op->pending == 0)
		finish(op);
}

static int
read_links(ls_op *op, const redisReply *r)
{
	size_t sent = 0;

	if (r->type != REDIS_REPLY_ARRAY)
		return SS_EINTERNAL;
	if (r->elements == 0) {
		finish(op);
		return 0;
	}
	if ((op->slots = calloc(r->elements, sizeof *op->slots)) == NULL)
		return SS_ENOMEM;
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		ls_slot *sl = &op->slots[op->n];
		if (e->type != REDIS_REPLY_STRING ||
		    !gl_valid_id(e->str, e->len))
			continue;
		sl->op = op;
		memcpy(sl->id, e->str, e->len);
		op->n++;
	}
	/* Counted before sending: a failure to send below answers at once
	 * and must not race a callback to finish(). */
	op->pending = op->n + 1;
	for (size_t i = 0; i < op->n; i++) {
		char key[GL_KEY_MAX];
		ss_argv a;
		int rv;

		ss_argv_init(&a);
		ss_argv_pushs(&a, "HMGET");
		rv = gl_key_link(key, op->slots[i].id, NULL);
		ss_argv_pushs(&a, key);
		gl_link_fields_push(&a);
		if (rv == 0)
			rv = ss_argv_status(&a);
		if (rv == 0)
			rv = ss_redis_cmdargv(op->s->redis, on_link,
			                      &op->slots[i], a.n, a.v, a.lens);
		ss_argv_free(&a);
		if (rv != 0) {
			op->err = gl_err(rv);
			break;
		}
		sent++;
	}
	op->pending -= op->n - sent;
	if (--op->pending == 0)
		finish(op);
	return 0;
}

static void
on_index(int err, redisReply *r, void *arg)
{
	ls_op *op = arg;
	int rv = err != 0 ? gl_err(err) : read_links(op, r);

	if (rv != 0)
		fail(op, rv, NULL);
}

static void
on_check(int err, const ss_msg *reply, void *arg)
{
	ls_op *op = arg;
	const msgpack_object *res;
	char key[GL_KEY_MAX], now[24], max[16];
	const char *argv[3];
	int rv = gl_peer_err(err, reply);

	if (rv != 0) {
		fail(op, rv == SS_EBADREQ ? SS_EINTERNAL : rv, NULL);
		return;
	}
	res = ss_map_get(reply->body, "results");
	if (res == NULL || res->type != MSGPACK_OBJECT_ARRAY ||
	    res->via.array.size != 2 ||
	    res->via.array.ptr[0].type != MSGPACK_OBJECT_BOOLEAN ||
	    res->via.array.ptr[1].type != MSGPACK_OBJECT_BOOLEAN) {
		fail(op, SS_EINTERNAL, NULL);
		return;
	}
	if (!res->via.array.ptr[0].via.boolean) {
		fail(op, SS_EFORBIDDEN,
		     "links.guest.view is needed on that worklist");
		return;
	}
	op->can_delete = res->via.array.ptr[1].via.boolean;
	op->now = gl_now_ms();
	snprintf(now, sizeof now, "%lld", (long long)op->now);
	snprintf(max, sizeof max, "%d", GL_MAX_LIST);
	argv[0] = key;
	argv[1] = now;
	argv[2] = max;
	if ((rv = gl_key_index(key, op->wl, op->uid)) == 0)
		rv = ss_redis_eval(op->s->redis, &gl_script_index_read,
		                   on_index, op, 1, 3, argv, NULL);
	if (rv != 0)
		fail(op, gl_err(rv), NULL);
}

void
gl_handle_list(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, GL_MAX_USER},
	    {"worklist", SS_F_STR, true, 1, GL_WL_MAX},
	    {"study_uid", SS_F_STR, true, 1, GL_UID_MAX},
	};
	static const char *const perms[] = {"links.guest.view",
	                                    "links.guest.create"};
	const msgpack_object *f[3];
	ls_op *op;
	ss_pack *p;
	int rv;

	if (gl_parse(c, body, spec, 3, f) != 0)
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
	if (!gl_valid_worklist(op->wl, strlen(op->wl))) {
		fail(op, SS_EBADREQ, "field 'worklist': expected <kind>:<id>");
		return;
	}
	if (!gl_valid_uid(op->uid, strlen(op->uid))) {
		fail(op, SS_EBADREQ, "field 'study_uid': expected a DICOM UID");
		return;
	}
	p = gl_peer_begin(op->s, "authz.check_batch", ss_call_id(c));
	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_cstr(p, "user", op->user);
	ss_pack_key(p, "checks");
	msgpack_pack_array(&p->pk, 2);
	for (int i = 0; i < 2; i++) {
		msgpack_pack_map(&p->pk, 2);
		ss_pack_kv_cstr(p, "permission", perms[i]);
		ss_pack_kv_cstr(p, "worklist", op->wl);
	}
	if ((rv = gl_peer_send(op->s, op->s->authz, on_check, op)) != 0)
		fail(op, gl_err(rv), NULL);
}
