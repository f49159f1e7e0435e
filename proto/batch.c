/*
 * proto/batch.c - reading and packing the body of a bus.batch message.
 */
#include <string.h>

#include "proto/batch.h"
#include "proto/errors.h"

int
ss_batch_items(const msgpack_object *body, const char *key, ss_str *items,
               size_t max, size_t *n, const char **why)
{
	const msgpack_object_kv *kv;
	const msgpack_object *a;
	size_t klen = strlen(key);
	uint32_t i;

	*n = 0;
	if (body == NULL || body->type != MSGPACK_OBJECT_MAP ||
	    body->via.map.size != 1) {
		*why = "a batch body has exactly one field";
		return SS_EBADREQ;
	}
	kv = &body->via.map.ptr[0];
	if (kv->key.type != MSGPACK_OBJECT_STR ||
	    kv->key.via.str.size != klen ||
	    memcmp(kv->key.via.str.ptr, key, klen) != 0) {
		*why = "a batch body has an unknown field";
		return SS_EBADREQ;
	}
	a = &kv->val;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0 ||
	    a->via.array.size > max) {
		*why = "a batch holds no messages or too many";
		return SS_EBADREQ;
	}
	for (i = 0; i < a->via.array.size; i++) {
		const msgpack_object *o = &a->via.array.ptr[i];

		if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size == 0) {
			*why = "a batch item is not a message (bin)";
			return SS_EBADREQ;
		}
		items[i].p = o->via.bin.ptr;
		items[i].n = o->via.bin.size;
	}
	*n = a->via.array.size;
	return 0;
}

void
ss_batch_pack_head(ss_pack *p, const char *key, size_t n)
{
	msgpack_pack_map(&p->pk, 1);
	ss_pack_key(p, key);
	msgpack_pack_array(&p->pk, n);
}

void
ss_pack_bin(ss_pack *p, const void *data, size_t n)
{
	msgpack_pack_bin(&p->pk, n);
	msgpack_pack_bin_body(&p->pk, data, n);
}
