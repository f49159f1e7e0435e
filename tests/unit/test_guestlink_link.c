/*
 * tests/unit/test_guestlink_link.c - the pure parts of guestlink: field
 * validation, times, user agents, token ids and sessions, sealed tokens
 * and views, the link record read back from Redis, its status and the
 * link object of API.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "services/guestlink/guestlink.h"

#define TOKEN_KEY "guestlink-unit-token-key-0123456789abcdef"
#define SEAL_KEY  "guestlink-unit-seal-key-0123456789abcdef"

static gl_settings cfg;
static gl_server srv;

static int
setup(void **state)
{
	(void)state;
	cfg.token_key = TOKEN_KEY;
	cfg.public_url = "https://studyshare.example";
	srv.cfg = &cfg;
	if (gl_hashers_init(&srv) != 0)
		return -1;
	return ss_seal_key_init(&srv.seal, SEAL_KEY, strlen(SEAL_KEY));
}

static bool
tp(const char *s, int64_t *ms)
{
	return gl_time_parse(s, strlen(s), ms) == 0;
}

static void
test_time_parse(void **state)
{
	int64_t ms;
	char out[GL_TIME_LEN + 1];

	(void)state;
	assert_true(tp("1970-01-01T00:00:00Z", &ms));
	assert_int_equal(ms, 0);
	assert_true(tp("2026-12-31T00:00:00Z", &ms));
	assert_int_equal(ms, 1798675200000LL);
	assert_true(tp("2026-12-31T01:30:00+01:30", &ms));
	assert_int_equal(ms, 1798675200000LL);
	assert_true(tp("2026-12-30T23:00:00-01:00", &ms));
	assert_int_equal(ms, 1798675200000LL);
	assert_true(tp("2026-12-31T00:00:00.25Z", &ms));
	assert_int_equal(ms, 1798675200250LL);
	assert_true(tp("2024-02-29T12:00:00z", &ms));
	gl_time_fmt(1798675200250LL, out);
	assert_string_equal(out, "2026-12-31T00:00:00Z");
	/* Refused: no zone, impossible dates and times, junk. */
	assert_false(tp("2026-12-31T00:00:00", &ms));
	assert_false(tp("2023-02-29T00:00:00Z", &ms));
	assert_false(tp("2026-13-01T00:00:00Z", &ms));
	assert_false(tp("2026-04-31T00:00:00Z", &ms));
	assert_false(tp("2026-12-31T24:00:00Z", &ms));
	assert_false(tp("2026-12-31T00:00:60Z", &ms));
	assert_false(tp("2026-12-31 00:00:00Z", &ms));
	assert_false(tp("2026-12-31T00:00:00.Z", &ms));
	assert_false(tp("2026-12-31T00:00:00+0100", &ms));
	assert_false(tp("2026-12-31T00:00:00ZZ", &ms));
	assert_false(tp("1969-12-31T23:59:59Z", &ms));
	assert_false(tp("+026-12-31T00:00:00Z", &ms));
}

static void
test_validation(void **state)
{
	(void)state;
	assert_true(gl_valid_worklist("location:ct", 11));
	assert_true(gl_valid_worklist("user:a.b_c-d", 12));
	assert_false(gl_valid_worklist("location:", 9));
	assert_false(gl_valid_worklist("planet:x", 8));
	assert_false(gl_valid_worklist("location:c}t", 12));
	assert_false(gl_valid_worklist("ct", 2));
	assert_true(gl_valid_uid("1.2.840.10008", 13));
	assert_true(gl_valid_uid("0.1", 3));
	assert_false(gl_valid_uid("1..2", 4));
	assert_false(gl_valid_uid("1.02", 4));
	assert_false(gl_valid_uid("1.2.", 4));
	assert_false(gl_valid_uid("1,2", 3));
	assert_false(gl_valid_uid("", 0));
	assert_true(gl_valid_addr("192.0.2.1", 9));
	assert_true(gl_valid_addr("[2001:db8::1]:443", 17));
	assert_false(gl_valid_addr("1.2.3.4 x", 9));
	assert_false(gl_valid_addr("", 0));
	assert_true(gl_valid_text("héllo\nworld", 12, true));
	assert_false(gl_valid_text("héllo\nworld", 12, false));
	assert_false(gl_valid_text("a\x1b[2J", 5, true));
	assert_false(gl_valid_text("\xff", 1, true));
	assert_true(gl_valid_id("0123456789abcdef0123", 20));
	assert_false(gl_valid_id("0123456789ABCDEF0123", 20));
	assert_false(gl_valid_id("0123456789abcdef012", 19));
}

/* Birth dates as typed: year-first forms and spaces become YYYYMMDD;
 * everything else stays as typed (and is a wrong password). */
static void
test_dob_typed(void **state)
{
	static const char *const cases[][2] = {
	    {"19800131", "19800131"},
	    {"1980-01-31", "19800131"},
	    {"1980/01/31", "19800131"},
	    {"1980.01.31", "19800131"},
	    {" 19800131\t", "19800131"},
	    {"  1980-01-31 ", "19800131"},
	    {"31/01/1980", "31/01/1980"},
	    {"01/31/1980", "01/31/1980"},
	    {"1980-01/31", "1980-01/31"},
	    {"1980-1-31", "1980-1-31"},
	    {"", ""},
	    {"   ", ""},
	    {"abc", "abc"},
	};
	char pw[32];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = strlen(cases[i][0]);

		memset(pw, 'x', sizeof pw);
		memcpy(pw, cases[i][0], n + 1);
		gl_dob_typed(pw, &n);
		assert_int_equal(n, strlen(cases[i][1]));
		assert_memory_equal(pw, cases[i][1], n);
		/* what was dropped is wiped, up to the old length */
		for (size_t k = n; k < strlen(cases[i][0]); k++)
			assert_int_equal(pw[k], 0);
	}
}

static void
test_user_agent_cleaned(void **state)
{
	char out[GL_UA_KEEP + 1], in[GL_UA_KEEP + 8];

	(void)state;
	gl_clean_ua("Mozilla/5.0\r\nX: y", 17, out);
	assert_string_equal(out, "Mozilla/5.0??X: y");
	gl_clean_ua("caf\xc3\xa9", 5, out);
	assert_string_equal(out, "caf\xc3\xa9");
	gl_clean_ua("bad\xff", 4, out);
	assert_string_equal(out, "bad?");
	/* Cut at GL_UA_KEEP, never inside a character. */
	memset(in, 'a', sizeof in);
	memcpy(in + GL_UA_KEEP - 1, "\xc3\xa9", 2);
	gl_clean_ua(in, sizeof in, out);
	assert_int_equal(strlen(out), GL_UA_KEEP - 1);
	assert_int_equal(out[GL_UA_KEEP - 2], 'a');
	gl_clean_ua("", 0, out);
	assert_string_equal(out, "");
}

/* The creator's mail names the browser from a table, never with the
 * guest's own words. */
static void
test_user_agent_summary(void **state)
{
	static const char *const cases[][2] = {
	    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	     "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	     "Chrome on Windows"},
	    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	     "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0",
	     "Edge on Windows"},
	    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
	     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
	     "Mobile/15E148 Safari/604.1",
	     "Safari on iOS"},
	    {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
	     "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
	     "Chrome on Android"},
	    {"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 "
	     "Firefox/121.0",
	     "Firefox on Linux"},
	    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) "
	     "AppleWebKit/605.1.15 "
	     "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
	     "Safari on macOS"},
	    {"curl/7.88.1", "curl"},
	    {"IMPORTANT: this link was flagged; confirm your password at "
	     "https://phish.example/login",
	     ""},
	    {"Windows", "Windows"},
	    {"", ""},
	};
	char out[GL_UA_SUMMARY_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		gl_ua_summary(cases[i][0], out);
		assert_string_equal(out, cases[i][1]);
	}
}

static void
test_token_ids(void **state)
{
	char tok[SS_TOKEN_LEN + 1], th[SS_TOKEN_HASH_LEN + 1],
	    th2[SS_TOKEN_HASH_LEN + 1], id[GL_ID_LEN + 1], id2[GL_ID_LEN + 1];

	(void)state;
	assert_int_equal(ss_token_new(tok), 0);
	assert_int_equal(gl_token_ids(&srv, tok, SS_TOKEN_LEN, th, id), 0);
	assert_int_equal(gl_token_ids(&srv, tok, SS_TOKEN_LEN, th2, id2), 0);
	assert_string_equal(th, th2);
	assert_string_equal(id, id2);
	assert_true(gl_valid_id(id, strlen(id)));
	/* The id is not a prefix of the lookup hash: other purpose. */
	assert_memory_not_equal(th, id, GL_ID_LEN);
	assert_null(strstr(th, tok));
	/* Junk is not a token. */
	assert_int_not_equal(gl_token_ids(&srv, "abc", 3, th, id), 0);
	tok[0] = '!';
	assert_int_not_equal(gl_token_ids(&srv, tok, SS_TOKEN_LEN, th, id), 0);
}

static void
test_sessions(void **state)
{
	char sess[GL_SESSION_LEN + 1], key[GL_KEY_MAX], key2[GL_KEY_MAX];
	char id[GL_ID_LEN + 1];

	(void)state;
	assert_int_equal(
	    gl_session_new(&srv, "0123456789abcdef0123", sess, key), 0);
	assert_int_equal(strlen(sess), GL_SESSION_LEN);
	assert_memory_equal(sess, "0123456789abcdef0123.", 21);
	assert_memory_equal(key, "link:{0123456789abcdef0123}:s:", 30);
	assert_int_equal(strlen(key), 30 + SS_TOKEN_HASH_LEN);
	/* The key holds a hash, not the session's token. */
	assert_null(strstr(key, sess + 21));
	assert_int_equal(gl_session_key(&srv, sess, strlen(sess), id, key2), 0);
	assert_string_equal(id, "0123456789abcdef0123");
	assert_string_equal(key, key2);
	sess[20] = '-';
	assert_int_equal(gl_session_key(&srv, sess, strlen(sess), id, key2),
	                 SS_EBADREQ);
	assert_int_equal(gl_session_key(&srv, "x", 1, id, key2), SS_EBADREQ);
}

static void
test_sealed_token_and_view(void **state)
{
	unsigned char box[SS_TOKEN_LEN + SS_SEAL_OVERHEAD], *v, *plain;
	char tok[SS_TOKEN_LEN + 1], back[SS_TOKEN_LEN + 1];
	size_t n, vn, pn;

	(void)state;
	assert_int_equal(ss_token_new(tok), 0);
	assert_int_equal(gl_seal_token(&srv, "aaaaaaaaaaaaaaaaaaaa", tok, box,
	                               sizeof box, &n),
	                 0);
	assert_int_equal(
	    gl_open_token(&srv, "aaaaaaaaaaaaaaaaaaaa", (char *)box, n, back),
	    0);
	assert_string_equal(tok, back);
	/* Moved to another link, it does not open. */
	assert_int_equal(
	    gl_open_token(&srv, "bbbbbbbbbbbbbbbbbbbb", (char *)box, n, back),
	    SS_EINTERNAL);
	assert_string_equal(back, "");
	assert_int_equal(
	    gl_seal_view(&srv, "aaaaaaaaaaaaaaaaaaaa", "19800131", 8, &v, &vn),
	    0);
	assert_null(memmem(v, vn, "19800131", 8));
	assert_int_equal(gl_open_view(&srv, "aaaaaaaaaaaaaaaaaaaa", (char *)v,
	                              vn, &plain, &pn),
	                 0);
	assert_int_equal(pn, 8);
	assert_memory_equal(plain, "19800131", 8);
	free(plain);
	/* A view is not a token: the contexts differ. */
	assert_int_equal(gl_open_view(&srv, "aaaaaaaaaaaaaaaaaaaa", (char *)box,
	                              n, &plain, &pn),
	                 SS_EINTERNAL);
	assert_null(plain);
	free(v);
}

/* A fake HMGET reply of the link fields. */
typedef struct fake {
	redisReply top;
	redisReply e[GL_NFIELDS];
	redisReply *ep[GL_NFIELDS];
} fake;

static void
fake_init(fake *f, const char *const vals[GL_NFIELDS], const char *tok,
          size_t toklen)
{
	memset(f, 0, sizeof *f);
	f->top.type = REDIS_REPLY_ARRAY;
	f->top.elements = GL_NFIELDS;
	f->top.element = f->ep;
	for (int i = 0; i < GL_NFIELDS; i++) {
		f->ep[i] = &f->e[i];
		if (i == GL_F_TOK && tok != NULL) {
			f->e[i].type = REDIS_REPLY_STRING;
			f->e[i].str = (char *)tok;
			f->e[i].len = toklen;
		} else if (vals[i] == NULL) {
			f->e[i].type = REDIS_REPLY_NIL;
		} else {
			f->e[i].type = REDIS_REPLY_STRING;
			f->e[i].str = (char *)vals[i];
			f->e[i].len = strlen(vals[i]);
		}
	}
}

static const char *const record[GL_NFIELDS] = {
    [GL_F_TOK] = NULL,
    [GL_F_STUDY] = "1.2.3",
    [GL_F_WL] = "location:ct",
    [GL_F_BY] = "alice",
    [GL_F_AT] = "1798675200000",
    [GL_F_EXP] = "1798761600000",
    [GL_F_MAX] = "3",
    [GL_F_USES] = "1",
    [GL_F_MAXPW] = "5",
    [GL_F_FAIL] = "2",
    [GL_F_DOB] = "1",
    [GL_F_EMAIL] = "pat@example.org",
    [GL_F_MSG] = "",
    [GL_F_NOTIFY] = "0",
    [GL_F_PRIORS] = "1",
    [GL_F_PUIDS] = "1.2.1,1.2.0",
    [GL_F_STATE] = "active",
};

static void
test_link_parse_and_status(void **state)
{
	const char *vals[GL_NFIELDS];
	gl_link l;
	fake f;

	(void)state;
	fake_init(&f, record, NULL, 0);
	assert_int_equal(gl_link_parse(&l, "0123456789abcdef0123", &f.top), 0);
	assert_int_equal(l.max_uses, 3);
	assert_int_equal(l.fail, 2);
	assert_true(l.dob);
	assert_false(l.notify);
	assert_string_equal(gl_link_status(&l, 1798675200000LL), "active");
	assert_string_equal(gl_link_status(&l, 1798761600000LL), "expired");
	l.uses = 3;
	assert_string_equal(gl_link_status(&l, 0), "used_up");
	l.uses = 1;
	l.state.p = "locked";
	l.state.n = 6;
	assert_string_equal(gl_link_status(&l, 0), "locked");
	/* What ended a link for good comes before a lock. */
	assert_string_equal(gl_link_status(&l, 1798761600000LL), "expired");
	l.state.p = "deleted";
	l.state.n = 7;
	assert_string_equal(gl_link_status(&l, 1798761600000LL), "deleted");

	/* Gone, and malformed. */
	memcpy(vals, record, sizeof vals);
	vals[GL_F_STUDY] = NULL;
	fake_init(&f, vals, NULL, 0);
	assert_int_equal(gl_link_parse(&l, "x", &f.top), SS_ENOTFOUND);
	memcpy(vals, record, sizeof vals);
	vals[GL_F_USES] = "1x";
	fake_init(&f, vals, NULL, 0);
	assert_int_equal(gl_link_parse(&l, "x", &f.top), SS_EINTERNAL);
	memcpy(vals, record, sizeof vals);
	vals[GL_F_DOB] = "yes";
	fake_init(&f, vals, NULL, 0);
	assert_int_equal(gl_link_parse(&l, "x", &f.top), SS_EINTERNAL);
	f.top.elements = GL_NFIELDS - 1;
	assert_int_equal(gl_link_parse(&l, "x", &f.top), SS_EINTERNAL);
}

static const msgpack_object *
get(const msgpack_object *m, const char *k)
{
	const msgpack_object *o = ss_map_get(m, k);

	if (o == NULL)
		fail_msg("no field %s", k);
	return o;
}

static void
test_link_object(void **state)
{
	unsigned char box[SS_TOKEN_LEN + SS_SEAL_OVERHEAD];
	char tok[SS_TOKEN_LEN + 1], url[128];
	const msgpack_object *o, *pr;
	msgpack_unpacked up;
	gl_link l;
	ss_pack p;
	size_t n;
	fake f;

	(void)state;
	assert_int_equal(ss_token_new(tok), 0);
	assert_int_equal(gl_seal_token(&srv, "0123456789abcdef0123", tok, box,
	                               sizeof box, &n),
	                 0);
	fake_init(&f, record, (const char *)box, n);
	assert_int_equal(gl_link_parse(&l, "0123456789abcdef0123", &f.top), 0);
	ss_pack_init(&p);
	gl_link_pack(&srv, &p, &l, 1798675200000LL, 1, 0);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	o = &up.data;
	assert_int_equal(o->via.map.size, 20);
	snprintf(url, sizeof url, "https://studyshare.example/g/%s", tok);
	assert_true(ss_obj_streq(get(o, "url"), url));
	assert_true(ss_obj_streq(get(o, "id"), "0123456789abcdef0123"));
	assert_true(ss_obj_streq(get(o, "created_at"), "2026-12-31T00:00:00Z"));
	assert_true(ss_obj_streq(get(o, "expires_at"), "2027-01-01T00:00:00Z"));
	assert_int_equal(get(o, "max_uses")->via.u64, 3);
	assert_int_equal(get(o, "max_password_attempts")->via.u64, 5);
	assert_int_equal(get(o, "password_attempts")->via.u64, 2);
	assert_true(get(o, "has_password")->via.boolean);
	assert_true(get(o, "password_is_dob")->via.boolean);
	assert_int_equal(get(o, "message")->type, MSGPACK_OBJECT_NIL);
	assert_true(ss_obj_streq(get(o, "email"), "pat@example.org"));
	pr = get(o, "priors");
	assert_int_equal(pr->via.array.size, 2);
	assert_true(ss_obj_streq(&pr->via.array.ptr[0], "1.2.1"));
	assert_true(ss_obj_streq(&pr->via.array.ptr[1], "1.2.0"));
	assert_true(ss_obj_streq(get(o, "status"), "active"));
	assert_true(get(o, "can_delete")->via.boolean);
	msgpack_unpacked_destroy(&up);

	/* Deleted: no token, no URL; unlimited uses and no password. */
	l.tok.n = 0;
	l.max_uses = 0;
	l.max_pw = 0;
	l.puids.n = 0;
	ss_pack_reset(&p);
	gl_link_pack(&srv, &p, &l, 1798675200000LL, -1, 0);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	o = &up.data;
	assert_int_equal(o->via.map.size, 19);
	assert_null(ss_map_get(o, "can_delete"));
	assert_int_equal(get(o, "url")->type, MSGPACK_OBJECT_NIL);
	assert_int_equal(get(o, "max_uses")->type, MSGPACK_OBJECT_NIL);
	assert_int_equal(get(o, "max_password_attempts")->type,
	                 MSGPACK_OBJECT_NIL);
	assert_false(get(o, "has_password")->via.boolean);
	assert_int_equal(get(o, "priors")->via.array.size, 0);
	msgpack_unpacked_destroy(&up);
	ss_pack_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time_parse),
	    cmocka_unit_test(test_validation),
	    cmocka_unit_test(test_user_agent_cleaned),
	    cmocka_unit_test(test_user_agent_summary),
	    cmocka_unit_test(test_dob_typed),
	    cmocka_unit_test(test_token_ids),
	    cmocka_unit_test(test_sessions),
	    cmocka_unit_test(test_sealed_token_and_view),
	    cmocka_unit_test(test_link_parse_and_status),
	    cmocka_unit_test(test_link_object),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
