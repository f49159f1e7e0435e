/*
 * proto/fields.c - typed, bounded access to the fields of a body map.
 *
 * ss_fields_parse() makes one pass over the map to sort its entries into
 * the caller's spec (refusing non-string keys, unknown and duplicate
 * fields), then checks each field in spec order: presence, type, bounds.
 * Every refusal is SS_EBADREQ with a message that names the field, e.g.
 * "field 'user': expected string"; names taken from the wire are cut to
 * SS_FIELD_NAME_MAX bytes and their unprintable bytes shown as '?', so a
 * message is always safe to log and to send back.  On a refusal every
 * out[] slot is NULL, so no half-checked field can be used by mistake.
 *
 * Bounds: min always applies, max 0 means "no upper bound" (the envelope's
 * limits still hold).  So {0, 0} on an integer means "any value >= 0", and
 * a field that may be negative says so with a negative min.  nil is a
 * value of its own: it satisfies only SS_F_ANY, not an optional field of
 * another type.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"

#define SS_FIELD_NAME_MAX 64

static void ss_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ss_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* A wire key made printable for a message. */
static void
ss_key_show(const msgpack_object *k, char *dst, size_t dstlen)
{
	size_t i, n = k->via.str.size;
	size_t cut = dstlen - 4; /* room for "..." and NUL */

	for (i = 0; i < n && i < cut; i++) {
		unsigned char c = (unsigned char)k->via.str.ptr[i];

		dst[i] = (c >= 0x20 && c <= 0x7e && c != '\'') ? (char)c : '?';
	}
	if (n > cut) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
}

static bool
ss_key_eq(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       (n == 0 || memcmp(k->via.str.ptr, name, n) == 0);
}

static bool
ss_has_nul(const msgpack_object *o)
{
	return o->via.str.size > 0 &&
	       memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL;
}

static bool
ss_in_bounds(int64_t v, const ss_field_spec *s)
{
	return v >= s->min && (s->max == 0 || v <= s->max);
}

const char *
ss_bound_text(int64_t v, int64_t min, int64_t max, const char *unit, char *buf,
              size_t cap)
{
	int64_t b = v < min ? min : max;

	snprintf(buf, cap, "at %s %lld%s%s", v < min ? "least" : "most",
	         (long long)b, unit, unit[0] != '\0' && b != 1 ? "s" : "");
	return buf;
}

static const char *
ss_bound_why(const ss_field_spec *s, int64_t v, const char *unit, char *buf,
             size_t cap)
{
	return ss_bound_text(v, s->min, s->max, unit, buf, cap);
}

/* Returns NULL when o satisfies s, or what is wrong with it (in buf, or a
 * constant). */
static const char *
ss_field_check(const ss_field_spec *s, const msgpack_object *o, char *buf,
               size_t cap)
{
	int64_t v;

	switch (s->type) {
	case SS_F_STR:
		if (o->type != MSGPACK_OBJECT_STR)
			return "expected string";
		if (ss_has_nul(o))
			return "contains a NUL byte";
		v = (int64_t)o->via.str.size;
		return ss_in_bounds(v, s)
		           ? NULL
		           : ss_bound_why(s, v, " byte", buf, cap);
	case SS_F_INT:
		if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			if (o->via.u64 > INT64_MAX)
				return s->max != 0 ? ss_bound_why(s, INT64_MAX,
				                                  "", buf, cap)
				                   : "out of range";
			v = (int64_t)o->via.u64;
		} else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			v = o->via.i64;
		} else {
			return "expected integer";
		}
		return ss_in_bounds(v, s) ? NULL
		                          : ss_bound_why(s, v, "", buf, cap);
	case SS_F_BOOL:
		return o->type == MSGPACK_OBJECT_BOOLEAN ? NULL
		                                         : "expected bool";
	case SS_F_MAP:
		if (o->type != MSGPACK_OBJECT_MAP)
			return "expected map";
		v = (int64_t)o->via.map.size;
		return ss_in_bounds(v, s)
		           ? NULL
		           : ss_bound_why(s, v, " field", buf, cap);
	case SS_F_ARRAY:
		if (o->type != MSGPACK_OBJECT_ARRAY)
			return "expected array";
		v = (int64_t)o->via.array.size;
		return ss_in_bounds(v, s)
		           ? NULL
		           : ss_bound_why(s, v, " item", buf, cap);
	case SS_F_ANY:
		return NULL;
	}
	return "unknown field type in spec";
}

int
ss_fields_parse(const msgpack_object *map, const ss_field_spec *spec, size_t n,
                const msgpack_object **out, char *why, size_t whylen)
{
	char name[SS_FIELD_NAME_MAX + 4], bound[48];
	const char *what;
	uint32_t k;
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = NULL;
	if (map == NULL || map->type != MSGPACK_OBJECT_MAP) {
		ss_why(why, whylen, "expected a map");
		return SS_EBADREQ;
	}

	for (k = 0; k < map->via.map.size; k++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[k];

		if (kv->key.type != MSGPACK_OBJECT_STR) {
			ss_why(why, whylen, "field names must be strings");
			goto fail;
		}
		for (i = 0; i < n; i++) {
			if (ss_key_eq(&kv->key, spec[i].name))
				break;
		}
		if (i == n || out[i] != NULL) {
			ss_key_show(&kv->key, name, sizeof name);
			ss_why(why, whylen, "%s field '%s'",
			       i == n ? "unknown" : "duplicate", name);
			goto fail;
		}
		out[i] = &kv->val;
	}

	for (i = 0; i < n; i++) {
		if (out[i] == NULL) {
			if (!spec[i].required)
				continue;
			ss_why(why, whylen, "missing field '%s'", spec[i].name);
			goto fail;
		}
		if ((what = ss_field_check(&spec[i], out[i], bound,
		                           sizeof bound)) != NULL) {
			ss_why(why, whylen, "field '%s': %s", spec[i].name,
			       what);
			goto fail;
		}
	}
	return 0;

fail:
	for (i = 0; i < n; i++)
		out[i] = NULL;
	return SS_EBADREQ;
}

const msgpack_object *
ss_map_get(const msgpack_object *map, const char *key)
{
	uint32_t i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++) {
		if (ss_key_eq(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

ss_str
ss_obj_str(const msgpack_object *o)
{
	ss_str s = {"", 0};

	if (o != NULL && o->type == MSGPACK_OBJECT_STR) {
		s.p = o->via.str.ptr;
		s.n = o->via.str.size;
	}
	return s;
}

int64_t
ss_obj_int(const msgpack_object *o)
{
	if (o == NULL)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return 0;
}

bool
ss_obj_bool(const msgpack_object *o)
{
	return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

int
ss_obj_strcpy(const msgpack_object *o, char *dst, size_t dstlen)
{
	size_t n;

	if (o == NULL || o->type != MSGPACK_OBJECT_STR || dstlen == 0)
		return SS_EBADREQ;
	n = o->via.str.size;
	/* An inner NUL would silently cut the copy short. */
	if (n >= dstlen || ss_has_nul(o))
		return SS_EBADREQ;
	if (n > 0)
		memcpy(dst, o->via.str.ptr, n);
	dst[n] = '\0';
	return 0;
}

bool
ss_obj_streq(const msgpack_object *o, const char *s)
{
	return o != NULL && s != NULL && ss_key_eq(o, s);
}
