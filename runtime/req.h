/*
 * runtime/req.h - an NNG REQ client on the daemon's loop.
 *
 * A raw-mode REQ socket (we match replies to requests by the 32-bit request
 * id NNG carries in the header), so any number of requests are in flight.
 * Each request has a deadline; when it passes the callback gets
 * SS_ETIMEDOUT and a late reply is dropped.  The dialer reconnects by itself
 * when the peer restarts; requests sent meanwhile time out or, when no pipe
 * can take them, fail at once with SS_EUNAVAIL.  Each client registers a
 * readiness probe "peer <url>" on the daemon: /readyz is 503 while no
 * connection to the peer is up.
 *
 * The callback runs on the loop, exactly once per accepted request.  On
 * err == 0 the reply is decoded (reply->ok tells success; reply->err and
 * reply->err_msg the peer's error) and is freed after the callback returns.
 */
#ifndef SS_RUNTIME_REQ_H
#define SS_RUNTIME_REQ_H

#include "proto/envelope.h"
#include "runtime/daemon.h"

typedef struct ss_req ss_req;

typedef void (*ss_reply_fn)(int err, const ss_msg *reply, void *arg);

/* timeout_ms <= 0 means 5 s.  Returns before the peer is reached. */
int ss_req_dial(ss_req **out, ss_daemon *d, const char *url, int timeout_ms);
/* The URL it dials, for logs. */
const char *ss_req_url(const ss_req *r);
/* Fails every pending request with SS_EUNAVAIL, then frees. */
void ss_req_close(ss_req *r);

/*
 * Sends the request in p (built with ss_pack_request() and one body).
 * Returns 0 when the callback will be called, or an error (and then it will
 * not): SS_ETOOLARGE for a request over the daemon's --recv-max, which
 * the peer would refuse by closing the connection.  p may be reused as
 * soon as this returns.
 */
int ss_req_send(ss_req *r, ss_pack *p, ss_reply_fn fn, void *arg);

/*
 * Like ss_req_send(), but the request waits for the end of this loop turn
 * and goes out with the others held by then, as one bus.batch message
 * (proto/batch.h) when there are several; while two such messages await
 * their replies, it waits for one of them to be answered (its timeout
 * runs from now all the same).  The peer answers a batch when its last
 * request is answered, so hold only requests it answers quickly and with
 * small replies (no password hashing, no large listings); send the
 * others alone.  SS_EUNAVAIL at once when no peer is connected (and
 * SS_ETOOLARGE as above); a batch that cannot be sent calls each request
 * back with SS_EUNAVAIL (SS_ENOMEM when memory ran out).
 */
int ss_req_queue(ss_req *r, ss_pack *p, ss_reply_fn fn, void *arg);

/* Builds a fresh request id (16 lowercase hex digits, unique within the
 * process, random across processes) into buf[SS_MAX_ID_LEN+1].  Any
 * thread. */
void ss_req_new_id(char *buf);

#endif
