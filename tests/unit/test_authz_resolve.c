/*
 * tests/unit/test_authz_resolve.c - authz.resolve without the bus: the
 * shape check of share targets (every refusal names its target and
 * field) and the verdict of each target kind, against a small directory
 * in which alice may share everything from location:x and only view
 * group:g.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "services/authz/authz.h"

/* clang-format off */
static const char DOC[] =
"{\"roles\": ["
"  {\"id\": \"all\", \"permissions\": [\"studies.view\", \"studies.share\","
"   \"studies.share.users\", \"studies.share.groups\", \"studies.share.locations\","
"   \"studies.share.organisations\", \"studies.share.code\", \"studies.share.email\"]},"
"  {\"id\": \"view\", \"permissions\": [\"studies.view\"]}],"
" \"organisations\": ["
"  {\"id\": \"a\", \"name\": \"A\", \"shares_with\": [\"b\"]},"
"  {\"id\": \"b\", \"name\": \"B\", \"shares_with\": [\"a\"], \"share_code\": \"orgb-0000\"},"
"  {\"id\": \"c\", \"name\": \"C\"}],"
" \"locations\": ["
"  {\"id\": \"x\", \"organisation\": \"a\", \"name\": \"X\", \"share_code\": \"LOCX0000\"},"
"  {\"id\": \"y\", \"organisation\": \"b\", \"name\": \"Y\"}],"
" \"groups\": [{\"id\": \"g\", \"organisation\": \"a\", \"name\": \"G\"}],"
" \"users\": ["
"  {\"id\": \"alice\", \"organisation\": \"a\", \"email\": \"alice@a.example\", \"name\": \"Alice\","
"   \"memberships\": [{\"worklist\": \"location:x\", \"role\": \"all\"},"
"                   {\"worklist\": \"group:g\", \"role\": \"view\"}]},"
"  {\"id\": \"bob\", \"organisation\": \"a\", \"email\": \"Bob@A.example\", \"name\": \"Bob\"},"
"  {\"id\": \"gone\", \"organisation\": \"a\", \"email\": \"gone@a.example\", \"name\": \"Gone\","
"   \"active\": false},"
"  {\"id\": \"carol\", \"organisation\": \"c\", \"email\": \"carol@c.example\", \"name\": \"Carol\"}]}";
/* clang-format on */

static az_dir *dir;

static int
setup(void **state)
{
	char why[256];

	(void)state;
	return az_dir_parse(DOC, sizeof DOC - 1, &dir, why, sizeof why);
}

static int
teardown(void **state)
{
	(void)state;
	az_dir_free(dir);
	return 0;
}

/* A list of targets, each "kind field value" or "kind" alone, unpacked
 * into u (the caller destroys it). */
static const msgpack_object_array *
targets(msgpack_unpacked *u, msgpack_sbuffer *sb, const char *const *t,
        size_t n)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++) {
		char kind[32], field[32], val[128];
		int k = sscanf(t[i], "%31s %31s %127s", kind, field, val);

		msgpack_pack_map(&pk, k == 3 ? 2 : 1);
		msgpack_pack_str_with_body(&pk, "kind", 4);
		msgpack_pack_str_with_body(&pk, kind, strlen(kind));
		if (k == 3) {
			msgpack_pack_str_with_body(&pk, field, strlen(field));
			msgpack_pack_str_with_body(&pk, val, strlen(val));
		}
	}
	msgpack_unpacked_init(u);
	assert_int_equal(msgpack_unpack_next(u, sb->data, sb->size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	return &u->data.via.array;
}

static void
refused(const char *const *t, size_t n, const char *want)
{
	msgpack_unpacked u;
	msgpack_sbuffer sb;
	char msg[300] = "";

	assert_int_equal(
	    az_resolve_check(targets(&u, &sb, t, n), msg, sizeof msg),
	    SS_EBADREQ);
	assert_string_equal(msg, want);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_bad_targets(void **state)
{
	const char *const kind[] = {"planet id mars"};
	const char *const none[] = {"user"};
	const char *const wrong[] = {"user code bob"};
	const char *const second[] = {"user id bob", "email id bob"};

	(void)state;
	refused(kind, 1, "targets[0]: field 'kind': unknown target kind");
	refused(none, 1, "targets[0]: field 'id': required for kind user");
	refused(wrong, 1, "targets[0]: field 'id': required for kind user");
	refused(second, 2,
	        "targets[1]: field 'id': not allowed for kind email");
}

/* The verdicts of alice sharing from wl, as "kind ok worklist",
 * "kind invite email" or "kind code", one per line. */
static void
verdicts(const char *wl, const char *const *t, size_t n, const char *want)
{
	const az_user *alice = az_dir_user(dir, "alice");
	msgpack_unpacked u, r;
	msgpack_sbuffer sb;
	const msgpack_object *list;
	char got[2048] = "", msg[300];
	ss_pack p;

	const msgpack_object_array *ts = targets(&u, &sb, t, n);
	assert_int_equal(az_resolve_check(ts, msg, sizeof msg), 0);
	ss_pack_init(&p);
	az_resolve_pack(dir, alice,
	                az_dir_perms(alice, az_dir_worklist(dir, wl)), ts, &p);
	msgpack_unpacked_init(&r);
	assert_int_equal(msgpack_unpack_next(&r, p.sb.data, p.sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	list = ss_map_get(&r.data, "targets");
	assert_non_null(list);
	assert_int_equal(list->via.array.size, n);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *m = &list->via.array.ptr[i];
		ss_str k = ss_obj_str(ss_map_get(m, "kind")), v;
		const char *how;

		if (!ss_obj_bool(ss_map_get(m, "ok"))) {
			how = "";
			v = ss_obj_str(ss_map_get(m, "code"));
			assert_true(ss_obj_str(ss_map_get(m, "message")).n > 0);
		} else if (ss_obj_bool(ss_map_get(m, "invite"))) {
			how = "invite ";
			v = ss_obj_str(ss_map_get(m, "email"));
		} else {
			how = "ok ";
			v = ss_obj_str(ss_map_get(m, "worklist"));
		}
		snprintf(got + strlen(got), sizeof got - strlen(got),
		         "%.*s %s%.*s\n", (int)k.n, k.p, how, (int)v.n, v.p);
	}
	assert_string_equal(got, want);
	msgpack_unpacked_destroy(&r);
	ss_pack_free(&p);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_every_kind(void **state)
{
	const char *const t[] = {
	    "organisation id b",
	    "organisation id c",
	    "organisation id a",
	    "organisation id z",
	    "location id x",
	    "location id y",
	    "group id g",
	    "user id bob",
	    "user id gone",
	    "user id carol",
	    "user id nobody",
	    "share_code code LOCX0000",
	    "share_code code orgb-0000",
	    "share_code code NOPE0000",
	    "email email BOB@a.example",
	    "email email new@else.example",
	    "email email gone@a.example",
	    "email email not-an-address",
	};

	(void)state;
	verdicts("location:x", t, sizeof t / sizeof t[0],
	         "organisation ok organisation:b\n"
	         "organisation forbidden\n"
	         "organisation ok organisation:a\n"
	         "organisation not_found\n"
	         "location ok location:x\n"
	         "location forbidden\n"
	         "group ok group:g\n"
	         "user ok user:bob\n"
	         "user not_found\n"
	         "user forbidden\n"
	         "user not_found\n"
	         "share_code ok location:x\n"
	         "share_code ok organisation:b\n"
	         "share_code not_found\n"
	         "email ok user:bob\n"
	         "email invite new@else.example\n"
	         "email not_found\n"
	         "email bad_request\n");
}

static void
test_permissions_of_the_worklist_shared_from(void **state)
{
	const char *const t[] = {"user id bob", "email email x@y.example"};

	(void)state;
	/* alice only views group:g: every target is forbidden there. */
	verdicts("group:g", t, 2, "user forbidden\nemail forbidden\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_targets),
	    cmocka_unit_test(test_every_kind),
	    cmocka_unit_test(test_permissions_of_the_worklist_shared_from),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
