/*
 * runtime/req.c - an NNG REQ client on the daemon's loop.
 *
 * Contract: the socket is raw (xreq0), so NNG neither limits us to one
 * request at a time nor matches replies: we put a 32-bit request id (high
 * bit set, as the REQ/REP wire protocol requires) in each request's header
 * and NNG gives the same id back in the reply's header.  Pending requests
 * sit in a hash table keyed by that id and, since every request of a client
 * has the same timeout, in a list in send order, which is deadline order:
 * one timer armed for the oldest is enough.  A reply whose id is no longer
 * pending (it came after its deadline) is dropped.
 *
 * NNG_OPT_RECVFD is readable while a reply waits; the loop drains it with
 * non-blocking receives.  A send never blocks: when no pipe is connected
 * (counted by pipe notifications) or NNG's send queue is full, the caller
 * gets SS_EUNAVAIL at once and no callback.  The dialer starts without
 * waiting for the peer and reconnects by itself (50 ms doubling to 1 s).
 *
 * ss_req_queue() holds a request until the end of the loop turn (an
 * active event that runs after the events already due); then everything
 * held goes out as one message: alone when it is the only one, otherwise
 * as a bus.batch (proto/batch.h) that is pending under one NNG id, and
 * whose reply is split back into one callback per request, in order.
 * While REQ_QUEUED_MAX such messages await their replies, what is held
 * waits for one of them to be answered: batches grow with the load
 * instead of their number, and every message costs both daemons NNG's
 * thread hand-offs (bench/README.md, "gateway (HTTP)").  A held request's
 * deadline runs from when it was held, so waiting costs it no time; held
 * until less than a tenth of it is left, it is not sent but timed out.  A
 * send that fails calls every held request back with SS_EUNAVAIL.  Held
 * bytes are wiped once sent: requests may carry passwords.
 *
 * A request larger than the peer takes (its --recv-max; the daemons share
 * the setting, so ours stands for it) is refused at once with
 * SS_ETOOLARGE: NNG would not drop it alone but close the connection,
 * and with it every other request in flight.  A batch holds no more than
 * fits under that size.
 *
 * Callbacks may send new requests and may close the client; closing from
 * a callback defers the free until the dispatch in progress unwinds.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "proto/batch.h"
#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/pipes.h"
#include "runtime/req.h"

#define REQ_RECV_MAX_DEFAULT (1024 * 1024)
#define REQ_TIMEOUT_DEFAULT  5000
#define REQ_SENDBUF          1024 /* requests NNG queues for the pipe */
#define REQ_BATCH            64   /* replies taken per wake-up */
#define REQ_NBUCKETS_MIN     64
#define REQ_ID_BIT           0x80000000u
#define REQ_QUEUE_BYTES      (256 * 1024) /* request bytes one batch holds */
#define REQ_QUEUED_MAX       2 /* held sends awaiting replies, at most */
#define REQ_BATCH_FRAMING    (SS_BATCH_MAX * 8 + 1024)
#define REQ_MIN_BUDGET       0.1 /* of the timeout, left to send held */

/* A request of a batch: whom to call back. */
typedef struct req_sub {
	ss_reply_fn fn;
	void *arg;
} req_sub;

typedef struct req_pending {
	uint32_t id;
	ss_reply_fn fn; /* NULL for a batch */
	void *arg;
	req_sub *subs; /* a batch: its requests, in order */
	size_t nsub;
	bool queued;     /* sent by req_send_held(): counted in nqueued */
	double deadline; /* ss_now() seconds */
	struct req_pending *hnext;
	TAILQ_ENTRY(req_pending) link;
} req_pending;

TAILQ_HEAD(req_list, req_pending);

struct ss_req {
	ss_daemon *d;
	nng_socket sock;
	bool sock_open;
	struct event *rev;
	struct event *timer;
	struct event *flush; /* active while requests are held */
	req_sub held[SS_BATCH_MAX];
	size_t nheld;
	size_t heldoff[SS_BATCH_MAX + 1]; /* their bytes in heldbuf */
	msgpack_sbuffer heldbuf;
	ss_pack batch;     /* the bus.batch being sent */
	size_t send_max;   /* a request's bytes, at most (the peer's cap) */
	size_t held_max;   /* bytes held for one batch, at most */
	int nqueued;       /* held sends awaiting replies */
	double held_since; /* when the oldest held request was held */
	double timeout;    /* seconds */
	atomic_int npipes;
	uint32_t next_id;
	req_pending **buckets; /* chained; nbuckets is a power of two */
	size_t nbuckets;
	size_t count;
	struct req_list order; /* send order = deadline order */
	bool timer_armed;
	int busy; /* > 0 while dispatching callbacks */
	bool closed;
	ss_metric *timeouts;
	ss_metric *late;
	ss_metric *bad_replies;
	ss_metric *refused;
	ss_metric *batches;
	ss_metric *batched;
	char probe[80]; /* "peer <url>", the readiness probe's name */
};

static void req_flush(evutil_socket_t fd, short what, void *arg);
static void req_fail_held(ss_req *r, int err);

/* Request ids (ss_req_new_id) and the socket's starting id; any thread. */
static pthread_once_t req_id_once = PTHREAD_ONCE_INIT;
static uint64_t req_id_seed;
static atomic_uint_fast64_t req_id_next;

static void
req_id_init(void)
{
	if (sodium_init() < 0) {
		/* Ids are not secrets: uniqueness is all we need. */
		req_id_seed = (uint64_t)time(NULL) << 32 ^ (uint64_t)getpid();
		return;
	}
	randombytes_buf(&req_id_seed, sizeof(req_id_seed));
}

/* Sequential ids spread evenly over a power-of-two table. */
static req_pending **
req_bucket(const ss_req *r, uint32_t id)
{
	return &r->buckets[id & (r->nbuckets - 1)];
}

static req_pending *
req_find(const ss_req *r, uint32_t id)
{
	req_pending *p;

	for (p = *req_bucket(r, id); p != NULL; p = p->hnext)
		if (p->id == id)
			return p;
	return NULL;
}

/* Doubles the table when it holds more entries than buckets. */
static int
req_grow(ss_req *r)
{
	req_pending **nb, *p, *next;
	size_t i, n;

	if (r->count < r->nbuckets)
		return 0;
	n = r->nbuckets * 2;
	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return SS_ENOMEM;
	for (i = 0; i < r->nbuckets; i++) {
		for (p = r->buckets[i]; p != NULL; p = next) {
			next = p->hnext;
			p->hnext = nb[p->id & (n - 1)];
			nb[p->id & (n - 1)] = p;
		}
	}
	free(r->buckets);
	r->buckets = nb;
	r->nbuckets = n;
	return 0;
}

static void
req_unlink(ss_req *r, req_pending *p)
{
	req_pending **pp;

	for (pp = req_bucket(r, p->id); *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	}
	TAILQ_REMOVE(&r->order, p, link);
	r->count--;
	/* Answered or timed out: what waits for it may go now. */
	if (p->queued) {
		r->nqueued--;
		if (r->nheld > 0 && !r->closed)
			event_active(r->flush, EV_WRITE, 0);
	}
}

/* The next id with the high bit set that is not pending. */
static uint32_t
req_next_id(ss_req *r)
{
	uint32_t id;

	do {
		id = r->next_id++ | REQ_ID_BIT;
	} while (req_find(r, id) != NULL);
	return id;
}

static void
req_arm(ss_req *r)
{
	req_pending *p = TAILQ_FIRST(&r->order);
	struct timeval tv;
	int64_t us;

	if (p == NULL || r->timer_armed)
		return;
	/* Rounded up, so the timer never fires just before the deadline. */
	us = (int64_t)((p->deadline - ss_now()) * 1e6) + 1;
	if (us < 0)
		us = 0;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	if (evtimer_add(r->timer, &tv) == 0)
		r->timer_armed = true;
}

static void
req_free(ss_req *r)
{
	if (r->rev != NULL)
		event_free(r->rev);
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->flush != NULL)
		event_free(r->flush);
	msgpack_sbuffer_destroy(&r->heldbuf);
	ss_pack_free(&r->batch);
	if (r->sock_open)
		nng_close(r->sock);
	free(r->buckets);
	free(r);
}

/* /readyz: a peer is ready when at least one pipe to it is up. */
static bool
req_probe(void *arg, const char **why)
{
	ss_req *r = arg;

	if (atomic_load(&r->npipes) > 0)
		return true;
	*why = "not connected";
	return false;
}

/* Calls back every request of p with err, and frees p. */
static void
req_fail(req_pending *p, int err)
{
	size_t i;

	if (p->subs == NULL)
		p->fn(err, NULL, p->arg);
	for (i = 0; i < p->nsub; i++)
		p->subs[i].fn(err, NULL, p->subs[i].arg);
	free(p->subs);
	free(p);
}

static void
req_timer(evutil_socket_t fd, short what, void *arg)
{
	ss_req *r = arg;
	req_pending *p;
	double now = ss_now();

	(void)fd;
	(void)what;
	r->timer_armed = false;
	r->busy++;
	while (!r->closed && (p = TAILQ_FIRST(&r->order)) != NULL &&
	       p->deadline <= now) {
		req_unlink(r, p);
		ss_metric_add(r->timeouts, p->subs != NULL ? p->nsub : 1);
		req_fail(p, SS_ETIMEDOUT);
	}
	r->busy--;
	if (r->closed) {
		if (r->busy == 0)
			req_free(r);
		return;
	}
	req_arm(r);
}

/* The reply to a batch: one reply per request, in order. */
static void
req_deliver_batch(ss_req *r, req_pending *p, nng_msg *nm)
{
	ss_str items[SS_BATCH_MAX];
	const char *why = NULL;
	size_t i, n;
	ss_msg m, sm;

	if (ss_msg_decode(&m, nng_msg_body(nm), nng_msg_len(nm), true, &why) !=
	    0)
		goto bad;
	if (!m.ok) {
		why = "batch refused";
		ss_warn("req.batch_refused", m.id, "error", ss_err_word(m.err),
		        NULL);
		ss_msg_free(&m);
		goto bad;
	}
	if (ss_batch_items(m.body, "replies", items, p->nsub, &n, &why) != 0 ||
	    n != p->nsub) {
		ss_msg_free(&m);
		why = why != NULL ? why : "a reply missing in a batch";
		goto bad;
	}
	for (i = 0; i < n; i++) {
		req_sub *q = &p->subs[i];

		if (ss_msg_decode(&sm, items[i].p, items[i].n, true, &why) !=
		    0) {
			ss_metric_add(r->bad_replies, 1);
			ss_warn("req.bad_reply", NULL, "error", why, NULL);
			q->fn(SS_EINTERNAL, NULL, q->arg);
			continue;
		}
		q->fn(0, &sm, q->arg);
		ss_msg_free(&sm);
	}
	ss_msg_free(&m);
	free(p->subs);
	free(p);
	return;
bad:
	ss_metric_add(r->bad_replies, 1);
	ss_warn("req.bad_reply", NULL, "error", why, NULL);
	req_fail(p, SS_EINTERNAL);
}

/* Matches one reply to its request and calls back. */
static void
req_deliver(ss_req *r, nng_msg *nm)
{
	req_pending *p;
	const char *why = NULL;
	uint32_t id;
	ss_msg m;

	if (nng_msg_header_len(nm) != sizeof(uint32_t) ||
	    nng_msg_header_trim_u32(nm, &id) != 0 ||
	    (p = req_find(r, id)) == NULL) {
		ss_metric_add(r->late, 1);
		return;
	}
	req_unlink(r, p);
	if (p->subs != NULL) {
		req_deliver_batch(r, p, nm);
		return;
	}
	if (ss_msg_decode(&m, nng_msg_body(nm), nng_msg_len(nm), true, &why) !=
	    0) {
		ss_metric_add(r->bad_replies, 1);
		ss_warn("req.bad_reply", NULL, "error", why, NULL);
		p->fn(SS_EINTERNAL, NULL, p->arg);
	} else {
		p->fn(0, &m, p->arg);
		ss_msg_free(&m);
	}
	free(p);
}

static void
req_readable(evutil_socket_t fd, short what, void *arg)
{
	ss_req *r = arg;
	nng_msg *nm;
	int n, rv;

	(void)fd;
	(void)what;
	r->busy++;
	for (n = 0; n < REQ_BATCH && !r->closed; n++) {
		if ((rv = nng_recvmsg(r->sock, &nm, NNG_FLAG_NONBLOCK)) != 0) {
			if (rv != NNG_EAGAIN && rv != NNG_ECLOSED)
				ss_warn("req.recv_failed", NULL, "error",
				        nng_strerror(rv), NULL);
			break;
		}
		req_deliver(r, nm);
		nng_msg_free(nm);
	}
	r->busy--;
	if (r->closed && r->busy == 0)
		req_free(r);
}

const char *
ss_req_url(const ss_req *r)
{
	return r->probe + 5; /* "peer <url>" */
}

int
ss_req_dial(ss_req **out, ss_daemon *d, const char *url, int timeout_ms)
{
	ss_req *r;
	nng_dialer dialer;
	size_t recv_max;
	int fd, rv;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SS_ENOMEM;
	r->d = d;
	r->timeout =
	    (timeout_ms > 0 ? timeout_ms : REQ_TIMEOUT_DEFAULT) / 1000.0;
	TAILQ_INIT(&r->order);
	msgpack_sbuffer_init(&r->heldbuf);
	ss_pack_init(&r->batch);
	r->nbuckets = REQ_NBUCKETS_MIN;
	if ((r->buckets = calloc(r->nbuckets, sizeof(*r->buckets))) == NULL) {
		rv = SS_ENOMEM;
		goto fail;
	}
	/* A fresh start for the ids, so a restarted client does not reuse
	 * the ids of its previous life that a peer may still answer. */
	pthread_once(&req_id_once, req_id_init);
	randombytes_buf(&r->next_id, sizeof(r->next_id));
	r->timeouts = ss_counter("studyshare_rpc_timeouts_total",
	                         "Requests to peers that timed out.", NULL);
	r->late = ss_counter("studyshare_rpc_late_replies_total",
	                     "Replies dropped because their request was no "
	                     "longer pending.",
	                     NULL);
	r->bad_replies =
	    ss_counter("studyshare_rpc_bad_replies_total",
	               "Replies from peers that did not decode.", NULL);
	r->batches = ss_counter("studyshare_rpc_batches_total",
	                        "bus.batch requests sent (each holding "
	                        "several requests).",
	                        NULL);
	r->batched =
	    ss_counter("studyshare_rpc_batched_requests_total",
	               "Requests sent inside bus.batch requests.", NULL);
	r->refused = ss_counter("studyshare_rpc_unavailable_total",
	                        "Requests refused at once: no peer connected "
	                        "or the send queue full.",
	                        NULL);

	recv_max = REQ_RECV_MAX_DEFAULT;
	if (d->common != NULL && d->common->recv_max > 0)
		recv_max = (size_t)d->common->recv_max;
	r->send_max = recv_max;
	/* A batch's framing: its envelope and a bin header per call. */
	r->held_max = recv_max > REQ_QUEUE_BYTES + REQ_BATCH_FRAMING
	                  ? REQ_QUEUE_BYTES
	                  : recv_max / 2;
	/* Room for a batch reply (proto/batch.h) and its envelope. */
	if (recv_max < SS_REPLY_RECV_MAX)
		recv_max = SS_REPLY_RECV_MAX;
	if ((rv = nng_req0_open_raw(&r->sock)) != 0)
		goto nng_fail;
	r->sock_open = true;
	if ((rv = ss_pipes_count(r->sock, &r->npipes)) != 0 ||
	    (rv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, recv_max)) !=
	        0 ||
	    (rv = nng_socket_set_int(r->sock, NNG_OPT_SENDBUF, REQ_SENDBUF)) !=
	        0 ||
	    (rv = nng_socket_get_int(r->sock, NNG_OPT_RECVFD, &fd)) != 0)
		goto nng_fail;
	if ((rv = nng_dialer_create(&dialer, r->sock, url)) != 0 ||
	    (rv = nng_dialer_set_ms(dialer, NNG_OPT_RECONNMINT, 50)) != 0 ||
	    (rv = nng_dialer_set_ms(dialer, NNG_OPT_RECONNMAXT, 1000)) != 0 ||
	    (rv = nng_dialer_start(dialer, NNG_FLAG_NONBLOCK)) != 0)
		goto nng_fail;

	r->rev = event_new(d->base, fd, EV_READ | EV_PERSIST, req_readable, r);
	r->timer = evtimer_new(d->base, req_timer, r);
	r->flush = event_new(d->base, -1, 0, req_flush, r);
	if (r->rev == NULL || r->timer == NULL || r->flush == NULL ||
	    event_add(r->rev, NULL) != 0) {
		rv = SS_ENOMEM;
		goto fail;
	}
	snprintf(r->probe, sizeof(r->probe), "peer %s", url);
	if ((rv = ss_daemon_add_probe(d, r->probe, req_probe, r)) != 0)
		goto fail;
	*out = r;
	return 0;

nng_fail:
	ss_error("req.dial_failed", NULL, "url", url, "error", nng_strerror(rv),
	         NULL);
	switch (rv) {
	case NNG_ENOMEM:
		rv = SS_ENOMEM;
		break;
	case NNG_EADDRINVAL:
	case NNG_EINVAL:
	case NNG_ENOTSUP:
		rv = SS_EBADREQ; /* a bad address in the configuration */
		break;
	default:
		rv = SS_EUNAVAIL;
	}
fail:
	req_free(r);
	return rv;
}

void
ss_req_close(ss_req *r)
{
	req_pending *p;

	if (r == NULL || r->closed)
		return;
	r->closed = true;
	ss_daemon_remove_probes(r->d, r);
	event_del(r->rev);
	event_del(r->timer);
	event_del(r->flush);
	nng_close(r->sock);
	r->sock_open = false;
	r->busy++;
	while ((p = TAILQ_FIRST(&r->order)) != NULL) {
		req_unlink(r, p);
		req_fail(p, SS_EUNAVAIL);
	}
	req_fail_held(r, SS_EUNAVAIL);
	r->busy--;
	if (r->busy == 0)
		req_free(r);
}

/* Sends len bytes as one request; on success p is pending, due at
 * start + the timeout. */
static int
req_post(ss_req *r, const void *data, size_t len, req_pending *p, double start)
{
	req_pending *q;
	nng_msg *nm = NULL;
	int rv;

	if (r->closed || atomic_load(&r->npipes) == 0) {
		ss_metric_add(r->refused, 1);
		return SS_EUNAVAIL;
	}
	if (len > r->send_max - sizeof(uint32_t))
		return SS_ETOOLARGE;
	if (req_grow(r) != 0 || nng_msg_alloc(&nm, 0) != 0)
		return SS_ENOMEM;
	p->id = req_next_id(r);
	p->deadline = start + r->timeout;
	if (nng_msg_header_append_u32(nm, p->id) != 0 ||
	    nng_msg_append(nm, data, len) != 0) {
		nng_msg_free(nm);
		return SS_ENOMEM;
	}
	if ((rv = nng_sendmsg(r->sock, nm, NNG_FLAG_NONBLOCK)) != 0) {
		nng_msg_free(nm);
		ss_metric_add(r->refused, 1);
		return rv == NNG_ENOMEM ? SS_ENOMEM : SS_EUNAVAIL;
	}
	/* The reply is read on this loop, so it cannot beat the insert. */
	p->hnext = *req_bucket(r, p->id);
	*req_bucket(r, p->id) = p;
	/* In deadline order: a held batch may be due before requests sent
	 * alone since it was held (from the tail, where it almost always
	 * belongs). */
	for (q = TAILQ_LAST(&r->order, req_list);
	     q != NULL && q->deadline > p->deadline;
	     q = TAILQ_PREV(q, req_list, link))
		;
	if (q != NULL)
		TAILQ_INSERT_AFTER(&r->order, q, p, link);
	else
		TAILQ_INSERT_HEAD(&r->order, p, link);
	r->count++;
	if (TAILQ_FIRST(&r->order) == p && r->timer_armed) {
		evtimer_del(r->timer);
		r->timer_armed = false;
	}
	req_arm(r);
	return 0;
}

int
ss_req_send(ss_req *r, ss_pack *pk, ss_reply_fn fn, void *arg)
{
	req_pending *p;
	int rv;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SS_ENOMEM;
	p->fn = fn;
	p->arg = arg;
	if ((rv = req_post(r, pk->sb.data, pk->sb.size, p, ss_now())) != 0)
		free(p);
	return rv;
}

static void
req_held_clear(ss_req *r)
{
	r->nheld = 0;
	if (r->heldbuf.size > 0)
		sodium_memzero(r->heldbuf.data, r->heldbuf.size);
	r->heldbuf.size = 0;
}

/* Calls back every held request with err. */
static void
req_fail_held(ss_req *r, int err)
{
	req_sub subs[SS_BATCH_MAX];
	size_t i, n = r->nheld;

	/* Callbacks may hold new requests: work on a copy. */
	memcpy(subs, r->held, n * sizeof(subs[0]));
	req_held_clear(r);
	for (i = 0; i < n; i++)
		subs[i].fn(err, NULL, subs[i].arg);
}

/* Sends what was held this loop turn: alone, or as one bus.batch. */
static int
req_send_held(ss_req *r)
{
	const size_t *off = r->heldoff;
	size_t i, n = r->nheld;
	char id[SS_MAX_ID_LEN + 1];
	req_pending *p;
	int rv;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SS_ENOMEM;
	p->queued = true;
	if (n == 1) {
		p->fn = r->held[0].fn;
		p->arg = r->held[0].arg;
		if ((rv = req_post(r, r->heldbuf.data, off[1], p,
		                   r->held_since)) != 0)
			free(p);
		else
			r->nqueued++;
		return rv;
	}
	if ((p->subs = malloc(n * sizeof(*p->subs))) == NULL) {
		free(p);
		return SS_ENOMEM;
	}
	memcpy(p->subs, r->held, n * sizeof(*p->subs));
	p->nsub = n;
	ss_req_new_id(id);
	ss_pack_reset(&r->batch);
	ss_pack_request(&r->batch, SS_BATCH_TYPE, id);
	ss_batch_pack_head(&r->batch, "calls", n);
	for (i = 0; i < n; i++)
		ss_pack_bin(&r->batch, r->heldbuf.data + off[i],
		            off[i + 1] - off[i]);
	rv = req_post(r, r->batch.sb.data, r->batch.sb.size, p, r->held_since);
	sodium_memzero(r->batch.sb.data, r->batch.sb.size);
	if (rv != 0) {
		free(p->subs);
		free(p);
		return rv;
	}
	r->nqueued++;
	ss_metric_add(r->batches, 1);
	ss_metric_add(r->batched, n);
	return 0;
}

static void
req_flush(evutil_socket_t fd, short what, void *arg)
{
	ss_req *r = arg;
	int rv;

	(void)fd;
	(void)what;
	if (r->closed || r->nheld == 0)
		return;
	if (r->nqueued >= REQ_QUEUED_MAX)
		return; /* sent once one of them is answered (req_unlink) */
	if (r->held_since + r->timeout * (1 - REQ_MIN_BUDGET) < ss_now()) {
		/* Held behind a slow peer for nearly their whole timeout:
		 * sent now, they would be answered after their callers gave
		 * up, and the peer would do the work all the same. */
		ss_metric_add(r->timeouts, r->nheld);
		rv = SS_ETIMEDOUT;
	} else if ((rv = req_send_held(r)) == 0) {
		req_held_clear(r);
		return;
	} else if (rv != SS_ENOMEM) {
		rv = SS_EUNAVAIL;
	}
	r->busy++;
	req_fail_held(r, rv);
	r->busy--;
	if (r->closed && r->busy == 0)
		req_free(r);
}

int
ss_req_queue(ss_req *r, ss_pack *pk, ss_reply_fn fn, void *arg)
{
	if (r->closed || atomic_load(&r->npipes) == 0) {
		ss_metric_add(r->refused, 1);
		return SS_EUNAVAIL;
	}
	/* A full batch: this one goes alone, now. */
	if (r->nheld == SS_BATCH_MAX ||
	    r->heldbuf.size + pk->sb.size > r->held_max)
		return ss_req_send(r, pk, fn, arg);
	if (msgpack_sbuffer_write(&r->heldbuf, pk->sb.data, pk->sb.size) != 0)
		return SS_ENOMEM;
	if (r->nheld == 0)
		r->held_since = ss_now();
	r->held[r->nheld].fn = fn;
	r->held[r->nheld].arg = arg;
	r->nheld++;
	r->heldoff[r->nheld] = r->heldbuf.size;
	if (r->nheld == 1)
		event_active(r->flush, EV_WRITE, 0);
	return 0;
}

/*
 * A per-process random seed plus a counter, through the splitmix64
 * finaliser.  The finaliser is a bijection, so ids never repeat
 * within a process; the seed makes processes differ.  Any thread.
 */
void
ss_req_new_id(char *buf)
{
	uint64_t x;

	pthread_once(&req_id_once, req_id_init);
	x = req_id_seed + (uint64_t)atomic_fetch_add(&req_id_next, 1);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	snprintf(buf, SS_MAX_ID_LEN + 1, "%016" PRIx64, x);
}
