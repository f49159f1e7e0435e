/*
 * runtime/redis.c - asynchronous Redis on the daemon's loop.
 *
 * Contract (see redis.h): one hiredis 0.14 async connection on d->base,
 * every command answered exactly once on the loop, SS_EUNAVAIL at once
 * while the connection is not ready, reconnect with backoff 100 ms .. 5 s.
 *
 * The connection is a state machine:
 *
 *   DISCONNECTED --retry timer--> CONNECTING --connect cb--> AUTH (password)
 *        ^                                       |              | +OK
 *        |                                       v              v
 *        +----- any failure, timeout, drop ----- LOADING (SCRIPT LOAD..., PING)
 *                                                               | +PONG
 *                                                               v
 *                                                             READY
 *
 * Every command sent on the context (handshake ones too) is an entry in a
 * FIFO, in send order; Redis answers in order, so one timer armed for the
 * head's deadline catches every late answer.  A late answer, a failed
 * handshake or ss_redis_close() frees the context with redisAsyncFree(),
 * which makes hiredis call every pending callback with a NULL reply: that
 * is where each caller gets SS_EUNAVAIL, exactly once.
 *
 * hiredis 0.14 re-entrancy rules followed here: the context is never freed
 * from inside one of its own callbacks (connect, disconnect, reply); such
 * a drop is deferred to a 0-timeout event.  redisAsyncDisconnect() is not
 * used for timeouts: in 0.14 it waits for every pending reply, which is
 * exactly what a stuck server never sends.
 *
 * hiredis resolves the host name with a blocking getaddrinfo() on each
 * connect: give an address, or a name the resolver answers at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "proto/errors.h"
#include "runtime/addr.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/redis.h"
#include "runtime/resp.h"

#define SS_REDIS_BACKOFF_MIN_MS 100
#define SS_REDIS_BACKOFF_MAX_MS 5000

enum ss_redis_state {
	SS_R_DISCONNECTED, /* no context; the retry timer is armed */
	SS_R_CONNECTING,   /* TCP connect under way */
	SS_R_AUTH,         /* AUTH sent */
	SS_R_LOADING,      /* SCRIPT LOADs and the final PING sent */
	SS_R_READY,
	SS_R_CLOSED, /* ss_redis_close() called; freed on the next turn */
};

enum ss_ent_kind {
	SS_ENT_CMD,  /* a caller's command */
	SS_ENT_EVAL, /* a caller's script: may be resent once as EVAL */
	SS_ENT_AUTH, /* handshake */
	SS_ENT_LOAD,
	SS_ENT_PING,
};

struct ss_ent {
	TAILQ_ENTRY(ss_ent) link;
	ss_redis *r;
	enum ss_ent_kind kind;
	ss_redis_fn fn;
	void *arg;
	int64_t deadline;  /* monotonic ms */
	ss_script *script; /* EVAL and LOAD */
	bool retried;      /* EVAL: NOSCRIPT already resent as EVAL */
	/* EVAL: a private copy of the whole command, [0] and [1] rewritten
	 * between EVALSHA sha and EVAL src. */
	int argc;
	const char **argv;
	size_t *lens;
	char nkeys[16];
};

TAILQ_HEAD(ss_ent_list, ss_ent);

struct ss_redis {
	ss_daemon *d;
	char *name;
	char *addr;
	char *host;
	int port;
	char *user;     /* NULL: AUTH password (the default user) */
	char *password; /* NULL: no AUTH */
	int timeout_ms;
	ss_script **scripts;
	size_t nscripts;

	enum ss_redis_state state;
	redisAsyncContext *ac;
	redisAsyncContext *drop_ac; /* context a deferred drop is meant for */
	struct ss_ent_list pending;
	struct event *tmo;   /* connect deadline, then the head's deadline */
	struct event *retry; /* backoff before the next connect */
	struct event *defer; /* drops and closes asked for inside callbacks */
	int64_t conn_deadline;
	int64_t refused_logged_ms; /* last redis.refused line, at most 1/s */
	int backoff_ms;
	int in_cb; /* depth of hiredis callbacks we are inside */
	bool up;   /* READY was reached since the last outage */
	bool outage_logged;
	char why[160];    /* why not ready, for the probe and the logs */
	char logged[160]; /* the reason last logged in this outage */

	ss_metric *m_up, *m_reconnects, *m_errors;
	ss_resp_buf fmt; /* the command being sent, as RESP */
};

static void ss_redis_connect(ss_redis *r);
static void ss_redis_on_reply(redisAsyncContext *ac, void *reply, void *priv);

static int64_t
ss_redis_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
ss_redis_arm(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

static void
ss_redis_set_why(ss_redis *r, const char *why)
{
	snprintf(r->why, sizeof(r->why), "%s", why);
}

/* --redis-addr: "host:port" or "[v6]:port" (runtime/addr.h). */
static int
ss_redis_parse_addr(ss_redis *r, const char *addr)
{
	char host[256];
	uint16_t port;

	if (ss_addr_split(addr, host, sizeof host, &port) != 0)
		return SS_EBADREQ;
	if ((r->host = strdup(host)) == NULL)
		return SS_ENOMEM;
	r->port = port;
	return 0;
}

/* ---- the FIFO of entries ------------------------------------------------ */

static void
ss_redis_ent_free(struct ss_ent *e)
{
	free(e);
}

/* Appends e, already handed to hiredis, and arms the timer if it leads. */
static void
ss_redis_push(ss_redis *r, struct ss_ent *e)
{
	bool was_empty = TAILQ_EMPTY(&r->pending);

	e->deadline = ss_redis_now_ms() + r->timeout_ms;
	TAILQ_INSERT_TAIL(&r->pending, e, link);
	/* Deadlines only grow along the FIFO, so an armed timer is never late;
	 * when it fires early the handler re-arms it for the new head. */
	if (was_empty && !evtimer_pending(r->tmo, NULL))
		ss_redis_arm(r->tmo, r->timeout_ms);
}

/* Calls the caller back once and forgets the entry. */
static void
ss_redis_finish(struct ss_ent *e, int err, redisReply *reply)
{
	if (e->fn != NULL)
		e->fn(err, reply, e->arg);
	ss_redis_ent_free(e);
}

/* Sends an entry with an argv command on the current context. */
static int
ss_redis_send_argv(ss_redis *r, struct ss_ent *e, int argc, const char **argv,
                   const size_t *lens)
{
	int rv;

	if (r->ac == NULL)
		return SS_EUNAVAIL;
	if (ss_resp_format(&r->fmt, argc, argv, lens) != 0)
		return SS_ENOMEM;
	rv = redisAsyncFormattedCommand(r->ac, ss_redis_on_reply, e,
	                                r->fmt.data, r->fmt.len);
	/* Commands carry passwords (AUTH) and sealed values: not kept. */
	explicit_bzero(r->fmt.data, r->fmt.len);
	if (rv != REDIS_OK)
		return SS_EUNAVAIL;
	ss_redis_push(r, e);
	return 0;
}

/* ---- going down and coming back ----------------------------------------- */

static void
ss_redis_schedule_retry(ss_redis *r)
{
	ss_redis_arm(r->retry, r->backoff_ms);
	r->backoff_ms *= 2;
	if (r->backoff_ms > SS_REDIS_BACKOFF_MAX_MS)
		r->backoff_ms = SS_REDIS_BACKOFF_MAX_MS;
}

/* The context is gone (r->ac already NULL): log once per outage, retry. */
static void
ss_redis_went_down(ss_redis *r, const char *why)
{
	if (r->state == SS_R_CLOSED)
		return;
	r->state = SS_R_DISCONNECTED;
	r->drop_ac = NULL;
	evtimer_del(r->tmo);
	ss_redis_set_why(r, why);
	ss_metric_add(r->m_errors, 1);
	if (r->up) {
		r->up = false;
		ss_metric_set(r->m_up, 0);
	}
	/* Once per outage, and again only if the cause changes (refused,
	 * then a wrong password): enough to say why without flooding. */
	if (!r->outage_logged || strcmp(r->logged, r->why) != 0) {
		ss_warn("redis.disconnected", NULL, "conn", r->name, "addr",
		        r->addr, "reason", r->why, NULL);
		snprintf(r->logged, sizeof(r->logged), "%s", r->why);
		r->outage_logged = true;
	}
	ss_redis_schedule_retry(r);
}

/*
 * Frees the current context now.  Never call it from a hiredis callback.
 * hiredis answers every pending entry with NULL and, if the context was
 * connected, calls ss_redis_on_disconnect(), which does the rest.
 */
static void
ss_redis_kill(ss_redis *r, const char *why)
{
	redisAsyncContext *ac = r->ac;

	if (ac == NULL)
		return;
	ss_redis_set_why(r, why);
	if (r->state != SS_R_CLOSED)
		r->state = SS_R_DISCONNECTED;
	redisAsyncFree(ac);
	if (r->ac == ac) {
		/* Not connected yet: hiredis calls no disconnect callback. */
		r->ac = NULL;
		ss_redis_went_down(r, why);
	}
}

/* Asks for ss_redis_kill() on the next loop turn (we are in a callback). */
static void
ss_redis_drop(ss_redis *r, const char *why)
{
	if (r->state != SS_R_CLOSED)
		r->state = SS_R_DISCONNECTED;
	ss_redis_set_why(r, why);
	r->drop_ac = r->ac;
	ss_redis_arm(r->defer, 0);
}

static void
ss_redis_ready_now(ss_redis *r)
{
	r->state = SS_R_READY;
	r->up = true;
	r->outage_logged = false;
	r->logged[0] = '\0';
	r->backoff_ms = SS_REDIS_BACKOFF_MIN_MS;
	ss_redis_set_why(r, "ready");
	ss_metric_set(r->m_up, 1);
	ss_info("redis.connected", NULL, "conn", r->name, "addr", r->addr,
	        NULL);
}

/* ---- handshake ---------------------------------------------------------- */

static struct ss_ent *
ss_redis_ent_new(ss_redis *r, enum ss_ent_kind kind)
{
	struct ss_ent *e = calloc(1, sizeof(*e));

	if (e != NULL) {
		e->r = r;
		e->kind = kind;
	}
	return e;
}

static int
ss_redis_send_internal(ss_redis *r, enum ss_ent_kind kind, ss_script *s,
                       int argc, const char **argv, const size_t *lens)
{
	struct ss_ent *e = ss_redis_ent_new(r, kind);
	int rv;

	if (e == NULL)
		return SS_ENOMEM;
	e->script = s;
	rv = ss_redis_send_argv(r, e, argc, argv, lens);
	if (rv != 0)
		ss_redis_ent_free(e);
	return rv;
}

/* LOADING: every SCRIPT LOAD, then a PING whose answer means ready. */
static void
ss_redis_st_loading(ss_redis *r)
{
	static const char *ping[] = {"PING"};
	const char *argv[3];
	size_t lens[3];
	size_t i;

	r->state = SS_R_LOADING;
	ss_redis_set_why(r, "loading scripts");
	for (i = 0; i < r->nscripts; i++) {
		argv[0] = "SCRIPT";
		lens[0] = 6;
		argv[1] = "LOAD";
		lens[1] = 4;
		argv[2] = r->scripts[i]->src;
		lens[2] = strlen(r->scripts[i]->src);
		if (ss_redis_send_internal(r, SS_ENT_LOAD, r->scripts[i], 3,
		                           argv, lens) != 0)
			goto fail;
	}
	if (ss_redis_send_internal(r, SS_ENT_PING, NULL, 1, ping, NULL) != 0)
		goto fail;
	return;
fail:
	ss_redis_drop(r, "cannot send handshake");
}

static void
ss_redis_st_auth(ss_redis *r)
{
	const char *argv[3] = {"AUTH", r->user, r->password};
	size_t lens[3] = {4, r->user != NULL ? strlen(r->user) : 0,
	                  strlen(r->password)};
	int argc = 3;

	if (r->user == NULL) {
		argv[1] = argv[2];
		lens[1] = lens[2];
		argc = 2;
	}
	r->state = SS_R_AUTH;
	ss_redis_set_why(r, "authenticating");
	if (ss_redis_send_internal(r, SS_ENT_AUTH, NULL, argc, argv, lens) != 0)
		ss_redis_drop(r, "cannot send AUTH");
}

/* Handshake answers; a NULL reply means the context is already going. */
static void
ss_redis_handshake_reply(ss_redis *r, struct ss_ent *e, redisReply *rep)
{
	char why[sizeof(r->why)];

	if (rep == NULL || r->state == SS_R_CLOSED ||
	    r->state == SS_R_DISCONNECTED)
		return;
	switch (e->kind) {
	case SS_ENT_AUTH:
		if (rep->type != REDIS_REPLY_STATUS) {
			snprintf(why, sizeof(why), "AUTH failed: %s",
			         rep->type == REDIS_REPLY_ERROR ? rep->str
			                                        : "bad reply");
			ss_redis_drop(r, why);
			return;
		}
		ss_redis_st_loading(r);
		return;
	case SS_ENT_LOAD:
		if (rep->type == REDIS_REPLY_STRING && rep->len == 40) {
			memcpy(e->script->sha, rep->str, 40);
			e->script->sha[40] = '\0';
			return;
		}
		/* "ERR ..." is a script that does not compile: a bug that
		 * every retry would repeat; its callers get the error from
		 * EVAL.  Anything else (LOADING, NOAUTH, ...) is the server's
		 * state: start again later. */
		if (rep->type == REDIS_REPLY_ERROR &&
		    strncmp(rep->str, "ERR", 3) == 0) {
			ss_error("redis.script_load_failed", NULL, "conn",
			         r->name, "script", e->script->name, "reason",
			         rep->str, NULL);
			return;
		}
		snprintf(why, sizeof(why), "SCRIPT LOAD failed: %s",
		         rep->type == REDIS_REPLY_ERROR ? rep->str
		                                        : "bad reply");
		ss_redis_drop(r, why);
		return;
	case SS_ENT_PING:
		if (rep->type == REDIS_REPLY_STATUS &&
		    strcmp(rep->str, "PONG") == 0) {
			ss_redis_ready_now(r);
			return;
		}
		snprintf(why, sizeof(why), "PING failed: %s",
		         rep->type == REDIS_REPLY_ERROR ? rep->str
		                                        : "bad reply");
		ss_redis_drop(r, why);
		return;
	default:
		return;
	}
}

/* ---- hiredis callbacks -------------------------------------------------- */

static void
ss_redis_on_connect(const redisAsyncContext *ac, int status)
{
	ss_redis *r = ac->data;

	r->in_cb++;
	if (status != REDIS_OK) {
		/* hiredis frees the context as soon as we return. */
		char why[sizeof(r->why)];

		snprintf(why, sizeof(why), "connect failed: %s",
		         ac->errstr != NULL ? ac->errstr : "unknown");
		r->ac = NULL;
		ss_redis_went_down(r, why);
	} else if (r->state == SS_R_CONNECTING) {
		evtimer_del(r->tmo);
		/* An idle connection to a Redis that vanished without a FIN
		 * (power loss, a partition) is noticed by TCP keepalive, so
		 * /readyz does not stay ready until the next command. */
		(void)redisEnableKeepAlive((redisContext *)&ac->c);
		if (r->password != NULL)
			ss_redis_st_auth(r);
		else
			ss_redis_st_loading(r);
	}
	r->in_cb--;
}

/* Called by hiredis while it frees a connected context, after every pending
 * reply callback got its NULL reply. */
static void
ss_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
	ss_redis *r = ac->data;
	char why[sizeof(r->why)];

	r->in_cb++;
	if (r->ac == ac) {
		r->ac = NULL;
		/* A drop we asked for left its reason in r->why; otherwise
		 * hiredis says what broke. */
		if (status != REDIS_OK && ac->errstr != NULL && ac->err != 0)
			snprintf(why, sizeof(why), "%s", ac->errstr);
		else if (r->state == SS_R_READY)
			snprintf(why, sizeof(why), "connection closed");
		else
			snprintf(why, sizeof(why), "%s", r->why);
		ss_redis_went_down(r, why);
	}
	r->in_cb--;
}

/* An error that is Redis's state, not the command's: full (OOM), still
 * loading its data, running a slow script, a replica or without its
 * primary.  The caller gets SS_EUNAVAIL, as when Redis is away, so that
 * clients are told to retry rather than that something is broken. */
static bool
ss_redis_is_transient(const redisReply *rep)
{
	static const char *const words[] = {"OOM ", "LOADING ", "BUSY ",
	                                    "READONLY ", "MASTERDOWN "};

	if (rep->type != REDIS_REPLY_ERROR)
		return false;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strncmp(rep->str, words[i], strlen(words[i])) == 0)
			return true;
	return false;
}

static bool
ss_redis_is_noscript(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ERROR && rep->len >= 8 &&
	       strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* Resends an EVALSHA that met NOSCRIPT as EVAL, once; 0 if sent. */
static int
ss_redis_resend_eval(ss_redis *r, struct ss_ent *e)
{
	e->retried = true;
	e->argv[0] = "EVAL";
	e->lens[0] = 4;
	e->argv[1] = e->script->src;
	e->lens[1] = strlen(e->script->src);
	return ss_redis_send_argv(r, e, e->argc, e->argv, e->lens);
}

static void
ss_redis_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct ss_ent *e = priv;
	ss_redis *r = e->r;
	redisReply *rep = reply;

	(void)ac;
	r->in_cb++;
	TAILQ_REMOVE(&r->pending, e, link);
	if (rep == NULL) {
		/* The context is being freed: no more sending on it. */
		if (r->state != SS_R_CLOSED)
			r->state = SS_R_DISCONNECTED;
	}
	switch (e->kind) {
	case SS_ENT_CMD:
	case SS_ENT_EVAL:
		if (rep == NULL || r->state == SS_R_CLOSED) {
			ss_redis_finish(e, SS_EUNAVAIL, NULL);
		} else if (e->kind == SS_ENT_EVAL && !e->retried &&
		           ss_redis_is_noscript(rep)) {
			if (ss_redis_resend_eval(r, e) != 0)
				ss_redis_finish(e, SS_EUNAVAIL, NULL);
		} else if (ss_redis_is_transient(rep)) {
			if (ss_redis_now_ms() - r->refused_logged_ms >= 1000) {
				r->refused_logged_ms = ss_redis_now_ms();
				ss_warn("redis.refused", NULL, "conn", r->name,
				        "reason", rep->str, NULL);
			}
			ss_redis_finish(e, SS_EUNAVAIL, NULL);
		} else {
			ss_redis_finish(e, 0, rep);
		}
		break;
	default:
		ss_redis_handshake_reply(r, e, rep);
		ss_redis_ent_free(e);
		break;
	}
	r->in_cb--;
}

/* ---- loop events -------------------------------------------------------- */

static void
ss_redis_connect(ss_redis *r)
{
	redisAsyncContext *ac;
	char why[sizeof(r->why)];

	r->state = SS_R_CONNECTING;
	ss_redis_set_why(r, "connecting");
	ac = redisAsyncConnect(r->host, r->port);
	if (ac == NULL) {
		ss_redis_went_down(r, "connect failed: out of memory");
		return;
	}
	if (ac->err != 0) {
		snprintf(why, sizeof(why), "connect failed: %s", ac->errstr);
		redisAsyncFree(ac);
		ss_redis_went_down(r, why);
		return;
	}
	ac->data = r;
	r->ac = ac;
	if (redisLibeventAttach(ac, r->d->base) != REDIS_OK) {
		ss_redis_kill(r, "cannot attach to the loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, ss_redis_on_connect);
	redisAsyncSetDisconnectCallback(ac, ss_redis_on_disconnect);
	r->conn_deadline = ss_redis_now_ms() + r->timeout_ms;
	ss_redis_arm(r->tmo, r->timeout_ms);
}

static void
ss_redis_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	ss_redis *r = arg;

	(void)fd;
	(void)what;
	if (r->state != SS_R_DISCONNECTED)
		return;
	ss_metric_add(r->m_reconnects, 1);
	ss_redis_connect(r);
}

static void
ss_redis_tmo_cb(evutil_socket_t fd, short what, void *arg)
{
	ss_redis *r = arg;
	struct ss_ent *head = TAILQ_FIRST(&r->pending);
	int64_t now = ss_redis_now_ms();
	char why[sizeof(r->why)];

	(void)fd;
	(void)what;
	if (r->state == SS_R_CONNECTING && head == NULL) {
		if (now < r->conn_deadline) {
			ss_redis_arm(r->tmo, r->conn_deadline - now);
			return;
		}
		snprintf(why, sizeof(why), "connect timed out after %d ms",
		         r->timeout_ms);
		ss_redis_kill(r, why);
		return;
	}
	if (head == NULL)
		return;
	if (now < head->deadline) {
		ss_redis_arm(r->tmo, head->deadline - now);
		return;
	}
	snprintf(why, sizeof(why), "no answer within %d ms", r->timeout_ms);
	ss_redis_kill(r, why);
}

static void ss_redis_destroy(ss_redis *r);

static void
ss_redis_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	ss_redis *r = arg;
	char why[sizeof(r->why)];

	(void)fd;
	(void)what;
	if (r->state == SS_R_CLOSED) {
		ss_redis_kill(r, "closed");
		ss_redis_destroy(r);
		return;
	}
	if (r->drop_ac != NULL && r->drop_ac == r->ac) {
		snprintf(why, sizeof(why), "%s", r->why);
		ss_redis_kill(r, why);
	}
	r->drop_ac = NULL;
}

/* ---- probe -------------------------------------------------------------- */

static bool
ss_redis_probe(void *arg, const char **why)
{
	ss_redis *r = arg;

	if (r->state == SS_R_READY) {
		/* Idle, a connection to a Redis that stopped answering (a
		 * stopped process, a partition without a reset) still looks
		 * ready: a PING gives it a deadline, so a probe after
		 * --redis-timeout knows. */
		if (TAILQ_EMPTY(&r->pending))
			(void)ss_redis_cmd(r, NULL, NULL, "PING");
		return true;
	}
	*why = r->why;
	return false;
}

/* Stands in for a closed connection's probe: the daemon keeps the pointer. */
static bool
ss_redis_probe_closed(void *arg, const char **why)
{
	(void)arg;
	*why = "closed";
	return false;
}

/* ---- public API --------------------------------------------------------- */

static ss_metric *
ss_redis_metric(ss_metric *(*mk)(const char *, const char *, const char *),
                const char *name, const char *help, const char *conn)
{
	char labels[128];

	snprintf(labels, sizeof(labels), "conn=\"%s\"", conn);
	return mk(name, help, labels);
}

int
ss_redis_open(ss_redis **out, ss_daemon *d, const char *name, const char *addr,
              const char *user, const char *password, int timeout_ms,
              ss_script **scripts, size_t nscripts)
{
	ss_redis *r;
	int rv = SS_ENOMEM;

	*out = NULL;
	if (name == NULL || addr == NULL || timeout_ms <= 0 ||
	    (nscripts > 0 && scripts == NULL))
		return SS_EBADREQ;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return SS_ENOMEM;
	TAILQ_INIT(&r->pending);
	r->d = d;
	r->timeout_ms = timeout_ms;
	r->backoff_ms = SS_REDIS_BACKOFF_MIN_MS;
	r->state = SS_R_DISCONNECTED;
	ss_redis_set_why(r, "not connected");
	r->name = strdup(name);
	r->addr = strdup(addr);
	if (r->name == NULL || r->addr == NULL)
		goto fail;
	if (password != NULL && password[0] != '\0') {
		r->password = strdup(password);
		if (r->password == NULL)
			goto fail;
		if (user != NULL && user[0] != '\0' &&
		    (r->user = strdup(user)) == NULL)
			goto fail;
	}
	if (nscripts > 0) {
		r->scripts = calloc(nscripts, sizeof(*r->scripts));
		if (r->scripts == NULL)
			goto fail;
		memcpy(r->scripts, scripts, nscripts * sizeof(*r->scripts));
		r->nscripts = nscripts;
	}
	rv = ss_redis_parse_addr(r, addr);
	if (rv != 0)
		goto fail;
	rv = SS_ENOMEM;
	r->tmo = evtimer_new(d->base, ss_redis_tmo_cb, r);
	r->retry = evtimer_new(d->base, ss_redis_retry_cb, r);
	r->defer = evtimer_new(d->base, ss_redis_defer_cb, r);
	if (r->tmo == NULL || r->retry == NULL || r->defer == NULL)
		goto fail;
	r->m_up = ss_redis_metric(ss_gauge, "studyshare_redis_up",
	                          "1 when the Redis connection is ready", name);
	r->m_reconnects =
	    ss_redis_metric(ss_counter, "studyshare_redis_reconnects_total",
	                    "Connection attempts made after a failure", name);
	r->m_errors = ss_redis_metric(
	    ss_counter, "studyshare_redis_errors_total",
	    "Connection failures: refused, handshake failed, no answer in "
	    "time, dropped",
	    name);
	if (r->m_up == NULL || r->m_reconnects == NULL || r->m_errors == NULL)
		goto fail;
	ss_metric_set(r->m_up, 0);
	rv = ss_daemon_add_probe(d, r->name, ss_redis_probe, r);
	if (rv != 0)
		goto fail;
	ss_redis_connect(r);
	*out = r;
	return 0;
fail:
	ss_redis_destroy(r);
	return rv;
}

static void
ss_redis_destroy(ss_redis *r)
{
	int i;

	if (r->up)
		ss_metric_set(r->m_up, 0);
	if (r->d != NULL) {
		for (i = 0; i < r->d->nprobes; i++) {
			if (r->d->probes[i].arg == r) {
				r->d->probes[i].name = "redis (closed)";
				r->d->probes[i].fn = ss_redis_probe_closed;
				r->d->probes[i].arg = NULL;
			}
		}
	}
	if (r->tmo != NULL)
		event_free(r->tmo);
	if (r->retry != NULL)
		event_free(r->retry);
	if (r->defer != NULL)
		event_free(r->defer);
	free(r->user);
	if (r->password != NULL) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->scripts);
	free(r->host);
	free(r->addr);
	free(r->name);
	ss_resp_free(&r->fmt);
	free(r);
}

void
ss_redis_close(ss_redis *r)
{
	if (r == NULL || r->state == SS_R_CLOSED)
		return;
	r->state = SS_R_CLOSED;
	ss_redis_set_why(r, "closed");
	evtimer_del(r->retry);
	evtimer_del(r->tmo);
	if (r->in_cb > 0) {
		/* Inside one of our callbacks: hiredis still uses the context
		 * and the caller's stack still uses r. */
		ss_redis_arm(r->defer, 0);
		return;
	}
	evtimer_del(r->defer);
	ss_redis_kill(r, "closed");
	ss_redis_destroy(r);
}

bool
ss_redis_ready(const ss_redis *r)
{
	return r != NULL && r->state == SS_R_READY;
}

const char *
ss_redis_refused(int err, const redisReply *reply)
{
	if (err != 0)
		return ss_err_word(err);
	return reply->type == REDIS_REPLY_ERROR ? reply->str : NULL;
}

int
ss_redis_cmd(ss_redis *r, ss_redis_fn fn, void *arg, const char *fmt, ...)
{
	struct ss_ent *e;
	va_list ap;
	char *cmd = NULL;
	int len;
	int rv;

	if (r->state != SS_R_READY)
		return SS_EUNAVAIL;
	va_start(ap, fmt);
	len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len == -2)
		return SS_ENOMEM;
	if (len < 0)
		return SS_EINTERNAL; /* a bad format string: a bug */
	e = ss_redis_ent_new(r, SS_ENT_CMD);
	if (e == NULL) {
		rv = SS_ENOMEM;
		goto fail;
	}
	e->fn = fn;
	e->arg = arg;
	if (redisAsyncFormattedCommand(r->ac, ss_redis_on_reply, e, cmd,
	                               (size_t)len) != REDIS_OK) {
		rv = SS_EUNAVAIL;
		goto fail;
	}
	ss_redis_push(r, e);
	redisFreeCommand(cmd);
	return 0;
fail:
	ss_redis_ent_free(e);
	redisFreeCommand(cmd);
	return rv;
}

int
ss_redis_cmdargv(ss_redis *r, ss_redis_fn fn, void *arg, int argc,
                 const char **argv, const size_t *lens)
{
	struct ss_ent *e;
	int rv;

	if (r->state != SS_R_READY)
		return SS_EUNAVAIL;
	if (argc < 1 || argv == NULL)
		return SS_EINTERNAL;
	e = ss_redis_ent_new(r, SS_ENT_CMD);
	if (e == NULL)
		return SS_ENOMEM;
	e->fn = fn;
	e->arg = arg;
	rv = ss_redis_send_argv(r, e, argc, argv, lens);
	if (rv != 0)
		ss_redis_ent_free(e);
	return rv;
}

/*
 * One allocation holds the entry, the argv and lens arrays (argc + 3 slots:
 * command, sha or source, numkeys, then the caller's) and a copy of the
 * caller's bytes, which a NOSCRIPT retry needs after the caller returned.
 */
static struct ss_ent *
ss_redis_eval_ent(ss_redis *r, ss_script *s, int nkeys, int argc,
                  const char **argv, const size_t *lens)
{
	struct ss_ent *e;
	size_t total = 0, off;
	size_t n = (size_t)argc + 3;
	char *data;
	int i;

	for (i = 0; i < argc; i++)
		total += (lens != NULL ? lens[i] : strlen(argv[i])) + 1;
	e = calloc(1, sizeof(*e) + n * sizeof(char *) + n * sizeof(size_t) +
	                  total);
	if (e == NULL)
		return NULL;
	e->r = r;
	e->kind = SS_ENT_EVAL;
	e->script = s;
	e->argc = (int)n;
	e->argv = (const char **)(e + 1);
	e->lens = (size_t *)(e->argv + n);
	data = (char *)(e->lens + n);
	snprintf(e->nkeys, sizeof(e->nkeys), "%d", nkeys);
	e->argv[2] = e->nkeys;
	e->lens[2] = strlen(e->nkeys);
	for (i = 0, off = 0; i < argc; i++) {
		size_t len = lens != NULL ? lens[i] : strlen(argv[i]);

		memcpy(data + off, argv[i], len);
		data[off + len] = '\0';
		e->argv[i + 3] = data + off;
		e->lens[i + 3] = len;
		off += len + 1;
	}
	return e;
}

int
ss_redis_eval(ss_redis *r, ss_script *s, ss_redis_fn fn, void *arg, int nkeys,
              int argc, const char **argv, const size_t *lens)
{
	struct ss_ent *e;
	int rv;

	if (r->state != SS_R_READY)
		return SS_EUNAVAIL;
	if (s == NULL || s->src == NULL || nkeys < 0 || argc < nkeys ||
	    argc > INT_MAX - 3 || (argc > 0 && argv == NULL))
		return SS_EINTERNAL;
	e = ss_redis_eval_ent(r, s, nkeys, argc, argv, lens);
	if (e == NULL)
		return SS_ENOMEM;
	e->fn = fn;
	e->arg = arg;
	if (s->sha[0] != '\0') {
		e->argv[0] = "EVALSHA";
		e->lens[0] = 7;
		e->argv[1] = s->sha;
		e->lens[1] = strlen(s->sha);
	} else {
		/* Not loaded yet: EVAL, and no NOSCRIPT can come back. */
		e->retried = true;
		e->argv[0] = "EVAL";
		e->lens[0] = 4;
		e->argv[1] = s->src;
		e->lens[1] = strlen(s->src);
	}
	rv = ss_redis_send_argv(r, e, e->argc, e->argv, e->lens);
	if (rv != 0)
		ss_redis_ent_free(e);
	return rv;
}
