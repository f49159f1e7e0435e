/*
 * services/authz/login.c - authz.login: checks a local account's password.
 *
 * Failed logins are limited per user and per client address (an IPv6
 * address by its /64, runtime/addr.h: a host cannot spread its guesses
 * over its block).  The limit is reserved before the password is checked,
 * in the same script that reads the hash, so N concurrent wrong guesses
 * can never pass it; a right password gives its reservation back.
 *
 * The per-user limit would let anyone lock a user out by guessing wrong
 * from elsewhere, so an address the user logged in from within
 * --login-known (a sorted set per user, the 16 latest) is not held by it:
 * from there a login is checked under the address limit alone.
 *
 *   LG_BEGIN   script: refuse if over a limit, else count and read the hash
 *   LG_VERIFY  Argon2id on a worker thread (a dummy hash for unknown users,
 *              so they take as long as wrong passwords)
 *   LG_REFUND  on success, script: give the reservation back; answer
 *
 * Unknown user, inactive user and wrong password are the same answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "runtime/addr.h"
#include "runtime/argv.h"
#include "runtime/log.h"
#include "runtime/passwd.h"
#include "services/authz/authz.h"

/* KEYS: fail:u:<user>, fail:a:<addr>, pw, known:<user>
 * ARGV: user, user limit, address limit, window ms, address, known since
 * ms (0: none is)
 * -> {1, hash or false} or {0, retry after ms} */
ss_script az_script_login_begin = {
    .name = "authz_login_begin",
    .src = "local u = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
           "local a = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
           "if u >= tonumber(ARGV[2]) then\n"
           "  local k = redis.call('ZSCORE', KEYS[4], ARGV[5])\n"
           "  if ARGV[6] == '0' or not k or tonumber(k) < tonumber(ARGV[6]) "
           "then\n"
           "    return {0, redis.call('PTTL', KEYS[1])}\n"
           "  end\n"
           "end\n"
           "if a >= tonumber(ARGV[3]) then\n"
           "  return {0, redis.call('PTTL', KEYS[2])}\n"
           "end\n"
           "for i = 1, 2 do\n"
           "  redis.call('INCR', KEYS[i])\n"
           "  redis.call('PEXPIRE', KEYS[i], ARGV[4], 'NX')\n"
           "end\n"
           "return {1, redis.call('HGET', KEYS[3], ARGV[1])}\n",
};

/* KEYS: fail:u:<user>, fail:a:<addr>, known:<user>
 * ARGV: address ("" to record none), now ms, known ms */
ss_script az_script_login_refund = {
    .name = "authz_login_refund",
    .src = "for i = 1, 2 do\n"
           "  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then\n"
           "    redis.call('DECR', KEYS[i])\n"
           "  end\n"
           "end\n"
           "if ARGV[1] ~= '' then\n"
           "  local now = tonumber(ARGV[2])\n"
           "  redis.call('ZADD', KEYS[3], now, ARGV[1])\n"
           "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', "
           "now - tonumber(ARGV[3]))\n"
           "  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -17)\n"
           "  redis.call('PEXPIRE', KEYS[3], ARGV[3])\n"
           "end\n"
           "return 1\n",
};

typedef enum lg_step {
	LG_BEGIN,
	LG_VERIFY,
	LG_REFUND,
} lg_step;

typedef struct lg_op {
	az_server *s;
	ss_call *c;
	lg_step step;
	char user[AZ_MAX_ID_LEN + 1];
	char ukey[sizeof AZ_K_FAIL_U + AZ_MAX_ID_LEN];
	char akey[sizeof AZ_K_FAIL_A + 64];
	char kkey[sizeof AZ_K_KNOWN + AZ_MAX_ID_LEN];
	char password[AZ_MAX_PASSWORD + 1];
	size_t pwlen;
	char *hash; /* NULL: no such account */
	bool ok;
	int retry_after; /* seconds, when over a limit */
} lg_op;

static void
finish(lg_op *op, int err, const char *msg)
{
	const az_user *u = NULL;

	if (err == 0 && op->s->dir != NULL)
		u = az_dir_user(op->s->dir, op->user);
	if (err == 0 && u != NULL) {
		ss_pack *p = ss_call_reply_ok(op->c);
		msgpack_pack_map(&p->pk, 1);
		ss_pack_key(p, "user");
		msgpack_pack_map(&p->pk, 4);
		ss_pack_kv_cstr(p, "id", u->id);
		ss_pack_kv_cstr(p, "name", u->name);
		ss_pack_kv_cstr(p, "email", u->email);
		ss_pack_kv_cstr(p, "organisation", u->org ? u->org->id : NULL);
		ss_call_reply_end(op->c);
	} else {
		ss_call_reply_err_retry(op->c, err != 0 ? err : SS_EUNAUTH, msg,
		                        op->retry_after);
	}
	sodium_memzero(op->password, sizeof op->password);
	op->s->checking--;
	free(op->hash);
	free(op);
}

/* Thread: worker. */
static void
verify(void *arg)
{
	lg_op *op = arg;

	op->ok = ss_passwd_verify(op->s->cfg->pepper, op->hash, op->password,
	                          op->pwlen);
}

static void step(lg_op *op, int err, redisReply *r);

static void
verified(void *arg)
{
	step(arg, 0, NULL);
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	step(arg, err, r);
}

static int
run_script(lg_op *op, ss_script *sc, bool full)
{
	const az_settings *cfg = op->s->cfg;
	const char *addr = op->akey + strlen(AZ_K_FAIL_A);
	/* an address the client did not give is nobody's known one */
	bool known = cfg->login_known_ms > 0 && strcmp(addr, "-") != 0;
	struct timespec ts;
	int64_t now;
	ss_argv a;
	int rv;

	/* wall-clock ms: the set outlives this process, and is every
	 * replica's */
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	ss_argv_init(&a);
	ss_argv_pushs(&a, op->ukey);
	ss_argv_pushs(&a, op->akey);
	if (full) {
		ss_argv_pushs(&a, AZ_K_PW);
		ss_argv_pushs(&a, op->kkey);
		ss_argv_pushs(&a, op->user);
		ss_argv_pushi(&a, cfg->login_fail_user);
		ss_argv_pushi(&a, cfg->login_fail_addr);
		ss_argv_pushi(&a, cfg->login_window_ms);
		ss_argv_pushs(&a, addr);
		ss_argv_pushi(&a, known ? now - cfg->login_known_ms : 0);
	} else {
		ss_argv_pushs(&a, op->kkey);
		ss_argv_pushs(&a, known ? addr : "");
		ss_argv_pushi(&a, now);
		ss_argv_pushi(&a, cfg->login_known_ms);
	}
	rv = ss_argv_status(&a);
	if (rv == 0)
		rv = ss_redis_eval(op->s->redis, sc, on_redis, op, full ? 4 : 3,
		                   a.n, a.v, a.lens);
	ss_argv_free(&a);
	return rv;
}

/* Reads the begin script's answer: go on to verify, or refuse. */
static int
begun(lg_op *op, redisReply *r, char *msg, size_t msglen)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		return SS_EUNAVAIL;
	if (r->element[0]->integer == 0) {
		long long ms = r->element[1]->type == REDIS_REPLY_INTEGER
		                   ? r->element[1]->integer
		                   : 1000;
		op->retry_after = ms > 0 ? (int)((ms + 999) / 1000) : 1;
		snprintf(msg, msglen, "too many failed logins");
		/* The address, not the name typed: that may be a password
		 * typed into the wrong field. */
		ss_warn("login.rate_limited", ss_call_id(op->c), "addr",
		        op->akey + strlen(AZ_K_FAIL_A), NULL);
		return SS_ETOOMANY;
	}
	if (r->element[1]->type == REDIS_REPLY_STRING &&
	    (op->hash = strdup(r->element[1]->str)) == NULL)
		return SS_ENOMEM;
	op->step = LG_VERIFY;
	return ss_work_submit(op->s->work, verify, verified, op);
}

static void
step(lg_op *op, int err, redisReply *r)
{
	char msg[128] = "";
	const az_user *u;
	int rv = 0;

	if (err != 0) {
		finish(op, SS_EUNAVAIL, NULL);
		return;
	}
	switch (op->step) {
	case LG_BEGIN:
		rv = begun(op, r, msg, sizeof msg);
		break;
	case LG_VERIFY:
		u = op->s->dir ? az_dir_user(op->s->dir, op->user) : NULL;
		if (!op->ok || u == NULL || !u->active) {
			/* The address (an IPv6 /64), as login.rate_limited:
			 * never the name typed, which may be a password. */
			ss_info("login.failed", ss_call_id(op->c), "addr",
			        op->akey + strlen(AZ_K_FAIL_A), NULL);
			finish(op, SS_EUNAUTH, "wrong user or password");
			return;
		}
		op->step = LG_REFUND;
		rv = run_script(op, &az_script_login_refund, false);
		break;
	case LG_REFUND:
		ss_info("login.ok", ss_call_id(op->c), NULL);
		finish(op, 0, NULL);
		return;
	}
	if (rv != 0)
		finish(op, rv, msg[0] ? msg : NULL);
}

void
az_handle_login(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, AZ_MAX_ID_LEN},
	    {"password", SS_F_STR, true, 1, AZ_MAX_PASSWORD},
	    {"addr", SS_F_STR, false, 1, 63},
	};
	const msgpack_object *f[3];
	az_server *s = arg;
	char addr[64] = "-", client[SS_ADDR_CLIENT_MAX];
	ss_str pw;
	lg_op *op;
	int rv;

	if (az_parse(c, body, spec, 3, f) != 0 || az_dir_or_reply(s, c) == NULL)
		return;
	/* Logins past --checks-max would only queue for the workers (a
	 * flood from many addresses): refused before the limits count them. */
	if (s->checking >= s->cfg->checks_max) {
		ss_call_reply_err_retry(c, SS_ETOOMANY,
		                        "too many logins are being checked; "
		                        "retry in a moment",
		                        1);
		return;
	}
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = s;
	op->c = c;
	s->checking++;
	(void)ss_obj_strcpy(f[0], op->user, sizeof op->user);
	if (f[2] != NULL)
		(void)ss_obj_strcpy(f[2], addr, sizeof addr);
	pw = ss_obj_str(f[1]);
	memcpy(op->password, pw.p, pw.n);
	op->pwlen = pw.n;
	snprintf(op->ukey, sizeof op->ukey, "%s%s", AZ_K_FAIL_U, op->user);
	ss_addr_client(addr, client, sizeof client);
	snprintf(op->akey, sizeof op->akey, "%s%s", AZ_K_FAIL_A, client);
	snprintf(op->kkey, sizeof op->kkey, "%s%s", AZ_K_KNOWN, op->user);
	op->step = LG_BEGIN;
	if ((rv = run_script(op, &az_script_login_begin, true)) != 0)
		finish(op, rv, NULL);
}
