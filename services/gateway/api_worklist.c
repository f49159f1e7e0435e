/*
 * services/gateway/api_worklist.c - worklists and their studies.
 *
 *   GET /api/v1/worklists                  authz.worklists: every worklist
 *       -> {"worklists": [{"id", "kind", "name", "organisation", "role",
 *           "permissions", "share_code"}, ...]}   (the web UI's picker)
 *   GET /api/v1/worklists/{worklist}       authz.worklist.get
 *       -> {"id", "kind", "name", "share_code"}   (members only: 404)
 *   GET /api/v1/worklists/{worklist}/studies[?limit=N&cursor=C]
 *       share.studies.list -> {"studies": [...], "next_cursor"}
 *   GET /api/v1/studies/{study_uid}?worklist=W
 *       share.study.get -> {"study", "priors"}
 *
 * Each is one request to one daemon; the reply passes through.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

void
gw_api_worklists(gw_req *r)
{
	static const char *const allowed[] = {NULL};
	ss_pack *p;

	if (gw_query_check(r, allowed) != 0)
		return;
	p = gw_peer_begin(r, "authz.worklists");
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "user", r->user);
	gw_peer_passthrough(r, r->s->authz, 200, NULL);
}

/* API.md fixes the fields of a worklist: the rest stays inside. */
static int
shape_worklist(gw_req *r, json_t *body, json_t **out)
{
	static const char *const keep[] = {"id", "kind", "name", "share_code"};
	json_t *o = json_object(), *v;

	(void)r;
	if (o == NULL)
		return SS_ENOMEM;
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
		if ((v = json_object_get(body, keep[i])) == NULL)
			v = json_null();
		else
			json_incref(v);
		if (json_object_set_new(o, keep[i], v) != 0) {
			json_decref(o);
			return SS_ENOMEM;
		}
	}
	*out = o;
	return 0;
}

void
gw_api_worklist(gw_req *r)
{
	static const char *const allowed[] = {NULL};
	ss_pack *p;

	if (gw_query_check(r, allowed) != 0)
		return;
	p = gw_peer_begin(r, "authz.worklist.get");
	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "worklist", r->pm.v[0]);
	gw_peer_passthrough(r, r->s->authz, 200, shape_worklist);
}

void
gw_api_studies(gw_req *r)
{
	static const char *const allowed[] = {"limit", "cursor", NULL};
	char limit[16], cursor[GW_QUERY_MAX];
	long lim = 0;
	char *end;
	int has_limit, has_cursor;
	ss_pack *p;

	if (gw_query_check(r, allowed) != 0 ||
	    (has_limit = gw_query_get(r, "limit", limit, sizeof limit)) < 0 ||
	    (has_cursor = gw_query_get(r, "cursor", cursor, sizeof cursor)) < 0)
		return;
	if (has_limit) {
		lim = strtol(limit, &end, 10);
		if (limit[0] == '\0' || *end != '\0' || lim < 1 || lim > 500) {
			gw_fail(r, SS_EBADREQ,
			        "parameter 'limit': expected 1..500");
			return;
		}
	}
	p = gw_peer_begin(r, "share.studies.list");
	msgpack_pack_map(&p->pk,
	                 2 + (has_limit ? 1 : 0) + (has_cursor ? 1 : 0));
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "worklist", r->pm.v[0]);
	if (has_limit)
		ss_pack_kv_int(p, "limit", lim);
	if (has_cursor)
		ss_pack_kv_cstr(p, "cursor", cursor);
	gw_peer_passthrough(r, r->s->share, 200, NULL);
}

void
gw_api_study(gw_req *r)
{
	static const char *const allowed[] = {"worklist", NULL};
	char wl[GW_QUERY_MAX];
	ss_pack *p;

	if (gw_query_check(r, allowed) != 0 ||
	    gw_query_need(r, "worklist", wl, sizeof wl) != 0)
		return;
	p = gw_peer_begin(r, "share.study.get");
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", r->user);
	ss_pack_kv_cstr(p, "worklist", wl);
	ss_pack_kv_cstr(p, "study_uid", r->pm.v[0]);
	gw_peer_passthrough(r, r->s->share, 200, NULL);
}
