/*
 * tests/unit/test_share_store.c - the Lua scripts of services/share/store.c
 * against a real redis-server (redis_fixture.h), run with EVAL over a
 * blocking connection: delivery, paging, priors (the per-patient sets) and
 * the invitation life
 * cycle (invite, claim, release, finish); and the code that reads the
 * lookup's answer (sh_pack_lookup), which opens each sealed study under
 * its own uid.  Studies are delivered sealed, as ingest stores them, and
 * no value or member in Redis carries the patient's data in clear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "services/share/share.h"
#include "tests/unit/redis_fixture.h"

#define SECRET "share-test-seal-key-0123456789abcdef0123"

static struct ss_rfx fx;
static redisContext *rc;
static sh_server srv; /* the keys: what the store code reads of it */

static int
setup(void **state)
{
	(void)state;
	if (ss_seal_key_init(&srv.seal, SECRET, strlen(SECRET)) != 0)
		return -1;
	sh_patient_key(&srv.seal, srv.patient_key);
	return ss_rfx_open(&fx, &rc);
}

static int
teardown(void **state)
{
	(void)state;
	ss_rfx_close(&fx, &rc);
	return 0;
}

static int
flush(void **state)
{
	redisReply *r = redisCommand(rc, "FLUSHALL");

	(void)state;
	freeReplyObject(r);
	return 0;
}

/* EVAL src nkeys args... (NULL-terminated list of C strings, where a NULL
 * blob pointer is not allowed: use evalb for binary arguments). */
static redisReply *
evalv(const ss_script *s, int nkeys, const char **args, const size_t *lens,
      int n)
{
	const char *argv[32];
	size_t alens[32];
	char nk[8];
	redisReply *r;

	assert_true(n + 3 <= 32);
	snprintf(nk, sizeof nk, "%d", nkeys);
	argv[0] = "EVAL";
	alens[0] = 4;
	argv[1] = s->src;
	alens[1] = strlen(s->src);
	argv[2] = nk;
	alens[2] = strlen(nk);
	for (int i = 0; i < n; i++) {
		argv[i + 3] = args[i];
		alens[i + 3] = lens != NULL ? lens[i] : strlen(args[i]);
	}
	r = redisCommandArgv(rc, n + 3, argv, alens);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("%s: %s", s->name, r->str);
	return r;
}

/* A study with the given fields; "" leaves one out. */
static sh_study
study(const char *uid, const char *date, const char *pid)
{
	sh_study st = {0};

	snprintf(st.uid, sizeof st.uid, "%s", uid);
	snprintf(st.study_date, sizeof st.study_date, "%s", date);
	snprintf(st.patient_id, sizeof st.patient_id, "%s", pid);
	snprintf(st.description, sizeof st.description, "study %s", uid);
	snprintf(st.patient_name, sizeof st.patient_name, "NAME^%s", pid);
	snprintf(st.birth_date, sizeof st.birth_date, "19700101");
	return st;
}

/* Runs the deliver script as sh_store_deliver() would. */
static long long
deliver(const char *wl, const sh_study *st, int64_t added)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX], k3[SH_KEY_MAX];
	char im[SH_INDEX_MAX + 1];
	unsigned char blob[SH_BLOB_MAX];
	const char *args[7];
	size_t lens[7], bloblen;
	int nkeys, n = 0;
	redisReply *r;
	long long v;

	assert_int_equal(sh_study_seal(&srv.seal, st, blob, &bloblen), 0);
	sh_key_wl(k1, wl, "studies");
	sh_key_wl(k2, wl, "index");
	nkeys = sh_priors_key(wl, st, srv.patient_key, k3) > 0 ? 3 : 2;
	args[n] = k1;
	lens[n++] = strlen(k1);
	args[n] = k2;
	lens[n++] = strlen(k2);
	if (nkeys == 3) {
		args[n] = k3;
		lens[n++] = strlen(k3);
	}
	args[n] = st->uid;
	lens[n++] = strlen(st->uid);
	args[n] = (const char *)blob;
	lens[n++] = bloblen;
	args[n] = im;
	lens[n++] = sh_index_member(st, added, im);
	if (nkeys == 3) {
		args[n] = st->study_date;
		lens[n++] = strlen(st->study_date);
	}
	r = evalv(&sh_script_deliver, nkeys, args, lens, n);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* ZCARD of the priors set of st's patient in wl. */
static long long
priors_card(const char *wl, const sh_study *st)
{
	char k[SH_KEY_MAX];
	redisReply *r;
	long long n;

	assert_true(sh_priors_key(wl, st, srv.patient_key, k) > 0);
	r = redisCommand(rc, "ZCARD %s", k);
	n = r->integer;
	freeReplyObject(r);
	return n;
}

/* The uid inside a stored blob, which must open under uid. */
static void
blob_uid(const redisReply *b, const char *uid, size_t uidlen, char *out)
{
	char want[SH_UID_MAX + 1];
	sh_study st;

	snprintf(want, sizeof want, "%.*s", (int)uidlen, uid);
	assert_int_equal(b->type, REDIS_REPLY_STRING);
	assert_int_equal(sh_study_open(&srv.seal, want, b->str, b->len, &st),
	                 0);
	strcpy(out, st.uid);
}

static void
test_deliver_is_idempotent(void **state)
{
	sh_study a = study("1.1", "20260101", "P1");
	redisReply *r;

	(void)state;
	assert_int_equal(deliver("location:ct", &a, 1000), 1);
	assert_int_equal(deliver("location:ct", &a, 2000), 0);
	assert_int_equal(deliver("group:neuro", &a, 3000), 1);
	r = redisCommand(rc, "ZCARD share:{wl:location:ct}:index");
	assert_int_equal(r->integer, 1); /* no second member */
	freeReplyObject(r);
	assert_int_equal(priors_card("location:ct", &a), 1);
	assert_int_equal(priors_card("group:neuro", &a), 1);
	r = redisCommand(rc, "HLEN share:{wl:location:ct}:studies");
	assert_int_equal(r->integer, 1); /* the study, nothing else */
	freeReplyObject(r);
	/* No date: listed, but in no priors set. */
	a = study("1.2", "", "P1");
	assert_int_equal(deliver("location:ct", &a, 4000), 1);
	a = study("1.2", "20260101", "P1"); /* P1's set, as named by 1.1 */
	assert_int_equal(priors_card("location:ct", &a), 1);
	r = redisCommand(rc, "KEYS share:{wl:location:ct}:pri:*");
	assert_int_equal(r->elements, 1);
	freeReplyObject(r);
	r = redisCommand(rc, "ZCARD share:{wl:location:ct}:index");
	assert_int_equal(r->integer, 2);
	freeReplyObject(r);
}

/* One page: members and uids in order. */
static int
page(const char *wl, const char *cursor, int limit, char uids[][16], char *last)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX], count[8];
	const char *args[4];
	redisReply *r;
	int n;

	sh_key_wl(k1, wl, "studies");
	sh_key_wl(k2, wl, "index");
	snprintf(count, sizeof count, "%d", limit);
	args[0] = k1;
	args[1] = k2;
	args[2] = cursor;
	args[3] = count;
	r = evalv(&sh_script_list, 2, args, NULL, 4);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 2);
	n = (int)r->element[0]->elements;
	assert_int_equal(r->element[1]->elements, n);
	for (int i = 0; i < n; i++) {
		const redisReply *m = r->element[0]->element[i];

		blob_uid(r->element[1]->element[i], m->str + SH_INDEX_UID_AT,
		         m->len - SH_INDEX_UID_AT, uids[i]);
	}
	if (n > 0)
		strcpy(last, r->element[0]->element[n - 1]->str);
	freeReplyObject(r);
	return n;
}

static void
test_paging_newest_first_without_gaps(void **state)
{
	char uids[16][16], last[SH_INDEX_MAX + 1], seen[64] = {0};
	char cursor[SH_INDEX_MAX + 1] = "";
	int total = 0, n, prev = 100000000;

	(void)state;
	/* 40 studies over 8 dates, 5 per date (ties on the date, ordered by
	 * arrival), delivered in a scrambled order. */
	for (int k = 0; k < 40; k++) {
		int i = (k * 17) % 40;
		char uid[16], date[9];
		sh_study st;

		snprintf(uid, sizeof uid, "9.%d", i + 1);
		snprintf(date, sizeof date, "2026010%d", i / 5 + 1);
		st = study(uid, date, "");
		assert_int_equal(deliver("location:big", &st, 1000 + i), 1);
	}
	do {
		n = page("location:big", cursor, 7, uids, last);
		for (int i = 0; i < n; i++) {
			int id = atoi(uids[i] + 2) - 1;
			assert_false(seen[id]);
			seen[id] = 1;
			/* newest date first, then latest arrival: ids fall */
			assert_true(id < prev);
			prev = id;
		}
		total += n;
		strcpy(cursor, last);
	} while (n == 7);
	assert_int_equal(total, 40);
	/* A study arriving meanwhile with an older date shows up later in
	 * the walk; one with a newer date does not disturb the cursor. */
	n = page("location:big", "", 3, uids, last);
	assert_int_equal(n, 3);
	assert_string_equal(uids[0], "9.40");
}

/* A lookup as list.c makes it: HGET of the study, then, when its opened
 * fields name a priors set, the priors script on it.  Returns the study's
 * reply (the caller frees it) and the script's answer in *pr (NULL when
 * there is none, or when the study is not held). */
static redisReply *
lookup_raw(const char *wl, const char *uid, redisReply **pr)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX];
	const char *args[4] = {k1, k2, NULL, "100"};
	redisReply *b;
	sh_study st;

	*pr = NULL;
	sh_key_wl(k1, wl, "studies");
	b = redisCommand(rc, "HGET %s %s", k1, uid);
	assert_non_null(b);
	if (b->type != REDIS_REPLY_STRING ||
	    sh_study_open(&srv.seal, uid, b->str, b->len, &st) != 0 ||
	    sh_priors_key(wl, &st, srv.patient_key, k2) == 0)
		return b;
	args[2] = st.study_date;
	*pr = evalv(&sh_script_priors, 2, args, NULL, 4);
	return b;
}

static long long
lookup(const char *wl, const char *uid, char out[][16], char *self)
{
	redisReply *b, *r;
	long long n = 0;

	b = lookup_raw(wl, uid, &r);
	if (b->type == REDIS_REPLY_NIL) {
		freeReplyObject(b);
		return -1;
	}
	blob_uid(b, uid, strlen(uid), self);
	freeReplyObject(b);
	if (r == NULL)
		return 0;
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 2);
	n = (long long)r->element[0]->elements;
	/* The priors' uids come along: they open the priors' blobs. */
	assert_int_equal(r->element[1]->elements, n);
	for (long long i = 0; i < n; i++)
		blob_uid(r->element[0]->element[i],
		         r->element[1]->element[i]->str,
		         r->element[1]->element[i]->len, out[i]);
	freeReplyObject(r);
	return n;
}

/* The lookup's answers as share replies them (sh_pack_lookup). */
static int
packed_lookup(const char *wl, const char *uid, char out[][16], int *npriors)
{
	const msgpack_object *study, *priors;
	msgpack_unpacked up;
	redisReply *b, *r;
	ss_pack p;
	int rv;

	b = lookup_raw(wl, uid, &r);
	assert_int_equal(b->type, REDIS_REPLY_STRING);
	ss_pack_init(&p);
	rv = sh_pack_lookup(&p, &srv, uid, b->str, b->len, r);
	freeReplyObject(b);
	if (r != NULL)
		freeReplyObject(r);
	if (rv != 0) {
		assert_int_equal(p.sb.size, 0); /* nothing half-packed */
		ss_pack_free(&p);
		return rv;
	}
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	study = ss_map_get(&up.data, "study");
	priors = ss_map_get(&up.data, "priors");
	assert_non_null(study);
	assert_non_null(priors);
	assert_true(ss_obj_streq(ss_map_get(study, "study_uid"), uid));
	/* The reply carries the patient, opened. */
	assert_true(
	    ss_obj_streq(ss_map_get(ss_map_get(study, "patient"), "birth_date"),
	                 "19700101"));
	*npriors = (int)priors->via.array.size;
	for (int i = 0; i < *npriors; i++)
		ss_obj_strcpy(
		    ss_map_get(&priors->via.array.ptr[i], "study_uid"), out[i],
		    16);
	msgpack_unpacked_destroy(&up);
	ss_pack_free(&p);
	return 0;
}

static void
test_priors(void **state)
{
	const struct {
		const char *uid, *date, *pid;
	} s[] = {
	    {"5.1", "20200101", "P1"}, {"5.2", "20240601", "P1"},
	    {"5.3", "20220301", "P1"}, {"5.4", "20240601", "P1"}, /* same day */
	    {"5.5", "20230101", "P2"},                            /* other */
	    {"5.6", "20190101", "P1"}, {"5.7", "", "P1"},         /* no date */
	    {"5.8", "20250101", "P1"},                            /* later */
	};
	char pri[16][16], self[16];
	sh_study st;

	(void)state;
	for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
		st = study(s[i].uid, s[i].date, s[i].pid);
		assert_int_equal(deliver("location:ct", &st, 1), 1);
	}
	/* The same patient in another worklist is not a prior here. */
	st = study("5.9", "20210101", "P1");
	assert_int_equal(deliver("location:mri", &st, 1), 1);

	assert_int_equal(lookup("location:ct", "5.2", pri, self), 3);
	assert_string_equal(self, "5.2");
	assert_string_equal(pri[0], "5.3");
	assert_string_equal(pri[1], "5.1");
	assert_string_equal(pri[2], "5.6");
	assert_int_equal(lookup("location:ct", "5.6", pri, self), 0);
	assert_int_equal(lookup("location:ct", "5.7", pri, self), 0);
	assert_int_equal(lookup("location:ct", "5.5", pri, self), 0);
	assert_int_equal(lookup("location:ct", "5.8", pri, self), 5);
	assert_string_equal(pri[0], "5.4"); /* same date: uid order, desc */
	assert_string_equal(pri[1], "5.2");
	assert_int_equal(lookup("location:ct", "5.9", pri, self), -1);
	assert_int_equal(lookup("location:mri", "5.9", pri, self), 0);
}

/* What share reads back: each study opens under its own uid only.  A
 * blob put in another study's place (by anyone who can write to Redis)
 * is no study there: the study answers internal, a prior is left out. */
static void
test_lookup_opens_each_under_its_uid(void **state)
{
	char pri[16][16];
	redisReply *r, *b;
	sh_study st;
	int n;

	(void)state;
	st = study("6.1", "20200101", "P6");
	assert_int_equal(deliver("location:ct", &st, 1), 1);
	st = study("6.2", "20210101", "P6");
	assert_int_equal(deliver("location:ct", &st, 1), 1);
	st = study("6.3", "20220101", "P6");
	assert_int_equal(deliver("location:ct", &st, 1), 1);
	assert_int_equal(packed_lookup("location:ct", "6.3", pri, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(pri[0], "6.2");
	assert_string_equal(pri[1], "6.1");

	b = redisCommand(rc, "HGET share:{wl:location:ct}:studies 6.1");
	assert_int_equal(b->type, REDIS_REPLY_STRING);
	r = redisCommand(rc, "HSET share:{wl:location:ct}:studies 6.2 %b",
	                 b->str, b->len);
	freeReplyObject(r);
	/* 6.2 now holds 6.1's blob: left out of 6.3's priors... */
	assert_int_equal(packed_lookup("location:ct", "6.3", pri, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(pri[0], "6.1");
	/* ...and no study of its own. */
	assert_int_equal(packed_lookup("location:ct", "6.2", pri, &n),
	                 SS_EINTERNAL);
	freeReplyObject(b);
}

/* The whole of Redis after deliveries: no patient data in clear, in any
 * key, value or member. */
static void
test_no_patient_data_in_clear(void **state)
{
	static const char *const secret[] = {"NAME^PX-4711", "PX-4711",
	                                     "19700101"};
	sh_study st = study("7.1", "20260101", "PX-4711");
	redisReply *keys;

	(void)state;
	assert_int_equal(deliver("location:ct", &st, 1), 1);
	assert_int_equal(deliver("group:x", &st, 2), 1);
	keys = redisCommand(rc, "KEYS *");
	assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
	assert_true(keys->elements >= 6);
	for (size_t i = 0; i < keys->elements; i++) {
		const char *k = keys->element[i]->str;
		redisReply *t = redisCommand(rc, "TYPE %s", k), *v;

		if (strcmp(t->str, "hash") == 0)
			v = redisCommand(rc, "HGETALL %s", k);
		else
			v = redisCommand(rc, "ZRANGE %s 0 -1", k);
		assert_int_equal(v->type, REDIS_REPLY_ARRAY);
		for (size_t s = 0; s < 3; s++) {
			assert_null(strstr(k, secret[s]));
			for (size_t j = 0; j < v->elements; j++)
				assert_null(memmem(
				    v->element[j]->str, v->element[j]->len,
				    secret[s], strlen(secret[s])));
		}
		freeReplyObject(v);
		freeReplyObject(t);
	}
	freeReplyObject(keys);
}

/* The invitation scripts, by their answers. */
static redisReply *
inv(const ss_script *s, const char **args, int n)
{
	return evalv(s, s == &sh_script_release ? 1 : 2, args, NULL, n);
}

static const char *
tag(const redisReply *r)
{
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
	return r->element[0]->str;
}

/* The invite script: token tok for the address of k1/k2 (study uid and
 * its record), expiring at exp (ms), one hour of TTL, run at now; want is
 * its answer's tag, or NULL when it does not matter. */
static void
invite(const char *k1, const char *k2, const char *tok, const char *exp,
       const char *uid, const char *rec, const char *now, const char *want)
{
	redisReply *r = inv(
	    &sh_script_invite,
	    (const char *[]){k1, k2, tok, exp, "3600000", uid, rec, now}, 8);

	if (want != NULL)
		assert_string_equal(tag(r), want);
	freeReplyObject(r);
}

static void
test_invitation_life_cycle(void **state)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX], far[24], soon[24], now[24];
	redisReply *r;

	(void)state;
	sh_key_mail(k1, srv.patient_key, "gp@outside.example", "inv");
	sh_key_mail(k2, srv.patient_key, "gp@outside.example", "pending");
	snprintf(now, sizeof now, "%lld", (long long)sh_now_ms());
	snprintf(far, sizeof far, "%lld", (long long)sh_now_ms() + 3600000);
	snprintf(soon, sizeof soon, "%lld", (long long)sh_now_ms() + 60000);

	/* Unknown token. */
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokA", now, "c1", soon}, 6);
	assert_string_equal(tag(r), "gone");
	freeReplyObject(r);

	/* Two invitations (two tokens, two studies) to one address. */
	invite(k1, k2, "tokA", far, "1.1", "rec1", now, "ok");
	invite(k1, k2, "tokB", far, "1.2", "rec2", now, "ok");
	r = redisCommand(rc, "PTTL %s", k1);
	assert_true(r->integer > 3500000 && r->integer <= 3600000);
	freeReplyObject(r);

	/* An expired token is gone. */
	invite(k1, k2, "tokOld", now, "1.1", "rec1", now, NULL);
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokOld", now, "c0", soon}, 6);
	assert_string_equal(tag(r), "gone");
	freeReplyObject(r);
	/* The next invitation drops it; live tokens stay. */
	invite(k1, k2, "tokA", far, "1.1", "rec1", now, "ok");
	r = redisCommand(rc, "HEXISTS %s t:tokOld", k1);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	r = redisCommand(rc, "HEXISTS %s t:tokB", k1);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);

	/* Claim with A: both pending shares come back. */
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokA", now, "c1", soon}, 6);
	assert_string_equal(tag(r), "ok");
	assert_int_equal(r->element[1]->elements, 4);
	freeReplyObject(r);
	/* A second registration meanwhile, with either token: busy. */
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokB", now, "c2", soon}, 6);
	assert_string_equal(tag(r), "busy");
	freeReplyObject(r);
	/* Released (authz refused the user id): claimable again. */
	r = inv(&sh_script_release, (const char *[]){k1, "c-not-mine"}, 2);
	freeReplyObject(r);
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokB", now, "c2", soon}, 6);
	assert_string_equal(tag(r), "busy"); /* someone else's release */
	freeReplyObject(r);
	r = inv(&sh_script_release, (const char *[]){k1, "c1"}, 2);
	freeReplyObject(r);
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokB", now, "c2", soon}, 6);
	assert_string_equal(tag(r), "ok");
	freeReplyObject(r);
	/* An expired claim can be taken over. */
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokA", soon, "c3", far}, 6);
	assert_string_equal(tag(r), "ok");
	freeReplyObject(r);
	/* The old claim cannot finish; the new one can. */
	r = inv(&sh_script_finish, (const char *[]){k1, k2, "c2", "gp", "1.1"},
	        5);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	/* A share pending since the claim comes back from finish. */
	r = inv(&sh_script_finish, (const char *[]){k1, k2, "c3", "gp", "1.1"},
	        5);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 2);
	assert_string_equal(r->element[0]->str, "1.2");
	freeReplyObject(r);
	r = inv(&sh_script_finish, (const char *[]){k1, k2, "c3", "gp", "1.2"},
	        5);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 0);
	freeReplyObject(r);
	/* Every token of the address is spent now. */
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokA", now, "c4", soon}, 6);
	assert_string_equal(tag(r), "gone");
	freeReplyObject(r);
	r = inv(&sh_script_claim,
	        (const char *[]){k1, k2, "tokB", now, "c4", soon}, 6);
	assert_string_equal(tag(r), "gone");
	freeReplyObject(r);
	/* A later invitation learns that the address has an account. */
	r = inv(
	    &sh_script_invite,
	    (const char *[]){k1, k2, "tokC", far, "3600000", "1.3", "rec", now},
	    8);
	assert_string_equal(tag(r), "registered");
	assert_string_equal(r->element[1]->str, "gp");
	freeReplyObject(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_deliver_is_idempotent, flush),
	    cmocka_unit_test_setup(test_paging_newest_first_without_gaps,
	                           flush),
	    cmocka_unit_test_setup(test_priors, flush),
	    cmocka_unit_test_setup(test_lookup_opens_each_under_its_uid, flush),
	    cmocka_unit_test_setup(test_no_patient_data_in_clear, flush),
	    cmocka_unit_test_setup(test_invitation_life_cycle, flush),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
