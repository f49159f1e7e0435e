/*
 * runtime/rep.c - an NNG REP server on the daemon's loop.
 *
 * Contract: the socket is raw (xrep0), so NNG hands us every request as it
 * arrives and lets us answer in any order.  The header of a received
 * message is NNG's backtrace (our pipe id, then the peer's hops and request
 * id); a reply is routed back only if it carries that header unchanged.  So
 * a call keeps its request message and the reply is built in it: the body
 * is replaced, the header stays.
 *
 * NNG_OPT_RECVFD is readable while a message waits; the loop drains it with
 * non-blocking receives, a bounded number per wake-up so timers and other
 * sockets get their turn.  Sends are non-blocking too: a reply NNG cannot
 * take is dropped, logged and counted, and the client times out.
 *
 * A message that does not decode gets bad_request with its id when one can
 * be read and "-" otherwise (an envelope id cannot be empty); one whose type
 * has no route gets bad_request "unknown message type".  Every call is held
 * on the daemon until answered.  While the daemon is stopping we keep
 * reading, so new requests get unavailable at once instead of a timeout,
 * and calls in flight still get their replies.
 *
 * ss_rep_close() with calls outstanding closes the socket at once; the
 * calls are freed when their handlers answer (the replies go nowhere) and
 * the server with the last of them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "proto/errors.h"
#include "proto/mpcheck.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/rep.h"

#define REP_RECV_MAX_DEFAULT (1024 * 1024)
/* Replies queued in NNG before a non-blocking send fails; bursts of
 * answers (a timer firing for many calls) must not be refused. */
#define REP_SENDBUF 1024
/* Messages taken per wake-up of the receive fd. */
#define REP_BATCH 64
/* The id of a reply to a message whose own id could not be read. */
#define REP_NOID "-"
/* Error codes run from -1 to SS_EUNSUPPORTED. */
#define REP_NCODES   (-SS_EUNSUPPORTED + 1)
#define REP_NO_ROUTE SIZE_MAX

typedef struct rep_route {
	const char *type;
	ss_handler_fn fn;
	char labels[SS_MAX_TYPE_LEN + 16];
	ss_metric *requests;
	ss_metric *duration;
	ss_metric *errors[REP_NCODES]; /* by -err, registered on first use */
} rep_route;

struct ss_rep {
	ss_daemon *d;
	nng_socket sock;
	bool sock_open;
	struct event *rev;
	rep_route *routes;
	size_t nroutes;
	void *arg;
	int64_t ncalls; /* calls not yet answered */
	int busy;       /* > 0 while dispatching: close must not free */
	bool closed;
	ss_metric *bad_decode;
	ss_metric *bad_type;
	ss_metric *send_failed;
};

struct ss_call {
	ss_rep *rep;
	nng_msg *nm; /* the request: its header routes the reply */
	ss_msg msg;  /* id (and type) are set even when not decoded */
	bool decoded;
	ss_pack pack;
	double start;
	size_t route; /* REP_NO_ROUTE before routing */
};

static void
rep_free(ss_rep *r)
{
	if (r->rev != NULL)
		event_free(r->rev);
	if (r->sock_open)
		nng_close(r->sock);
	free(r->routes);
	free(r);
}

static int
rep_nng_err(int rv)
{
	switch (rv) {
	case NNG_ENOMEM:
		return SS_ENOMEM;
	case NNG_EADDRINVAL:
	case NNG_EINVAL:
	case NNG_ENOTSUP:
		return SS_EBADREQ; /* a bad address in the configuration */
	default:
		return SS_EUNAVAIL;
	}
}

static ss_metric *
rep_error_metric(rep_route *rt, int err)
{
	char labels[sizeof(rt->labels) + 48];
	int i;

	if (err >= 0 || err < SS_EUNSUPPORTED)
		err = SS_EINTERNAL;
	i = -err;
	if (rt->errors[i] == NULL) {
		/* Words come from a fixed table: the label set stays small. */
		snprintf(labels, sizeof(labels), "%s,code=\"%s\"", rt->labels,
		         ss_err_word(err));
		rt->errors[i] =
		    ss_counter("studyshare_request_errors_total",
		               "Requests answered with an error, by type and "
		               "error code.",
		               labels);
	}
	return rt->errors[i];
}

/* Route types are code literals, but they become label values: keep them
 * to the characters an envelope type may have. */
static bool
rep_type_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > SS_MAX_TYPE_LEN)
		return false;
	for (; *t != '\0'; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') ||
		      *t == '.' || *t == '_'))
			return false;
	return true;
}

static int
rep_routes_init(ss_rep *r, const ss_route *routes, size_t nroutes)
{
	size_t i;

	if (nroutes > 0 &&
	    (r->routes = calloc(nroutes, sizeof(*r->routes))) == NULL)
		return SS_ENOMEM;
	r->nroutes = nroutes;
	for (i = 0; i < nroutes; i++) {
		rep_route *rt = &r->routes[i];

		if (routes[i].type == NULL || routes[i].fn == NULL ||
		    !rep_type_ok(routes[i].type)) {
			ss_error("rep.bad_route", NULL, "type",
			         routes[i].type != NULL ? routes[i].type : "",
			         NULL);
			return SS_EINTERNAL;
		}
		rt->type = routes[i].type;
		rt->fn = routes[i].fn;
		snprintf(rt->labels, sizeof(rt->labels), "type=\"%s\"",
		         rt->type);
		rt->requests =
		    ss_counter("studyshare_requests_total",
		               "Requests received, by type.", rt->labels);
		rt->duration =
		    ss_histogram("studyshare_request_duration_seconds",
		                 "Time from receiving a request to sending its "
		                 "reply, by type.",
		                 rt->labels);
	}
	return 0;
}

static size_t
rep_route_find(const ss_rep *r, const char *type)
{
	size_t i;

	for (i = 0; i < r->nroutes; i++)
		if (strcmp(r->routes[i].type, type) == 0)
			return i;
	return REP_NO_ROUTE;
}

/*
 * The id of a message that failed to decode, when the bytes are sound
 * enough to read one: only after ss_mpcheck() accepted them may msgpack-c
 * see them, and only an id the envelope would accept is used.
 */
static void
rep_peek_id(const void *buf, size_t len, char *id)
{
	msgpack_unpacked up;
	const char *why;
	uint32_t i, j;

	strcpy(id, REP_NOID);
	if (ss_mpcheck(buf, len, SS_MAX_DEPTH, SS_MAX_STR_LEN, &why) != 0)
		return;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, buf, len, NULL) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP)
		goto done;
	for (i = 0; i < up.data.via.map.size; i++) {
		const msgpack_object *k = &up.data.via.map.ptr[i].key;
		const msgpack_object *v = &up.data.via.map.ptr[i].val;

		if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 2 ||
		    memcmp(k->via.str.ptr, "id", 2) != 0)
			continue;
		if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
		    v->via.str.size > SS_MAX_ID_LEN)
			goto done;
		for (j = 0; j < v->via.str.size; j++)
			if (v->via.str.ptr[j] < 0x21 ||
			    v->via.str.ptr[j] > 0x7e)
				goto done;
		memcpy(id, v->via.str.ptr, v->via.str.size);
		id[v->via.str.size] = '\0';
		goto done;
	}
done:
	msgpack_unpacked_destroy(&up);
}

/* Sends the packed reply (or drops it), then frees the call. */
static void
rep_finish(ss_call *c, int err)
{
	ss_rep *r = c->rep;
	ss_daemon *d = r->d;
	int rv;

	if (c->route != REP_NO_ROUTE) {
		rep_route *rt = &r->routes[c->route];

		ss_metric_observe(rt->duration, ss_now() - c->start);
		if (err != 0)
			ss_metric_add(rep_error_metric(rt, err), 1);
	}
	if (!r->closed) {
		/* Clearing keeps the header: the backtrace of the request. */
		nng_msg_clear(c->nm);
		rv = nng_msg_append(c->nm, c->pack.sb.data, c->pack.sb.size);
		if (rv == 0 &&
		    (rv = nng_sendmsg(r->sock, c->nm, NNG_FLAG_NONBLOCK)) == 0)
			c->nm = NULL; /* NNG owns it now */
		if (rv != 0) {
			ss_metric_add(r->send_failed, 1);
			ss_warn("rep.send_failed", c->msg.id, "error",
			        nng_strerror(rv), NULL);
		}
	}
	if (c->nm != NULL)
		nng_msg_free(c->nm);
	if (c->decoded)
		ss_msg_free(&c->msg);
	ss_pack_free(&c->pack);
	free(c);
	r->ncalls--;
	if (r->closed && r->ncalls == 0 && r->busy == 0)
		rep_free(r);
	/* Last: releasing the last call of a stopping daemon ends its loop. */
	ss_daemon_release(d);
}

/* Takes one request message and answers it or hands it to its route. */
static void
rep_dispatch(ss_rep *r, nng_msg *nm)
{
	const char *why = NULL;
	ss_call *c;
	rep_route *rt;
	size_t i;
	int rv;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		/* Nothing to answer with: the client times out. */
		ss_metric_add(r->send_failed, 1);
		nng_msg_free(nm);
		return;
	}
	c->rep = r;
	c->nm = nm;
	c->start = ss_now();
	c->route = REP_NO_ROUTE;
	ss_pack_init(&c->pack);
	r->ncalls++;
	ss_daemon_hold(r->d);

	rv = ss_msg_decode(&c->msg, nng_msg_body(nm), nng_msg_len(nm), false,
	                   &why);
	if (rv != 0) {
		/* ss_msg_decode() left c->msg zeroed: only its id is set. */
		rep_peek_id(nng_msg_body(nm), nng_msg_len(nm), c->msg.id);
		if (rv == SS_EBADREQ) {
			ss_metric_add(r->bad_decode, 1);
			ss_info("rep.bad_message", c->msg.id, "error", why,
			        NULL);
		}
		ss_call_reply_err(c, rv, why);
		return;
	}
	c->decoded = true;

	if ((i = rep_route_find(r, c->msg.type)) == REP_NO_ROUTE) {
		ss_metric_add(r->bad_type, 1);
		ss_info("rep.unknown_type", c->msg.id, "type", c->msg.type,
		        NULL);
		ss_call_reply_err(c, SS_EBADREQ, "unknown message type");
		return;
	}
	c->route = i;
	rt = &r->routes[i];
	ss_metric_add(rt->requests, 1);
	if (r->d->stopping) {
		ss_call_reply_err(c, SS_EUNAVAIL, "shutting down");
		return;
	}
	rt->fn(c, c->msg.body, r->arg);
}

static void
rep_readable(evutil_socket_t fd, short what, void *arg)
{
	ss_rep *r = arg;
	nng_msg *nm;
	int n, rv;

	(void)fd;
	(void)what;
	r->busy++;
	for (n = 0; n < REP_BATCH && !r->closed; n++) {
		if ((rv = nng_recvmsg(r->sock, &nm, NNG_FLAG_NONBLOCK)) != 0) {
			if (rv != NNG_EAGAIN && rv != NNG_ECLOSED)
				ss_warn("rep.recv_failed", NULL, "error",
				        nng_strerror(rv), NULL);
			break;
		}
		rep_dispatch(r, nm);
	}
	r->busy--;
	/* A handler closed the server while we were dispatching. */
	if (r->closed && r->ncalls == 0 && r->busy == 0)
		rep_free(r);
}

int
ss_rep_listen(ss_rep **out, ss_daemon *d, const char *url,
              const ss_route *routes, size_t nroutes, void *arg)
{
	ss_rep *r;
	size_t recv_max;
	int fd, rv;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SS_ENOMEM;
	r->d = d;
	r->arg = arg;
	if ((rv = rep_routes_init(r, routes, nroutes)) != 0)
		goto fail;
	r->bad_decode =
	    ss_counter("studyshare_bad_messages_total",
	               "Requests refused before routing.", "reason=\"decode\"");
	r->bad_type = ss_counter("studyshare_bad_messages_total",
	                         "Requests refused before routing.",
	                         "reason=\"unknown_type\"");
	r->send_failed =
	    ss_counter("studyshare_reply_send_failures_total",
	               "Replies that could not be handed to NNG.", NULL);

	recv_max = REP_RECV_MAX_DEFAULT;
	if (d->common != NULL && d->common->recv_max > 0)
		recv_max = (size_t)d->common->recv_max;
	if ((rv = nng_rep0_open_raw(&r->sock)) != 0)
		goto nng_fail;
	r->sock_open = true;
	if ((rv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, recv_max)) !=
	        0 ||
	    (rv = nng_socket_set_int(r->sock, NNG_OPT_SENDBUF, REP_SENDBUF)) !=
	        0 ||
	    (rv = nng_socket_get_int(r->sock, NNG_OPT_RECVFD, &fd)) != 0)
		goto nng_fail;
	if ((rv = nng_listen(r->sock, url, NULL, 0)) != 0)
		goto nng_fail;

	r->rev = event_new(d->base, fd, EV_READ | EV_PERSIST, rep_readable, r);
	if (r->rev == NULL || event_add(r->rev, NULL) != 0) {
		rv = SS_ENOMEM;
		goto fail;
	}
	ss_info("rep.listening", NULL, "url", url, NULL);
	*out = r;
	return 0;

nng_fail:
	ss_error("rep.listen_failed", NULL, "url", url, "error",
	         nng_strerror(rv), NULL);
	rv = rep_nng_err(rv);
fail:
	rep_free(r);
	return rv;
}

void
ss_rep_close(ss_rep *r)
{
	if (r == NULL || r->closed)
		return;
	r->closed = true;
	event_del(r->rev);
	/* Replies of calls still in flight have nowhere to go now. */
	nng_close(r->sock);
	r->sock_open = false;
	if (r->ncalls == 0 && r->busy == 0)
		rep_free(r);
}

const char *
ss_call_id(const ss_call *c)
{
	return c->msg.id;
}

const char *
ss_call_type(const ss_call *c)
{
	return c->msg.type;
}

ss_pack *
ss_call_reply_ok(ss_call *c)
{
	ss_pack_reset(&c->pack);
	ss_pack_reply_ok(&c->pack, c->msg.id);
	return &c->pack;
}

void
ss_call_reply_end(ss_call *c)
{
	rep_finish(c, 0);
}

void
ss_call_reply_err(ss_call *c, int err, const char *msg)
{
	if (err >= 0)
		err = SS_EINTERNAL;
	ss_pack_reset(&c->pack);
	ss_pack_reply_err(&c->pack, c->msg.id, err, msg);
	rep_finish(c, err);
}
