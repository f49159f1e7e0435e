/*
 * tests/fuzz/fuzz_mpjson.c - msgpack -> JSON -> msgpack on arbitrary bytes.
 *
 * Bytes go the way the gateway and CLI take them, without the envelope:
 * ss_mpcheck(), msgpack-c, ss_mp_to_json(), ss_json_to_mp().  Whatever
 * converts to JSON must pack again, and that packing must convert back
 * to a JSON value that packs to the very same bytes.  The gateway's
 * direct writer, ss_mp_write_json(), must refuse exactly what has no JSON
 * form and otherwise write jansson's compact text of the same value
 * (inputs with a repeated map key aside: jansson keeps only the last).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/mpcheck.h"
#include "proto/mpjson.h"

/* True when some map in o repeats a key (compared as bytes). */
static int
dup_keys(const msgpack_object *o)
{
	uint32_t i, k;

	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < o->via.array.size; i++)
			if (dup_keys(&o->via.array.ptr[i]))
				return 1;
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		const msgpack_object_kv *kv = o->via.map.ptr;
		for (i = 0; i < o->via.map.size; i++) {
			if (dup_keys(&kv[i].val))
				return 1;
			for (k = 0; k < i; k++)
				if (msgpack_object_equal(kv[i].key, kv[k].key))
					return 1;
		}
	}
	return 0;
}

/* The writer against the tree, on the single object in buf. */
static void
check_writer(const char *buf, size_t len)
{
	msgpack_unpacked up;
	msgpack_sbuffer out;
	size_t off = 0;
	json_t *j;
	char *want;
	int rv;

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
		abort();
	msgpack_sbuffer_init(&out);
	rv = ss_mp_write_json(&out, &up.data);
	j = ss_mp_to_json(&up.data);
	if ((j == NULL) != (rv != 0))
		abort();
	if (j != NULL && !dup_keys(&up.data)) {
		want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		if (want == NULL || strlen(want) != out.size ||
		    memcmp(want, out.data, out.size) != 0)
			abort();
		free(want);
	}
	json_decref(j);
	msgpack_sbuffer_destroy(&out);
	msgpack_unpacked_destroy(&up);
}

/* The JSON value of the single object in buf; aborts if msgpack-c cannot
 * read it all. */
static json_t *
decode(const char *buf, size_t len)
{
	msgpack_unpacked up;
	size_t off = 0;
	json_t *j;

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, buf, len, &off) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    off != len)
		abort();
	j = ss_mp_to_json(&up.data);
	msgpack_unpacked_destroy(&up);
	return j;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	ss_pack p1, p2;
	json_t *j, *back;

	if (ss_mpcheck(data, size, SS_MAX_DEPTH, SS_MAX_STR_LEN, &why) != 0)
		return 0;
	check_writer((const char *)data, size);
	if ((j = decode((const char *)data, size)) == NULL)
		return 0; /* no JSON form: bin, ext, integer keys, ... */
	ss_pack_init(&p1);
	ss_pack_init(&p2);
	if (ss_json_to_mp(&p1, j) != 0)
		abort();
	if ((back = decode(p1.sb.data, p1.sb.size)) == NULL)
		abort();
	/* Packing is a fixed point: what it wrote reads back to a value that
	 * packs to the same bytes.  (Not json_equal(): it compares keys as
	 * C strings, and msgpack keys may hold NUL bytes.) */
	if (ss_json_to_mp(&p2, back) != 0 || p1.sb.size != p2.sb.size ||
	    memcmp(p1.sb.data, p2.sb.data, p1.sb.size) != 0)
		abort();
	json_decref(back);
	json_decref(j);
	ss_pack_free(&p1);
	ss_pack_free(&p2);
	return 0;
}
