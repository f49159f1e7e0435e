/*
 * runtime/admin.h - the admin HTTP server of a daemon.
 *
 * Served on the daemon's loop at admin-addr (host:port, [v6]:port or
 * tcp://host:port):
 *   GET /healthz  200 "ok\n" while the loop runs
 *   GET /readyz   200 "ready\n" when every probe is ready, else 503
 *                 "<probe>: <why>\n" for the first that is not, and
 *                 503 "daemon: stopping\n" once shutdown has begun
 *   GET /metrics  the Prometheus text format (ss_metrics_render)
 * Other methods on these paths get 405, other paths 404.
 * ss_daemon_init() starts it; ss_daemon_fini() stops it.
 */
#ifndef SS_RUNTIME_ADMIN_H
#define SS_RUNTIME_ADMIN_H

#include "runtime/daemon.h"

/* Binds addr on d->base; logs and returns SS_EUNAVAIL when it cannot. */
int ss_admin_start(struct evhttp **out, ss_daemon *d, const char *addr);
void ss_admin_stop(struct evhttp *h);

#endif
