/*
 * runtime/rep.c - an NNG REP server on the daemon's loop.
 *
 * Contract: a REP socket with one nng_ctx per request, so any number of
 * requests are in flight and each is answered whenever its handler is
 * done.  NNG completes context operations on its own threads; each
 * completion is queued under a mutex and the loop is woken with
 * event_active() (the daemon's base is thread-aware), so handlers, metrics
 * and everything else here run on the loop only.
 *
 * Why not a raw socket driven by NNG_OPT_RECVFD: raw REP (xrep0) moves
 * every reply into a per-pipe queue of 64 with a non-blocking put and
 * silently drops what does not fit, so a burst of replies to one client
 * (a gateway with hundreds of calls in flight) loses replies and the
 * client times out.  A context's send instead waits its turn on the pipe.
 *
 * A fixed number of receives are always posted; each completed receive
 * becomes a call and is replaced at once.  A call keeps its context and
 * its request message, which carries the reply: the body is replaced.
 * A reply waits at most REP_SEND_TIMEOUT_MS for a client that does not
 * read; then it is dropped, logged and counted, and the client times out.
 * A call is held on the daemon from receipt until NNG has taken its reply.
 *
 * A message that does not decode gets bad_request with its id when one can
 * be read and "-" otherwise (an envelope id cannot be empty); one whose type
 * has no route gets bad_request "unknown message type".  While the daemon
 * is stopping we keep receiving, so new requests get unavailable at once
 * instead of a timeout, and calls in flight still get their replies.
 *
 * A bus.batch request (proto/batch.h) becomes one call per message it
 * holds, each handled exactly like a request that came alone; the batch
 * keeps its context and its daemon hold, collects the packed replies in
 * order and is answered when the last of its calls is.
 *
 * ss_rep_close() closes the socket and waits for NNG to finish with every
 * operation it holds.  Calls still with their handlers are freed when
 * answered (the replies go nowhere), and the server with the last of them.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "proto/batch.h"
#include "proto/errors.h"
#include "proto/mpcheck.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/rep.h"

#define REP_RECV_MAX_DEFAULT (1024 * 1024)
#define REP_RECEIVERS        16   /* receives kept posted */
#define REP_SEND_TIMEOUT_MS  5000 /* for a client that does not read */
#define REP_BATCH            64   /* completions handled per wake-up */
#define REP_RETRY_MS         100  /* after a failed receive */
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

typedef enum call_state {
	CALL_RECV, /* NNG holds the aio: receiving */
	CALL_OPEN, /* with its handler, or a batch waiting for its calls */
	CALL_SEND, /* NNG holds the aio: sending the reply */
} call_state;

/* The packed reply of one call of a batch, kept until all are answered. */
typedef struct rep_sub {
	char *p;
	size_t n;
} rep_sub;

struct ss_call {
	ss_rep *rep;
	call_state state;
	nng_ctx ctx;
	bool ctx_open;
	nng_aio *aio;
	nng_msg *nm; /* the request, then the reply */
	ss_msg msg;
	bool decoded;
	bool held; /* on the daemon */
	char id[SS_MAX_ID_LEN + 1];
	ss_pack pack;
	double start;
	size_t route;              /* REP_NO_ROUTE before routing */
	struct ss_call *batch;     /* a call of a batch: the batch */
	size_t index;              /* ... and its place in it */
	rep_sub *subs;             /* a batch: the replies of its calls */
	size_t nsub, left;         /* ... how many, how many unanswered */
	TAILQ_ENTRY(ss_call) link; /* rep->nng while NNG holds the aio */
	struct ss_call *qnext;     /* rep->done */
};

TAILQ_HEAD(call_list, ss_call);

struct ss_rep {
	ss_daemon *d;
	nng_socket sock;
	bool sock_open;
	struct event *wake;
	struct event *retry;
	pthread_mutex_t mu; /* guards done */
	ss_call *done;      /* completed operations, newest first */
	struct call_list nng;
	int nrecv;     /* receives posted */
	int64_t nopen; /* calls with their handlers */
	int busy;      /* > 0 while dispatching: close must not free */
	bool closed;
	rep_route *routes;
	size_t nroutes;
	void *arg;
	ss_metric *bad_decode;
	ss_metric *bad_type;
	ss_metric *send_failed;
	ss_metric *batches;
};

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

/* --- metrics and routes --------------------------------------------- */

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

/* --- calls ---------------------------------------------------------- */

static void
rep_free(ss_rep *r)
{
	if (r->wake != NULL)
		event_free(r->wake);
	if (r->retry != NULL)
		event_free(r->retry);
	if (r->sock_open)
		nng_close(r->sock);
	pthread_mutex_destroy(&r->mu);
	free(r->routes);
	free(r);
}

/* Frees the server once nothing refers to it any more. */
static void
rep_maybe_free(ss_rep *r)
{
	if (r->closed && r->nopen == 0 && r->busy == 0)
		rep_free(r);
}

/* Frees a call whose aio NNG does not hold; drops its daemon hold last,
 * since that may end the loop of a stopping daemon. */
static void
call_free(ss_call *c)
{
	ss_daemon *d = c->rep->d;
	bool held = c->held;

	if (c->aio != NULL) {
		nng_msg *m = nng_aio_get_msg(c->aio);

		if (m != NULL)
			nng_msg_free(m);
		nng_aio_free(c->aio);
	}
	if (c->ctx_open && !c->rep->closed)
		nng_ctx_close(c->ctx);
	if (c->nm != NULL)
		nng_msg_free(c->nm);
	if (c->decoded)
		ss_msg_free(&c->msg);
	ss_pack_free(&c->pack);
	if (c->subs != NULL) {
		size_t i;

		for (i = 0; i < c->nsub; i++)
			free(c->subs[i].p);
		free(c->subs);
	}
	free(c);
	if (held)
		ss_daemon_release(d);
}

/* Runs on an NNG thread: hands the completed operation to the loop. */
static void
call_aio_done(void *arg)
{
	ss_call *c = arg;
	ss_rep *r = c->rep;

	/* The wake-up is made under the lock: ss_rep_close() takes it before
	 * freeing r->wake, so a thread slow to get here never touches a
	 * freed event. */
	pthread_mutex_lock(&r->mu);
	c->qnext = r->done;
	r->done = c;
	event_active(r->wake, EV_READ, 0);
	pthread_mutex_unlock(&r->mu);
}

/* Posts one more receive; on failure the retry timer tries again. */
static void
rep_post_recv(ss_rep *r)
{
	struct timeval tv = {0, REP_RETRY_MS * 1000};
	ss_call *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->rep = r;
	c->state = CALL_RECV;
	c->route = REP_NO_ROUTE;
	ss_pack_init(&c->pack);
	if (nng_ctx_open(&c->ctx, r->sock) != 0)
		goto fail;
	c->ctx_open = true;
	if (nng_aio_alloc(&c->aio, call_aio_done, c) != 0)
		goto fail;
	nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
	TAILQ_INSERT_TAIL(&r->nng, c, link);
	r->nrecv++;
	nng_ctx_recv(c->ctx, c->aio);
	return;
fail:
	if (c != NULL)
		call_free(c);
	evtimer_add(r->retry, &tv);
}

static void
rep_fill(ss_rep *r)
{
	while (!r->closed && r->nrecv < REP_RECEIVERS &&
	       !evtimer_pending(r->retry, NULL))
		rep_post_recv(r);
}

static void
rep_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rep_fill(arg);
}

static void batch_answered(ss_call *c);

/* Hands the packed reply to NNG, or frees the call when it cannot. */
static void
rep_finish(ss_call *c, int err)
{
	ss_rep *r = c->rep;
	int rv;

	if (c->route != REP_NO_ROUTE) {
		rep_route *rt = &r->routes[c->route];

		ss_metric_observe(rt->duration, ss_now() - c->start);
		if (err != 0)
			ss_metric_add(rep_error_metric(rt, err), 1);
	}
	if (c->batch != NULL) {
		batch_answered(c);
		return;
	}
	r->nopen--;
	if (r->closed) {
		call_free(c);
		rep_maybe_free(r);
		return;
	}
	/* Our clients take replies up to SS_REPLY_RECV_MAX (a batch's,
	 * whose calls' replies fit in SS_BATCH_REPLY_MAX, with its framing):
	 * a larger one would close the connection under every request on
	 * it.  The call did run; its caller is told so. */
	if (c->pack.sb.size > SS_REPLY_MAX) {
		ss_warn("rep.reply_too_large", c->id, NULL);
		ss_pack_reset(&c->pack);
		ss_pack_reply_err(&c->pack, c->id, SS_EINTERNAL,
		                  "reply too large");
	}
	nng_msg_clear(c->nm);
	if ((rv = nng_msg_append(c->nm, c->pack.sb.data, c->pack.sb.size)) !=
	    0) {
		ss_metric_add(r->send_failed, 1);
		ss_warn("rep.send_failed", c->id, "error", nng_strerror(rv),
		        NULL);
		call_free(c);
		return;
	}
	c->state = CALL_SEND;
	nng_aio_set_msg(c->aio, c->nm);
	c->nm = NULL;
	nng_aio_set_timeout(c->aio, REP_SEND_TIMEOUT_MS);
	TAILQ_INSERT_TAIL(&r->nng, c, link);
	nng_ctx_send(c->ctx, c->aio);
}

/* --- batches (proto/batch.h) ---------------------------------------- */

/*
 * The batch's reply, once every call is answered.  Should it be larger
 * than SS_BATCH_REPLY_MAX, each reply over its even share is replaced by
 * an internal error (the call did run): clients batch only calls with
 * small replies, so this is a guard, not a path.
 */
static void
batch_reply(ss_call *b)
{
	size_t i, total = 0, fair = SS_BATCH_REPLY_MAX / b->nsub;
	ss_pack big;

	for (i = 0; i < b->nsub; i++)
		total += b->subs[i].n;
	ss_pack_init(&big);
	for (i = 0; total > SS_BATCH_REPLY_MAX && i < b->nsub; i++) {
		rep_sub *s = &b->subs[i];
		ss_msg m;
		const char *why;
		char id[SS_MAX_ID_LEN + 1];

		if (s->n <= fair)
			continue;
		/* Our own reply: it decodes, and its id is the call's. */
		strcpy(id, REP_NOID);
		if (ss_msg_decode(&m, s->p, s->n, true, &why) == 0) {
			strcpy(id, m.id);
			ss_msg_free(&m);
		}
		ss_warn("rep.batch_reply_too_large", id, NULL);
		ss_pack_reset(&big);
		ss_pack_reply_err(&big, id, SS_EINTERNAL,
		                  "reply too large for a batch: send this "
		                  "request alone");
		total -= s->n;
		free(s->p);
		s->n = big.sb.size;
		s->p = msgpack_sbuffer_release(&big.sb);
		total += s->n;
	}
	ss_pack_free(&big);
	ss_pack_reset(&b->pack);
	ss_pack_reply_ok(&b->pack, b->id);
	ss_batch_pack_head(&b->pack, "replies", b->nsub);
	for (i = 0; i < b->nsub; i++)
		ss_pack_bin(&b->pack, b->subs[i].p, b->subs[i].n);
	rep_finish(b, 0);
}

/* A call of a batch is answered: its reply waits for the others'. */
static void
batch_answered(ss_call *c)
{
	ss_call *b = c->batch;
	rep_sub *s = &b->subs[c->index];

	s->n = c->pack.sb.size;
	s->p = msgpack_sbuffer_release(&c->pack.sb);
	call_free(c);
	if (--b->left == 0)
		batch_reply(b);
}

static void rep_handle(ss_rep *r, ss_call *c, const void *buf, size_t len);

/* Hands each call of the batch b to its route, as if it came alone. */
static void
batch_dispatch(ss_rep *r, ss_call *b)
{
	ss_str items[SS_BATCH_MAX];
	const char *why = NULL;
	size_t i, n;

	if (ss_batch_items(b->msg.body, "calls", items, SS_BATCH_MAX, &n,
	                   &why) != 0) {
		ss_metric_add(r->bad_decode, 1);
		ss_info("rep.bad_message", b->id, "error", why, NULL);
		ss_call_reply_err(b, SS_EBADREQ, why);
		return;
	}
	if ((b->subs = calloc(n, sizeof(*b->subs))) == NULL) {
		ss_call_reply_err(b, SS_ENOMEM, NULL);
		return;
	}
	ss_metric_add(r->batches, 1);
	b->nsub = b->left = n;
	for (i = 0; i < n; i++) {
		ss_call *c = calloc(1, sizeof(*c));

		if (c == NULL) {
			/* Answer the rest ourselves: the batch still ends. */
			rep_sub *s = &b->subs[i];
			ss_pack e;

			ss_pack_init(&e);
			ss_pack_reply_err(&e, REP_NOID, SS_ENOMEM, NULL);
			s->n = e.sb.size;
			s->p = msgpack_sbuffer_release(&e.sb);
			if (--b->left == 0)
				batch_reply(b);
			continue;
		}
		c->rep = r;
		c->state = CALL_OPEN;
		c->route = REP_NO_ROUTE;
		c->batch = b;
		c->index = i;
		c->start = b->start;
		ss_pack_init(&c->pack);
		/* The last call's answer may end and free the batch. */
		rep_handle(r, c, items[i].p, items[i].n);
	}
}

/* A request, alone or of a batch: answer it or hand it to its route. */
static void
rep_handle(ss_rep *r, ss_call *c, const void *buf, size_t len)
{
	const char *why = NULL;
	rep_route *rt;
	size_t i;
	int rv;

	rv = ss_msg_decode(&c->msg, buf, len, false, &why);
	if (rv != 0) {
		rep_peek_id(buf, len, c->id);
		if (rv == SS_EBADREQ) {
			ss_metric_add(r->bad_decode, 1);
			ss_info("rep.bad_message", c->id, "error", why, NULL);
		}
		ss_call_reply_err(c, rv, why);
		return;
	}
	c->decoded = true;
	memcpy(c->id, c->msg.id, sizeof(c->id));

	if (strcmp(c->msg.type, SS_BATCH_TYPE) == 0) {
		if (c->batch != NULL) {
			ss_metric_add(r->bad_type, 1);
			ss_call_reply_err(c, SS_EBADREQ,
			                  "a batch inside a batch");
			return;
		}
		batch_dispatch(r, c);
		return;
	}
	if ((i = rep_route_find(r, c->msg.type)) == REP_NO_ROUTE) {
		ss_metric_add(r->bad_type, 1);
		ss_info("rep.unknown_type", c->id, "type", c->msg.type, NULL);
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

/* A received message: from now on the call is held on the daemon. */
static void
rep_dispatch(ss_rep *r, ss_call *c)
{
	c->state = CALL_OPEN;
	c->start = ss_now();
	c->held = true;
	ss_daemon_hold(r->d);
	r->nopen++;
	rep_handle(r, c, nng_msg_body(c->nm), nng_msg_len(c->nm));
}

/* One operation NNG has finished with. */
static void
rep_completed(ss_rep *r, ss_call *c)
{
	int rv = nng_aio_result(c->aio);

	TAILQ_REMOVE(&r->nng, c, link);
	if (c->state == CALL_SEND) {
		if (rv != 0 && rv != NNG_ECLOSED) {
			ss_metric_add(r->send_failed, 1);
			ss_warn("rep.send_failed", c->id, "error",
			        nng_strerror(rv), NULL);
		}
		call_free(c);
		return;
	}
	r->nrecv--;
	if (rv != 0) {
		if (rv != NNG_ECLOSED)
			ss_warn("rep.recv_failed", NULL, "error",
			        nng_strerror(rv), NULL);
		call_free(c);
		rep_fill(r);
		return;
	}
	c->nm = nng_aio_get_msg(c->aio);
	nng_aio_set_msg(c->aio, NULL);
	rep_fill(r); /* keep receiving while the handler runs */
	rep_dispatch(r, c);
}

static ss_call *
rep_pop_done(ss_rep *r)
{
	ss_call *c;

	pthread_mutex_lock(&r->mu);
	if ((c = r->done) != NULL)
		r->done = c->qnext;
	pthread_mutex_unlock(&r->mu);
	return c;
}

static void
rep_wake(evutil_socket_t fd, short what, void *arg)
{
	ss_rep *r = arg;
	ss_call *c;
	int n;

	(void)fd;
	(void)what;
	r->busy++;
	for (n = 0; n < REP_BATCH && !r->closed; n++) {
		if ((c = rep_pop_done(r)) == NULL)
			break;
		rep_completed(r, c);
	}
	/* More left: let other events run first. */
	if (n == REP_BATCH && !r->closed)
		event_active(r->wake, EV_READ, 0);
	r->busy--;
	rep_maybe_free(r);
}

/* --- API ------------------------------------------------------------ */

int
ss_rep_listen(ss_rep **out, ss_daemon *d, const char *url,
              const ss_route *routes, size_t nroutes, void *arg)
{
	ss_rep *r;
	size_t recv_max;
	int rv;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SS_ENOMEM;
	r->d = d;
	r->arg = arg;
	TAILQ_INIT(&r->nng);
	pthread_mutex_init(&r->mu, NULL);
	if ((rv = rep_routes_init(r, routes, nroutes)) != 0)
		goto fail;
	r->bad_decode =
	    ss_counter("studyshare_bad_messages_total",
	               "Requests refused before routing.", "reason=\"decode\"");
	r->bad_type = ss_counter("studyshare_bad_messages_total",
	                         "Requests refused before routing.",
	                         "reason=\"unknown_type\"");
	r->send_failed = ss_counter("studyshare_reply_send_failures_total",
	                            "Replies NNG could not send.", NULL);
	r->batches = ss_counter("studyshare_request_batches_total",
	                        "bus.batch requests received (their calls "
	                        "are counted by type as well).",
	                        NULL);
	r->wake = event_new(d->base, -1, 0, rep_wake, r);
	r->retry = evtimer_new(d->base, rep_retry, r);
	if (r->wake == NULL || r->retry == NULL) {
		rv = SS_ENOMEM;
		goto fail;
	}

	recv_max = REP_RECV_MAX_DEFAULT;
	if (d->common != NULL && d->common->recv_max > 0)
		recv_max = (size_t)d->common->recv_max;
	if ((rv = nng_rep0_open(&r->sock)) != 0)
		goto nng_fail;
	r->sock_open = true;
	if ((rv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, recv_max)) !=
	        0 ||
	    (rv = nng_listen(r->sock, url, NULL, 0)) != 0)
		goto nng_fail;
	rep_fill(r);
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
	ss_call *c;

	if (r == NULL || r->closed)
		return;
	r->closed = true;
	/* Closing fails every posted operation; wait until NNG has called
	 * back for each, so nothing touches r->wake or r->done after. */
	nng_close(r->sock);
	r->sock_open = false;
	for (c = TAILQ_FIRST(&r->nng); c != NULL; c = TAILQ_NEXT(c, link))
		nng_aio_stop(c->aio);
	while ((c = rep_pop_done(r)) != NULL) {
		TAILQ_REMOVE(&r->nng, c, link);
		call_free(c);
	}
	/* A stopped aio that never called back is ours to free as well. */
	while ((c = TAILQ_FIRST(&r->nng)) != NULL) {
		TAILQ_REMOVE(&r->nng, c, link);
		call_free(c);
	}
	/* No NNG thread is still between queueing and waking (above). */
	pthread_mutex_lock(&r->mu);
	pthread_mutex_unlock(&r->mu);
	event_free(r->wake);
	r->wake = NULL;
	event_free(r->retry);
	r->retry = NULL;
	rep_maybe_free(r);
}

const char *
ss_call_id(const ss_call *c)
{
	return c->id;
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
	ss_pack_reply_ok(&c->pack, c->id);
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
	ss_call_reply_err_retry(c, err, msg, 0);
}

void
ss_call_reply_err_retry(ss_call *c, int err, const char *msg, int retry_after)
{
	if (err >= 0)
		err = SS_EINTERNAL;
	ss_pack_reset(&c->pack);
	ss_pack_reply_err_retry(&c->pack, c->id, err, msg, retry_after);
	rep_finish(c, err);
}
