/*
 * runtime/daemon.c - the life of a daemon: loop, signals, shutdown, admin.
 *
 * Contract (see daemon.h): ss_daemon_init() makes a thread-aware event
 * base (worker threads may event_active() on it), ignores SIGPIPE, watches
 * SIGTERM and SIGINT, and starts the admin server on common->admin_addr
 * (NULL or "" runs without one, for tests).  Shutdown is a small state
 * machine:
 *
 *   running --SIGTERM/SIGINT/ss_daemon_stop--> stopping: stop hooks run,
 *     /readyz answers 503, the loop keeps serving what is in flight
 *   stopping --in-flight count reaches 0--> loop exits
 *   stopping --drain deadline (common->drain_ms)--> loop exits anyway
 *   stopping --second signal--> loop exits at once
 *
 * ss_daemon_run() returns 0 after any of these exits.  hold/release and
 * every other call here are for the loop thread only.  Anything attached
 * to the base (endpoints, Redis) is closed before ss_daemon_fini().
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "proto/errors.h"
#include "runtime/admin.h"
#include "runtime/daemon.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static int threads_rv;
static ss_metric *inflight_gauge;

static void
threads_init(void)
{
	threads_rv = evthread_use_pthreads();
}

static void
log_inflight(int level, const char *event, const ss_daemon *d,
             const char *reason)
{
	char n[24];

	snprintf(n, sizeof(n), "%" PRId64, d->inflight);
	if (reason != NULL)
		ss_log(level, event, NULL, "reason", reason, "inflight", n,
		       NULL);
	else
		ss_log(level, event, NULL, "inflight", n, NULL);
}

static void
begin_stop(ss_daemon *d, const char *reason)
{
	struct timeval tv;

	if (d->stopping)
		return;
	d->stopping = true;
	log_inflight(SS_LOG_INFO, "daemon.stopping", d, reason);
	for (int i = 0; i < d->nstop; i++)
		d->stop_hooks[i].fn(d->stop_hooks[i].arg);
	/* A hook may have released the last unit already. */
	if (d->inflight == 0) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	tv.tv_sec = d->common->drain_ms / 1000;
	tv.tv_usec = (d->common->drain_ms % 1000) * 1000;
	evtimer_add(d->drain_timer, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	ss_daemon *d = arg;
	const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";

	(void)what;
	if (d->stopping) {
		/* An operator who asks twice does not want to wait. */
		log_inflight(SS_LOG_WARN, "daemon.forced", d, name);
		event_base_loopexit(d->base, NULL);
		return;
	}
	begin_stop(d, name);
}

static void
on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	ss_daemon *d = arg;

	(void)fd;
	(void)what;
	log_inflight(SS_LOG_WARN, "daemon.drain_expired", d, NULL);
	event_base_loopexit(d->base, NULL);
}

static int
ignore_sigpipe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGPIPE, &sa, NULL);
}

/*
 * The loop.  With epoll, libevent's change list folds the adds and deletes
 * of one loop turn into the fewest epoll_ctl calls (evhttp and hiredis
 * re-arm their events on every request).  It is unsafe only for fds
 * cloned with dup(), which no daemon hands to the loop.
 */
static struct event_base *
daemon_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int
ss_daemon_init(ss_daemon *d, const char *service,
               const ss_common_settings *common)
{
	int level = SS_LOG_INFO;
	int rv = SS_ENOMEM;

	memset(d, 0, sizeof(*d));
	d->service = service;
	d->common = common;
	if (common->log_level != NULL &&
	    (level = ss_log_level_parse(common->log_level)) < 0) {
		fprintf(stderr,
		        "studyshare-%s: --log-level: must be debug, info, "
		        "warn or error\n",
		        service);
		return SS_EBADREQ;
	}
	ss_log_init(service, level);

	pthread_once(&threads_once, threads_init);
	if (threads_rv != 0 || ignore_sigpipe() != 0) {
		ss_error("daemon.init_failed", NULL, "error",
		         "cannot set up threads or signals", NULL);
		return SS_EINTERNAL;
	}
	if ((d->base = daemon_base_new()) == NULL)
		goto fail;
	d->sigterm = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sigint = evsignal_new(d->base, SIGINT, on_signal, d);
	d->drain_timer = evtimer_new(d->base, on_drain_deadline, d);
	if (d->sigterm == NULL || d->sigint == NULL || d->drain_timer == NULL)
		goto fail;
	if (event_add(d->sigterm, NULL) != 0 ||
	    event_add(d->sigint, NULL) != 0) {
		rv = SS_EINTERNAL;
		goto fail;
	}
	if (inflight_gauge == NULL) {
		ss_metric *b = ss_gauge("build_info",
		                        "1, labelled with the daemon's version",
		                        "version=\"" SS_VERSION "\"");

		if (b != NULL)
			ss_metric_set(b, 1);
		inflight_gauge = ss_gauge("inflight_requests",
		                          "Units of work in flight.", NULL);
	}
	if (common->admin_addr != NULL && common->admin_addr[0] != '\0' &&
	    (rv = ss_admin_start(&d->admin, d, common->admin_addr)) != 0)
		goto fail;
	return 0;
fail:
	ss_daemon_fini(d);
	return rv;
}

int
ss_daemon_on_stop(ss_daemon *d, ss_hook_fn fn, void *arg)
{
	if (d->nstop >= SS_DAEMON_MAX_HOOKS)
		return SS_EINTERNAL;
	d->stop_hooks[d->nstop].fn = fn;
	d->stop_hooks[d->nstop].arg = arg;
	d->nstop++;
	return 0;
}

int
ss_daemon_add_probe(ss_daemon *d, const char *name, ss_ready_fn fn, void *arg)
{
	if (d->nprobes >= SS_DAEMON_MAX_HOOKS)
		return SS_EINTERNAL;
	d->probes[d->nprobes].name = name;
	d->probes[d->nprobes].fn = fn;
	d->probes[d->nprobes].arg = arg;
	d->nprobes++;
	return 0;
}

void
ss_daemon_remove_probes(ss_daemon *d, const void *arg)
{
	int j = 0;

	for (int i = 0; i < d->nprobes; i++) {
		if (d->probes[i].arg != arg)
			d->probes[j++] = d->probes[i];
	}
	d->nprobes = j;
}

void
ss_daemon_hold(ss_daemon *d)
{
	d->inflight++;
	ss_metric_add(inflight_gauge, 1);
}

void
ss_daemon_release(ss_daemon *d)
{
	if (d->inflight <= 0) {
		ss_error("daemon.release_unbalanced", NULL, NULL);
		return;
	}
	d->inflight--;
	ss_metric_add(inflight_gauge, (uint64_t)-1);
	if (d->stopping && d->inflight == 0) {
		evtimer_del(d->drain_timer);
		event_base_loopexit(d->base, NULL);
	}
}

void
ss_daemon_stop(ss_daemon *d)
{
	begin_stop(d, "requested");
}

int
ss_daemon_run(ss_daemon *d)
{
	char pid[16];
	int rc;

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	ss_info("daemon.start", NULL, "pid", pid, "version", SS_VERSION,
	        "admin_addr", d->admin != NULL ? d->common->admin_addr : "",
	        NULL);
	rc = event_base_dispatch(d->base);
	log_inflight(SS_LOG_INFO, "daemon.stopped", d, NULL);
	return rc < 0 ? SS_EINTERNAL : 0;
}

void
ss_daemon_fini(ss_daemon *d)
{
	/* Units never released leave with the daemon, not in the gauge. */
	if (d->inflight > 0)
		ss_metric_add(inflight_gauge, (uint64_t)-d->inflight);
	d->inflight = 0;
	ss_admin_stop(d->admin);
	d->admin = NULL;
	if (d->drain_timer != NULL)
		event_free(d->drain_timer);
	if (d->sigint != NULL)
		event_free(d->sigint);
	if (d->sigterm != NULL)
		event_free(d->sigterm);
	d->drain_timer = d->sigint = d->sigterm = NULL;
	if (d->base != NULL)
		event_base_free(d->base);
	d->base = NULL;
}
