/*
 * runtime/work.c - a small thread pool for CPU-heavy work off the loop.
 *
 * Contract (see work.h): fn(arg) runs on one of N worker threads, then
 * done(arg) runs on the loop, exactly once per accepted job.  Every job
 * holds the daemon (ss_daemon_hold) from submit until done has run, so a
 * drain waits for it.  ss_work_close() refuses new jobs, lets the queued
 * ones run, joins the threads and runs the outstanding done callbacks.
 *
 * Jobs wait on a mutex + condition variable queue; finished jobs go on a
 * done list and the loop is woken through a pipe watched by libevent.
 * A pipe rather than event_active() from a worker: it needs no libevent
 * locking (evthread_use_pthreads() before the base was made), so the pool
 * is correct whichever way the base was created, and a wake-up is never
 * lost.  Only the worker that finds the done list un-signalled writes a
 * byte, so the pipe never fills.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto/errors.h"
#include "runtime/work.h"

#define SS_WORK_MAX_THREADS 64

struct ss_job {
	struct ss_job *next;
	ss_work_fn fn;
	ss_done_fn done;
	void *arg;
};

struct ss_work_pool {
	ss_daemon *d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ss_job *q_head, *q_tail;       /* waiting for a worker */
	struct ss_job *done_head, *done_tail; /* waiting for the loop */
	bool signalled; /* a wake-up byte is in the pipe */
	bool closing;
	pthread_t *threads;
	int nthreads; /* started */
	int wake[2];  /* [0] read by the loop, [1] written by workers */
	struct event *ev;
};

static void
ss_job_append(struct ss_job **head, struct ss_job **tail, struct ss_job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

/* Runs on a worker thread. */
static void
ss_work_wake(ss_work_pool *p)
{
	char b = 1;

	while (write(p->wake[1], &b, 1) < 0 && errno == EINTR)
		;
}

/* Runs on a worker thread. */
static void *
ss_work_main(void *arg)
{
	ss_work_pool *p = arg;
	struct ss_job *j;
	bool wake;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->q_head == NULL && !p->closing)
			pthread_cond_wait(&p->cv, &p->mu);
		j = p->q_head;
		if (j == NULL) {
			/* Closing and nothing left to run. */
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->q_head = j->next;
		if (p->q_head == NULL)
			p->q_tail = NULL;
		pthread_mutex_unlock(&p->mu);

		j->fn(j->arg);

		pthread_mutex_lock(&p->mu);
		ss_job_append(&p->done_head, &p->done_tail, j);
		wake = !p->signalled;
		p->signalled = true;
		pthread_mutex_unlock(&p->mu);
		if (wake)
			ss_work_wake(p);
	}
}

/* Runs every finished job's done callback and releases its hold. */
static void
ss_work_run_done(ss_work_pool *p)
{
	struct ss_job *j, *next;

	pthread_mutex_lock(&p->mu);
	j = p->done_head;
	p->done_head = p->done_tail = NULL;
	p->signalled = false;
	pthread_mutex_unlock(&p->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
		ss_daemon_release(p->d);
	}
}

static void
ss_work_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	(void)what;
	/* Drain first: a worker that finishes after the list is taken sees
	 * signalled == false and writes a fresh byte. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	ss_work_run_done(arg);
}

static void
ss_work_stop_threads(ss_work_pool *p)
{
	int i;

	pthread_mutex_lock(&p->mu);
	p->closing = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

static void
ss_work_free(ss_work_pool *p)
{
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->wake[0] >= 0)
		close(p->wake[0]);
	if (p->wake[1] >= 0)
		close(p->wake[1]);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}

int
ss_work_open(ss_work_pool **out, ss_daemon *d, int nthreads)
{
	ss_work_pool *p;
	sigset_t all, old;
	int rv = SS_ENOMEM;

	*out = NULL;
	if (nthreads < 1 || nthreads > SS_WORK_MAX_THREADS)
		return SS_EBADREQ;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return SS_ENOMEM;
	p->d = d;
	p->wake[0] = p->wake[1] = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->threads = calloc((size_t)nthreads, sizeof(*p->threads));
	if (p->threads == NULL)
		goto fail;
	if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		p->wake[0] = p->wake[1] = -1;
		rv = SS_EINTERNAL;
		goto fail;
	}
	p->ev = event_new(d->base, p->wake[0], EV_READ | EV_PERSIST,
	                  ss_work_wake_cb, p);
	if (p->ev == NULL || event_add(p->ev, NULL) != 0)
		goto fail;
	/* Workers inherit a full signal mask: signals belong to the loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->nthreads < nthreads; p->nthreads++) {
		if (pthread_create(&p->threads[p->nthreads], NULL, ss_work_main,
		                   p) != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nthreads < nthreads) {
		rv = SS_EINTERNAL;
		goto fail;
	}
	*out = p;
	return 0;
fail:
	ss_work_stop_threads(p);
	ss_work_free(p);
	return rv;
}

void
ss_work_close(ss_work_pool *p)
{
	if (p == NULL)
		return;
	ss_work_stop_threads(p);
	/* Every worker has finished: deliver what the loop has not yet seen,
	 * here on the loop thread. */
	ss_work_run_done(p);
	ss_work_free(p);
}

int
ss_work_submit(ss_work_pool *p, ss_work_fn fn, ss_done_fn done, void *arg)
{
	struct ss_job *j;

	if (fn == NULL)
		return SS_EINTERNAL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return SS_ENOMEM;
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->mu);
	if (p->closing) {
		pthread_mutex_unlock(&p->mu);
		free(j);
		return SS_EUNAVAIL;
	}
	ss_job_append(&p->q_head, &p->q_tail, j);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	ss_daemon_hold(p->d);
	return 0;
}
