/*
 * services/authz/directory.c - see directory.h.
 *
 * The parsed JSON tree stays alive inside the az_dir: every const char *
 * of the model points into it, so a snapshot is one tree plus indexes.
 * Parsing goes in dependency order (roles, organisations, locations,
 * groups, users) so each reference can be checked when it is read.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/utf8.h"
#include "services/authz/directory.h"
#include "services/authz/perm.h"

typedef struct ptrvec {
	void **v;
	size_t n, cap;
} ptrvec;

struct az_dir {
	json_t *root;
	json_t *registered; /* array of objects owning registered accounts */
	ptrvec roles, orgs, worklists, users;
	ss_strmap *role_ix, *org_ix, *wl_ix, *user_ix, *email_ix, *code_ix;
	az_role view_only;
	const az_role *registration_role;
};

static int
vec_push(ptrvec *pv, void *p)
{
	if (pv->n == pv->cap) {
		size_t cap = pv->cap ? pv->cap * 2 : 16;
		void **v = realloc(pv->v, cap * sizeof *v);
		if (v == NULL)
			return SS_ENOMEM;
		pv->v = v;
		pv->cap = cap;
	}
	pv->v[pv->n++] = p;
	return 0;
}

static int
fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return SS_EBADREQ;
}

bool
az_valid_id(const char *s, size_t len)
{
	if (len == 0 || len > AZ_MAX_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static bool
valid_name(const char *s, size_t len)
{
	/* What a stored directory may hold (a name imported before the
	 * stricter rule of az_dir_text_check must still load): no C0, no
	 * DEL.  New documents also pass az_dir_text_check. */
	if (len == 0 || len > AZ_MAX_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

int
az_dir_text_check(const az_dir *d, char *why, size_t whylen)
{
	static const char rule[] =
	    "field \"name\" has control or direction characters";

	for (size_t i = 0; i < d->orgs.n; i++) {
		const az_org *o = d->orgs.v[i];
		if (!ss_text_valid(o->name, strlen(o->name), 0))
			return fail(why, whylen, "organisation \"%s\": %s",
			            o->id, rule);
	}
	for (size_t i = 0; i < d->worklists.n; i++) {
		const az_worklist *w = d->worklists.v[i];
		if (w->name != NULL &&
		    !ss_text_valid(w->name, strlen(w->name), 0))
			return fail(why, whylen, "%s: %s",
			            w->entry != NULL ? w->entry : w->id, rule);
	}
	for (size_t i = 0; i < d->users.n; i++) {
		const az_user *u = d->users.v[i];
		if (!ss_text_valid(u->name, strlen(u->name), 0))
			return fail(why, whylen, "user \"%s\": %s", u->id,
			            rule);
	}
	return 0;
}

int
az_email_key(const char *email, size_t len, char *out)
{
	const char *at = memchr(email, '@', len);

	if (len < 3 || len > AZ_MAX_EMAIL_LEN || at == NULL || at == email ||
	    at == email + len - 1 || memchr(at + 1, '@', email + len - at - 1))
		return SS_EBADREQ;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)email[i];
		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' ||
		    c == ',' || c == ';' || c == '"')
			return SS_EBADREQ;
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
}

const char *
az_wl_kind_name(az_wl_kind k)
{
	static const char *const names[] = {"organisation", "location", "group",
	                                    "user"};
	return names[k];
}

/* Checks that obj has only the allowed keys. */
static int
check_keys(json_t *obj, const char *const *allowed, const char *entry,
           char *why, size_t whylen)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		size_t i;
		for (i = 0; allowed[i] != NULL; i++) {
			if (strcmp(k, allowed[i]) == 0)
				break;
		}
		if (allowed[i] == NULL)
			return fail(why, whylen, "%s: unknown field \"%s\"",
			            entry, k);
	}
	return 0;
}

/* A required or optional string field, bounded by its kind. */
enum strkind { S_ID, S_NAME, S_ANY };

static int
get_str(json_t *obj, const char *key, bool required, enum strkind kind,
        const char *entry, const char **out, char *why, size_t whylen)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t len;

	*out = NULL;
	if (v == NULL) {
		if (required)
			return fail(why, whylen, "%s: missing field \"%s\"",
			            entry, key);
		return 0;
	}
	if (!json_is_string(v))
		return fail(why, whylen, "%s: field \"%s\" must be a string",
		            entry, key);
	s = json_string_value(v);
	len = json_string_length(v);
	if (strlen(s) != len)
		return fail(why, whylen, "%s: field \"%s\" contains NUL", entry,
		            key);
	if (kind == S_ID && !az_valid_id(s, len))
		return fail(why, whylen,
		            "%s: field \"%s\" must be 1-64 characters of "
		            "A-Z a-z 0-9 . _ -",
		            entry, key);
	if (kind == S_NAME && !valid_name(s, len))
		return fail(
		    why, whylen,
		    "%s: field \"%s\" must be 1-200 printable characters",
		    entry, key);
	*out = s;
	return 0;
}

static int
get_array(json_t *obj, const char *key, const char *entry, json_t **out,
          char *why, size_t whylen)
{
	json_t *v = json_object_get(obj, key);

	*out = v;
	if (v != NULL && !json_is_array(v))
		return fail(why, whylen, "%s: field \"%s\" must be an array",
		            entry, key);
	return 0;
}

/* Creates the worklist of an entity and indexes it. */
static int
add_worklist(az_dir *d, az_wl_kind kind, const char *id, const char *name,
             const az_org *org, const char *entry, az_worklist **out, char *why,
             size_t whylen)
{
	az_worklist *wl = calloc(1, sizeof *wl);
	int rv;

	if (wl == NULL)
		return SS_ENOMEM;
	snprintf(wl->id, sizeof wl->id, "%s:%s", az_wl_kind_name(kind), id);
	wl->kind = kind;
	wl->name = name;
	wl->org = org;
	wl->entry = entry;
	if ((rv = vec_push(&d->worklists, wl)) != 0) {
		free(wl);
		return rv;
	}
	if (ss_strmap_gets(d->wl_ix, wl->id) != NULL)
		return fail(why, whylen, "%s: duplicate id \"%s\"", entry, id);
	if ((rv = ss_strmap_put(d->wl_ix, wl->id, strlen(wl->id), wl)) != 0)
		return rv;
	*out = wl;
	return 0;
}

/* An explicit share code given in the document. */
static int
fixed_code(az_dir *d, json_t *obj, az_worklist *wl, char *why, size_t whylen)
{
	const char *s;
	az_worklist *other;
	int rv;

	if ((rv = get_str(obj, "share_code", false, S_ANY, wl->entry, &s, why,
	                  whylen)) != 0 ||
	    s == NULL)
		return rv;
	if (az_code_norm(s, strlen(s), wl->code) != 0)
		return fail(why, whylen,
		            "%s: share_code \"%s\" is not 8 characters of "
		            "Crockford base32",
		            wl->entry, s);
	wl->code_fixed = true;
	if ((other = ss_strmap_gets(d->code_ix, wl->code)) != NULL)
		return fail(why, whylen,
		            "%s: share_code %s is already used by %s",
		            wl->entry, wl->code, other->entry);
	return ss_strmap_put(d->code_ix, wl->code, AZ_CODE_LEN, wl);
}

/* Entry labels live as long as the tree: keep them in it. */
static const char *
label(az_dir *d, const char *section, size_t i, const char *id)
{
	char buf[AZ_MAX_ID_LEN + 64];
	json_t *labels = json_object_get(d->root, " labels");
	json_t *s;

	if (id != NULL)
		snprintf(buf, sizeof buf, "%s[%zu] (\"%s\")", section, i, id);
	else
		snprintf(buf, sizeof buf, "%s[%zu]", section, i);
	if (labels == NULL) {
		labels = json_array();
		json_object_set_new(d->root, " labels", labels);
	}
	s = json_string(buf);
	json_array_append_new(labels, s);
	return json_string_value(s);
}

static int
parse_roles(az_dir *d, json_t *arr, char *why, size_t whylen)
{
	static const char *const keys[] = {"id", "permissions", NULL};
	size_t i;
	json_t *o;
	int rv;

	json_array_foreach(arr, i, o)
	{
		const char *entry = label(d, "roles", i, NULL), *id;
		json_t *perms, *p;
		size_t j;
		az_role *r;

		if (!json_is_object(o))
			return fail(why, whylen, "%s: must be an object",
			            entry);
		if ((rv = get_str(o, "id", true, S_ID, entry, &id, why,
		                  whylen)) != 0)
			return rv;
		entry = label(d, "roles", i, id);
		if ((rv = check_keys(o, keys, entry, why, whylen)) != 0 ||
		    (rv = get_array(o, "permissions", entry, &perms, why,
		                    whylen)) != 0)
			return rv;
		if (ss_strmap_gets(d->role_ix, id) != NULL)
			return fail(why, whylen, "%s: duplicate id", entry);
		if ((r = calloc(1, sizeof *r)) == NULL)
			return SS_ENOMEM;
		r->id = id;
		if ((rv = vec_push(&d->roles, r)) != 0) {
			free(r);
			return rv;
		}
		json_array_foreach(perms, j, p)
		{
			uint32_t bit = 0;
			if (json_is_string(p))
				bit = az_perm_parse(json_string_value(p),
				                    json_string_length(p));
			if (bit == 0)
				return fail(
				    why, whylen,
				    "%s: permissions[%zu]: unknown "
				    "permission %s%s%s",
				    entry, j, json_is_string(p) ? "\"" : "",
				    json_is_string(p) ? json_string_value(p)
				                      : "(not a string)",
				    json_is_string(p) ? "\"" : "");
			r->perms |= bit;
		}
		if ((rv = ss_strmap_put(d->role_ix, id, strlen(id), r)) != 0)
			return rv;
	}
	return 0;
}

static int
parse_orgs(az_dir *d, json_t *arr, char *why, size_t whylen)
{
	static const char *const keys[] = {"id", "name", "shares_with",
	                                   "share_code", NULL};
	size_t i, j;
	json_t *o, *s;
	int rv;

	json_array_foreach(arr, i, o)
	{
		const char *entry = label(d, "organisations", i, NULL), *id,
		           *name;
		az_org *org;
		az_worklist *wl;

		if (!json_is_object(o))
			return fail(why, whylen, "%s: must be an object",
			            entry);
		if ((rv = get_str(o, "id", true, S_ID, entry, &id, why,
		                  whylen)) != 0)
			return rv;
		entry = label(d, "organisations", i, id);
		if ((rv = check_keys(o, keys, entry, why, whylen)) != 0 ||
		    (rv = get_str(o, "name", true, S_NAME, entry, &name, why,
		                  whylen)) != 0)
			return rv;
		if (ss_strmap_gets(d->org_ix, id) != NULL)
			return fail(why, whylen, "%s: duplicate id", entry);
		if ((org = calloc(1, sizeof *org)) == NULL)
			return SS_ENOMEM;
		org->id = id;
		org->name = name;
		if ((rv = vec_push(&d->orgs, org)) != 0) {
			free(org);
			return rv;
		}
		if ((org->shares_with = ss_strmap_new()) == NULL)
			return SS_ENOMEM;
		if ((rv = ss_strmap_put(d->org_ix, id, strlen(id), org)) != 0 ||
		    (rv = add_worklist(d, AZ_WL_ORGANISATION, id, name, org,
		                       entry, &wl, why, whylen)) != 0 ||
		    (rv = fixed_code(d, o, wl, why, whylen)) != 0)
			return rv;
	}
	/* Agreements may name organisations listed later: a second pass. */
	json_array_foreach(arr, i, o)
	{
		az_org *org = d->orgs.v[i];
		const char *entry = label(d, "organisations", i, org->id);
		json_t *with;

		if ((rv = get_array(o, "shares_with", entry, &with, why,
		                    whylen)) != 0)
			return rv;
		json_array_foreach(with, j, s)
		{
			az_org *other =
			    json_is_string(s)
			        ? ss_strmap_gets(d->org_ix,
			                         json_string_value(s))
			        : NULL;
			if (other == NULL)
				return fail(why, whylen,
				            "%s: shares_with[%zu]: unknown "
				            "organisation",
				            entry, j);
			if (other == org)
				return fail(
				    why, whylen,
				    "%s: shares_with[%zu]: an organisation "
				    "cannot share with itself",
				    entry, j);
			if ((rv = ss_strmap_put(org->shares_with, other->id,
			                        strlen(other->id), other)) != 0)
				return rv;
		}
	}
	return 0;
}

/* Locations and groups: the same shape. */
static int
parse_places(az_dir *d, json_t *arr, const char *section, az_wl_kind kind,
             char *why, size_t whylen)
{
	static const char *const keys[] = {"id", "organisation", "name",
	                                   "share_code", NULL};
	size_t i;
	json_t *o;
	int rv;

	json_array_foreach(arr, i, o)
	{
		const char *entry = label(d, section, i, NULL), *id, *orgid,
		           *name;
		const az_org *org;
		az_worklist *wl;

		if (!json_is_object(o))
			return fail(why, whylen, "%s: must be an object",
			            entry);
		if ((rv = get_str(o, "id", true, S_ID, entry, &id, why,
		                  whylen)) != 0)
			return rv;
		entry = label(d, section, i, id);
		if ((rv = check_keys(o, keys, entry, why, whylen)) != 0 ||
		    (rv = get_str(o, "organisation", true, S_ID, entry, &orgid,
		                  why, whylen)) != 0 ||
		    (rv = get_str(o, "name", true, S_NAME, entry, &name, why,
		                  whylen)) != 0)
			return rv;
		if ((org = ss_strmap_gets(d->org_ix, orgid)) == NULL)
			return fail(why, whylen,
			            "%s: unknown organisation \"%s\"", entry,
			            orgid);
		if ((rv = add_worklist(d, kind, id, name, org, entry, &wl, why,
		                       whylen)) != 0 ||
		    (rv = fixed_code(d, o, wl, why, whylen)) != 0)
			return rv;
	}
	return 0;
}

static int
new_user(az_dir *d, const char *id, const char *name, const char *email,
         const az_org *org, const az_role *personal_role, const char *entry,
         az_user **out, char *why, size_t whylen)
{
	az_user *u = calloc(1, sizeof *u);
	az_member *m;
	int rv;

	if (u == NULL)
		return SS_ENOMEM;
	if ((rv = vec_push(&d->users, u)) != 0) {
		free(u);
		return rv;
	}
	u->id = id;
	u->name = name;
	u->email = email;
	u->org = org;
	u->active = true;
	if ((u->members = ss_strmap_new()) == NULL ||
	    (u->email_key = malloc(AZ_MAX_EMAIL_LEN + 1)) == NULL)
		return SS_ENOMEM;
	if (az_email_key(email, strlen(email), u->email_key) != 0)
		return fail(why, whylen, "%s: \"%s\" is not an email address",
		            entry, email);
	if (ss_strmap_gets(d->user_ix, id) != NULL)
		return fail(why, whylen, "%s: duplicate id", entry);
	if (ss_strmap_gets(d->email_ix, u->email_key) != NULL)
		return fail(
		    why, whylen,
		    "%s: email is already used by user "
		    "\"%s\"",
		    entry,
		    ((az_user *)ss_strmap_gets(d->email_ix, u->email_key))->id);
	if ((rv = ss_strmap_put(d->user_ix, id, strlen(id), u)) != 0 ||
	    (rv = ss_strmap_put(d->email_ix, u->email_key, strlen(u->email_key),
	                        u)) != 0 ||
	    (rv = add_worklist(d, AZ_WL_USER, id, name, org, entry,
	                       &u->personal, why, whylen)) != 0)
		return rv;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return SS_ENOMEM;
	m->wl = u->personal;
	m->role = personal_role;
	if ((rv = ss_strmap_put(u->members, u->personal->id,
	                        strlen(u->personal->id), m)) != 0) {
		free(m);
		return rv;
	}
	*out = u;
	return 0;
}

static int
parse_members(az_dir *d, az_user *u, json_t *arr, const char *entry, char *why,
              size_t whylen)
{
	static const char *const keys[] = {"worklist", "role", NULL};
	size_t i;
	json_t *o;
	int rv;

	json_array_foreach(arr, i, o)
	{
		char sub[AZ_MAX_ID_LEN + 96];
		const char *wlid, *roleid;
		const az_worklist *wl;
		const az_role *role;
		az_member *m;

		snprintf(sub, sizeof sub, "%s: memberships[%zu]", entry, i);
		if (!json_is_object(o))
			return fail(why, whylen, "%s: must be an object", sub);
		if ((rv = check_keys(o, keys, sub, why, whylen)) != 0 ||
		    (rv = get_str(o, "worklist", true, S_ANY, sub, &wlid, why,
		                  whylen)) != 0 ||
		    (rv = get_str(o, "role", true, S_ID, sub, &roleid, why,
		                  whylen)) != 0)
			return rv;
		if ((wl = ss_strmap_gets(d->wl_ix, wlid)) == NULL)
			return fail(why, whylen, "%s: unknown worklist \"%s\"",
			            sub, wlid);
		if ((role = ss_strmap_gets(d->role_ix, roleid)) == NULL)
			return fail(why, whylen, "%s: unknown role \"%s\"", sub,
			            roleid);
		if (ss_strmap_gets(u->members, wlid) != NULL)
			return fail(why, whylen,
			            "%s: a second membership of \"%s\"", sub,
			            wlid);
		if ((m = calloc(1, sizeof *m)) == NULL)
			return SS_ENOMEM;
		m->wl = wl;
		m->role = role;
		if ((rv = ss_strmap_put(u->members, wlid, strlen(wlid), m)) !=
		    0) {
			free(m);
			return rv;
		}
	}
	return 0;
}

static int
parse_users(az_dir *d, json_t *arr, char *why, size_t whylen)
{
	static const char *const keys[] = {"id",          "organisation",
	                                   "email",       "name",
	                                   "password",    "personal_role",
	                                   "memberships", "share_code",
	                                   "active",      NULL};
	size_t i;
	json_t *o;
	int rv;

	json_array_foreach(arr, i, o)
	{
		const char *entry = label(d, "users", i, NULL), *id, *orgid,
		           *email, *name, *pw, *roleid;
		const az_role *role = &d->view_only;
		const az_org *org;
		json_t *members, *active;
		az_user *u;

		if (!json_is_object(o))
			return fail(why, whylen, "%s: must be an object",
			            entry);
		if ((rv = get_str(o, "id", true, S_ID, entry, &id, why,
		                  whylen)) != 0)
			return rv;
		entry = label(d, "users", i, id);
		if ((rv = check_keys(o, keys, entry, why, whylen)) != 0 ||
		    (rv = get_str(o, "organisation", true, S_ID, entry, &orgid,
		                  why, whylen)) != 0 ||
		    (rv = get_str(o, "email", true, S_ANY, entry, &email, why,
		                  whylen)) != 0 ||
		    (rv = get_str(o, "name", true, S_NAME, entry, &name, why,
		                  whylen)) != 0 ||
		    (rv = get_str(o, "password", false, S_ANY, entry, &pw, why,
		                  whylen)) != 0 ||
		    (rv = get_str(o, "personal_role", false, S_ID, entry,
		                  &roleid, why, whylen)) != 0 ||
		    (rv = get_array(o, "memberships", entry, &members, why,
		                    whylen)) != 0)
			return rv;
		if ((org = ss_strmap_gets(d->org_ix, orgid)) == NULL)
			return fail(why, whylen,
			            "%s: unknown organisation \"%s\"", entry,
			            orgid);
		if (roleid != NULL &&
		    (role = ss_strmap_gets(d->role_ix, roleid)) == NULL)
			return fail(why, whylen,
			            "%s: unknown personal_role \"%s\"", entry,
			            roleid);
		if (pw != NULL && (strlen(pw) < AZ_MIN_PASSWORD ||
		                   strlen(pw) > AZ_MAX_PASSWORD))
			return fail(why, whylen,
			            "%s: password must be 8-1024 characters",
			            entry);
		active = json_object_get(o, "active");
		if (active != NULL && !json_is_boolean(active))
			return fail(
			    why, whylen,
			    "%s: field \"active\" must be true or false",
			    entry);
		if ((rv = new_user(d, id, name, email, org, role, entry, &u,
		                   why, whylen)) != 0 ||
		    (rv = fixed_code(d, o, u->personal, why, whylen)) != 0)
			return rv;
		u->password = pw;
		u->active = active == NULL || json_is_true(active);
	}
	/* Memberships may name any user's worklist: a second pass. */
	json_array_foreach(arr, i, o)
	{
		az_user *u = d->users.v[i];
		json_t *members = json_object_get(o, "memberships");

		if ((rv = parse_members(d, u, members,
		                        label(d, "users", i, u->id), why,
		                        whylen)) != 0)
			return rv;
	}
	return 0;
}

static az_dir *
dir_new(void)
{
	az_dir *d = calloc(1, sizeof *d);

	if (d == NULL)
		return NULL;
	d->view_only.id = "(view only)";
	d->view_only.perms = AZ_STUDIES_VIEW;
	d->registration_role = &d->view_only;
	d->registered = json_array();
	d->role_ix = ss_strmap_new();
	d->org_ix = ss_strmap_new();
	d->wl_ix = ss_strmap_new();
	d->user_ix = ss_strmap_new();
	d->email_ix = ss_strmap_new();
	d->code_ix = ss_strmap_new();
	if (d->registered == NULL || !d->role_ix || !d->org_ix || !d->wl_ix ||
	    !d->user_ix || !d->email_ix || !d->code_ix) {
		az_dir_free(d);
		return NULL;
	}
	return d;
}

int
az_dir_parse(const char *json, size_t len, az_dir **out, char *why,
             size_t whylen)
{
	static const char *const keys[] = {
	    "organisations",     "roles", "locations", "groups", "users",
	    "registration_role", NULL};
	json_error_t jerr;
	json_t *sec[5];
	static const char *const names[5] = {"roles", "organisations",
	                                     "locations", "groups", "users"};
	const char *regrole;
	az_dir *d;
	int rv;

	*out = NULL;
	if ((d = dir_new()) == NULL)
		return SS_ENOMEM;
	d->root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (d->root == NULL) {
		rv = fail(why, whylen, "not JSON: %s at line %d column %d",
		          jerr.text, jerr.line, jerr.column);
		goto fail;
	}
	if (!json_is_object(d->root)) {
		rv = fail(why, whylen, "the document must be a JSON object");
		goto fail;
	}
	if ((rv = check_keys(d->root, keys, "document", why, whylen)) != 0)
		goto fail;
	for (int i = 0; i < 5; i++) {
		if ((rv = get_array(d->root, names[i], "document", &sec[i], why,
		                    whylen)) != 0)
			goto fail;
	}
	if ((rv = parse_roles(d, sec[0], why, whylen)) != 0 ||
	    (rv = parse_orgs(d, sec[1], why, whylen)) != 0 ||
	    (rv = parse_places(d, sec[2], "locations", AZ_WL_LOCATION, why,
	                       whylen)) != 0 ||
	    (rv = parse_places(d, sec[3], "groups", AZ_WL_GROUP, why,
	                       whylen)) != 0 ||
	    (rv = parse_users(d, sec[4], why, whylen)) != 0)
		goto fail;
	if ((rv = get_str(d->root, "registration_role", false, S_ID, "document",
	                  &regrole, why, whylen)) != 0)
		goto fail;
	if (regrole != NULL && (d->registration_role = ss_strmap_gets(
	                            d->role_ix, regrole)) == NULL) {
		rv = fail(why, whylen,
		          "document: registration_role: unknown role \"%s\"",
		          regrole);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	az_dir_free(d);
	return rv == SS_ENOMEM ? fail(why, whylen, "out of memory"),
	       SS_ENOMEM       : rv;
}

static void
free_member(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	free(val);
}

void
az_dir_free(az_dir *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->users.n; i++) {
		az_user *u = d->users.v[i];
		if (u->members != NULL)
			ss_strmap_each(u->members, free_member, NULL);
		ss_strmap_free(u->members);
		free(u->email_key);
		free(u);
	}
	for (size_t i = 0; i < d->orgs.n; i++) {
		az_org *o = d->orgs.v[i];
		ss_strmap_free(o->shares_with);
		free(o);
	}
	for (size_t i = 0; i < d->roles.n; i++)
		free(d->roles.v[i]);
	for (size_t i = 0; i < d->worklists.n; i++)
		free(d->worklists.v[i]);
	free(d->users.v);
	free(d->orgs.v);
	free(d->roles.v);
	free(d->worklists.v);
	ss_strmap_free(d->role_ix);
	ss_strmap_free(d->org_ix);
	ss_strmap_free(d->wl_ix);
	ss_strmap_free(d->user_ix);
	ss_strmap_free(d->email_ix);
	ss_strmap_free(d->code_ix);
	json_decref(d->registered);
	json_decref(d->root);
	free(d);
}

char *
az_dir_canonical(const az_dir *d)
{
	json_t *copy = json_deep_copy(d->root), *users, *u;
	char *s;
	size_t i;

	if (copy == NULL)
		return NULL;
	json_object_del(copy, " labels");
	users = json_object_get(copy, "users");
	json_array_foreach(users, i, u) json_object_del(u, "password");
	s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	return s;
}

int
az_dir_add_registered(az_dir *d, const char *id, const char *name,
                      const char *email)
{
	char why[256], key[AZ_MAX_EMAIL_LEN + 1];
	json_t *o;
	az_user *u;
	int rv;

	if (!az_valid_id(id, strlen(id)) || !valid_name(name, strlen(name)) ||
	    az_email_key(email, strlen(email), key) != 0)
		return SS_EBADREQ;
	if (ss_strmap_gets(d->user_ix, id) != NULL ||
	    ss_strmap_gets(d->email_ix, key) != NULL)
		return SS_ECONFLICT;
	o = json_pack("{s:s, s:s, s:s}", "id", id, "name", name, "email",
	              email);
	if (o == NULL || json_array_append_new(d->registered, o) != 0)
		return SS_ENOMEM;
	rv = new_user(d, json_string_value(json_object_get(o, "id")),
	              json_string_value(json_object_get(o, "name")),
	              json_string_value(json_object_get(o, "email")), NULL,
	              d->registration_role, "registered account", &u, why,
	              sizeof why);
	if (rv != 0)
		return rv == SS_EBADREQ ? SS_ECONFLICT : rv;
	u->registered = true;
	return 0;
}

int
az_dir_set_code(az_dir *d, const char *wlid, const char *code)
{
	az_worklist *wl = ss_strmap_gets(d->wl_ix, wlid);
	az_worklist *other;
	int rv;

	if (wl == NULL)
		return SS_ENOTFOUND;
	if (strlen(code) != AZ_CODE_LEN)
		return SS_EBADREQ;
	other = ss_strmap_gets(d->code_ix, code);
	if (other != NULL && other != wl)
		return SS_ECONFLICT;
	/* The map has no delete: a NULL value frees the replaced code. */
	if (wl->code[0] != '\0' && strcmp(wl->code, code) != 0 &&
	    (rv = ss_strmap_put(d->code_ix, wl->code, AZ_CODE_LEN, NULL)) != 0)
		return rv;
	memcpy(wl->code, code, AZ_CODE_LEN + 1);
	return ss_strmap_put(d->code_ix, wl->code, AZ_CODE_LEN, wl);
}

const az_user *
az_dir_user(const az_dir *d, const char *id)
{
	return ss_strmap_gets(d->user_ix, id);
}

const az_user *
az_dir_user_by_email(const az_dir *d, const char *email)
{
	char key[AZ_MAX_EMAIL_LEN + 1];

	if (az_email_key(email, strlen(email), key) != 0)
		return NULL;
	return ss_strmap_gets(d->email_ix, key);
}

const az_worklist *
az_dir_worklist(const az_dir *d, const char *id)
{
	return ss_strmap_gets(d->wl_ix, id);
}

const az_worklist *
az_dir_worklist_by_code(const az_dir *d, const char *code)
{
	char norm[AZ_CODE_LEN + 1];

	if (az_code_norm(code, strlen(code), norm) != 0)
		return NULL;
	return ss_strmap_gets(d->code_ix, norm);
}

const az_org *
az_dir_org(const az_dir *d, const char *id)
{
	return ss_strmap_gets(d->org_ix, id);
}

const az_role *
az_dir_registration_role(const az_dir *d)
{
	return d->registration_role;
}

uint32_t
az_dir_perms(const az_user *u, const az_worklist *wl)
{
	const az_member *m;

	if (u == NULL || wl == NULL || !u->active)
		return 0;
	m = ss_strmap_gets(u->members, wl->id);
	return m != NULL && m->wl == wl ? m->role->perms : 0;
}

size_t
az_dir_nusers(const az_dir *d)
{
	return d->users.n;
}

const az_user *
az_dir_user_at(const az_dir *d, size_t i)
{
	return i < d->users.n ? d->users.v[i] : NULL;
}

size_t
az_dir_nworklists(const az_dir *d)
{
	return d->worklists.n;
}

az_worklist *
az_dir_worklist_at(const az_dir *d, size_t i)
{
	return i < d->worklists.n ? d->worklists.v[i] : NULL;
}

size_t
az_dir_norgs(const az_dir *d)
{
	return d->orgs.n;
}
