/*
 * services/authz/register.c - authz.register: a new local account.
 *
 * Registration is how a person invited by email gets an account (the
 * invitation itself is share's business; share calls this once the
 * invitation checks out).  The account belongs to no organisation and
 * holds the directory's registration role in its personal worklist.
 *
 *   RG_HASH    Argon2id of the password (worker)
 *   RG_APPLY   one script: refuse a taken id or email, store the account,
 *              its hash and its share code, bump the version
 *   RG_RELOAD  reload the snapshot, so the account can log in at once
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/utf8.h"
#include "runtime/argv.h"
#include "runtime/log.h"
#include "runtime/passwd.h"
#include "services/authz/authz.h"

#define MAX_RETRIES 5

/* KEYS: reg, pw, codes, codeix, version, regmail, docmail, retired
 * ARGV: user, account json, hash, code, email key
 * The id may be no directory user's, now or before (retired); the email
 * no account's and no directory user's (docmail, written by the import
 * script: one of the two scripts refuses when both race). */
ss_script az_script_register = {
    .name = "authz_register",
    .src = "if redis.call('HEXISTS', KEYS[3], 'user:' .. ARGV[1]) == 1 or\n"
           "   redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or\n"
           "   redis.call('SISMEMBER', KEYS[8], ARGV[1]) == 1 then\n"
           "  return {'conflict', 'user'}\n"
           "end\n"
           "if redis.call('HEXISTS', KEYS[6], ARGV[5]) == 1 or\n"
           "   redis.call('HEXISTS', KEYS[7], ARGV[5]) == 1 then\n"
           "  return {'conflict', 'email'}\n"
           "end\n"
           "if redis.call('HEXISTS', KEYS[4], ARGV[4]) == 1 then\n"
           "  return {'retry'}\n"
           "end\n"
           "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
           "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
           "redis.call('HSET', KEYS[3], 'user:' .. ARGV[1], ARGV[4])\n"
           "redis.call('HSET', KEYS[4], ARGV[4], 'user:' .. ARGV[1])\n"
           "redis.call('HSET', KEYS[6], ARGV[5], ARGV[1])\n"
           "return {'ok', redis.call('INCR', KEYS[5])}\n",
};

typedef enum rg_step {
	RG_HASH,
	RG_APPLY,
	RG_RELOAD,
} rg_step;

typedef struct rg_op {
	az_server *s;
	ss_call *c;
	rg_step step;
	int tries;
	char user[AZ_MAX_ID_LEN + 1];
	char name[AZ_MAX_NAME_LEN + 1];
	char email[AZ_MAX_EMAIL_LEN + 1];
	char email_key[AZ_MAX_EMAIL_LEN + 1];
	char password[AZ_MAX_PASSWORD + 1];
	size_t pwlen;
	char hash[SS_PASSWD_HASH_LEN];
	int hash_err;
} rg_op;

static void
finish(rg_op *op, int err, const char *msg)
{
	if (err == 0) {
		ss_pack *p = ss_call_reply_ok(op->c);
		msgpack_pack_map(&p->pk, 1);
		ss_pack_key(p, "user");
		msgpack_pack_map(&p->pk, 4);
		ss_pack_kv_cstr(p, "id", op->user);
		ss_pack_kv_cstr(p, "name", op->name);
		ss_pack_kv_cstr(p, "email", op->email);
		ss_pack_kv_cstr(p, "organisation", NULL);
		ss_call_reply_end(op->c);
	} else if (err == SS_ETOOMANY) {
		ss_call_reply_err_retry(op->c, err, msg, 1);
	} else {
		ss_call_reply_err(op->c, err, msg);
	}
	sodium_memzero(op->password, sizeof op->password);
	sodium_memzero(op->hash, sizeof op->hash);
	free(op);
}

static void step(rg_op *op, int err, redisReply *r);

/* Thread: worker. */
static void
hash_password(void *arg)
{
	rg_op *op = arg;

	op->hash_err = ss_passwd_hash(op->s->cfg->pepper, op->password,
	                              op->pwlen, op->hash);
}

static void
hashed(void *arg)
{
	rg_op *op = arg;

	op->s->checking--;
	step(op, op->hash_err, NULL);
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	step(arg, err, r);
}

static void
reloaded(int err, void *arg)
{
	(void)err; /* the account exists either way; the poll catches up */
	step(arg, 0, NULL);
}

static int
apply(rg_op *op)
{
	char code[AZ_CODE_LEN + 1];
	json_t *acct;
	char *js;
	ss_argv a;
	int rv;

	acct = json_pack("{s:s, s:s}", "name", op->name, "email", op->email);
	js = acct ? json_dumps(acct, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(acct);
	if (js == NULL)
		return SS_ENOMEM;
	az_code_new(code);
	ss_argv_init(&a);
	ss_argv_pushs(&a, AZ_K_REG);
	ss_argv_pushs(&a, AZ_K_PW);
	ss_argv_pushs(&a, AZ_K_CODES);
	ss_argv_pushs(&a, AZ_K_CODEIX);
	ss_argv_pushs(&a, AZ_K_VERSION);
	ss_argv_pushs(&a, AZ_K_REGMAIL);
	ss_argv_pushs(&a, AZ_K_DOCMAIL);
	ss_argv_pushs(&a, AZ_K_RETIRED);
	ss_argv_pushs(&a, op->user);
	ss_argv_pushs(&a, js);
	ss_argv_pushs(&a, op->hash);
	ss_argv_pushs(&a, code);
	ss_argv_pushs(&a, op->email_key);
	free(js);
	rv = ss_argv_status(&a);
	if (rv == 0)
		rv = ss_redis_eval(op->s->redis, &az_script_register, on_redis,
		                   op, 8, a.n, a.v, a.lens);
	ss_argv_free(&a);
	return rv;
}

static int
applied(rg_op *op, redisReply *r, char *msg, size_t msglen)
{
	const char *tag;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return SS_EUNAVAIL;
	tag = r->element[0]->str;
	if (strcmp(tag, "conflict") == 0) {
		snprintf(msg, msglen, "that %s is already taken",
		         r->element[1]->str);
		return SS_ECONFLICT;
	}
	if (strcmp(tag, "retry") == 0)
		return ++op->tries < MAX_RETRIES ? 1 : SS_EINTERNAL;
	return strcmp(tag, "ok") == 0 ? 0 : SS_EINTERNAL;
}

static void
step(rg_op *op, int err, redisReply *r)
{
	char msg[128] = "";
	int rv;

	if (err != 0) {
		finish(op, err == SS_ETIMEDOUT ? SS_EUNAVAIL : err, NULL);
		return;
	}
	switch (op->step) {
	case RG_HASH:
		op->step = RG_APPLY;
		rv = apply(op);
		break;
	case RG_APPLY:
		rv = applied(op, r, msg, sizeof msg);
		if (rv == 1) {
			rv = apply(op);
			break;
		}
		if (rv != 0)
			break;
		ss_info("account.registered", ss_call_id(op->c), "user",
		        op->user, NULL);
		op->step = RG_RELOAD;
		az_store_reload(op->s, reloaded, op);
		return;
	case RG_RELOAD:
		finish(op, 0, NULL);
		return;
	default:
		rv = SS_EINTERNAL;
	}
	if (rv != 0)
		finish(op, rv, msg[0] ? msg : NULL);
}

void
az_handle_register(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, AZ_MAX_ID_LEN},
	    {"name", SS_F_STR, true, 1, AZ_MAX_NAME_LEN},
	    {"email", SS_F_STR, true, 3, AZ_MAX_EMAIL_LEN},
	    {"password", SS_F_STR, true, AZ_MIN_PASSWORD, AZ_MAX_PASSWORD},
	};
	const msgpack_object *f[4];
	az_server *s = arg;
	const az_dir *dir;
	ss_str pw;
	rg_op *op;
	int rv;

	if (az_parse(c, body, spec, 4, f) != 0 ||
	    (dir = az_dir_or_reply(s, c)) == NULL)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = s;
	op->c = c;
	(void)ss_obj_strcpy(f[0], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[1], op->name, sizeof op->name);
	(void)ss_obj_strcpy(f[2], op->email, sizeof op->email);
	pw = ss_obj_str(f[3]);
	memcpy(op->password, pw.p, pw.n);
	op->pwlen = pw.n;
	if (!az_valid_id(op->user, strlen(op->user))) {
		finish(op, SS_EBADREQ,
		       "field 'user': 1-64 characters of A-Z a-z 0-9 . _ -");
		return;
	}
	if (az_email_key(op->email, strlen(op->email), op->email_key) != 0) {
		finish(op, SS_EBADREQ, "field 'email': not an email address");
		return;
	}
	if (!ss_text_valid(op->name, strlen(op->name), 0)) {
		finish(op, SS_EBADREQ,
		       "field 'name': control or direction characters");
		return;
	}
	if (az_dir_user(dir, op->user) != NULL) {
		finish(op, SS_ECONFLICT, "that user is already taken");
		return;
	}
	if (az_dir_user_by_email(dir, op->email) != NULL) {
		finish(op, SS_ECONFLICT, "that email is already taken");
		return;
	}
	/* The hash shares the workers with the logins' checks, under the
	 * same --checks-max: past it a registration would only queue. */
	if (s->checking >= s->cfg->checks_max) {
		finish(op, SS_ETOOMANY,
		       "too many passwords are being checked; retry in a "
		       "moment");
		return;
	}
	op->step = RG_HASH;
	s->checking++;
	if ((rv = ss_work_submit(s->work, hash_password, hashed, op)) != 0) {
		s->checking--;
		finish(op, rv, NULL);
	}
}
