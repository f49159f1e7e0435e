/*
 * tests/unit/test_daemon.c - runtime/daemon.c and runtime/admin.c.
 *
 * The admin server is tested over real sockets: the daemon's loop runs on
 * a second thread, the test thread speaks HTTP/1.0 with a tiny blocking
 * client, and SIGTERM is sent to the process.  Shutdown and draining are
 * tested on the test thread with timers that stop the daemon and release
 * units at known times; a watchdog timer breaks the loop should the
 * daemon fail to exit, so a bug fails the test instead of hanging it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "proto/errors.h"
#include "runtime/daemon.h"
#include "runtime/metrics.h"

/* --- helpers ------------------------------------------------------------ */

/* A port that was free a moment ago (bind port 0, read it, close). */
static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

typedef struct http_resp {
	int status;
	char ctype[128];
	char *body;
	char *raw;
} http_resp;

/* GET (or another method) over HTTP/1.0: the server closes when done. */
static void
http_do(int port, const char *method, const char *path, http_resp *r)
{
	struct timeval tv = {5, 0};
	struct sockaddr_in sa;
	char req[256], *hdr_end, *ct;
	size_t len = 0, cap = 8192;
	ssize_t n;
	int fd;

	memset(r, 0, sizeof(*r));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(req, sizeof(req),
	         "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: "
	         "0\r\n\r\n",
	         method, path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	r->raw = malloc(cap);
	assert_non_null(r->raw);
	while ((n = read(fd, r->raw + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			r->raw = realloc(r->raw, cap);
			assert_non_null(r->raw);
		}
	}
	assert_int_equal(n, 0); /* EOF, not a timeout */
	close(fd);
	r->raw[len] = '\0';
	assert_int_equal(sscanf(r->raw, "HTTP/1.%*d %d", &r->status), 1);
	hdr_end = strstr(r->raw, "\r\n\r\n");
	assert_non_null(hdr_end);
	r->body = hdr_end + 4;
	ct = strcasestr(r->raw, "\r\nContent-Type: ");
	if (ct != NULL && ct < hdr_end)
		sscanf(ct + 16, "%127[^\r]", r->ctype);
}

static void
http_free(http_resp *r)
{
	free(r->raw);
}

typedef struct capture {
	int saved;
	int rd;
} capture;

static void
cap_start(capture *c)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	c->saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	c->rd = p[0];
}

static char *
cap_end(capture *c)
{
	char *buf = malloc(65536);
	size_t len = 0;
	ssize_t n;

	assert_non_null(buf);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	while (len < 65535 && (n = read(c->rd, buf + len, 65535 - len)) > 0)
		len += (size_t)n;
	close(c->rd);
	buf[len] = '\0';
	return buf;
}

static ss_common_settings
settings(const char *admin, int64_t drain_ms)
{
	ss_common_settings c = {
	    .admin_addr = (char *)admin,
	    .redis_addr = "127.0.0.1:6379",
	    .redis_password = "",
	    .redis_timeout_ms = 2000,
	    .drain_ms = drain_ms,
	    .recv_max = 1048576,
	    .log_level = "info",
	};
	return c;
}

static void
after(ss_daemon *d, int ms, event_callback_fn fn, void *arg)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	assert_int_equal(event_base_once(d->base, -1, EV_TIMEOUT, fn, arg, &tv),
	                 0);
}

/* --- a daemon on a second thread, probed over HTTP ---------------------- */

typedef struct probe_state {
	atomic_bool ready;
	atomic_int calls;
} probe_state;

static bool
probe(void *arg, const char **why)
{
	probe_state *p = arg;

	atomic_fetch_add(&p->calls, 1);
	if (atomic_load(&p->ready))
		return true;
	*why = "no connection";
	return false;
}

static bool
always_ready(void *arg, const char **why)
{
	(void)arg;
	(void)why;
	return true;
}

typedef struct runner {
	ss_daemon *d;
	int rc;
} runner;

static void *
run_thread(void *arg)
{
	runner *r = arg;

	r->rc = ss_daemon_run(r->d);
	return NULL;
}

static void
release_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ss_daemon_release(arg);
}

static void
test_admin_http(void **state)
{
	int port = free_port();
	char addr[64];
	ss_common_settings common;
	probe_state ps = {false, 0};
	ss_daemon d;
	runner r = {&d, -100};
	pthread_t th;
	http_resp h;

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	common = settings(addr, 10000);
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	assert_int_equal(ss_daemon_add_probe(&d, "peer", always_ready, NULL),
	                 0);
	assert_int_equal(ss_daemon_add_probe(&d, "redis", probe, &ps), 0);
	ss_daemon_hold(&d); /* one unit in flight, released after SIGTERM */
	assert_int_equal(pthread_create(&th, NULL, run_thread, &r), 0);

	http_do(port, "GET", "/healthz", &h);
	assert_int_equal(h.status, 200);
	assert_string_equal(h.body, "ok\n");
	assert_string_equal(h.ctype, "text/plain; charset=utf-8");
	http_free(&h);

	http_do(port, "GET", "/readyz", &h);
	assert_int_equal(h.status, 503);
	assert_string_equal(h.body, "redis: no connection\n");
	http_free(&h);
	assert_true(atomic_load(&ps.calls) >= 1);

	atomic_store(&ps.ready, true);
	http_do(port, "GET", "/readyz", &h);
	assert_int_equal(h.status, 200);
	assert_string_equal(h.body, "ready\n");
	http_free(&h);

	http_do(port, "GET", "/readyz?verbose=1", &h);
	assert_int_equal(h.status, 200);
	http_free(&h);

	http_do(port, "GET", "/metrics", &h);
	assert_int_equal(h.status, 200);
	assert_memory_equal(h.ctype, "text/plain; version=0.0.4",
	                    strlen("text/plain; version=0.0.4"));
	assert_non_null(strstr(h.body, "\nstudyshare_inflight_requests 1\n"));
	assert_non_null(strstr(h.body,
	                       "# TYPE studyshare_process_start_time_seconds "
	                       "gauge\n"));
	assert_non_null(strstr(h.body, "studyshare_process_resident_memory_"
	                               "bytes "));
	http_free(&h);

	http_do(port, "GET", "/nope", &h);
	assert_int_equal(h.status, 404);
	http_free(&h);
	http_do(port, "GET", "/", &h);
	assert_int_equal(h.status, 404);
	http_free(&h);
	http_do(port, "POST", "/healthz", &h);
	assert_int_equal(h.status, 405);
	http_free(&h);

	/* SIGTERM: not ready any more, still alive while draining. */
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	for (int i = 0; i < 500; i++) {
		http_do(port, "GET", "/readyz", &h);
		if (h.status == 503)
			break;
		http_free(&h);
		usleep(10000);
	}
	assert_int_equal(h.status, 503);
	assert_string_equal(h.body, "daemon: stopping\n");
	http_free(&h);
	http_do(port, "GET", "/healthz", &h);
	assert_int_equal(h.status, 200);
	http_free(&h);

	/* Releasing the last unit (on the loop) ends the run. */
	after(&d, 0, release_cb, &d);
	pthread_join(th, NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(d.inflight, 0);
	ss_daemon_fini(&d);
	assert_null(d.base);
}

/* --- shutdown on the test thread --------------------------------------- */

typedef struct stop_ctx {
	ss_daemon *d;
	double hook_at;
	int64_t hook_inflight;
	double released_at;
	bool watchdog_fired;
	bool worker_woke;
} stop_ctx;

static void
hook(void *arg)
{
	stop_ctx *c = arg;

	c->hook_at = ss_now();
	c->hook_inflight = c->d->inflight;
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ss_daemon_stop(arg);
}

static void
release_later_cb(evutil_socket_t fd, short what, void *arg)
{
	stop_ctx *c = arg;

	(void)fd;
	(void)what;
	c->released_at = ss_now();
	ss_daemon_release(c->d);
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	stop_ctx *c = arg;

	(void)fd;
	(void)what;
	c->watchdog_fired = true;
	event_base_loopbreak(c->d->base);
}

static void
sigterm_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	kill(getpid(), SIGTERM);
}

static void
test_stop_waits_for_release(void **state)
{
	ss_common_settings common = settings(NULL, 5000);
	stop_ctx c = {0};
	ss_daemon d;
	double t0, t1;
	capture cap;
	char *logs;
	int rc;

	(void)state;
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	c.d = &d;
	assert_null(d.admin);
	assert_int_equal(ss_daemon_on_stop(&d, hook, &c), 0);
	ss_daemon_hold(&d);
	after(&d, 0, stop_cb, &d);
	after(&d, 200, release_later_cb, &c);
	after(&d, 4000, watchdog_cb, &c);

	cap_start(&cap);
	t0 = ss_now();
	rc = ss_daemon_run(&d);
	t1 = ss_now();
	logs = cap_end(&cap);

	assert_int_equal(rc, 0);
	assert_false(c.watchdog_fired);
	assert_true(d.stopping);
	assert_int_equal(d.inflight, 0);
	/* The hook ran at stop, before the unit was released. */
	assert_true(c.hook_at > 0 && c.hook_at < c.released_at);
	assert_int_equal(c.hook_inflight, 1);
	/* run did not return before the release. */
	assert_true(c.released_at > 0 && t1 >= c.released_at);
	assert_true(t1 - t0 >= 0.19 && t1 - t0 < 3);

	assert_non_null(strstr(logs, "\"event\":\"daemon.start\""));
	assert_non_null(strstr(logs, "\"event\":\"daemon.stopping\","
	                             "\"reason\":\"requested\","
	                             "\"inflight\":\"1\"}"));
	assert_non_null(strstr(logs, "\"event\":\"daemon.stopped\","
	                             "\"inflight\":\"0\"}"));
	assert_null(strstr(logs, "drain_expired"));
	free(logs);
	ss_daemon_fini(&d);
}

static void
test_drain_deadline(void **state)
{
	ss_common_settings common = settings(NULL, 300);
	stop_ctx c = {0};
	ss_daemon d;
	double t0, t1;
	capture cap;
	char *logs;
	int rc;

	(void)state;
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	c.d = &d;
	ss_daemon_hold(&d); /* never released */
	after(&d, 0, stop_cb, &d);
	after(&d, 5000, watchdog_cb, &c);

	cap_start(&cap);
	t0 = ss_now();
	rc = ss_daemon_run(&d);
	t1 = ss_now();
	logs = cap_end(&cap);

	assert_int_equal(rc, 0);
	assert_false(c.watchdog_fired);
	assert_int_equal(d.inflight, 1);
	assert_true(t1 - t0 >= 0.29 && t1 - t0 < 3);
	assert_non_null(strstr(logs, "\"level\":\"warn\",\"service\":\"test\","
	                             "\"event\":\"daemon.drain_expired\","
	                             "\"inflight\":\"1\"}"));
	free(logs);
	ss_daemon_fini(&d);
}

static void
test_stop_idle(void **state)
{
	ss_common_settings common = settings("", 5000);
	stop_ctx c = {0};
	ss_daemon d;
	double t0;

	(void)state;
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	c.d = &d;
	after(&d, 5000, watchdog_cb, &c);
	/* Stopping before the loop runs is fine: run returns at once. */
	ss_daemon_stop(&d);
	ss_daemon_stop(&d); /* twice is harmless */
	t0 = ss_now();
	assert_int_equal(ss_daemon_run(&d), 0);
	assert_true(ss_now() - t0 < 1);
	assert_false(c.watchdog_fired);
	ss_daemon_fini(&d);
}

/* SIGTERM starts the drain; a second one cuts it short. */
static void
test_sigterm_twice(void **state)
{
	ss_common_settings common = settings(NULL, 30000);
	stop_ctx c = {0};
	ss_daemon d;
	double t0;
	capture cap;
	char *logs;

	(void)state;
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	c.d = &d;
	assert_int_equal(ss_daemon_on_stop(&d, hook, &c), 0);
	ss_daemon_hold(&d);
	after(&d, 0, sigterm_cb, NULL);
	after(&d, 100, sigterm_cb, NULL);
	after(&d, 5000, watchdog_cb, &c);
	cap_start(&cap);
	t0 = ss_now();
	assert_int_equal(ss_daemon_run(&d), 0);
	logs = cap_end(&cap);
	assert_true(ss_now() - t0 < 3);
	assert_false(c.watchdog_fired);
	assert_true(c.hook_at > 0);
	assert_non_null(strstr(logs, "\"reason\":\"SIGTERM\""));
	assert_non_null(strstr(logs, "\"event\":\"daemon.forced\""));
	free(logs);
	ss_daemon_fini(&d);
}

/* A worker thread's event_active() wakes the loop (evthread_use_pthreads). */
static void
woken_cb(evutil_socket_t fd, short what, void *arg)
{
	stop_ctx *c = arg;

	(void)fd;
	(void)what;
	c->worker_woke = true;
	ss_daemon_stop(c->d);
}

static void *
worker(void *arg)
{
	usleep(100 * 1000);
	event_active(arg, EV_READ, 0);
	return NULL;
}

static void
test_worker_wakes_loop(void **state)
{
	ss_common_settings common = settings(NULL, 5000);
	stop_ctx c = {0};
	struct event *ev;
	pthread_t th;
	ss_daemon d;

	(void)state;
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	c.d = &d;
	ev = event_new(d.base, -1, 0, woken_cb, &c);
	assert_non_null(ev);
	after(&d, 5000, watchdog_cb, &c);
	assert_int_equal(pthread_create(&th, NULL, worker, ev), 0);
	assert_int_equal(ss_daemon_run(&d), 0);
	pthread_join(th, NULL);
	assert_true(c.worker_woke);
	assert_false(c.watchdog_fired);
	event_free(ev);
	ss_daemon_fini(&d);
}

static void
test_bind_failure(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	ss_common_settings common;
	char addr[64];
	ss_daemon d;
	capture cap;
	char *logs;
	int fd, one = 1;

	(void)state;
	/* Hold a port so that the admin server cannot have it. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	common = settings(addr, 1000);

	cap_start(&cap);
	assert_int_not_equal(ss_daemon_init(&d, "test", &common), 0);
	logs = cap_end(&cap);
	assert_null(d.base);
	assert_non_null(strstr(logs, "\"event\":\"admin.bind_failed\""));
	assert_non_null(strstr(logs, addr));
	assert_non_null(strstr(logs, "in use"));
	free(logs);
	close(fd);

	/* Not a TCP address at all. */
	common = settings("ipc:///tmp/x.sock", 1000);
	cap_start(&cap);
	assert_int_equal(ss_daemon_init(&d, "test", &common), SS_EBADREQ);
	logs = cap_end(&cap);
	assert_non_null(strstr(logs, "ipc:///tmp/x.sock"));
	free(logs);
}

static void
test_bad_log_level(void **state)
{
	ss_common_settings common = settings(NULL, 1000);
	ss_daemon d;
	capture cap;
	char *logs;

	(void)state;
	common.log_level = "loud";
	cap_start(&cap);
	assert_int_equal(ss_daemon_init(&d, "test", &common), SS_EBADREQ);
	logs = cap_end(&cap);
	assert_string_equal(logs, "studyshare-test: --log-level: must be "
	                          "debug, info, warn or error\n");
	free(logs);
}

static void
noop_hook(void *arg)
{
	(void)arg;
}

static void
test_limits(void **state)
{
	ss_common_settings common = settings(NULL, 1000);
	ss_daemon d;

	(void)state;
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	for (int i = 0; i < SS_DAEMON_MAX_HOOKS; i++) {
		assert_int_equal(ss_daemon_on_stop(&d, noop_hook, NULL), 0);
		assert_int_equal(
		    ss_daemon_add_probe(&d, "p", always_ready, NULL), 0);
	}
	assert_int_not_equal(ss_daemon_on_stop(&d, noop_hook, NULL), 0);
	assert_int_not_equal(ss_daemon_add_probe(&d, "p", always_ready, NULL),
	                     0);
	ss_daemon_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admin_http),
	    cmocka_unit_test(test_stop_waits_for_release),
	    cmocka_unit_test(test_drain_deadline),
	    cmocka_unit_test(test_stop_idle),
	    cmocka_unit_test(test_sigterm_twice),
	    cmocka_unit_test(test_worker_wakes_loop),
	    cmocka_unit_test(test_bind_failure),
	    cmocka_unit_test(test_bad_log_level),
	    cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
