/*
 * proto/mpjson.h - converting between msgpack objects and JSON (jansson).
 *
 * The HTTP edge speaks JSON and the bus msgpack; the CLI prints replies as
 * JSON.  Maps with non-string keys, bin and ext have no JSON form and are
 * refused (SS_EBADREQ), as are JSON reals that are not finite.
 */
#ifndef SS_PROTO_MPJSON_H
#define SS_PROTO_MPJSON_H

#include <jansson.h>
#include <msgpack.h>

#include "proto/envelope.h"

/* A new JSON value for o, or NULL when o has no JSON form. */
json_t *ss_mp_to_json(const msgpack_object *o);

/* Packs a JSON value; 0 or SS_EBADREQ. */
int ss_json_to_mp(ss_pack *p, const json_t *j);

#endif
