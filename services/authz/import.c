/*
 * services/authz/import.c - authz.directory.import.
 *
 * Importing applies the difference between the stored directory and a new
 * document atomically, and importing the same document twice changes
 * nothing.  The flow is a state machine over one op:
 *
 *   IM_PARSE    validate the document (loop; refuses it whole)
 *   IM_LOOKUP   HMGET which users already have a password hash
 *   IM_HASH     Argon2id of the initial passwords still missing (worker)
 *   IM_APPLY    one script writes document, codes and hashes, bumps the
 *               version if anything changed (retried with fresh share
 *               codes on the rare random collision)
 *   IM_RELOAD   reload the snapshot, then answer
 *
 * An initial password is only ever set for an account that has none, so a
 * re-import never resets a password and never rehashes.
 *
 * What the document changes against the snapshot (users and the
 * organisation, location and group worklists added and removed; accounts
 * made by registration are not the document's) is counted at IM_PARSE and
 * answered.  With dry_run the op ends there: nothing is written, and the
 * answer lists the first DRY_LIST ids of each, for an operator to look
 * before importing a document that would remove half the directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "runtime/argv.h"
#include "runtime/log.h"
#include "runtime/passwd.h"
#include "services/authz/authz.h"

#define MAX_RETRIES 5
#define DRY_LIST    100 /* ids listed per kind in a dry run's answer */

/* KEYS: doc, version, codes, codeix, pw, reg, regmail, docmail, retired
 * ARGV: doc, n, (worklist, code, fixed)*n, npw, (user, hash)*npw,
 *       nusers, (user, email key)*nusers
 * The document's email keys are kept (docmail) for the register script,
 * which checks them, as this one checks regmail: whichever runs second
 * refuses, so an address never belongs to both.  An id that leaves the
 * document is retired: registration never hands it out again (its
 * personal worklist may still hold what was shared to its old owner). */
ss_script az_script_import = {
    .name = "authz_import",
    .src =
        "local i = 1\n"
        "local doc = ARGV[i]; i = i + 1\n"
        "local n = tonumber(ARGV[i]); i = i + 1\n"
        "local want, order = {}, {}\n"
        "for k = 1, n do\n"
        "  want[ARGV[i]] = {code = ARGV[i+1], fixed = ARGV[i+2] == '1'}\n"
        "  order[k] = ARGV[i]; i = i + 3\n"
        "end\n"
        "local npw = tonumber(ARGV[i]); i = i + 1\n"
        "local pws = {}\n"
        "for k = 1, npw do pws[k] = {ARGV[i], ARGV[i+1]}; i = i + 2 end\n"
        "local nu = tonumber(ARGV[i]); i = i + 1\n"
        "local users, mails = {}, {}\n"
        "for k = 1, nu do\n"
        "  users[ARGV[i]] = true; mails[ARGV[i+1]] = ARGV[i]; i = i + 2\n"
        "end\n"
        "for m, u in pairs(mails) do\n"
        "  local owner = redis.call('HGET', KEYS[7], m)\n"
        "  if owner then return {'taken', u, owner} end\n"
        "end\n"
        "for _, wl in ipairs(order) do\n"
        "  if string.sub(wl, 1, 5) == 'user:' and\n"
        "     redis.call('HEXISTS', KEYS[6], string.sub(wl, 6)) == 1 then\n"
        "    return {'conflict', wl, 'a registered account'}\n"
        "  end\n"
        "end\n"
        "local cur, flat = {}, redis.call('HGETALL', KEYS[3])\n"
        "for k = 1, #flat, 2 do cur[flat[k]] = flat[k+1] end\n"
        "local keep, used, final = {}, {}, {}\n"
        "for wl, code in pairs(cur) do\n"
        "  if not want[wl] and string.sub(wl, 1, 5) == 'user:' and\n"
        "     redis.call('HEXISTS', KEYS[6], string.sub(wl, 6)) == 1 then\n"
        "    keep[wl] = code; used[code] = wl\n"
        "  end\n"
        "end\n"
        "for _, wl in ipairs(order) do\n"
        "  local w = want[wl]\n"
        "  if w.fixed then\n"
        "    if used[w.code] then return {'conflict', wl, used[w.code]} end\n"
        "    used[w.code] = wl; final[wl] = w.code\n"
        "  end\n"
        "end\n"
        "for _, wl in ipairs(order) do\n"
        "  local w = want[wl]\n"
        "  if not w.fixed then\n"
        "    local c = cur[wl]\n"
        "    if c and not used[c] then final[wl] = c\n"
        "    elseif not used[w.code] then final[wl] = w.code\n"
        "    else return {'retry'} end\n"
        "    used[final[wl]] = wl\n"
        "  end\n"
        "end\n"
        "local changed = 0\n"
        "for wl, code in pairs(cur) do\n"
        "  if not final[wl] and not keep[wl] then\n"
        "    redis.call('HDEL', KEYS[3], wl); changed = 1\n"
        "    if string.sub(wl, 1, 5) == 'user:' then\n"
        "      redis.call('SADD', KEYS[9], string.sub(wl, 6))\n"
        "    end\n"
        "  end\n"
        "end\n"
        "for wl, code in pairs(final) do\n"
        "  if cur[wl] ~= code then\n"
        "    redis.call('HSET', KEYS[3], wl, code); changed = 1\n"
        "  end\n"
        "end\n"
        "if changed == 1 then\n"
        "  redis.call('DEL', KEYS[4])\n"
        "  for code, wl in pairs(used) do\n"
        "    redis.call('HSET', KEYS[4], code, wl)\n"
        "  end\n"
        "end\n"
        "for _, p in ipairs(pws) do\n"
        "  if redis.call('HSETNX', KEYS[5], p[1], p[2]) == 1 then\n"
        "    changed = 1\n"
        "  end\n"
        "end\n"
        "for _, u in ipairs(redis.call('HKEYS', KEYS[5])) do\n"
        "  if not users[u] and redis.call('HEXISTS', KEYS[6], u) == 0 then\n"
        "    redis.call('HDEL', KEYS[5], u); changed = 1\n"
        "  end\n"
        "end\n"
        "redis.call('DEL', KEYS[8])\n"
        "for m, u in pairs(mails) do redis.call('HSET', KEYS[8], m, u) end\n"
        "if redis.call('GET', KEYS[1]) ~= doc then\n"
        "  redis.call('SET', KEYS[1], doc); changed = 1\n"
        "end\n"
        "local v\n"
        "if changed == 1 then v = redis.call('INCR', KEYS[2])\n"
        "else v = tonumber(redis.call('GET', KEYS[2]) or '0') end\n"
        "return {'ok', changed, v}\n",
};

typedef enum im_step {
	IM_LOOKUP,
	IM_HASH,
	IM_APPLY,
	IM_RELOAD,
} im_step;

typedef struct im_user {
	const az_user *u;
	bool need;                     /* Redis has no hash for u yet */
	char hash[SS_PASSWD_HASH_LEN]; /* computed when need */
} im_user;

typedef struct im_op {
	az_server *s;
	ss_call *c;
	im_step step;
	az_dir *nd;
	char *canon;
	im_user *pw; /* users with an initial password */
	size_t npw;
	int tries;
	bool changed;
	int64_t version;
	bool dry_run;
	/* against the snapshot: [0] users, [1] worklists; added, removed */
	size_t added[2], removed[2];
} im_op;

/* An organisation's, a location's or a group's worklist: the personal
 * ones come and go with their users. */
static bool
doc_worklist(const az_worklist *w)
{
	return w->kind != AZ_WL_USER;
}

/* Whether entry i of kind (0 users, 1 worklists) of a is not in b, and
 * its id. */
static bool
only_in_at(const az_dir *a, const az_dir *b, int kind, size_t i,
           const char **id)
{
	if (kind == 0) {
		const az_user *u = az_dir_user_at(a, i);

		*id = u->id;
		return !u->registered && az_dir_user(b, u->id) == NULL;
	}
	const az_worklist *w = az_dir_worklist_at(a, i);
	const az_worklist *o = az_dir_worklist(b, w->id);

	*id = w->id;
	return doc_worklist(w) && (o == NULL || !doc_worklist(o));
}

/* How many ids of kind a has and b has not; with p, also packs the
 * first DRY_LIST of them as an array. */
static size_t
only_in(const az_dir *a, const az_dir *b, int kind, ss_pack *p)
{
	size_t total = kind == 0 ? az_dir_nusers(a) : az_dir_nworklists(a);
	size_t n = 0;
	const char *id;

	if (p != NULL) {
		size_t all = only_in(a, b, kind, NULL);

		msgpack_pack_array(&p->pk, all < DRY_LIST ? all : DRY_LIST);
	}
	for (size_t i = 0; i < total; i++) {
		if (!only_in_at(a, b, kind, i, &id))
			continue;
		if (p != NULL && n < DRY_LIST)
			ss_pack_cstr(p, id);
		n++;
	}
	return n;
}

static void step(im_op *op, int err, redisReply *r);

static void
finish(im_op *op, int err, const char *msg)
{
	if (err != 0) {
		ss_call_reply_err(op->c, err, msg);
	} else {
		ss_pack *p = ss_call_reply_ok(op->c);
		msgpack_pack_map(&p->pk, op->dry_run ? 12 : 9);
		if (op->dry_run) {
			ss_pack_kv_bool(p, "dry_run", true);
		} else {
			ss_pack_kv_bool(p, "changed", op->changed);
			ss_pack_kv_int(p, "version", op->version);
		}
		ss_pack_kv_int(p, "organisations",
		               (int64_t)az_dir_norgs(op->nd));
		ss_pack_kv_int(p, "users", (int64_t)az_dir_nusers(op->nd));
		ss_pack_kv_int(p, "worklists",
		               (int64_t)az_dir_nworklists(op->nd));
		ss_pack_kv_int(p, "users_added", (int64_t)op->added[0]);
		ss_pack_kv_int(p, "users_removed", (int64_t)op->removed[0]);
		ss_pack_kv_int(p, "worklists_added", (int64_t)op->added[1]);
		ss_pack_kv_int(p, "worklists_removed", (int64_t)op->removed[1]);
		if (op->dry_run) {
			const az_dir *cur = op->s->dir;

			ss_pack_key(p, "added_users");
			(void)only_in(op->nd, cur, 0, p);
			ss_pack_key(p, "removed_users");
			(void)only_in(cur, op->nd, 0, p);
			ss_pack_key(p, "added_worklists");
			(void)only_in(op->nd, cur, 1, p);
			ss_pack_key(p, "removed_worklists");
			(void)only_in(cur, op->nd, 1, p);
		}
		ss_call_reply_end(op->c);
	}
	for (size_t i = 0; i < op->npw; i++)
		sodium_memzero(op->pw[i].hash, sizeof op->pw[i].hash);
	free(op->pw);
	free(op->canon);
	az_dir_free(op->nd);
	free(op);
}

/* Thread: worker. */
static void
hash_passwords(void *arg)
{
	im_op *op = arg;

	for (size_t i = 0; i < op->npw; i++) {
		const char *pw = op->pw[i].u->password;
		if (op->pw[i].need &&
		    ss_passwd_hash(op->s->cfg->pepper, pw, strlen(pw),
		                   op->pw[i].hash) != 0)
			op->pw[i].hash[0] = '\0';
	}
}

static void
hashed(void *arg)
{
	step(arg, 0, NULL);
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	step(arg, err, r);
}

static void
reloaded(int err, void *arg)
{
	step(arg, err, NULL);
}

static int
lookup(im_op *op)
{
	ss_argv a;
	int rv;

	if (op->npw == 0) {
		op->step = IM_APPLY;
		step(op, 0, NULL);
		return 0;
	}
	ss_argv_init(&a);
	ss_argv_pushs(&a, "HMGET");
	ss_argv_pushs(&a, AZ_K_PW);
	for (size_t i = 0; i < op->npw; i++)
		ss_argv_pushs(&a, op->pw[i].u->id);
	rv = ss_argv_status(&a);
	if (rv == 0)
		rv = ss_redis_cmdargv(op->s->redis, on_redis, op, a.n, a.v,
		                      a.lens);
	ss_argv_free(&a);
	return rv;
}

/* Marks the users whose hash Redis has already: nothing to compute. */
static int
looked_up(im_op *op, redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != op->npw)
		return SS_EINTERNAL;
	for (size_t i = 0; i < op->npw; i++)
		op->pw[i].need = r->element[i]->type != REDIS_REPLY_STRING;
	return ss_work_submit(op->s->work, hash_passwords, hashed, op);
}

static int
apply(im_op *op)
{
	static const char *const keys[] = {
	    AZ_K_DOC, AZ_K_CODES,   AZ_K_CODEIX,  AZ_K_PW,
	    AZ_K_REG, AZ_K_REGMAIL, AZ_K_DOCMAIL, AZ_K_RETIRED};
	size_t nwl = az_dir_nworklists(op->nd), npw = 0;
	ss_argv a;
	int rv;

	ss_argv_init(&a);
	ss_argv_pushs(&a, AZ_K_DOC);
	ss_argv_pushs(&a, AZ_K_VERSION);
	for (size_t i = 1; i < sizeof keys / sizeof keys[0]; i++)
		ss_argv_pushs(&a, keys[i]);
	ss_argv_pushs(&a, op->canon);
	ss_argv_pushi(&a, (int64_t)nwl);
	for (size_t i = 0; i < nwl; i++) {
		az_worklist *wl = az_dir_worklist_at(op->nd, i);
		if (!wl->code_fixed)
			az_code_new(wl->code);
		ss_argv_pushs(&a, wl->id);
		ss_argv_pushs(&a, wl->code);
		ss_argv_pushs(&a, wl->code_fixed ? "1" : "0");
	}
	for (size_t i = 0; i < op->npw; i++)
		npw += op->pw[i].need;
	ss_argv_pushi(&a, (int64_t)npw);
	for (size_t i = 0; i < op->npw; i++) {
		if (op->pw[i].need) {
			ss_argv_pushs(&a, op->pw[i].u->id);
			ss_argv_pushs(&a, op->pw[i].hash);
		}
	}
	ss_argv_pushi(&a, (int64_t)az_dir_nusers(op->nd));
	for (size_t i = 0; i < az_dir_nusers(op->nd); i++) {
		const az_user *u = az_dir_user_at(op->nd, i);

		ss_argv_pushs(&a, u->id);
		ss_argv_pushs(&a, u->email_key);
	}
	rv = ss_argv_status(&a);
	if (rv == 0)
		rv = ss_redis_eval(op->s->redis, &az_script_import, on_redis,
		                   op, 9, a.n, a.v, a.lens);
	ss_argv_free(&a);
	return rv;
}

/* Interprets the import script's answer. */
static int
applied(im_op *op, redisReply *r, char *msg, size_t msglen)
{
	const char *tag;

	if (r->type == REDIS_REPLY_ERROR) {
		ss_error("directory.import_failed", ss_call_id(op->c), "error",
		         r->str, NULL);
		return SS_EUNAVAIL;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return SS_EINTERNAL;
	tag = r->element[0]->str;
	if (strcmp(tag, "conflict") == 0 && r->elements == 3) {
		const az_worklist *wl =
		    az_dir_worklist(op->nd, r->element[1]->str);
		snprintf(msg, msglen, "%s: share code or id collides with %s",
		         wl ? wl->entry : r->element[1]->str,
		         r->element[2]->str);
		return SS_ECONFLICT;
	}
	if (strcmp(tag, "taken") == 0 && r->elements == 3) {
		const az_user *u = az_dir_user(op->nd, r->element[1]->str);
		snprintf(msg, msglen,
		         "%s: id or email belongs to the registered account "
		         "\"%s\"",
		         u ? u->personal->entry : r->element[1]->str,
		         r->element[2]->str);
		return SS_ECONFLICT;
	}
	if (strcmp(tag, "retry") == 0)
		return ++op->tries < MAX_RETRIES ? 1 : SS_EINTERNAL;
	if (strcmp(tag, "ok") != 0 || r->elements != 3)
		return SS_EINTERNAL;
	op->changed = r->element[1]->integer != 0;
	op->version = r->element[2]->integer;
	return 0;
}

static void
step(im_op *op, int err, redisReply *r)
{
	char msg[512] = "";
	int rv;

	if (err != 0) {
		finish(op, err == SS_ETIMEDOUT ? SS_EUNAVAIL : err, NULL);
		return;
	}
	switch (op->step) {
	case IM_LOOKUP:
		op->step = IM_HASH;
		rv = looked_up(op, r);
		break;
	case IM_HASH:
		rv = 0;
		for (size_t i = 0; i < op->npw; i++) {
			if (op->pw[i].need && op->pw[i].hash[0] != '$')
				rv = SS_ENOMEM;
		}
		op->step = IM_APPLY;
		if (rv == 0)
			rv = apply(op);
		break;
	case IM_APPLY:
		if (r == NULL) {
			rv = apply(op);
			break;
		}
		rv = applied(op, r, msg, sizeof msg);
		if (rv == 1) {
			rv = apply(op);
			break;
		}
		if (rv != 0)
			break;
		ss_info("directory.imported", ss_call_id(op->c), "changed",
		        op->changed ? "true" : "false", NULL);
		op->step = IM_RELOAD;
		az_store_reload(op->s, reloaded, op);
		return;
	case IM_RELOAD:
		finish(op, 0, NULL);
		return;
	default:
		rv = SS_EINTERNAL;
	}
	if (rv != 0)
		finish(op, rv, msg[0] ? msg : NULL);
}

/* Registered accounts live outside the document: it may not reuse them. */
static int
check_registered(const az_dir *cur, const az_dir *nd, char *msg, size_t msglen)
{
	for (size_t i = 0; cur != NULL && i < az_dir_nusers(nd); i++) {
		const az_user *u = az_dir_user_at(nd, i), *r;

		r = az_dir_user(cur, u->id);
		if (r == NULL || !r->registered)
			r = az_dir_user_by_email(cur, u->email);
		if (r != NULL && r->registered) {
			snprintf(msg, msglen,
			         "%s: id or email belongs to the registered "
			         "account \"%s\"",
			         u->personal->entry, r->id);
			return SS_ECONFLICT;
		}
	}
	return 0;
}

void
az_handle_import(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"document", SS_F_STR, true, 2, SS_MAX_STR_LEN},
	    {"dry_run", SS_F_BOOL, false, 0, 0},
	};
	const msgpack_object *f[2];
	az_server *s = arg;
	char why[512];
	im_op *op;
	ss_str doc;
	int rv;

	if (az_parse(c, body, spec, 2, f) != 0 || az_dir_or_reply(s, c) == NULL)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = s;
	op->c = c;
	doc = ss_obj_str(f[0]);
	rv = az_dir_parse(doc.p, doc.n, &op->nd, why, sizeof why);
	if (rv == 0)
		rv = az_dir_text_check(op->nd, why, sizeof why);
	if (rv == 0)
		rv = check_registered(s->dir, op->nd, why, sizeof why);
	if (rv == 0 && (op->canon = az_dir_canonical(op->nd)) == NULL)
		rv = SS_ENOMEM;
	if (rv == 0 && (op->pw = calloc(az_dir_nusers(op->nd) + 1,
	                                sizeof *op->pw)) == NULL)
		rv = SS_ENOMEM;
	if (rv != 0) {
		finish(op, rv, why);
		return;
	}
	for (int k = 0; k < 2; k++) {
		op->added[k] = only_in(op->nd, s->dir, k, NULL);
		op->removed[k] = only_in(s->dir, op->nd, k, NULL);
	}
	op->dry_run = f[1] != NULL && ss_obj_bool(f[1]);
	if (op->dry_run) {
		finish(op, 0, NULL);
		return;
	}
	for (size_t i = 0; i < az_dir_nusers(op->nd); i++) {
		const az_user *u = az_dir_user_at(op->nd, i);
		if (u->password != NULL)
			op->pw[op->npw++].u = u;
	}
	op->step = IM_LOOKUP;
	if ((rv = lookup(op)) != 0)
		finish(op, rv, NULL);
}
