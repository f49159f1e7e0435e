/*
 * services/gateway/api_links.c - guest links (API.md "Guest links").
 *
 *   POST /api/v1/studies/{study_uid}/guest-links   {"worklist", options}
 *       guestlink.create {user, worklist, study_uid, ..., addr} -> 201 link
 *   GET /api/v1/studies/{study_uid}/guest-links?worklist=W
 *       guestlink.list -> 200 {"links": [link + "can_delete", ...]}
 *   DELETE /api/v1/guest-links/{id}
 *       guestlink.delete -> 204
 *   POST /api/v1/guest-links/{id}/unlock
 *       guestlink.unlock -> 200 link
 *
 * The options' types are checked here; their values (expiry in the
 * future and within the maximum, an address that is one, ...) by
 * guestlink, whose message names the field.
 */
#include <string.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

static const gw_jfield spec[] = {
    {"worklist", GW_J_STR, true, 1, 80},
    {"max_uses", GW_J_INT, false, 1, 1000000},
    {"expires_at", GW_J_STR, false, 0, 64},
    {"expires_in", GW_J_INT, false, 1, 100LL * 365 * 86400},
    {"password", GW_J_STR, false, 1, 1024},
    {"max_password_attempts", GW_J_INT, false, 1, 100},
    {"email", GW_J_STR, false, 1, 254},
    {"message", GW_J_STR, false, 0, 2000},
    {"view_notification", GW_J_BOOL, false, 0, 0},
    {"include_priors", GW_J_BOOL, false, 0, 0},
    {"password_is_dob", GW_J_BOOL, false, 0, 0},
};

void
gw_api_link_create(gw_req *r)
{
	gw_server *s = r->s; /* r is freed once answered */

	if (gw_body_json(r, spec, sizeof spec / sizeof spec[0]) != 0)
		return;
	if (gw_peer_body(r, "guestlink.create", "study_uid") != NULL) {
		gw_peer_passthrough(r, s->guestlink, 201, NULL);
		/* Copied out: leave no link password in the scratch. */
		gw_peer_wipe(s);
	}
}

void
gw_api_link_list(gw_req *r)
{
	static const char *const allowed[] = {"worklist", NULL};
	char wl[GW_QUERY_MAX];
	ss_pack *p;

	if (gw_query_check(r, allowed) != 0 ||
	    gw_query_need(r, "worklist", wl, sizeof wl) != 0)
		return;
	p = gw_peer_begin(r, "guestlink.list");
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "worklist", wl);
	ss_pack_kv_cstr(p, "study_uid", r->pm.v[0]);
	gw_peer_passthrough(r, r->s->guestlink, 200, NULL);
}

/* delete answers 204 without a body. */
static int
shape_none(gw_req *r, json_t *body, json_t **out)
{
	(void)r;
	(void)body;
	*out = NULL;
	return 0;
}

static void
owner_call(gw_req *r, const char *type, int status, gw_shape_fn shape)
{
	ss_pack *p = gw_peer_begin(r, type);

	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "id", r->pm.v[0]);
	ss_pack_kv_cstr(p, "addr", r->addr);
	gw_peer_passthrough(r, r->s->guestlink, status, shape);
}

void
gw_api_link_delete(gw_req *r)
{
	owner_call(r, "guestlink.delete", 204, shape_none);
}

void
gw_api_link_unlock(gw_req *r)
{
	size_t n;

	/* No body is expected; one that is there must be an empty object. */
	(void)gw_body(r, &n);
	if (n > 0 && gw_body_json(r, NULL, 0) != 0)
		return;
	owner_call(r, "guestlink.unlock", 200, NULL);
}
