/*
 * services/gateway/api_uploads.c - upload links (API.md "Guest upload
 * links").
 *
 *   POST /api/v1/worklists/{worklist}/upload-links   {options}
 *       guestlink.upload.create {user, worklist, ..., addr} -> 201 link
 *   GET /api/v1/worklists/{worklist}/upload-links
 *       guestlink.upload.list -> 200 {"links": [...]}
 *   PATCH /api/v1/upload-links/{id}   {max_uses?, expires_at?, message?,
 *                                      notify_on_upload?}
 *       guestlink.upload.update -> 200 link
 *   DELETE /api/v1/upload-links/{id}
 *       guestlink.upload.delete -> 204
 *
 * Types are checked here, values by guestlink (its message names the
 * field).
 */
#include <string.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

static const gw_jfield create_spec[] = {
    {"max_uses", GW_J_INT, false, 1, 1000000},
    {"expires_at", GW_J_STR, false, 0, 64},
    {"expires_in", GW_J_INT, false, 1, 100LL * 365 * 86400},
    {"password", GW_J_STR, false, 1, 1024},
    {"max_password_attempts", GW_J_INT, false, 1, 100},
    {"email", GW_J_STR, false, 1, 254},
    {"message", GW_J_STR, false, 0, 2000},
    {"notify_on_upload", GW_J_BOOL, false, 0, 0},
};

static const gw_jfield update_spec[] = {
    {"max_uses", GW_J_INT, false, 1, 1000000},
    {"expires_at", GW_J_STR, false, 0, 64},
    {"message", GW_J_STR, false, 0, 2000},
    {"notify_on_upload", GW_J_BOOL, false, 0, 0},
};

void
gw_api_upload_create(gw_req *r)
{
	gw_server *s = r->s; /* r is freed once answered */

	if (gw_body_json(r, create_spec,
	                 sizeof create_spec / sizeof create_spec[0]) != 0)
		return;
	if (gw_peer_body(r, "guestlink.upload.create", "worklist") != NULL) {
		gw_peer_passthrough(r, s->guestlink, 201, NULL);
		/* Copied out: leave no link password in the scratch. */
		gw_peer_wipe(s);
	}
}

void
gw_api_upload_list(gw_req *r)
{
	static const char *const allowed[] = {NULL};
	ss_pack *p;

	if (gw_query_check(r, allowed) != 0)
		return;
	p = gw_peer_begin(r, "guestlink.upload.list");
	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "worklist", r->pm.v[0]);
	gw_peer_passthrough(r, r->s->guestlink, 200, NULL);
}

void
gw_api_upload_update(gw_req *r)
{
	if (gw_body_json(r, update_spec,
	                 sizeof update_spec / sizeof update_spec[0]) != 0)
		return;
	if (gw_peer_body(r, "guestlink.upload.update", "id") != NULL)
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

void
gw_api_upload_delete(gw_req *r)
{
	ss_pack *p = gw_peer_begin(r, "guestlink.upload.delete");

	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "id", r->pm.v[0]);
	ss_pack_kv_cstr(p, "addr", r->addr);
	gw_peer_passthrough(r, r->s->guestlink, 204, shape_none);
}
