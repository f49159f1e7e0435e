/*
 * tests/unit/test_notify_job.c - nt_job_decode() on good and bad jobs.
 *
 * A mail is built field by field with msgpack-c, broken in one way per
 * case, and sealed in a job under the test's mail key (ss_mail_seal), so
 * that every check behind the seal is reached the way notify reaches it;
 * every refusal must be SS_EUNPROC with a reason that says what was
 * wrong.  The decoder reads bytes any Redis client may have written: a
 * job under another key, or bytes that are no job, are refused too.
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
#include "runtime/mailq.h"
#include "runtime/seal.h"
#include "services/notify/notify.h"

#define ID     "0123456789abcdef0123456789abcdef"
#define SECRET "test-mail-key-0123456789abcdef0123456789"
#define OTHER  "another-mail-key-0123456789abcdef01234567"

static ss_seal_key key, other;

/* What the job under construction looks like; each case changes one. */
typedef struct spec {
	const char *id; /* the job's (outside the box) */
	const char *template;
	const char *to;
	int nvars; /* -1: "vars" is a string, not a map */
	const char *const *vars;
	bool vars_nested; /* a map as a var value: depth 3 */
	bool created_missing;
	int64_t created_at;
	const char *extra;     /* an unknown field */
	const char *bounce_to; /* NULL: none */
} spec;

static const char *const good_vars[] = {"sharer_name", "Dr. Zoë",
                                        "worklist_name", "CT", NULL};

static spec
good(void)
{
	spec s = {ID,    "share.notice", "bob@example.org", 2,    good_vars,
	          false, false,          1700000000,        NULL, NULL};
	return s;
}

/* The mail of s, sealed in a job of s->id under key. */
static void
pack(ss_pack *p, const spec *s)
{
	uint32_t n = 3 + !s->created_missing + (s->extra != NULL) +
	             (s->bounce_to != NULL);
	ss_pack in;
	ss_pack *q = &in;

	ss_pack_init(&in);
	ss_pack_reset(p);
	msgpack_pack_map(&q->pk, n);
	ss_pack_kv_cstr(q, "template", s->template);
	ss_pack_kv_cstr(q, "to", s->to);
	ss_pack_key(q, "vars");
	if (s->nvars < 0) {
		ss_pack_cstr(q, "not a map");
	} else {
		msgpack_pack_map(&q->pk,
		                 (uint32_t)s->nvars + (s->vars_nested ? 1 : 0));
		for (int i = 0; i < s->nvars; i++)
			ss_pack_kv_cstr(q, s->vars[2 * i], s->vars[2 * i + 1]);
		if (s->vars_nested) {
			ss_pack_key(q, "nested");
			msgpack_pack_map(&q->pk, 0);
		}
	}
	if (!s->created_missing)
		ss_pack_kv_int(q, "created_at", s->created_at);
	if (s->extra != NULL)
		ss_pack_kv_int(q, s->extra, 1);
	if (s->bounce_to != NULL)
		ss_pack_kv_cstr(q, "bounce_to", s->bounce_to);
	assert_int_equal(ss_mail_seal(p, &key, s->id, in.sb.data, in.sb.size),
	                 0);
	ss_pack_free(&in);
}

/* Seals raw mail bytes in a job of ID under key. */
static void
seal_raw(ss_pack *p, const void *mail, size_t len)
{
	ss_pack_reset(p);
	assert_int_equal(ss_mail_seal(p, &key, ID, mail, len), 0);
}

/* Decodes bytes that must be refused with a reason containing want. */
static void
refused_bytes(const void *buf, size_t len, const char *want)
{
	char why[NT_WHY_MAX] = "";
	nt_job j;

	assert_int_equal(nt_job_decode(&j, &key, buf, len, why, sizeof why),
	                 SS_EUNPROC);
	if (strstr(why, want) == NULL)
		fail_msg("reason \"%s\" does not contain \"%s\"", why, want);
}

static void
refused(const spec *s, const char *want)
{
	ss_pack p;

	ss_pack_init(&p);
	pack(&p, s);
	refused_bytes(p.sb.data, p.sb.size, want);
	ss_pack_free(&p);
}

static void
test_good_job(void **state)
{
	spec s = good();
	char why[NT_WHY_MAX] = "";
	ss_pack p;
	nt_job j;

	(void)state;
	ss_pack_init(&p);
	pack(&p, &s);
	assert_int_equal(
	    nt_job_decode(&j, &key, p.sb.data, p.sb.size, why, sizeof why), 0);
	assert_string_equal(j.id, ID);
	assert_string_equal(j.template, "share.notice");
	assert_string_equal(j.to, "bob@example.org");
	assert_int_equal(j.created_at, 1700000000);
	assert_int_equal(j.nvars, 2);
	assert_int_equal(j.vars[0].nlen, strlen("sharer_name"));
	assert_memory_equal(j.vars[0].name, "sharer_name", j.vars[0].nlen);
	assert_int_equal(j.vars[0].vlen, strlen("Dr. Zoë"));
	assert_memory_equal(j.vars[0].val, "Dr. Zoë", j.vars[0].vlen);
	assert_memory_equal(j.vars[1].val, "CT", 2);
	nt_job_free(&j);
	ss_pack_free(&p);
}

/* What ss_mail_encode() makes, notify decodes. */
static void
test_encoded_job_decodes(void **state)
{
	static const char *const vars[] = {"link_id",  "L1",   "time",
	                                   "now",      "addr", "::1",
	                                   "attempts", "5",    NULL};
	ss_mail m = {.template = "guestlink.locked",
	             .to = "alice@example.org",
	             .vars = vars};
	char id[SS_MAIL_ID_LEN + 1], why[NT_WHY_MAX];
	ss_pack p;
	nt_job j;

	(void)state;
	ss_pack_init(&p);
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), 0);
	assert_int_equal(
	    nt_job_decode(&j, &key, p.sb.data, p.sb.size, why, sizeof why), 0);
	assert_string_equal(j.id, id);
	assert_string_equal(j.template, "guestlink.locked");
	assert_int_equal(j.nvars, 4);
	nt_job_free(&j);
	ss_pack_free(&p);
}

/* A sender to tell (bounce_to) and a given id travel with the job; a
 * bad one of either is refused by the encoder, and the notice of a job
 * given up has an id of its own, derived, and no bounce_to. */
static void
test_bounce_to_and_given_id(void **state)
{
	static const char *const vars[] = {"sharer_name", "A", "url", "u",
	                                   "expires_at",  "e", NULL};
	static const char given[] = "0123456789abcdef0123456789abcdef";
	ss_mail m = {.template = "guestlink.recipient",
	             .to = "patient@example.org",
	             .vars = vars,
	             .bounce_to = "alice@example.org",
	             .id = given};
	char id[SS_MAIL_ID_LEN + 1], nid[SS_MAIL_ID_LEN + 1], why[NT_WHY_MAX];
	ss_pack p;
	nt_job j;

	(void)state;
	ss_pack_init(&p);
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), 0);
	assert_string_equal(id, given);
	assert_int_equal(
	    nt_job_decode(&j, &key, p.sb.data, p.sb.size, why, sizeof why), 0);
	assert_string_equal(j.id, given);
	assert_string_equal(j.bounce_to, "alice@example.org");
	assert_true(nt_bounce_due(&j));
	nt_bounce_id(j.id, nid);
	assert_true(ss_mail_id_ok(nid, strlen(nid)));
	assert_string_not_equal(nid, given);
	/* derived: the same job gives the same notice id, another another */
	nt_bounce_id(given, id);
	assert_string_equal(id, nid);
	nt_bounce_id("fedcba9876543210fedcba9876543210", id);
	assert_string_not_equal(id, nid);
	/* a notice is never bounced again */
	snprintf(j.template, sizeof j.template, "mail.undelivered");
	assert_false(nt_bounce_due(&j));
	nt_job_free(&j);
	/* without bounce_to: nobody to tell */
	ss_pack_free(&p);
	ss_pack_init(&p);
	m.bounce_to = "";
	m.id = NULL;
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), 0);
	assert_string_not_equal(id, given); /* a fresh one */
	assert_int_equal(
	    nt_job_decode(&j, &key, p.sb.data, p.sb.size, why, sizeof why), 0);
	assert_string_equal(j.bounce_to, "");
	assert_false(nt_bounce_due(&j));
	nt_job_free(&j);
	/* refused: a bounce_to that is no address, an id that is none */
	m.bounce_to = "alice@example.org\r\nBcc: eve@example.org";
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), SS_EBADREQ);
	m.bounce_to = "not an address";
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), SS_EBADREQ);
	m.bounce_to = NULL;
	m.id = "0123456789ABCDEF0123456789ABCDEF";
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), SS_EBADREQ);
	m.id = "0123";
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), SS_EBADREQ);
	ss_pack_free(&p);
}

static void
test_bad_bytes(void **state)
{
	/* fixmap of 1 whose key claims 31 bytes that are not there */
	static const uint8_t trunc[] = {0x81, 0xbf, 'a'};
	/* an array at the top */
	static const uint8_t arr[] = {0x91, 0x01};
	/* a map32 that declares 4 billion entries in 5 bytes */
	static const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	/* a good empty map and one byte more */
	static const uint8_t trail[] = {0x80, 0x00};

	ss_pack p;

	(void)state;
	/* As the job itself... */
	refused_bytes("", 0, "bad msgpack");
	refused_bytes("\xc1", 1, "bad msgpack");
	refused_bytes(trunc, sizeof trunc, "truncated");
	refused_bytes(arr, sizeof arr, "not a map");
	refused_bytes(huge, sizeof huge, "count exceeds");
	refused_bytes(trail, sizeof trail, "trailing bytes");
	refused_bytes("hello, world", 12, "bad msgpack");
	/* ...and as the mail in a box that opens. */
	ss_pack_init(&p);
	seal_raw(&p, "", 0);
	refused_bytes(p.sb.data, p.sb.size, "bad msgpack in the box");
	seal_raw(&p, trunc, sizeof trunc);
	refused_bytes(p.sb.data, p.sb.size, "truncated");
	seal_raw(&p, arr, sizeof arr);
	refused_bytes(p.sb.data, p.sb.size, "not a map");
	seal_raw(&p, huge, sizeof huge);
	refused_bytes(p.sb.data, p.sb.size, "count exceeds");
	seal_raw(&p, trail, sizeof trail);
	refused_bytes(p.sb.data, p.sb.size, "trailing bytes");
	ss_pack_free(&p);
}

/* What the seal adds: a job that does not open is refused, with its id. */
static void
test_sealing(void **state)
{
	static const char *const vars[] = {"sharer_name", "Dr. Zoë",
	                                   "worklist_name", "CT", NULL};
	ss_mail m = {
	    .template = "share.notice", .to = "bob@example.org", .vars = vars};
	char id[SS_MAIL_ID_LEN + 1], why[NT_WHY_MAX] = "";
	spec s = good();
	ss_pack p;
	nt_job j;

	(void)state;
	ss_pack_init(&p);
	assert_int_equal(ss_mail_encode(&p, &other, &m, id), 0);
	assert_int_equal(
	    nt_job_decode(&j, &key, p.sb.data, p.sb.size, why, sizeof why),
	    SS_EUNPROC);
	assert_non_null(strstr(why, "box does not open"));
	assert_string_equal(j.id, id);
	assert_null(j.plain);
	/* The key it was sealed with opens it, and j owns the mail. */
	assert_int_equal(
	    nt_job_decode(&j, &other, p.sb.data, p.sb.size, why, sizeof why),
	    0);
	assert_string_equal(j.id, id);
	assert_non_null(j.plain);
	assert_true(j.vars[0].val >= (const char *)j.plain &&
	            j.vars[0].val < (const char *)j.plain + j.plainlen);
	memset(p.sb.data, 0, p.sb.size); /* the job's bytes may go */
	assert_memory_equal(j.vars[0].val, "Dr. Zoë", j.vars[0].vlen);
	nt_job_free(&j);
	assert_null(j.plain);
	/* A clear job of the old version is refused, never read. */
	ss_pack_reset(&p);
	msgpack_pack_map(&p.pk, 6);
	ss_pack_kv_int(&p, "v", 1);
	ss_pack_kv_cstr(&p, "id", ID);
	ss_pack_kv_cstr(&p, "template", "share.notice");
	ss_pack_kv_cstr(&p, "to", "bob@example.org");
	ss_pack_key(&p, "vars");
	msgpack_pack_map(&p.pk, 0);
	ss_pack_kv_int(&p, "created_at", 1);
	refused_bytes(p.sb.data, p.sb.size, "not sealed");
	/* The mail's checks reached without a key. */
	s.to = "x@example.org\nBcc: y@example.org";
	{
		ss_pack in;

		ss_pack_init(&in);
		msgpack_pack_map(&in.pk, 4);
		ss_pack_kv_cstr(&in, "template", s.template);
		ss_pack_kv_cstr(&in, "to", s.to);
		ss_pack_key(&in, "vars");
		msgpack_pack_map(&in.pk, 0);
		ss_pack_kv_int(&in, "created_at", 1);
		assert_int_equal(nt_job_decode_mail(&j, ID, in.sb.data,
		                                    in.sb.size, why,
		                                    sizeof why),
		                 SS_EUNPROC);
		assert_non_null(strstr(why, "contains CR or LF"));
		assert_string_equal(j.id, ID);
		ss_pack_free(&in);
	}
	ss_pack_free(&p);
}

static void
test_bad_fields(void **state)
{
	static const char *const bad_name[] = {"Sharer", "x", NULL};
	static const char *const dup[] = {"a", "1", "a", "2", NULL};
	static const char *const overlong[] = {"a", "\xc0\xaf", NULL};
	static const char *const surrogate[] = {"a", "\xed\xa0\x80", NULL};
	static const char *const cut[] = {"a", "\xe2\x82", NULL};
	spec s;

	(void)state;
#define CASE(change, want)                                                     \
	do {                                                                   \
		s = good();                                                    \
		change;                                                        \
		refused(&s, want);                                             \
	} while (0)
	CASE(s.template = "share.unknown", "unknown template");
	CASE(s.template = "", "field 'template'");
	CASE(s.to = "bob@example.org\r\nBcc: eve@example.org",
	     "contains CR or LF");
	CASE(s.to = "bob@example.org\n", "contains CR or LF");
	CASE(s.to = "not an address", "not a mail address");
	CASE(s.to = "\"quoted\"@example.org", "not a mail address");
	CASE(s.to = "a@b..c", "not a mail address");
	CASE(s.nvars = -1, "field 'vars'");
	CASE(s.vars_nested = true, "nesting too deep");
	CASE((s.vars = bad_name, s.nvars = 1), "names must");
	CASE((s.vars = dup, s.nvars = 2), "duplicate name 'a'");
	CASE((s.vars = overlong, s.nvars = 1), "var 'a'");
	CASE((s.vars = surrogate, s.nvars = 1), "not UTF-8");
	CASE((s.vars = cut, s.nvars = 1), "not UTF-8");
	CASE(s.bounce_to = "not an address", "field 'bounce_to'");
	CASE(s.bounce_to = "a@example.org\r\nBcc: eve@example.org",
	     "field 'bounce_to'");
	CASE(s.bounce_to = "", "field 'bounce_to'");
	CASE(s.created_missing = true, "missing field 'created_at'");
	CASE(s.created_at = -1, "field 'created_at'");
	CASE(s.extra = "priority", "unknown field");
#undef CASE
}

static void
test_bad_values(void **state)
{
	char *big = malloc(SS_MAIL_MAX_VALUE + 2);
	const char *vars[3] = {"message", big, NULL};
	const char *many[2 * (SS_MAIL_MAX_VARS + 1) + 1];
	char names[SS_MAIL_MAX_VARS + 1][8];
	spec s;
	ss_pack p;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', SS_MAIL_MAX_VALUE + 1);
	big[SS_MAIL_MAX_VALUE + 1] = '\0';
	s = good();
	s.vars = vars;
	s.nvars = 1;
	refused(&s, "too long");
	/* Exactly at the bound it is fine. */
	big[SS_MAIL_MAX_VALUE] = '\0';
	{
		char why[NT_WHY_MAX];
		nt_job j;

		ss_pack_init(&p);
		pack(&p, &s);
		assert_int_equal(nt_job_decode(&j, &key, p.sb.data, p.sb.size,
		                               why, sizeof why),
		                 0);
		assert_int_equal(j.vars[0].vlen, SS_MAIL_MAX_VALUE);
		nt_job_free(&j);
		ss_pack_free(&p);
	}
	for (int i = 0; i <= SS_MAIL_MAX_VARS; i++) {
		snprintf(names[i], sizeof names[i], "v%d", i);
		many[2 * i] = names[i];
		many[2 * i + 1] = "x";
	}
	many[2 * (SS_MAIL_MAX_VARS + 1)] = NULL;
	s = good();
	s.vars = many;
	s.nvars = SS_MAIL_MAX_VARS + 1;
	refused(&s, "field 'vars'");
	/* A NUL inside a value. */
	{
		ss_pack q;

		ss_pack_init(&q);
		msgpack_pack_map(&q.pk, 4);
		ss_pack_kv_cstr(&q, "template", "share.notice");
		ss_pack_kv_cstr(&q, "to", "bob@example.org");
		ss_pack_key(&q, "vars");
		msgpack_pack_map(&q.pk, 1);
		ss_pack_key(&q, "sharer_name");
		ss_pack_strn(&q, "a\0b", 3);
		ss_pack_kv_int(&q, "created_at", 1);
		ss_pack_init(&p);
		seal_raw(&p, q.sb.data, q.sb.size);
		refused_bytes(p.sb.data, p.sb.size, "var 'sharer_name'");
		ss_pack_free(&p);
		ss_pack_free(&q);
	}
	free(big);
}

/* A refused job still names itself when its id was readable. */
static void
test_refusal_keeps_the_id(void **state)
{
	char why[NT_WHY_MAX];
	spec s = good();
	ss_pack p;
	nt_job j;

	(void)state;
	ss_pack_init(&p);
	s.to = "a@example.org\r\nBcc: eve@example.org";
	pack(&p, &s);
	assert_int_equal(
	    nt_job_decode(&j, &key, p.sb.data, p.sb.size, why, sizeof why),
	    SS_EUNPROC);
	assert_string_equal(j.id, ID);
	/* A job whose id is no id names none. */
	ss_pack_reset(&p);
	msgpack_pack_map(&p.pk, 3);
	ss_pack_kv_int(&p, "v", SS_MAIL_VERSION);
	ss_pack_kv_cstr(&p, "id", "not hex, not an id, not 32 long!");
	ss_pack_key(&p, "box");
	msgpack_pack_bin(&p.pk, 0);
	assert_int_equal(
	    nt_job_decode(&j, &key, p.sb.data, p.sb.size, why, sizeof why),
	    SS_EUNPROC);
	assert_string_equal(j.id, "");
	ss_pack_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_job),
	    cmocka_unit_test(test_encoded_job_decodes),
	    cmocka_unit_test(test_bounce_to_and_given_id),
	    cmocka_unit_test(test_bad_bytes),
	    cmocka_unit_test(test_sealing),
	    cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_refusal_keeps_the_id),
	};

	if (ss_seal_key_init(&key, SECRET, strlen(SECRET)) != 0 ||
	    ss_seal_key_init(&other, OTHER, strlen(OTHER)) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
