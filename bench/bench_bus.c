/*
 * bench/bench_bus.c - the bus benchmark: a floor server and a load generator.
 *
 *   bench_bus echo URL
 *   bench_bus load URL --type T --body JSON [--inflight N] [--seconds S]
 *                      [--rate R] [--warmup S] [--count N]
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
 * Each "{n}" inside a string of the body becomes the request's number,
 * 1000000000 + k for the k-th request sent (ten digits, no leading zero,
 * so it can be a DICOM UID component): every request is then a new study,
 * say.  --count N sends N requests in all, warm-up included (numbers k =
 * 0 .. N-1), and the window ends early at the last of them.
 *
 * rate counts measured requests answered ok per second of the window; errors
 * counts error replies, timeouts and refused sends; answered counts every reply
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
#define BENCH_MARKS      8     /* "{n}" in a body, at most */
#define BENCH_NUM_BASE   1000000000ULL /* first request number */
#define BENCH_NUM_LEN    10            /* its digits, for every number */

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
	ss_pack msg; /* the request, packed once, sent every time */
	size_t marks[BENCH_MARKS]; /* where each "{n}" is in msg */
	int nmarks;
	uint64_t count;     /* requests to send in all; 0 for no limit */
	uint64_t numbered;  /* requests sent so far, the next one's k */
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
	if (ld->nmarks > 0) {
		char num[BENCH_NUM_LEN + 1];
		int i;

		snprintf(num, sizeof(num), "%llu",
		         (unsigned long long)(BENCH_NUM_BASE + ld->numbered));
		for (i = 0; i < ld->nmarks; i++)
			memcpy(ld->msg.sb.data + ld->marks[i], num,
			       BENCH_NUM_LEN);
	}
	if ((rv = ss_req_send(ld->req, &ld->msg, on_reply, s)) != 0) {
		ld->free[ld->nfree++] = s;
		return rv;
	}
	ld->inflight++;
	ld->numbered++;
	return 0;
}

static bool
all_sent(const load *ld)
{
	return ld->count > 0 && ld->numbered >= ld->count;
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
		if (ld->inflight == 0 && !all_sent(ld))
			(void)send_one(ld, now);
		tick_at(ld, now + 0.01, now);
		return;
	}
	if (ld->phase == LOAD_RUNNING && all_sent(ld)) {
		/* The window ends with the last request (--count). */
		ld->t_end = fmin(ld->t_end, fmax(now, ld->t_measure));
		ld->phase = LOAD_DRAINING;
	}
	if (ld->phase == LOAD_RUNNING && now >= ld->t_end)
		ld->phase = LOAD_DRAINING;
	if (ld->phase == LOAD_DRAINING) {
		if (ld->inflight == 0)
			event_base_loopexit(ld->loop.d.base, NULL);
		return;
	}
	while (ld->nfree > 0 && !all_sent(ld)) {
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
	double window = ld->t_end - ld->t_measure; /* short with --count */

	if (ld->nlat > 0) /* lat is NULL until the first latency */
		qsort(ld->lat, ld->nlat, sizeof(*ld->lat), cmp_double);
	printf("{\"rate\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
	       "\"errors\": %llu, \"requests\": %zu, \"answered\": %llu}\n",
	       window > 0 ? (double)ld->nlat / window : 0, pct_ms(ld, 0.50),
	       pct_ms(ld, 0.99), (unsigned long long)ld->errors, ld->nlat,
	       (unsigned long long)ld->answered);
	fflush(stdout);
}

/*
 * The body's text with each "{n}" replaced by ten U+0001 characters,
 * escaped: bytes no JSON text of ours decodes to, easy to find once packed.
 * Returns the count of "{n}", or -1 without memory.
 */
static int
mark_body(const char *body, char **out)
{
	static const char mark[] = "\\u0001\\u0001\\u0001\\u0001\\u0001"
	                           "\\u0001\\u0001\\u0001\\u0001\\u0001";
	const char *p;
	char *o;
	int n = 0;

	for (p = body; (p = strstr(p, "{n}")) != NULL; p += 3)
		n++;
	if ((*out = o = malloc(strlen(body) + (size_t)n * sizeof(mark) + 1)) ==
	    NULL)
		return -1;
	for (p = body; *p != '\0';) {
		if (strncmp(p, "{n}", 3) == 0) {
			memcpy(o, mark, sizeof(mark) - 1);
			o += sizeof(mark) - 1;
			p += 3;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return n;
}

/*
 * Packs the request envelope once: type, a fixed id, the JSON body, and
 * notes where each "{n}" landed so send_one() can number the requests.
 */
static int
pack_request(load *ld, const char *type, const char *body)
{
	static const char run[BENCH_NUM_LEN] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	char id[SS_MAX_ID_LEN + 1], *text = NULL;
	json_error_t jerr;
	json_t *j = NULL;
	const char *d, *at;
	size_t size;
	int n, found, rv = SS_EBADREQ;

	if ((n = mark_body(body, &text)) < 0)
		return SS_ENOMEM;
	if (n > BENCH_MARKS) {
		fprintf(stderr, "bench_bus: --body: more than %d {n}\n",
		        BENCH_MARKS);
		goto fail;
	}
	if ((j = json_loads(text, 0, &jerr)) == NULL || !json_is_object(j)) {
		fprintf(stderr, "bench_bus: --body: not a JSON object%s\n",
		        n > 0 ? " ({n} belongs inside a string)" : "");
		goto fail;
	}
	ss_req_new_id(id);
	ss_pack_request(&ld->msg, type, id);
	if ((rv = ss_json_to_mp(&ld->msg, j)) != 0)
		goto fail;
	d = ld->msg.sb.data;
	size = ld->msg.sb.size;
	for (found = 0; (at = memmem(d, size - (size_t)(d - ld->msg.sb.data),
	                             run, sizeof(run))) != NULL;
	     found++, d = at + sizeof(run))
		if (found < BENCH_MARKS)
			ld->marks[found] = (size_t)(at - ld->msg.sb.data);
	if (found != n) {
		fprintf(stderr, "bench_bus: --body: cannot place {n}\n");
		rv = SS_EBADREQ;
		goto fail;
	}
	ld->nmarks = n;
fail:
	json_decref(j);
	free(text);
	return rv;
}

static int
run_load(const char *url, const char *type, const char *body, int inflight,
         double seconds, double rate, double warmup, uint64_t count)
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
	ld.count = count;
	if (pack_request(&ld, type, body) != 0) {
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
	        " [--seconds S] [--rate R] [--warmup S] [--count N]\n");
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
	double inflight = 64, seconds = 5, rate = 0, warmup = 0.5, count = 0;
	double *v;
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
		else if (strcmp(argv[i], "--count") == 0)
			v = &count;
		else
			return usage();
		if (v != NULL && (*v = num(argv[i + 1])) < 0) {
			fprintf(stderr,
			        "bench_bus: %s: not a positive number\n",
			        argv[i]);
			return 2;
		}
	}
	if (i != argc || type == NULL || body == NULL || inflight > 100000 ||
	    count > 1e9)
		return usage();
	return run_load(argv[2], type, body, (int)inflight, seconds, rate,
	                warmup, (uint64_t)count);
}
