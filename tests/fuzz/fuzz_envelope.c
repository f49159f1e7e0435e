/*
 * tests/fuzz/fuzz_envelope.c - ss_msg_decode() on arbitrary bytes.
 *
 * Every input is decoded as a request and as a reply.  A decoded message
 * has every field read (the body walked to the bottom, each string and
 * bin byte touched) so that ASan sees any pointer that outlives its zone;
 * the input is scribbled over first, as the decoded message must not
 * point into it.  A refusal must come with a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/fields.h"

static volatile uint32_t sink;

static void
touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 0;
	size_t i;

	for (i = 0; i < n; i++)
		h = h * 31 + b[i];
	sink += h;
}

static void
walk(const msgpack_object *o)
{
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		touch(o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		touch(o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_EXT:
		touch(o->via.ext.ptr, o->via.ext.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		for (i = 0; i < o->via.array.size; i++)
			walk(&o->via.array.ptr[i]);
		break;
	case MSGPACK_OBJECT_MAP:
		for (i = 0; i < o->via.map.size; i++) {
			walk(&o->via.map.ptr[i].key);
			walk(&o->via.map.ptr[i].val);
		}
		break;
	default:
		touch(&o->via, sizeof o->via);
		break;
	}
}

static void
decode(const uint8_t *data, size_t size, bool reply)
{
	uint8_t *copy = malloc(size ? size : 1);
	const char *why = NULL;
	ss_msg m;
	size_t idlen;
	int rv;

	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	rv = ss_msg_decode(&m, copy, size, reply, &why);
	memset(copy, 0xa5, size);
	free(copy);
	if (rv != 0) {
		if (rv != SS_EBADREQ || why == NULL || m.body != NULL)
			abort();
		return;
	}

	idlen = strlen(m.id);
	if (idlen == 0 || idlen > SS_MAX_ID_LEN || m.is_reply != reply)
		abort();
	touch(m.id, idlen);
	touch(m.type, strlen(m.type));
	if (!reply && (m.type[0] == '\0' || m.body == NULL))
		abort();
	if (reply && m.ok != (m.body != NULL))
		abort();
	if (reply && !m.ok && m.err >= 0)
		abort();
	if (m.body != NULL) {
		if (m.body->type != MSGPACK_OBJECT_MAP)
			abort();
		walk(m.body);
		(void)ss_map_get(m.body, "id");
	}
	touch(m.err_msg.p, m.err_msg.n);
	walk(&m.up.data);
	ss_msg_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode(data, size, false);
	decode(data, size, true);
	return 0;
}
