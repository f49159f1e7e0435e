/*
 * proto/mpjson.h - converting between msgpack objects and JSON (jansson).
 *
 * The HTTP edge speaks JSON and the bus msgpack; the CLI prints replies as
 * JSON.  Maps with non-string keys, bin and ext have no JSON form and are
 * refused (SS_EBADREQ), as are JSON reals that are not finite.
 * ss_mp_write_json() is the gateway's fast way out: msgpack straight to
 * JSON text, for answers passed on as they are.
 */
#ifndef SS_PROTO_MPJSON_H
#define SS_PROTO_MPJSON_H

#include <jansson.h>
#include <msgpack.h>

#include "proto/envelope.h"

/* A new JSON value for o, or NULL when o has no JSON form. */
json_t *ss_mp_to_json(const msgpack_object *o);

/*
 * Appends the JSON text of o to out, compact, without building a tree:
 * the same text as json_dumps(ss_mp_to_json(o), JSON_COMPACT) whenever
 * o's maps have no repeated key (jansson keeps the last; this writes
 * each as it comes: our daemons never repeat one).  Strings must be
 * valid UTF-8, as jansson requires.  0, SS_EBADREQ when o has no JSON
 * form, or SS_ENOMEM; on failure out holds a partial text the caller
 * drops.
 */
int ss_mp_write_json(msgpack_sbuffer *out, const msgpack_object *o);

/* Packs a JSON value; 0 or SS_EBADREQ. */
int ss_json_to_mp(ss_pack *p, const json_t *j);

#endif
