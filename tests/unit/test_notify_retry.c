/*
 * tests/unit/test_notify_retry.c - notify's retry script against a real
 * redis-server: a temporarily failed delivery is parked with its tries
 * and error while it still holds the job's lock (or the lock expired),
 * and touches nothing once another delivery holds the job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "services/notify/notify.h"
#include "tests/unit/redis_fixture.h"

#define STREAM "notify:jobs"
#define TRIES  "notify:{notify:jobs}:tries:j1"
#define JOB    "notify:{notify:jobs}:job:j1"

static struct ss_rfx fx;
static redisContext *rc;
static char entry[64];

static int
setup(void **state)
{
	(void)state;
	return ss_rfx_open(&fx, &rc);
}

static int
teardown(void **state)
{
	(void)state;
	ss_rfx_close(&fx, &rc);
	return 0;
}

/* A fresh stream with one entry, delivered to worker "w1". */
static int
fresh(void **state)
{
	redisReply *r;

	(void)state;
	freeReplyObject(redisCommand(rc, "FLUSHALL"));
	freeReplyObject(
	    redisCommand(rc, "XGROUP CREATE %s notify $ MKSTREAM", STREAM));
	r = redisCommand(rc, "XADD %s * job x", STREAM);
	snprintf(entry, sizeof entry, "%s", r->str);
	freeReplyObject(r);
	freeReplyObject(redisCommand(
	    rc, "XREADGROUP GROUP notify w1 COUNT 1 STREAMS %s >", STREAM));
	return 0;
}

static long long
retry(void)
{
	const char *argv[] = {"EVAL",   nt_retry_script.src,
	                      "3",      STREAM,
	                      TRIES,    JOB,
	                      "notify", "w1",
	                      entry,    "2",
	                      "5000",   "451 try later",
	                      "60000",  "3000"};
	redisReply *r = redisCommandArgv(rc, 14, argv, NULL);
	long long v;

	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("retry script: %s", r->str);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

static void
assert_str(redisReply *r, const char *want)
{
	if (want == NULL)
		assert_int_equal(r->type, REDIS_REPLY_NIL);
	else
		assert_string_equal(r->str, want);
	freeReplyObject(r);
}

/* Our delivery holds the lock: parked, the lock released. */
static void
test_own_lock(void **state)
{
	char owner[96];

	(void)state;
	snprintf(owner, sizeof owner, "w1/%s", entry);
	freeReplyObject(redisCommand(rc, "SET %s %s PX 3000", JOB, owner));
	assert_int_equal(retry(), 1);
	assert_str(redisCommand(rc, "GET %s", JOB), NULL);
	assert_str(redisCommand(rc, "HGET %s n", TRIES), "2");
	assert_str(redisCommand(rc, "HGET %s error", TRIES), "451 try later");
}

/* The lock expired and nobody took it: parked all the same. */
static void
test_lock_expired(void **state)
{
	(void)state;
	assert_int_equal(retry(), 1);
	assert_str(redisCommand(rc, "HGET %s n", TRIES), "2");
}

/* Another delivery holds the job (its lock, or it was sent): nothing is
 * touched, so its lock stands and no third delivery can start. */
static void
test_another_holds_it(void **state)
{
	static const char *const others[] = {"w2/0-1", "sent"};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		freeReplyObject(redisCommand(rc, "DEL %s", TRIES));
		freeReplyObject(
		    redisCommand(rc, "SET %s %s PX 3000", JOB, others[i]));
		assert_int_equal(retry(), 0);
		assert_str(redisCommand(rc, "GET %s", JOB), others[i]);
		assert_str(redisCommand(rc, "HGET %s n", TRIES), NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_own_lock, fresh),
	    cmocka_unit_test_setup(test_lock_expired, fresh),
	    cmocka_unit_test_setup(test_another_holds_it, fresh),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
