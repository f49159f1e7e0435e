/*
 * services/share/store.c - the Lua scripts of share and the code that
 * reads their answers.
 *
 * Each script touches the keys of one hash tag only (Redis Cluster):
 *   deliver, list, priors    share:{wl:<worklist>}:*
 *   invite, claim, release,
 *   finish                   share:{mail:<h>}:*
 * The list script cuts listing members at a fixed offset (study.h): the
 * uid starts at byte 24 (1-based); tests/unit/test_share_study.c pins it
 * to the C macro.
 *
 * A priors set is per patient (share:{wl:<worklist>}:pri:<keyed hash>),
 * its members uids scored by study date: an arrival adds one member to a
 * set of that patient's studies, where one set per worklist for every
 * patient made each arrival an insert at a random place among a million
 * members (bench/README.md, "share").  Only a study's own fields name its
 * set, so a lookup reads the study first (HGET), then the priors script.
 *
 * Studies are stored sealed (study.h): every blob read back is opened
 * under the study's uid and then checked like input before it goes into a
 * reply.  A blob that does not open or does not decode as a study is an
 * internal error, never passed on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "proto/mpcheck.h"
#include "runtime/argv.h"
#include "services/share/share.h"

/* KEYS: studies, index [, priors]  ARGV: uid, blob, index member [, study
 * date] -> 1 added, 0 already held (nothing changed).  No priors key for
 * a study without a patient id or a date. */
ss_script sh_script_deliver = {
    .name = "share_deliver",
    .src = "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then\n"
           "  return 0\n"
           "end\n"
           "redis.call('ZADD', KEYS[2], 0, ARGV[3])\n"
           "if KEYS[3] then\n"
           "  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])\n"
           "end\n"
           "return 1\n",
};

/* KEYS: studies, index  ARGV: cursor or "", count
 * -> {members, blobs}: newest first, strictly after the cursor. */
ss_script sh_script_list = {
    .name = "share_list",
    .src = "local hi = '+'\n"
           "if ARGV[1] ~= '' then hi = '(' .. ARGV[1] end\n"
           "local m = redis.call('ZRANGE', KEYS[2], hi, '-', 'BYLEX', "
           "'REV', 'LIMIT', 0, tonumber(ARGV[2]))\n"
           "if #m == 0 then return {m, {}} end\n"
           "local u = {}\n"
           "for i = 1, #m do u[i] = string.sub(m[i], 24) end\n"
           "return {m, redis.call('HMGET', KEYS[1], unpack(u))}\n",
};

/* KEYS: studies, priors  ARGV: study date, max priors
 * -> {{prior blobs}, {their uids}}, newest first (the uids open the
 * blobs): the patient's studies with a smaller date; on one date, the
 * greater uid first. */
ss_script sh_script_priors = {
    .name = "share_priors",
    .src = "local u = redis.call('ZRANGE', KEYS[2], '(' .. ARGV[1], "
           "'-inf', 'BYSCORE', 'REV', 'LIMIT', 0, tonumber(ARGV[2]))\n"
           "if #u == 0 then return {{}, {}} end\n"
           "return {redis.call('HMGET', KEYS[1], unpack(u)), u}\n",
};

/* KEYS: inv, pending  ARGV: token hash, expires ms, ttl ms, uid, record,
 * now ms -> {"ok"} or {"registered", user} (the address has an account
 * now).  Tokens that expired are dropped here: an address that is shared
 * to every week and never registers keeps only its live tokens. */
ss_script sh_script_invite = {
    .name = "share_invite",
    .src = "local st = redis.call('HGET', KEYS[1], 'state')\n"
           "if st and string.sub(st, 1, 5) == 'user:' then\n"
           "  return {'registered', string.sub(st, 6)}\n"
           "end\n"
           "local f = redis.call('HGETALL', KEYS[1])\n"
           "for i = 1, #f, 2 do\n"
           "  if string.sub(f[i], 1, 2) == 't:' and\n"
           "     tonumber(f[i + 1]) <= tonumber(ARGV[6]) then\n"
           "    redis.call('HDEL', KEYS[1], f[i])\n"
           "  end\n"
           "end\n"
           "redis.call('HSET', KEYS[1], 't:' .. ARGV[1], ARGV[2])\n"
           "redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])\n"
           "for i = 1, 2 do\n"
           "  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[3]) then\n"
           "    redis.call('PEXPIRE', KEYS[i], ARGV[3])\n"
           "  end\n"
           "end\n"
           "return {'ok'}\n",
};

/* KEYS: inv, pending  ARGV: token hash, now ms, claim id, claim until ms
 * -> {"gone"} (unknown, expired or used), {"busy"} (another registration
 * holds a live claim) or {"ok", {uid, record, ...}}. */
ss_script sh_script_claim = {
    .name = "share_claim",
    .src = "local exp = redis.call('HGET', KEYS[1], 't:' .. ARGV[1])\n"
           "if not exp or tonumber(exp) <= tonumber(ARGV[2]) then\n"
           "  return {'gone'}\n"
           "end\n"
           "local st = redis.call('HGET', KEYS[1], 'state')\n"
           "if st and string.sub(st, 1, 5) == 'user:' then\n"
           "  return {'gone'}\n"
           "end\n"
           "if st and string.sub(st, 1, 6) == 'claim:' then\n"
           "  local u = tonumber(string.match(st, ':(%d+)$'))\n"
           "  if u and u > tonumber(ARGV[2]) then return {'busy'} end\n"
           "end\n"
           "redis.call('HSET', KEYS[1], 'state', 'claim:' .. ARGV[3] .. "
           "':' .. ARGV[4])\n"
           "return {'ok', redis.call('HGETALL', KEYS[2])}\n",
};

/* KEYS: inv  ARGV: claim id.  Gives a claim back (registration failed). */
ss_script sh_script_release = {
    .name = "share_release",
    .src = "local st = redis.call('HGET', KEYS[1], 'state')\n"
           "local pre = 'claim:' .. ARGV[1] .. ':'\n"
           "if st and string.sub(st, 1, #pre) == pre then\n"
           "  redis.call('HDEL', KEYS[1], 'state')\n"
           "end\n"
           "return 1\n",
};

/* KEYS: inv, pending  ARGV: claim id, user, delivered uids...
 * Marks the address registered (every token of it is spent), drops the
 * delivered pending shares, and returns those that arrived meanwhile:
 * {uid, record, ...}.  0 when the claim is not ours any more. */
ss_script sh_script_finish = {
    .name = "share_finish",
    .src = "local st = redis.call('HGET', KEYS[1], 'state')\n"
           "local pre = 'claim:' .. ARGV[1] .. ':'\n"
           "if not st or (string.sub(st, 1, #pre) ~= pre and\n"
           "    st ~= 'user:' .. ARGV[2]) then\n"
           "  return 0\n"
           "end\n"
           "redis.call('HSET', KEYS[1], 'state', 'user:' .. ARGV[2])\n"
           "for i = 3, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end\n"
           "return redis.call('HGETALL', KEYS[2])\n",
};

int
sh_store_deliver(sh_server *s, const char *wl, const sh_study *st,
                 const char *blob, size_t bloblen, ss_redis_fn fn, void *arg)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX], k3[SH_KEY_MAX];
	char im[SH_INDEX_MAX + 1];
	size_t imlen;
	int nkeys;
	ss_argv a;
	int rv;

	if (sh_key_wl(k1, wl, "studies") != 0 ||
	    sh_key_wl(k2, wl, "index") != 0)
		return SS_EINTERNAL;
	nkeys = sh_priors_key(wl, st, s->patient_key, k3) > 0 ? 3 : 2;
	imlen = sh_index_member(st, sh_now_ms(), im);
	ss_argv_init(&a);
	ss_argv_pushs(&a, k1);
	ss_argv_pushs(&a, k2);
	if (nkeys == 3)
		ss_argv_pushs(&a, k3);
	ss_argv_pushs(&a, st->uid);
	ss_argv_push(&a, blob, bloblen);
	ss_argv_push(&a, im, imlen);
	if (nkeys == 3)
		ss_argv_pushs(&a, st->study_date);
	if ((rv = ss_argv_status(&a)) == 0)
		rv = ss_redis_eval(s->redis, &sh_script_deliver, fn, arg, nkeys,
		                   a.n, a.v, a.lens);
	ss_argv_free(&a);
	return rv;
}

int
sh_store_priors(sh_server *s, const char *wl, const sh_study *st,
                ss_redis_fn fn, void *arg)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX], max[16];
	const char *argv[4];

	if (sh_priors_key(wl, st, s->patient_key, k2) == 0)
		return SS_ENOTFOUND;
	if (sh_key_wl(k1, wl, "studies") != 0)
		return SS_EINTERNAL;
	snprintf(max, sizeof max, "%d", SH_MAX_PRIORS);
	argv[0] = k1;
	argv[1] = k2;
	argv[2] = st->study_date;
	argv[3] = max;
	return ss_redis_eval(s->redis, &sh_script_priors, fn, arg, 2, 4, argv,
	                     NULL);
}

/* Decodes an opened blob; the caller destroys up on success. */
static int
plain_decode(const char *plain, size_t len, msgpack_unpacked *up)
{
	const char *why;

	if (ss_mpcheck((const uint8_t *)plain, len, 4, 4096, &why) != 0)
		return SS_EINTERNAL;
	msgpack_unpacked_init(up);
	if (msgpack_unpack_next(up, plain, len, NULL) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    up->data.type != MSGPACK_OBJECT_MAP ||
	    ss_map_get(&up->data, "study_uid") == NULL) {
		msgpack_unpacked_destroy(up);
		return SS_EINTERNAL;
	}
	return 0;
}

bool
sh_blob_ok(const sh_server *s, const char *uid, size_t uidlen, const char *blob,
           size_t len)
{
	char plain[SH_PLAIN_MAX];
	msgpack_unpacked up;
	size_t n;
	bool ok = false;

	if (sh_blob_open(&s->seal, uid, uidlen, blob, len, plain, &n) == 0 &&
	    plain_decode(plain, n, &up) == 0) {
		msgpack_unpacked_destroy(&up);
		ok = true;
	}
	sodium_memzero(plain, sizeof plain);
	return ok;
}

int
sh_pack_blob(ss_pack *p, const sh_server *s, const char *uid, size_t uidlen,
             const char *blob, size_t len, const char *added_at)
{
	const msgpack_object_map *m;
	char plain[SH_PLAIN_MAX];
	msgpack_unpacked up;
	size_t n;
	int rv = SS_EINTERNAL;

	if (sh_blob_open(&s->seal, uid, uidlen, blob, len, plain, &n) != 0 ||
	    plain_decode(plain, n, &up) != 0)
		goto fail;
	m = &up.data.via.map;
	msgpack_pack_map(&p->pk, m->size + (added_at != NULL ? 1 : 0));
	for (uint32_t i = 0; i < m->size; i++) {
		msgpack_pack_object(&p->pk, m->ptr[i].key);
		msgpack_pack_object(&p->pk, m->ptr[i].val);
	}
	if (added_at != NULL)
		ss_pack_kv_cstr(p, "added_at", added_at);
	msgpack_unpacked_destroy(&up);
	rv = 0;
fail:
	sodium_memzero(plain, sizeof plain);
	return rv;
}

/* A prior of the lookup's answer: its blob opens under its uid, and it
 * may be the same patient's (sh_study_prior_fits). */
static bool
is_prior(const sh_server *s, const sh_study *st, const redisReply *b,
         const redisReply *u)
{
	sh_study ps;
	bool ok;

	if (b->type != REDIS_REPLY_STRING || u->type != REDIS_REPLY_STRING ||
	    sh_study_open(&s->seal, u->str, b->str, b->len, &ps) != 0)
		return false;
	ok = sh_study_prior_fits(st, &ps);
	sodium_memzero(&ps, sizeof ps);
	return ok;
}

int
sh_pack_lookup(ss_pack *p, const sh_server *s, const char *uid,
               const char *blob, size_t len, const redisReply *r)
{
	const redisReply *pr = NULL, *pu = NULL;
	bool *keep = NULL;
	uint32_t n = 0;
	sh_study st;
	int rv = SS_EINTERNAL;

	if (r != NULL) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_ARRAY ||
		    r->element[1]->type != REDIS_REPLY_ARRAY ||
		    r->element[0]->elements != r->element[1]->elements)
			return SS_EINTERNAL;
		pr = r->element[0];
		pu = r->element[1];
	}
	if (sh_study_open(&s->seal, uid, blob, len, &st) != 0)
		return SS_EINTERNAL;
	if (pr != NULL && pr->elements > 0 &&
	    (keep = calloc(pr->elements, sizeof *keep)) == NULL) {
		rv = SS_ENOMEM;
		goto done;
	}
	/* A prior whose blob is missing or broken is left out: it is an
	 * index entry without its study, not something to show. */
	for (size_t i = 0; keep != NULL && i < pr->elements; i++)
		n += keep[i] = is_prior(s, &st, pr->element[i], pu->element[i]);
	msgpack_pack_map(&p->pk, 2);
	ss_pack_key(p, "study");
	(void)sh_pack_blob(p, s, uid, strlen(uid), blob, len, NULL);
	ss_pack_key(p, "priors");
	msgpack_pack_array(&p->pk, n);
	for (size_t i = 0; keep != NULL && i < pr->elements; i++)
		if (keep[i])
			(void)sh_pack_blob(
			    p, s, pu->element[i]->str, pu->element[i]->len,
			    pr->element[i]->str, pr->element[i]->len, NULL);
	rv = 0;
done:
	free(keep);
	sodium_memzero(&st, sizeof st);
	return rv;
}
