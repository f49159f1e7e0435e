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

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/req.h"

#define REQ_RECV_MAX_DEFAULT (1024 * 1024)
#define REQ_TIMEOUT_DEFAULT  5000
#define REQ_SENDBUF          1024 /* requests NNG queues for the pipe */
#define REQ_BATCH            64   /* replies taken per wake-up */
#define REQ_NBUCKETS_MIN     64
#define REQ_ID_BIT           0x80000000u

typedef struct req_pending {
	uint32_t id;
	ss_reply_fn fn;
	void *arg;
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
	double timeout; /* seconds */
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
	char probe[80]; /* "peer <url>", the readiness probe's name */
};

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
	if (r->sock_open)
		nng_close(r->sock);
	free(r->buckets);
	free(r);
}

/* Runs on an NNG thread. */
static void
req_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	ss_req *r = arg;

	(void)pipe;
	/* REM_POST comes for every pipe that had ADD_PRE, started or not. */
	if (ev == NNG_PIPE_EV_ADD_PRE)
		atomic_fetch_add(&r->npipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&r->npipes, 1);
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
		ss_metric_add(r->timeouts, 1);
		p->fn(SS_ETIMEDOUT, NULL, p->arg);
		free(p);
	}
	r->busy--;
	if (r->closed) {
		if (r->busy == 0)
			req_free(r);
		return;
	}
	req_arm(r);
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
	atomic_init(&r->npipes, 0);
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
	r->refused = ss_counter("studyshare_rpc_unavailable_total",
	                        "Requests refused at once: no peer connected "
	                        "or the send queue full.",
	                        NULL);

	recv_max = REQ_RECV_MAX_DEFAULT;
	if (d->common != NULL && d->common->recv_max > 0)
		recv_max = (size_t)d->common->recv_max;
	if ((rv = nng_req0_open_raw(&r->sock)) != 0)
		goto nng_fail;
	r->sock_open = true;
	if ((rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_PRE, req_pipe_event,
	                          r)) != 0 ||
	    (rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, req_pipe_event,
	                          r)) != 0 ||
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
	if (r->rev == NULL || r->timer == NULL ||
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
	nng_close(r->sock);
	r->sock_open = false;
	r->busy++;
	while ((p = TAILQ_FIRST(&r->order)) != NULL) {
		req_unlink(r, p);
		p->fn(SS_EUNAVAIL, NULL, p->arg);
		free(p);
	}
	r->busy--;
	if (r->busy == 0)
		req_free(r);
}

int
ss_req_send(ss_req *r, ss_pack *pk, ss_reply_fn fn, void *arg)
{
	req_pending *p = NULL;
	nng_msg *nm = NULL;
	int rv;

	if (r->closed || atomic_load(&r->npipes) == 0) {
		ss_metric_add(r->refused, 1);
		return SS_EUNAVAIL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || req_grow(r) != 0 ||
	    nng_msg_alloc(&nm, 0) != 0) {
		rv = SS_ENOMEM;
		goto fail;
	}
	p->id = req_next_id(r);
	p->fn = fn;
	p->arg = arg;
	p->deadline = ss_now() + r->timeout;
	if (nng_msg_header_append_u32(nm, p->id) != 0 ||
	    nng_msg_append(nm, pk->sb.data, pk->sb.size) != 0) {
		rv = SS_ENOMEM;
		goto fail;
	}
	if ((rv = nng_sendmsg(r->sock, nm, NNG_FLAG_NONBLOCK)) != 0) {
		ss_metric_add(r->refused, 1);
		rv = rv == NNG_ENOMEM ? SS_ENOMEM : SS_EUNAVAIL;
		goto fail;
	}
	/* The reply is read on this loop, so it cannot beat the insert. */
	p->hnext = *req_bucket(r, p->id);
	*req_bucket(r, p->id) = p;
	TAILQ_INSERT_TAIL(&r->order, p, link);
	r->count++;
	req_arm(r);
	return 0;

fail:
	if (nm != NULL)
		nng_msg_free(nm);
	free(p);
	return rv;
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
