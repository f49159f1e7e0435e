/*
 * runtime/work.h - a small thread pool for CPU-heavy work off the loop.
 *
 * Argon2id takes ~12 ms: it must never run on the loop.  ss_work_submit()
 * queues fn(arg) for a worker thread; when it has run, done(arg) is called
 * on the loop.  The pool wakes the loop through a pipe watched by libevent.
 * Submitted work is held on the daemon (ss_daemon_hold) until done runs.
 */
#ifndef SS_RUNTIME_WORK_H
#define SS_RUNTIME_WORK_H

#include "runtime/daemon.h"

typedef struct ss_work_pool ss_work_pool;

/* Runs on a worker thread. */
typedef void (*ss_work_fn)(void *arg);
/* Runs on the loop. */
typedef void (*ss_done_fn)(void *arg);

int ss_work_open(ss_work_pool **out, ss_daemon *d, int nthreads);
/* Waits for queued work to finish, then joins the threads. */
void ss_work_close(ss_work_pool *p);
int ss_work_submit(ss_work_pool *p, ss_work_fn fn, ss_done_fn done, void *arg);

#endif
