/*
 * tests/fuzz/fuzz_gateway_json.c - the gateway's request-body parser and
 * field mapper on arbitrary bytes.
 *
 * The bytes go the way an HTTP body does: gw_json_parse() under a cap,
 * gw_json_fields() against the tables of the share and guest-link routes,
 * gw_json_targets() on a share's targets, then gw_pack_object() with the
 * pairs the gateway adds.  Whatever passes must pack to a message that
 * the daemons' own pre-check (ss_mpcheck) and msgpack-c accept, with
 * exactly the fields of the table plus the added ones.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpcheck.h"
#include "services/gateway/gateway.h"

static const gw_jfield share_spec[] = {
    {"worklist", GW_J_STR, true, 1, 80},
    {"targets", GW_J_ARR, true, 1, 100},
    {"message", GW_J_STR, false, 0, 2000},
};

static const gw_jfield link_spec[] = {
    {"worklist", GW_J_STR, true, 1, 80},
    {"max_uses", GW_J_INT, false, 1, 1000000},
    {"expires_at", GW_J_STR, false, 1, 64},
    {"expires_in", GW_J_INT, false, 1, 100LL * 365 * 86400},
    {"password", GW_J_STR, false, 1, 1024},
    {"max_password_attempts", GW_J_INT, false, 1, 100},
    {"email", GW_J_STR, false, 1, 254},
    {"message", GW_J_STR, false, 0, 2000},
    {"view_notification", GW_J_BOOL, false, 0, 0},
    {"include_priors", GW_J_BOOL, false, 0, 0},
    {"password_is_dob", GW_J_BOOL, false, 0, 0},
};

static void
pack_and_check(const json_t *body)
{
	const char *why = NULL;
	msgpack_unpacked up;
	size_t off = 0;
	ss_pack p;

	ss_pack_init(&p);
	if (gw_pack_object(&p, body, 2) != 0)
		abort(); /* a checked body always packs */
	ss_pack_kv_cstr(&p, "user", "alice");
	ss_pack_kv_cstr(&p, "addr", "127.0.0.1");
	if (ss_mpcheck((const uint8_t *)p.sb.data, p.sb.size, SS_MAX_DEPTH,
	               SS_MAX_STR_LEN, &why) != 0)
		abort();
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, p.sb.data, p.sb.size, &off) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    off != p.sb.size || up.data.type != MSGPACK_OBJECT_MAP ||
	    up.data.via.map.size != json_object_size(body) + 2 ||
	    !ss_obj_streq(ss_map_get(&up.data, "user"), "alice"))
		abort();
	msgpack_unpacked_destroy(&up);
	ss_pack_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	json_t *j = NULL;

	if (gw_json_parse((const char *)data, size, 65536, &j, why,
	                  sizeof why) != 0) {
		if (j != NULL)
			abort();
		return 0;
	}
	if (!json_is_object(j))
		abort();
	if (gw_json_fields(j, share_spec, 3, "", why, sizeof why) == 0 &&
	    gw_json_targets(json_object_get(j, "targets"), why, sizeof why) ==
	        0)
		pack_and_check(j);
	if (gw_json_fields(j, link_spec, 11, "", why, sizeof why) == 0) {
		/* a smuggled field can never pass */
		if (json_object_get(j, "user") != NULL)
			abort();
		pack_and_check(j);
	}
	json_decref(j);
	return 0;
}
