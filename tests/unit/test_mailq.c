/*
 * tests/unit/test_mailq.c - the producer side of the mail queue:
 * ss_mail_encode() and its sealed envelope, ss_mail_open() on good and
 * bad jobs, the shared checks and ss_mailq_push() against a real
 * redis-server (redis_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <msgpack.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "runtime/daemon.h"
#include "runtime/mailq.h"
#include "runtime/redis.h"
#include "runtime/seal.h"
#include "tests/unit/redis_fixture.h"

#define SECRET "test-mail-key-0123456789abcdef0123456789"
#define OTHER  "another-mail-key-0123456789abcdef01234567"

static ss_seal_key key, other;

static const char *const vars[] = {
    "sharer_name", "Dr. Zoë Müller", "worklist_name",
    "CT",          "message",        "line one\nline two",
    NULL};

/* The job's map decoded with msgpack-c. */
typedef struct decoded {
	msgpack_unpacked up;
	const msgpack_object *map;
} decoded;

static void
decode(decoded *d, const char *buf, size_t len)
{
	size_t off = 0;

	msgpack_unpacked_init(&d->up);
	assert_int_equal(msgpack_unpack_next(&d->up, buf, len, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, len);
	assert_int_equal(d->up.data.type, MSGPACK_OBJECT_MAP);
	d->map = &d->up.data;
}

static const msgpack_object *
get(const decoded *d, const char *key)
{
	for (uint32_t i = 0; i < d->map->via.map.size; i++) {
		const msgpack_object *k = &d->map->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &d->map->via.map.ptr[i].val;
	}
	return NULL;
}

static void
assert_str(const msgpack_object *o, const char *want)
{
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_STR);
	assert_int_equal(o->via.str.size, strlen(want));
	assert_memory_equal(o->via.str.ptr, want, o->via.str.size);
}

/* A sealed job: the envelope holds v, id and the box, and nothing of the
 * mail in clear; the box opens into the mail. */
static void
check_job(const char *buf, size_t len, const char *id)
{
	const msgpack_object *o;
	unsigned char *plain;
	size_t plainlen;
	char got[SS_MAIL_ID_LEN + 1], why[256];
	decoded d, in;
	time_t now = time(NULL);

	decode(&d, buf, len);
	assert_int_equal(d.map->via.map.size, 3);
	o = get(&d, "v");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_int_equal(o->via.u64, SS_MAIL_VERSION);
	assert_str(get(&d, "id"), id);
	o = get(&d, "box");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
	msgpack_unpacked_destroy(&d.up);
	/* Nothing of the mail is readable in the job's bytes. */
	assert_null(memmem(buf, len, "bob@example.org", 15));
	assert_null(memmem(buf, len, "share.notice", 12));
	assert_null(memmem(buf, len, "line one", 8));
	assert_null(memmem(buf, len, "sharer_name", 11));

	assert_int_equal(ss_mail_open(&key, buf, len, got, &plain, &plainlen,
	                              why, sizeof why),
	                 0);
	assert_string_equal(got, id);
	decode(&in, (const char *)plain, plainlen);
	assert_int_equal(in.map->via.map.size, 4);
	assert_null(get(&in, "v"));
	assert_null(get(&in, "id"));
	assert_str(get(&in, "template"), "share.notice");
	assert_str(get(&in, "to"), "bob@example.org");
	o = get(&in, "created_at");
	assert_non_null(o);
	assert_in_range(o->via.u64, (uint64_t)now - 5, (uint64_t)now + 1);
	o = get(&in, "vars");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(o->via.map.size, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_str(&o->via.map.ptr[i].key, vars[2 * i]);
		assert_str(&o->via.map.ptr[i].val, vars[2 * i + 1]);
	}
	msgpack_unpacked_destroy(&in.up);
	ss_mail_plain_free(plain, plainlen);
}

static void
test_encode(void **state)
{
	ss_mail m = {
	    .template = "share.notice", .to = "bob@example.org", .vars = vars};
	char id[SS_MAIL_ID_LEN + 1];
	ss_pack p;

	(void)state;
	ss_pack_init(&p);
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), 0);
	assert_int_equal(strlen(id), SS_MAIL_ID_LEN);
	assert_int_equal(strspn(id, "0123456789abcdef"), SS_MAIL_ID_LEN);
	check_job(p.sb.data, p.sb.size, id);
	ss_pack_free(&p);
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_ids_unique(void **state)
{
	static char ids[1000][SS_MAIL_ID_LEN + 1];
	ss_mail m = {
	    .template = "share.notice", .to = "bob@example.org", .vars = NULL};
	ss_pack p;

	(void)state;
	ss_pack_init(&p);
	for (int i = 0; i < 1000; i++) {
		ss_pack_reset(&p);
		assert_int_equal(ss_mail_encode(&p, &key, &m, ids[i]), 0);
	}
	qsort(ids, 1000, sizeof ids[0], cmp_id);
	for (int i = 1; i < 1000; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	/* id_out may be NULL. */
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), 0);
	ss_pack_free(&p);
}

static void
test_addresses(void **state)
{
	static const char *const good[] = {
	    "a@b",
	    "x@localhost",
	    "first.last+tag@sub.example.org",
	    "o'brien@example.ie",
	    "user@xn--bcher-kva.example",
	    "1@2.3",
	    "a!#$%&'*+-/=?^_`{|}~@x-y.example",
	};
	static const char *const bad[] = {
	    "",
	    "@",
	    "a@",
	    "@b",
	    "ab",
	    "a b@c",
	    "a@b c",
	    ".a@b",
	    "a.@b",
	    "a..b@c",
	    "a@b..c",
	    "a@.b",
	    "a@b.",
	    "a@-b",
	    "a@b-",
	    "a@b_c",
	    "\"a\"@b",
	    "a@[127.0.0.1]",
	    "a@b\r\n",
	    "a\r\nBcc: c@d",
	    "zoë@example.org",
	    "a@b@c",
	    "<a@b>",
	};
	char local65[80], addr255[300], label64[80];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!ss_mail_addr_ok(good[i], strlen(good[i])))
			fail_msg("refused good address %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (ss_mail_addr_ok(bad[i], strlen(bad[i])))
			fail_msg("accepted bad address %s", bad[i]);
	memset(local65, 'a', 65);
	strcpy(local65 + 65, "@b");
	assert_false(ss_mail_addr_ok(local65, strlen(local65)));
	assert_true(ss_mail_addr_ok(local65 + 1, strlen(local65 + 1)));
	memset(label64, 'a', 64);
	strcpy(label64 + 64, "");
	{
		char a[100];

		snprintf(a, sizeof a, "x@%s.org", label64);
		assert_false(ss_mail_addr_ok(a, strlen(a)));
		snprintf(a, sizeof a, "x@%s.org", label64 + 1);
		assert_true(ss_mail_addr_ok(a, strlen(a)));
	}
	/* 254 bytes in all is the most: labels of 9 'b's and dots. */
	strcpy(addr255, "a@");
	while (strlen(addr255) < 260)
		strcat(addr255, "bbbbbbbbb.");
	assert_true(ss_mail_addr_ok(addr255, 254));
	assert_false(ss_mail_addr_ok(addr255, 255));
	/* The length given counts, not the NUL: a NUL inside is refused. */
	assert_false(ss_mail_addr_ok("a@b\0c", 5));
}

static void
test_encode_refuses(void **state)
{
	static const char *const bad_name[] = {"Name", "x", NULL};
	static const char *const dash[] = {"a-b", "x", NULL};
	static const char *const dup[] = {"a", "1", "a", "2", NULL};
	static const char *const null_val[] = {"a", NULL, NULL};
	static const char *const overlong[] = {"a", "\xc0\xaf", NULL};
	static const char *const surrogate[] = {"a", "\xed\xa0\x80", NULL};
	static const char *const cut[] = {"a", "\xe2\x82", NULL};
	static const char *const too_high[] = {"a", "\xf4\x90\x80\x80", NULL};
	const char *many[2 * (SS_MAIL_MAX_VARS + 1) + 1];
	char names[SS_MAIL_MAX_VARS + 1][8];
	char *big = malloc(SS_MAIL_MAX_VALUE + 2);
	const char *bigv[] = {"a", big, NULL};
	const char *const *cases[] = {bad_name, dash,      dup, null_val,
	                              overlong, surrogate, cut, too_high};
	ss_mail m = {
	    .template = "share.notice", .to = "bob@example.org", .vars = NULL};
	ss_pack p;

	(void)state;
	assert_non_null(big);
	ss_pack_init(&p);
	m.template = "share.unknown";
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), SS_EBADREQ);
	m.template = NULL;
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), SS_EBADREQ);
	m.template = "share.notice";
	m.to = "bob@example.org\r\nBcc: eve@example.org";
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), SS_EBADREQ);
	m.to = "bob";
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), SS_EBADREQ);
	m.to = "bob@example.org";
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		m.vars = cases[i];
		assert_int_equal(ss_mail_encode(&p, &key, &m, NULL),
		                 SS_EBADREQ);
	}
	memset(big, 'x', SS_MAIL_MAX_VALUE + 1);
	big[SS_MAIL_MAX_VALUE + 1] = '\0';
	m.vars = bigv;
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), SS_EBADREQ);
	big[SS_MAIL_MAX_VALUE] = '\0';
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), 0);
	for (int i = 0; i <= SS_MAIL_MAX_VARS; i++) {
		snprintf(names[i], sizeof names[i], "v%d", i);
		many[2 * i] = names[i];
		many[2 * i + 1] = "x";
	}
	many[2 * SS_MAIL_MAX_VARS] = NULL;
	m.vars = many;
	ss_pack_reset(&p);
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), 0);
	many[2 * SS_MAIL_MAX_VARS] = names[SS_MAIL_MAX_VARS];
	many[2 * (SS_MAIL_MAX_VARS + 1)] = NULL;
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), SS_EBADREQ);
	/* A refused mail leaves nothing half-written behind. */
	ss_pack_reset(&p);
	m.vars = dup;
	assert_int_equal(ss_mail_encode(&p, &key, &m, NULL), SS_EBADREQ);
	assert_int_equal(p.sb.size, 0);
	/* Every template of the list is known. */
	{
		static const char *const all[] = {SS_MAIL_TEMPLATES};

		for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
			assert_true(
			    ss_mail_template_ok(all[i], strlen(all[i])));
		assert_false(ss_mail_template_ok("share", 5));
		assert_false(ss_mail_template_ok("share.notice ", 13));
	}
	ss_pack_free(&p);
	free(big);
}

/* ---- opening --------------------------------------------------------- */

/* ss_mail_open must refuse buf with a reason containing want, keeping
 * the id when want_id is not NULL. */
static void
refused(const void *buf, size_t len, const ss_seal_key *k, const char *want,
        const char *want_id)
{
	char id[SS_MAIL_ID_LEN + 1] = "x", why[256] = "";
	unsigned char *plain = (unsigned char *)"not touched";
	size_t plainlen = 7;

	assert_int_equal(
	    ss_mail_open(k, buf, len, id, &plain, &plainlen, why, sizeof why),
	    SS_EUNPROC);
	assert_null(plain);
	assert_int_equal(plainlen, 0);
	if (strstr(why, want) == NULL)
		fail_msg("reason \"%s\" does not contain \"%s\"", why, want);
	assert_string_equal(id, want_id != NULL ? want_id : "");
}

/* Packs {"v": v, "id": id, "box": box} with box as bin or as str. */
static void
envelope(ss_pack *p, int64_t v, const char *id, const void *box, size_t n,
         bool as_str)
{
	ss_pack_reset(p);
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_int(p, "v", v);
	ss_pack_kv_cstr(p, "id", id);
	ss_pack_key(p, "box");
	if (as_str) {
		ss_pack_strn(p, box, n);
	} else {
		msgpack_pack_bin(&p->pk, n);
		msgpack_pack_bin_body(&p->pk, box, n);
	}
}

static void
test_open_refuses(void **state)
{
	static const char mail[] = "\x80"; /* an empty map, sealed */
	static const char *const id2 = "ffffffffffffffffffffffffffffffff";
	ss_mail m = {
	    .template = "share.notice", .to = "bob@example.org", .vars = vars};
	char id[SS_MAIL_ID_LEN + 1];
	const msgpack_object *box;
	decoded d;
	ss_pack p, q;
	char *copy;

	(void)state;
	ss_pack_init(&p);
	ss_pack_init(&q);
	assert_int_equal(ss_mail_encode(&p, &key, &m, id), 0);
	/* Under another key: refused, never opened, the id still named. */
	refused(p.sb.data, p.sb.size, &other, "box does not open", id);

	/* The same box under another id does not open either. */
	decode(&d, p.sb.data, p.sb.size);
	box = get(&d, "box");
	envelope(&q, 2, id2, box->via.bin.ptr, box->via.bin.size, false);
	refused(q.sb.data, q.sb.size, &key, "box does not open", id2);
	/* Nor one byte of it altered. */
	copy = malloc(box->via.bin.size);
	assert_non_null(copy);
	memcpy(copy, box->via.bin.ptr, box->via.bin.size);
	copy[box->via.bin.size - 1] ^= 1;
	envelope(&q, 2, id, copy, box->via.bin.size, false);
	refused(q.sb.data, q.sb.size, &key, "box does not open", id);
	/* Nor a box cut short, nor one shorter than nonce and tag. */
	envelope(&q, 2, id, box->via.bin.ptr, box->via.bin.size - 1, false);
	refused(q.sb.data, q.sb.size, &key, "box does not open", id);
	envelope(&q, 2, id, box->via.bin.ptr, SS_SEAL_OVERHEAD - 1, false);
	refused(q.sb.data, q.sb.size, &key, "too short", id);
	/* A box must be bin. */
	envelope(&q, 2, id, box->via.bin.ptr, box->via.bin.size, true);
	refused(q.sb.data, q.sb.size, &key, "field 'box'", id);
	/* Another version; a v 1 job (clear) says what it is. */
	envelope(&q, 3, id, box->via.bin.ptr, box->via.bin.size, false);
	refused(q.sb.data, q.sb.size, &key, "field 'v'", id);
	envelope(&q, 1, id, box->via.bin.ptr, box->via.bin.size, false);
	refused(q.sb.data, q.sb.size, &key, "not sealed", id);
	/* A bad id: nothing to name. */
	envelope(&q, 2, "0123456789ABCDEF0123456789ABCDEF", box->via.bin.ptr,
	         box->via.bin.size, false);
	refused(q.sb.data, q.sb.size, &key, "lower-case hex", NULL);
	free(copy);
	msgpack_unpacked_destroy(&d.up);

	/* Bytes that are no job. */
	refused("", 0, &key, "bad msgpack", NULL);
	refused("\xc1", 1, &key, "bad msgpack", NULL);
	refused("\x91\x01", 2, &key, "not a map", NULL);
	refused("\xdf\xff\xff\xff\xff", 5, &key, "count exceeds", NULL);
	refused("\x80\x00", 2, &key, "trailing bytes", NULL);
	/* An unknown field next to the good ones. */
	ss_pack_reset(&q);
	msgpack_pack_map(&q.pk, 4);
	ss_pack_kv_int(&q, "v", 2);
	ss_pack_kv_cstr(&q, "id", id);
	ss_pack_kv_cstr(&q, "template", "share.notice");
	ss_pack_key(&q, "box");
	msgpack_pack_bin(&q.pk, 0);
	refused(q.sb.data, q.sb.size, &key, "unknown field", id);

	/* ss_mail_seal: a valid id only; what it seals opens. */
	ss_pack_reset(&q);
	assert_int_equal(ss_mail_seal(&q, &key, "0123", mail, 1), SS_EBADREQ);
	assert_int_equal(ss_mail_seal(&q, &key, NULL, mail, 1), SS_EBADREQ);
	assert_int_equal(
	    ss_mail_seal(&q, &key, id2, mail, SS_MAIL_PLAIN_MAX + 1),
	    SS_EBADREQ);
	assert_int_equal(q.sb.size, 0);
	assert_int_equal(ss_mail_seal(&q, &key, id2, mail, 1), 0);
	{
		unsigned char *plain;
		size_t n;
		char got[SS_MAIL_ID_LEN + 1], why[256];

		assert_int_equal(ss_mail_open(&key, q.sb.data, q.sb.size, got,
		                              &plain, &n, why, sizeof why),
		                 0);
		assert_string_equal(got, id2);
		assert_int_equal(n, 1);
		assert_memory_equal(plain, mail, 1);
		ss_mail_plain_free(plain, n);
	}
	assert_true(ss_mail_id_ok(id2, 32));
	assert_false(ss_mail_id_ok(id2, 31));
	assert_false(ss_mail_id_ok("fffffffffffffffffffffffffffffffg", 32));
	ss_pack_free(&q);
	ss_pack_free(&p);
}

/* Two encodings of one mail share nothing: fresh id, fresh nonce. */
static void
test_seals_differ(void **state)
{
	ss_mail m = {
	    .template = "share.notice", .to = "bob@example.org", .vars = vars};
	ss_pack a, b;

	(void)state;
	ss_pack_init(&a);
	ss_pack_init(&b);
	assert_int_equal(ss_mail_encode(&a, &key, &m, NULL), 0);
	assert_int_equal(ss_mail_encode(&b, &key, &m, NULL), 0);
	assert_int_equal(a.sb.size, b.sb.size);
	assert_memory_not_equal(a.sb.data + a.sb.size - 32,
	                        b.sb.data + b.sb.size - 32, 32);
	ss_pack_free(&a);
	ss_pack_free(&b);
}

/* ---- push against Redis ------------------------------------------------- */

static struct ss_rfx fx;
static ss_common_settings common = {.log_level = "warn", .drain_ms = 1000};

struct answer {
	int calls;
	int err;
	char entry[64];
};

/* Times in mails: day, month's name, year, UTC to the minute. */
static void
test_mail_time(void **state)
{
	char out[SS_MAIL_TIME_MAX];

	(void)state;
	ss_mail_time(0, out);
	assert_string_equal(out, "1 January 1970, 00:00 UTC");
	ss_mail_time(1796660997, out); /* 2026-12-07T16:29:57Z */
	assert_string_equal(out, "7 December 2026, 16:29 UTC");
	ss_mail_time(951782400, out); /* a leap day */
	assert_string_equal(out, "29 February 2000, 00:00 UTC");
	ss_mail_time(253402300799, out); /* the last second of 9999 */
	assert_string_equal(out, "31 December 9999, 23:59 UTC");
}

static void
on_xadd(int err, redisReply *rep, void *arg)
{
	struct answer *a = arg;

	a->calls++;
	a->err = err;
	if (err == 0 && rep->type == REDIS_REPLY_STRING)
		snprintf(a->entry, sizeof a->entry, "%s", rep->str);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until cond(arg) holds or 5 s pass. */
static void
run_until(ss_daemon *d, bool (*cond)(void *), void *arg)
{
	struct timeval tv = {0, 10000};
	struct event *ev = event_new(d->base, -1, EV_PERSIST, tick, NULL);
	time_t end = time(NULL) + 5;

	event_add(ev, &tv);
	while (!cond(arg) && time(NULL) < end)
		event_base_loop(d->base, EVLOOP_ONCE);
	event_free(ev);
}

static bool
is_ready(void *arg)
{
	return ss_redis_ready(arg);
}

static bool
is_down(void *arg)
{
	return !ss_redis_ready(arg);
}

static bool
answered(void *arg)
{
	return ((struct answer *)arg)->calls > 0;
}

static void
test_push(void **state)
{
	ss_mail m = {
	    .template = "share.notice", .to = "bob@example.org", .vars = vars};
	char id[SS_MAIL_ID_LEN + 1];
	struct answer a = {0};
	redisContext *c;
	redisReply *rep;
	ss_redis *r;
	ss_daemon d;

	(void)state;
	assert_int_equal(ss_rfx_start(&fx, NULL), 0);
	assert_int_equal(ss_daemon_init(&d, "test", &common), 0);
	assert_int_equal(
	    ss_redis_open(&r, &d, "redis", fx.addr, NULL, NULL, 2000, NULL, 0),
	    0);
	run_until(&d, is_ready, r);
	assert_true(ss_redis_ready(r));

	/* A refused mail is not queued and its callback never runs. */
	m.to = "bob@example.org\nBcc: x@y";
	assert_int_equal(ss_mailq_push(r, &key, &m, on_xadd, &a, id),
	                 SS_EBADREQ);
	m.to = "bob@example.org";
	assert_int_equal(ss_mailq_push(r, &key, &m, on_xadd, &a, id), 0);
	run_until(&d, answered, &a);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, 0);
	assert_non_null(strchr(a.entry, '-'));

	c = ss_rfx_connect(&fx);
	assert_non_null(c);
	rep = redisCommand(c, "XRANGE %s - +", SS_MAILQ_STREAM);
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->elements, 1);
	assert_string_equal(rep->element[0]->element[0]->str, a.entry);
	{
		redisReply *f = rep->element[0]->element[1];

		assert_int_equal(f->elements, 2);
		assert_string_equal(f->element[0]->str, SS_MAILQ_FIELD);
		check_job(f->element[1]->str, f->element[1]->len, id);
	}
	freeReplyObject(rep);
	redisFree(c);

	/* Redis gone: the push says so at once. */
	ss_rfx_kill(&fx);
	run_until(&d, is_down, r);
	assert_int_equal(ss_mailq_push(r, &key, &m, on_xadd, &a, NULL),
	                 SS_EUNAVAIL);
	ss_redis_close(r);
	ss_daemon_fini(&d);
	ss_rfx_stop(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_mail_time),
	    cmocka_unit_test(test_ids_unique),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_encode_refuses),
	    cmocka_unit_test(test_open_refuses),
	    cmocka_unit_test(test_seals_differ),
	    cmocka_unit_test(test_push),
	};

	if (ss_seal_key_init(&key, SECRET, strlen(SECRET)) != 0 ||
	    ss_seal_key_init(&other, OTHER, strlen(OTHER)) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
