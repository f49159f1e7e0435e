/*
 * services/gateway/peer.c - a request to a daemon on behalf of an HTTP
 * request.
 *
 * Contract (gateway.h): the bus request carries the HTTP request's id, so
 * one id ties the gateway's log lines to the daemon's.  A daemon that is
 * not connected (ss_req_send refuses at once) or does not answer within
 * its timeout is 503 unavailable, and the client may retry: nothing was
 * changed in the first case; in the second the call may have run
 * (proto/README.md, "Errors", says which calls that matters for).  An error
 * reply keeps its code and message, and its retry_after becomes Retry-After.
 * Replies are decoded and checked by ss_req; a success body that has no JSON
 * form is an internal error. gw_peer_queue() lets a quick call travel with the
 * others of the same loop turn (ss_req_queue): one bus message for many HTTP
 * requests.
 *
 * A bearer token stays valid after its user is removed from the directory,
 * and deny by default answers such a user as one without permissions
 * (forbidden, or not_found for what they cannot see).  So a forbidden or
 * not_found passed through for a bearer request first asks authz.user.get:
 * a user authz does not know (or knows as inactive) is 401 unauthenticated,
 * sent back to log in as for an invalid token; anyone else gets the refusal as
 * it was.  Only refusals pay the extra call.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "runtime/log.h"
#include "services/gateway/gateway.h"

ss_pack *
gw_peer_begin(gw_req *r, const char *type)
{
	ss_pack *p = &r->s->scratch;

	ss_pack_reset(p);
	ss_pack_request(p, type, r->id);
	return p;
}

ss_pack *
gw_peer_body(gw_req *r, const char *type, const char *key)
{
	ss_pack *p = gw_peer_begin(r, type);

	if (gw_pack_object(p, r->body, 3) != 0) {
		gw_peer_wipe(r->s);
		gw_fail(r, SS_EBADREQ, "body: cannot be passed on");
		return NULL;
	}
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, key, r->pm.v[0]);
	ss_pack_kv_cstr(p, "addr", r->addr);
	return p;
}

void
gw_peer_wipe(gw_server *s)
{
	sodium_memzero(s->scratch.sb.data, s->scratch.sb.size);
}

static void
peer_send(gw_req *r, ss_req *peer, ss_reply_fn fn, bool batch)
{
	int rv;

	r->step = GW_STEP_PEER;
	r->peer = peer;
	rv = batch ? ss_req_queue(peer, &r->s->scratch, fn, r)
	           : ss_req_send(peer, &r->s->scratch, fn, r);
	if (rv != 0 && rv != SS_ETOOLARGE && rv != SS_ENOMEM)
		ss_warn("http.peer_failed", r->id, "route", r->route->name,
		        "peer", ss_req_url(peer), "error", ss_err_word(rv),
		        NULL);
	if (rv == SS_ETOOLARGE) {
		r->step = GW_STEP_ROUTE;
		gw_fail(r, rv,
		        "the request is larger than the services take "
		        "(--recv-max)");
	} else if (rv != 0) {
		r->step = GW_STEP_ROUTE;
		gw_fail(r, rv == SS_ENOMEM ? SS_ENOMEM : SS_EUNAVAIL,
		        rv == SS_ENOMEM ? NULL
		                        : "a service is not reachable; retry "
		                          "later");
	}
}

void
gw_peer_send(gw_req *r, ss_req *peer, ss_reply_fn fn)
{
	peer_send(r, peer, fn, false);
}

void
gw_peer_queue(gw_req *r, ss_req *peer, ss_reply_fn fn)
{
	peer_send(r, peer, fn, true);
}

bool
gw_peer_failed(gw_req *r, int err, const ss_msg *reply)
{
	char msg[512];

	if (err != 0) {
		ss_warn("http.peer_failed", r->id, "route", r->route->name,
		        "peer", r->peer != NULL ? ss_req_url(r->peer) : "-",
		        "error", ss_err_word(err), NULL);
		gw_fail(
		    r,
		    err == SS_ETIMEDOUT || err == SS_EUNAVAIL ? SS_EUNAVAIL
		                                              : SS_EINTERNAL,
		    err == SS_ETIMEDOUT ? "a service did not answer in time; "
		                          "retry later"
		                        : NULL);
		return true;
	}
	if (reply->ok)
		return false;
	snprintf(msg, sizeof msg, "%.*s", (int)reply->err_msg.n,
	         reply->err_msg.p != NULL ? reply->err_msg.p : "");
	if (reply->retry_after > 0)
		gw_fail_retry(r, reply->err, msg[0] != '\0' ? msg : NULL,
		              reply->retry_after);
	else
		gw_fail(r, reply->err, msg[0] != '\0' ? msg : NULL);
	return true;
}

/* Removed from the directory, or made inactive (who can no longer log in
 * either). */
static bool
user_gone(int err, const ss_msg *reply)
{
	const msgpack_object *a;

	if (err != 0)
		return false;
	if (!reply->ok)
		return reply->err == SS_ENOTFOUND;
	a = ss_map_get(reply->body, "active");
	return a != NULL && a->type == MSGPACK_OBJECT_BOOLEAN &&
	       !a->via.boolean;
}

static void
on_user(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;

	if (user_gone(err, reply)) {
		gw_add_header(r, "WWW-Authenticate",
		              "Bearer realm=\"studyshare\"");
		gw_reply_error(r, SS_EUNAUTH,
		               "the session's user no longer exists; log in "
		               "again");
		return;
	}
	/* Known, or authz cannot say now: the refusal stands. */
	gw_fail(r, r->refused,
	        r->refused_msg[0] != '\0' ? r->refused_msg : NULL);
}

/* Returns true when the refusal waits for authz.user.get (on_user). */
static bool
ask_user(gw_req *r, int err, const ss_msg *reply)
{
	ss_pack *p;

	if (err != 0 || reply->ok || reply->retry_after > 0 ||
	    (reply->err != SS_EFORBIDDEN && reply->err != SS_ENOTFOUND) ||
	    r->route == NULL || r->route->auth != GW_AUTH_BEARER ||
	    r->user[0] == '\0')
		return false;
	r->refused = reply->err;
	snprintf(r->refused_msg, sizeof r->refused_msg, "%.*s",
	         (int)reply->err_msg.n,
	         reply->err_msg.p != NULL ? reply->err_msg.p : "");
	p = gw_peer_begin(r, "authz.user.get");
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "user", r->user);
	gw_peer_send(r, r->s->authz, on_user);
	return true;
}

void
gw_peer_pass(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;
	json_t *j, *out = NULL;

	if (ask_user(r, err, reply) || gw_peer_failed(r, err, reply))
		return;
	if (r->shape == NULL) {
		gw_reply_mp(r, r->ok_status, reply->body);
		return;
	}
	if ((j = ss_mp_to_json(reply->body)) == NULL) {
		gw_fail(r, SS_EINTERNAL, NULL);
		return;
	}
	if (r->shape(r, j, &out) != 0) {
		json_decref(j);
		gw_fail(r, SS_EINTERNAL, NULL);
		return;
	}
	json_decref(j);
	if (out == NULL) {
		gw_reply_empty(r, r->ok_status);
		return;
	}
	gw_reply_json(r, r->ok_status, out);
}

void
gw_peer_passthrough_queued(gw_req *r, ss_req *peer, int ok_status,
                           gw_shape_fn shape)
{
	r->ok_status = ok_status;
	r->shape = shape;
	peer_send(r, peer, gw_peer_pass, true);
}

void
gw_peer_passthrough(gw_req *r, ss_req *peer, int ok_status, gw_shape_fn shape)
{
	r->ok_status = ok_status;
	r->shape = shape;
	peer_send(r, peer, gw_peer_pass, false);
}
