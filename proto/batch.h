/*
 * proto/batch.h - several bus requests in one message.
 *
 * A client may send the requests it has ready in one loop turn as one
 * "bus.batch" request whose body is {"calls": [bin, ...]}: each bin is a
 * whole request envelope, exactly as it would travel alone.  The server
 * answers when every call is answered, with {"replies": [bin, ...]}: each
 * bin a whole reply envelope, in the order of the calls.  A call inside a
 * batch is handled like the same call alone (validation, routing, errors,
 * metrics); a batch inside a batch is refused.  Batching saves the
 * per-message cost of the transport (NNG hands every message between
 * threads several times), which under load is most of a quick call's cost.
 *
 * The reader below checks the shape only; each item is then decoded with
 * ss_msg_decode() like any message.
 */
#ifndef SS_PROTO_BATCH_H
#define SS_PROTO_BATCH_H

#include <stddef.h>

#include <msgpack.h>

#include "proto/envelope.h"

#define SS_BATCH_TYPE "bus.batch"
#define SS_BATCH_MAX  64 /* calls in one batch */
/* A batch reply never exceeds this: past it the server replaces the
 * largest replies by internal errors.  A client that batches accepts
 * replies this large (NNG_OPT_RECVMAXSZ), whatever its own cap. */
#define SS_BATCH_REPLY_MAX (4 * 1024 * 1024)
/* What the daemons' clients take (runtime/req.c): room for a batch reply's
 * framing.  A server never sends a reply body larger than
 * SS_REPLY_MAX (the NNG header goes on top). */
#define SS_REPLY_RECV_MAX (SS_BATCH_REPLY_MAX + 4096)
#define SS_REPLY_MAX      (SS_REPLY_RECV_MAX - 64)

/*
 * The items of a batch body: body must be a map holding exactly one key,
 * key ("calls" or "replies"), whose value is an array of 1..max bins.
 * On success items[0..*n) view the bins (inside body) and 0 is returned;
 * otherwise SS_EBADREQ and *why says what is wrong.
 */
int ss_batch_items(const msgpack_object *body, const char *key, ss_str *items,
                   size_t max, size_t *n, const char **why);

/* Packs the body map's head: {key: [ followed by n ss_pack_bin() items. */
void ss_batch_pack_head(ss_pack *p, const char *key, size_t n);
void ss_pack_bin(ss_pack *p, const void *data, size_t n);

#endif
