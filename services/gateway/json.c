/*
 * services/gateway/json.c - request bodies: untrusted JSON with limits.
 *
 * Contract (gateway.h): a body is at most a configured number of bytes,
 * one JSON object without duplicate keys or NUL bytes in strings (jansson
 * refuses "\u0000" unless asked to allow it), and its fields are checked
 * against a table before anything is packed for a daemon: unknown fields,
 * missing ones, wrong types and values out of bounds are refused with a
 * message naming the field, in the words proto/README.md uses on the bus.
 * A body that passes has only the fields of its table, so a client can
 * never smuggle in a field the gateway sets itself ("user", "addr").
 */
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "services/gateway/gateway.h"

#define NAME_SHOWN 64 /* bytes of an unknown field's name in a message */

/* jansson names the key in its text, as it was written, when it is
 * short (2.14: up to 18 bytes): duplicate object key near '"message"'.
 * The key is shown as unknown ones are (at most NAME_SHOWN bytes;
 * gw_text mends a cut character); without a name the caller says where. */
static int
dup_key(const json_error_t *e, char *why, size_t whylen)
{
	const char *k = strstr(e->text, "near '\"");
	size_t n;

	if (k == NULL)
		return SS_EBADREQ;
	k += strlen("near '\"");
	n = strlen(k);
	if (n < 2 || k[n - 1] != '\'' || k[n - 2] != '"')
		return SS_EBADREQ;
	n -= 2;
	snprintf(why, whylen, "duplicate field '%.*s'",
	         (int)(n < NAME_SHOWN ? n : NAME_SHOWN), k);
	return 0;
}

int
gw_json_parse(const char *buf, size_t len, size_t cap, json_t **out, char *why,
              size_t whylen)
{
	json_error_t e;
	json_t *j;

	*out = NULL;
	if (len > cap) {
		snprintf(why, whylen, "request body larger than %zu bytes",
		         cap);
		return SS_ETOOLARGE;
	}
	if (len == 0) {
		snprintf(why, whylen, "empty body: expected a JSON object");
		return SS_EBADREQ;
	}
	/* The position only: jansson's text may quote the input back.  A
	 * duplicate key is named, as an unknown one is. */
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (j == NULL) {
		if (json_error_code(&e) != json_error_duplicate_key)
			snprintf(why, whylen, "malformed JSON at byte %d",
			         e.position);
		else if (dup_key(&e, why, whylen) != 0) /* cut by jansson */
			snprintf(why, whylen, "duplicate field at byte %d",
			         e.position);
		return SS_EBADREQ;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(why, whylen, "body: expected a JSON object");
		return SS_EBADREQ;
	}
	*out = j;
	return 0;
}

static const char *
type_word(gw_jtype t)
{
	switch (t) {
	case GW_J_STR:
		return "string";
	case GW_J_INT:
		return "integer";
	case GW_J_BOOL:
		return "bool";
	case GW_J_OBJ:
		return "object";
	default:
		return "array";
	}
}

/* What a bound counts (plural: + "s"): a string's bytes (UTF-8), an
 * object's fields, an array's items. */
static const char *
unit_word(gw_jtype t)
{
	switch (t) {
	case GW_J_STR:
		return " byte";
	case GW_J_OBJ:
		return " field";
	case GW_J_ARR:
		return " item";
	default:
		return "";
	}
}

static int
check_one(const json_t *v, const gw_jfield *f, const char *where, char *why,
          size_t whylen)
{
	int64_t n;
	bool ok;

	switch (f->type) {
	case GW_J_STR:
		ok = json_is_string(v);
		n = ok ? (int64_t)json_string_length(v) : 0;
		break;
	case GW_J_INT:
		ok = json_is_integer(v);
		n = ok ? (int64_t)json_integer_value(v) : 0;
		break;
	case GW_J_BOOL:
		ok = json_is_boolean(v);
		n = 0;
		break;
	case GW_J_OBJ:
		ok = json_is_object(v);
		n = ok ? (int64_t)json_object_size(v) : 0;
		break;
	default:
		ok = json_is_array(v);
		n = ok ? (int64_t)json_array_size(v) : 0;
		break;
	}
	if (!ok) {
		snprintf(why, whylen, "field '%s%s': expected %s", where,
		         f->name, type_word(f->type));
		return SS_EBADREQ;
	}
	if (f->type == GW_J_BOOL || (f->min == 0 && f->max == 0))
		return 0;
	/* The bound it broke, so that the client can fix the value without
	 * reading the docs. */
	if (n < f->min || (f->max != 0 && n > f->max)) {
		char bound[48];

		snprintf(why, whylen, "field '%s%s': %s", where, f->name,
		         ss_bound_text(n, f->min, f->max, unit_word(f->type),
		                       bound, sizeof bound));
		return SS_EBADREQ;
	}
	return 0;
}

int
gw_json_fields(const json_t *obj, const gw_jfield *spec, size_t n,
               const char *where, char *why, size_t whylen)
{
	const char *k;
	json_t *v;
	size_t i;
	int rv;

	if (!json_is_object(obj)) {
		snprintf(why, whylen, "%s: expected a JSON object",
		         where[0] != '\0' ? where : "body");
		return SS_EBADREQ;
	}
	json_object_foreach((json_t *)obj, k, v)
	{
		for (i = 0; i < n; i++)
			if (strcmp(spec[i].name, k) == 0)
				break;
		if (i == n) {
			snprintf(why, whylen, "unknown field '%s%.*s'", where,
			         NAME_SHOWN, k);
			return SS_EBADREQ;
		}
	}
	for (i = 0; i < n; i++) {
		v = json_object_get(obj, spec[i].name);
		if (v == NULL) {
			if (!spec[i].required)
				continue;
			snprintf(why, whylen, "missing field '%s%s'", where,
			         spec[i].name);
			return SS_EBADREQ;
		}
		if ((rv = check_one(v, &spec[i], where, why, whylen)) != 0)
			return rv;
	}
	return 0;
}

/* The six kinds of share target and their fields (API.md "Shares"). */
static const gw_jfield t_id[] = {
    {"kind", GW_J_STR, true, 1, 32},
    {"id", GW_J_STR, true, 1, 64},
};
static const gw_jfield t_code[] = {
    {"kind", GW_J_STR, true, 1, 32},
    {"code", GW_J_STR, true, 1, 32},
};
static const gw_jfield t_email[] = {
    {"kind", GW_J_STR, true, 1, 32},
    {"email", GW_J_STR, true, 3, 254},
};

static const struct {
	const char *kind;
	const gw_jfield *spec;
} kinds[] = {
    {"organisation", t_id}, {"location", t_id},     {"group", t_id},
    {"user", t_id},         {"share_code", t_code}, {"email", t_email},
};

int
gw_json_targets(const json_t *arr, char *why, size_t whylen)
{
	char where[40];
	const json_t *t, *k;
	size_t i, j;
	int rv;

	if (!json_is_array(arr)) {
		snprintf(why, whylen, "field 'targets': expected array");
		return SS_EBADREQ;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		t = json_array_get(arr, i);
		snprintf(where, sizeof where, "targets[%zu].", i);
		if (!json_is_object(t)) {
			snprintf(why, whylen,
			         "field 'targets[%zu]': expected "
			         "object",
			         i);
			return SS_EBADREQ;
		}
		k = json_object_get(t, "kind");
		if (k == NULL || !json_is_string(k)) {
			snprintf(why, whylen, "%s 'targets[%zu].kind'%s",
			         k == NULL ? "missing field" : "field", i,
			         k == NULL ? "" : ": expected string");
			return SS_EBADREQ;
		}
		for (j = 0; j < sizeof kinds / sizeof kinds[0]; j++)
			if (strcmp(json_string_value(k), kinds[j].kind) == 0)
				break;
		if (j == sizeof kinds / sizeof kinds[0]) {
			snprintf(why, whylen,
			         "field 'targets[%zu].kind': expected one of "
			         "organisation, location, group, user, "
			         "share_code, email",
			         i);
			return SS_EBADREQ;
		}
		if ((rv = gw_json_fields(t, kinds[j].spec, 2, where, why,
		                         whylen)) != 0)
			return rv;
	}
	return 0;
}

int
gw_pack_object(ss_pack *p, const json_t *obj, size_t extra)
{
	const char *k;
	json_t *v;
	int rv;

	if (!json_is_object(obj))
		return SS_EBADREQ;
	msgpack_pack_map(&p->pk, json_object_size(obj) + extra);
	json_object_foreach((json_t *)obj, k, v)
	{
		ss_pack_cstr(p, k);
		if ((rv = ss_json_to_mp(p, v)) != 0)
			return rv;
	}
	return 0;
}
