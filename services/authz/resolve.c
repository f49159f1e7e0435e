/*
 * services/authz/resolve.c - where may this user share a study to?
 *
 * authz.resolve turns share targets into worklists and decides each one:
 * the permissions on the worklist shared from (studies.view, studies.share
 * and the target kind's permission) and the organisation rules of API.md:
 *   organisation  an agreement (shares_with), or the sharer's own
 *   location, group, user  the sharer's organisation only
 *   share_code    any worklist of any organisation
 *   email         an active account's personal worklist, or an invitation
 *                 (not to an inactive account's address: it cannot
 *                 register)
 * Every target gets its own answer; the caller refuses the whole share if
 * any is not ok.
 */
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "services/authz/authz.h"
#include "services/authz/perm.h"

typedef struct verdict {
	int err; /* 0 or SS_E* */
	char msg[640];
	const az_worklist *wl; /* ok, delivered to */
	bool invite;           /* ok, by email invitation */
	char email[AZ_MAX_EMAIL_LEN + 1];
} verdict;

typedef struct target_kind {
	const char *name;
	const char *field; /* id, code or email */
	uint32_t perm;
} target_kind;

static const target_kind kinds[] = {
    {"organisation", "id", AZ_STUDIES_SHARE_ORGANISATIONS},
    {"location", "id", AZ_STUDIES_SHARE_LOCATIONS},
    {"group", "id", AZ_STUDIES_SHARE_GROUPS},
    {"user", "id", AZ_STUDIES_SHARE_USERS},
    {"share_code", "code", AZ_STUDIES_SHARE_CODE},
    {"email", "email", AZ_STUDIES_SHARE_EMAIL},
};

#define NKINDS (sizeof kinds / sizeof kinds[0])

static int
deny(verdict *v, int err, const char *fmt, const char *a, const char *b)
{
	v->err = err;
	snprintf(v->msg, sizeof v->msg, fmt, a, b);
	return err;
}

/* A worklist of kind k and id in the sharer's own organisation. */
static int
same_org(const az_dir *dir, const az_user *u, az_wl_kind k, const char *id,
         verdict *v)
{
	char wlid[AZ_MAX_WL_LEN + 1];

	snprintf(wlid, sizeof wlid, "%s:%.*s", az_wl_kind_name(k),
	         AZ_MAX_ID_LEN, id);
	if ((v->wl = az_dir_worklist(dir, wlid)) == NULL)
		return deny(v, SS_ENOTFOUND, "unknown %s \"%s\"",
		            az_wl_kind_name(k), id);
	if (k == AZ_WL_USER && !az_dir_user(dir, id)->active)
		return deny(v, SS_ENOTFOUND, "unknown %s \"%s\"",
		            az_wl_kind_name(k), id);
	if (u->org == NULL || v->wl->org != u->org)
		return deny(v, SS_EFORBIDDEN,
		            "%s \"%s\" belongs to another organisation",
		            az_wl_kind_name(k), id);
	return 0;
}

static int
decide(const az_dir *dir, const az_user *u, uint32_t perms,
       const target_kind *k, const char *val, verdict *v)
{
	const uint32_t need = AZ_STUDIES_VIEW | AZ_STUDIES_SHARE | k->perm;
	char wlid[AZ_MAX_WL_LEN + 1];
	const az_user *to;
	const az_org *org;

	if ((perms & need) != need)
		return deny(v, SS_EFORBIDDEN,
		            "sharing to a %s needs permission %s", k->name,
		            az_perm_name((unsigned)__builtin_ctz(
		                (need & ~perms) ? (need & ~perms) : need)));
	switch (k->perm) {
	case AZ_STUDIES_SHARE_ORGANISATIONS:
		if ((org = az_dir_org(dir, val)) == NULL)
			return deny(v, SS_ENOTFOUND,
			            "unknown organisation \"%s\"%s", val, "");
		if (org != u->org &&
		    (u->org == NULL ||
		     ss_strmap_gets(u->org->shares_with, org->id) == NULL))
			return deny(v, SS_EFORBIDDEN,
			            "no sharing agreement with organisation "
			            "\"%s\"%s",
			            val, "");
		snprintf(wlid, sizeof wlid, "organisation:%.*s", AZ_MAX_ID_LEN,
		         org->id);
		v->wl = az_dir_worklist(dir, wlid);
		return 0;
	case AZ_STUDIES_SHARE_LOCATIONS:
		return same_org(dir, u, AZ_WL_LOCATION, val, v);
	case AZ_STUDIES_SHARE_GROUPS:
		return same_org(dir, u, AZ_WL_GROUP, val, v);
	case AZ_STUDIES_SHARE_USERS:
		if (az_dir_user(dir, val) == NULL)
			return deny(v, SS_ENOTFOUND, "unknown user \"%s\"%s",
			            val, "");
		return same_org(dir, u, AZ_WL_USER, val, v);
	case AZ_STUDIES_SHARE_CODE:
		if ((v->wl = az_dir_worklist_by_code(dir, val)) == NULL)
			return deny(v, SS_ENOTFOUND, "unknown share code%s%s",
			            "", "");
		return 0;
	default: /* email */
		if (az_email_key(val, strlen(val), v->email) != 0)
			return deny(v, SS_EBADREQ,
			            "\"%s\" is not an email address%s", val,
			            "");
		to = az_dir_user_by_email(dir, val);
		/* An inactive account's address cannot register: an
		 * invitation to it could never be taken up. */
		if (to != NULL && !to->active)
			return deny(v, SS_ENOTFOUND,
			            "\"%s\" is the address of an inactive "
			            "account%s",
			            val, "");
		if (to != NULL)
			v->wl = to->personal;
		else
			v->invite = true;
		return 0;
	}
}

static int
parse_target(const msgpack_object *t, const target_kind **kind, char *val,
             size_t vlen, char *why, size_t whylen)
{
	const ss_field_spec spec[] = {
	    {"kind", SS_F_STR, true, 1, 32},
	    {"id", SS_F_STR, false, 1, AZ_MAX_ID_LEN},
	    {"code", SS_F_STR, false, 1, 32},
	    {"email", SS_F_STR, false, 1, AZ_MAX_EMAIL_LEN},
	};
	const msgpack_object *f[4];
	int rv;

	if ((rv = ss_fields_parse(t, spec, 4, f, why, whylen)) != 0)
		return rv;
	*kind = NULL;
	for (size_t i = 0; i < NKINDS; i++) {
		if (ss_obj_streq(f[0], kinds[i].name))
			*kind = &kinds[i];
	}
	if (*kind == NULL) {
		snprintf(why, whylen, "field 'kind': unknown target kind");
		return SS_EBADREQ;
	}
	for (size_t i = 1; i < 4; i++) {
		bool want = strcmp(spec[i].name, (*kind)->field) == 0;
		if (want != (f[i] != NULL)) {
			snprintf(why, whylen, "field '%s': %s for kind %s",
			         spec[i].name,
			         want ? "required" : "not allowed",
			         (*kind)->name);
			return SS_EBADREQ;
		}
		if (want)
			(void)ss_obj_strcpy(f[i], val, vlen);
	}
	return 0;
}

static void
pack_verdict(ss_pack *p, const target_kind *k, const verdict *v)
{
	if (v->err != 0) {
		msgpack_pack_map(&p->pk, 4);
		ss_pack_kv_bool(p, "ok", false);
		ss_pack_kv_cstr(p, "kind", k->name);
		ss_pack_kv_cstr(p, "code", ss_err_word(v->err));
		ss_pack_kv_cstr(p, "message", v->msg);
	} else if (v->invite) {
		msgpack_pack_map(&p->pk, 4);
		ss_pack_kv_bool(p, "ok", true);
		ss_pack_kv_cstr(p, "kind", k->name);
		ss_pack_kv_bool(p, "invite", true);
		ss_pack_kv_cstr(p, "email", v->email);
	} else {
		/* A code is matched however it was typed (sharecode.h);
		 * the sharer records the one form it has. */
		bool code = k->perm == AZ_STUDIES_SHARE_CODE;

		msgpack_pack_map(&p->pk, code ? 5 : 4);
		ss_pack_kv_bool(p, "ok", true);
		ss_pack_kv_cstr(p, "kind", k->name);
		ss_pack_kv_bool(p, "invite", false);
		ss_pack_kv_cstr(p, "worklist", v->wl->id);
		if (code)
			ss_pack_kv_cstr(p, "share_code", v->wl->code);
	}
}

int
az_resolve_check(const msgpack_object_array *ts, char *msg, size_t msglen)
{
	char why[256], val[AZ_MAX_EMAIL_LEN + 1];
	const target_kind *k;

	for (uint32_t i = 0; i < ts->size; i++) {
		if (parse_target(&ts->ptr[i], &k, val, sizeof val, why,
		                 sizeof why) != 0) {
			snprintf(msg, msglen, "targets[%u]: %s", i, why);
			return SS_EBADREQ;
		}
	}
	return 0;
}

void
az_resolve_pack(const az_dir *dir, const az_user *u, uint32_t perms,
                const msgpack_object_array *ts, ss_pack *p)
{
	char why[256], val[AZ_MAX_EMAIL_LEN + 1];
	const target_kind *k;

	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, "targets");
	msgpack_pack_array(&p->pk, ts->size);
	for (uint32_t i = 0; i < ts->size; i++) {
		verdict v = {0};
		(void)parse_target(&ts->ptr[i], &k, val, sizeof val, why,
		                   sizeof why);
		(void)decide(dir, u, perms, k, val, &v);
		pack_verdict(p, k, &v);
	}
}

void
az_handle_resolve(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, AZ_MAX_ID_LEN},
	    {"worklist", SS_F_STR, true, 1, AZ_MAX_WL_LEN},
	    {"targets", SS_F_ARRAY, true, 1, 100},
	};
	const msgpack_object *f[3];
	const msgpack_object_array *ts;
	char user[AZ_MAX_ID_LEN + 1], wlid[AZ_MAX_WL_LEN + 1], msg[300];
	const az_dir *dir;
	const az_user *u;
	uint32_t perms;

	if (az_parse(c, body, spec, 3, f) != 0)
		return;
	ts = &f[2]->via.array;
	if (az_resolve_check(ts, msg, sizeof msg) != 0) {
		ss_call_reply_err(c, SS_EBADREQ, msg);
		return;
	}
	if ((dir = az_dir_or_reply(arg, c)) == NULL)
		return;
	(void)ss_obj_strcpy(f[0], user, sizeof user);
	(void)ss_obj_strcpy(f[1], wlid, sizeof wlid);
	u = az_dir_user(dir, user);
	perms = az_dir_perms(u, az_dir_worklist(dir, wlid));
	if (perms == 0) {
		/* Not a member (or no such user or worklist): nothing to
		 * decide per target. */
		ss_call_reply_err(c, SS_EFORBIDDEN,
		                  "not a member of that worklist");
		return;
	}
	az_resolve_pack(dir, u, perms, ts, ss_call_reply_ok(c));
	ss_call_reply_end(c);
}
