/*
 * services/guestlink/create.c - guestlink.create: a guest link to a study
 * (API.md "Guest links").
 *
 *   {user, worklist, study_uid, max_uses?, expires_at? | expires_in?,
 *    password?, max_password_attempts?, email?, message?,
 *    view_notification?, include_priors?, password_is_dob?, addr?}
 *   -> the link object
 *
 * Every field is checked before anything is asked of anyone; a bad one is
 * refused naming it.  Then:
 *
 *   CR_CHECK   authz.check links.guest.create on the worklist
 *   CR_USER    authz.user.get of the creator (name for the recipient's
 *              email, address for the notifications)
 *   CR_LOOKUP  share.study.lookup: the study and its priors as the
 *              worklist holds them (not held: not_found); the birth date
 *              when the password is the date of birth; the view is frozen
 *   CR_HASH    Argon2id of HMAC(pepper, password) on a worker thread
 *   CR_INDEX   the id into the study's index (first, so that a link that
 *              exists is always listed and can be deleted)
 *   CR_STORE   the link, one script (an id taken already: a fresh token,
 *              at most GL_STORE_TRIES times)
 *   CR_MAIL    the recipient's email on notify:jobs (never the password),
 *              with the audit entry
 *
 * and the reply.  A failure before CR_STORE leaves at most an index entry
 * without its link, which the listing skips and drops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/errors.h"
#include "runtime/argv.h"
#include "runtime/log.h"
#include "runtime/mailq.h"
#include "runtime/passwd.h"
#include "services/guestlink/guestlink.h"

typedef enum cr_step {
	CR_CHECK,
	CR_USER,
	CR_LOOKUP,
	CR_HASH,
	CR_INDEX,
	CR_STORE,
	CR_MAIL,
} cr_step;

typedef struct cr_op {
	gl_server *s;
	ss_call *c;
	cr_step step;
	char user[GL_MAX_USER + 1];
	char wl[GL_WL_MAX + 1];
	char uid[GL_UID_MAX + 1];
	char addr[GL_MAX_ADDR + 1];
	char email[GL_MAX_EMAIL + 1];
	char message[GL_MAX_MESSAGE + 1];
	char by_name[GL_MAX_NAME + 1];
	char by_email[GL_MAX_EMAIL + 1];
	char by_org[GL_MAX_NAME + 1]; /* the creator's organisation's name */
	int64_t now, exp_ms, max_uses, max_pw;
	bool notify, priors, dob, has_pw;
	char password[GL_PW_MAX + 1];
	size_t pwlen;
	char pwhash[SS_PASSWD_HASH_LEN];
	int hash_rv;
	unsigned char *view; /* packed {"study", "priors", "message"?} */
	size_t viewlen;
	char *puids;
	size_t npriors;
	char token[SS_TOKEN_LEN + 1];
	char th[SS_TOKEN_HASH_LEN + 1];
	char id[GL_ID_LEN + 1];
	unsigned char tok_sealed[SS_TOKEN_LEN + SS_SEAL_OVERHEAD];
	size_t tok_sealed_len;
	bool indexed_new; /* CR_INDEX added the id (it was not there) */
	int tries;
	bool mail_queued;
} cr_op;

static void
op_free(cr_op *op)
{
	sodium_memzero(op->password, sizeof op->password);
	sodium_memzero(op->token, sizeof op->token);
	free(op->view);
	free(op->puids);
	free(op);
}

static void
fail(cr_op *op, int err, const char *msg)
{
	if (err == SS_ETOOMANY)
		gl_reply_busy(op->c); /* the workers are full: retry */
	else
		ss_call_reply_err(op->c, err, msg);
	op_free(op);
}

/* ---- parsing ---------------------------------------------------------- */

enum {
	F_USER,
	F_WL,
	F_UID,
	F_MAX_USES,
	F_EXPIRES_AT,
	F_EXPIRES_IN,
	F_PASSWORD,
	F_MAX_PW,
	F_EMAIL,
	F_MESSAGE,
	F_NOTIFY,
	F_PRIORS,
	F_DOB,
	F_ADDR,
	F_N,
};

static const ss_field_spec spec[F_N] = {
    [F_USER] = {"user", SS_F_STR, true, 1, GL_MAX_USER},
    [F_WL] = {"worklist", SS_F_STR, true, 1, GL_WL_MAX},
    [F_UID] = {"study_uid", SS_F_STR, true, 1, GL_UID_MAX},
    [F_MAX_USES] = {"max_uses", SS_F_INT, false, 1, GL_MAX_USES},
    [F_EXPIRES_AT] = {"expires_at", SS_F_STR, false, 0, GL_TIME_ARG_MAX},
    [F_EXPIRES_IN] = {"expires_in", SS_F_INT, false, 1, 100LL * 365 * 86400},
    [F_PASSWORD] = {"password", SS_F_STR, false, GL_PW_MIN, GL_PW_MAX},
    [F_MAX_PW] = {"max_password_attempts", SS_F_INT, false, 1, GL_MAX_ATTEMPTS},
    [F_EMAIL] = {"email", SS_F_STR, false, 3, GL_MAX_EMAIL},
    [F_MESSAGE] = {"message", SS_F_STR, false, 0, GL_MAX_MESSAGE},
    [F_NOTIFY] = {"view_notification", SS_F_BOOL, false, 0, 0},
    [F_PRIORS] = {"include_priors", SS_F_BOOL, false, 0, 0},
    [F_DOB] = {"password_is_dob", SS_F_BOOL, false, 0, 0},
    [F_ADDR] = {"addr", SS_F_STR, false, 1, GL_MAX_ADDR},
};

static int
check_fields(cr_op *op, const msgpack_object **f, char *why, size_t whylen)
{
	if (!gl_valid_worklist(op->wl, strlen(op->wl))) {
		snprintf(why, whylen, "field 'worklist': expected <kind>:<id>");
		return SS_EBADREQ;
	}
	if (!gl_valid_uid(op->uid, strlen(op->uid))) {
		snprintf(why, whylen,
		         "field 'study_uid': expected a DICOM UID");
		return SS_EBADREQ;
	}
	if (f[F_EMAIL] != NULL &&
	    gl_parse_email(f[F_EMAIL], op->email, why, whylen) != 0)
		return SS_EBADREQ;
	if (f[F_MESSAGE] != NULL && gl_parse_text(f[F_MESSAGE], op->message,
	                                          "message", why, whylen) != 0)
		return SS_EBADREQ;
	if (f[F_ADDR] != NULL &&
	    gl_parse_addr(f[F_ADDR], op->addr, why, whylen) != 0)
		return SS_EBADREQ;
	if (f[F_PASSWORD] != NULL) {
		if (gl_parse_password(f[F_PASSWORD], op->password, &op->pwlen,
		                      why, whylen) != 0)
			return SS_EBADREQ;
		op->has_pw = true;
	}
	op->dob = f[F_DOB] != NULL && ss_obj_bool(f[F_DOB]) && !op->has_pw;
	if (f[F_MAX_PW] != NULL && !op->has_pw && !op->dob) {
		snprintf(why, whylen,
		         "field 'max_password_attempts': only "
		         "with a password");
		return SS_EBADREQ;
	}
	op->max_uses = f[F_MAX_USES] != NULL ? ss_obj_int(f[F_MAX_USES]) : 0;
	op->max_pw = f[F_MAX_PW] != NULL ? ss_obj_int(f[F_MAX_PW])
	                                 : op->s->cfg->default_attempts;
	op->notify = f[F_NOTIFY] != NULL && ss_obj_bool(f[F_NOTIFY]);
	op->priors = f[F_PRIORS] != NULL && ss_obj_bool(f[F_PRIORS]);
	return gl_parse_expiry(op->s->cfg, op->now, f[F_EXPIRES_AT],
	                       f[F_EXPIRES_IN], &op->exp_ms, why, whylen);
}

/* ---- the steps -------------------------------------------------------- */

static void on_peer(int err, const ss_msg *reply, void *arg);
static void on_redis(int err, redisReply *r, void *arg);

static int
ask_user(cr_op *op)
{
	ss_pack *p = gl_peer_begin(op->s, "authz.user.get", ss_call_id(op->c));

	op->step = CR_USER;
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "user", op->user);
	return gl_peer_send(op->s, op->s->authz, on_peer, op);
}

static int
ask_study(cr_op *op)
{
	ss_pack *p =
	    gl_peer_begin(op->s, "share.study.lookup", ss_call_id(op->c));

	op->step = CR_LOOKUP;
	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_cstr(p, "worklist", op->wl);
	ss_pack_kv_cstr(p, "study_uid", op->uid);
	return gl_peer_send(op->s, op->s->share, on_peer, op);
}

static void
copy_str(const msgpack_object *o, char *dst, size_t cap)
{
	if (o == NULL || ss_obj_strcpy(o, dst, cap) != 0)
		dst[0] = '\0';
}

static int
got_user(cr_op *op, const ss_msg *reply)
{
	copy_str(ss_map_get(reply->body, "name"), op->by_name,
	         sizeof op->by_name);
	copy_str(ss_map_get(reply->body, "email"), op->by_email,
	         sizeof op->by_email);
	copy_str(ss_map_get(reply->body, "organisation_name"), op->by_org,
	         sizeof op->by_org);
	if (op->by_email[0] != '\0' &&
	    !ss_mail_addr_ok(op->by_email, strlen(op->by_email)))
		op->by_email[0] = '\0';
	if (op->by_name[0] == '\0')
		snprintf(op->by_name, sizeof op->by_name, "%s", op->user);
	return ask_study(op);
}

/* The birth date as the password: "YYYYMMDD" exactly, as share keeps it. */
static int
dob_password(cr_op *op, const msgpack_object *study)
{
	const msgpack_object *pat = ss_map_get(study, "patient"), *bd = NULL;
	ss_str v;

	if (pat != NULL && pat->type == MSGPACK_OBJECT_MAP)
		bd = ss_map_get(pat, "birth_date");
	if (bd == NULL || bd->type != MSGPACK_OBJECT_STR)
		return SS_EUNPROC;
	v = ss_obj_str(bd);
	if (v.n != 8)
		return SS_EUNPROC;
	for (size_t i = 0; i < 8; i++)
		if (v.p[i] < '0' || v.p[i] > '9')
			return SS_EUNPROC;
	memcpy(op->password, v.p, v.n);
	op->pwlen = v.n;
	op->has_pw = true;
	return 0;
}

/* Freezes the study and (when asked) its priors: the view the link
 * grants, and the priors' uids for the listing. */
static int
freeze(cr_op *op, const msgpack_object *body)
{
	const msgpack_object *study = ss_map_get(body, "study");
	const msgpack_object *priors = ss_map_get(body, "priors");
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t cap = 1, off = 0;
	uint32_t n;

	if (study == NULL || study->type != MSGPACK_OBJECT_MAP ||
	    priors == NULL || priors->type != MSGPACK_OBJECT_ARRAY)
		return SS_EINTERNAL;
	n = op->priors ? priors->via.array.size : 0;
	if (n > GL_MAX_PRIORS)
		n = GL_MAX_PRIORS;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *u =
		    ss_map_get(&priors->via.array.ptr[i], "study_uid");
		if (u == NULL || u->type != MSGPACK_OBJECT_STR ||
		    !gl_valid_uid(u->via.str.ptr, u->via.str.size))
			return SS_EINTERNAL;
		cap += u->via.str.size + 1;
	}
	if ((op->puids = calloc(1, cap)) == NULL)
		return SS_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		ss_str u = ss_obj_str(
		    ss_map_get(&priors->via.array.ptr[i], "study_uid"));
		if (i > 0)
			op->puids[off++] = ',';
		memcpy(op->puids + off, u.p, u.n);
		off += u.n;
	}
	op->npriors = n;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* A map of its pairs (redeem.c splices them into the answer):
	 * the creator's message is shown with the study. */
	msgpack_pack_map(&pk, op->message[0] != '\0' ? 3 : 2);
	msgpack_pack_str_with_body(&pk, "study", 5);
	msgpack_pack_object(&pk, *study);
	msgpack_pack_str_with_body(&pk, "priors", 6);
	msgpack_pack_array(&pk, n);
	for (uint32_t i = 0; i < n; i++)
		msgpack_pack_object(&pk, priors->via.array.ptr[i]);
	if (op->message[0] != '\0') {
		msgpack_pack_str_with_body(&pk, "message", 7);
		msgpack_pack_str_with_body(&pk, op->message,
		                           strlen(op->message));
	}
	op->viewlen = sb.size;
	op->view = (unsigned char *)msgpack_sbuffer_release(&sb);
	msgpack_sbuffer_destroy(&sb);
	if (op->view == NULL)
		return SS_ENOMEM;
	if (op->dob && dob_password(op, study) != 0)
		return SS_EUNPROC;
	return 0;
}

/* Thread: worker. */
static void
hash_pw(void *arg)
{
	cr_op *op = arg;

	op->hash_rv =
	    gl_hash_password(op->s, op->password, op->pwlen, op->pwhash);
}

static int store_begin(cr_op *op);

static void
hashed(void *arg)
{
	cr_op *op = arg;
	int rv = op->hash_rv;

	gl_hash_done(op->s);
	if (rv == 0)
		rv = store_begin(op);
	if (rv != 0)
		fail(op, gl_err(rv), NULL);
}

/* A fresh token, its id, and the index entry (CR_INDEX). */
static int
store_begin(cr_op *op)
{
	gl_mint m = {.ids = gl_token_ids,
	             .wl = op->wl,
	             .index = op->uid,
	             .exp_ms = op->exp_ms,
	             .token = op->token,
	             .th = op->th,
	             .id = op->id,
	             .sealed = op->tok_sealed,
	             .cap = sizeof op->tok_sealed,
	             .sealed_len = &op->tok_sealed_len};

	op->step = CR_INDEX;
	return gl_mint_token(op->s, &m, on_redis, op);
}

/* CR_STORE: the link, with its view sealed under this id. */
static int
store(cr_op *op)
{
	gl_new_link n = {.id = op->id,
	                 .th = op->th,
	                 .tok = op->tok_sealed,
	                 .tok_len = op->tok_sealed_len,
	                 .study = op->uid,
	                 .wl = op->wl,
	                 .by = op->user,
	                 .by_email = op->by_email,
	                 .email = op->email,
	                 .msg = op->message,
	                 .puids = op->puids != NULL ? op->puids : "",
	                 .pw = op->has_pw ? op->pwhash : NULL,
	                 .at = op->now,
	                 .exp_ms = op->exp_ms,
	                 .max_uses = op->max_uses,
	                 .max_pw = op->max_pw,
	                 .dob = op->dob,
	                 .notify = op->notify,
	                 .priors = op->priors};
	unsigned char *sealed = NULL;
	int rv;

	if ((rv = gl_seal_view(op->s, op->id, op->view, op->viewlen, &sealed,
	                       &n.view_len)) != 0)
		return rv;
	n.view = sealed;
	op->step = CR_STORE;
	rv = gl_store_link(op->s, &n, on_redis, op);
	free(sealed);
	return rv;
}

/* The id was taken: drop our index entry (if it was ours) and retry. */
static int
collided(cr_op *op)
{
	char key[GL_KEY_MAX];

	ss_warn("link.id_collision", ss_call_id(op->c), "link", op->id, NULL);
	if (++op->tries >= GL_STORE_TRIES)
		return SS_EINTERNAL;
	if (op->indexed_new && gl_key_index(key, op->wl, op->uid) == 0)
		(void)ss_redis_cmd(op->s->redis, NULL, NULL, "ZREM %s %s", key,
		                   op->id);
	return store_begin(op);
}

static void
audit(cr_op *op)
{
	char exp[GL_TIME_LEN + 1];
	json_t *d;

	gl_time_fmt(op->exp_ms, exp);
	d = json_pack("{s:s, s:s, s:I, s:b, s:b, s:I, s:b, s:I, s:b, s:s?}",
	              "study_uid", op->uid, "expires_at", exp, "max_uses",
	              (json_int_t)op->max_uses, "has_password", op->has_pw,
	              "password_is_dob", op->dob, "max_password_attempts",
	              (json_int_t)(op->has_pw ? op->max_pw : 0),
	              "include_priors", op->priors, "priors",
	              (json_int_t)op->npriors, "view_notification", op->notify,
	              "email", op->email[0] != '\0' ? op->email : NULL);
	gl_audit(op->s, ss_call_id(op->c), op->user, "guestlink.create", op->id,
	         op->wl, d, op->addr);
}

static void reply(cr_op *op);

/* CR_MAIL: the recipient's email.  The link exists whatever happens
 * here; a mail that could not be queued is said in the reply. */
static void
mail(cr_op *op)
{
	char url[600], exp[SS_MAIL_TIME_MAX], uses[24] = "";
	/* A mail scanner that opens the link spends a use as a person
	 * would: the mail says how many there are.  Empty vars leave their
	 * template sections out. */
	const char *vars[] = {"sharer_name",
	                      op->by_name,
	                      "sharer_org",
	                      op->by_org,
	                      "url",
	                      url,
	                      "message",
	                      op->message,
	                      "expires_at",
	                      exp,
	                      "single_use",
	                      op->max_uses == 1 ? "1" : "",
	                      "max_uses",
	                      uses,
	                      "dob_password",
	                      op->dob ? "1" : "",
	                      NULL};
	ss_mail m = {.template = "guestlink.recipient",
	             .to = op->email,
	             .vars = vars,
	             .bounce_to = op->by_email};

	op->step = CR_MAIL;
	if (op->max_uses > 1)
		snprintf(uses, sizeof uses, "%lld", (long long)op->max_uses);
	snprintf(url, sizeof url, "%s/g/%s", op->s->cfg->public_url, op->token);
	ss_mail_time(op->exp_ms / 1000, exp);
	if (gl_mail(op->s, ss_call_id(op->c), &m, on_redis, op) != 0)
		reply(op);
	sodium_memzero(url, sizeof url);
}

static void
reply(cr_op *op)
{
	ss_pack *p = ss_call_reply_ok(op->c);
	gl_link l = {0};

	memcpy(l.id, op->id, sizeof l.id);
	l.tok.p = (const char *)op->tok_sealed;
	l.tok.n = op->tok_sealed_len;
	l.study.p = op->uid;
	l.study.n = strlen(op->uid);
	l.wl.p = op->wl;
	l.wl.n = strlen(op->wl);
	l.by.p = op->user;
	l.by.n = strlen(op->user);
	l.email.p = op->email;
	l.email.n = strlen(op->email);
	l.msg.p = op->message;
	l.msg.n = strlen(op->message);
	l.puids.p = op->puids != NULL ? op->puids : "";
	l.puids.n = strlen(l.puids.p);
	l.state.p = "active";
	l.state.n = 6;
	l.at_ms = op->now;
	l.exp_ms = op->exp_ms;
	l.max_uses = op->max_uses;
	l.max_pw = op->has_pw ? op->max_pw : 0;
	l.dob = op->dob;
	l.notify = op->notify;
	l.priors = op->priors;
	gl_link_pack(op->s, p, &l, op->now, -1, op->email[0] != '\0');
	if (op->email[0] != '\0')
		ss_pack_kv_bool(p, "email_queued", op->mail_queued);
	ss_metric_add(op->s->m_created, 1);
	ss_info("link.created", ss_call_id(op->c), "link", op->id, "worklist",
	        op->wl, NULL);
	ss_call_reply_end(op->c);
	op_free(op);
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	cr_op *op = arg;
	int rv = 0;

	if (err == 0 && r->type == REDIS_REPLY_ERROR) {
		ss_error("redis.error", ss_call_id(op->c), "error", r->str,
		         NULL);
		err = SS_EINTERNAL;
	}
	switch (op->step) {
	case CR_INDEX:
		if (err == 0)
			op->indexed_new =
			    r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		rv = err != 0 ? err : store(op);
		break;
	case CR_STORE:
		if (err != 0)
			rv = err;
		else if (r->type != REDIS_REPLY_INTEGER)
			rv = SS_EINTERNAL;
		else if (r->integer == 0)
			rv = collided(op);
		else {
			audit(op);
			if (op->email[0] == '\0')
				reply(op);
			else
				mail(op);
			return;
		}
		break;
	case CR_MAIL:
		op->mail_queued = err == 0;
		reply(op);
		return;
	default:
		rv = SS_EINTERNAL;
		break;
	}
	if (rv != 0)
		fail(op, gl_err(rv), NULL);
}

static void
on_peer(int err, const ss_msg *reply, void *arg)
{
	cr_op *op = arg;
	int rv = gl_peer_err(err, reply);

	if (rv == SS_EBADREQ)
		rv = SS_EINTERNAL; /* our request, not the caller's */
	switch (op->step) {
	case CR_CHECK:
		if (rv == 0 && !gl_allowed(reply)) {
			fail(op, SS_EFORBIDDEN,
			     "links.guest.create is needed on that worklist");
			return;
		}
		if (rv == 0)
			rv = ask_user(op);
		break;
	case CR_USER:
		if (rv == 0)
			rv = got_user(op, reply);
		break;
	case CR_LOOKUP:
		if (rv == SS_ENOTFOUND) {
			fail(op, SS_ENOTFOUND,
			     "the worklist does not hold that study");
			return;
		}
		if (rv == 0 && (rv = freeze(op, reply->body)) == SS_EUNPROC) {
			fail(op, SS_EUNPROC,
			     "the study has no patient birth date: give a "
			     "password");
			return;
		}
		if (rv != 0)
			break;
		if (op->has_pw) {
			op->step = CR_HASH;
			rv = gl_hash_submit(op->s, hash_pw, hashed, op);
		} else {
			rv = store_begin(op);
		}
		break;
	default:
		rv = SS_EINTERNAL;
		break;
	}
	if (rv != 0)
		fail(op, gl_err(rv), NULL);
}

void
gl_handle_create(ss_call *c, const msgpack_object *body, void *arg)
{
	const msgpack_object *f[F_N];
	char why[256];
	cr_op *op;
	int rv;

	if (gl_parse(c, body, spec, F_N, f) != 0)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = arg;
	op->c = c;
	op->now = gl_now_ms();
	(void)ss_obj_strcpy(f[F_USER], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[F_WL], op->wl, sizeof op->wl);
	(void)ss_obj_strcpy(f[F_UID], op->uid, sizeof op->uid);
	if (check_fields(op, f, why, sizeof why) != 0) {
		fail(op, SS_EBADREQ, why);
		return;
	}
	op->step = CR_CHECK;
	if ((rv = gl_authz_check(op->s, ss_call_id(c), op->user,
	                         "links.guest.create", op->wl, on_peer, op)) !=
	    0)
		fail(op, gl_err(rv), NULL);
}
