/*
 * tests/unit/test_mpcheck.c - ss_mpcheck(): every refusal, every type.
 *
 * Messages are written byte by byte so that every encoding (str32 of a
 * short string, map16 of one entry, ...) appears, not only the ones
 * msgpack-c's packer would choose.  Whatever ss_mpcheck() accepts is also
 * fed to msgpack-c, which must consume exactly the same bytes.
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
#include "proto/mpcheck.h"

#define WHY_TRUNC  "truncated message"
#define WHY_COUNT  "container count exceeds the bytes left"
#define WHY_DEPTH  "nesting too deep"
#define WHY_LONG   "string, bin or ext too long"
#define WHY_NOTMAP "top level is not a map"
#define WHY_TRAIL  "trailing bytes after the message"
#define WHY_C1     "reserved byte 0xc1"
#define WHY_EMPTY  "empty message"

/* A growable byte string. */
typedef struct bb {
	uint8_t *p;
	size_t n, cap;
} bb;

static void
put(bb *b, const void *src, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->n + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->n, src, n);
	b->n += n;
}

static void
put8(bb *b, uint8_t v)
{
	put(b, &v, 1);
}

static void
putbe(bb *b, uint64_t v, size_t width)
{
	while (width-- > 0)
		put8(b, (uint8_t)(v >> (8 * width)));
}

static void
putfill(bb *b, uint8_t v, size_t n)
{
	while (n-- > 0)
		put8(b, v);
}

/* A fixstr key. */
static void
putkey(bb *b, const char *k)
{
	put8(b, (uint8_t)(0xa0 | strlen(k)));
	put(b, k, strlen(k));
}

static void
bb_free(bb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int
check(const bb *b, const char **why)
{
	*why = NULL;
	return ss_mpcheck(b->p, b->n, SS_MAX_DEPTH, SS_MAX_STR_LEN, why);
}

static void
assert_refused(const bb *b, const char *want)
{
	const char *why = NULL;

	assert_int_equal(check(b, &why), SS_EBADREQ);
	assert_non_null(why);
	assert_string_equal(why, want);
}

/* Accepted by ss_mpcheck(), and msgpack-c takes exactly the same bytes. */
static void
assert_accepted(const bb *b)
{
	msgpack_unpacked up;
	const char *why = NULL;
	size_t off = 0;

	assert_int_equal(check(b, &why), 0);
	msgpack_unpacked_init(&up);
	assert_int_equal(
	    msgpack_unpack_next(&up, (const char *)b->p, b->n, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, b->n);
	assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
	msgpack_unpacked_destroy(&up);
}

/*
 * A map holding every msgpack type in every encoding; returns its number
 * of entries.  The map16 header is written by the caller.
 */
static unsigned
put_every_type(bb *b)
{
	unsigned n = 0;

#define KEY(k) (putkey(b, k), n++)
	KEY("nil"), put8(b, 0xc0);
	KEY("false"), put8(b, 0xc2);
	KEY("true"), put8(b, 0xc3);
	KEY("pfix"), put8(b, 0x7f);
	KEY("nfix"), put8(b, 0xe0);
	KEY("u8"), put8(b, 0xcc), put8(b, 0xff);
	KEY("u16"), put8(b, 0xcd), putbe(b, 0xffff, 2);
	KEY("u32"), put8(b, 0xce), putbe(b, 0xffffffffu, 4);
	KEY("u64"), put8(b, 0xcf), putbe(b, UINT64_MAX, 8);
	KEY("i8"), put8(b, 0xd0), put8(b, 0x80);
	KEY("i16"), put8(b, 0xd1), putbe(b, 0x8000, 2);
	KEY("i32"), put8(b, 0xd2), putbe(b, 0x80000000u, 4);
	KEY("i64"), put8(b, 0xd3), putbe(b, 0x8000000000000000ull, 8);
	KEY("f32"), put8(b, 0xca), putbe(b, 0x3fc00000u, 4);
	KEY("f64"), put8(b, 0xcb), putbe(b, 0x3ff8000000000000ull, 8);
	KEY("fstr"), put8(b, 0xa3), put(b, "abc", 3);
	KEY("estr"), put8(b, 0xa0);
	KEY("s8"), put8(b, 0xd9), put8(b, 3), put(b, "abc", 3);
	KEY("s16"), put8(b, 0xda), putbe(b, 300, 2), putfill(b, 'x', 300);
	KEY("s32"), put8(b, 0xdb), putbe(b, 3, 4), put(b, "abc", 3);
	KEY("b8"), put8(b, 0xc4), put8(b, 2), put(b, "\x00\x01", 2);
	KEY("b8e"), put8(b, 0xc4), put8(b, 0);
	KEY("b16"), put8(b, 0xc5), putbe(b, 2, 2), put(b, "\x00\x01", 2);
	KEY("b32"), put8(b, 0xc6), putbe(b, 2, 4), put(b, "\x00\x01", 2);
	KEY("fx1"), put8(b, 0xd4), put8(b, 1), putfill(b, 0, 1);
	KEY("fx2"), put8(b, 0xd5), put8(b, 1), putfill(b, 0, 2);
	KEY("fx4"), put8(b, 0xd6), put8(b, 0xff), putfill(b, 0, 4);
	KEY("fx8"), put8(b, 0xd7), put8(b, 0xff), putfill(b, 0, 8);
	KEY("fx16"), put8(b, 0xd8), put8(b, 1), putfill(b, 0, 16);
	KEY("e8"), put8(b, 0xc7), put8(b, 3), put8(b, 5), put(b, "abc", 3);
	KEY("e8e"), put8(b, 0xc7), put8(b, 0), put8(b, 5);
	KEY("e16"), put8(b, 0xc8), putbe(b, 3, 2), put8(b, 5), putfill(b, 1, 3);
	KEY("e32"), put8(b, 0xc9), putbe(b, 3, 4), put8(b, 5), putfill(b, 1, 3);
	KEY("farr"), put8(b, 0x92), put8(b, 0x01), put8(b, 0xc0);
	KEY("earr"), put8(b, 0x90);
	KEY("a16"), put8(b, 0xdc), putbe(b, 2, 2), put8(b, 1), put8(b, 2);
	KEY("a32"), put8(b, 0xdd), putbe(b, 1, 4), put8(b, 0x90);
	KEY("fmap"), put8(b, 0x81), putkey(b, "k"), put8(b, 0x80);
	KEY("emap"), put8(b, 0x80);
	KEY("m16"), put8(b, 0xde), putbe(b, 1, 2), put8(b, 1), put8(b, 2);
	KEY("m32"), put8(b, 0xdf), putbe(b, 1, 4), put8(b, 0xc3), put8(b, 0x90);
	KEY("nest"), put8(b, 0x91), put8(b, 0x81), putkey(b, "a"),
	    put8(b, 0x91), put8(b, 0x80);
#undef KEY
	return n;
}

static void
build_every_type(bb *b)
{
	bb body = {0};
	unsigned n = put_every_type(&body);

	put8(b, 0xde);
	putbe(b, n, 2);
	put(b, body.p, body.n);
	bb_free(&body);
}

/* An envelope as msgpack-c's packer writes it. */
static void
build_envelope(bb *b)
{
	ss_pack p;

	ss_pack_init(&p);
	ss_pack_request(&p, "authz.check", "req-1");
	msgpack_pack_map(&p.pk, 3);
	ss_pack_kv_cstr(&p, "user", "alice");
	ss_pack_kv_int(&p, "limit", -70000);
	ss_pack_key(&p, "tags");
	msgpack_pack_array(&p.pk, 2);
	msgpack_pack_double(&p.pk, 1.5);
	msgpack_pack_bin_with_body(&p.pk, "\x01\x02", 2);
	put(b, p.sb.data, p.sb.size);
	ss_pack_free(&p);
}

static void
test_every_type_accepted(void **state)
{
	bb b = {0};
	msgpack_unpacked up;
	size_t off = 0;
	const msgpack_object *o;

	(void)state;
	build_every_type(&b);
	assert_accepted(&b);

	/* Spot-check that msgpack-c read what we meant. */
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, (const char *)b.p, b.n, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	o = &up.data;
	assert_int_equal(o->via.map.size, 42);
	assert_int_equal(o->via.map.ptr[8].val.type,
	                 MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_true(o->via.map.ptr[8].val.via.u64 == UINT64_MAX);
	assert_int_equal(o->via.map.ptr[12].val.type,
	                 MSGPACK_OBJECT_NEGATIVE_INTEGER);
	assert_true(o->via.map.ptr[12].val.via.i64 == INT64_MIN);
	assert_int_equal(o->via.map.ptr[18].val.via.str.size, 300);
	assert_int_equal(o->via.map.ptr[28].val.type, MSGPACK_OBJECT_EXT);
	assert_int_equal(o->via.map.ptr[28].val.via.ext.size, 16);
	assert_int_equal(o->via.map.ptr[40].val.type, MSGPACK_OBJECT_MAP);
	msgpack_unpacked_destroy(&up);
	bb_free(&b);
}

static void
test_envelope_accepted(void **state)
{
	bb b = {0};

	(void)state;
	build_envelope(&b);
	assert_accepted(&b);
	bb_free(&b);
}

static void
test_empty_refused(void **state)
{
	const char *why = NULL;
	uint8_t byte = 0x80;

	(void)state;
	assert_int_equal(
	    ss_mpcheck(&byte, 0, SS_MAX_DEPTH, SS_MAX_STR_LEN, &why),
	    SS_EBADREQ);
	assert_string_equal(why, WHY_EMPTY);
}

/* Every proper prefix is refused as cut short, never accepted. */
static void
assert_prefixes_refused(const bb *b)
{
	size_t len, ntrunc = 0;

	for (len = 1; len < b->n; len++) {
		const char *why = NULL;

		assert_int_equal(
		    ss_mpcheck(b->p, len, SS_MAX_DEPTH, SS_MAX_STR_LEN, &why),
		    SS_EBADREQ);
		assert_non_null(why);
		if (strcmp(why, WHY_TRUNC) == 0)
			ntrunc++;
		else
			assert_string_equal(why, WHY_COUNT);
	}
	assert_true(ntrunc > 0);
}

static void
test_truncated_every_prefix(void **state)
{
	bb b = {0};

	(void)state;
	build_every_type(&b);
	assert_prefixes_refused(&b);
	bb_free(&b);

	build_envelope(&b);
	assert_prefixes_refused(&b);
	bb_free(&b);
}

/* Cuts inside one header or payload, where the counts still fit. */
static void
test_truncated_inside(void **state)
{
	static const struct {
		const char *bytes;
		size_t n;
	} cases[] = {
	    {"\x81\xa1"
	     "a\xcd\x01",
	     5}, /* uint16, one byte of two */
	    {"\x81\xa1"
	     "a\xcf\x01\x02\x03",
	     7}, /* uint64 */
	    {"\x81\xa1"
	     "a\xcb\x00",
	     5}, /* float64 */
	    {"\x81\xa1"
	     "a\xa5xy",
	     6}, /* fixstr payload */
	    {"\x81\xa1"
	     "a\xdb\x00\x00",
	     6}, /* str32 length */
	    {"\x81\xa1"
	     "a\xda\x00\x04xyz",
	     9}, /* str16 payload */
	    {"\x81\xa1"
	     "a\xc6\x00\x00\x00\x02x",
	     9}, /* bin32 payload */
	    {"\x81\xa1"
	     "a\xc7\x01",
	     5}, /* ext8 without its type byte */
	    {"\x81\xa1"
	     "a\xd8\x01\x00\x00",
	     7}, /* fixext16 payload */
	    {"\x81\xa1"
	     "a\xdd\x00\x00",
	     6},             /* array32 count */
	    {"\xde\x00", 2}, /* map16 count at the top */
	    {"\x81\xa1"
	     "a\x91\xa4xy",
	     7}, /* the last element of an array */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bb b = {0};

		put(&b, cases[i].bytes, cases[i].n);
		assert_refused(&b, WHY_TRUNC);
		bb_free(&b);
	}
}

static void
test_count_exceeds_bytes(void **state)
{
	bb b = {0};

	(void)state;
	/* fixarray of 15 with three elements there. */
	put(&b,
	    "\x81\xa1"
	    "a\x9f\x01\x02\x03",
	    7);
	assert_refused(&b, WHY_COUNT);
	bb_free(&b);

	/* array32 declaring 2^32-1 elements, with a few bytes after. */
	put(&b,
	    "\x81\xa1"
	    "a",
	    3);
	put8(&b, 0xdd);
	putbe(&b, 0xffffffffu, 4);
	putfill(&b, 0xc0, 16);
	assert_refused(&b, WHY_COUNT);
	bb_free(&b);

	/* map32 declaring 2^32-1 entries at the top. */
	put8(&b, 0xdf);
	putbe(&b, 0xffffffffu, 4);
	putfill(&b, 0xc0, 16);
	assert_refused(&b, WHY_COUNT);
	bb_free(&b);

	/* map32 nested, 2^32-1 entries. */
	put(&b,
	    "\x81\xa1"
	    "a",
	    3);
	put8(&b, 0xdf);
	putbe(&b, 0xffffffffu, 4);
	putfill(&b, 0xc0, 16);
	assert_refused(&b, WHY_COUNT);
	bb_free(&b);

	/* A map entry needs two bytes: 3 entries in 5 bytes is too many. */
	put(&b, "\x83\xc0\xc0\xc0\xc0\xc0", 6);
	assert_refused(&b, WHY_COUNT);
	bb_free(&b);

	/* The inner array fits in the bytes left, but not together with
	 * the nine siblings its parent still owes. */
	put(&b,
	    "\x81\xa1"
	    "a\x9a\x98",
	    5);
	putfill(&b, 0xc0, 11);
	assert_refused(&b, WHY_COUNT);
	bb_free(&b);
}

/* {"a": [[[...]]]} with n arrays, the innermost one empty. */
static void
build_nested(bb *b, unsigned n)
{
	unsigned i;

	put(b,
	    "\x81\xa1"
	    "a",
	    3);
	for (i = 0; i + 1 < n; i++)
		put8(b, 0x91);
	put8(b, 0x90);
}

static void
test_nesting_100_refused(void **state)
{
	bb b = {0};

	(void)state;
	build_nested(&b, 100);
	assert_refused(&b, WHY_DEPTH);
	bb_free(&b);
}

static void
test_depth_limit_exact(void **state)
{
	bb b = {0};
	const char *why = NULL;

	(void)state;
	/* The top map is depth 1: 15 arrays below it make 16. */
	build_nested(&b, 15);
	assert_accepted(&b);
	bb_free(&b);

	build_nested(&b, 16);
	assert_refused(&b, WHY_DEPTH);
	bb_free(&b);

	/* Nested maps count like arrays, and a non-empty innermost one. */
	put8(&b, 0x81);
	for (int i = 0; i < 17; i++) {
		putkey(&b, "k");
		put8(&b, i < 16 ? 0x81 : 0x01);
	}
	assert_refused(&b, WHY_DEPTH);
	assert_int_equal(ss_mpcheck(b.p, b.n, 17, SS_MAX_STR_LEN, &why), 0);
	bb_free(&b);
}

/* Depths beyond msgpack-c's own limit of 32 are lowered to it. */
static void
test_depth_capped_at_msgpack_limit(void **state)
{
	bb b = {0};
	const char *why = NULL;
	msgpack_unpacked up;
	size_t off = 0;

	(void)state;
	build_nested(&b, 31);
	assert_int_equal(ss_mpcheck(b.p, b.n, 1000, SS_MAX_STR_LEN, &why), 0);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, (const char *)b.p, b.n, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, b.n);
	msgpack_unpacked_destroy(&up);
	bb_free(&b);

	build_nested(&b, 32);
	assert_int_equal(ss_mpcheck(b.p, b.n, 1000, SS_MAX_STR_LEN, &why),
	                 SS_EBADREQ);
	assert_string_equal(why, WHY_DEPTH);
	bb_free(&b);
}

static void
test_oversized_str_refused(void **state)
{
	bb b = {0};
	const char *why = NULL;

	(void)state;
	/* Exactly the limit passes, one more byte does not. */
	put(&b,
	    "\x81\xa1"
	    "a",
	    3);
	put8(&b, 0xdb);
	putbe(&b, SS_MAX_STR_LEN, 4);
	putfill(&b, 'x', SS_MAX_STR_LEN);
	assert_accepted(&b);
	bb_free(&b);

	put(&b,
	    "\x81\xa1"
	    "a",
	    3);
	put8(&b, 0xdb);
	putbe(&b, SS_MAX_STR_LEN + 1, 4);
	putfill(&b, 'x', SS_MAX_STR_LEN + 1);
	assert_refused(&b, WHY_LONG);
	bb_free(&b);

	/* A key is a string too, and so are bin and ext. */
	put(&b,
	    "\x81\xa9"
	    "123456789\xc0",
	    12);
	assert_int_equal(ss_mpcheck(b.p, b.n, 16, 8, &why), SS_EBADREQ);
	assert_string_equal(why, WHY_LONG);
	assert_int_equal(ss_mpcheck(b.p, b.n, 16, 9, &why), 0);
	bb_free(&b);

	put(&b,
	    "\x81\xa1"
	    "a\xc4\x09"
	    "123456789",
	    14);
	assert_int_equal(ss_mpcheck(b.p, b.n, 16, 8, &why), SS_EBADREQ);
	assert_string_equal(why, WHY_LONG);
	bb_free(&b);

	put(&b,
	    "\x81\xa1"
	    "a\xc7\x09\x01"
	    "123456789",
	    15);
	assert_int_equal(ss_mpcheck(b.p, b.n, 16, 8, &why), SS_EBADREQ);
	assert_string_equal(why, WHY_LONG);
	bb_free(&b);

	put(&b,
	    "\x81\xa1"
	    "a\xd8\x01",
	    5);
	putfill(&b, 0, 16);
	assert_int_equal(ss_mpcheck(b.p, b.n, 16, 8, &why), SS_EBADREQ);
	assert_string_equal(why, WHY_LONG);
	bb_free(&b);

	/* A huge declared length with nothing behind it. */
	put(&b,
	    "\x81\xa1"
	    "a\xdb\xff\xff\xff\xff",
	    8);
	assert_refused(&b, WHY_LONG);
	bb_free(&b);
}

static void
test_top_not_map_refused(void **state)
{
	static const struct {
		const char *bytes;
		size_t n;
	} cases[] = {
	    {"\x90", 1},         {"\x91\x80", 2}, {"\xdc\x00\x00", 3},
	    {"\x01", 1},         {"\xc0", 1},     {"\xa1x", 2},
	    {"\xcd\x00\x01", 3}, {"\xff", 1},     {"\xc4\x00", 2},
	    {"\xd4\x01\x00", 3},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bb b = {0};

		put(&b, cases[i].bytes, cases[i].n);
		assert_refused(&b, WHY_NOTMAP);
		bb_free(&b);
	}
}

static void
test_trailing_refused(void **state)
{
	bb b = {0};

	(void)state;
	build_envelope(&b);
	put8(&b, 0xc0);
	assert_refused(&b, WHY_TRAIL);
	bb_free(&b);

	/* Two whole messages back to back. */
	build_envelope(&b);
	build_envelope(&b);
	assert_refused(&b, WHY_TRAIL);
	bb_free(&b);

	put(&b, "\x80\x00", 2);
	assert_refused(&b, WHY_TRAIL);
	bb_free(&b);
}

static void
test_reserved_c1_refused(void **state)
{
	bb b = {0};

	(void)state;
	put(&b,
	    "\x81\xa1"
	    "a\xc1",
	    4);
	assert_refused(&b, WHY_C1);
	bb_free(&b);

	put(&b, "\x81\xc1\xc0", 3); /* as a key */
	assert_refused(&b, WHY_C1);
	bb_free(&b);

	put(&b, "\xc1", 1); /* at the top */
	assert_refused(&b, WHY_C1);
	bb_free(&b);

	put(&b,
	    "\x81\xa1"
	    "a\x93\x01\x02\xc1",
	    7); /* inside an array */
	assert_refused(&b, WHY_C1);
	bb_free(&b);
}

/* Wide and long inputs are walked in full (and in linear time). */
static void
test_large_inputs_accepted(void **state)
{
	bb b = {0};
	size_t i, n = 200000;

	(void)state;
	put(&b,
	    "\x81\xa1"
	    "a",
	    3);
	put8(&b, 0xdd);
	putbe(&b, n, 4);
	putfill(&b, 0xc0, n);
	assert_accepted(&b);
	bb_free(&b);

	/* Many containers opened and closed: [[[[]]], [[[]]], ...] */
	put(&b,
	    "\x81\xa1"
	    "a",
	    3);
	put8(&b, 0xdd);
	putbe(&b, n, 4);
	for (i = 0; i < n; i++)
		put(&b, "\x91\x91\x90", 3);
	assert_accepted(&b);
	bb_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_type_accepted),
	    cmocka_unit_test(test_envelope_accepted),
	    cmocka_unit_test(test_empty_refused),
	    cmocka_unit_test(test_truncated_every_prefix),
	    cmocka_unit_test(test_truncated_inside),
	    cmocka_unit_test(test_count_exceeds_bytes),
	    cmocka_unit_test(test_nesting_100_refused),
	    cmocka_unit_test(test_depth_limit_exact),
	    cmocka_unit_test(test_depth_capped_at_msgpack_limit),
	    cmocka_unit_test(test_oversized_str_refused),
	    cmocka_unit_test(test_top_not_map_refused),
	    cmocka_unit_test(test_trailing_refused),
	    cmocka_unit_test(test_reserved_c1_refused),
	    cmocka_unit_test(test_large_inputs_accepted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
