/*
 * services/gateway/api_session.c - POST /api/v1/sessions: a user logs in
 * and gets a bearer token.
 *
 *   {"user", "password"} -> 200 {"token", "expires_at", "user": {...}}
 *
 *   SN_LOGIN  authz.login {user, password, addr}: authz checks the
 *             password (Argon2id, off its loop) and keeps the failed-login
 *             limits per user and per address (API.md: 30 per address per
 *             minute by default), reserving each attempt atomically in
 *             Redis, so every gateway replica shares them; over a limit it
 *             answers too_many_requests with retry_after, which becomes
 *             429 with Retry-After here.
 *   then      the JWT: sub is authz's user id, exp now + token-ttl.
 *
 * An id that cannot exist (bad characters, too long) gets the same 401 as
 * a wrong password, without asking authz.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "runtime/log.h"
#include "services/gateway/gateway.h"

static const gw_jfield spec[] = {
    {"user", GW_J_STR, true, 1, 256},
    {"password", GW_J_STR, true, 1, 1024},
};

static void
on_login(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;
	const gw_settings *cfg = r->s->cfg;
	const msgpack_object *u, *id;
	char user[GW_USER_MAX + 1], exp[21], *tok = NULL;
	int64_t now = gw_now(), ttl = cfg->token_ttl_ms / 1000;
	json_t *out, *uj;

	if (gw_peer_failed(r, err, reply))
		return;
	if ((u = ss_map_get(reply->body, "user")) == NULL ||
	    u->type != MSGPACK_OBJECT_MAP ||
	    (id = ss_map_get(u, "id")) == NULL ||
	    ss_obj_strcpy(id, user, sizeof user) != 0 ||
	    gw_jwt_mint(cfg->jwt_secret, strlen(cfg->jwt_secret), user, now,
	                ttl, &tok) != 0) {
		gw_fail(r, SS_EINTERNAL, NULL);
		return;
	}
	gw_time_fmt(now + ttl, exp);
	uj = ss_mp_to_json(u);
	out = json_pack("{s:s, s:s, s:o*}", "token", tok, "expires_at", exp,
	                "user", uj);
	sodium_memzero(tok, strlen(tok));
	free(tok);
	ss_info("http.login", r->id, "user", user, NULL);
	gw_reply_json(r, 200, out);
}

void
gw_api_session(gw_req *r)
{
	const char *user;
	ss_pack *p;

	if (gw_body_json(r, spec, 2) != 0)
		return;
	user = json_string_value(json_object_get(r->body, "user"));
	if (!gw_user_valid(user, strlen(user))) {
		gw_reply_error(r, SS_EUNAUTH, "wrong user or password");
		return;
	}
	p = gw_peer_begin(r, "authz.login");
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", user);
	ss_pack_kv_cstr(
	    p, "password",
	    json_string_value(json_object_get(r->body, "password")));
	ss_pack_kv_cstr(p, "addr", r->addr);
	gw_peer_send(r, r->s->authz, on_login);
	/* The request was copied out: leave no password in the scratch. */
	sodium_memzero(p->sb.data, p->sb.size);
}
