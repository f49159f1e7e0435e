/*
 * tests/unit/test_guestlink_scripts.c - the Lua scripts of
 * services/guestlink/scripts.c against a real redis-server
 * (redis_fixture.h), run with EVAL over a blocking connection: storing,
 * the index, uses and max_uses, sessions, password reservations and
 * their settling, the lock, leases that ran out, delete, unlock, and the
 * TTL of every key.
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
#include "services/guestlink/guestlink.h"
#include "tests/unit/redis_fixture.h"

#define LINK  "link:{00112233445566778899}"
#define RES   LINK ":res"
#define SESS1 LINK ":s:aaaa"
#define SESS2 LINK ":s:bbbb"
#define TH    "7f00000000000000000000000000000000000000000000000000000000000000"
#define DAY   86400000LL

/* The scripts take the time from us: the real time at the start, so the
 * keys' PEXPIREAT (real time) lies ahead of it as in production. */
static long long NOW;

static struct ss_rfx fx;
static redisContext *rc;

static int
setup(void **state)
{
	struct timespec ts;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &ts);
	NOW = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	(void)state;
	freeReplyObject(redisCommand(rc, "FLUSHALL"));
	return 0;
}

/* EVAL s nkeys args...; the args are C strings ending with NULL. */
static redisReply *
ev(const ss_script *s, int nkeys, ...)
{
	const char *argv[64];
	char nk[8];
	redisReply *r;
	va_list ap;
	int n = 3;

	snprintf(nk, sizeof nk, "%d", nkeys);
	argv[0] = "EVAL";
	argv[1] = s->src;
	argv[2] = nk;
	va_start(ap, nkeys);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		assert_true(n < 64);
		argv[n++] = a;
	}
	va_end(ap);
	r = redisCommandArgv(rc, n, argv, NULL);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("script %s: %s", s->name, r->str);
	return r;
}

static char *
fmt(char *buf, long long v)
{
	sprintf(buf, "%lld", v);
	return buf;
}

static long long
code(const redisReply *r)
{
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_true(r->elements >= 1);
	assert_int_equal(r->element[0]->type, REDIS_REPLY_INTEGER);
	return r->element[0]->integer;
}

static long long
hint(const char *key, const char *field)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
	long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;

	freeReplyObject(r);
	return v;
}

static long long
pttl(const char *key)
{
	redisReply *r = redisCommand(rc, "PTTL %s", key);
	long long v = r->integer;

	freeReplyObject(r);
	return v;
}

/* A link as create.c stores it, expiring at NOW + exp_in and kept grace
 * ms more. */
static void
store_g(long long max, long long maxpw, long long exp_in, long long grace)
{
	char purge[24], exp[24], mx[24], mp[24], at[24];
	long long p = NOW + exp_in + grace;
	redisReply *r;

	r = ev(&gl_script_store, 1, LINK, fmt(purge, p), "th", TH, "tok",
	       "sealed-token", "view", "sealed-view", "study", "1.2.3", "wl",
	       "location:ct", "by", "alice", "by_email", "alice@x.example",
	       "at", fmt(at, NOW), "exp", fmt(exp, NOW + exp_in), "purge",
	       purge, "max", fmt(mx, max), "uses", "0", "maxpw", fmt(mp, maxpw),
	       "fail", "0", "pw", maxpw > 0 ? "pwhash" : "", "dob", "0",
	       "email", "", "msg", "", "notify", "1", "priors", "0", "puids",
	       "", "state", "active", NULL);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_true(pttl(LINK) > 0);
}

static void
store(long long max, long long maxpw, long long exp_in)
{
	store_g(max, maxpw, exp_in, DAY);
}

/* The view-notice bound the scripts are given (a test may change it). */
static long long vn_window = DAY, vn_max = 10;

/* The redeem script at time now; pw: "open" or "pw"; sess: a presented
 * session key or NULL; rid: reservation id. */
static redisReply *
redeem_at(long long now, const char *th, const char *mode, const char *sess,
          const char *rid)
{
	char n[24], lease[24], w[24], m[24];

	return ev(&gl_script_redeem, 4, LINK, RES, SESS1,
	          sess != NULL ? sess : LINK, fmt(n, now), "1800000", th, mode,
	          sess != NULL ? "1" : "0", rid != NULL ? rid : "r0",
	          fmt(lease, now + GL_RESERVE_MS), fmt(w, vn_window),
	          fmt(m, vn_max), NULL);
}

static redisReply *
redeem(const char *mode, const char *sess, const char *rid)
{
	return redeem_at(NOW, TH, mode, sess, rid);
}

static redisReply *
settle(const char *rid, bool ok)
{
	char n[24], lease[24], w[24], m[24];

	return ev(&gl_script_settle, 3, LINK, RES, SESS2, fmt(n, NOW),
	          "1800000", rid, ok ? "1" : "0",
	          fmt(lease, NOW + GL_RESERVE_MS), fmt(w, vn_window),
	          fmt(m, vn_max), NULL);
}

static long long
redeem_code(const char *mode, const char *sess, const char *rid)
{
	redisReply *r = redeem(mode, sess, rid);
	long long c = code(r);

	freeReplyObject(r);
	return c;
}

static void
test_store_refuses_a_taken_id(void **state)
{
	redisReply *r;
	long long t;

	(void)state;
	store(0, 0, DAY);
	r = ev(&gl_script_store, 1, LINK, "9999999999999", "th", "x", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "max"), 0);
	/* The key expires at its purge time: expiry + grace. */
	t = pttl(LINK);
	assert_true(t > 2 * DAY - 60000 && t <= 2 * DAY);
}

static void
test_index_keeps_the_longest_ttl_and_prunes(void **state)
{
	char p1[24], p2[24], n[24];
	redisReply *r;
	long long t1, t2;

	(void)state;
	r = ev(&gl_script_index_add, 1, "link:{ix:w:1}", fmt(p1, NOW + DAY),
	       "aaaa", NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	t1 = pttl("link:{ix:w:1}");
	assert_true(t1 > 0);
	r = ev(&gl_script_index_add, 1, "link:{ix:w:1}", fmt(p2, NOW + 3 * DAY),
	       "bbbb", NULL);
	freeReplyObject(r);
	t2 = pttl("link:{ix:w:1}");
	assert_true(t2 > t1 + DAY);
	/* A shorter-lived link does not shorten the index. */
	r = ev(&gl_script_index_add, 1, "link:{ix:w:1}", fmt(p1, NOW + DAY),
	       "cccc", NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	/* An id there already is said so (create.c keeps it on a retry). */
	r = ev(&gl_script_index_add, 1, "link:{ix:w:1}", fmt(p1, NOW + DAY),
	       "cccc", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_true(pttl("link:{ix:w:1}") > t1 + DAY);
	/* At NOW + 2 days, aaaa and cccc are past their purge time. */
	r = ev(&gl_script_index_read, 1, "link:{ix:w:1}", fmt(n, NOW + 2 * DAY),
	       "10", NULL);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 1);
	assert_string_equal(r->element[0]->str, "bbbb");
	freeReplyObject(r);
}

static void
test_uses_stop_at_max(void **state)
{
	redisReply *r;

	(void)state;
	store(3, 0, DAY);
	for (int i = 1; i <= 3; i++) {
		r = redeem("open", NULL, NULL);
		assert_int_equal(code(r), GL_VIEW);
		assert_int_equal(r->elements, 14);
		assert_string_equal(r->element[1]->str, "sealed-view");
		assert_int_equal(r->element[3]->integer, 1); /* a use */
		assert_int_equal(r->element[4]->integer, i);
		assert_string_equal(r->element[5]->str, "1.2.3");
		assert_string_equal(r->element[6]->str, "location:ct");
		assert_string_equal(r->element[7]->str, "1");
		assert_string_equal(r->element[8]->str, "alice@x.example");
		freeReplyObject(r);
	}
	assert_int_equal(redeem_code("open", NULL, NULL), GL_GONE);
	assert_int_equal(hint(LINK, "uses"), 3);
	/* A password given to a link without one changes nothing. */
	assert_int_equal(redeem_code("pw", NULL, NULL), GL_GONE);
}

static void
test_unlimited_and_wrong_token(void **state)
{
	redisReply *r;

	(void)state;
	store(0, 0, DAY);
	for (int i = 0; i < 10; i++)
		assert_int_equal(redeem_code("open", NULL, NULL), GL_VIEW);
	r = redeem_at(NOW, "00" TH, "open", NULL, NULL);
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "uses"), 10);
}

static void
test_session_reload_is_not_a_use(void **state)
{
	redisReply *r;
	long long t;

	(void)state;
	store(1, 0, DAY);
	r = redeem("open", NULL, NULL);
	assert_int_equal(code(r), GL_VIEW);
	t = r->element[2]->integer;
	assert_int_equal(t, 1800000);
	freeReplyObject(r);
	t = pttl(SESS1);
	assert_true(t > 0 && t <= 1800000);
	/* Used up: a new visitor is refused, the session holder is not. */
	assert_int_equal(redeem_code("open", NULL, NULL), GL_GONE);
	r = redeem("open", SESS1, NULL);
	assert_int_equal(code(r), GL_VIEW);
	assert_int_equal(r->element[3]->integer, 0);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "uses"), 1);
	/* An unknown session is no session. */
	assert_int_equal(redeem_code("open", SESS2, NULL), GL_GONE);
}

static void
test_session_script(void **state)
{
	char n[24];
	redisReply *r;

	(void)state;
	store(0, 0, DAY);
	freeReplyObject(redeem("open", NULL, NULL));
	r = ev(&gl_script_session, 2, LINK, SESS1, fmt(n, NOW), NULL);
	assert_int_equal(code(r), 1);
	assert_string_equal(r->element[1]->str, "sealed-view");
	assert_true(r->element[2]->integer > 0);
	freeReplyObject(r);
	r = ev(&gl_script_session, 2, LINK, SESS2, fmt(n, NOW), NULL);
	assert_int_equal(code(r), 0);
	freeReplyObject(r);
	/* The link expired: its sessions end with it. */
	r = ev(&gl_script_session, 2, LINK, SESS1, fmt(n, NOW + DAY), NULL);
	assert_int_equal(code(r), 0);
	freeReplyObject(r);
}

static void
test_expired(void **state)
{
	redisReply *r;

	(void)state;
	store(0, 0, 1000);
	r = redeem_at(NOW + 999, TH, "open", NULL, NULL);
	assert_int_equal(code(r), GL_VIEW);
	freeReplyObject(r);
	r = redeem_at(NOW + 1000, TH, "open", NULL, NULL);
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
}

static void
test_session_ttl_never_outlives_the_keys(void **state)
{
	redisReply *r;

	(void)state;
	/* No grace: the keys go at expiry, 1 s from now, and a session made
	 * half-way lives 500 ms, not its 30 minutes. */
	store_g(0, 0, 1000, 0);
	r = redeem_at(NOW + 500, TH, "open", NULL, NULL);
	assert_int_equal(code(r), GL_VIEW);
	assert_int_equal(r->element[2]->integer, 500);
	freeReplyObject(r);
	assert_true(pttl(SESS1) > 0 && pttl(SESS1) <= 500);
}

static void
test_password_required_counts_nothing(void **state)
{
	(void)state;
	store(2, 5, DAY);
	for (int i = 0; i < 3; i++)
		assert_int_equal(redeem_code("open", NULL, NULL), GL_PWREQ);
	assert_int_equal(hint(LINK, "uses"), 0);
	assert_int_equal(hint(LINK, "fail"), 0);
}

static void
test_reservations_never_exceed_the_limit(void **state)
{
	char rid[8];
	redisReply *r;

	(void)state;
	store(0, 3, DAY);
	for (int i = 0; i < 3; i++) {
		snprintf(rid, sizeof rid, "r%d", i);
		r = redeem("pw", NULL, rid);
		assert_int_equal(code(r), GL_CHECK);
		assert_string_equal(r->element[1]->str, "pwhash");
		freeReplyObject(r);
	}
	/* All three are under way: a fourth is refused before any check,
	 * as busy (one of them may be right), not as gone. */
	assert_int_equal(redeem_code("pw", NULL, "r3"), GL_BUSY);
	assert_true(pttl(RES) > 0);
	/* Two wrong, the third wrong locks. */
	r = settle("r0", false);
	assert_int_equal(code(r), GL_WRONG);
	assert_int_equal(r->element[1]->integer, 2);
	assert_int_equal(r->element[2]->integer, 1);
	assert_string_equal(r->element[3]->str, "1.2.3");
	freeReplyObject(r);
	r = settle("r1", false);
	assert_int_equal(code(r), GL_WRONG);
	assert_int_equal(r->element[1]->integer, 1);
	freeReplyObject(r);
	r = settle("r2", false);
	assert_int_equal(code(r), GL_LOCKED);
	assert_int_equal(r->element[1]->integer, 3);
	assert_string_equal(r->element[5]->str, "alice@x.example");
	/* abandoned, then the view (for the notice's study), then the
	 * worklist's name (none kept: nil) */
	assert_int_equal(r->elements, 10);
	assert_int_equal(r->element[7]->integer, 0);
	assert_string_equal(r->element[8]->str, "sealed-view");
	assert_int_equal(r->element[9]->type, REDIS_REPLY_NIL);
	freeReplyObject(r);
	r = redisCommand(rc, "HGET %s state", LINK);
	assert_string_equal(r->str, "locked");
	freeReplyObject(r);
	/* Locked: refused, even with a password. */
	assert_int_equal(redeem_code("pw", NULL, "r4"), GL_GONE);
	assert_int_equal(redeem_code("open", NULL, NULL), GL_GONE);
	/* The lock's notice: unconfirmed, the first redemption after its
	 * lease gets the lock again (to send it), and takes a new lease. */
	r = redisCommand(rc, "HGET %s lockmail", LINK);
	assert_int_equal(atoll(r->str), NOW + GL_RESERVE_MS);
	freeReplyObject(r);
	r = redeem_at(NOW + GL_RESERVE_MS, TH, "open", NULL, NULL);
	assert_int_equal(code(r), GL_LOCKED);
	assert_int_equal(r->element[1]->integer, 3);
	assert_string_equal(r->element[5]->str, "alice@x.example");
	assert_int_equal(r->elements, 10);
	assert_string_equal(r->element[8]->str, "sealed-view");
	freeReplyObject(r);
	r = redeem_at(NOW + GL_RESERVE_MS, TH, "pw", NULL, "r5");
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
	/* Confirmed (guestlink deletes the field): never again. */
	freeReplyObject(redisCommand(rc, "HDEL %s lockmail", LINK));
	r = redeem_at(NOW + 10 * GL_RESERVE_MS, TH, "open", NULL, NULL);
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
	/* A settle for a reservation that is not there changes nothing. */
	r = settle("r2", true);
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "fail"), 3);
}

static void
test_right_password_refunds_and_uses(void **state)
{
	redisReply *r;

	(void)state;
	store(1, 2, DAY);
	freeReplyObject(redeem("pw", NULL, "a"));
	freeReplyObject(redeem("pw", NULL, "b"));
	/* a is wrong, b is right: one failure counted, the use taken. */
	r = settle("a", false);
	assert_int_equal(code(r), GL_WRONG);
	assert_int_equal(r->element[1]->integer, 1);
	freeReplyObject(r);
	r = settle("b", true);
	assert_int_equal(code(r), GL_VIEW);
	assert_int_equal(r->element[3]->integer, 1);
	freeReplyObject(r);
	assert_true(pttl(SESS2) > 0);
	assert_int_equal(hint(LINK, "fail"), 1);
	assert_int_equal(hint(LINK, "uses"), 1);
	/* Used up: the next right password finds nothing to use. */
	freeReplyObject(redeem("pw", NULL, "c"));
	assert_int_equal(hint(LINK, "fail"), 1);
}

static void
test_used_up_while_checking(void **state)
{
	redisReply *r;

	(void)state;
	store(1, 5, DAY);
	freeReplyObject(redeem("pw", NULL, "a"));
	freeReplyObject(redeem("pw", NULL, "b"));
	r = settle("a", true);
	assert_int_equal(code(r), GL_VIEW);
	freeReplyObject(r);
	/* b was right too, but the one use is gone. */
	r = settle("b", true);
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "uses"), 1);
	assert_int_equal(hint(LINK, "fail"), 0);
}

static void
test_lapsed_leases_count_as_wrong(void **state)
{
	redisReply *r;

	(void)state;
	store(0, 2, DAY);
	freeReplyObject(redeem("pw", NULL, "a"));
	/* Its guestlink died; past the lease the next attempt counts it. */
	r = redeem_at(NOW + GL_RESERVE_MS + 1, TH, "pw", NULL, "b");
	assert_int_equal(code(r), GL_CHECK);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "fail"), 1);
	/* b lapses too: that reaches the limit, which locks; the answer
	 * ends with the name an upload link keeps of its worklist. */
	freeReplyObject(
	    redisCommand(rc, "HSET %s wlname %s", LINK, "CT suite"));
	r = redeem_at(NOW + 2 * GL_RESERVE_MS + 2, TH, "pw", NULL, "c");
	assert_int_equal(code(r), GL_LOCKED);
	assert_int_equal(r->element[1]->integer, 2);
	assert_int_equal(r->elements, 10);
	assert_int_equal(r->element[7]->integer, 1);
	assert_string_equal(r->element[8]->str, "sealed-view");
	assert_string_equal(r->element[9]->str, "CT suite");
	freeReplyObject(r);
	/* The late settle of a lapsed lease finds nothing. */
	r = settle("a", true);
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
}

static void
test_delete_drops_secrets_and_shortens_ttl(void **state)
{
	char n[24], g[24];
	redisReply *r;

	(void)state;
	store(0, 3, 300 * DAY);
	freeReplyObject(redeem("pw", NULL, "a"));
	r = ev(&gl_script_delete, 2, LINK, RES, fmt(n, NOW), fmt(g, DAY),
	       "alice", NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	r = redisCommand(rc, "HMGET %s tok view pw state", LINK);
	assert_int_equal(r->element[0]->type, REDIS_REPLY_NIL);
	assert_int_equal(r->element[1]->type, REDIS_REPLY_NIL);
	assert_int_equal(r->element[2]->type, REDIS_REPLY_NIL);
	assert_string_equal(r->element[3]->str, "deleted");
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "purge"), NOW + DAY);
	assert_int_equal(pttl(RES), -2);
	assert_int_equal(redeem_code("pw", NULL, "b"), GL_GONE);
	r = settle("a", true);
	assert_int_equal(code(r), GL_GONE);
	freeReplyObject(r);
	r = ev(&gl_script_delete, 2, LINK, RES, n, g, "alice", NULL);
	assert_int_equal(r->integer, 2);
	freeReplyObject(r);
	r = ev(&gl_script_delete, 2, "link:{99999999999999999999}",
	       "link:{99999999999999999999}:res", n, g, "alice", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
}

static void
test_unlock(void **state)
{
	char n[24];
	redisReply *r;

	(void)state;
	store(0, 1, DAY);
	freeReplyObject(redeem("pw", NULL, "a"));
	freeReplyObject(settle("a", false));
	assert_int_equal(redeem_code("pw", NULL, "b"), GL_GONE);
	r = ev(&gl_script_unlock, 2, LINK, RES, fmt(n, NOW), "state", "fail",
	       NULL);
	assert_int_equal(code(r), 1);
	assert_string_equal(r->element[1]->element[0]->str, "active");
	assert_string_equal(r->element[1]->element[1]->str, "0");
	freeReplyObject(r);
	assert_int_equal(redeem_code("pw", NULL, "c"), GL_CHECK);
	/* Not locked: unchanged. */
	r = ev(&gl_script_unlock, 2, LINK, RES, n, "state", NULL);
	assert_int_equal(code(r), 3);
	freeReplyObject(r);
	/* Locked but expired: not unlocked. */
	freeReplyObject(settle("c", false));
	r = ev(&gl_script_unlock, 2, LINK, RES, fmt(n, NOW + DAY), "state",
	       NULL);
	assert_int_equal(code(r), 3);
	assert_string_equal(r->element[1]->element[0]->str, "locked");
	freeReplyObject(r);
	r = ev(&gl_script_unlock, 2, "link:{99999999999999999999}",
	       "link:{99999999999999999999}:res", n, "state", NULL);
	assert_int_equal(code(r), 0);
	freeReplyObject(r);
}

/* A link with view notices mails at most vn_max per vn_window: the
 * last says so, the views after it are held and told, with when the
 * window began, by the first mail of the next window.  A max of 0 (an
 * upload link's) counts nothing. */
static void
test_view_notices_are_bounded(void **state)
{
	static const long long want[] = {1, 1, 2, 0, 0};
	redisReply *r;

	(void)state;
	store(0, 0, 30 * DAY);
	vn_max = 3;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		r = redeem_at(NOW + (long long)i, TH, "open", NULL, NULL);
		assert_int_equal(code(r), GL_VIEW);
		assert_int_equal(r->elements, 14);
		assert_int_equal(r->element[10]->integer, want[i]);
		assert_int_equal(r->element[11]->integer, 0);
		assert_int_equal(r->element[13]->integer, NOW); /* its window */
		freeReplyObject(r);
	}
	assert_int_equal(hint(LINK, "vn_held"), 2);
	/* the next window: mailed, with the two held back since NOW */
	r = redeem_at(NOW + DAY, TH, "open", NULL, NULL);
	assert_int_equal(r->element[10]->integer, 1);
	assert_int_equal(r->element[11]->integer, 2);
	assert_int_equal(r->element[12]->integer, NOW);
	assert_int_equal(r->element[13]->integer, NOW + DAY);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "vn_held"), 0);
	assert_int_equal(hint(LINK, "uses"), 6);
	/* one notice a window: each is the first and the last */
	vn_max = 1;
	r = redeem_at(NOW + 2 * DAY, TH, "open", NULL, NULL);
	assert_int_equal(r->element[10]->integer, 2);
	freeReplyObject(r);
	/* not counted at all */
	vn_max = 0;
	r = redeem_at(NOW + 3 * DAY, TH, "open", NULL, NULL);
	assert_int_equal(r->element[10]->integer, 0);
	assert_int_equal(r->element[13]->integer, 0);
	freeReplyObject(r);
	assert_int_equal(hint(LINK, "vn_at"), NOW + 2 * DAY);
	/* a window begun in the future (a replica's clock that jumped) is
	 * begun again; a few seconds' skew is not */
	vn_max = 3;
	r = redeem_at(NOW + 2 * DAY - 5000, TH, "open", NULL, NULL);
	assert_int_equal(r->element[10]->integer, 1); /* the 2nd of 3 */
	assert_int_equal(r->element[13]->integer, NOW + 2 * DAY);
	freeReplyObject(r);
	r = redeem_at(NOW + DAY, TH, "open", NULL, NULL);
	assert_int_equal(r->element[10]->integer, 1);
	assert_int_equal(r->element[13]->integer, NOW + DAY);
	freeReplyObject(r);
	vn_max = 10;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_store_refuses_a_taken_id, flush),
	    cmocka_unit_test_setup(test_index_keeps_the_longest_ttl_and_prunes,
	                           flush),
	    cmocka_unit_test_setup(test_uses_stop_at_max, flush),
	    cmocka_unit_test_setup(test_unlimited_and_wrong_token, flush),
	    cmocka_unit_test_setup(test_session_reload_is_not_a_use, flush),
	    cmocka_unit_test_setup(test_session_script, flush),
	    cmocka_unit_test_setup(test_expired, flush),
	    cmocka_unit_test_setup(test_session_ttl_never_outlives_the_keys,
	                           flush),
	    cmocka_unit_test_setup(test_password_required_counts_nothing,
	                           flush),
	    cmocka_unit_test_setup(test_reservations_never_exceed_the_limit,
	                           flush),
	    cmocka_unit_test_setup(test_right_password_refunds_and_uses, flush),
	    cmocka_unit_test_setup(test_used_up_while_checking, flush),
	    cmocka_unit_test_setup(test_lapsed_leases_count_as_wrong, flush),
	    cmocka_unit_test_setup(test_delete_drops_secrets_and_shortens_ttl,
	                           flush),
	    cmocka_unit_test_setup(test_unlock, flush),
	    cmocka_unit_test_setup(test_view_notices_are_bounded, flush),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
