/*
 * services/guestlink/link.c - the link record: reading it from Redis,
 * its status, and the link object of API.md.
 *
 * Everything read back from Redis is checked like input: a record with a
 * missing or malformed field is an internal error, never passed on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/argv.h"
#include "runtime/log.h"
#include "services/guestlink/guestlink.h"

const char *const gl_field_names[GL_NFIELDS] = {
    [GL_F_TOK] = "tok",     [GL_F_STUDY] = "study",   [GL_F_WL] = "wl",
    [GL_F_BY] = "by",       [GL_F_AT] = "at",         [GL_F_EXP] = "exp",
    [GL_F_MAX] = "max",     [GL_F_USES] = "uses",     [GL_F_MAXPW] = "maxpw",
    [GL_F_FAIL] = "fail",   [GL_F_DOB] = "dob",       [GL_F_EMAIL] = "email",
    [GL_F_MSG] = "msg",     [GL_F_NOTIFY] = "notify", [GL_F_PRIORS] = "priors",
    [GL_F_PUIDS] = "puids", [GL_F_STATE] = "state",
};

void
gl_link_fields_push(struct ss_argv *a)
{
	for (int i = 0; i < GL_NFIELDS; i++)
		ss_argv_pushs(a, gl_field_names[i]);
}

static int
num(const redisReply *r, int64_t *out)
{
	char buf[24], *end;
	long long v;

	if (r->type != REDIS_REPLY_STRING || r->len == 0 ||
	    r->len >= sizeof buf)
		return SS_EINTERNAL;
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		return SS_EINTERNAL;
	*out = v;
	return 0;
}

static int
str(const redisReply *r, ss_str *out, bool optional)
{
	if (r->type == REDIS_REPLY_NIL && optional) {
		out->p = "";
		out->n = 0;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING)
		return SS_EINTERNAL;
	out->p = r->str;
	out->n = r->len;
	return 0;
}

static int
flag(const redisReply *r, bool *out)
{
	if (r->type != REDIS_REPLY_STRING || r->len != 1 ||
	    (r->str[0] != '0' && r->str[0] != '1'))
		return SS_EINTERNAL;
	*out = r->str[0] == '1';
	return 0;
}

int
gl_link_parse(gl_link *l, const char *id, const redisReply *r)
{
	const redisReply *const *e;

	memset(l, 0, sizeof *l);
	if (r->type != REDIS_REPLY_ARRAY || r->elements != GL_NFIELDS)
		return SS_EINTERNAL;
	e = (const redisReply *const *)r->element;
	if (e[GL_F_STUDY]->type == REDIS_REPLY_NIL)
		return SS_ENOTFOUND;
	snprintf(l->id, sizeof l->id, "%s", id);
	if (str(e[GL_F_TOK], &l->tok, true) ||
	    str(e[GL_F_STUDY], &l->study, 0) || str(e[GL_F_WL], &l->wl, 0) ||
	    str(e[GL_F_BY], &l->by, 0) || str(e[GL_F_EMAIL], &l->email, true) ||
	    str(e[GL_F_MSG], &l->msg, true) ||
	    str(e[GL_F_PUIDS], &l->puids, true) ||
	    str(e[GL_F_STATE], &l->state, 0) || num(e[GL_F_AT], &l->at_ms) ||
	    num(e[GL_F_EXP], &l->exp_ms) || num(e[GL_F_MAX], &l->max_uses) ||
	    num(e[GL_F_USES], &l->uses) || num(e[GL_F_MAXPW], &l->max_pw) ||
	    num(e[GL_F_FAIL], &l->fail) || flag(e[GL_F_DOB], &l->dob) ||
	    flag(e[GL_F_NOTIFY], &l->notify) ||
	    flag(e[GL_F_PRIORS], &l->priors))
		return SS_EINTERNAL;
	return 0;
}

static bool
state_is(const gl_link *l, const char *s)
{
	return l->state.n == strlen(s) &&
	       memcmp(l->state.p, s, l->state.n) == 0;
}

/* Precedence: what ended the link for good first, then what a creator can
 * undo (a lock). */
const char *
gl_link_status(const gl_link *l, int64_t now_ms)
{
	if (state_is(l, "deleted"))
		return "deleted";
	if (l->exp_ms <= now_ms)
		return "expired";
	if (l->max_uses > 0 && l->uses >= l->max_uses)
		return "used_up";
	if (state_is(l, "locked"))
		return "locked";
	return "active";
}

static void
kv_str_or_nil(ss_pack *p, const char *k, ss_str v)
{
	ss_pack_key(p, k);
	if (v.n == 0)
		msgpack_pack_nil(&p->pk);
	else
		ss_pack_strn(p, v.p, v.n);
}

static void
kv_time(ss_pack *p, const char *k, int64_t ms)
{
	char t[GL_TIME_LEN + 1];

	gl_time_fmt(ms, t);
	ss_pack_kv_cstr(p, k, t);
}

static void
pack_priors(ss_pack *p, ss_str puids)
{
	uint32_t n = 0;
	size_t start = 0;

	for (size_t i = 0; i < puids.n; i++)
		n += puids.p[i] == ',';
	n += puids.n > 0;
	msgpack_pack_array(&p->pk, n);
	for (size_t i = 0; i <= puids.n && puids.n > 0; i++) {
		if (i < puids.n && puids.p[i] != ',')
			continue;
		ss_pack_strn(p, puids.p + start, i - start);
		start = i + 1;
	}
}

int
gl_link_pack(gl_server *s, ss_pack *p, const gl_link *l, int64_t now_ms,
             int can_delete, int extra)
{
	char tok[SS_TOKEN_LEN + 1] = "";

	if (l->tok.n > 0 &&
	    gl_open_token(s, l->id, l->tok.p, l->tok.n, tok) != 0) {
		/* A changed --seal-key, or an altered record: show no URL
		 * rather than a wrong one. */
		ss_error("link.token_unreadable", NULL, "link", l->id, NULL);
		tok[0] = '\0';
	}
	msgpack_pack_map(&p->pk, (can_delete >= 0 ? 20 : 19) + extra);
	ss_pack_kv_cstr(p, "id", l->id);
	ss_pack_key(p, "url");
	if (tok[0] != '\0') {
		size_t base = strlen(s->cfg->public_url);
		char url[600];
		if (base + 3 + SS_TOKEN_LEN < sizeof url) {
			memcpy(url, s->cfg->public_url, base);
			memcpy(url + base, "/g/", 3);
			memcpy(url + base + 3, tok, SS_TOKEN_LEN + 1);
			ss_pack_cstr(p, url);
			sodium_memzero(url, sizeof url);
		} else {
			msgpack_pack_nil(&p->pk);
		}
	} else {
		msgpack_pack_nil(&p->pk);
	}
	sodium_memzero(tok, sizeof tok);
	ss_pack_kv_strn(p, "study_uid", l->study.p, l->study.n);
	ss_pack_kv_strn(p, "worklist", l->wl.p, l->wl.n);
	ss_pack_kv_strn(p, "created_by", l->by.p, l->by.n);
	kv_time(p, "created_at", l->at_ms);
	kv_time(p, "expires_at", l->exp_ms);
	ss_pack_key(p, "max_uses");
	if (l->max_uses > 0)
		msgpack_pack_int64(&p->pk, l->max_uses);
	else
		msgpack_pack_nil(&p->pk);
	ss_pack_kv_int(p, "uses", l->uses);
	ss_pack_key(p, "max_password_attempts");
	if (l->max_pw > 0)
		msgpack_pack_int64(&p->pk, l->max_pw);
	else
		msgpack_pack_nil(&p->pk);
	ss_pack_kv_int(p, "password_attempts", l->fail);
	ss_pack_kv_bool(p, "has_password", l->max_pw > 0);
	ss_pack_kv_bool(p, "password_is_dob", l->dob);
	kv_str_or_nil(p, "email", l->email);
	kv_str_or_nil(p, "message", l->msg);
	ss_pack_kv_bool(p, "view_notification", l->notify);
	ss_pack_kv_bool(p, "include_priors", l->priors);
	ss_pack_key(p, "priors");
	pack_priors(p, l->puids);
	ss_pack_kv_cstr(p, "status", gl_link_status(l, now_ms));
	if (can_delete >= 0)
		ss_pack_kv_bool(p, "can_delete", can_delete > 0);
	return 0;
}
