/*
 * tests/fuzz/fuzz_authz_resolve.c - authz.resolve's share targets on
 * arbitrary bytes, decided against a small directory.
 *
 * The input is a request body, taken as authz's handler takes it:
 * ss_mpcheck(), msgpack_unpack(), the handler's field spec, then
 * az_resolve_check().  A refusal must name its target ("targets[i]: ").
 * An accepted list is decided for the body's user on its worklist (or for
 * alice on location:x when that user is no member there), and the packed
 * reply must read back as one verdict per target, in order, each of its
 * target's kind: ok with a worklist of the directory or an invitation
 * with an email address, or refused with not_found, forbidden or
 * bad_request and a message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpcheck.h"
#include "services/authz/authz.h"

/* Every branch of the decision: agreements both ways and none, another
 * organisation's location, an inactive user, codes, and a role without
 * the share permissions. */
static const char DIR_JSON[] =
    "{\"registration_role\":\"none\","
    "\"roles\":[{\"id\":\"all\",\"permissions\":[\"studies.view\","
    "\"studies.share\",\"studies.share.users\",\"studies.share.groups\","
    "\"studies.share.locations\",\"studies.share.organisations\","
    "\"studies.share.code\",\"studies.share.email\"]},"
    "{\"id\":\"view\",\"permissions\":[\"studies.view\"]},"
    "{\"id\":\"none\",\"permissions\":[]}],"
    "\"organisations\":[{\"id\":\"a\",\"name\":\"A\",\"shares_with\":[\"b\"]},"
    "{\"id\":\"b\",\"name\":\"B\",\"shares_with\":[\"a\"],"
    "\"share_code\":\"orgb-0000\"},{\"id\":\"c\",\"name\":\"C\"}],"
    "\"locations\":[{\"id\":\"x\",\"organisation\":\"a\",\"name\":\"X\","
    "\"share_code\":\"LOCX0000\"},"
    "{\"id\":\"y\",\"organisation\":\"b\",\"name\":\"Y\"}],"
    "\"groups\":[{\"id\":\"g\",\"organisation\":\"a\",\"name\":\"G\"}],"
    "\"users\":["
    "{\"id\":\"alice\",\"organisation\":\"a\",\"email\":\"alice@a.example\","
    "\"name\":\"Alice\",\"personal_role\":\"all\",\"memberships\":["
    "{\"worklist\":\"location:x\",\"role\":\"all\"},"
    "{\"worklist\":\"group:g\",\"role\":\"view\"}]},"
    "{\"id\":\"bob\",\"organisation\":\"a\",\"email\":\"Bob@A.example\","
    "\"name\":\"Bob\"},"
    "{\"id\":\"gone\",\"organisation\":\"a\",\"email\":\"gone@a.example\","
    "\"name\":\"Gone\",\"active\":false},"
    "{\"id\":\"carol\",\"organisation\":\"c\",\"email\":\"carol@c.example\","
    "\"name\":\"Carol\",\"memberships\":["
    "{\"worklist\":\"location:y\",\"role\":\"all\"}]}]}";

static az_dir *dir;

static const ss_field_spec spec[] = {
    {"user", SS_F_STR, true, 1, AZ_MAX_ID_LEN},
    {"worklist", SS_F_STR, true, 1, AZ_MAX_WL_LEN},
    {"targets", SS_F_ARRAY, true, 1, 100},
};

static void
load(void)
{
	char why[256];

	if (az_dir_parse(DIR_JSON, sizeof DIR_JSON - 1, &dir, why,
	                 sizeof why) != 0) {
		fprintf(stderr, "fuzz_authz_resolve: %s\n", why);
		abort();
	}
}

static const msgpack_object *
get(const msgpack_object *map, const char *key)
{
	const msgpack_object *v = ss_map_get(map, key);

	if (v == NULL)
		abort();
	return v;
}

/* An ok verdict; a share code's also names the code in its one form,
 * the worklist's. */
static void
check_ok(const msgpack_object *m, bool code)
{
	const msgpack_object *inv = get(m, "invite");
	char s[AZ_MAX_EMAIL_LEN + 1]; /* a worklist id or an address */
	const az_worklist *wl;
	ss_str c;

	if (inv->type != MSGPACK_OBJECT_BOOLEAN)
		abort();
	if (inv->via.boolean) {
		if (m->via.map.size != 4 ||
		    ss_obj_strcpy(get(m, "email"), s, sizeof s) != 0 ||
		    az_email_key(s, strlen(s), s) != 0)
			abort();
		return;
	}
	if (m->via.map.size != (code ? 5u : 4u) ||
	    ss_obj_strcpy(get(m, "worklist"), s, sizeof s) != 0 ||
	    (wl = az_dir_worklist(dir, s)) == NULL)
		abort();
	if (code) {
		c = ss_obj_str(get(m, "share_code"));
		if (c.n != strlen(wl->code) || memcmp(c.p, wl->code, c.n) != 0)
			abort();
	}
}

static void
check_refused(const msgpack_object *m)
{
	const msgpack_object *code = get(m, "code"), *msg = get(m, "message");
	ss_str w;
	int err;

	if (code->type != MSGPACK_OBJECT_STR ||
	    msg->type != MSGPACK_OBJECT_STR || msg->via.str.size == 0)
		abort();
	w = ss_obj_str(code);
	err = ss_err_from_word(w.p, w.n);
	if (err != SS_ENOTFOUND && err != SS_EFORBIDDEN && err != SS_EBADREQ)
		abort();
}

/* The packed body against the targets it answers. */
static void
check_reply(const ss_pack *p, const msgpack_object_array *ts)
{
	msgpack_unpacked u;
	const msgpack_object *list;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, p->sb.data, p->sb.size, NULL) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    u.data.type != MSGPACK_OBJECT_MAP || u.data.via.map.size != 1)
		abort();
	list = get(&u.data, "targets");
	if (list->type != MSGPACK_OBJECT_ARRAY ||
	    list->via.array.size != ts->size)
		abort();
	for (uint32_t i = 0; i < ts->size; i++) {
		const msgpack_object *m = &list->via.array.ptr[i], *ok, *kind;
		/* Checked: a map with a string "kind" and no duplicate. */
		ss_str want = ss_obj_str(ss_map_get(&ts->ptr[i], "kind")), got;

		if (m->type != MSGPACK_OBJECT_MAP)
			abort();
		ok = get(m, "ok");
		kind = get(m, "kind");
		if (kind->type != MSGPACK_OBJECT_STR)
			abort();
		got = ss_obj_str(kind);
		if (got.n != want.n || memcmp(got.p, want.p, got.n) != 0)
			abort();
		if (ok->type != MSGPACK_OBJECT_BOOLEAN)
			abort();
		if (ok->via.boolean)
			check_ok(m, got.n == 10 &&
			                memcmp(got.p, "share_code", 10) == 0);
		else
			check_refused(m);
	}
	msgpack_unpacked_destroy(&u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const msgpack_object *f[3];
	char why[256], msg[300], user[AZ_MAX_ID_LEN + 1];
	char wlid[AZ_MAX_WL_LEN + 1];
	const char *bad;
	msgpack_unpacked u;
	const az_user *who;
	uint32_t perms;
	ss_pack p;

	if (dir == NULL)
		load();
	if (ss_mpcheck(data, size, 16, 1024 * 1024, &bad) != 0)
		return 0;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)data, size, NULL) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    u.data.type != MSGPACK_OBJECT_MAP ||
	    ss_fields_parse(&u.data, spec, 3, f, why, sizeof why) != 0) {
		msgpack_unpacked_destroy(&u);
		return 0;
	}
	msg[0] = '\0';
	if (az_resolve_check(&f[2]->via.array, msg, sizeof msg) != 0) {
		if (strncmp(msg, "targets[", 8) != 0 || strlen(msg) < 12)
			abort();
		msgpack_unpacked_destroy(&u);
		return 0;
	}
	(void)ss_obj_strcpy(f[0], user, sizeof user);
	(void)ss_obj_strcpy(f[1], wlid, sizeof wlid);
	who = az_dir_user(dir, user);
	perms = az_dir_perms(who, az_dir_worklist(dir, wlid));
	if (perms == 0) {
		who = az_dir_user(dir, "alice");
		perms = az_dir_perms(who, az_dir_worklist(dir, "location:x"));
	}
	ss_pack_init(&p);
	az_resolve_pack(dir, who, perms, &f[2]->via.array, &p);
	check_reply(&p, &f[2]->via.array);
	ss_pack_free(&p);
	msgpack_unpacked_destroy(&u);
	return 0;
}
