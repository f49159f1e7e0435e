/*
 * tests/unit/test_envelope.c - the envelope: round trips, every refusal,
 * and the error code table (proto/errors.h) it carries.
 *
 * Refusals are built with msgpack-c's packer field by field, so each case
 * differs from a valid message in exactly one way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/fields.h"

static int
decode(const ss_pack *p, bool reply, const char **why)
{
	ss_msg m;
	int rv;

	*why = NULL;
	rv = ss_msg_decode(&m, p->sb.data, p->sb.size, reply, why);
	if (rv == 0) {
		ss_msg_free(&m);
	} else {
		/* A refused message holds nothing. */
		assert_null(m.up.zone);
		assert_null(m.body);
	}
	return rv;
}

static void
assert_refused(const ss_pack *p, bool reply, const char *want)
{
	const char *why;

	assert_int_equal(decode(p, reply, &why), SS_EBADREQ);
	assert_non_null(why);
	assert_string_equal(why, want);
}

static void
assert_accepted(const ss_pack *p, bool reply)
{
	const char *why;

	assert_int_equal(decode(p, reply, &why), 0);
}

static void
assert_sv_equal(ss_str s, const char *want)
{
	assert_int_equal(s.n, strlen(want));
	assert_memory_equal(s.p, want, s.n);
}

/* ---- round trips ---- */

static void
test_request_round_trip(void **state)
{
	ss_pack p;
	ss_msg m;
	const char *why = NULL;
	char *copy;
	size_t len;

	(void)state;
	ss_pack_init(&p);
	ss_pack_request(&p, "authz.check", "gw-0123abcd");
	msgpack_pack_map(&p.pk, 6);
	ss_pack_kv_cstr(&p, "user", "alice");
	ss_pack_kv_strn(&p, "perm", "studies.viewXX", 12);
	ss_pack_kv_int(&p, "limit", -5);
	ss_pack_kv_bool(&p, "deep", true);
	ss_pack_key(&p, "none");
	ss_pack_cstr(&p, NULL);
	ss_pack_key(&p, "worklist");
	ss_pack_strn(&p, "location:ct", 11);

	/* Decode from a private copy, then destroy the copy: the message
	 * must not point into the caller's bytes. */
	len = p.sb.size;
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, p.sb.data, len);
	assert_int_equal(ss_msg_decode(&m, copy, len, false, &why), 0);
	memset(copy, 0xaa, len);
	free(copy);

	assert_false(m.is_reply);
	assert_string_equal(m.type, "authz.check");
	assert_string_equal(m.id, "gw-0123abcd");
	assert_non_null(m.body);
	assert_int_equal(m.body->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(m.body->via.map.size, 6);
	assert_true(ss_obj_streq(ss_map_get(m.body, "user"), "alice"));
	assert_true(ss_obj_streq(ss_map_get(m.body, "perm"), "studies.view"));
	assert_int_equal(ss_obj_int(ss_map_get(m.body, "limit")), -5);
	assert_true(ss_obj_bool(ss_map_get(m.body, "deep")));
	assert_int_equal(ss_map_get(m.body, "none")->type, MSGPACK_OBJECT_NIL);
	assert_true(
	    ss_obj_streq(ss_map_get(m.body, "worklist"), "location:ct"));
	ss_msg_free(&m);
	assert_null(m.up.zone);
	assert_null(m.body);
	ss_msg_free(&m); /* harmless twice */

	/* The same bytes are not a reply. */
	assert_refused(&p, true, "unknown field in reply envelope");
	ss_pack_free(&p);
}

static void
test_reply_ok_round_trip(void **state)
{
	ss_pack p;
	ss_msg m;
	const char *why = NULL;

	(void)state;
	ss_pack_init(&p);
	ss_pack_reply_ok(&p, "share-9");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_bool(&p, "allowed", false);

	assert_int_equal(ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why),
	                 0);
	assert_true(m.is_reply);
	assert_true(m.ok);
	assert_string_equal(m.id, "share-9");
	assert_string_equal(m.type, "");
	assert_non_null(m.body);
	assert_int_equal(m.body->via.map.size, 1);
	assert_int_equal(ss_map_get(m.body, "allowed")->type,
	                 MSGPACK_OBJECT_BOOLEAN);
	assert_false(ss_obj_bool(ss_map_get(m.body, "allowed")));
	assert_int_equal(m.err, 0);
	ss_msg_free(&m);

	/* A reply is not a request. */
	assert_refused(&p, false, "unknown field in request envelope");

	/* An empty body is a body. */
	ss_pack_reset(&p);
	assert_int_equal(p.sb.size, 0);
	ss_pack_reply_ok(&p, "x");
	msgpack_pack_map(&p.pk, 0);
	assert_accepted(&p, true);
	ss_pack_free(&p);
}

static void
test_reply_err_round_trip(void **state)
{
	ss_pack p;
	ss_msg m;
	const char *why = NULL;

	(void)state;
	ss_pack_init(&p);
	ss_pack_reply_err(&p, "gw-1", SS_EFORBIDDEN, "no studies.share on ct");
	assert_int_equal(ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why),
	                 0);
	assert_true(m.is_reply);
	assert_false(m.ok);
	assert_null(m.body);
	assert_string_equal(m.id, "gw-1");
	assert_int_equal(m.err, SS_EFORBIDDEN);
	assert_sv_equal(m.err_msg, "no studies.share on ct");
	ss_msg_free(&m);

	/* Without a message the word stands in; internal codes fold. */
	ss_pack_reset(&p);
	ss_pack_reply_err(&p, "gw-2", SS_ETIMEDOUT, NULL);
	assert_int_equal(ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why),
	                 0);
	assert_int_equal(m.err, SS_EUNAVAIL);
	assert_sv_equal(m.err_msg, "unavailable");
	ss_msg_free(&m);

	/* 0 is no error: it goes out as internal, never as success. */
	ss_pack_reset(&p);
	ss_pack_reply_err(&p, "gw-3", 0, NULL);
	assert_int_equal(ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why),
	                 0);
	assert_false(m.ok);
	assert_int_equal(m.err, SS_EINTERNAL);
	ss_msg_free(&m);
	ss_pack_free(&p);
}

/* too_many_requests carries retry_after; out of range is refused. */
static void
test_reply_err_retry_after(void **state)
{
	ss_pack p;
	ss_msg m;
	const char *why = NULL;

	(void)state;
	ss_pack_init(&p);
	ss_pack_reply_err_retry(&p, "gw-4", SS_ETOOMANY, "slow down", 42);
	assert_int_equal(ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why),
	                 0);
	assert_int_equal(m.err, SS_ETOOMANY);
	assert_int_equal(m.retry_after, 42);
	ss_msg_free(&m);

	ss_pack_reset(&p);
	ss_pack_reply_err(&p, "gw-5", SS_ETOOMANY, NULL);
	assert_int_equal(ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why),
	                 0);
	assert_int_equal(m.retry_after, 0);
	ss_msg_free(&m);

	ss_pack_reset(&p);
	ss_pack_reply_err_retry(&p, "gw-6", SS_ETOOMANY, NULL, 86401);
	assert_refused(
	    &p, true, "field 'error.retry_after': expected seconds (0..86400)");
	ss_pack_free(&p);
}

/* Every code survives the wire. */
static void
test_reply_err_every_code(void **state)
{
	static const int codes[] = {
	    SS_EBADREQ,   SS_EUNAUTH,   SS_EFORBIDDEN,   SS_ENOTFOUND,
	    SS_ECONFLICT, SS_EUNPROC,   SS_ETOOMANY,     SS_EUNAVAIL,
	    SS_EINTERNAL, SS_ETOOLARGE, SS_EUNSUPPORTED,
	};
	ss_pack p;
	size_t i;

	(void)state;
	ss_pack_init(&p);
	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		ss_msg m;
		const char *why = NULL;

		ss_pack_reset(&p);
		ss_pack_reply_err(&p, "id", codes[i], "m");
		assert_int_equal(
		    ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why), 0);
		assert_int_equal(m.err, codes[i]);
		ss_msg_free(&m);
	}
	ss_pack_free(&p);
}

/* ---- the error table ---- */

static void
test_err_words_and_statuses(void **state)
{
	static const struct {
		int err;
		const char *word;
		int http;
	} t[] = {
	    {SS_EBADREQ, "bad_request", 400},
	    {SS_EUNAUTH, "unauthenticated", 401},
	    {SS_EFORBIDDEN, "forbidden", 403},
	    {SS_ENOTFOUND, "not_found", 404},
	    {SS_ECONFLICT, "conflict", 409},
	    {SS_EUNPROC, "unprocessable", 422},
	    {SS_ETOOMANY, "too_many_requests", 429},
	    {SS_EUNAVAIL, "unavailable", 503},
	    {SS_EINTERNAL, "internal", 500},
	    {SS_ETOOLARGE, "payload_too_large", 413},
	    {SS_EUNSUPPORTED, "unsupported_media_type", 415},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		assert_string_equal(ss_err_word(t[i].err), t[i].word);
		assert_int_equal(ss_err_http(t[i].err), t[i].http);
		assert_int_equal(ss_err_from_word(t[i].word, strlen(t[i].word)),
		                 t[i].err);
	}
	assert_string_equal(ss_err_word(SS_ENOMEM), "internal");
	assert_int_equal(ss_err_http(SS_ENOMEM), 500);
	assert_string_equal(ss_err_word(SS_ETIMEDOUT), "unavailable");
	assert_int_equal(ss_err_http(SS_ETIMEDOUT), 503);
	assert_int_equal(ss_err_http(SS_OK), 200);
	assert_non_null(ss_err_word(SS_OK));

	/* Unknown codes and words are internal errors. */
	assert_string_equal(ss_err_word(-999), "internal");
	assert_int_equal(ss_err_http(-999), 500);
	assert_int_equal(ss_err_from_word("teapot", 6), SS_EINTERNAL);
	assert_int_equal(ss_err_from_word("forbidde", 8), SS_EINTERNAL);
	assert_int_equal(ss_err_from_word("forbiddenx", 10), SS_EINTERNAL);
	assert_int_equal(ss_err_from_word("forbiddenx", 9), SS_EFORBIDDEN);
	assert_int_equal(ss_err_from_word("", 0), SS_EINTERNAL);
	assert_int_equal(ss_err_from_word(NULL, 0), SS_EINTERNAL);
}

/* ---- refusals ---- */

/* The start of a request with n top-level fields. */
static void
req_begin(ss_pack *p, uint32_t n)
{
	ss_pack_reset(p);
	msgpack_pack_map(&p->pk, n);
}

static void
empty_body(ss_pack *p)
{
	ss_pack_key(p, "body");
	msgpack_pack_map(&p->pk, 0);
}

static void
test_refused_by_mpcheck(void **state)
{
	ss_pack p;
	ss_msg m;
	const char *why = NULL;
	uint8_t trunc[] = {0x81, 0xa1, 'v', 0xcd, 0x00};

	(void)state;
	ss_pack_init(&p);
	assert_refused(&p, false, "empty message");
	ss_pack_free(&p);
	assert_int_equal(ss_msg_decode(&m, trunc, sizeof trunc, false, &why),
	                 SS_EBADREQ);
	assert_string_equal(why, "truncated message");
	assert_null(m.up.zone);
}

static void
test_version_refused(void **state)
{
	ss_pack p;

	(void)state;
	ss_pack_init(&p);

	req_begin(&p, 3); /* no v */
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, "missing field 'v'");

	req_begin(&p, 4);
	ss_pack_kv_int(&p, "v", 2);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, "field 'v': expected 1");

	req_begin(&p, 4);
	ss_pack_kv_int(&p, "v", -1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, "field 'v': expected 1");

	req_begin(&p, 4);
	ss_pack_kv_cstr(&p, "v", "1");
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, "field 'v': expected 1");

	req_begin(&p, 4);
	ss_pack_key(&p, "v");
	msgpack_pack_double(&p.pk, 1.0);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, "field 'v': expected 1");

	/* Order does not matter. */
	req_begin(&p, 4);
	empty_body(&p);
	ss_pack_kv_cstr(&p, "id", "1");
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_int(&p, "v", 1);
	assert_accepted(&p, false);
	ss_pack_free(&p);
}

static void
req_with_id(ss_pack *p, const char *id, size_t n)
{
	req_begin(p, 4);
	ss_pack_kv_int(p, "v", 1);
	ss_pack_kv_cstr(p, "type", "a.b");
	ss_pack_kv_strn(p, "id", id, n);
	empty_body(p);
}

static void
test_id_refused(void **state)
{
	static const char why_id[] =
	    "field 'id': expected 1..64 printable ASCII characters";
	char id[80];
	ss_pack p;

	(void)state;
	ss_pack_init(&p);
	memset(id, 'a', sizeof id);

	req_with_id(&p, id, 64);
	assert_accepted(&p, false);
	req_with_id(&p, "!~", 2);
	assert_accepted(&p, false);

	req_with_id(&p, id, 65);
	assert_refused(&p, false, why_id);
	req_with_id(&p, id, 0);
	assert_refused(&p, false, why_id);
	req_with_id(&p, "a b", 3);
	assert_refused(&p, false, why_id);
	req_with_id(&p, "a\x7f", 2);
	assert_refused(&p, false, why_id);
	req_with_id(&p, "a\0b", 3);
	assert_refused(&p, false, why_id);
	req_with_id(&p, "\xc3\xa9", 2);
	assert_refused(&p, false, why_id);

	req_begin(&p, 4);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_int(&p, "id", 7);
	empty_body(&p);
	assert_refused(&p, false, why_id);

	req_begin(&p, 3);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	empty_body(&p);
	assert_refused(&p, false, "missing field 'id'");
	ss_pack_free(&p);
}

static void
req_with_type(ss_pack *p, const char *type, size_t n)
{
	req_begin(p, 4);
	ss_pack_kv_int(p, "v", 1);
	ss_pack_kv_strn(p, "type", type, n);
	ss_pack_kv_cstr(p, "id", "1");
	empty_body(p);
}

static void
test_type_refused(void **state)
{
	static const char why_type[] =
	    "field 'type': expected 1..64 characters of [a-z0-9._]";
	char type[80];
	ss_pack p;

	(void)state;
	ss_pack_init(&p);
	memset(type, 'z', sizeof type);

	req_with_type(&p, type, 64);
	assert_accepted(&p, false);
	req_with_type(&p, "guestlink.v2_redeem", 19);
	assert_accepted(&p, false);

	req_with_type(&p, type, 65);
	assert_refused(&p, false, why_type);
	req_with_type(&p, "", 0);
	assert_refused(&p, false, why_type);
	req_with_type(&p, "Authz.check", 11);
	assert_refused(&p, false, why_type);
	req_with_type(&p, "authz-check", 11);
	assert_refused(&p, false, why_type);
	req_with_type(&p, "authz check", 11);
	assert_refused(&p, false, why_type);
	req_with_type(&p, "authz/check", 11);
	assert_refused(&p, false, why_type);

	req_begin(&p, 4);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_bool(&p, "type", true);
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, why_type);

	req_begin(&p, 3);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, "missing field 'type'");
	ss_pack_free(&p);
}

static void
test_body_refused(void **state)
{
	ss_pack p;

	(void)state;
	ss_pack_init(&p);

	req_begin(&p, 3);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	assert_refused(&p, false, "missing field 'body'");

	req_begin(&p, 4);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	ss_pack_key(&p, "body");
	msgpack_pack_array(&p.pk, 0);
	assert_refused(&p, false, "field 'body': expected map");

	req_begin(&p, 4);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	ss_pack_key(&p, "body");
	msgpack_pack_nil(&p.pk);
	assert_refused(&p, false, "field 'body': expected map");
	ss_pack_free(&p);
}

static void
test_unknown_and_duplicate_refused(void **state)
{
	ss_pack p;

	(void)state;
	ss_pack_init(&p);

	req_begin(&p, 5);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	ss_pack_kv_cstr(&p, "extra", "x");
	assert_refused(&p, false, "unknown field in request envelope");

	/* Keys are compared whole, and must be strings. */
	req_begin(&p, 5);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	ss_pack_kv_int(&p, "vv", 1);
	assert_refused(&p, false, "unknown field in request envelope");

	req_begin(&p, 5);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	msgpack_pack_int(&p.pk, 1);
	msgpack_pack_int(&p.pk, 1);
	assert_refused(&p, false, "unknown field in request envelope");

	req_begin(&p, 5);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	ss_pack_kv_cstr(&p, "id", "2");
	assert_refused(&p, false, "duplicate field in envelope");

	req_begin(&p, 5);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	empty_body(&p);
	assert_refused(&p, false, "duplicate field in envelope");

	/* "ok" has no place in a request. */
	req_begin(&p, 5);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "type", "a.b");
	ss_pack_kv_cstr(&p, "id", "1");
	ss_pack_kv_bool(&p, "ok", true);
	empty_body(&p);
	assert_refused(&p, false, "unknown field in request envelope");
	ss_pack_free(&p);
}

static void
reply_begin(ss_pack *p, uint32_t n)
{
	ss_pack_reset(p);
	msgpack_pack_map(&p->pk, n);
	ss_pack_kv_int(p, "v", 1);
	ss_pack_kv_cstr(p, "id", "r1");
}

static void
test_reply_refused(void **state)
{
	ss_pack p;

	(void)state;
	ss_pack_init(&p);

	reply_begin(&p, 3);
	empty_body(&p);
	assert_refused(&p, true, "missing field 'ok'");

	reply_begin(&p, 4);
	ss_pack_kv_int(&p, "ok", 1);
	empty_body(&p);
	assert_refused(&p, true, "field 'ok': expected bool");

	reply_begin(&p, 3);
	ss_pack_kv_bool(&p, "ok", true);
	assert_refused(&p, true, "missing field 'body'");

	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", true);
	ss_pack_kv_cstr(&p, "body", "x");
	assert_refused(&p, true, "field 'body': expected map");

	reply_begin(&p, 5);
	ss_pack_kv_bool(&p, "ok", true);
	empty_body(&p);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_cstr(&p, "code", "internal");
	assert_refused(&p, true, "field 'error': not allowed when ok is true");

	reply_begin(&p, 3);
	ss_pack_kv_bool(&p, "ok", false);
	assert_refused(&p, true, "missing field 'error'");

	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", false);
	ss_pack_kv_cstr(&p, "error", "forbidden");
	assert_refused(&p, true, "field 'error': expected map");

	reply_begin(&p, 5);
	ss_pack_kv_bool(&p, "ok", false);
	empty_body(&p);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_cstr(&p, "code", "internal");
	assert_refused(&p, true, "field 'body': not allowed when ok is false");

	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", false);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_cstr(&p, "message", "x");
	assert_refused(&p, true, "missing field 'error.code'");

	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", false);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_int(&p, "code", 403);
	assert_refused(&p, true, "field 'error.code': expected string");

	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", false);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 2);
	ss_pack_kv_cstr(&p, "code", "forbidden");
	ss_pack_kv_int(&p, "message", 1);
	assert_refused(&p, true, "field 'error.message': expected string");

	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", false);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 2);
	ss_pack_kv_cstr(&p, "code", "forbidden");
	ss_pack_kv_cstr(&p, "detail", "x");
	assert_refused(&p, true, "unknown field in 'error'");

	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", false);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 2);
	ss_pack_kv_cstr(&p, "code", "forbidden");
	ss_pack_kv_cstr(&p, "code", "conflict");
	assert_refused(&p, true, "duplicate field in 'error'");

	reply_begin(&p, 5);
	ss_pack_kv_bool(&p, "ok", true);
	ss_pack_kv_cstr(&p, "type", "a.b");
	empty_body(&p);
	assert_refused(&p, true, "unknown field in reply envelope");

	/* The message is optional, and an unknown code is internal. */
	reply_begin(&p, 4);
	ss_pack_kv_bool(&p, "ok", false);
	ss_pack_key(&p, "error");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_cstr(&p, "code", "teapot");
	{
		ss_msg m;
		const char *why = NULL;

		assert_int_equal(
		    ss_msg_decode(&m, p.sb.data, p.sb.size, true, &why), 0);
		assert_int_equal(m.err, SS_EINTERNAL);
		assert_int_equal(m.err_msg.n, 0);
		ss_msg_free(&m);
	}
	ss_pack_free(&p);
}

/* Nesting and size limits apply through the envelope. */
static void
test_limits_through_envelope(void **state)
{
	ss_pack p;
	int i;

	(void)state;
	ss_pack_init(&p);

	/* The top map is depth 1, so 15 maps nest in it (body included)
	 * but not 16. */
	ss_pack_request(&p, "a.b", "1");
	for (i = 0; i < 14; i++) {
		msgpack_pack_map(&p.pk, 1);
		ss_pack_key(&p, "k");
	}
	msgpack_pack_map(&p.pk, 0);
	assert_accepted(&p, false);

	ss_pack_reset(&p);
	ss_pack_request(&p, "a.b", "1");
	for (i = 0; i < 15; i++) {
		msgpack_pack_map(&p.pk, 1);
		ss_pack_key(&p, "k");
	}
	msgpack_pack_map(&p.pk, 0);
	assert_refused(&p, false, "nesting too deep");

	ss_pack_reset(&p);
	ss_pack_request(&p, "a.b", "1");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_key(&p, "blob");
	{
		char *big = calloc(1, SS_MAX_STR_LEN + 1);

		assert_non_null(big);
		msgpack_pack_bin_with_body(&p.pk, big, SS_MAX_STR_LEN + 1);
		free(big);
	}
	assert_refused(&p, false, "string, bin or ext too long");
	ss_pack_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_round_trip),
	    cmocka_unit_test(test_reply_ok_round_trip),
	    cmocka_unit_test(test_reply_err_round_trip),
	    cmocka_unit_test(test_reply_err_retry_after),
	    cmocka_unit_test(test_reply_err_every_code),
	    cmocka_unit_test(test_err_words_and_statuses),
	    cmocka_unit_test(test_refused_by_mpcheck),
	    cmocka_unit_test(test_version_refused),
	    cmocka_unit_test(test_id_refused),
	    cmocka_unit_test(test_type_refused),
	    cmocka_unit_test(test_body_refused),
	    cmocka_unit_test(test_unknown_and_duplicate_refused),
	    cmocka_unit_test(test_reply_refused),
	    cmocka_unit_test(test_limits_through_envelope),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
