/*
 * services/gateway/api_share.c - sharing a study (API.md "Shares").
 *
 *   POST /api/v1/studies/{study_uid}/shares
 *       {"worklist", "targets": [...], "message"?}
 *       share.create {user, worklist, study_uid, targets, message?, addr}
 *       -> 201 {"shares": [...]}
 *   GET /api/v1/studies/{study_uid}/shares?worklist=W
 *       share.history -> 200 {"shares": [...]}
 *
 * The targets are checked here first (each one of the six kinds with its
 * own fields), so a malformed one is a 400 naming it before any daemon is
 * asked; share and authz decide whether it is allowed and exists.
 */
#include <string.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

static const gw_jfield spec[] = {
    {"worklist", GW_J_STR, true, 1, 80},
    {"targets", GW_J_ARR, true, 1, 100},
    {"message", GW_J_STR, false, 0, 2000},
};

void
gw_api_share_create(gw_req *r)
{
	char why[256];
	int rv;

	if (gw_body_json(r, spec, 3) != 0)
		return;
	if ((rv = gw_json_targets(json_object_get(r->body, "targets"), why,
	                          sizeof why)) != 0) {
		gw_fail(r, rv, why);
		return;
	}
	/* Answered within milliseconds (authz and Redis, no hashing), with
	 * a small reply: concurrent shares go to share as one bus.batch. */
	if (gw_peer_body(r, "share.create", "study_uid") != NULL)
		gw_peer_passthrough_queued(r, r->s->share, 201, NULL);
}

void
gw_api_share_history(gw_req *r)
{
	static const char *const allowed[] = {"worklist", NULL};
	char wl[GW_QUERY_MAX];
	ss_pack *p;

	if (gw_query_check(r, allowed) != 0 ||
	    gw_query_need(r, "worklist", wl, sizeof wl) != 0)
		return;
	p = gw_peer_begin(r, "share.history");
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "worklist", wl);
	ss_pack_kv_cstr(p, "study_uid", r->pm.v[0]);
	gw_peer_passthrough(r, r->s->share, 200, NULL);
}
