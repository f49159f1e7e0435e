/*
 * services/guestlink/redeem.c - guestlink.redeem: a guest opens a link
 * (API.md "Redeeming a guest link").
 *
 *   {token, password?, addr, user_agent, session?}
 *   -> {"study", "priors", "session", "expires_at"}     a use (or a reload
 *                                                        with a live session)
 *      {"password_required": true}                       no use counted
 *      {"wrong_password": true, "attempts_left": N}      one attempt counted
 *      not_found "no such guest link"                    every unusable link
 *      too_many_requests, retry_after 1                  every attempt left is
 *                                                        being checked now, or
 *                                                        --checks-max checks
 *                                                        are under way
 *
 * The gateway maps these 1:1: the first two are 200, wrong_password is
 * 401 with {"error": {"code": "unauthenticated", "message": "wrong
 * password"}, "attempts_left": N}, not_found is 404.  The envelope's error
 * map has no room for attempts_left, hence an ok reply.
 *
 *   RD_OPEN    one script decides everything it can: gone, a live session
 *              (no use), password required, or a use (session made); with
 *              a password it reserves an attempt and returns the hash.
 *              Without a password this is the whole redemption: one Redis
 *              round trip.
 *   RD_VERIFY  Argon2id on a worker thread
 *   RD_SETTLE  the second script: right -> refund, use, session; wrong ->
 *              counted, and the one that reaches the limit locks the link
 *
 * The audit entry, the view notification and the lock email go to other
 * Redis slots (the stream "audit", "notify:jobs"), which no script on the
 * link's slot may touch on Redis Cluster.  So the script returns what they
 * need, and they are sent after its answer, in the same loop turn as the
 * reply, without the reply waiting for them: the redemption's latency is
 * one round trip, and Redis receives them pipelined behind it.
 *
 * Upload links (upload_redeem.c) are redeemed by the same steps and
 * scripts: gl_redeem() takes a gl_redeem_kind for what differs (the
 * token's lookup hash, the success answer, the audit actions, the lock's
 * mail template, and whether the link shows a study, which is what the
 * view email and the guestlink.accessed event are about).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/mailq.h"
#include "runtime/passwd.h"
#include "services/guestlink/guestlink.h"

typedef enum rd_step {
	RD_OPEN,
	RD_VERIFY,
	RD_SETTLE,
} rd_step;

typedef struct rd_op {
	const gl_redeem_kind *k;
	gl_server *s;
	ss_call *c;
	rd_step step;
	int64_t now;
	char id[GL_ID_LEN + 1];
	char th[SS_TOKEN_HASH_LEN + 1];
	char k_link[GL_KEY_MAX], k_res[GL_KEY_MAX];
	char k_new[GL_KEY_MAX], k_old[GL_KEY_MAX];
	char sess[GL_SESSION_LEN + 1];     /* made for this call */
	char old_sess[GL_SESSION_LEN + 1]; /* presented, of this link */
	bool has_old;
	char res_id[33];
	bool pw_given;
	char password[GL_PW_MAX + 1];
	size_t pwlen;
	char *pwhash;
	bool pw_ok;
	char addr[GL_MAX_ADDR + 1];
	char ua[GL_UA_KEEP + 1];
} rd_op;

static void
op_free(rd_op *op)
{
	if (op->pw_given)
		op->s->checking--;
	sodium_memzero(op->password, sizeof op->password);
	sodium_memzero(op->sess, sizeof op->sess);
	sodium_memzero(op->old_sess, sizeof op->old_sess);
	free(op->pwhash);
	free(op);
}

void
gl_reply_gone(gl_server *s, ss_call *c)
{
	ss_metric_add(s->m_gone, 1);
	ss_call_reply_err(c, SS_ENOTFOUND, GL_GONE_MSG);
}

/* The one answer for every unusable link of this kind. */
static void
reply_gone(rd_op *op)
{
	ss_metric_add(op->s->m_gone, 1);
	ss_call_reply_err(op->c, SS_ENOTFOUND, op->k->gone_msg);
}

/* The view is the packed pairs of the link's kind ("study" and "priors",
 * written by create.c; "upload", by upload.c), authenticated by the seal.
 * Unsealed into *plain (NULL on failure), for close_view() to wipe. */
static int
open_view(gl_server *s, const char *id, const redisReply *view,
          unsigned char **plain, size_t *n)
{
	*plain = NULL;
	*n = 0;
	if (view == NULL || view->type != REDIS_REPLY_STRING)
		return SS_EINTERNAL;
	return gl_open_view(s, id, view->str, view->len, plain, n);
}

static void
close_view(unsigned char *plain, size_t n)
{
	if (plain == NULL)
		return;
	sodium_memzero(plain, n);
	free(plain);
}

/* A view is a map of at most 15 pairs (create.c since links carry
 * their message), or, made before, its kind's pairs alone (view_pairs)
 * without a map around them: a fixmap's byte never begins those. */
static bool
view_is_map(const unsigned char *plain, size_t n)
{
	return n > 0 && (plain[0] & 0xf0) == 0x80;
}

/* The view's pairs spliced in as they are, before "session" and
 * "expires_at". */
static void
reply_plain(ss_call *c, const unsigned char *plain, size_t n,
            uint32_t view_pairs, const char *sess, int64_t ttl_ms)
{
	char exp[GL_TIME_LEN + 1];
	ss_pack *p;

	if (view_is_map(plain, n)) {
		view_pairs = plain[0] & 0x0f;
		plain++;
		n--;
	}
	gl_time_fmt(gl_now_ms() + ttl_ms, exp);
	p = ss_call_reply_ok(c);
	msgpack_pack_map(&p->pk, view_pairs + 2);
	msgpack_sbuffer_write(&p->sb, (const char *)plain, n);
	ss_pack_kv_cstr(p, "session", sess);
	ss_pack_kv_cstr(p, "expires_at", exp);
	ss_call_reply_end(c);
}

int
gl_reply_view(gl_server *s, ss_call *c, const char *id, const redisReply *view,
              const char *sess, int64_t ttl_ms)
{
	unsigned char *plain;
	size_t n;
	int rv;

	if ((rv = open_view(s, id, view, &plain, &n)) != 0)
		return rv;
	reply_plain(c, plain, n, 2, sess, ttl_ms);
	close_view(plain, n);
	return 0;
}

/* ---- what a use or a lock sets off ----------------------------------- */

static int64_t
int_at(const redisReply *r, size_t i)
{
	return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER
	           ? r->element[i]->integer
	           : -1;
}

static void
info_at(const redisReply *r, size_t off, gl_info *i)
{
	ss_str *f[] = {&i->study, &i->wl, &i->notify, &i->by_email, &i->email};

	for (size_t k = 0; k < 5; k++) {
		const redisReply *e =
		    off + k < r->elements ? r->element[off + k] : NULL;
		f[k]->p =
		    e != NULL && e->type == REDIS_REPLY_STRING ? e->str : "";
		f[k]->n =
		    e != NULL && e->type == REDIS_REPLY_STRING ? e->len : 0;
	}
}

/* NUL-terminated copies of the info's strings, for the calls below. */
typedef struct info_c {
	char study[GL_UID_MAX + 1];
	char wl[GL_WL_MAX + 1];
	char by_email[GL_MAX_EMAIL + 1];
	char email[GL_MAX_EMAIL + 1];
	bool notify;
} info_c;

static void
cstr(ss_str v, char *dst, size_t cap)
{
	size_t n = v.n < cap - 1 ? v.n : cap - 1;

	memcpy(dst, v.p, n);
	dst[n] = '\0';
}

static void
info_copy(const redisReply *r, size_t off, info_c *c)
{
	gl_info i;

	info_at(r, off, &i);
	cstr(i.study, c->study, sizeof c->study);
	cstr(i.wl, c->wl, sizeof c->wl);
	cstr(i.by_email, c->by_email, sizeof c->by_email);
	cstr(i.email, c->email, sizeof c->email);
	c->notify = i.notify.n == 1 && i.notify.p[0] == '1';
}

/* The study's description from a link's unsealed view (create.c: the
 * map {"study": {...}, "priors": [...], ...}, or before it had a map its
 * first pair "study", {...}), for the creator's mails, which otherwise
 * name the link only by its id.  Empty when there is none (an upload
 * link's view, or a view that did not open). */
static void
description_of(const unsigned char *plain, size_t n, char out[GL_DESC_MAX + 1])
{
	msgpack_unpacked u;
	const msgpack_object *study = NULL;
	size_t off = 0;

	out[0] = '\0';
	if (plain == NULL)
		return;
	msgpack_unpacked_init(&u);
	if (view_is_map(plain, n)) {
		if (msgpack_unpack_next(&u, (const char *)plain, n, &off) ==
		    MSGPACK_UNPACK_SUCCESS)
			study = ss_map_get(&u.data, "study");
	} else if (msgpack_unpack_next(&u, (const char *)plain, n, &off) ==
	               MSGPACK_UNPACK_SUCCESS &&
	           ss_obj_streq(&u.data, "study") &&
	           msgpack_unpack_next(&u, (const char *)plain, n, &off) ==
	               MSGPACK_UNPACK_SUCCESS) {
		study = &u.data;
	}
	if (study != NULL) {
		ss_str v = ss_obj_str(ss_map_get(study, "description"));
		/* Whole or not at all (share stores at most GL_DESC_MAX bytes,
		 * so a cut would be in a character), and only what a mail var
		 * may hold: a value refused there would lose the whole mail. */
		if (v.n > 0 && v.n <= GL_DESC_MAX &&
		    ss_mail_value_ok(v.p, v.n)) {
			memcpy(out, v.p, v.n);
			out[v.n] = '\0';
		}
	}
	msgpack_unpacked_destroy(&u);
}

static void
publish(rd_op *op, const info_c *i)
{
	char at[GL_TIME_LEN + 1];
	ss_pack *p;

	if (!ss_pub_heard(op->s->pub)) {
		ss_pub_unheard(op->s->pub);
		return;
	}
	p = gl_peer_begin(op->s, "guestlink.accessed", ss_call_id(op->c));
	gl_time_fmt(op->now, at);
	msgpack_pack_map(&p->pk, 5);
	ss_pack_kv_cstr(p, "link_id", op->id);
	ss_pack_kv_cstr(p, "study_uid", i->study);
	ss_pack_kv_cstr(p, "worklist", i->wl);
	ss_pack_kv_cstr(p, "at", at);
	ss_pack_kv_cstr(p, "addr", op->addr);
	(void)ss_pub_send(op->s->pub, "guestlink.accessed", p);
	ss_pack_reset(p);
}

static void
used(rd_op *op, const redisReply *r, const unsigned char *plain, size_t n)
{
	char t[SS_MAIL_TIME_MAX];
	info_c i;
	json_int_t uses = r->element[4]->type == REDIS_REPLY_INTEGER
	                      ? r->element[4]->integer
	                      : 0;

	info_copy(r, 5, &i);
	ss_metric_add(op->s->m_used, 1);
	ss_debug(op->k->ev_used, ss_call_id(op->c), "link", op->id, NULL);
	gl_audit(
	    op->s, ss_call_id(op->c), NULL, op->k->a_use, op->id, i.wl,
	    op->k->study
	        ? json_pack("{s:s, s:I, s:s}", "study_uid", i.study, "uses",
	                    uses, "user_agent", op->ua)
	        : json_pack("{s:I, s:s}", "uses", uses, "user_agent", op->ua),
	    op->addr);
	/* An upload link shows no study: nothing was viewed. */
	if (!op->k->study)
		return;
	/* The script counted the notice against the link's bound: 0 held
	 * back, 2 the last of its window (scripts.c). */
	if (i.notify && i.by_email[0] != '\0' && int_at(r, 10) > 0) {
		char desc[GL_DESC_MAX + 1], ua[GL_UA_SUMMARY_MAX + 1];
		char quiet[SS_MAIL_TIME_MAX] = "", since[SS_MAIL_TIME_MAX] = "";
		char held[24] = "";
		const char *vars[] = {"link_id",
		                      op->id,
		                      "time",
		                      t,
		                      "addr",
		                      op->addr,
		                      "user_agent",
		                      ua,
		                      "recipient",
		                      i.email,
		                      "study_description",
		                      desc,
		                      "quiet_until",
		                      quiet,
		                      "held",
		                      held,
		                      "held_since",
		                      since,
		                      NULL};
		ss_mail m = {.template = "guestlink.viewed",
		             .to = i.by_email,
		             .vars = vars};
		ss_mail_time(op->now / 1000, t);
		if (int_at(r, 10) == 2)
			ss_mail_time((int_at(r, 13) +
			              op->s->cfg->view_notice_window_ms) /
			                 1000,
			             quiet);
		if (int_at(r, 11) > 0) {
			snprintf(held, sizeof held, "%lld",
			         (long long)int_at(r, 11));
			ss_mail_time(int_at(r, 12) / 1000, since);
		}
		description_of(plain, n, desc);
		gl_ua_summary(op->ua, ua);
		(void)gl_mail(op->s, ss_call_id(op->c), &m, NULL, NULL);
	}
	publish(op, &i);
}

/* A password_failed audit entry: the attempts counted so far, and key:
 * n (the attempts left, or how many were abandoned). */
static void
audit_failed(rd_op *op, const info_c *i, int64_t attempts, const char *key,
             int64_t n)
{
	gl_audit(op->s, ss_call_id(op->c), NULL, op->k->a_failed, op->id, i->wl,
	         op->k->study
	             ? json_pack("{s:s, s:I, s:I}", "study_uid", i->study,
	                         "attempts", (json_int_t)attempts, key,
	                         (json_int_t)n)
	             : json_pack("{s:I, s:I}", "attempts", (json_int_t)attempts,
	                         key, (json_int_t)n),
	         op->addr);
}

static void
failed_pw(rd_op *op, const redisReply *r, size_t off, int64_t attempts,
          int64_t left)
{
	info_c i;

	info_copy(r, off, &i);
	ss_metric_add(op->s->m_wrong, 1);
	ss_info("link.wrong_password", ss_call_id(op->c), "link", op->id, NULL);
	audit_failed(op, &i, attempts, "attempts_left", left);
}

/* Attempts whose guestlink died between reserving and settling count as
 * wrong passwords once their lease runs out; the attempt that finds them
 * audits them (abandoned: how many), so every counted attempt is in the
 * audit stream, those that lock the link too. */
static void
abandoned(rd_op *op, const redisReply *r, size_t off, int64_t n,
          int64_t attempts)
{
	info_c i;

	info_copy(r, off, &i);
	audit_failed(op, &i, attempts, "abandoned", n);
}

/* The lock's notice, on its way: confirmed (scripts.c, "lockmail") once
 * Redis took the creator's mail, so that no later redemption sends it
 * again; not confirmed, it goes out again after the lease. */
typedef struct lock_notice {
	gl_server *s;
	const char *template; /* the kind's, static */
	char key[GL_KEY_MAX];
} lock_notice;

static void
notice_confirm(gl_server *s, const char *key)
{
	(void)ss_redis_cmd(s->redis, NULL, NULL, "HDEL %s lockmail", key);
}

static void
notice_queued(int err, redisReply *rep, void *arg)
{
	lock_notice *n = arg;

	/* Unconfirmed when refused: the next redemption after the lease
	 * sends it again (scripts.c), if there is one. */
	if (!gl_lost(n->s->m_mail_failed, "mail.not_queued", n->template, err,
	             rep))
		notice_confirm(n->s, n->key);
	free(n);
}

static void
locked(rd_op *op, const redisReply *r, size_t off, int64_t attempts)
{
	char t[SS_MAIL_TIME_MAX], n[24], desc[GL_DESC_MAX + 1];
	char wlname[GL_MAX_NAME + 1];
	unsigned char *plain;
	size_t len;
	const char *vars[] = {"link_id",
	                      op->id,
	                      "time",
	                      t,
	                      "addr",
	                      op->addr,
	                      "attempts",
	                      n,
	                      "study_description",
	                      desc,
	                      "worklist_name",
	                      wlname,
	                      NULL};
	ss_mail m = {.template = op->k->lock_mail, .vars = vars};
	lock_notice *note;
	info_c i;

	info_copy(r, off, &i);
	ss_mail_time(op->now / 1000, t);
	snprintf(n, sizeof n, "%lld", (long long)attempts);
	ss_metric_add(op->s->m_locked, 1);
	ss_warn("link.locked", ss_call_id(op->c), "link", op->id, NULL);
	gl_audit(op->s, ss_call_id(op->c), NULL, op->k->a_lock, op->id, i.wl,
	         op->k->study
	             ? json_pack("{s:s, s:I}", "study_uid", i.study, "attempts",
	                         (json_int_t)attempts)
	             : json_pack("{s:I}", "attempts", (json_int_t)attempts),
	         op->addr);
	if (i.by_email[0] == '\0') {
		notice_confirm(op->s, op->k_link); /* nobody to mail */
		return;
	}
	m.to = i.by_email;
	/* the view follows the info and the count of abandoned attempts;
	 * an upload link's names no study */
	plain = NULL;
	len = 0;
	if (op->k->study && off + 6 < r->elements)
		(void)open_view(op->s, op->id, r->element[off + 6], &plain,
		                &len);
	description_of(plain, len, desc);
	close_view(plain, len);
	/* an upload link's worklist, as upload_files.c names it: only what
	 * a mail var may hold, else the mail names the link instead */
	wlname[0] = '\0';
	if (off + 7 < r->elements &&
	    r->element[off + 7]->type == REDIS_REPLY_STRING &&
	    r->element[off + 7]->len <= GL_MAX_NAME &&
	    ss_mail_value_ok(r->element[off + 7]->str,
	                     r->element[off + 7]->len))
		cstr((ss_str){r->element[off + 7]->str,
		              r->element[off + 7]->len},
		     wlname, sizeof wlname);
	if ((note = malloc(sizeof *note)) == NULL)
		return; /* sent again after the lease */
	note->s = op->s;
	note->template = m.template;
	memcpy(note->key, op->k_link, sizeof note->key);
	if (gl_mail(op->s, ss_call_id(op->c), &m, notice_queued, note) != 0)
		free(note);
}

/* ---- answers ----------------------------------------------------------- */

static void
reply_wrong(rd_op *op, int64_t left)
{
	ss_pack *p = ss_call_reply_ok(op->c);

	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_bool(p, "wrong_password", true);
	ss_pack_kv_int(p, "attempts_left", left);
	ss_call_reply_end(op->c);
}

static void
reply_pwreq(rd_op *op)
{
	ss_pack *p = ss_call_reply_ok(op->c);

	ss_metric_add(op->s->m_pwreq, 1);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_bool(p, "password_required", true);
	ss_call_reply_end(op->c);
}

/* {1, view, ttl, used, uses, info..., note...}: a use, or a live session
 * (without the note). */
static int
viewable(rd_op *op, const redisReply *r)
{
	bool fresh = int_at(r, 3) == 1;
	int64_t ttl = int_at(r, 2);
	unsigned char *plain;
	size_t n;
	int rv;

	if (r->elements != (fresh ? 14 : 10) || ttl <= 0)
		return SS_EINTERNAL;
	rv = open_view(op->s, op->id, r->element[1], &plain, &n);
	/* Before the reply, which frees the call: the use is counted in
	 * Redis already, so it is audited whatever the reply. */
	if (fresh)
		used(op, r, plain, n);
	else
		ss_metric_add(op->s->m_session, 1);
	if (rv == 0)
		reply_plain(op->c, plain, n, op->k->view_pairs,
		            fresh ? op->sess : op->old_sess, ttl);
	else
		ss_error("link.view_unreadable", ss_call_id(op->c), "link",
		         op->id, NULL);
	close_view(plain, n);
	return rv;
}

/* ---- the steps --------------------------------------------------------- */

static void on_redis(int err, redisReply *r, void *arg);

/* Thread: worker. */
static void
verify(void *arg)
{
	rd_op *op = arg;

	op->pw_ok = ss_passwd_verify(op->s->cfg->pepper, op->pwhash,
	                             op->password, op->pwlen);
	sodium_memzero(op->password, sizeof op->password);
}

/* The view-notice bound's maximum for the scripts: an upload link has no
 * view notices, so 0 counts none. */
static const char *
notice_max(const rd_op *op)
{
	return op->k->study ? op->s->vn_max : "0";
}

static int
settle(rd_op *op)
{
	char now[24], ttl[24], lease[24];
	const char *argv[10];

	snprintf(now, sizeof now, "%lld", (long long)(op->now = gl_now_ms()));
	snprintf(ttl, sizeof ttl, "%lld",
	         (long long)op->s->cfg->session_ttl_ms);
	snprintf(lease, sizeof lease, "%lld",
	         (long long)(op->now + GL_RESERVE_MS));
	argv[0] = op->k_link;
	argv[1] = op->k_res;
	argv[2] = op->k_new;
	argv[3] = now;
	argv[4] = ttl;
	argv[5] = op->res_id;
	argv[6] = op->pw_ok ? "1" : "0";
	argv[7] = lease;
	argv[8] = op->s->vn_window;
	argv[9] = notice_max(op);
	op->step = RD_SETTLE;
	return ss_redis_eval(op->s->redis, &gl_script_settle, on_redis, op, 3,
	                     10, argv, NULL);
}

static void
verified(void *arg)
{
	rd_op *op = arg;
	int rv = settle(op);

	if (rv != 0) {
		ss_call_reply_err(op->c, gl_err(rv), NULL);
		op_free(op);
	}
}

static int
opened(rd_op *op, const redisReply *r)
{
	switch (int_at(r, 0)) {
	case GL_GONE:
		reply_gone(op);
		return 0;
	case GL_VIEW:
		return viewable(op, r);
	case GL_PWREQ:
		reply_pwreq(op);
		return 0;
	case GL_CHECK:
		if (!op->pw_given || r->elements != 10 ||
		    r->element[1]->type != REDIS_REPLY_STRING)
			return SS_EINTERNAL;
		if (int_at(r, 3) > 0)
			abandoned(op, r, 5, int_at(r, 3), int_at(r, 4));
		if ((op->pwhash = strdup(r->element[1]->str)) == NULL)
			return SS_ENOMEM;
		/* A birth date is taken as people write it, year first. */
		if (r->element[2]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[2]->str, "1") == 0)
			gl_dob_typed(op->password, &op->pwlen);
		op->step = RD_VERIFY;
		return ss_work_submit(op->s->work, verify, verified, op) == 0
		           ? 1
		           : SS_EUNAVAIL;
	case GL_BUSY:
		/* The attempts left are all being checked: the link is not
		 * gone (one of them may be right), this one waits its turn. */
		ss_metric_add(op->s->m_busy, 1);
		ss_call_reply_err_retry(op->c, SS_ETOOMANY,
		                        "the link's password is being checked; "
		                        "retry in a moment",
		                        1);
		return 0;
	case GL_LOCKED:
		/* Attempts whose guestlink died were counted as wrong, and
		 * that reached the limit: audit them, lock, and this call is
		 * refused.  None counted: a lock's notice sent again. */
		if (int_at(r, 7) > 0)
			abandoned(op, r, 2, int_at(r, 7), int_at(r, 1));
		locked(op, r, 2, int_at(r, 1));
		reply_gone(op);
		return 0;
	default:
		return SS_EINTERNAL;
	}
}

static int
settled(rd_op *op, const redisReply *r)
{
	switch (int_at(r, 0)) {
	case GL_GONE:
		reply_gone(op);
		return 0;
	case GL_VIEW:
		return viewable(op, r);
	case GL_LOCKED:
		failed_pw(op, r, 2, int_at(r, 1), 0);
		locked(op, r, 2, int_at(r, 1));
		reply_wrong(op, 0);
		return 0;
	case GL_WRONG:
		failed_pw(op, r, 3, int_at(r, 2), int_at(r, 1));
		reply_wrong(op, int_at(r, 1));
		return 0;
	default:
		return SS_EINTERNAL;
	}
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	rd_op *op = arg;
	int rv;

	if (err != 0) {
		rv = gl_err(err);
	} else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
		if (r->type == REDIS_REPLY_ERROR)
			ss_error("redis.error", ss_call_id(op->c), "error",
			         r->str, NULL);
		rv = SS_EINTERNAL;
	} else {
		rv = op->step == RD_OPEN ? opened(op, r) : settled(op, r);
	}
	if (rv == 1)
		return; /* on to the worker */
	if (rv != 0)
		ss_call_reply_err(op->c, rv, NULL);
	op_free(op);
}

static int
open_link(rd_op *op)
{
	char now[24], ttl[24], lease[24];
	const char *argv[13];

	snprintf(now, sizeof now, "%lld", (long long)op->now);
	snprintf(ttl, sizeof ttl, "%lld",
	         (long long)op->s->cfg->session_ttl_ms);
	snprintf(lease, sizeof lease, "%lld",
	         (long long)(op->now + GL_RESERVE_MS));
	argv[0] = op->k_link;
	argv[1] = op->k_res;
	argv[2] = op->k_new;
	argv[3] = op->has_old ? op->k_old : op->k_link;
	argv[4] = now;
	argv[5] = ttl;
	argv[6] = op->th;
	argv[7] = op->pw_given ? "pw" : "open";
	argv[8] = op->has_old ? "1" : "0";
	argv[9] = op->res_id;
	argv[10] = lease;
	argv[11] = op->s->vn_window;
	argv[12] = notice_max(op);
	op->step = RD_OPEN;
	return ss_redis_eval(op->s->redis, &gl_script_redeem, on_redis, op, 4,
	                     13, argv, NULL);
}

/* The keys of this call; SS_ENOTFOUND when the token is not a token. */
static int
prepare(rd_op *op, const msgpack_object *tok, const msgpack_object *sess)
{
	unsigned char rid[16];
	ss_str t = ss_obj_str(tok);
	char sid[GL_ID_LEN + 1];
	int rv;

	if (op->k->token_ids(op->s, t.p, t.n, op->th, op->id) != 0)
		return SS_ENOTFOUND;
	if ((rv = gl_key_link(op->k_link, op->id, NULL)) != 0 ||
	    (rv = gl_key_link(op->k_res, op->id, ":res")) != 0 ||
	    (rv = gl_session_new(op->s, op->id, op->sess, op->k_new)) != 0)
		return rv;
	if (sess != NULL) {
		ss_str v = ss_obj_str(sess);
		/* A session of another link, or junk, is ignored: it is
		 * only a way to avoid counting a reload. */
		if (gl_session_key(op->s, v.p, v.n, sid, op->k_old) == 0 &&
		    strcmp(sid, op->id) == 0) {
			memcpy(op->old_sess, v.p, v.n);
			op->has_old = true;
		}
	}
	if (op->pw_given) {
		randombytes_buf(rid, sizeof rid);
		sodium_bin2hex(op->res_id, sizeof op->res_id, rid, sizeof rid);
	} else {
		op->res_id[0] = '-';
	}
	return 0;
}

void
gl_redeem(const gl_redeem_kind *k, gl_server *s, ss_call *c,
          const msgpack_object *body)
{
	static const ss_field_spec spec[] = {
	    {"token", SS_F_STR, true, 0, 0},
	    {"password", SS_F_STR, false, 1, GL_PW_MAX},
	    {"addr", SS_F_STR, true, 1, GL_MAX_ADDR},
	    {"user_agent", SS_F_STR, true, 0, GL_MAX_UA},
	    {"session", SS_F_STR, false, 0, 0},
	};
	const msgpack_object *f[5];
	ss_str v;
	rd_op *op;
	int rv;

	if (gl_parse(c, body, spec, 5, f) != 0)
		return;
	/* Checks past --checks-max would only queue for the workers (a
	 * flood of guesses from many addresses): refused before an attempt
	 * is reserved, so nothing is counted against the link. */
	if (f[1] != NULL && s->checking >= s->cfg->checks_max) {
		ss_metric_add(s->m_busy, 1);
		gl_reply_busy(c);
		return;
	}
	v = ss_obj_str(f[2]);
	if (!gl_valid_addr(v.p, v.n)) {
		ss_call_reply_err(c, SS_EBADREQ,
		                  "field 'addr': expected a client address");
		return;
	}
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->k = k;
	op->s = s;
	op->c = c;
	op->now = gl_now_ms();
	memcpy(op->addr, v.p, v.n);
	v = ss_obj_str(f[3]);
	gl_clean_ua(v.p, v.n, op->ua);
	if (f[1] != NULL) {
		v = ss_obj_str(f[1]);
		memcpy(op->password, v.p, v.n);
		op->pwlen = v.n;
		op->pw_given = true;
		s->checking++;
	}
	rv = prepare(op, f[0], f[4]);
	if (rv == SS_ENOTFOUND) {
		reply_gone(op);
		op_free(op);
		return;
	}
	if (rv == 0)
		rv = open_link(op);
	if (rv != 0) {
		ss_call_reply_err(c, gl_err(rv), NULL);
		op_free(op);
	}
}

static const gl_redeem_kind guest = {
    .gone_msg = GL_GONE_MSG,
    .token_ids = gl_token_ids,
    .view_pairs = 2,
    .ev_used = "link.used",
    .a_use = "guestlink.use",
    .a_failed = "guestlink.password_failed",
    .a_lock = "guestlink.lock",
    .lock_mail = "guestlink.locked",
    .study = true,
};

void
gl_handle_redeem(ss_call *c, const msgpack_object *body, void *arg)
{
	gl_redeem(&guest, arg, c, body);
}
