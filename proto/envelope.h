/*
 * proto/envelope.h - the message envelope of the bus.
 *
 * Every message is a msgpack map:
 *   request: {"v":1, "type":"authz.check", "id":"<request id>", "body":{...}}
 *   reply:   {"v":1, "id":"<request id>", "ok":true,  "body":{...}}
 *            {"v":1, "id":"<request id>", "ok":false,
 *             "error":{"code":"forbidden", "message":"..."}}
 *
 * ss_msg_decode() pre-validates the bytes (proto/mpcheck.h) before msgpack-c
 * sees them, then checks the envelope's fields.  A decoded message owns its
 * msgpack zone: body and strings stay valid until ss_msg_free().
 *
 * Encoding goes through ss_pack: begin the envelope, pack exactly one body
 * object with the msgpack_pack_* functions or the helpers below, done.
 */
#ifndef SS_PROTO_ENVELOPE_H
#define SS_PROTO_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#define SS_PROTO_VERSION 1
#define SS_MAX_TYPE_LEN  64
#define SS_MAX_ID_LEN    64
#define SS_MAX_STR_LEN   (4 * 1024 * 1024) /* any single str, bin or ext */
#define SS_MAX_DEPTH     16

/* A string view into a decoded message: not NUL-terminated. */
typedef struct ss_str {
	const char *p;
	size_t n;
} ss_str;

typedef struct ss_msg {
	msgpack_unpacked up; /* owns every pointer below */
	bool is_reply;
	char type[SS_MAX_TYPE_LEN + 1]; /* requests only */
	char id[SS_MAX_ID_LEN + 1];
	bool ok;                    /* replies only */
	const msgpack_object *body; /* map; NULL in an error reply */
	int err;                    /* error replies: SS_E* */
	ss_str err_msg;             /* error replies */
	int retry_after;            /* error replies: seconds, 0 if none */
} ss_msg;

/*
 * Decodes buf as a request (want_reply false) or a reply.  On failure
 * returns SS_EBADREQ, sets *why to a static description, and leaves m
 * needing no ss_msg_free().
 */
int ss_msg_decode(ss_msg *m, const void *buf, size_t len, bool want_reply,
                  const char **why);
void ss_msg_free(ss_msg *m);

typedef struct ss_pack {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} ss_pack;

void ss_pack_init(ss_pack *p);
void ss_pack_free(ss_pack *p);
/* Resets to empty, keeping the buffer. */
void ss_pack_reset(ss_pack *p);

/* Envelope heads; the caller then packs exactly one body map. */
void ss_pack_request(ss_pack *p, const char *type, const char *id);
void ss_pack_reply_ok(ss_pack *p, const char *id);
/* A complete error reply; msg may be NULL (the code's word is used). */
void ss_pack_reply_err(ss_pack *p, const char *id, int err, const char *msg);
/* The same with "retry_after" seconds (too_many_requests); 0 omits it. */
void ss_pack_reply_err_retry(ss_pack *p, const char *id, int err,
                             const char *msg, int retry_after);

/* Helpers for bodies. */
void ss_pack_cstr(ss_pack *p, const char *s); /* NULL packs nil */
void ss_pack_strn(ss_pack *p, const char *s, size_t n);
void ss_pack_kv_cstr(ss_pack *p, const char *k, const char *v);
void ss_pack_kv_strn(ss_pack *p, const char *k, const char *v, size_t n);
void ss_pack_kv_int(ss_pack *p, const char *k, int64_t v);
void ss_pack_kv_bool(ss_pack *p, const char *k, bool v);
void ss_pack_key(ss_pack *p, const char *k);

#endif
