/*
 * services/guestlink/upload_files.c - the files of an upload session.
 *
 *   guestlink.upload.reserve {session, bytes, max_bytes}
 *     -> {"link_id", "worklist", "bytes"}: the session is live and
 *        "bytes" more fit under max_bytes for the whole session (the
 *        gateway's per-session cap); they are counted now, before the
 *        file is kept, so concurrent files can never pass the cap.
 *        Errors: not_found (the one answer for an unusable link or
 *        session), payload_too_large (the session's cap is reached).
 *   guestlink.upload.received {session, study_uid, sop_instance_uid?,
 *       sha256, bytes, forwarded, addr, user_agent}
 *     -> {"studies", "files"}: the session's counts so far.  The file is
 *        audited ("upload.file"), and when the link has notify_on_upload
 *        and this is the first file of a study in the session, its
 *        creator is emailed (upload.received).
 *
 * A session's counters live beside it, under its hash tag, and expire
 * with it: <session key>:b (bytes), :st (study uids), :f (files).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/mailq.h"
#include "services/guestlink/upload.h"

/* Shared: the link must be a live upload link and the session live. */
#define LUA_LIVE                                                               \
	"local f = redis.call('HMGET', KEYS[1], 'kind', 'state', 'exp', "      \
	"'wl', 'notify', 'by_email', 'wlname')\n"                              \
	"if f[1] ~= 'upload' or f[2] == 'deleted' or "                         \
	"tonumber(f[3]) <= tonumber(ARGV[1]) then return {0} end\n"            \
	"local ttl = redis.call('PTTL', KEYS[2])\n"                            \
	"if ttl <= 0 then return {0} end\n"

/* KEYS: link, session, bytes  ARGV: now, bytes, max -> {0} gone,
 * {2} over the cap, {1, wl, total}. */
ss_script gl_script_upload_reserve = {
    .name = "guestlink_upload_reserve",
    .src = LUA_LIVE "local t = redis.call('INCRBY', KEYS[3], ARGV[2])\n"
                    "redis.call('PEXPIRE', KEYS[3], ttl)\n"
                    "if t > tonumber(ARGV[3]) then\n"
                    "  redis.call('DECRBY', KEYS[3], ARGV[2])\n"
                    "  return {2}\n"
                    "end\n"
                    "return {1, f[4], t}\n",
};

/* KEYS: link, session, studies, files  ARGV: now, study uid -> {0} gone,
 * {1, wl, new study 0|1, studies, files, notify, by_email, wlname} (wlname
 * '' for a link made before links kept their worklist's name). */
ss_script gl_script_upload_received = {
    .name = "guestlink_upload_received",
    .src =
        LUA_LIVE "local new = redis.call('SADD', KEYS[3], ARGV[2])\n"
                 "local files = redis.call('INCR', KEYS[4])\n"
                 "redis.call('PEXPIRE', KEYS[3], ttl)\n"
                 "redis.call('PEXPIRE', KEYS[4], ttl)\n"
                 "return {1, f[4], new, redis.call('SCARD', KEYS[3]), files, "
                 "f[5] or '0', f[6] or '', f[7] or ''}\n",
};

typedef struct uf_op {
	gl_server *s;
	ss_call *c;
	bool received;
	char id[GL_ID_LEN + 1];
	char k_link[GL_KEY_MAX], k_sess[GL_KEY_MAX];
	char k_a[GL_KEY_MAX + 4], k_b[GL_KEY_MAX + 4];
	char uid[GL_UID_MAX + 1];
	char sop[GL_UID_MAX + 1];
	char sha[65];
	int64_t bytes;
	bool forwarded;
	char addr[GL_MAX_ADDR + 1];
	char ua[GL_UA_KEEP + 1];
} uf_op;

static void
gone(uf_op *op)
{
	ss_call_reply_err(op->c, SS_ENOTFOUND, GL_UP_GONE_MSG);
	free(op);
}

static int64_t
int_at(const redisReply *r, size_t i)
{
	return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER
	           ? r->element[i]->integer
	           : -1;
}

static const char *
str_at(const redisReply *r, size_t i)
{
	return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING
	           ? r->element[i]->str
	           : "";
}

/* The worklist is named when the link kept its name (upload.c), and
 * only as what a mail var may hold: a value refused there would lose the
 * whole mail.  Without it the mail says where in other words. */
static void
notify(uf_op *op, const char *to, int64_t studies, int64_t files,
       const char *wl_name)
{
	char t[SS_MAIL_TIME_MAX], ns[24], nf[24];
	const char *vars[] = {"link_id",       op->id, "time",  t,
	                      "studies",       ns,     "files", nf,
	                      "worklist_name", "",     NULL};
	ss_mail m = {.template = "upload.received", .to = to, .vars = vars};

	if (strlen(wl_name) <= GL_MAX_NAME &&
	    ss_mail_value_ok(wl_name, strlen(wl_name)))
		vars[9] = wl_name;
	ss_mail_time(gl_now_ms() / 1000, t);
	snprintf(ns, sizeof ns, "%lld", (long long)studies);
	snprintf(nf, sizeof nf, "%lld", (long long)files);
	(void)gl_mail(op->s, ss_call_id(op->c), &m, NULL, NULL);
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	uf_op *op = arg;
	ss_pack *p;

	if (err != 0 || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
		if (err == 0 && r->type == REDIS_REPLY_ERROR)
			ss_error("redis.error", ss_call_id(op->c), "error",
			         r->str, NULL);
		ss_call_reply_err(op->c, err != 0 ? gl_err(err) : SS_EINTERNAL,
		                  NULL);
		free(op);
		return;
	}
	switch (int_at(r, 0)) {
	case 0:
		gone(op);
		return;
	case 2:
		ss_call_reply_err(op->c, SS_ETOOLARGE,
		                  "the upload session's size limit is reached");
		free(op);
		return;
	}
	if (!op->received) {
		p = ss_call_reply_ok(op->c);
		msgpack_pack_map(&p->pk, 3);
		ss_pack_kv_cstr(p, "link_id", op->id);
		ss_pack_kv_cstr(p, "worklist", str_at(r, 1));
		ss_pack_kv_int(p, "bytes", int_at(r, 2));
		ss_call_reply_end(op->c);
		free(op);
		return;
	}
	/* Audited before the reply, which frees the call. */
	gl_audit(op->s, ss_call_id(op->c), NULL, "upload.file", op->id,
	         str_at(r, 1),
	         json_pack("{s:s, s:s?, s:s, s:I, s:b, s:b, s:s}", "study_uid",
	                   op->uid, "sop_instance_uid",
	                   op->sop[0] != '\0' ? op->sop : NULL, "sha256",
	                   op->sha, "bytes", (json_int_t)op->bytes, "forwarded",
	                   op->forwarded, "new_study", int_at(r, 2) == 1,
	                   "user_agent", op->ua),
	         op->addr);
	if (int_at(r, 2) == 1 && strcmp(str_at(r, 5), "1") == 0 &&
	    str_at(r, 6)[0] != '\0')
		notify(op, str_at(r, 6), int_at(r, 3), int_at(r, 4),
		       str_at(r, 7));
	p = ss_call_reply_ok(op->c);
	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_int(p, "studies", int_at(r, 3));
	ss_pack_kv_int(p, "files", int_at(r, 4));
	ss_call_reply_end(op->c);
	free(op);
}

/* The session's keys; SS_ENOTFOUND when it is not a session. */
static int
keys(uf_op *op, const msgpack_object *sess, const char *a, const char *b)
{
	ss_str v = ss_obj_str(sess);
	int rv;

	if (gl_session_key(op->s, v.p, v.n, op->id, op->k_sess) != 0)
		return SS_ENOTFOUND;
	if ((rv = gl_key_link(op->k_link, op->id, NULL)) != 0)
		return rv;
	snprintf(op->k_a, sizeof op->k_a, "%s%s", op->k_sess, a);
	snprintf(op->k_b, sizeof op->k_b, "%s%s", op->k_sess, b);
	return 0;
}

static uf_op *
op_new(ss_call *c, void *arg)
{
	uf_op *op = calloc(1, sizeof *op);

	if (op == NULL)
		ss_call_reply_err(c, SS_ENOMEM, NULL);
	else {
		op->s = arg;
		op->c = c;
	}
	return op;
}

static void
start(uf_op *op, int rv, ss_script *sc, int nkeys, int argc, const char **argv)
{
	if (rv == SS_ENOTFOUND) {
		gone(op);
		return;
	}
	if (rv == 0)
		rv = ss_redis_eval(op->s->redis, sc, on_redis, op, nkeys, argc,
		                   argv, NULL);
	if (rv != 0) {
		ss_call_reply_err(op->c, gl_err(rv), NULL);
		free(op);
	}
}

void
gl_handle_upload_reserve(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"session", SS_F_STR, true, 0, 0},
	    {"bytes", SS_F_INT, true, 1, INT64_MAX / 4},
	    {"max_bytes", SS_F_INT, true, 1, INT64_MAX / 4},
	};
	const msgpack_object *f[3];
	char now[24], n[24], max[24];
	uf_op *op;

	if (gl_parse(c, body, spec, 3, f) != 0 || (op = op_new(c, arg)) == NULL)
		return;
	snprintf(now, sizeof now, "%lld", (long long)gl_now_ms());
	snprintf(n, sizeof n, "%lld", (long long)ss_obj_int(f[1]));
	snprintf(max, sizeof max, "%lld", (long long)ss_obj_int(f[2]));
	int rv = keys(op, f[0], ":b", ":x");
	const char *argv[] = {op->k_link, op->k_sess, op->k_a, now, n, max};
	start(op, rv, &gl_script_upload_reserve, 3, 6, argv);
}

void
gl_handle_upload_received(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"session", SS_F_STR, true, 0, 0},
	    {"study_uid", SS_F_STR, true, 1, GL_UID_MAX},
	    {"sop_instance_uid", SS_F_STR, false, 1, GL_UID_MAX},
	    {"sha256", SS_F_STR, true, 64, 64},
	    {"bytes", SS_F_INT, true, 1, INT64_MAX / 4},
	    {"forwarded", SS_F_BOOL, true, 0, 0},
	    {"addr", SS_F_STR, true, 1, GL_MAX_ADDR},
	    {"user_agent", SS_F_STR, true, 0, GL_MAX_UA},
	};
	const msgpack_object *f[8];
	char now[24];
	ss_str v;
	uf_op *op;

	if (gl_parse(c, body, spec, 8, f) != 0 || (op = op_new(c, arg)) == NULL)
		return;
	op->received = true;
	(void)ss_obj_strcpy(f[1], op->uid, sizeof op->uid);
	if (f[2] != NULL)
		(void)ss_obj_strcpy(f[2], op->sop, sizeof op->sop);
	(void)ss_obj_strcpy(f[3], op->sha, sizeof op->sha);
	v = ss_obj_str(f[6]);
	if (!gl_valid_uid(op->uid, strlen(op->uid)) ||
	    (op->sop[0] != '\0' && !gl_valid_uid(op->sop, strlen(op->sop))) ||
	    strspn(op->sha, "0123456789abcdef") != 64 ||
	    !gl_valid_addr(v.p, v.n)) {
		ss_call_reply_err(c, SS_EBADREQ,
		                  "fields 'study_uid', 'sop_instance_uid', "
		                  "'sha256', 'addr': expected UIDs, 64 hex "
		                  "digits and a client address");
		free(op);
		return;
	}
	memcpy(op->addr, v.p, v.n);
	v = ss_obj_str(f[7]);
	gl_clean_ua(v.p, v.n, op->ua);
	op->bytes = ss_obj_int(f[4]);
	op->forwarded = ss_obj_bool(f[5]);
	snprintf(now, sizeof now, "%lld", (long long)gl_now_ms());
	int rv = keys(op, f[0], ":st", ":f");
	const char *argv[] = {op->k_link, op->k_sess, op->k_a,
	                      op->k_b,    now,        op->uid};
	start(op, rv, &gl_script_upload_received, 4, 6, argv);
}
