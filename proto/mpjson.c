/*
 * proto/mpjson.c - see mpjson.h.  Depth is already bounded on both sides
 * (ss_mpcheck for msgpack, jansson's own limit for JSON).
 */
#include <math.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/mpjson.h"

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
