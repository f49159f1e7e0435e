/*
 * runtime/admin.c - the admin HTTP server of a daemon.
 *
 * Contract (see admin.h): /healthz, /readyz and /metrics on an evhttp
 * bound to admin-addr on the daemon's loop.  Every handler answers at once
 * and never blocks: probes only read state the loop keeps.  Requests are
 * small by nature, so header and body limits are tight and idle
 * connections time out.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "proto/errors.h"
#include "runtime/addr.h"
#include "runtime/admin.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define ADMIN_HOST_MAX  256
#define ADMIN_TIMEOUT_S 10

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
           const char *text)
{
	struct evbuffer *body = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (body == NULL) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
		return;
	}
	evbuffer_add(body, text, strlen(text));
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

static bool
method_ok(struct evhttp_request *req)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	                  "GET, HEAD");
	reply_text(req, 405, "Method Not Allowed", "method not allowed\n");
	return false;
}

static void
on_healthz(struct evhttp_request *req, void *arg)
{
	(void)arg;
	if (method_ok(req))
		reply_text(req, 200, "OK", "ok\n");
}

static void
on_readyz(struct evhttp_request *req, void *arg)
{
	ss_daemon *d = arg;
	const char *why;
	char text[512];

	if (!method_ok(req))
		return;
	/* Draining: tell the balancer to stop sending work here. */
	if (d->stopping) {
		reply_text(req, 503, "Service Unavailable",
		           "daemon: stopping\n");
		return;
	}
	for (int i = 0; i < d->nprobes; i++) {
		why = NULL;
		if (d->probes[i].fn(d->probes[i].arg, &why))
			continue;
		snprintf(text, sizeof(text), "%s: %s\n", d->probes[i].name,
		         why != NULL ? why : "not ready");
		reply_text(req, 503, "Service Unavailable", text);
		return;
	}
	reply_text(req, 200, "OK", "ready\n");
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
	struct evbuffer *body;

	(void)arg;
	if (!method_ok(req))
		return;
	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
		return;
	}
	ss_metrics_render(body);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

static void
on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply_text(req, 404, "Not Found", "not found\n");
}

int
ss_admin_start(struct evhttp **out, ss_daemon *d, const char *addr)
{
	char host[ADMIN_HOST_MAX];
	struct evhttp *http = NULL;
	ev_uint16_t port;
	int rv = SS_EUNAVAIL;

	if (ss_addr_split(addr, host, sizeof(host), &port) != 0) {
		ss_error("admin.bad_addr", NULL, "addr", addr, "error",
		         "must be host:port", NULL);
		return SS_EBADREQ;
	}
	if ((http = evhttp_new(d->base)) == NULL) {
		rv = SS_ENOMEM;
		goto fail;
	}
	evhttp_set_max_headers_size(http, 8192);
	evhttp_set_max_body_size(http, 4096);
	evhttp_set_timeout(http, ADMIN_TIMEOUT_S);
	if (evhttp_set_cb(http, "/healthz", on_healthz, d) != 0 ||
	    evhttp_set_cb(http, "/readyz", on_readyz, d) != 0 ||
	    evhttp_set_cb(http, "/metrics", on_metrics, d) != 0) {
		rv = SS_ENOMEM;
		goto fail;
	}
	evhttp_set_gencb(http, on_other, d);
	EVUTIL_SET_SOCKET_ERROR(0);
	if (evhttp_bind_socket_with_handle(http, host, port) == NULL) {
		int err = EVUTIL_SOCKET_ERROR();

		/* A name that does not resolve leaves no errno behind. */
		ss_error("admin.bind_failed", NULL, "addr", addr, "error",
		         err != 0 ? evutil_socket_error_to_string(err)
		                  : "cannot resolve or bind",
		         NULL);
		goto fail;
	}
	*out = http;
	return 0;
fail:
	if (http != NULL)
		evhttp_free(http);
	return rv;
}

void
ss_admin_stop(struct evhttp *h)
{
	if (h != NULL)
		evhttp_free(h);
}
