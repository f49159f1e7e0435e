/*
 * bench/http_hello.c - the floor of the HTTP benchmark: an evhttp server
 * on one libevent loop that answers every request with a fixed 200
 * "hello" and the same security headers as the gateway, parsing nothing.
 * bench/http_bench.sh measures the gateway as a ratio to it.
 *
 *   http_hello PORT      (127.0.0.1; SIGTERM or SIGINT stops it)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = arg;

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Content-Security-Policy",
	                  "default-src 'none'; frame-ancestors 'none'");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evbuffer_add(b, "{\"hello\":true}", 14);
	evhttp_send_reply(req, 200, "OK", b);
}

static void
on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int
main(int argc, char **argv)
{
	struct event_base *base;
	struct evhttp *http;
	struct evbuffer *b;
	struct event *term, *intr;
	int port;

	if (argc != 2 || (port = atoi(argv[1])) <= 0 || port > 65535) {
		fprintf(stderr, "usage: http_hello PORT\n");
		return 2;
	}
	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL || (b = evbuffer_new()) == NULL)
		return 1;
	evhttp_set_gencb(http, on_request, b);
	if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) {
		fprintf(stderr, "http_hello: cannot bind port %d\n", port);
		return 1;
	}
	term = evsignal_new(base, SIGTERM, on_signal, base);
	intr = evsignal_new(base, SIGINT, on_signal, base);
	evsignal_add(term, NULL);
	evsignal_add(intr, NULL);
	event_base_dispatch(base);
	event_free(term);
	event_free(intr);
	evbuffer_free(b);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
