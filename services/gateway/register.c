/*
 * services/gateway/register.c - registration by invitation (API.md
 * "Shares", email targets).
 *
 *   GET /register?invite=<token>   the page: share.invitation.get {invite}
 *       -> 200 the form (the invited address shown), or with Accept:
 *          application/json {"email", "expires_at"}; every unusable
 *          invitation (unknown, expired, used) is the same 404
 *   POST /api/v1/registrations     {"invite", "user", "name", "password"}
 *       RG_LIMIT   the per-address limit (--registration-limit per
 *                  --rate-window), counted in Redis across replicas,
 *                  before anything else: guessing costs an attempt
 *       RG_SHARE   share.register {invite, user, name, password, addr}
 *       -> 201 {"user": {...}, "delivered": [study_uid, ...]}
 *
 * The page's script (web/static/register.js) posts the form as JSON, then
 * logs the new account in and lists what was shared with it.  The token is
 * never written into the page: the script reads it from the address bar.
 */
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "runtime/token.h"
#include "services/gateway/gateway.h"

static void
invite_gone(gw_req *r)
{
	static const char *const vars[] = {
	    "message",
	    "This invitation link is unknown, has expired or has been used "
	    "already.",
	    NULL};

	if (r->want_json)
		gw_reply_error(r, SS_ENOTFOUND, "no such invitation");
	else
		gw_reply_page(r, 404, GW_T_NOT_FOUND, vars);
}

static void
on_invitation(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;
	const msgpack_object *e;
	char email[256] = "", exp[GW_EXP_MAX] = "", when[GW_EXP_MAX];
	json_t *j;

	if (err == 0 && !reply->ok && reply->err == SS_ENOTFOUND) {
		invite_gone(r);
		return;
	}
	if (gw_peer_failed(r, err, reply))
		return;
	if (r->want_json) {
		if ((j = ss_mp_to_json(reply->body)) == NULL) {
			gw_fail(r, SS_EINTERNAL, NULL);
			return;
		}
		gw_reply_json(r, 200, j);
		return;
	}
	if ((e = ss_map_get(reply->body, "email")) != NULL)
		(void)ss_obj_strcpy(e, email, sizeof email);
	if ((e = ss_map_get(reply->body, "expires_at")) != NULL)
		(void)ss_obj_strcpy(e, exp, sizeof exp);
	/* Written for people, the exact time kept for the page's script
	 * (web/static/localtime.js shows it in the reader's own time). */
	gw_time_human(exp, when);
	{
		const char *vars[] = {
		    "email",       email, "expires_at", when,
		    "expires_iso", exp,   NULL,
		};
		gw_reply_page(r, 200, GW_T_REGISTER, vars);
	}
}

void
gw_page_register(gw_req *r)
{
	char invite[GW_QUERY_MAX];
	ss_pack *p;

	/* Other parameters are ignored, not refused: mail services append
	 * their own (utm_source=...) to the links they carry. */
	if (gw_query_get(r, "invite", invite, sizeof invite) < 0)
		return;
	if (!ss_token_valid(invite, strlen(invite))) {
		invite_gone(r);
		return;
	}
	p = gw_peer_begin(r, "share.invitation.get");
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "invite", invite);
	gw_peer_send(r, r->s->share, on_invitation);
}

static const gw_jfield spec[] = {
    {"invite", GW_J_STR, true, 1, 128},
    {"user", GW_J_STR, true, 1, GW_USER_MAX},
    {"name", GW_J_STR, true, 1, 200},
    {"password", GW_J_STR, true, 1, 1024},
};

static void
register_send(gw_req *r)
{
	ss_pack *p;

	if (gw_body_json(r, spec, sizeof spec / sizeof spec[0]) != 0)
		return;
	p = gw_peer_begin(r, "share.register");
	if (gw_pack_object(p, r->body, 1) != 0) {
		gw_fail(r, SS_EBADREQ, "body: cannot be passed on");
		return;
	}
	ss_pack_kv_cstr(p, "addr", r->addr);
	gw_peer_passthrough(r, r->s->share, 201, NULL);
	sodium_memzero(p->sb.data, p->sb.size);
}

void
gw_api_register(gw_req *r)
{
	gw_limit(r, "register", r->s->cfg->registration_limit, register_send);
}
