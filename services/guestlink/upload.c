/*
 * services/guestlink/upload.c - guest upload links: create, edit, list,
 * delete (API.md "Guest upload links").
 *
 *   guestlink.upload.create {user, worklist, max_uses?, expires_at? |
 *       expires_in?, password?, max_password_attempts?, email?, message?,
 *       notify_on_upload?, addr?}                          -> the link
 *   guestlink.upload.update {user, id, max_uses?, expires_at?, message?,
 *       notify_on_upload?, addr?}                          -> the link
 *   guestlink.upload.list   {user, worklist}       -> {"links": [...]},
 *                                                     newest first
 *   guestlink.upload.delete {user, id, addr?}      -> {"id", "status"}
 *
 * Every one needs links.upload.manage on the worklist.  An upload link is
 * a link record like a guest link's (README.md "Redis keys"), with
 * kind "upload", no study, and as its sealed view the pairs the upload
 * page needs ("upload": {id, worklist, message}; sealed again when the
 * message is edited).  Tokens, passwords,
 * attempts, sessions, expiry, deletion and the grace period are the guest
 * links' own (crypto.c, scripts.c), with one difference: the lookup hash
 * of an upload token has its own purpose (GL_UP_PURPOSE), so a guest
 * token never opens an upload link nor the other way round, while ids
 * share one space (the store script refuses a taken id).  The index of a
 * worklist's upload links is link:{ix:<worklist>:upload}.
 *
 * Steps of create: UP_CHECK (authz.check) -> UP_USER (authz.user.get:
 * the creator's address for upload notices) -> UP_NAME
 * (authz.worklist.info: the worklist's name, kept in the link as wlname
 * for the upload notices, which name it) -> UP_HASH (Argon2id on a
 * worker, when there is a password) -> UP_INDEX -> UP_STORE -> UP_MAIL
 * (upload.request on notify:jobs, sealed under the mail key, when email
 * is given; never the password) -> reply.
 * Update and delete: UP_READ (the link's kind and worklist) -> UP_CHECK
 * (refused: UP_MEMBER, authz.worklist.get: not_found to a non-member) ->
 * UP_REINDEX (an update with a new expiry: the index entry first) ->
 * UP_WRITE (one script) -> UP_REREAD (update: the link as it is now).
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
#include "services/guestlink/upload.h"

#define PERM        "links.upload.manage"
#define NEEDED      "links.upload.manage is needed on that worklist"
#define NEEDED_LINK "links.upload.manage is needed on the link's worklist"

/* KEYS: link, res  ARGV: now, then field/value pairs to set (any of max,
 * exp, purge, msg with view, notify) -> 0 no such upload link, 1 updated,
 * 2 ended (a deleted or expired link is not edited).  A new message comes
 * with the sealed view the upload page shows, so both change at once. */
ss_script gl_script_upload_update = {
    .name = "guestlink_upload_update",
    .src = "local f = redis.call('HMGET', KEYS[1], 'kind', 'state', 'exp')\n"
           "if f[1] ~= 'upload' then return 0 end\n"
           "if f[2] == 'deleted' or tonumber(f[3]) <= tonumber(ARGV[1]) "
           "then return 2 end\n"
           "local purge = nil\n"
           "for i = 2, #ARGV, 2 do\n"
           "  if ARGV[i] == 'purge' then purge = ARGV[i + 1] end\n"
           "end\n"
           "redis.call('HSET', KEYS[1], unpack(ARGV, 2))\n"
           "if purge then\n"
           "  redis.call('PEXPIREAT', KEYS[1], purge)\n"
           "  if redis.call('EXISTS', KEYS[2]) == 1 then\n"
           "    redis.call('PEXPIREAT', KEYS[2], purge)\n"
           "  end\n"
           "end\n"
           "return 1\n",
};

typedef enum up_step {
	UP_CHECK,
	UP_MEMBER,
	UP_USER,
	UP_NAME,
	UP_HASH,
	UP_INDEX,
	UP_STORE,
	UP_MAIL,
	UP_READ,
	UP_REINDEX,
	UP_WRITE,
	UP_REREAD,
	UP_LIST_INDEX,
	UP_LIST_LINKS,
} up_step;

typedef enum up_kind { K_CREATE, K_UPDATE, K_DELETE, K_LIST } up_kind;

/* A listed link, packed; bytes NULL when left out. */
typedef struct up_item {
	char *bytes;
	size_t len;
	int64_t at_ms; /* created: the list is newest first */
} up_item;

typedef struct up_op {
	gl_server *s;
	ss_call *c;
	up_kind kind;
	up_step step;
	int64_t now;
	char user[GL_MAX_USER + 1];
	char wl[GL_WL_MAX + 1];
	char addr[GL_MAX_ADDR + 1];
	char email[GL_MAX_EMAIL + 1];
	char message[GL_MAX_MESSAGE + 1];
	char by_email[GL_MAX_EMAIL + 1];
	char by_name[GL_MAX_NAME + 1];
	char by_org[GL_MAX_NAME + 1];  /* the creator's organisation's name */
	char wl_name[GL_MAX_NAME + 1]; /* "" when authz did not say */
	char id[GL_ID_LEN + 1];
	int64_t exp_ms, max_uses, max_pw;
	bool notify, has_pw, mail_queued;
	/* update: which fields were given */
	bool set_max, set_exp, set_msg, set_notify;
	char password[GL_PW_MAX + 1];
	size_t pwlen;
	char pwhash[SS_PASSWD_HASH_LEN];
	int hash_rv;
	char token[SS_TOKEN_LEN + 1];
	char th[SS_TOKEN_HASH_LEN + 1];
	unsigned char tok_sealed[SS_TOKEN_LEN + SS_SEAL_OVERHEAD];
	size_t tok_sealed_len;
	int tries;
	/* list */
	up_item *items;
	size_t n, pending;
	int list_err;
} up_op;

static void
op_free(up_op *op)
{
	sodium_memzero(op->password, sizeof op->password);
	sodium_memzero(op->token, sizeof op->token);
	for (size_t i = 0; op->items != NULL && i < op->n; i++)
		free(op->items[i].bytes);
	free(op->items);
	free(op);
}

static void
fail(up_op *op, int err, const char *msg)
{
	if (err == SS_ETOOMANY)
		gl_reply_busy(op->c); /* the workers are full: retry */
	else
		ss_call_reply_err(op->c, err, msg);
	op_free(op);
}

static up_op *
op_new(ss_call *c, void *arg, up_kind kind)
{
	up_op *op = calloc(1, sizeof *op);

	if (op == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return NULL;
	}
	op->s = arg;
	op->c = c;
	op->kind = kind;
	op->now = gl_now_ms();
	return op;
}

int
gl_upload_token_ids(gl_server *s, const char *tok, size_t n,
                    char th[SS_TOKEN_HASH_LEN + 1], char id[GL_ID_LEN + 1])
{
	char h[SS_TOKEN_HASH_LEN + 1];
	int rv;

	if ((rv = gl_token_hash(s, GL_H_UPLOAD, tok, n, th)) != 0 ||
	    (rv = gl_token_hash(s, GL_H_ID, tok, n, h)) != 0)
		return rv;
	memcpy(id, h, GL_ID_LEN);
	id[GL_ID_LEN] = '\0';
	return 0;
}

/* ---- the link object ------------------------------------------------- */

static void
kv_time(ss_pack *p, const char *k, int64_t ms)
{
	char t[GL_TIME_LEN + 1];

	gl_time_fmt(ms, t);
	ss_pack_kv_cstr(p, k, t);
}

static void
kv_opt_str(ss_pack *p, const char *k, ss_str v)
{
	ss_pack_key(p, k);
	if (v.n > 0)
		ss_pack_strn(p, v.p, v.n);
	else
		msgpack_pack_nil(&p->pk);
}

static void
kv_opt_int(ss_pack *p, const char *k, int64_t v)
{
	ss_pack_key(p, k);
	if (v > 0)
		msgpack_pack_int64(&p->pk, v);
	else
		msgpack_pack_nil(&p->pk);
}

void
gl_upload_pack(gl_server *s, ss_pack *p, const gl_link *l, int64_t now_ms,
               int queued)
{
	char tok[SS_TOKEN_LEN + 1] = "";
	char url[600];

	if (l->tok.n > 0 &&
	    gl_open_token(s, l->id, l->tok.p, l->tok.n, tok) != 0) {
		ss_error("link.token_unreadable", NULL, "link", l->id, NULL);
		tok[0] = '\0';
	}
	msgpack_pack_map(&p->pk, queued >= 0 ? 16 : 15);
	ss_pack_kv_cstr(p, "id", l->id);
	ss_pack_key(p, "url");
	if (tok[0] != '\0' &&
	    snprintf(url, sizeof url, "%s/u/%s", s->cfg->public_url, tok) <
	        (int)sizeof url)
		ss_pack_cstr(p, url);
	else
		msgpack_pack_nil(&p->pk);
	sodium_memzero(url, sizeof url);
	sodium_memzero(tok, sizeof tok);
	ss_pack_kv_strn(p, "worklist", l->wl.p, l->wl.n);
	ss_pack_kv_strn(p, "created_by", l->by.p, l->by.n);
	kv_time(p, "created_at", l->at_ms);
	kv_time(p, "expires_at", l->exp_ms);
	kv_opt_int(p, "max_uses", l->max_uses);
	ss_pack_kv_int(p, "uses", l->uses);
	kv_opt_int(p, "max_password_attempts", l->max_pw);
	ss_pack_kv_int(p, "password_attempts", l->fail);
	ss_pack_kv_bool(p, "has_password", l->max_pw > 0);
	kv_opt_str(p, "email", l->email);
	kv_opt_str(p, "message", l->msg);
	ss_pack_kv_bool(p, "notify_on_upload", l->notify);
	ss_pack_kv_cstr(p, "status", gl_link_status(l, now_ms));
	if (queued >= 0)
		ss_pack_kv_bool(p, "email_queued", queued != 0);
}

/* ---- parsing --------------------------------------------------------- */

enum {
	F_USER,
	F_WL, /* create, list: worklist; update, delete: id */
	F_MAX_USES,
	F_EXPIRES_AT,
	F_EXPIRES_IN,
	F_PASSWORD,
	F_MAX_PW,
	F_EMAIL,
	F_MESSAGE,
	F_NOTIFY,
	F_ADDR,
	F_N,
};

static const ss_field_spec create_spec[F_N] = {
    [F_USER] = {"user", SS_F_STR, true, 1, GL_MAX_USER},
    [F_WL] = {"worklist", SS_F_STR, true, 1, GL_WL_MAX},
    [F_MAX_USES] = {"max_uses", SS_F_INT, false, 1, GL_MAX_USES},
    [F_EXPIRES_AT] = {"expires_at", SS_F_STR, false, 0, GL_TIME_ARG_MAX},
    [F_EXPIRES_IN] = {"expires_in", SS_F_INT, false, 1, 100LL * 365 * 86400},
    [F_PASSWORD] = {"password", SS_F_STR, false, GL_PW_MIN, GL_PW_MAX},
    [F_MAX_PW] = {"max_password_attempts", SS_F_INT, false, 1, GL_MAX_ATTEMPTS},
    [F_EMAIL] = {"email", SS_F_STR, false, 3, GL_MAX_EMAIL},
    [F_MESSAGE] = {"message", SS_F_STR, false, 0, GL_MAX_MESSAGE},
    [F_NOTIFY] = {"notify_on_upload", SS_F_BOOL, false, 0, 0},
    [F_ADDR] = {"addr", SS_F_STR, false, 1, GL_MAX_ADDR},
};

/* update: the same table, id in place of worklist; fields that cannot be
 * edited (password, attempts, email, expires_in) are unknown, so refused. */
static const ss_field_spec update_spec[] = {
    {"user", SS_F_STR, true, 1, GL_MAX_USER},
    {"id", SS_F_STR, true, 1, GL_ID_ARG_MAX},
    {"max_uses", SS_F_INT, false, 1, GL_MAX_USES},
    {"expires_at", SS_F_STR, false, 0, GL_TIME_ARG_MAX},
    {"message", SS_F_STR, false, 0, GL_MAX_MESSAGE},
    {"notify_on_upload", SS_F_BOOL, false, 0, 0},
    {"addr", SS_F_STR, false, 1, GL_MAX_ADDR},
};

static int
check_create(up_op *op, const msgpack_object **f, char *why, size_t whylen)
{
	if (!gl_valid_worklist(op->wl, strlen(op->wl))) {
		snprintf(why, whylen, "field 'worklist': expected <kind>:<id>");
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
	if (f[F_MAX_PW] != NULL && !op->has_pw) {
		snprintf(why, whylen,
		         "field 'max_password_attempts': only with a password");
		return SS_EBADREQ;
	}
	op->max_uses = f[F_MAX_USES] != NULL ? ss_obj_int(f[F_MAX_USES]) : 0;
	op->max_pw = f[F_MAX_PW] != NULL ? ss_obj_int(f[F_MAX_PW])
	                                 : op->s->cfg->default_attempts;
	op->notify = f[F_NOTIFY] != NULL && ss_obj_bool(f[F_NOTIFY]);
	return gl_parse_expiry(op->s->cfg, op->now, f[F_EXPIRES_AT],
	                       f[F_EXPIRES_IN], &op->exp_ms, why, whylen);
}

/* ---- create ---------------------------------------------------------- */

static void on_peer(int err, const ss_msg *reply, void *arg);
static void on_redis(int err, redisReply *r, void *arg);

static int
check(up_op *op)
{
	op->step = UP_CHECK;
	return gl_authz_check(op->s, ss_call_id(op->c), op->user, PERM, op->wl,
	                      on_peer, op);
}

static int
ask_user(up_op *op)
{
	ss_pack *p = gl_peer_begin(op->s, "authz.user.get", ss_call_id(op->c));

	op->step = UP_USER;
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "user", op->user);
	return gl_peer_send(op->s, op->s->authz, on_peer, op);
}

static int named(up_op *op, int rv, const ss_msg *reply);

static int
ask_worklist(up_op *op)
{
	ss_pack *p =
	    gl_peer_begin(op->s, "authz.worklist.info", ss_call_id(op->c));
	int rv;

	op->step = UP_NAME;
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "worklist", op->wl);
	rv = gl_peer_send(op->s, op->s->authz, on_peer, op);
	/* Not sent (authz not connected): as unanswered, the link is made
	 * without the name. */
	return rv == 0 ? 0 : named(op, rv, NULL);
}

/* Thread: worker. */
static void
hash_pw(void *arg)
{
	up_op *op = arg;

	op->hash_rv =
	    gl_hash_password(op->s, op->password, op->pwlen, op->pwhash);
}

static int store_begin(up_op *op);

static void
hashed(void *arg)
{
	up_op *op = arg;
	int rv = op->hash_rv;

	gl_hash_done(op->s);
	if (rv == 0)
		rv = store_begin(op);
	if (rv != 0)
		fail(op, gl_err(rv), NULL);
}

static int
store_begin(up_op *op)
{
	gl_mint m = {.ids = gl_upload_token_ids,
	             .wl = op->wl,
	             .index = "upload",
	             .exp_ms = op->exp_ms,
	             .token = op->token,
	             .th = op->th,
	             .id = op->id,
	             .sealed = op->tok_sealed,
	             .cap = sizeof op->tok_sealed,
	             .sealed_len = &op->tok_sealed_len};

	op->step = UP_INDEX;
	return gl_mint_token(op->s, &m, on_redis, op);
}

/* The view a session grants: what the upload page shows. */
static int
make_view(up_op *op, unsigned char **out, size_t *outlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t ml = strlen(op->message);
	int rv;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_str_with_body(&pk, "upload", 6);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_str_with_body(&pk, op->id, GL_ID_LEN);
	msgpack_pack_str_with_body(&pk, "worklist", 8);
	msgpack_pack_str_with_body(&pk, op->wl, strlen(op->wl));
	msgpack_pack_str_with_body(&pk, "message", 7);
	if (ml > 0)
		msgpack_pack_str_with_body(&pk, op->message, ml);
	else
		msgpack_pack_nil(&pk);
	rv = gl_seal_view(op->s, op->id, sb.data, sb.size, out, outlen);
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static int
store(up_op *op)
{
	/* No study, no priors, no date of birth: the guest sends studies. */
	gl_new_link n = {.kind = "upload",
	                 .id = op->id,
	                 .th = op->th,
	                 .tok = op->tok_sealed,
	                 .tok_len = op->tok_sealed_len,
	                 .study = "",
	                 .wl = op->wl,
	                 .wl_name = op->wl_name,
	                 .by = op->user,
	                 .by_email = op->by_email,
	                 .email = op->email,
	                 .msg = op->message,
	                 .puids = "",
	                 .pw = op->has_pw ? op->pwhash : NULL,
	                 .at = op->now,
	                 .exp_ms = op->exp_ms,
	                 .max_uses = op->max_uses,
	                 .max_pw = op->max_pw,
	                 .notify = op->notify};
	unsigned char *sealed = NULL;
	int rv;

	if ((rv = make_view(op, &sealed, &n.view_len)) != 0)
		return rv;
	n.view = sealed;
	op->step = UP_STORE;
	rv = gl_store_link(op->s, &n, on_redis, op);
	free(sealed);
	return rv;
}

static void
created(up_op *op)
{
	char exp[GL_TIME_LEN + 1];
	gl_link l = {0};
	ss_pack *p;

	gl_time_fmt(op->exp_ms, exp);
	gl_audit(op->s, ss_call_id(op->c), op->user, "upload_link.create",
	         op->id, op->wl,
	         json_pack("{s:s, s:I, s:b, s:I, s:b, s:s?}", "expires_at", exp,
	                   "max_uses", (json_int_t)op->max_uses, "has_password",
	                   op->has_pw, "max_password_attempts",
	                   (json_int_t)(op->has_pw ? op->max_pw : 0),
	                   "notify_on_upload", op->notify, "email",
	                   op->email[0] != '\0' ? op->email : NULL),
	         op->addr);
	memcpy(l.id, op->id, sizeof l.id);
	l.tok.p = (const char *)op->tok_sealed;
	l.tok.n = op->tok_sealed_len;
	l.wl = (ss_str){op->wl, strlen(op->wl)};
	l.by = (ss_str){op->user, strlen(op->user)};
	l.email = (ss_str){op->email, strlen(op->email)};
	l.msg = (ss_str){op->message, strlen(op->message)};
	l.state = (ss_str){"active", 6};
	l.at_ms = op->now;
	l.exp_ms = op->exp_ms;
	l.max_uses = op->max_uses;
	l.max_pw = op->has_pw ? op->max_pw : 0;
	l.notify = op->notify;
	p = ss_call_reply_ok(op->c);
	gl_upload_pack(op->s, p, &l, op->now,
	               op->email[0] != '\0' ? op->mail_queued : -1);
	ss_info("upload_link.created", ss_call_id(op->c), "link", op->id,
	        "worklist", op->wl, NULL);
	ss_call_reply_end(op->c);
	op_free(op);
}

/* UP_MAIL: the upload link for the address it was made for.  The link
 * exists whatever happens here; a mail that could not be queued is said
 * in the reply (email_queued). */
static void
mail(up_op *op)
{
	char url[600], exp[SS_MAIL_TIME_MAX];
	const char *vars[] = {"sharer_name", op->by_name,     "sharer_org",
	                      op->by_org,    "url",           url,
	                      "message",     op->message,     "expires_at",
	                      exp,           "worklist_name", op->wl_name,
	                      NULL};
	ss_mail m = {.template = "upload.request",
	             .to = op->email,
	             .vars = vars,
	             .bounce_to = op->by_email};

	op->step = UP_MAIL;
	snprintf(url, sizeof url, "%s/u/%s", op->s->cfg->public_url, op->token);
	ss_mail_time(op->exp_ms / 1000, exp);
	if (gl_mail(op->s, ss_call_id(op->c), &m, on_redis, op) != 0)
		created(op);
	sodium_memzero(url, sizeof url);
}

/* ---- update, delete: the link's worklist first ----------------------- */

static int
read_link(up_op *op)
{
	char key[GL_KEY_MAX];
	int rv;

	if ((rv = gl_key_link(key, op->id, NULL)) != 0)
		return rv;
	op->step = UP_READ;
	return ss_redis_cmd(op->s->redis, on_redis, op, "HMGET %s kind wl",
	                    key);
}

static int
got_link(up_op *op, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
		return SS_EINTERNAL;
	if (r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "upload") != 0 ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[1]->len > GL_WL_MAX)
		return SS_ENOTFOUND;
	memcpy(op->wl, r->element[1]->str, r->element[1]->len);
	op->wl[r->element[1]->len] = '\0';
	return check(op);
}

/* A new expiry moves the link's index entry (its score and the index's
 * TTL) before the link itself, so a link that exists is always listed.
 * Should the update then be refused, the entry merely outlives its link,
 * and reading the index drops it. */
static int
reindex(up_op *op)
{
	char key[GL_KEY_MAX], purge[24];
	const char *argv[3] = {key, purge, op->id};
	int rv;

	if ((rv = gl_key_index(key, op->wl, "upload")) != 0)
		return rv;
	snprintf(purge, sizeof purge, "%lld",
	         (long long)(op->exp_ms + op->s->cfg->grace_ms));
	op->step = UP_REINDEX;
	return ss_redis_eval(op->s->redis, &gl_script_index_add, on_redis, op,
	                     1, 3, argv, NULL);
}

/* An edited message goes with a new view: the upload page shows the
 * sealed view (make_view), not the field msg. */
static int
push_msg(up_op *op, ss_argv *a)
{
	unsigned char *sealed;
	size_t n;
	int rv;

	if ((rv = make_view(op, &sealed, &n)) != 0)
		return rv;
	gl_argv_kv(a, "msg", op->message);
	ss_argv_pushs(a, "view");
	ss_argv_push(a, (const char *)sealed, n);
	free(sealed);
	return 0;
}

static int
write_link(up_op *op)
{
	char key[GL_KEY_MAX], res[GL_KEY_MAX], now[24], grace[24];
	ss_argv a;
	int rv;

	if ((rv = gl_key_link(key, op->id, NULL)) != 0 ||
	    (rv = gl_key_link(res, op->id, ":res")) != 0)
		return rv;
	op->step = UP_WRITE;
	snprintf(now, sizeof now, "%lld", (long long)op->now);
	if (op->kind == K_DELETE) {
		const char *argv[5] = {key, res, now, grace, op->user};
		snprintf(grace, sizeof grace, "%lld",
		         (long long)op->s->cfg->grace_ms);
		return ss_redis_eval(op->s->redis, &gl_script_delete, on_redis,
		                     op, 2, 5, argv, NULL);
	}
	ss_argv_init(&a);
	ss_argv_pushs(&a, key);
	ss_argv_pushs(&a, res);
	ss_argv_pushs(&a, now);
	if (op->set_max)
		gl_argv_ki(&a, "max", op->max_uses);
	if (op->set_exp) {
		gl_argv_ki(&a, "exp", op->exp_ms);
		gl_argv_ki(&a, "purge", op->exp_ms + op->s->cfg->grace_ms);
	}
	if (op->set_msg && (rv = push_msg(op, &a)) != 0)
		goto fail;
	if (op->set_notify)
		gl_argv_kv(&a, "notify", op->notify ? "1" : "0");
	if ((rv = ss_argv_status(&a)) == 0)
		rv = ss_redis_eval(op->s->redis, &gl_script_upload_update,
		                   on_redis, op, 2, a.n, a.v, a.lens);
fail:
	ss_argv_free(&a);
	return rv;
}

static int
reread(up_op *op)
{
	char key[GL_KEY_MAX];
	ss_argv a;
	int rv;

	if ((rv = gl_key_link(key, op->id, NULL)) != 0)
		return rv;
	ss_argv_init(&a);
	ss_argv_pushs(&a, "HMGET");
	ss_argv_pushs(&a, key);
	gl_link_fields_push(&a);
	op->step = UP_REREAD;
	if ((rv = ss_argv_status(&a)) == 0)
		rv = ss_redis_cmdargv(op->s->redis, on_redis, op, a.n, a.v,
		                      a.lens);
	ss_argv_free(&a);
	return rv;
}

static int
written(up_op *op, const redisReply *r)
{
	ss_pack *p;

	if (r->type != REDIS_REPLY_INTEGER)
		return SS_EINTERNAL;
	if (op->kind == K_DELETE) {
		if (r->integer == 0)
			return SS_ENOTFOUND;
		if (r->integer == 1) {
			ss_metric_add(op->s->m_deleted, 1);
			gl_audit(op->s, ss_call_id(op->c), op->user,
			         "upload_link.delete", op->id, op->wl,
			         json_object(), op->addr);
		}
		p = ss_call_reply_ok(op->c);
		msgpack_pack_map(&p->pk, 2);
		ss_pack_kv_cstr(p, "id", op->id);
		ss_pack_kv_cstr(p, "status", "deleted");
		ss_call_reply_end(op->c);
		op_free(op);
		return 0;
	}
	if (r->integer == 0)
		return SS_ENOTFOUND;
	if (r->integer == 2) {
		fail(op, SS_ECONFLICT, "the upload link has ended");
		return 0;
	}
	gl_audit(op->s, ss_call_id(op->c), op->user, "upload_link.update",
	         op->id, op->wl,
	         json_pack("{s:b, s:b, s:b, s:b}", "max_uses", op->set_max,
	                   "expires_at", op->set_exp, "message", op->set_msg,
	                   "notify_on_upload", op->set_notify),
	         op->addr);
	return reread(op);
}

static int
reread_done(up_op *op, const redisReply *r)
{
	gl_link l;
	int rv = gl_link_parse(&l, op->id, r);

	if (rv != 0)
		return rv;
	gl_upload_pack(op->s, ss_call_reply_ok(op->c), &l, gl_now_ms(), -1);
	ss_call_reply_end(op->c);
	op_free(op);
	return 0;
}

/* ---- list ------------------------------------------------------------ */

static void on_list_link(int err, redisReply *r, void *arg);

static int
list_index(up_op *op)
{
	char key[GL_KEY_MAX], now[24], lim[16];
	const char *argv[3] = {key, now, lim};
	int rv;

	if ((rv = gl_key_index(key, op->wl, "upload")) != 0)
		return rv;
	snprintf(now, sizeof now, "%lld", (long long)op->now);
	snprintf(lim, sizeof lim, "%d", GL_MAX_LIST);
	op->step = UP_LIST_INDEX;
	return ss_redis_eval(op->s->redis, &gl_script_index_read, on_redis, op,
	                     1, 3, argv, NULL);
}

typedef struct up_slot {
	up_op *op;
	size_t i;
	char id[GL_ID_LEN + 1];
} up_slot;

static int
newest_first(const void *a, const void *b)
{
	const up_item *x = a, *y = b;

	return x->at_ms < y->at_ms ? 1 : x->at_ms > y->at_ms ? -1 : 0;
}

/* The index is in purge order, which an edited or longer expiry
 * reorders: sorted by creation, as the guest links' list (list.c). */
static void
list_reply(up_op *op)
{
	ss_pack *p;
	size_t n = 0;

	if (op->list_err != 0) {
		fail(op, gl_err(op->list_err), NULL);
		return;
	}
	if (op->n > 1)
		qsort(op->items, op->n, sizeof *op->items, newest_first);
	for (size_t i = 0; i < op->n; i++)
		n += op->items[i].bytes != NULL;
	p = ss_call_reply_ok(op->c);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, "links");
	msgpack_pack_array(&p->pk, n);
	for (size_t i = 0; i < op->n; i++)
		if (op->items[i].bytes != NULL)
			msgpack_sbuffer_write(&p->sb, op->items[i].bytes,
			                      op->items[i].len);
	ss_call_reply_end(op->c);
	op_free(op);
}

static int
list_links(up_op *op, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY)
		return SS_EINTERNAL;
	op->n = r->elements;
	if (op->n == 0) {
		list_reply(op);
		return 0;
	}
	if ((op->items = calloc(op->n, sizeof *op->items)) == NULL)
		return SS_ENOMEM;
	op->step = UP_LIST_LINKS;
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		char key[GL_KEY_MAX];
		up_slot *sl;
		ss_argv a;

		if (e->type != REDIS_REPLY_STRING ||
		    !gl_valid_id(e->str, e->len) ||
		    (sl = calloc(1, sizeof *sl)) == NULL)
			continue;
		sl->op = op;
		sl->i = i;
		memcpy(sl->id, e->str, GL_ID_LEN);
		(void)gl_key_link(key, sl->id, NULL);
		ss_argv_init(&a);
		ss_argv_pushs(&a, "HMGET");
		ss_argv_pushs(&a, key);
		gl_link_fields_push(&a);
		if (ss_argv_status(&a) == 0 &&
		    ss_redis_cmdargv(op->s->redis, on_list_link, sl, a.n, a.v,
		                     a.lens) == 0)
			op->pending++;
		else
			free(sl);
		ss_argv_free(&a);
	}
	if (op->pending == 0)
		list_reply(op);
	return 0;
}

static void
on_list_link(int err, redisReply *r, void *arg)
{
	up_slot *sl = arg;
	up_op *op = sl->op;
	up_item *it = &op->items[sl->i];
	gl_link l;

	if (err != 0)
		op->list_err = err;
	else if (gl_link_parse(&l, sl->id, r) == 0) {
		ss_pack p;
		ss_pack_init(&p);
		gl_upload_pack(op->s, &p, &l, op->now, -1);
		if ((it->bytes = malloc(p.sb.size)) != NULL) {
			memcpy(it->bytes, p.sb.data, p.sb.size);
			it->len = p.sb.size;
			it->at_ms = l.at_ms;
		}
		ss_pack_free(&p);
	}
	free(sl);
	if (--op->pending == 0)
		list_reply(op);
}

/* ---- callbacks ------------------------------------------------------- */

static void
on_redis(int err, redisReply *r, void *arg)
{
	up_op *op = arg;
	int rv = 0;

	if (err == 0 && r->type == REDIS_REPLY_ERROR) {
		ss_error("redis.error", ss_call_id(op->c), "error", r->str,
		         NULL);
		err = SS_EINTERNAL;
	}
	if (op->step == UP_MAIL) {
		op->mail_queued = err == 0;
		created(op);
		return;
	}
	if (err != 0) {
		fail(op, gl_err(err), NULL);
		return;
	}
	switch (op->step) {
	case UP_INDEX:
		rv = store(op);
		break;
	case UP_STORE:
		if (r->type != REDIS_REPLY_INTEGER)
			rv = SS_EINTERNAL;
		else if (r->integer == 0 && ++op->tries < GL_STORE_TRIES)
			rv = store_begin(op);
		else if (r->integer == 0)
			rv = SS_EINTERNAL;
		else {
			ss_metric_add(op->s->m_created, 1);
			if (op->email[0] != '\0')
				mail(op);
			else
				created(op);
			return;
		}
		break;
	case UP_READ:
		rv = got_link(op, r);
		break;
	case UP_REINDEX:
		rv = write_link(op);
		break;
	case UP_WRITE:
		rv = written(op, r);
		break;
	case UP_REREAD:
		rv = reread_done(op, r);
		break;
	case UP_LIST_INDEX:
		rv = list_links(op, r);
		break;
	default:
		rv = SS_EINTERNAL;
		break;
	}
	if (rv == SS_ENOTFOUND)
		fail(op, SS_ENOTFOUND, "no such upload link");
	else if (rv != 0)
		fail(op, gl_err(rv), NULL);
}

/* UP_NAME: the worklist's name, whole or not at all, and only what a
 * mail var may hold.  A courtesy: without it (authz did not give it) the
 * link is made all the same, and its notices say "the worklist the link
 * delivers to" as they did before links kept the name. */
static int
named(up_op *op, int rv, const ss_msg *reply)
{
	ss_str v;

	if (rv == 0) {
		v = ss_obj_str(ss_map_get(reply->body, "name"));
		if (v.n <= GL_MAX_NAME && ss_mail_value_ok(v.p, v.n)) {
			memcpy(op->wl_name, v.p, v.n);
			op->wl_name[v.n] = '\0';
		}
	} else {
		ss_warn("upload_link.unnamed", ss_call_id(op->c), "worklist",
		        op->wl, "reason", ss_err_word(rv), NULL);
	}
	if (!op->has_pw)
		return store_begin(op);
	op->step = UP_HASH;
	return gl_hash_submit(op->s, hash_pw, hashed, op);
}

static void
on_peer(int err, const ss_msg *reply, void *arg)
{
	up_op *op = arg;
	int rv = gl_peer_err(err, reply);

	if (rv == SS_EBADREQ)
		rv = SS_EINTERNAL; /* our request, not the caller's */
	if (op->step == UP_MEMBER) {
		/* Update and delete: a link of a worklist the caller is no
		 * member of is not theirs to know about. */
		rv = gl_member_answer(err, reply);
		if (rv == SS_EFORBIDDEN)
			fail(op, rv, NEEDED_LINK);
		else if (rv == SS_ENOTFOUND)
			fail(op, rv, "no such upload link");
		else
			fail(op, gl_err(rv), NULL);
		return;
	}
	if (rv == 0 && op->step == UP_CHECK && !gl_allowed(reply)) {
		if (op->kind == K_CREATE || op->kind == K_LIST) {
			fail(op, SS_EFORBIDDEN, NEEDED);
			return;
		}
		op->step = UP_MEMBER;
		rv = gl_authz_member(op->s, ss_call_id(op->c), op->user, op->wl,
		                     on_peer, op);
	} else if (rv == 0 && op->step == UP_CHECK) {
		switch (op->kind) {
		case K_CREATE:
			rv = ask_user(op);
			break;
		case K_LIST:
			rv = list_index(op);
			break;
		default:
			rv = op->kind == K_UPDATE && op->set_exp
			         ? reindex(op)
			         : write_link(op);
			break;
		}
	} else if (rv == 0 && op->step == UP_USER) {
		const msgpack_object *e = ss_map_get(reply->body, "email");
		const msgpack_object *nm = ss_map_get(reply->body, "name");
		const msgpack_object *on =
		    ss_map_get(reply->body, "organisation_name");
		if (on == NULL ||
		    ss_obj_strcpy(on, op->by_org, sizeof op->by_org) != 0)
			op->by_org[0] = '\0';
		if (nm == NULL ||
		    ss_obj_strcpy(nm, op->by_name, sizeof op->by_name) != 0 ||
		    op->by_name[0] == '\0')
			snprintf(op->by_name, sizeof op->by_name, "%s",
			         op->user);
		if (e == NULL ||
		    ss_obj_strcpy(e, op->by_email, sizeof op->by_email) != 0 ||
		    !ss_mail_addr_ok(op->by_email, strlen(op->by_email)))
			op->by_email[0] = '\0';
		rv = ask_worklist(op);
	} else if (op->step == UP_NAME) {
		rv = named(op, rv, reply);
	} else if (rv == 0) {
		rv = SS_EINTERNAL;
	}
	if (rv != 0)
		fail(op, gl_err(rv), NULL);
}

/* ---- handlers -------------------------------------------------------- */

void
gl_handle_upload_create(ss_call *c, const msgpack_object *body, void *arg)
{
	const msgpack_object *f[F_N];
	char why[256];
	up_op *op;
	int rv;

	if (gl_parse(c, body, create_spec, F_N, f) != 0 ||
	    (op = op_new(c, arg, K_CREATE)) == NULL)
		return;
	(void)ss_obj_strcpy(f[F_USER], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[F_WL], op->wl, sizeof op->wl);
	if (check_create(op, f, why, sizeof why) != 0) {
		fail(op, SS_EBADREQ, why);
		return;
	}
	if ((rv = check(op)) != 0)
		fail(op, gl_err(rv), NULL);
}

void
gl_handle_upload_list(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, GL_MAX_USER},
	    {"worklist", SS_F_STR, true, 1, GL_WL_MAX},
	};
	const msgpack_object *f[2];
	up_op *op;
	int rv;

	if (gl_parse(c, body, spec, 2, f) != 0 ||
	    (op = op_new(c, arg, K_LIST)) == NULL)
		return;
	(void)ss_obj_strcpy(f[0], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[1], op->wl, sizeof op->wl);
	if (!gl_valid_worklist(op->wl, strlen(op->wl))) {
		fail(op, SS_EBADREQ, "field 'worklist': expected <kind>:<id>");
		return;
	}
	if ((rv = check(op)) != 0)
		fail(op, gl_err(rv), NULL);
}

/* update and delete: {user, id, ...}; a malformed id is no such link. */
static up_op *
owner_op(ss_call *c, void *arg, up_kind kind, const msgpack_object *user,
         const msgpack_object *id, const msgpack_object *addr)
{
	char why[128];
	ss_str v = ss_obj_str(id);
	up_op *op;

	if ((op = op_new(c, arg, kind)) == NULL)
		return NULL;
	(void)ss_obj_strcpy(user, op->user, sizeof op->user);
	if (addr != NULL &&
	    gl_parse_addr(addr, op->addr, why, sizeof why) != 0) {
		fail(op, SS_EBADREQ, why);
		return NULL;
	}
	if (!gl_valid_id(v.p, v.n)) {
		fail(op, SS_ENOTFOUND, "no such upload link");
		return NULL;
	}
	memcpy(op->id, v.p, GL_ID_LEN);
	return op;
}

void
gl_handle_upload_update(ss_call *c, const msgpack_object *body, void *arg)
{
	const msgpack_object *f[7];
	char why[256];
	up_op *op;
	int rv;

	if (gl_parse(c, body, update_spec, 7, f) != 0 ||
	    (op = owner_op(c, arg, K_UPDATE, f[0], f[1], f[6])) == NULL)
		return;
	if ((op->set_max = f[2] != NULL))
		op->max_uses = ss_obj_int(f[2]);
	if ((op->set_exp = f[3] != NULL) &&
	    gl_parse_expiry(op->s->cfg, op->now, f[3], NULL, &op->exp_ms, why,
	                    sizeof why) != 0) {
		fail(op, SS_EBADREQ, why);
		return;
	}
	if ((op->set_msg = f[4] != NULL) &&
	    gl_parse_text(f[4], op->message, "message", why, sizeof why) != 0) {
		fail(op, SS_EBADREQ, why);
		return;
	}
	if ((op->set_notify = f[5] != NULL))
		op->notify = ss_obj_bool(f[5]);
	if (!op->set_max && !op->set_exp && !op->set_msg && !op->set_notify) {
		fail(op, SS_EBADREQ,
		     "give at least one of 'max_uses', 'expires_at', "
		     "'message', 'notify_on_upload'");
		return;
	}
	if ((rv = read_link(op)) != 0)
		fail(op, gl_err(rv), NULL);
}

void
gl_handle_upload_delete(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, GL_MAX_USER},
	    {"id", SS_F_STR, true, 1, GL_ID_ARG_MAX},
	    {"addr", SS_F_STR, false, 1, GL_MAX_ADDR},
	};
	const msgpack_object *f[3];
	up_op *op;
	int rv;

	if (gl_parse(c, body, spec, 3, f) != 0 ||
	    (op = owner_op(c, arg, K_DELETE, f[0], f[1], f[2])) == NULL)
		return;
	if ((rv = read_link(op)) != 0)
		fail(op, gl_err(rv), NULL);
}
