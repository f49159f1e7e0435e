/*
 * runtime/rep.h - an NNG REP server on the daemon's loop.
 *
 * A REP socket with one nng_ctx per request, whose completions are handed
 * to the loop (the daemon's base is thread-aware), so any number of
 * requests are in flight and each is answered whenever its handler is
 * done.  (Not a raw socket: raw REP drops replies that overflow its
 * per-pipe queue of 64, see rep.c.)  Incoming bytes are capped by
 * NNG_OPT_RECVMAXSZ (common->recv_max) and decoded with ss_msg_decode(); a
 * message that does not decode, or whose type has no route, is answered
 * with bad_request and never reaches a handler.  While the daemon is
 * stopping, new requests get unavailable; calls in flight still answer.
 * Every call is held on the daemon until NNG has taken its reply.
 *
 * A handler receives a call and must answer it exactly once, now or later,
 * with ss_call_reply_ok()/ss_call_reply_end() or ss_call_reply_err().
 * Answering frees the call.  Per message type the server counts requests
 * and errors and observes latency (metrics: studyshare_requests_total,
 * studyshare_request_errors_total, studyshare_request_duration_seconds).
 */
#ifndef SS_RUNTIME_REP_H
#define SS_RUNTIME_REP_H

#include <msgpack.h>

#include "proto/envelope.h"
#include "runtime/daemon.h"

typedef struct ss_rep ss_rep;
typedef struct ss_call ss_call;

typedef void (*ss_handler_fn)(ss_call *c, const msgpack_object *body,
                              void *arg);

typedef struct ss_route {
	const char *type; /* "authz.check" */
	ss_handler_fn fn;
} ss_route;

/* Listens on url (tcp://127.0.0.1:7001, ipc://..., tls+tcp://...).
 * Route types must be 1..SS_MAX_TYPE_LEN of [a-z0-9._] (SS_EINTERNAL);
 * a bad url gives SS_EBADREQ, one that cannot be bound SS_EUNAVAIL. */
int ss_rep_listen(ss_rep **out, ss_daemon *d, const char *url,
                  const ss_route *routes, size_t nroutes, void *arg);
void ss_rep_close(ss_rep *r);

const char *ss_call_id(const ss_call *c);
const char *ss_call_type(const ss_call *c);

/* Starts an ok reply; pack exactly one body map into the returned packer,
 * then call ss_call_reply_end(). */
ss_pack *ss_call_reply_ok(ss_call *c);
void ss_call_reply_end(ss_call *c);
/* Answers with an error; msg may be NULL. */
void ss_call_reply_err(ss_call *c, int err, const char *msg);
/* The same with "retry_after" seconds in the error (too_many_requests). */
void ss_call_reply_err_retry(ss_call *c, int err, const char *msg,
                             int retry_after);

#endif
