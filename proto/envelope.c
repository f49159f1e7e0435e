/*
 * proto/envelope.c - decoding and packing the message envelope.
 *
 * Decoding is strict: ss_mpcheck() first (so msgpack-c never allocates
 * from a hostile count), then msgpack-c, then the envelope's shape: "v" is
 * 1, "id" is 1..SS_MAX_ID_LEN printable ASCII, a request has a "type" of
 * 1..SS_MAX_TYPE_LEN characters of [a-z0-9._] and a "body" map, a reply has
 * a bool "ok" and either a "body" map (ok) or an "error" map with a string
 * "code" and an optional string "message" (not ok).  Unknown, duplicate
 * and misplaced fields are refused.  A refusal names the field in a static
 * string, so a caller can put it in its error reply as it is.
 *
 * msgpack-c's strings point into the bytes it was given, so the bytes are
 * copied once and the copy is handed to the message's zone: a decoded
 * message stays valid after the caller's buffer is gone.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/mpcheck.h"

#define SS_XSTR(x) SS_STR(x)
#define SS_STR(x)  #x

/* The fields an envelope may have. */
enum ss_key { K_V, K_TYPE, K_ID, K_OK, K_BODY, K_ERROR, K_NKEYS };

#define SS_ID_RULE   "1.." SS_XSTR(SS_MAX_ID_LEN) " printable ASCII characters"
#define SS_TYPE_RULE "1.." SS_XSTR(SS_MAX_TYPE_LEN) " characters of [a-z0-9._]"

static const char ss_why_id[] = "field 'id': expected " SS_ID_RULE;
static const char ss_why_type[] = "field 'type': expected " SS_TYPE_RULE;

static const char *const ss_key_names[K_NKEYS] = {
    "v", "type", "id", "ok", "body", "error",
};

static bool
ss_key_is(const msgpack_object *o, const char *name)
{
	size_t n = strlen(name);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       memcmp(o->via.str.ptr, name, n) == 0;
}

/* Sorts the top-level fields into f[], refusing unknown and repeated. */
static int
ss_env_fields(const msgpack_object *top, bool reply,
              const msgpack_object *f[K_NKEYS], const char **why)
{
	uint32_t i;
	int k;

	if (top->type != MSGPACK_OBJECT_MAP) {
		*why = "top level is not a map";
		return SS_EBADREQ;
	}
	for (i = 0; i < top->via.map.size; i++) {
		const msgpack_object_kv *kv = &top->via.map.ptr[i];

		for (k = 0; k < K_NKEYS; k++) {
			if (ss_key_is(&kv->key, ss_key_names[k]))
				break;
		}
		if (k == K_NKEYS || (reply && k == K_TYPE) ||
		    (!reply && (k == K_OK || k == K_ERROR))) {
			*why = reply ? "unknown field in reply envelope"
			             : "unknown field in request envelope";
			return SS_EBADREQ;
		}
		if (f[k] != NULL) {
			*why = "duplicate field in envelope";
			return SS_EBADREQ;
		}
		f[k] = &kv->val;
	}
	return 0;
}

static int
ss_env_version(const msgpack_object *v, const char **why)
{
	if (v == NULL) {
		*why = "missing field 'v'";
		return SS_EBADREQ;
	}
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    v->via.u64 != SS_PROTO_VERSION) {
		*why = "field 'v': expected " SS_XSTR(SS_PROTO_VERSION);
		return SS_EBADREQ;
	}
	return 0;
}

/* Request ids end up in logs and replies: printable, no spaces. */
static int
ss_env_id(const msgpack_object *o, char *dst, const char **why)
{
	uint32_t i;

	if (o == NULL) {
		*why = "missing field 'id'";
		return SS_EBADREQ;
	}
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size > SS_MAX_ID_LEN)
		goto bad;
	for (i = 0; i < o->via.str.size; i++) {
		unsigned char c = (unsigned char)o->via.str.ptr[i];

		if (c < 0x21 || c > 0x7e)
			goto bad;
	}
	memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
	return 0;

bad:
	*why = ss_why_id;
	return SS_EBADREQ;
}

static bool
ss_type_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_';
}

static int
ss_env_type(const msgpack_object *o, char *dst, const char **why)
{
	uint32_t i;

	if (o == NULL) {
		*why = "missing field 'type'";
		return SS_EBADREQ;
	}
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size > SS_MAX_TYPE_LEN)
		goto bad;
	for (i = 0; i < o->via.str.size; i++) {
		if (!ss_type_char((unsigned char)o->via.str.ptr[i]))
			goto bad;
	}
	memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
	return 0;

bad:
	*why = ss_why_type;
	return SS_EBADREQ;
}

static int
ss_env_body(const msgpack_object *o, const char **why)
{
	if (o == NULL) {
		*why = "missing field 'body'";
		return SS_EBADREQ;
	}
	if (o->type != MSGPACK_OBJECT_MAP) {
		*why = "field 'body': expected map";
		return SS_EBADREQ;
	}
	return 0;
}

/* {"code": <word>, "message": <text>, "retry_after": <seconds>}; message
 * and retry_after are optional. */
static int
ss_env_error(ss_msg *m, const msgpack_object *o, const char **why)
{
	const msgpack_object *code = NULL, *msg = NULL, *retry = NULL;
	uint32_t i;

	if (o == NULL) {
		*why = "missing field 'error'";
		return SS_EBADREQ;
	}
	if (o->type != MSGPACK_OBJECT_MAP) {
		*why = "field 'error': expected map";
		return SS_EBADREQ;
	}
	for (i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		const msgpack_object **slot;

		if (ss_key_is(&kv->key, "code")) {
			slot = &code;
		} else if (ss_key_is(&kv->key, "message")) {
			slot = &msg;
		} else if (ss_key_is(&kv->key, "retry_after")) {
			slot = &retry;
		} else {
			*why = "unknown field in 'error'";
			return SS_EBADREQ;
		}
		if (*slot != NULL) {
			*why = "duplicate field in 'error'";
			return SS_EBADREQ;
		}
		*slot = &kv->val;
	}
	if (code == NULL) {
		*why = "missing field 'error.code'";
		return SS_EBADREQ;
	}
	if (code->type != MSGPACK_OBJECT_STR) {
		*why = "field 'error.code': expected string";
		return SS_EBADREQ;
	}
	if (msg != NULL && msg->type != MSGPACK_OBJECT_STR) {
		*why = "field 'error.message': expected string";
		return SS_EBADREQ;
	}
	if (retry != NULL && (retry->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	                      retry->via.u64 > 86400)) {
		*why = "field 'error.retry_after': expected seconds (0..86400)";
		return SS_EBADREQ;
	}
	m->retry_after = retry != NULL ? (int)retry->via.u64 : 0;
	m->err = ss_err_from_word(code->via.str.ptr, code->via.str.size);
	if (msg != NULL) {
		m->err_msg.p = msg->via.str.ptr;
		m->err_msg.n = msg->via.str.size;
	}
	return 0;
}

static int
ss_env_check(ss_msg *m, bool reply, const char **why)
{
	const msgpack_object *f[K_NKEYS] = {NULL};
	int rv;

	if ((rv = ss_env_fields(&m->up.data, reply, f, why)) != 0 ||
	    (rv = ss_env_version(f[K_V], why)) != 0 ||
	    (rv = ss_env_id(f[K_ID], m->id, why)) != 0)
		return rv;

	m->is_reply = reply;
	if (!reply) {
		if ((rv = ss_env_type(f[K_TYPE], m->type, why)) != 0 ||
		    (rv = ss_env_body(f[K_BODY], why)) != 0)
			return rv;
		m->body = f[K_BODY];
		return 0;
	}

	if (f[K_OK] == NULL) {
		*why = "missing field 'ok'";
		return SS_EBADREQ;
	}
	if (f[K_OK]->type != MSGPACK_OBJECT_BOOLEAN) {
		*why = "field 'ok': expected bool";
		return SS_EBADREQ;
	}
	m->ok = f[K_OK]->via.boolean;
	if (m->ok) {
		if (f[K_ERROR] != NULL) {
			*why = "field 'error': not allowed when ok is true";
			return SS_EBADREQ;
		}
		if ((rv = ss_env_body(f[K_BODY], why)) != 0)
			return rv;
		m->body = f[K_BODY];
		return 0;
	}
	if (f[K_BODY] != NULL) {
		*why = "field 'body': not allowed when ok is false";
		return SS_EBADREQ;
	}
	return ss_env_error(m, f[K_ERROR], why);
}

int
ss_msg_decode(ss_msg *m, const void *buf, size_t len, bool want_reply,
              const char **why)
{
	const char *w = NULL;
	char *copy = NULL;
	size_t off = 0;
	int rv = SS_EBADREQ;

	memset(m, 0, sizeof(*m));
	msgpack_unpacked_init(&m->up);

	if (ss_mpcheck(buf, len, SS_MAX_DEPTH, SS_MAX_STR_LEN, &w) != 0)
		goto fail;
	if ((copy = malloc(len)) == NULL)
		goto nomem;
	memcpy(copy, buf, len);

	switch (msgpack_unpack_next(&m->up, copy, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		goto nomem;
	default:
		/* ss_mpcheck() accepted it, so this is a msgpack-c quirk. */
		w = "malformed msgpack";
		goto fail;
	}
	if (off != len) {
		w = "trailing bytes after the message";
		goto fail;
	}
	if (!msgpack_zone_push_finalizer(m->up.zone, free, copy))
		goto nomem;
	copy = NULL; /* the zone frees it */

	if ((rv = ss_env_check(m, want_reply, &w)) != 0)
		goto fail;
	return 0;

nomem:
	rv = SS_ENOMEM;
	w = "out of memory";
fail:
	msgpack_unpacked_destroy(&m->up);
	free(copy);
	memset(m, 0, sizeof(*m));
	if (why != NULL)
		*why = w;
	return rv;
}

void
ss_msg_free(ss_msg *m)
{
	if (m == NULL)
		return;
	msgpack_unpacked_destroy(&m->up);
	memset(m, 0, sizeof(*m));
}

void
ss_pack_init(ss_pack *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

void
ss_pack_free(ss_pack *p)
{
	msgpack_sbuffer_destroy(&p->sb);
	msgpack_sbuffer_init(&p->sb);
}

void
ss_pack_reset(ss_pack *p)
{
	msgpack_sbuffer_clear(&p->sb);
}

void
ss_pack_key(ss_pack *p, const char *k)
{
	ss_pack_strn(p, k, strlen(k));
}

void
ss_pack_strn(ss_pack *p, const char *s, size_t n)
{
	msgpack_pack_str(&p->pk, n);
	msgpack_pack_str_body(&p->pk, s, n);
}

void
ss_pack_cstr(ss_pack *p, const char *s)
{
	if (s == NULL)
		msgpack_pack_nil(&p->pk);
	else
		ss_pack_strn(p, s, strlen(s));
}

void
ss_pack_kv_cstr(ss_pack *p, const char *k, const char *v)
{
	ss_pack_key(p, k);
	ss_pack_cstr(p, v);
}

void
ss_pack_kv_strn(ss_pack *p, const char *k, const char *v, size_t n)
{
	ss_pack_key(p, k);
	ss_pack_strn(p, v, n);
}

void
ss_pack_kv_int(ss_pack *p, const char *k, int64_t v)
{
	ss_pack_key(p, k);
	msgpack_pack_int64(&p->pk, v);
}

void
ss_pack_kv_bool(ss_pack *p, const char *k, bool v)
{
	ss_pack_key(p, k);
	if (v)
		msgpack_pack_true(&p->pk);
	else
		msgpack_pack_false(&p->pk);
}

/* The fields every envelope starts with. */
static void
ss_pack_head(ss_pack *p, const char *id)
{
	msgpack_pack_map(&p->pk, 4);
	ss_pack_kv_int(p, "v", SS_PROTO_VERSION);
	ss_pack_kv_cstr(p, "id", id);
}

void
ss_pack_request(ss_pack *p, const char *type, const char *id)
{
	ss_pack_head(p, id);
	ss_pack_kv_cstr(p, "type", type);
	ss_pack_key(p, "body");
}

void
ss_pack_reply_ok(ss_pack *p, const char *id)
{
	ss_pack_head(p, id);
	ss_pack_kv_bool(p, "ok", true);
	ss_pack_key(p, "body");
}

void
ss_pack_reply_err(ss_pack *p, const char *id, int err, const char *msg)
{
	ss_pack_reply_err_retry(p, id, err, msg, 0);
}

void
ss_pack_reply_err_retry(ss_pack *p, const char *id, int err, const char *msg,
                        int retry_after)
{
	if (err >= 0) /* "ok" is no error code: a caller's bug */
		err = SS_EINTERNAL;
	ss_pack_head(p, id);
	ss_pack_kv_bool(p, "ok", false);
	ss_pack_key(p, "error");
	msgpack_pack_map(&p->pk, retry_after > 0 ? 3 : 2);
	ss_pack_kv_cstr(p, "code", ss_err_word(err));
	ss_pack_kv_cstr(p, "message", msg != NULL ? msg : ss_err_word(err));
	if (retry_after > 0)
		ss_pack_kv_int(p, "retry_after", retry_after);
}
