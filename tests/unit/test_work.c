/*
 * tests/unit/test_work.c - runtime/work.c: jobs on worker threads, done()
 * back on the loop thread, holds on the daemon, and a close that waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "proto/errors.h"
#include "runtime/daemon.h"
#include "runtime/work.h"

#define NJOBS 100

static ss_common_settings common = {.log_level = "warn", .drain_ms = 1000};

struct job {
	atomic_int ran;
	pthread_t worker;
	int done_calls;
	pthread_t done_thread;
	int done_seq;
	unsigned long result;
	int sleep_us;
};

static int done_counter;

static void
sleep_us(int us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* Runs on a worker thread. */
static void
job_fn(void *arg)
{
	struct job *j = arg;
	unsigned long h = 5381;

	j->worker = pthread_self();
	for (int i = 0; i < 10000; i++)
		h = h * 33 + (unsigned long)i;
	j->result = h;
	if (j->sleep_us > 0)
		sleep_us(j->sleep_us);
	atomic_fetch_add(&j->ran, 1);
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	j->done_calls++;
	j->done_thread = pthread_self();
	j->done_seq = done_counter++;
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

/* Runs the loop until n done() calls were seen or ms pass. */
static bool
run_until_done(ss_daemon *d, int n, int ms)
{
	struct timeval tv = {0, 10000};
	struct event *ev = event_new(d->base, -1, EV_PERSIST, tick, NULL);
	int64_t end = now_ms() + ms;

	event_add(ev, &tv);
	while (done_counter < n && now_ms() < end)
		event_base_loop(d->base, EVLOOP_ONCE);
	event_free(ev);
	return done_counter >= n;
}

static int
setup(void **state)
{
	ss_daemon *d = calloc(1, sizeof(*d));

	done_counter = 0;
	if (d == NULL || ss_daemon_init(d, "test", &common) != 0)
		return -1;
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	ss_daemon *d = *state;

	ss_daemon_fini(d);
	free(d);
	return 0;
}

static void
test_jobs_done_on_loop(void **state)
{
	ss_daemon *d = *state;
	ss_work_pool *p = NULL;
	struct job *jobs = calloc(NJOBS, sizeof(*jobs));
	pthread_t loop = pthread_self();
	pthread_t seen[2];
	int nseen = 0, i, k;

	assert_non_null(jobs);
	assert_int_equal(ss_work_open(&p, d, 2), 0);
	for (i = 0; i < NJOBS; i++) {
		jobs[i].sleep_us = 200;
		assert_int_equal(ss_work_submit(p, job_fn, job_done, &jobs[i]),
		                 0);
	}
	/* Every job holds the daemon until its done() ran. */
	assert_true(d->inflight > 0);
	assert_true(run_until_done(d, NJOBS, 10000));
	assert_int_equal(d->inflight, 0);
	for (i = 0; i < NJOBS; i++) {
		assert_int_equal(atomic_load(&jobs[i].ran), 1);
		assert_int_equal(jobs[i].done_calls, 1);
		assert_true(pthread_equal(jobs[i].done_thread, loop));
		assert_false(pthread_equal(jobs[i].worker, loop));
		assert_int_equal(jobs[i].result, jobs[0].result);
		for (k = 0; k < nseen; k++)
			if (pthread_equal(seen[k], jobs[i].worker))
				break;
		if (k == nseen) {
			/* Never more workers than asked for. */
			assert_true(nseen < 2);
			seen[nseen++] = jobs[i].worker;
		}
	}
	ss_work_close(p);
	for (i = 0; i < NJOBS; i++)
		assert_int_equal(jobs[i].done_calls, 1);
	free(jobs);
}

static void
test_close_waits(void **state)
{
	ss_daemon *d = *state;
	ss_work_pool *p = NULL;
	struct job jobs[10];
	pthread_t loop = pthread_self();
	int i;

	memset(jobs, 0, sizeof(jobs));
	assert_int_equal(ss_work_open(&p, d, 2), 0);
	for (i = 0; i < 10; i++) {
		jobs[i].sleep_us = 20000;
		assert_int_equal(ss_work_submit(p, job_fn, job_done, &jobs[i]),
		                 0);
	}
	assert_int_equal(d->inflight, 10);
	/* The loop never ran: close itself must wait for the queued jobs
	 * (~100 ms of work) and deliver their done() here. */
	ss_work_close(p);
	for (i = 0; i < 10; i++) {
		assert_int_equal(atomic_load(&jobs[i].ran), 1);
		assert_int_equal(jobs[i].done_calls, 1);
		assert_true(pthread_equal(jobs[i].done_thread, loop));
	}
	assert_int_equal(d->inflight, 0);
	assert_int_equal(done_counter, 10);
}

static void
test_done_may_be_null(void **state)
{
	ss_daemon *d = *state;
	ss_work_pool *p = NULL;
	struct job j;

	memset(&j, 0, sizeof(j));
	assert_int_equal(ss_work_open(&p, d, 1), 0);
	assert_int_equal(ss_work_submit(p, job_fn, NULL, &j), 0);
	assert_int_equal(d->inflight, 1);
	ss_work_close(p);
	assert_int_equal(atomic_load(&j.ran), 1);
	assert_int_equal(j.done_calls, 0);
	assert_int_equal(d->inflight, 0);
}

static void
test_bad_args(void **state)
{
	ss_daemon *d = *state;
	ss_work_pool *p = NULL;

	assert_int_equal(ss_work_open(&p, d, 0), SS_EBADREQ);
	assert_null(p);
	assert_int_equal(ss_work_open(&p, d, 1000), SS_EBADREQ);
	assert_null(p);
	assert_int_equal(ss_work_open(&p, d, 1), 0);
	assert_int_equal(ss_work_submit(p, NULL, job_done, NULL), SS_EINTERNAL);
	assert_int_equal(d->inflight, 0);
	ss_work_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_jobs_done_on_loop, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_close_waits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_done_may_be_null, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
