/*
 * proto/mpjson.c - see mpjson.h.  Depth is already bounded on both sides
 * (ss_mpcheck for msgpack, jansson's own limit for JSON).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/mpjson.h"
#include "proto/utf8.h"

json_t *
ss_mp_to_json(const msgpack_object *o)
{
	json_t *j = NULL;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return NULL;
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return isfinite(o->via.f64) ? json_real(o->via.f64) : NULL;
	case MSGPACK_OBJECT_STR:
		/* msgpack-c leaves ptr NULL for "", which jansson refuses. */
		return json_stringn(o->via.str.size ? o->via.str.ptr : "",
		                    o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		if ((j = json_array()) == NULL)
			return NULL;
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			json_t *e = ss_mp_to_json(&o->via.array.ptr[i]);
			if (e == NULL || json_array_append_new(j, e) != 0)
				goto fail;
		}
		return j;
	case MSGPACK_OBJECT_MAP:
		if ((j = json_object()) == NULL)
			return NULL;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			json_t *e;
			if (kv->key.type != MSGPACK_OBJECT_STR)
				goto fail;
			e = ss_mp_to_json(&kv->val);
			if (e == NULL ||
			    json_object_setn_new(
			        j,
			        kv->key.via.str.size ? kv->key.via.str.ptr : "",
			        kv->key.via.str.size, e) != 0)
				goto fail;
		}
		return j;
	default:
		return NULL;
	}
fail:
	json_decref(j);
	return NULL;
}

#define PUT(out, s, n)                                                         \
	do {                                                                   \
		if (msgpack_sbuffer_write((out), (s), (n)) != 0)               \
			return SS_ENOMEM;                                      \
	} while (0)

/* A JSON string: runs of plain bytes are copied whole. */
static int
write_str(msgpack_sbuffer *out, const msgpack_object_str *str)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char special[] = "\"\\\b\f\n\r\t", letter[] = "\"\\bfnrt";
	const char *e;
	const unsigned char *s = (const unsigned char *)str->ptr;
	size_t n = str->size, i = 0, run = 0, len;
	char esc[6];

	if (n == 0) { /* msgpack-c leaves ptr NULL for "" */
		PUT(out, "\"\"", 2);
		return 0;
	}
	PUT(out, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0x80) {
			/* Strict UTF-8, as jansson requires (proto/utf8.h). */
			if ((len = ss_utf8_seq(s + i, n - i)) == 0)
				return SS_EBADREQ;
			i += len;
			continue;
		}
		PUT(out, (const char *)s + run, i - run);
		esc[0] = '\\';
		if ((e = memchr(special, c, sizeof special - 1)) != NULL) {
			esc[1] = letter[e - special];
			len = 2;
		} else {
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			len = 6;
		}
		PUT(out, esc, len);
		run = ++i;
	}
	PUT(out, (const char *)s + run, n - run);
	PUT(out, "\"", 1);
	return 0;
}

/* A real as jansson writes it: %.17g, with ".0" when it would read back
 * as an integer, and the exponent without '+' or leading zeros. */
static int
write_real(msgpack_sbuffer *out, double d)
{
	char b[40], *e, *p;
	int n;

	if (!isfinite(d))
		return SS_EBADREQ;
	n = snprintf(b, sizeof b, "%.17g", d);
	if (n < 0 || (size_t)n >= sizeof b - 2)
		return SS_EBADREQ;
	if (strchr(b, '.') == NULL && strchr(b, 'e') == NULL) {
		memcpy(b + n, ".0", 3);
		n += 2;
	}
	if ((e = strchr(b, 'e')) != NULL) {
		p = ++e;
		if (*p == '-')
			p++;
		else if (*p == '+')
			memmove(p, p + 1, strlen(p + 1) + 1);
		while (*p == '0' && p[1] != '\0')
			memmove(p, p + 1, strlen(p + 1) + 1);
		n = (int)strlen(b);
	}
	PUT(out, b, (size_t)n);
	return 0;
}

int
ss_mp_write_json(msgpack_sbuffer *out, const msgpack_object *o)
{
	char num[24];
	uint32_t i;
	int rv, n;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		PUT(out, "null", 4);
		return 0;
	case MSGPACK_OBJECT_BOOLEAN:
		if (o->via.boolean)
			PUT(out, "true", 4);
		else
			PUT(out, "false", 5);
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return SS_EBADREQ;
		n = snprintf(num, sizeof num, "%llu",
		             (unsigned long long)o->via.u64);
		PUT(out, num, (size_t)n);
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		n = snprintf(num, sizeof num, "%lld", (long long)o->via.i64);
		PUT(out, num, (size_t)n);
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return write_real(out, o->via.f64);
	case MSGPACK_OBJECT_STR:
		return write_str(out, &o->via.str);
	case MSGPACK_OBJECT_ARRAY:
		PUT(out, "[", 1);
		for (i = 0; i < o->via.array.size; i++) {
			if (i > 0)
				PUT(out, ",", 1);
			if ((rv = ss_mp_write_json(out,
			                           &o->via.array.ptr[i])) != 0)
				return rv;
		}
		PUT(out, "]", 1);
		return 0;
	case MSGPACK_OBJECT_MAP:
		PUT(out, "{", 1);
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (kv->key.type != MSGPACK_OBJECT_STR)
				return SS_EBADREQ;
			if (i > 0)
				PUT(out, ",", 1);
			if ((rv = write_str(out, &kv->key.via.str)) != 0)
				return rv;
			PUT(out, ":", 1);
			if ((rv = ss_mp_write_json(out, &kv->val)) != 0)
				return rv;
		}
		PUT(out, "}", 1);
		return 0;
	default:
		return SS_EBADREQ;
	}
}

int
ss_json_to_mp(ss_pack *p, const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i, klen;
	int rv;

	switch (json_typeof(j)) {
	case JSON_NULL:
		return msgpack_pack_nil(&p->pk);
	case JSON_TRUE:
		return msgpack_pack_true(&p->pk);
	case JSON_FALSE:
		return msgpack_pack_false(&p->pk);
	case JSON_INTEGER:
		return msgpack_pack_int64(&p->pk, json_integer_value(j));
	case JSON_REAL:
		if (!isfinite(json_real_value(j)))
			return SS_EBADREQ;
		return msgpack_pack_double(&p->pk, json_real_value(j));
	case JSON_STRING:
		ss_pack_strn(p, json_string_value(j), json_string_length(j));
		return 0;
	case JSON_ARRAY:
		msgpack_pack_array(&p->pk, json_array_size(j));
		json_array_foreach(j, i, v)
		{
			if ((rv = ss_json_to_mp(p, v)) != 0)
				return rv;
		}
		return 0;
	case JSON_OBJECT:
		msgpack_pack_map(&p->pk, json_object_size(j));
		/* Keys may hold NUL bytes (from msgpack): use their length. */
		json_object_keylen_foreach((json_t *)j, k, klen, v)
		{
			ss_pack_strn(p, k, klen);
			if ((rv = ss_json_to_mp(p, v)) != 0)
				return rv;
		}
		return 0;
	}
	return SS_EBADREQ;
}
