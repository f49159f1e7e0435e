/*
 * services/authz/check.c - permission checks and directory look-ups.
 *
 * All of these answer from the in-memory snapshot without a Redis round
 * trip.  Deny by default: an unknown user, worklist or permission is a plain
 * "not allowed", and a non-member cannot see that a worklist exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "services/authz/authz.h"
#include "services/authz/perm.h"

#define ID_MAX   AZ_MAX_ID_LEN
#define WL_MAX   AZ_MAX_WL_LEN
#define PERM_MAX 64

int
az_parse(ss_call *c, const msgpack_object *body, const ss_field_spec *spec,
         size_t n, const msgpack_object **out)
{
	char why[256];

	if (ss_fields_parse(body, spec, n, out, why, sizeof why) != 0) {
		ss_call_reply_err(c, SS_EBADREQ, why);
		return SS_EBADREQ;
	}
	return 0;
}

const az_dir *
az_dir_or_reply(az_server *s, ss_call *c)
{
	if (az_store_usable(s) != 0) {
		ss_call_reply_err(c, SS_EUNAVAIL, "directory unavailable");
		return NULL;
	}
	return s->dir;
}

/* Copies a string field that ss_fields_parse already bounded. */
static void
cstr(const msgpack_object *o, char *buf, size_t len)
{
	if (ss_obj_strcpy(o, buf, len) != 0)
		buf[0] = '\0';
}

/* Handlers whose body is one string field: parses it into buf and returns
 * the snapshot, or answers the call and returns NULL. */
static const az_dir *
one_field(ss_call *c, const msgpack_object *body, void *arg,
          const ss_field_spec *spec, char *buf, size_t len)
{
	const msgpack_object *f[1];
	const az_dir *dir;

	if (az_parse(c, body, spec, 1, f) != 0 ||
	    (dir = az_dir_or_reply(arg, c)) == NULL)
		return NULL;
	cstr(f[0], buf, len);
	return dir;
}

static bool
allowed(const az_dir *dir, const char *user, const msgpack_object *perm,
        const msgpack_object *wl)
{
	char wlid[WL_MAX + 1];
	ss_str p = ss_obj_str(perm);
	uint32_t bit = az_perm_parse(p.p, p.n);

	cstr(wl, wlid, sizeof wlid);
	return bit != 0 && (az_dir_perms(az_dir_user(dir, user),
	                                 az_dir_worklist(dir, wlid)) &
	                    bit) == bit;
}

void
az_handle_check(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, ID_MAX},
	    {"permission", SS_F_STR, true, 1, PERM_MAX},
	    {"worklist", SS_F_STR, true, 1, WL_MAX},
	};
	const msgpack_object *f[3];
	char user[ID_MAX + 1];
	const az_dir *dir;
	ss_pack *p;
	bool ok;

	if (az_parse(c, body, spec, 3, f) != 0 ||
	    (dir = az_dir_or_reply(arg, c)) == NULL)
		return;
	cstr(f[0], user, sizeof user);
	ok = allowed(dir, user, f[1], f[2]);
	p = ss_call_reply_ok(c);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_bool(p, "allowed", ok);
	ss_call_reply_end(c);
}

void
az_handle_check_batch(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, ID_MAX},
	    {"checks", SS_F_ARRAY, true, 1, 256},
	};
	static const ss_field_spec item[] = {
	    {"permission", SS_F_STR, true, 1, PERM_MAX},
	    {"worklist", SS_F_STR, true, 1, WL_MAX},
	};
	const msgpack_object *f[2], *g[2];
	const msgpack_object_array *checks;
	char user[ID_MAX + 1], why[256];
	const az_dir *dir;
	ss_pack *p;

	if (az_parse(c, body, spec, 2, f) != 0)
		return;
	checks = &f[1]->via.array;
	for (uint32_t i = 0; i < checks->size; i++) {
		if (ss_fields_parse(&checks->ptr[i], item, 2, g, why,
		                    sizeof why) != 0) {
			char msg[300];
			snprintf(msg, sizeof msg, "checks[%u]: %s", i, why);
			ss_call_reply_err(c, SS_EBADREQ, msg);
			return;
		}
	}
	if ((dir = az_dir_or_reply(arg, c)) == NULL)
		return;
	cstr(f[0], user, sizeof user);
	p = ss_call_reply_ok(c);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, "results");
	msgpack_pack_array(&p->pk, checks->size);
	for (uint32_t i = 0; i < checks->size; i++) {
		(void)ss_fields_parse(&checks->ptr[i], item, 2, g, why,
		                      sizeof why);
		if (allowed(dir, user, g[0], g[1]))
			msgpack_pack_true(&p->pk);
		else
			msgpack_pack_false(&p->pk);
	}
	ss_call_reply_end(c);
}

static void
pack_perms(ss_pack *p, uint32_t perms)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < AZ_NPERMS; i++)
		n += (perms >> i) & 1;
	msgpack_pack_array(&p->pk, n);
	for (unsigned i = 0; i < AZ_NPERMS; i++) {
		if (perms & (1u << i))
			ss_pack_cstr(p, az_perm_name(i));
	}
}

static void
pack_worklist(ss_pack *p, const az_worklist *wl, const az_user *u,
              bool with_code)
{
	const az_member *m = ss_strmap_gets(u->members, wl->id);

	msgpack_pack_map(&p->pk, with_code ? 7 : 6);
	ss_pack_kv_cstr(p, "id", wl->id);
	ss_pack_kv_cstr(p, "kind", az_wl_kind_name(wl->kind));
	ss_pack_kv_cstr(p, "name", wl->name);
	ss_pack_kv_cstr(p, "organisation", wl->org ? wl->org->id : NULL);
	ss_pack_kv_cstr(p, "role", m->role->id);
	ss_pack_key(p, "permissions");
	pack_perms(p, m->role->perms);
	if (with_code)
		ss_pack_kv_cstr(p, "share_code", wl->code[0] ? wl->code : NULL);
}

void
az_handle_worklist_get(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, ID_MAX},
	    {"worklist", SS_F_STR, true, 1, WL_MAX},
	};
	const msgpack_object *f[2];
	char user[ID_MAX + 1], wlid[WL_MAX + 1];
	const az_worklist *wl;
	const az_user *u;
	const az_dir *dir;
	ss_pack *p;

	if (az_parse(c, body, spec, 2, f) != 0 ||
	    (dir = az_dir_or_reply(arg, c)) == NULL)
		return;
	cstr(f[0], user, sizeof user);
	cstr(f[1], wlid, sizeof wlid);
	u = az_dir_user(dir, user);
	wl = az_dir_worklist(dir, wlid);
	/* Members only; to anyone else the worklist does not exist. */
	if (u == NULL || wl == NULL || !u->active ||
	    ss_strmap_gets(u->members, wl->id) == NULL) {
		ss_call_reply_err(c, SS_ENOTFOUND, "no such worklist");
		return;
	}
	p = ss_call_reply_ok(c);
	pack_worklist(p, wl, u, true);
	ss_call_reply_end(c);
}

typedef struct wl_list {
	const az_worklist **wl;
	uint32_t n;
} wl_list;

static void
each_member(const char *key, void *val, void *arg)
{
	const az_member *m = val;
	wl_list *l = arg;

	(void)key;
	l->wl[l->n++] = m->wl;
}

/* Kind order (organisation, location, group, user), then id: the same
 * list on every replica and after every restart (the map's order is
 * neither), so a client's first worklist stays the same. */
static int
by_kind_then_id(const void *a, const void *b)
{
	const az_worklist *x = *(const az_worklist *const *)a;
	const az_worklist *y = *(const az_worklist *const *)b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->id, y->id);
}

void
az_handle_worklists(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, ID_MAX},
	};
	char user[ID_MAX + 1];
	const az_dir *dir;
	const az_user *u;
	wl_list l = {0};
	ss_pack *p;

	if ((dir = one_field(c, body, arg, spec, user, sizeof user)) == NULL)
		return;
	if ((u = az_dir_user(dir, user)) == NULL || !u->active) {
		ss_call_reply_err(c, SS_ENOTFOUND, "no such user");
		return;
	}
	if ((l.wl = calloc(ss_strmap_len(u->members) + 1, sizeof *l.wl)) ==
	    NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	ss_strmap_each(u->members, each_member, &l);
	qsort(l.wl, l.n, sizeof *l.wl, by_kind_then_id);
	p = ss_call_reply_ok(c);
	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, "worklists");
	msgpack_pack_array(&p->pk, l.n);
	for (uint32_t i = 0; i < l.n; i++)
		pack_worklist(p, l.wl[i], u, true);
	ss_call_reply_end(c);
	free(l.wl);
}

void
az_handle_user_get(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, ID_MAX},
	};
	char user[ID_MAX + 1];
	const az_dir *dir;
	const az_user *u;
	ss_pack *p;

	if ((dir = one_field(c, body, arg, spec, user, sizeof user)) == NULL)
		return;
	if ((u = az_dir_user(dir, user)) == NULL) {
		ss_call_reply_err(c, SS_ENOTFOUND, "no such user");
		return;
	}
	p = ss_call_reply_ok(c);
	msgpack_pack_map(&p->pk, 7);
	ss_pack_kv_cstr(p, "id", u->id);
	ss_pack_kv_cstr(p, "name", u->name);
	ss_pack_kv_cstr(p, "email", u->email);
	ss_pack_kv_cstr(p, "organisation", u->org ? u->org->id : NULL);
	/* for mails: "Alice Adams (St Elsewhere)" */
	ss_pack_kv_cstr(p, "organisation_name", u->org ? u->org->name : NULL);
	ss_pack_kv_bool(p, "active", u->active);
	ss_pack_kv_bool(p, "registered", u->registered);
	ss_call_reply_end(c);
}

/* For services (share's ingest, guestlink): does a worklist exist, and
 * what is it?  No user: it reveals only what the caller names. */
void
az_handle_worklist_info(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"worklist", SS_F_STR, true, 1, WL_MAX},
	};
	char wlid[WL_MAX + 1];
	const az_worklist *wl;
	const az_dir *dir;
	ss_pack *p;

	if ((dir = one_field(c, body, arg, spec, wlid, sizeof wlid)) == NULL)
		return;
	if ((wl = az_dir_worklist(dir, wlid)) == NULL) {
		ss_call_reply_err(c, SS_ENOTFOUND, "no such worklist");
		return;
	}
	p = ss_call_reply_ok(c);
	msgpack_pack_map(&p->pk, 4);
	ss_pack_kv_cstr(p, "id", wl->id);
	ss_pack_kv_cstr(p, "kind", az_wl_kind_name(wl->kind));
	ss_pack_kv_cstr(p, "name", wl->name);
	ss_pack_kv_cstr(p, "organisation", wl->org ? wl->org->id : NULL);
	ss_call_reply_end(c);
}
