/*
 * bench/bench_bus.c - the bus benchmark: a floor server and a load generator.
 *
 *   bench_bus echo URL
 *   bench_bus load URL --type T --body JSON [--inflight N] [--seconds S]
 *                      [--rate R] [--warmup S]
 *
 * echo: a raw REP socket driven by NNG_OPT_RECVFD on the loop that answers
 * every request with one fixed reply envelope and decodes nothing.  It is
 * the cheapest server a loop of ours can be: the floor that a daemon's
 * figures are divided by.  With at most 64 requests in flight per client
 * it stays within xrep0's per-pipe reply queue, so it drops nothing.
 *
 * load: a runtime/req.h client on the loop keeping at most N requests in
 * flight.  Closed loop (no --rate): every reply sends the next request, and
 * a request is timed from its send.  Open loop (--rate R): request k is due
 * at start + k/R and is timed from that moment, so time spent waiting for a
 * free slot counts (no coordinated omission).  The first --warmup seconds
 * after the peer first answers are not measured; then requests sent during
 * --seconds are, and the run ends when the last of them is answered or has
 * timed out.  Prints one JSON line:
 *
 *   {"rate":..., "p50_ms":..., "p99_ms":..., "errors":n, "requests":n,
 *    "answered":n}
 *
 * rate counts measured requests answered ok per second; errors counts
 * error replies, timeouts and refused sends; answered counts every reply
 * of the run, warm-up and drain included (to divide the server's CPU
 * time by).  Exit status 0; 1 when the peer never answered or on a
 * runtime failure; 2 on bad usage.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/mpjson.h"
#include "runtime/daemon.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/req.h"

#define BENCH_BATCH      64    /* messages taken per wake-up, as rep.c */
#define BENCH_SENDBUF    1024  /* replies NNG may queue, as rep.c */
#define BENCH_TIMEOUT_MS 2000  /* a request not answered by then is an error */
#define BENCH_CONNECT_S  10.0  /* how long the peer has to answer at all */
#define BENCH_RETRY_S    0.001 /* pause after a refused send */

/* The loop and the signals that end it; both modes share it. */
typedef struct bench_loop {
	ss_daemon d; /* only base and common: what runtime/req.c uses */
	ss_common_settings common;
	struct event *sigint, *sigterm;
} bench_loop;

/* ------------------------------------------------------------------ loop */

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	bench_loop *l = arg;

	(void)sig;
	(void)what;
	event_base_loopexit(l->d.base, NULL);
}

static void
loop_fini(bench_loop *l)
{
	if (l->sigint != NULL)
		event_free(l->sigint);
	if (l->sigterm != NULL)
		event_free(l->sigterm);
	if (l->d.base != NULL)
		event_base_free(l->d.base);
}

/*
 * A base of our own rather than ss_daemon_init(): open-loop pacing needs
 * microsecond timers (timerfd), which the daemon's default base lacks.
 */
static int
loop_init(bench_loop *l)
{
	struct event_config *cfg;

	memset(l, 0, sizeof(*l));
	ss_log_init("bench", SS_LOG_WARN);
	l->d.service = "bench";
	l->d.common = &l->common; /* zeroes: runtime defaults, no admin */
	signal(SIGPIPE, SIG_IGN);
	if ((cfg = event_config_new()) == NULL)
		return SS_ENOMEM;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	l->d.base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (l->d.base == NULL)
		goto fail;
	l->sigint = evsignal_new(l->d.base, SIGINT, on_signal, l);
	l->sigterm = evsignal_new(l->d.base, SIGTERM, on_signal, l);
	if (l->sigint == NULL || l->sigterm == NULL ||
	    event_add(l->sigint, NULL) != 0 || event_add(l->sigterm, NULL) != 0)
		goto fail;
	return 0;
fail:
	loop_fini(l);
	return SS_ENOMEM;
}

/* ------------------------------------------------------------------ echo */

typedef struct echo {
	bench_loop loop;
	nng_socket sock;
	bool sock_open;
	struct event *rev;
	ss_pack reply; /* the one reply every request gets */
} echo;

static void
echo_readable(evutil_socket_t fd, short what, void *arg)
{
	echo *e = arg;
	nng_msg *nm;
	int n;

	(void)fd;
	(void)what;
	for (n = 0; n < BENCH_BATCH; n++) {
		if (nng_recvmsg(e->sock, &nm, NNG_FLAG_NONBLOCK) != 0)
			break;
		/* Clearing keeps the header, the request's backtrace, which
		 * is what routes the reply back to its requester. */
		nng_msg_clear(nm);
		if (nng_msg_append(nm, e->reply.sb.data, e->reply.sb.size) !=
		        0 ||
		    nng_sendmsg(e->sock, nm, NNG_FLAG_NONBLOCK) != 0)
			nng_msg_free(nm); /* the client counts a timeout */
	}
}

static int
run_echo(const char *url)
{
	echo e = {0};
	int fd, rv = 1;

	if (loop_init(&e.loop) != 0)
		return 1;
	ss_pack_init(&e.reply);
	ss_pack_reply_ok(&e.reply, "bench");
	msgpack_pack_map(&e.reply.pk, 1);
	ss_pack_kv_bool(&e.reply, "allowed", true);

	if (nng_rep0_open_raw(&e.sock) != 0)
		goto fail;
	e.sock_open = true;
	if (nng_socket_set_int(e.sock, NNG_OPT_SENDBUF, BENCH_SENDBUF) != 0 ||
	    nng_socket_get_int(e.sock, NNG_OPT_RECVFD, &fd) != 0 ||
	    nng_listen(e.sock, url, NULL, 0) != 0) {
		fprintf(stderr, "bench_bus: cannot listen on %s\n", url);
		goto fail;
	}
	e.rev = event_new(e.loop.d.base, fd, EV_READ | EV_PERSIST,
	                  echo_readable, &e);
	if (e.rev == NULL || event_add(e.rev, NULL) != 0)
		goto fail;
	rv = event_base_dispatch(e.loop.d.base) == 0 ? 0 : 1;
fail:
	if (e.rev != NULL)
		event_free(e.rev);
	if (e.sock_open)
		nng_close(e.sock);
	ss_pack_free(&e.reply);
	loop_fini(&e.loop);
	return rv;
}

/* ------------------------------------------------------------------ load */

enum load_phase {
	LOAD_CONNECTING, /* one request at a time until the peer answers */
	LOAD_RUNNING,    /* warm-up, then the measured window */
	LOAD_DRAINING,   /* nothing new is sent; waiting for the last reply */
};

struct load;

typedef struct load_slot {
	struct load *ld;
	double t0; /* when the request was sent (closed) or due (open) */
} load_slot;

typedef struct load {
	bench_loop loop;
	ss_req *req;
	ss_pack msg;        /* the request, packed once, sent every time */
	struct event *tick; /* pacing, retries, deadlines */
	double tick_for;    /* when tick is armed for */
	enum load_phase phase;
	double rate; /* req/s; 0 for a closed loop */
	double warmup, seconds;
	double t_deadline;       /* connecting: give up then */
	double t_start;          /* open-loop pacing origin */
	double t_measure, t_end; /* the measured window of send times */
	uint64_t sent;           /* requests sent since t_start */
	load_slot *slots;
	load_slot **free;
	int nfree, inflight;
	double *lat; /* seconds, one per measured ok reply */
	size_t nlat, caplat;
	uint64_t errors;
	uint64_t answered; /* every reply, warm-up and drain included */
	int rv;
} load;

static bool
measured(const load *ld, double t0)
{
	return ld->phase != LOAD_CONNECTING && t0 >= ld->t_measure &&
	       t0 < ld->t_end;
}

static int
lat_push(load *ld, double s)
{
	double *n;

	if (ld->nlat == ld->caplat) {
		ld->caplat = ld->caplat ? ld->caplat * 2 : 65536;
		if ((n = realloc(ld->lat, ld->caplat * sizeof(*n))) == NULL)
			return SS_ENOMEM;
		ld->lat = n;
	}
	ld->lat[ld->nlat++] = s;
	return 0;
}

static void
tick_at(load *ld, double when, double now)
{
	struct timeval tv;
	double left = when > now ? when - now : 0;

	/* A closed loop asks for the same end time on every reply. */
	if (when == ld->tick_for && evtimer_pending(ld->tick, NULL))
		return;
	ld->tick_for = when;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(ld->tick, &tv);
}

static void on_reply(int err, const ss_msg *reply, void *arg);

/* Sends the request from a free slot, timed from t0. */
static int
send_one(load *ld, double t0)
{
	load_slot *s = ld->free[--ld->nfree];
	int rv;

	s->t0 = t0;
	if ((rv = ss_req_send(ld->req, &ld->msg, on_reply, s)) != 0) {
		ld->free[ld->nfree++] = s;
		return rv;
	}
	ld->inflight++;
	return 0;
}

/* Sends whatever is due and sets the timer for what comes next. */
static void
pump(load *ld)
{
	double now = ss_now(), due;

	if (ld->phase == LOAD_CONNECTING) {
		if (now >= ld->t_deadline) {
			fprintf(stderr, "bench_bus: the peer never answered\n");
			ld->rv = 1;
			event_base_loopexit(ld->loop.d.base, NULL);
			return;
		}
		if (ld->inflight == 0)
			(void)send_one(ld, now);
		tick_at(ld, now + 0.01, now);
		return;
	}
	if (ld->phase == LOAD_RUNNING && now >= ld->t_end)
		ld->phase = LOAD_DRAINING;
	if (ld->phase == LOAD_DRAINING) {
		if (ld->inflight == 0)
			event_base_loopexit(ld->loop.d.base, NULL);
		return;
	}
	while (ld->nfree > 0) {
		due = ld->rate > 0 ? ld->t_start + (double)ld->sent / ld->rate
		                   : now;
		if (due > now)
			break;
		ld->sent++;
		if (send_one(ld, due) != 0) {
			/* Refused at once (no pipe, queue full): an error,
			 * and a short pause so we do not spin. */
			if (measured(ld, due))
				ld->errors++;
			tick_at(ld, now + BENCH_RETRY_S, now);
			return;
		}
	}
	/* With every slot busy, or in a closed loop, replies drive the
	 * sending and the timer only ends the window. */
	due = ld->t_end;
	if (ld->rate > 0 && ld->nfree > 0)
		due = fmin(ld->t_start + (double)ld->sent / ld->rate, due);
	tick_at(ld, due, now);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static void
start_running(load *ld, double now)
{
	ld->phase = LOAD_RUNNING;
	ld->t_start = now;
	ld->sent = 0;
	ld->t_measure = now + ld->warmup;
	ld->t_end = ld->t_measure + ld->seconds;
}

static void
on_reply(int err, const ss_msg *reply, void *arg)
{
	load_slot *s = arg;
	load *ld = s->ld;
	double now = ss_now();

	ld->free[ld->nfree++] = s;
	ld->inflight--;
	if (err == 0)
		ld->answered++;
	if (ld->phase == LOAD_CONNECTING) {
		/* Any answer, even an error reply, means the path is up. */
		if (err == 0)
			start_running(ld, now);
	} else if (measured(ld, s->t0)) {
		if (err != 0 || !reply->ok)
			ld->errors++;
		else if (lat_push(ld, now - s->t0) != 0)
			ld->rv = 1;
	}
	/* Closing the client fails what is still pending: no new sends. */
	if (ld->req != NULL)
		pump(ld);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies, in milliseconds. */
static double
pct_ms(const load *ld, double q)
{
	size_t k;

	if (ld->nlat == 0)
		return 0;
	k = (size_t)ceil(q * (double)ld->nlat);
	return ld->lat[k > 0 ? k - 1 : 0] * 1e3;
}

static void
load_report(load *ld)
{
	qsort(ld->lat, ld->nlat, sizeof(*ld->lat), cmp_double);
	printf("{\"rate\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
	       "\"errors\": %llu, \"requests\": %zu, \"answered\": %llu}\n",
	       (double)ld->nlat / ld->seconds, pct_ms(ld, 0.50),
	       pct_ms(ld, 0.99), (unsigned long long)ld->errors, ld->nlat,
	       (unsigned long long)ld->answered);
	fflush(stdout);
}

/* Packs the request envelope once: type, a fixed id, the JSON body. */
static int
pack_request(ss_pack *p, const char *type, const char *body)
{
	char id[SS_MAX_ID_LEN + 1];
	json_error_t jerr;
	json_t *j;
	int rv;

	if ((j = json_loads(body, 0, &jerr)) == NULL || !json_is_object(j)) {
		fprintf(stderr, "bench_bus: --body: not a JSON object\n");
		json_decref(j);
		return SS_EBADREQ;
	}
	ss_req_new_id(id);
	ss_pack_request(p, type, id);
	rv = ss_json_to_mp(p, j);
	json_decref(j);
	return rv;
}

static int
run_load(const char *url, const char *type, const char *body, int inflight,
         double seconds, double rate, double warmup)
{
	load ld = {0};
	int i, rv = 1;

	ss_pack_init(&ld.msg);
	if (loop_init(&ld.loop) != 0)
		goto fail_pack;
	ld.rate = rate;
	ld.seconds = seconds;
	ld.warmup = warmup;
	ld.t_measure = ld.t_end = INFINITY;
	if (pack_request(&ld.msg, type, body) != 0) {
		rv = 2;
		goto fail;
	}
	ld.slots = calloc((size_t)inflight, sizeof(*ld.slots));
	ld.free = calloc((size_t)inflight, sizeof(*ld.free));
	ld.tick = evtimer_new(ld.loop.d.base, on_tick, &ld);
	if (ld.slots == NULL || ld.free == NULL || ld.tick == NULL)
		goto fail;
	for (i = 0; i < inflight; i++) {
		ld.slots[i].ld = &ld;
		ld.free[ld.nfree++] = &ld.slots[i];
	}
	if (ss_req_dial(&ld.req, &ld.loop.d, url, BENCH_TIMEOUT_MS) != 0) {
		fprintf(stderr, "bench_bus: cannot dial %s\n", url);
		goto fail;
	}
	ld.t_deadline = ss_now() + BENCH_CONNECT_S;
	pump(&ld);
	if (event_base_dispatch(ld.loop.d.base) != 0)
		ld.rv = 1;
	rv = ld.rv;
	if (rv == 0)
		load_report(&ld);
fail:
	if (ld.req != NULL) {
		ss_req *r = ld.req;

		ld.req = NULL;
		ss_req_close(r);
	}
	if (ld.tick != NULL)
		event_free(ld.tick);
	free(ld.lat);
	free(ld.free);
	free(ld.slots);
	loop_fini(&ld.loop);
fail_pack:
	ss_pack_free(&ld.msg);
	return rv;
}

/* ------------------------------------------------------------------ main */

static int
usage(void)
{
	fprintf(stderr,
	        "usage: bench_bus echo URL\n"
	        "       bench_bus load URL --type T --body JSON [--inflight N]"
	        " [--seconds S] [--rate R] [--warmup S]\n");
	return 2;
}

/* A positive number, or -1. */
static double
num(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || isinf(v))
		return -1;
	return v;
}

int
main(int argc, char **argv)
{
	const char *type = NULL, *body = NULL;
	double inflight = 64, seconds = 5, rate = 0, warmup = 0.5, *v;
	int i;

	if (argc == 3 && strcmp(argv[1], "echo") == 0)
		return run_echo(argv[2]);
	if (argc < 3 || strcmp(argv[1], "load") != 0)
		return usage();
	for (i = 3; i + 1 < argc; i += 2) {
		v = NULL;
		if (strcmp(argv[i], "--type") == 0)
			type = argv[i + 1];
		else if (strcmp(argv[i], "--body") == 0)
			body = argv[i + 1];
		else if (strcmp(argv[i], "--inflight") == 0)
			v = &inflight;
		else if (strcmp(argv[i], "--seconds") == 0)
			v = &seconds;
		else if (strcmp(argv[i], "--rate") == 0)
			v = &rate;
		else if (strcmp(argv[i], "--warmup") == 0)
			v = &warmup;
		else
			return usage();
		if (v != NULL && (*v = num(argv[i + 1])) < 0) {
			fprintf(stderr,
			        "bench_bus: %s: not a positive number\n",
			        argv[i]);
			return 2;
		}
	}
	if (i != argc || type == NULL || body == NULL || inflight > 100000)
		return usage();
	return run_load(argv[2], type, body, (int)inflight, seconds, rate,
	                warmup);
}
