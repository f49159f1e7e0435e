/*
 * services/share/create.c - share.create: sharing a study from a worklist
 * to targets (API.md "Shares").
 *
 *   {user, worklist, study_uid, targets: [target, ...], message?, addr?}
 *   -> {"shares": [{"target", "worklist", "status": "delivered"},
 *                  {"target", "status": "invited"}, ...]}
 *
 * Nothing is written until every target has been decided.  The steps:
 *
 *   SC_RESOLVE  authz.resolve decides every target (permissions and the
 *               organisation rules live there); one refusal ends the share
 *               with that target's code and a message naming it
 *   SC_STUDY    the study as the worklist holds it (not held: not_found),
 *               opened; its sealed bytes are what the targets get
 *   SC_INVITE   per address without an account: the invite script stores
 *               the token's hash and the pending share on the address's
 *               slot (an address registered meanwhile becomes a delivery)
 *   SC_DELIVER  per target worklist: the deliver script (idempotent: a
 *               worklist that holds the study changes nothing); per
 *               invitation: the token -> address key, with a TTL
 *   SC_PEOPLE   authz.user.get of the sharer (for the emails) and of each
 *               user whose personal worklist just got the study (notices)
 *   SC_ORG      the name of the sharer's organisation (for invitations)
 *   SC_MAIL     share.invitation and share.notice jobs on notify:jobs
 *   SC_RECORD   the share records on the study's history, and one audit
 *               entry per target
 *
 * then the reply and a study.shared event.  Each step sends its commands
 * at once and the next starts when the last answer is in.  Targets that
 * land in the same worklist (or invite the same address) are done once.
 * A failure after SC_STUDY answers unavailable; repeating the request is
 * safe: deliveries are idempotent and a repeated invitation replaces the
 * pending share (and mails a fresh link).  A failure once deliveries have
 * begun still goes through SC_RECORD first, for the targets whose
 * delivery (or invitation) was seen to succeed, so that what was put in
 * a worklist has its audit entry and history record (a lost answer or a
 * crash between the steps leaves that to the retry).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/mpjson.h"
#include "runtime/argv.h"
#include "runtime/audit.h"
#include "runtime/log.h"
#include "runtime/mailq.h"
#include "runtime/metrics.h"
#include "runtime/token.h"
#include "services/share/share.h"

typedef enum sc_step {
	SC_START,
	SC_RESOLVE,
	SC_STUDY,
	SC_INVITE,
	SC_DELIVER,
	SC_PEOPLE,
	SC_ORG,
	SC_MAIL,
	SC_RECORD,
	SC_DONE,
} sc_step;

#define SC_CODE_MAX 32 /* a share code as authz answers it */

typedef struct sc_target {
	const msgpack_object *obj; /* as requested (lives with the call), or
	                              canon */
	/* a share code target in authz's canonical form: recorded and
	 * answered as one code, however it was typed */
	msgpack_object canon;
	msgpack_object_kv canon_kv[2];
	char code[SC_CODE_MAX + 1];
	char wl[SH_WL_MAX + 1]; /* where it lands; "" for an invitation */
	char email[SH_MAX_EMAIL + 1];
	bool invite;
	bool changed;
	bool made; /* its delivery or invitation token is written */
	int first; /* the first target doing the same thing (itself) */
	char token[SS_TOKEN_LEN + 1];
	char token_hash[SS_TOKEN_HASH_LEN + 1];
	char share_id[SH_SHARE_ID_LEN + 1];
	char notice_to[SH_MAX_EMAIL + 1]; /* a notice goes there */
} sc_target;

struct sc_op;

/* The context of one command of a step: which target it is for. */
typedef struct sc_slot {
	struct sc_op *op;
	int i; /* target index; -1: not a target's */
} sc_slot;

typedef struct sc_op {
	sh_server *s;
	ss_call *c;
	sc_step step;
	sh_fan fan; /* the step's commands in flight */
	char user[SH_MAX_USER + 1];
	char wl[SH_WL_MAX + 1];
	char uid[SH_UID_MAX + 1];
	char addr[SH_MAX_ADDR + 1];
	char message[SH_MAX_MESSAGE + 1];
	const msgpack_object *targets; /* the request's array */
	int n;
	sc_target *t;
	sc_slot *slot; /* n + 2 */
	char *blob;    /* the study as the worklist holds it: sealed */
	size_t bloblen;
	sh_study st;
	char sharer_name[SH_MAX_NAME + 1];
	char sharer_email[SS_MAIL_ADDR_MAX +
	                  1]; /* told if an invitation fails */
	char sharer_org[SH_ID_MAX + 1];
	char org_name[SH_MAX_NAME + 1];
	int64_t now;
	int err; /* a failure after deliveries began, answered after SC_RECORD
	          */
	char errmsg[sizeof(((sh_fan *)0)->errmsg)];
} sc_op;

static ss_metric *m_shares, *m_invites;

static void run(sc_op *op);

static void
op_free(sc_op *op)
{
	if (op->t != NULL)
		for (int i = 0; i < op->n; i++)
			sodium_memzero(op->t[i].token, sizeof op->t[i].token);
	free(op->t);
	free(op->slot);
	free(op->blob);
	free(op);
}

static void
fail(sc_op *op, int err, const char *msg)
{
	ss_call_reply_err(op->c, err, msg);
	op_free(op);
}

static void
answered(sc_op *op)
{
	if (sh_fan_answered(&op->fan))
		run(op);
}

/* A string field of an authz reply body, copied; "" when nil/absent. */
static void
body_str(const ss_msg *reply, const char *k, char *dst, size_t len)
{
	const msgpack_object *o = ss_map_get(reply->body, k);

	if (o == NULL || ss_obj_strcpy(o, dst, len) != 0)
		dst[0] = '\0';
}

/* --- SC_RESOLVE ----------------------------------------------------- */

static void
str_obj(msgpack_object *o, const char *s)
{
	o->type = MSGPACK_OBJECT_STR;
	o->via.str.ptr = s;
	o->via.str.size = (uint32_t)strlen(s);
}

/* A share code target becomes {"kind": "share_code", "code": <canonical>}
 * (code: the verdict's share_code; none for other kinds). */
static int
canon_code(sc_target *t, const msgpack_object *code)
{
	if (code == NULL)
		return 0;
	if (ss_obj_strcpy(code, t->code, sizeof t->code) != 0 ||
	    t->code[0] == '\0')
		return SS_EINTERNAL;
	str_obj(&t->canon_kv[0].key, "kind");
	str_obj(&t->canon_kv[0].val, "share_code");
	str_obj(&t->canon_kv[1].key, "code");
	str_obj(&t->canon_kv[1].val, t->code);
	t->canon.type = MSGPACK_OBJECT_MAP;
	t->canon.via.map.size = 2;
	t->canon.via.map.ptr = t->canon_kv;
	t->obj = &t->canon;
	return 0;
}

static void
on_resolve(int err, const ss_msg *reply, void *arg)
{
	sc_op *op = ((sc_slot *)arg)->op;
	const msgpack_object *ts;
	int rv = sh_authz_err(err, reply);

	if (rv != 0) {
		/* authz names bad targets ("targets[2]: ...") and refuses
		 * non-members: its words are the caller's to see. */
		char m[300] = "";

		if (err == 0 && reply != NULL && reply->err_msg.n > 0)
			snprintf(m, sizeof m, "%.*s", (int)reply->err_msg.n,
			         reply->err_msg.p);
		sh_fan_err(&op->fan, rv, m[0] ? m : NULL);
		answered(op);
		return;
	}
	ts = ss_map_get(reply->body, "targets");
	if (ts == NULL || ts->type != MSGPACK_OBJECT_ARRAY ||
	    ts->via.array.size != (uint32_t)op->n) {
		sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		answered(op);
		return;
	}
	for (int i = 0; i < op->n && op->fan.err == 0; i++) {
		const msgpack_object *v = &ts->via.array.ptr[i];
		const msgpack_object *ok = ss_map_get(v, "ok");
		const msgpack_object *inv = ss_map_get(v, "invite");
		sc_target *t = &op->t[i];

		if (v->type != MSGPACK_OBJECT_MAP || ok == NULL ||
		    ok->type != MSGPACK_OBJECT_BOOLEAN) {
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		} else if (!ok->via.boolean) {
			const msgpack_object *code = ss_map_get(v, "code");
			const msgpack_object *msg = ss_map_get(v, "message");
			ss_str cs = code && code->type == MSGPACK_OBJECT_STR
			                ? ss_obj_str(code)
			                : (ss_str){"forbidden", 9};
			ss_str ms = msg && msg->type == MSGPACK_OBJECT_STR
			                ? ss_obj_str(msg)
			                : (ss_str){"", 0};
			char m[400];

			snprintf(m, sizeof m, "targets[%d]: %.*s", i, (int)ms.n,
			         ms.p);
			sh_fan_err(&op->fan, ss_err_from_word(cs.p, cs.n), m);
		} else if (inv != NULL && inv->type == MSGPACK_OBJECT_BOOLEAN &&
		           inv->via.boolean) {
			const msgpack_object *e = ss_map_get(v, "email");
			char m[400];

			t->invite = true;
			if (e == NULL ||
			    ss_obj_strcpy(e, t->email, sizeof t->email) != 0) {
				sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
			} else if (!ss_mail_addr_ok(t->email,
			                            strlen(t->email))) {
				/* notify could not mail it: refuse now,
				 * before anything is written */
				snprintf(m, sizeof m,
				         "targets[%d]: \"%s\" cannot be "
				         "mailed",
				         i, t->email);
				sh_fan_err(&op->fan, SS_EBADREQ, m);
			}
		} else {
			const msgpack_object *w = ss_map_get(v, "worklist");
			if (w == NULL ||
			    ss_obj_strcpy(w, t->wl, sizeof t->wl) != 0 ||
			    !sh_valid_worklist(t->wl, strlen(t->wl)) ||
			    canon_code(t, ss_map_get(v, "share_code")) != 0)
				sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		}
	}
	answered(op);
}

static void
start_resolve(sc_op *op)
{
	ss_pack *p = sh_authz_begin(op->s, "authz.resolve", ss_call_id(op->c));

	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", op->user);
	ss_pack_kv_cstr(p, "worklist", op->wl);
	ss_pack_key(p, "targets");
	msgpack_pack_object(&p->pk, *op->targets);
	op->slot[0] = (sc_slot){op, -1};
	sh_fan_sent(&op->fan, sh_authz_send(op->s, on_resolve, &op->slot[0]));
}

/* --- SC_STUDY ------------------------------------------------------- */

static void
on_study(int err, redisReply *r, void *arg)
{
	sc_op *op = ((sc_slot *)arg)->op;

	if (!sh_fan_redis_ok(&op->fan, err, r)) {
		answered(op);
		return;
	}
	if (r->type == REDIS_REPLY_NIL) {
		sh_fan_err(&op->fan, SS_ENOTFOUND,
		           "the worklist does not hold that study");
	} else if (r->type != REDIS_REPLY_STRING ||
	           (op->blob = malloc(r->len)) == NULL) {
		sh_fan_err(&op->fan,
		           r->type == REDIS_REPLY_STRING ? SS_ENOMEM
		                                         : SS_EINTERNAL,
		           NULL);
	} else {
		memcpy(op->blob, r->str, r->len);
		op->bloblen = r->len;
		if (sh_study_open(&op->s->seal, op->uid, op->blob, op->bloblen,
		                  &op->st) != 0) {
			ss_error("study.corrupt", ss_call_id(op->c),
			         "study_uid", op->uid, NULL);
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		}
	}
	answered(op);
}

static void
start_study(sc_op *op)
{
	char k[SH_KEY_MAX];

	if (sh_key_wl(k, op->wl, "studies") != 0) {
		sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		return;
	}
	op->slot[0] = (sc_slot){op, -1};
	sh_fan_sent(&op->fan, ss_redis_cmd(op->s->redis, on_study, &op->slot[0],
	                                   "HGET %s %s", k, op->uid));
}

/* Targets that do the same thing are done once, by the first of them. */
static void
dedupe(sc_op *op)
{
	for (int i = 0; i < op->n; i++) {
		sc_target *t = &op->t[i];

		t->first = i;
		for (int j = 0; j < i; j++) {
			sc_target *u = &op->t[j];
			if (u->invite == t->invite &&
			    strcmp(t->invite ? u->email : u->wl,
			           t->invite ? t->email : t->wl) == 0) {
				t->first = j;
				break;
			}
		}
	}
}

/* --- SC_INVITE ------------------------------------------------------ */

static void
on_invite(int err, redisReply *r, void *arg)
{
	sc_slot *sl = arg;
	sc_op *op = sl->op;
	sc_target *t = &op->t[sl->i];

	if (!sh_fan_redis_ok(&op->fan, err, r)) {
		answered(op);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
	} else if (strcmp(r->element[0]->str, "registered") == 0 &&
	           r->elements == 2 &&
	           r->element[1]->type == REDIS_REPLY_STRING) {
		/* The address registered after authz's answer: deliver to
		 * its personal worklist instead. */
		snprintf(t->wl, sizeof t->wl, "user:%.*s",
		         (int)r->element[1]->len, r->element[1]->str);
		if (!sh_valid_worklist(t->wl, strlen(t->wl))) {
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		} else {
			t->invite = false;
			for (int j = sl->i + 1; j < op->n; j++)
				if (op->t[j].first == sl->i) {
					op->t[j].invite = false;
					memcpy(op->t[j].wl, t->wl,
					       sizeof t->wl);
				}
		}
	} else if (strcmp(r->element[0]->str, "ok") != 0) {
		sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
	}
	answered(op);
}

static int
send_invite(sc_op *op, int i)
{
	sc_target *t = &op->t[i];
	const sh_settings *cfg = op->s->cfg;
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX];
	ss_pack rec;
	ss_argv a;
	int rv;

	if ((rv = ss_token_new(t->token)) != 0 ||
	    (rv = ss_token_hash(cfg->token_key, strlen(cfg->token_key),
	                        SH_TOKEN_PURPOSE, t->token, SS_TOKEN_LEN,
	                        t->token_hash)) != 0 ||
	    sh_key_mail(k1, op->s->patient_key, t->email, "inv") != 0 ||
	    sh_key_mail(k2, op->s->patient_key, t->email, "pending") != 0)
		return rv != 0 ? rv : SS_EINTERNAL;
	/* What registration needs to deliver it later. */
	ss_pack_init(&rec);
	msgpack_pack_map(&rec.pk, 5);
	ss_pack_kv_cstr(&rec, "study_uid", op->uid);
	ss_pack_kv_cstr(&rec, "from", op->wl);
	ss_pack_kv_cstr(&rec, "by", op->user);
	ss_pack_kv_int(&rec, "at", op->now);
	ss_pack_kv_cstr(&rec, "message", op->message);
	ss_argv_init(&a);
	ss_argv_pushs(&a, k1);
	ss_argv_pushs(&a, k2);
	ss_argv_pushs(&a, t->token_hash);
	ss_argv_pushi(&a, op->now + cfg->invite_ttl_ms);
	ss_argv_pushi(&a, cfg->invite_ttl_ms);
	ss_argv_pushs(&a, op->uid);
	ss_argv_push(&a, rec.sb.data, rec.sb.size);
	ss_argv_pushi(&a, op->now);
	ss_pack_free(&rec);
	op->slot[i] = (sc_slot){op, i};
	if ((rv = ss_argv_status(&a)) == 0)
		rv = ss_redis_eval(op->s->redis, &sh_script_invite, on_invite,
		                   &op->slot[i], 2, a.n, a.v, a.lens);
	ss_argv_free(&a);
	return rv;
}

static void
start_invite(sc_op *op)
{
	for (int i = 0; i < op->n && op->fan.err == 0; i++)
		if (op->t[i].invite && op->t[i].first == i)
			sh_fan_sent(&op->fan, send_invite(op, i));
}

/* --- SC_DELIVER ----------------------------------------------------- */

static void
on_deliver(int err, redisReply *r, void *arg)
{
	sc_slot *sl = arg;
	sc_op *op = sl->op;

	if (sh_fan_redis_ok(&op->fan, err, r)) {
		if (r->type != REDIS_REPLY_INTEGER)
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		else {
			op->t[sl->i].changed = r->integer == 1;
			op->t[sl->i].made = true;
		}
	}
	answered(op);
}

static void
on_token(int err, redisReply *r, void *arg)
{
	sc_slot *sl = arg;
	sc_op *op = sl->op;

	if (sh_fan_redis_ok(&op->fan, err, r)) {
		if (r->type != REDIS_REPLY_STATUS)
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		else
			op->t[sl->i].made = true;
	}
	answered(op);
}

static void
start_deliver(sc_op *op)
{
	char k[SH_KEY_MAX], ttl[24];

	snprintf(ttl, sizeof ttl, "%lld", (long long)op->s->cfg->invite_ttl_ms);
	for (int i = 0; i < op->n && op->fan.err == 0; i++) {
		sc_target *t = &op->t[i];

		if (t->first != i)
			continue;
		op->slot[i] = (sc_slot){op, i};
		if (!t->invite) {
			sh_fan_sent(&op->fan,
			            sh_store_deliver(op->s, t->wl, &op->st,
			                             op->blob, op->bloblen,
			                             on_deliver, &op->slot[i]));
		} else if (sh_key_token(k, t->token_hash) == 0) {
			/* Only the token's keyed hash is stored. */
			sh_fan_sent(
			    &op->fan,
			    ss_redis_cmd(op->s->redis, on_token, &op->slot[i],
			                 "SET %s %s PX %s", k, t->email, ttl));
		} else {
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		}
	}
}

/* --- SC_PEOPLE and SC_ORG ------------------------------------------- */

static bool
any_invite(const sc_op *op)
{
	for (int i = 0; i < op->n; i++)
		if (op->t[i].invite)
			return true;
	return false;
}

/* A user whose personal worklist just got the study, and who is not the
 * sharer, is told by email (--notices). */
static bool
wants_notice(const sc_op *op, int i)
{
	const sc_target *t = &op->t[i];

	return op->s->cfg->notices && t->first == i && !t->invite &&
	       t->changed && strncmp(t->wl, "user:", 5) == 0 &&
	       strcmp(t->wl + 5, op->user) != 0;
}

static void
on_person(int err, const ss_msg *reply, void *arg)
{
	sc_slot *sl = arg;
	sc_op *op = sl->op;
	const msgpack_object *active;
	int rv = sh_authz_err(err, reply);

	if (sl->i < 0) {
		if (rv != 0)
			sh_fan_err(&op->fan,
			           rv == SS_ENOTFOUND ? SS_EFORBIDDEN : rv,
			           NULL);
		else {
			body_str(reply, "name", op->sharer_name,
			         sizeof op->sharer_name);
			body_str(reply, "organisation", op->sharer_org,
			         sizeof op->sharer_org);
			body_str(reply, "email", op->sharer_email,
			         sizeof op->sharer_email);
			if (!ss_mail_addr_ok(op->sharer_email,
			                     strlen(op->sharer_email)))
				op->sharer_email[0] = '\0';
		}
	} else if (rv == 0) {
		sc_target *t = &op->t[sl->i];
		active = ss_map_get(reply->body, "active");
		if (active != NULL && active->type == MSGPACK_OBJECT_BOOLEAN &&
		    active->via.boolean) {
			body_str(reply, "email", t->notice_to,
			         sizeof t->notice_to);
		}
	} else {
		/* A notice is a courtesy: the share stands without it. */
		ss_warn("share.notice_skipped", ss_call_id(op->c), "error",
		        ss_err_word(rv), NULL);
	}
	answered(op);
}

static void
start_people(sc_op *op)
{
	bool notices = false;
	ss_pack *p;

	for (int i = 0; i < op->n; i++)
		notices |= wants_notice(op, i);
	if (!notices && !any_invite(op))
		return;
	p = sh_authz_begin(op->s, "authz.user.get", ss_call_id(op->c));
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "user", op->user);
	op->slot[op->n] = (sc_slot){op, -1};
	sh_fan_sent(&op->fan,
	            sh_authz_send(op->s, on_person, &op->slot[op->n]));
	for (int i = 0; i < op->n && op->fan.err == 0; i++) {
		if (!wants_notice(op, i))
			continue;
		p = sh_authz_begin(op->s, "authz.user.get", ss_call_id(op->c));
		msgpack_pack_map(&p->pk, 1);
		ss_pack_kv_cstr(p, "user", op->t[i].wl + 5);
		op->slot[i] = (sc_slot){op, i};
		sh_fan_sent(&op->fan,
		            sh_authz_send(op->s, on_person, &op->slot[i]));
	}
}

static void
on_org(int err, const ss_msg *reply, void *arg)
{
	sc_op *op = ((sc_slot *)arg)->op;

	/* Without the name the invitation still goes out. */
	if (sh_authz_err(err, reply) == 0)
		body_str(reply, "name", op->org_name, sizeof op->org_name);
	answered(op);
}

static void
start_org(sc_op *op)
{
	char wl[SH_WL_MAX + 1];
	ss_pack *p;

	if (!any_invite(op) || op->sharer_org[0] == '\0')
		return;
	snprintf(wl, sizeof wl, "organisation:%s", op->sharer_org);
	p = sh_authz_begin(op->s, "authz.worklist.info", ss_call_id(op->c));
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "worklist", wl);
	op->slot[0] = (sc_slot){op, -1};
	sh_fan_sent(&op->fan, sh_authz_send(op->s, on_org, &op->slot[0]));
}

/* --- SC_MAIL -------------------------------------------------------- */

static void
on_mail(int err, redisReply *r, void *arg)
{
	sc_slot *sl = arg;
	sc_op *op = sl->op;
	const char *why;

	if (op->t[sl->i].invite) {
		(void)sh_fan_redis_ok(&op->fan, err, r);
	} else if ((why = ss_redis_refused(err, r)) != NULL) {
		ss_warn("share.notice_failed", ss_call_id(op->c), "error", why,
		        NULL);
	}
	answered(op);
}

static int
send_mail(sc_op *op, int i)
{
	sc_target *t = &op->t[i];
	char url[1024], exp[SS_MAIL_TIME_MAX];
	const char *vars[14];
	ss_mail m = {0};
	int n;

	if (t->invite) {
		n = snprintf(url, sizeof url, "%s/register?invite=%s",
		             op->s->cfg->public_url, t->token);
		if (n < 0 || (size_t)n >= sizeof url)
			return SS_EINTERNAL;
		vars[0] = "sharer_name";
		vars[1] = op->sharer_name;
		/* The template shows "Alice Adams (<organisation>)". */
		vars[2] = "organisation";
		vars[3] = op->org_name[0]     ? op->org_name
		          : op->sharer_org[0] ? op->sharer_org
		                              : "studyshare";
		vars[4] = "message";
		vars[5] = op->message;
		vars[6] = "register_url";
		vars[7] = url;
		vars[8] = "study_description";
		vars[9] = op->st.description;
		/* When the registration link ends (the token's TTL, set in
		 * send_invite from the same now). */
		ss_mail_time((op->now + op->s->cfg->invite_ttl_ms) / 1000, exp);
		vars[10] = "expires_at";
		vars[11] = exp;
		vars[12] = NULL;
		m.template = "share.invitation";
		m.to = t->email;
		m.bounce_to = op->sharer_email;
	} else {
		/* A notice is only ever about the recipient's own personal
		 * worklist (wants_notice), which the template says in words:
		 * it has no name to show. */
		vars[0] = "sharer_name";
		vars[1] = op->sharer_name;
		vars[2] = "message";
		vars[3] = op->message;
		vars[4] = "study_description";
		vars[5] = op->st.description;
		/* where to open it: the web UI, which starts at the
		 * recipient's worklists */
		vars[6] = "app_url";
		vars[7] = op->s->cfg->public_url;
		vars[8] = NULL;
		m.template = "share.notice";
		m.to = t->notice_to;
	}
	m.vars = vars;
	op->slot[i] = (sc_slot){op, i};
	n = ss_mailq_push(op->s->redis, &op->s->mail, &m, on_mail, &op->slot[i],
	                  NULL);
	sodium_memzero(url, sizeof url);
	return n;
}

static void
start_mail(sc_op *op)
{
	for (int i = 0; i < op->n && op->fan.err == 0; i++) {
		sc_target *t = &op->t[i];
		int rv;

		if (t->first != i || (!t->invite && t->notice_to[0] == '\0'))
			continue;
		rv = send_mail(op, i);
		if (rv != 0 && !t->invite) {
			ss_warn("share.notice_failed", ss_call_id(op->c),
			        "error", ss_err_word(rv), NULL);
			continue;
		}
		sh_fan_sent(&op->fan, rv);
	}
}

/* --- SC_RECORD ------------------------------------------------------ */

static void
on_record(int err, redisReply *r, void *arg)
{
	sc_op *op = ((sc_slot *)arg)->op;

	(void)sh_fan_redis_ok(&op->fan, err, r);
	answered(op);
}

static const char *
status_of(const sc_target *t)
{
	return t->invite ? "invited" : "delivered";
}

/* The audit detail of one target, as JSON text (malloc'd). */
static char *
audit_detail(const sc_target *t, const sc_target *first)
{
	json_t *d = json_object(), *tj = ss_mp_to_json(t->obj);
	char *s = NULL;

	if (d != NULL && tj != NULL &&
	    json_object_set_new(d, "share_id", json_string(t->share_id)) == 0 &&
	    json_object_set(d, "target", tj) == 0 &&
	    json_object_set_new(d, "to",
	                        first->invite ? json_null()
	                                      : json_string(first->wl)) == 0 &&
	    json_object_set_new(d, "status", json_string(status_of(first))) ==
	        0 &&
	    json_object_set_new(d, "changed",
	                        json_boolean(t == first && t->changed)) == 0)
		s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(tj);
	json_decref(d);
	return s;
}

/* Only what was made is recorded: after a failure in SC_DELIVER, some
 * targets may not have been. */
static bool
recorded(const sc_op *op, int i)
{
	return op->t[op->t[i].first].made;
}

static void
start_record(sc_op *op)
{
	const char **recs = calloc((size_t)op->n, sizeof *recs);
	size_t *lens = calloc((size_t)op->n, sizeof *lens);
	ss_pack *packs = calloc((size_t)op->n, sizeof *packs);
	int i, m = 0;

	if (recs == NULL || lens == NULL || packs == NULL) {
		sh_fan_err(&op->fan, SS_ENOMEM, NULL);
		goto done;
	}
	for (i = 0; i < op->n; i++)
		ss_pack_init(&packs[i]);
	for (i = 0; i < op->n; i++) {
		sc_target *t = &op->t[i], *f = &op->t[t->first];
		if (!recorded(op, i))
			continue;
		sh_record r = {
		    .id = t->share_id,
		    .at_ms = op->now,
		    .by = op->user,
		    .from = op->wl,
		    .target = t->obj,
		    .worklist = f->invite ? NULL : f->wl,
		    .status = status_of(f),
		    .changed = t == f && t->changed,
		};

		sh_record_pack(&packs[i], &r);
		recs[m] = packs[i].sb.data;
		lens[m++] = packs[i].sb.size;
	}
	if (m == 0)
		goto done;
	op->slot[op->n] = (sc_slot){op, -1};
	sh_fan_sent(&op->fan, sh_history_append(op->s, op->uid, m, recs, lens,
	                                        on_record, &op->slot[op->n]));
	for (i = 0; i < op->n && op->fan.err == 0; i++) {
		if (!recorded(op, i))
			continue;
		char *detail = audit_detail(&op->t[i], &op->t[op->t[i].first]);
		ss_audit a = {
		    .actor = op->user,
		    .action = "share.create",
		    .object = op->uid,
		    .worklist = op->wl,
		    .detail = detail,
		    .addr = op->addr,
		};

		if (detail == NULL) {
			sh_fan_err(&op->fan, SS_ENOMEM, NULL);
			break;
		}
		op->slot[i] = (sc_slot){op, i};
		sh_fan_sent(&op->fan, ss_audit_append(op->s->redis, "share", &a,
		                                      on_record, &op->slot[i]));
		free(detail);
	}
done:
	for (i = 0; packs != NULL && i < op->n; i++)
		ss_pack_free(&packs[i]);
	free(packs);
	free(recs);
	free(lens);
}

/* --- the reply and the event ---------------------------------------- */

static void
pack_shares(const sc_op *op, ss_pack *p, bool event)
{
	msgpack_pack_array(&p->pk, (uint32_t)op->n);
	for (int i = 0; i < op->n; i++) {
		const sc_target *f = &op->t[op->t[i].first];

		msgpack_pack_map(&p->pk, f->invite && !event ? 2 : 3);
		ss_pack_key(p, "target");
		msgpack_pack_object(&p->pk, *op->t[i].obj);
		if (!f->invite || event)
			ss_pack_kv_cstr(p, "worklist",
			                f->invite ? NULL : f->wl);
		ss_pack_kv_cstr(p, "status", status_of(f));
	}
}

static void
publish(sc_op *op)
{
	char id[SS_MAX_ID_LEN + 1], at[SH_TIME_LEN + 1];
	ss_pack p;

	if (op->s->pub == NULL)
		return;
	ss_req_new_id(id);
	sh_time_fmt(op->now, at);
	ss_pack_init(&p);
	ss_pack_request(&p, "study.shared", id);
	msgpack_pack_map(&p.pk, 5);
	ss_pack_kv_cstr(&p, "study_uid", op->uid);
	ss_pack_kv_cstr(&p, "from", op->wl);
	ss_pack_kv_cstr(&p, "by", op->user);
	ss_pack_kv_cstr(&p, "at", at);
	ss_pack_key(&p, "shares");
	pack_shares(op, &p, true);
	(void)ss_pub_send(op->s->pub, "study.shared", &p);
	ss_pack_free(&p);
}

static void
done(sc_op *op)
{
	int invited = 0;
	ss_pack *p;

	for (int i = 0; i < op->n; i++)
		invited += op->t[i].first == i && op->t[i].invite;
	ss_metric_add(m_shares, (uint64_t)op->n);
	ss_metric_add(m_invites, (uint64_t)invited);
	ss_info("study.shared", ss_call_id(op->c), "study_uid", op->uid, "from",
	        op->wl, "user", op->user, NULL);
	/* The event first: the targets are the request's objects, which
	 * answering frees with the call. */
	publish(op);
	p = ss_call_reply_ok(op->c);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, "shares");
	pack_shares(op, p, false);
	ss_call_reply_end(op->c);
	op_free(op);
}

/* Runs the steps in order; a step that sends nothing is passed at once.
 * A failure from SC_DELIVER to SC_MAIL is kept, and the records of what
 * was made are written before it is answered. */
static void
run(sc_op *op)
{
	for (;;) {
		if (op->fan.err != 0 && op->err == 0 &&
		    op->step >= SC_DELIVER && op->step < SC_RECORD) {
			ss_warn("share.failed", ss_call_id(op->c), "study_uid",
			        op->uid, "error", ss_err_word(op->fan.err),
			        NULL);
			op->err = op->fan.err;
			snprintf(op->errmsg, sizeof op->errmsg, "%s",
			         op->fan.errmsg);
			op->fan.err = 0;
			op->fan.errmsg[0] = '\0';
			op->step = SC_MAIL; /* on to SC_RECORD */
		}
		if (op->fan.err != 0 ||
		    (op->err != 0 && op->step == SC_RECORD)) {
			/* The first failure is the answer; one of the
			 * records after it is logged on its own. */
			int err = op->err != 0 ? op->err : op->fan.err;
			const char *msg =
			    op->err != 0 ? op->errmsg : op->fan.errmsg;

			if (op->err != 0 && op->fan.err != 0)
				ss_warn("share.record_failed",
				        ss_call_id(op->c), "study_uid", op->uid,
				        "error", ss_err_word(op->fan.err),
				        NULL);
			else if (op->step > SC_STUDY && op->fan.err != 0)
				ss_warn("share.failed", ss_call_id(op->c),
				        "study_uid", op->uid, "error",
				        ss_err_word(op->fan.err), NULL);
			fail(op, err, msg[0] ? msg : NULL);
			return;
		}
		op->step++;
		op->fan.pending = 1; /* held while the step sends */
		switch (op->step) {
		case SC_RESOLVE:
			start_resolve(op);
			break;
		case SC_STUDY:
			start_study(op);
			break;
		case SC_INVITE:
			dedupe(op);
			start_invite(op);
			break;
		case SC_DELIVER:
			start_deliver(op);
			break;
		case SC_PEOPLE:
			start_people(op);
			break;
		case SC_ORG:
			start_org(op);
			break;
		case SC_MAIL:
			start_mail(op);
			break;
		case SC_RECORD:
			start_record(op);
			break;
		default:
			done(op);
			return;
		}
		if (--op->fan.pending > 0)
			return; /* the last answer runs the next step */
	}
}

void
sh_handle_create(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, SH_MAX_USER},
	    {"worklist", SS_F_STR, true, 1, SH_WL_MAX},
	    {"study_uid", SS_F_STR, true, 1, SH_UID_MAX},
	    {"targets", SS_F_ARRAY, true, 1, SH_MAX_TARGETS},
	    {"message", SS_F_STR, false, 0, SH_MAX_MESSAGE},
	    {"addr", SS_F_STR, false, 1, SH_MAX_ADDR},
	};
	const msgpack_object *f[6];
	sc_op *op;

	if (m_shares == NULL) {
		m_shares = ss_counter("studyshare_shares_total",
		                      "Share targets carried out.", NULL);
		m_invites = ss_counter("studyshare_invitations_total",
		                       "Email invitations created.", NULL);
	}
	if (sh_parse(c, body, spec, 6, f) != 0)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = arg;
	op->c = c;
	op->fan.reqid = ss_call_id(c);
	op->targets = f[3];
	op->n = (int)f[3]->via.array.size;
	op->now = sh_now_ms();
	(void)ss_obj_strcpy(f[0], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[1], op->wl, sizeof op->wl);
	(void)ss_obj_strcpy(f[2], op->uid, sizeof op->uid);
	if (f[4] != NULL)
		(void)ss_obj_strcpy(f[4], op->message, sizeof op->message);
	if (f[5] != NULL)
		(void)ss_obj_strcpy(f[5], op->addr, sizeof op->addr);
	if ((op->t = calloc((size_t)op->n, sizeof *op->t)) == NULL ||
	    (op->slot = calloc((size_t)op->n + 2, sizeof *op->slot)) == NULL) {
		fail(op, SS_ENOMEM, NULL);
		return;
	}
	if (!sh_valid_worklist(op->wl, strlen(op->wl))) {
		fail(op, SS_EBADREQ, "field 'worklist': expected <kind>:<id>");
		return;
	}
	if (!sh_valid_uid(op->uid, strlen(op->uid))) {
		fail(op, SS_EBADREQ, "field 'study_uid': expected a DICOM UID");
		return;
	}
	if (!sh_valid_message(op->message, strlen(op->message))) {
		fail(op, SS_EBADREQ,
		     "field 'message': expected UTF-8 text without control "
		     "characters");
		return;
	}
	for (int i = 0; i < op->n; i++) {
		op->t[i].obj = &f[3]->via.array.ptr[i];
		sh_share_id(op->t[i].share_id);
	}
	op->step = SC_START;
	run(op);
}
