/*
 * tests/unit/test_redis.c - runtime/redis.c against a real redis-server.
 *
 * Each test gets a fresh daemon (loop) and its own ss_redis on the shared
 * server of redis_fixture.h; tests that crash the server restart it.
 * Every callback counts its calls: each accepted command must be answered
 * exactly once, whatever happens to the connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proto/errors.h"
#include "runtime/daemon.h"
#include "runtime/metrics.h"
#include "runtime/redis.h"
#include "tests/unit/redis_fixture.h"

static struct ss_rfx fx;
static ss_common_settings common = {.log_level = "info", .drain_ms = 1000};

/* One command's answer, as seen by its callback. */
struct answer {
	int calls;
	int err;
	int type;
	long long integer;
	char str[256];
	size_t len;
	int seq; /* order in which the callbacks ran */
};

static int seq_counter;

static void
on_answer(int err, redisReply *reply, void *arg)
{
	struct answer *a = arg;

	a->calls++;
	a->err = err;
	a->seq = seq_counter++;
	if (reply != NULL) {
		a->type = reply->type;
		a->integer = reply->integer;
		if (reply->str != NULL) {
			a->len = reply->len < sizeof(a->str) ? reply->len
			                                     : sizeof(a->str);
			memcpy(a->str, reply->str, a->len);
		}
	} else {
		a->type = -1;
	}
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until cond(arg) holds or ms pass; returns cond(arg). */
static bool
run_until(ss_daemon *d, bool (*cond)(void *), void *arg, int ms)
{
	struct timeval tv = {0, 10000};
	struct event *ev = event_new(d->base, -1, EV_PERSIST, tick, NULL);
	int64_t end = now_ms() + ms;
	bool ok;

	event_add(ev, &tv);
	while (!(ok = cond(arg)) && now_ms() < end)
		event_base_loop(d->base, EVLOOP_ONCE);
	event_free(ev);
	return ok;
}

static bool
never(void *arg)
{
	(void)arg;
	return false;
}

static void
run_for(ss_daemon *d, int ms)
{
	run_until(d, never, NULL, ms);
}

static bool
is_ready(void *arg)
{
	return ss_redis_ready(arg);
}

static bool
answered(void *arg)
{
	return ((struct answer *)arg)->calls > 0;
}

struct all_arg {
	struct answer *a;
	int n;
};

static bool
all_answered(void *arg)
{
	struct all_arg *x = arg;

	for (int i = 0; i < x->n; i++)
		if (x->a[i].calls == 0)
			return false;
	return true;
}

/* The daemon's probe registered under name. */
static bool
probe(ss_daemon *d, const char *name, const char **why)
{
	for (int i = 0; i < d->nprobes; i++)
		if (strcmp(d->probes[i].name, name) == 0)
			return d->probes[i].fn(d->probes[i].arg, why);
	fail_msg("no probe named %s", name);
	return false;
}

/* A synchronous command on a side connection; returns the reply. */
static redisReply *
side(const struct ss_rfx *f, const char *fmt, ...)
{
	redisContext *c = ss_rfx_connect(f);
	redisReply *rep;
	va_list ap;

	assert_non_null(c);
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	assert_non_null(rep);
	return rep;
}

static int
setup_group(void **state)
{
	(void)state;
	return ss_rfx_start(&fx, NULL);
}

static int
teardown_group(void **state)
{
	(void)state;
	ss_rfx_stop(&fx);
	return 0;
}

struct t {
	ss_daemon d;
	ss_redis *r;
	struct ss_rfx pfx; /* a second server, stopped even if a test fails */
};

static int
setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	if (t == NULL || ss_daemon_init(&t->d, "test", &common) != 0)
		return -1;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct t *t = *state;

	ss_redis_close(t->r);
	ss_rfx_stop(&t->pfx);
	ss_daemon_fini(&t->d);
	free(t);
	return 0;
}

static ss_redis *
open_ready(struct t *t, const char *name, int timeout_ms, ss_script **s,
           size_t ns)
{
	assert_int_equal(ss_redis_open(&t->r, &t->d, name, fx.addr, NULL, NULL,
	                               timeout_ms, s, ns),
	                 0);
	assert_true(run_until(&t->d, is_ready, t->r, 3000));
	return t->r;
}

static void
test_not_ready_at_first(void **state)
{
	struct t *t = *state;
	struct answer a = {0};
	const char *why = NULL;

	assert_int_equal(ss_redis_open(&t->r, &t->d, "redis", fx.addr, NULL,
	                               NULL, 1000, NULL, 0),
	                 0);
	/* The connect is asynchronous: nothing is ready before the loop ran. */
	assert_false(ss_redis_ready(t->r));
	assert_false(probe(&t->d, "redis", &why));
	assert_non_null(why);
	assert_int_equal(ss_redis_cmd(t->r, on_answer, &a, "PING"),
	                 SS_EUNAVAIL);
	assert_true(run_until(&t->d, is_ready, t->r, 3000));
	assert_true(probe(&t->d, "redis", &why));
	run_for(&t->d, 50);
	assert_int_equal(a.calls, 0); /* refused commands are not called back */
}

static void
test_roundtrip(void **state)
{
	struct t *t = *state;
	ss_redis *r = open_ready(t, "redis", 1000, NULL, 0);
	struct answer set = {0}, get = {0}, bset = {0}, bget = {0}, f = {0};
	static const char bin[] = {'a', 0, 'b', 0, 0, 'c'};
	const char *argv[3] = {"SET", "rt:bin", bin};
	size_t lens[3] = {3, 6, sizeof(bin)};

	assert_int_equal(
	    ss_redis_cmd(r, on_answer, &set, "SET %s %s", "rt:k", "hello"), 0);
	assert_int_equal(ss_redis_cmd(r, on_answer, &get, "GET %s", "rt:k"), 0);
	assert_int_equal(ss_redis_cmdargv(r, on_answer, &bset, 3, argv, lens),
	                 0);
	assert_int_equal(
	    ss_redis_cmd(r, on_answer, &bget, "GET %b", "rt:bin", (size_t)6),
	    0);
	assert_int_equal(ss_redis_cmd(r, on_answer, &f, "NOSUCHCOMMAND"), 0);
	assert_true(run_until(&t->d, answered, &f, 2000));

	assert_int_equal(set.calls, 1);
	assert_int_equal(set.err, 0);
	assert_int_equal(set.type, REDIS_REPLY_STATUS);
	assert_int_equal(get.calls, 1);
	assert_int_equal(get.type, REDIS_REPLY_STRING);
	assert_int_equal(get.len, 5);
	assert_memory_equal(get.str, "hello", 5);
	assert_int_equal(bset.calls, 1);
	assert_int_equal(bget.calls, 1);
	assert_int_equal(bget.type, REDIS_REPLY_STRING);
	assert_int_equal(bget.len, sizeof(bin));
	assert_memory_equal(bget.str, bin, sizeof(bin));
	/* A Redis error is an answer, not a failure of the connection. */
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.err, 0);
	assert_int_equal(f.type, REDIS_REPLY_ERROR);
	assert_true(ss_redis_ready(r));
}

#define NFLIGHT 1000

static void
test_many_in_flight(void **state)
{
	struct t *t = *state;
	ss_redis *r = open_ready(t, "redis-blocking", 5000, NULL, 0);
	struct answer *a = calloc(NFLIGHT, sizeof(*a));
	struct all_arg all = {a, NFLIGHT};
	const char *why = NULL;
	int i, base;

	assert_non_null(a);
	/* The probe carries the connection's name. */
	assert_true(probe(&t->d, "redis-blocking", &why));
	freeReplyObject(side(&fx, "DEL inflight:n"));
	for (i = 0; i < NFLIGHT; i++)
		assert_int_equal(
		    ss_redis_cmd(r, on_answer, &a[i], "INCR inflight:n"), 0);
	assert_true(run_until(&t->d, all_answered, &all, 5000));
	base = a[0].seq;
	for (i = 0; i < NFLIGHT; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].err, 0);
		assert_int_equal(a[i].type, REDIS_REPLY_INTEGER);
		assert_int_equal(a[i].integer, i + 1); /* sent order */
		assert_int_equal(a[i].seq, base + i); /* called back in order */
	}
	free(a);
}

static const char set_get_src[] =
    "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])";

static void
check_eval(struct t *t, ss_script *s, const char *key, const char *val,
           size_t vlen)
{
	struct answer a = {0};
	const char *argv[2] = {key, val};
	size_t lens[2] = {strlen(key), vlen};
	char copy[64];

	/* The argv is copied: the caller's buffer may change at once. */
	assert_true(vlen <= sizeof(copy));
	memcpy(copy, val, vlen);
	argv[1] = copy;
	assert_int_equal(
	    ss_redis_eval(t->r, s, on_answer, &a, 1, 2, argv, lens), 0);
	memset(copy, 'x', sizeof(copy));
	assert_true(run_until(&t->d, answered, &a, 2000));
	run_for(&t->d, 20);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, 0);
	assert_int_equal(a.type, REDIS_REPLY_STRING);
	assert_int_equal(a.len, vlen);
	assert_memory_equal(a.str, val, vlen);
}

static long long
script_exists(const char *sha)
{
	redisReply *rep = side(&fx, "SCRIPT EXISTS %s", sha);
	long long v;

	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->elements, 1);
	v = rep->element[0]->integer;
	freeReplyObject(rep);
	return v;
}

/* A counter from INFO: "<field>:calls=N" or "<field>:count=N", else 0. */
static long long
info_count(const char *section, const char *field)
{
	redisReply *rep = side(&fx, "INFO %s", section);
	const char *p;
	long long v = 0;

	assert_int_equal(rep->type, REDIS_REPLY_STRING);
	p = strstr(rep->str, field);
	if (p != NULL && (p = strchr(p, '=')) != NULL)
		v = atoll(p + 1);
	freeReplyObject(rep);
	return v;
}

static void
test_eval_and_noscript(void **state)
{
	struct t *t = *state;
	ss_script s = {.name = "set_get", .src = set_get_src};
	ss_script other = {.name = "unregistered", .src = "return ARGV[1]"};
	ss_script *list[] = {&s};
	static const char v1[] = {'v', 0, '1'};
	redisReply *rep;
	struct answer a = {0};
	const char *argv[1] = {"x"};
	long long shas, noscripts, evals;

	freeReplyObject(side(&fx, "SCRIPT FLUSH"));
	open_ready(t, "redis", 1000, list, 1);
	/* SCRIPT LOAD answered before the connection became ready. */
	assert_int_equal(strlen(s.sha), 40);
	rep = side(&fx, "SCRIPT LOAD %s", set_get_src);
	assert_int_equal(rep->type, REDIS_REPLY_STRING);
	assert_string_equal(rep->str, s.sha);
	freeReplyObject(rep);

	shas = info_count("commandstats", "cmdstat_evalsha:");
	check_eval(t, &s, "ev:k", v1, sizeof(v1));
	assert_int_equal(info_count("commandstats", "cmdstat_evalsha:"),
	                 shas + 1);

	/* The server forgets the script: EVALSHA meets NOSCRIPT and the
	 * command is resent as EVAL, which caches the script again. */
	freeReplyObject(side(&fx, "SCRIPT FLUSH"));
	assert_int_equal(script_exists(s.sha), 0);
	noscripts = info_count("errorstats", "errorstat_NOSCRIPT:");
	evals = info_count("commandstats", "cmdstat_eval:");
	check_eval(t, &s, "ev:k2", "second", 6);
	assert_int_equal(info_count("errorstats", "errorstat_NOSCRIPT:"),
	                 noscripts + 1);
	assert_int_equal(info_count("commandstats", "cmdstat_eval:"),
	                 evals + 1);
	assert_int_equal(script_exists(s.sha), 1);
	check_eval(t, &s, "ev:k3", "third", 5);

	/* A script that was never loaded goes out as EVAL. */
	assert_string_equal(other.sha, "");
	assert_int_equal(
	    ss_redis_eval(t->r, &other, on_answer, &a, 0, 1, argv, NULL), 0);
	assert_true(run_until(&t->d, answered, &a, 2000));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.type, REDIS_REPLY_STRING);
	assert_memory_equal(a.str, "x", 1);
}

static void
run_broken_script(void *arg)
{
	struct t *t = arg;
	static ss_script bad = {.name = "broken", .src = "return (("};
	static ss_script *list[] = {&bad};
	struct answer a = {0};

	/* A script that does not compile is a bug: logged, the connection
	 * still serves, and EVAL hands Redis's error to the caller. */
	open_ready(t, "redis", 1000, list, 1);
	assert_string_equal(bad.sha, "");
	assert_int_equal(
	    ss_redis_eval(t->r, &bad, on_answer, &a, 0, 0, NULL, NULL), 0);
	assert_true(run_until(&t->d, answered, &a, 2000));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, 0);
	assert_int_equal(a.type, REDIS_REPLY_ERROR);
}

static char *capture_stderr(void (*fn)(void *), void *arg);

static void
test_broken_script(void **state)
{
	char *logs = capture_stderr(run_broken_script, *state);

	assert_non_null(strstr(logs, "\"event\":\"redis.script_load_failed\""));
	assert_non_null(strstr(logs, "\"script\":\"broken\""));
	free(logs);
}

static void
test_timeout_then_recovers(void **state)
{
	struct t *t = *state;
	ss_redis *r = open_ready(t, "redis", 200, NULL, 0);
	struct answer a[3] = {{0}}, ok = {0};
	struct all_arg all = {a, 3};
	const char *why = NULL;
	int64_t start;
	int i;

	/* Every client's commands wait 1.5 s: ours are not answered. */
	freeReplyObject(side(&fx, "CLIENT PAUSE 1500"));
	start = now_ms();
	for (i = 0; i < 3; i++)
		assert_int_equal(ss_redis_cmd(r, on_answer, &a[i], "PING"), 0);
	assert_true(run_until(&t->d, all_answered, &all, 1400));
	assert_true(now_ms() - start >= 150);
	for (i = 0; i < 3; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].err, SS_EUNAVAIL);
	}
	assert_false(ss_redis_ready(r));
	assert_false(probe(&t->d, "redis", &why));
	assert_non_null(why);
	assert_int_equal(ss_redis_cmd(r, on_answer, &ok, "PING"), SS_EUNAVAIL);

	/* No action from us: the pause ends and the connection comes back. */
	assert_true(run_until(&t->d, is_ready, r, 6000));
	assert_int_equal(ss_redis_cmd(r, on_answer, &ok, "PING"), 0);
	assert_true(run_until(&t->d, answered, &ok, 1000));
	assert_int_equal(ok.err, 0);
	assert_int_equal(ok.type, REDIS_REPLY_STATUS);
	assert_true(probe(&t->d, "redis", &why));
	run_for(&t->d, 300);
	for (i = 0; i < 3; i++)
		assert_int_equal(a[i].calls, 1);
	assert_int_equal(ok.calls, 1);
}

/* An idle connection to a Redis that stopped answering: the probe's own
 * PING finds it (a stopped process keeps its socket open). */
static void
test_probe_finds_a_silent_server(void **state)
{
	struct t *t = *state;
	ss_redis *r = open_ready(t, "redis", 200, NULL, 0);
	const char *why = NULL;

	freeReplyObject(side(&fx, "CLIENT PAUSE 1500"));
	assert_true(probe(&t->d, "redis", &why)); /* sends the PING */
	run_for(&t->d, 400);
	assert_false(ss_redis_ready(r)); /* dropped: "no answer within" */
	assert_false(probe(&t->d, "redis", &why));
	assert_non_null(why);
	assert_true(run_until(&t->d, is_ready, r, 6000));
	assert_true(probe(&t->d, "redis", &why));
}

/* A full Redis (OOM) answers an error that is its state, not the
 * command's: the caller gets SS_EUNAVAIL, logged once a second at most;
 * a command's own error (a wrong type) still comes as the reply. */
struct full_run {
	struct t *t;
	ss_redis *r;
	struct answer a[3];
};

static void
full_send(void *arg)
{
	struct full_run *f = arg;
	struct all_arg all = {f->a, 2};

	assert_int_equal(ss_redis_cmd(f->r, on_answer, &f->a[0], "SET k v"), 0);
	assert_int_equal(ss_redis_cmd(f->r, on_answer, &f->a[1], "RPUSH k v"),
	                 0);
	assert_true(run_until(&f->t->d, all_answered, &all, 2000));
}

static void
test_full_redis_is_unavailable(void **state)
{
	struct t *t = *state;
	struct full_run f = {t, open_ready(t, "redis", 2000, NULL, 0), {{0}}};
	char *logs;

	freeReplyObject(side(&fx, "CONFIG SET maxmemory 1"));
	logs = capture_stderr(full_send, &f);
	freeReplyObject(side(&fx, "CONFIG SET maxmemory 0"));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f.a[i].calls, 1);
		assert_int_equal(f.a[i].err, SS_EUNAVAIL);
	}
	assert_non_null(strstr(logs, "\"event\":\"redis.refused\""));
	assert_non_null(strstr(logs, "OOM"));
	assert_null(strstr(strstr(logs, "redis.refused") + 1, "redis.refused"));
	free(logs);
	assert_true(ss_redis_ready(f.r));
	/* Room again: taken.  A wrong type is the command's own error. */
	assert_int_equal(ss_redis_cmd(f.r, on_answer, &f.a[2], "SET k v"), 0);
	assert_true(run_until(&t->d, answered, &f.a[2], 1000));
	assert_int_equal(f.a[2].err, 0);
	memset(&f.a[0], 0, sizeof f.a[0]);
	assert_int_equal(ss_redis_cmd(f.r, on_answer, &f.a[0], "RPUSH k v"), 0);
	assert_true(run_until(&t->d, answered, &f.a[0], 1000));
	assert_int_equal(f.a[0].err, 0);
	assert_int_equal(f.a[0].type, REDIS_REPLY_ERROR);
}

static void
test_killed_then_restarted(void **state)
{
	struct t *t = *state;
	ss_redis *r = open_ready(t, "redis", 5000, NULL, 0);
	struct answer a[4] = {{0}}, late = {0}, ok = {0};
	struct all_arg all = {a, 4};
	const char *why = NULL;
	struct evbuffer *m;
	int i;

	/* BLPOP never answers; the GETs queue behind it on the connection. */
	assert_int_equal(ss_redis_cmd(r, on_answer, &a[0], "BLPOP never:key 0"),
	                 0);
	for (i = 1; i < 4; i++)
		assert_int_equal(ss_redis_cmd(r, on_answer, &a[i], "GET x"), 0);
	run_for(&t->d, 100);
	assert_int_equal(a[0].calls, 0);

	ss_rfx_kill(&fx);
	assert_true(run_until(&t->d, all_answered, &all, 2000));
	for (i = 0; i < 4; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].err, SS_EUNAVAIL);
	}
	assert_false(ss_redis_ready(r));
	assert_false(probe(&t->d, "redis", &why));
	assert_int_equal(ss_redis_cmd(r, on_answer, &late, "GET x"),
	                 SS_EUNAVAIL);
	m = evbuffer_new();
	ss_metrics_render(m);
	evbuffer_add(m, "", 1);
	assert_non_null(strstr((char *)evbuffer_pullup(m, -1),
	                       "studyshare_redis_up{conn=\"redis\"} 0"));
	evbuffer_free(m);

	/* Still down for a while: reconnect attempts fail, nothing crashes. */
	run_for(&t->d, 700);
	assert_false(ss_redis_ready(r));

	assert_int_equal(ss_rfx_restart(&fx), 0);
	assert_true(run_until(&t->d, is_ready, r, 8000));
	assert_int_equal(ss_redis_cmd(r, on_answer, &ok, "SET k v"), 0);
	assert_true(run_until(&t->d, answered, &ok, 1000));
	assert_int_equal(ok.err, 0);
	assert_int_equal(ok.type, REDIS_REPLY_STATUS);
	assert_true(probe(&t->d, "redis", &why));

	m = evbuffer_new();
	ss_metrics_render(m);
	evbuffer_add(m, "", 1);
	assert_non_null(strstr((char *)evbuffer_pullup(m, -1),
	                       "studyshare_redis_up{conn=\"redis\"} 1"));
	evbuffer_free(m);
	for (i = 0; i < 4; i++)
		assert_int_equal(a[i].calls, 1);
	assert_int_equal(late.calls, 0);
}

/* Runs fn with fd 2 going to a file, and returns what was written. */
static char *
capture_stderr(void (*fn)(void *), void *arg)
{
	char path[] = "/tmp/ss-redis-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char *buf = calloc(1, 65536);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0 && buf != NULL);
	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, 65535);
	assert_true(n >= 0);
	close(fd);
	return buf;
}

struct pw_run {
	struct t *t;
	struct ss_rfx *f;
	const char *password;
};

static void
pw_open_and_wait(void *arg)
{
	struct pw_run *p = arg;

	assert_int_equal(ss_redis_open(&p->t->r, &p->t->d, "redis", p->f->addr,
	                               NULL, p->password, 500, NULL, 0),
	                 0);
	run_for(&p->t->d, 800);
}

/* Opens with run's password and lets it try: it must not get in (not
 * ready, the probe's reason names word).  Returns what it logged. */
static char *
open_refused(struct pw_run *run, const char *word)
{
	const char *why = NULL;
	char *logs = capture_stderr(pw_open_and_wait, run);

	assert_false(ss_redis_ready(run->t->r));
	assert_false(probe(&run->t->d, "redis", &why));
	assert_non_null(strstr(why, word));
	return logs;
}

static void
test_wrong_password(void **state)
{
	struct t *t = *state;
	const char *extra[] = {"--requirepass", "right-horse-battery", NULL};
	struct pw_run run = {t, &t->pfx, "wrong-staple-Zq9"};
	struct answer a = {0};
	char *logs;

	assert_int_equal(ss_rfx_start(&t->pfx, extra), 0);
	logs = open_refused(&run, "WRONGPASS");
	/* The logs say why, once, and never carry the password. */
	assert_non_null(strstr(logs, "\"event\":\"redis.disconnected\""));
	assert_non_null(strstr(logs, "WRONGPASS"));
	assert_null(strstr(strstr(logs, "redis.disconnected") + 1,
	                   "redis.disconnected"));
	assert_null(strstr(logs, "wrong-staple-Zq9"));
	assert_null(strstr(logs, "redis.connected"));
	assert_int_equal(ss_redis_cmd(t->r, on_answer, &a, "PING"),
	                 SS_EUNAVAIL);
	free(logs);
	ss_redis_close(t->r);
	t->r = NULL;

	/* No password at all: PING meets NOAUTH, also not ready. */
	run.password = NULL;
	logs = open_refused(&run, "NOAUTH");
	assert_non_null(strstr(logs, "NOAUTH"));
	free(logs);
	ss_redis_close(t->r);
	t->r = NULL;

	/* The right one works. */
	assert_int_equal(ss_redis_open(&t->r, &t->d, "redis", t->pfx.addr, NULL,
	                               "right-horse-battery", 500, NULL, 0),
	                 0);
	assert_true(run_until(&t->d, is_ready, t->r, 3000));
	assert_int_equal(ss_redis_cmd(t->r, on_answer, &a, "PING"), 0);
	assert_true(run_until(&t->d, answered, &a, 1000));
	assert_int_equal(a.err, 0);
	assert_int_equal(a.type, REDIS_REPLY_STATUS);
	ss_redis_close(t->r);
	t->r = NULL;
	assert_int_equal(a.calls, 1);
}

/* An ACL user (Redis 6): AUTH user password.  The default user is off,
 * so the password alone, as the default user's, is refused. */
static void
test_acl_user(void **state)
{
	struct t *t = *state;
	const char *extra[] = {
	    "--user",         "default", "off", "--user", "ss-authz", "on",
	    ">acl-pass-7-Kq", "~*",      "&*",  "+@all",  NULL};
	struct pw_run run = {t, &t->pfx, "acl-pass-7-Kq"};
	struct answer a = {0};

	assert_int_equal(ss_rfx_start(&t->pfx, extra), 0);
	free(open_refused(&run, "AUTH failed"));
	ss_redis_close(t->r);
	t->r = NULL;

	assert_int_equal(ss_redis_open(&t->r, &t->d, "redis", t->pfx.addr,
	                               "ss-authz", "acl-pass-7-Kq", 500, NULL,
	                               0),
	                 0);
	assert_true(run_until(&t->d, is_ready, t->r, 3000));
	assert_int_equal(ss_redis_cmd(t->r, on_answer, &a, "ACL WHOAMI"), 0);
	assert_true(run_until(&t->d, answered, &a, 1000));
	assert_int_equal(a.err, 0);
	assert_int_equal(a.type, REDIS_REPLY_STRING);
	assert_string_equal(a.str, "ss-authz");
	ss_redis_close(t->r);
	t->r = NULL;

	/* A user without a password is no AUTH at all: NOAUTH. */
	assert_int_equal(ss_redis_open(&t->r, &t->d, "redis", t->pfx.addr,
	                               "ss-authz", NULL, 500, NULL, 0),
	                 0);
	run_for(&t->d, 800);
	assert_false(ss_redis_ready(t->r));
	ss_redis_close(t->r);
	t->r = NULL;
}

static void
test_close_fails_pending(void **state)
{
	struct t *t = *state;
	ss_redis *r = open_ready(t, "redis", 5000, NULL, 0);
	struct answer a[3] = {{0}};
	const char *why = NULL;
	int i;

	assert_int_equal(ss_redis_cmd(r, on_answer, &a[0], "BLPOP never:key 0"),
	                 0);
	for (i = 1; i < 3; i++)
		assert_int_equal(ss_redis_cmd(r, on_answer, &a[i], "PING"), 0);
	run_for(&t->d, 50);
	ss_redis_close(r);
	t->r = NULL;
	for (i = 0; i < 3; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].err, SS_EUNAVAIL);
	}
	/* The daemon's probe no longer reaches the freed connection. */
	assert_false(probe(&t->d, "redis (closed)", &why));
	run_for(&t->d, 50);
	for (i = 0; i < 3; i++)
		assert_int_equal(a[i].calls, 1);
}

/* Closing from inside a callback: the rest still gets exactly one call. */
struct closer {
	ss_redis *r;
	struct answer a;
};

static void
close_in_callback(int err, redisReply *reply, void *arg)
{
	struct closer *c = arg;

	on_answer(err, reply, &c->a);
	ss_redis_close(c->r);
}

static void
test_close_inside_callback(void **state)
{
	struct t *t = *state;
	ss_redis *r = open_ready(t, "redis", 5000, NULL, 0);
	struct closer c = {.r = r};
	struct answer a[3] = {{0}};
	struct all_arg all = {a, 3};
	int i;

	assert_int_equal(ss_redis_cmd(r, close_in_callback, &c, "PING"), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(ss_redis_cmd(r, on_answer, &a[i], "PING"), 0);
	t->r = NULL; /* closed by the callback */
	assert_true(run_until(&t->d, all_answered, &all, 2000));
	run_for(&t->d, 50);
	assert_int_equal(c.a.calls, 1);
	assert_int_equal(c.a.err, 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].err, SS_EUNAVAIL);
	}
}

static void
test_bad_args(void **state)
{
	struct t *t = *state;
	ss_redis *r = NULL;

	assert_int_equal(ss_redis_open(&r, &t->d, "redis", "no-port", NULL,
	                               NULL, 100, NULL, 0),
	                 SS_EBADREQ);
	assert_null(r);
	assert_int_equal(ss_redis_open(&r, &t->d, "redis", "127.0.0.1:99999",
	                               NULL, NULL, 100, NULL, 0),
	                 SS_EBADREQ);
	assert_int_equal(
	    ss_redis_open(&r, &t->d, "redis", fx.addr, NULL, NULL, 0, NULL, 0),
	    SS_EBADREQ);
	assert_int_equal(t->d.nprobes, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_not_ready_at_first, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_in_flight, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_eval_and_noscript, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_broken_script, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_then_recovers, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_probe_finds_a_silent_server,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_killed_then_restarted, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_password, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_acl_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_redis_is_unavailable,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_fails_pending, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_close_inside_callback, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
