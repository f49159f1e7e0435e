/*
 * tests/unit/test_mpjson.c - msgpack <-> JSON: every type both ways, and
 * the values that have no JSON form.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <msgpack.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/mpjson.h"

/* Unpacks the one object in p and converts it to JSON. */
static json_t *
to_json(const ss_pack *p)
{
	msgpack_unpacked up;
	size_t off = 0;
	json_t *j;

	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p->sb.data, p->sb.size, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, p->sb.size);
	j = ss_mp_to_json(&up.data);
	msgpack_unpacked_destroy(&up);
	return j;
}

/*
 * The direct writer on the one object in p: refuses what has no JSON
 * form, and otherwise writes jansson's own compact text of the tree.
 */
static void
writer_matches(const ss_pack *p)
{
	msgpack_unpacked up;
	msgpack_sbuffer out;
	size_t off = 0;
	json_t *j;
	char *want;
	int rv;

	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p->sb.data, p->sb.size, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	msgpack_sbuffer_init(&out);
	j = ss_mp_to_json(&up.data);
	rv = ss_mp_write_json(&out, &up.data);
	if (j == NULL) {
		assert_int_equal(rv, SS_EBADREQ);
	} else {
		assert_int_equal(rv, 0);
		want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		assert_non_null(want);
		assert_int_equal(out.size, strlen(want));
		assert_memory_equal(out.data, want, out.size);
		free(want);
		json_decref(j);
	}
	msgpack_sbuffer_destroy(&out);
	msgpack_unpacked_destroy(&up);
}

/* JSON -> msgpack -> JSON gives an equal value, and msgpack again gives
 * the same bytes. */
static void
round_trip(json_t *j)
{
	ss_pack p1, p2;
	json_t *back;

	assert_non_null(j);
	ss_pack_init(&p1);
	ss_pack_init(&p2);
	assert_int_equal(ss_json_to_mp(&p1, j), 0);
	writer_matches(&p1);
	back = to_json(&p1);
	assert_non_null(back);
	assert_true(json_equal(j, back));
	assert_int_equal(ss_json_to_mp(&p2, back), 0);
	assert_int_equal(p1.sb.size, p2.sb.size);
	assert_memory_equal(p1.sb.data, p2.sb.data, p1.sb.size);
	json_decref(back);
	json_decref(j);
	ss_pack_free(&p1);
	ss_pack_free(&p2);
}

static void
test_scalars(void **state)
{
	(void)state;
	round_trip(json_null());
	round_trip(json_true());
	round_trip(json_false());
	round_trip(json_integer(0));
	round_trip(json_integer(1));
	round_trip(json_integer(127));
	round_trip(json_integer(128));
	round_trip(json_integer(65536));
	round_trip(json_integer(-1));
	round_trip(json_integer(-33));
	round_trip(json_integer(-40000));
	round_trip(json_integer(INT64_MAX));
	round_trip(json_integer(INT64_MIN));
	round_trip(json_real(0.5));
	round_trip(json_real(-1e300));
	round_trip(json_real(3.141592653589793));
	round_trip(json_string(""));
	round_trip(json_string("plain"));
	round_trip(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	round_trip(json_stringn("nul\0inside", 10));
}

static void
test_containers(void **state)
{
	json_t *big = json_array();
	json_t *obj = json_object();
	char key[32];

	(void)state;
	round_trip(json_array());
	round_trip(json_object());
	round_trip(json_pack("[i, s, b, n, f]", 1, "two", 1, 2.5));
	round_trip(json_pack("{s:i, s:s, s:[i, {s:b}], s:{}, s:n}", "a", 1, "b",
	                     "x", "c", 2, "d", 0, "e", "f"));
	round_trip(json_pack("{s:{s:{s:{s:[[[]]]}}}}", "l1", "l2", "l3", "l4"));
	round_trip(json_pack("{s:s, s:[s]}", "", "", "e", ""));
	/* Sizes that need array16/map16 and array32-free large counts. */
	for (int i = 0; i < 70000; i++)
		json_array_append_new(big, json_integer(i));
	round_trip(big);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		json_object_set_new(obj, key, json_integer(i));
	}
	round_trip(obj);
}

/* Packs with a callback, converts, and checks the JSON text. */
typedef void (*pack_fn)(msgpack_packer *pk);
static void pk_dup_key(msgpack_packer *pk);

static void
mp_expect(pack_fn fn, const char *want)
{
	ss_pack p;
	json_t *j;
	char *s;

	ss_pack_init(&p);
	fn(&p.pk);
	if (fn != pk_dup_key)
		writer_matches(&p);
	j = to_json(&p);
	if (want == NULL) {
		assert_null(j);
	} else {
		assert_non_null(j);
		s = json_dumps(j,
		               JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		assert_non_null(s);
		assert_string_equal(s, want);
		free(s);
		json_decref(j);
	}
	ss_pack_free(&p);
}

static void
pk_u64max(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, UINT64_MAX);
}

static void
pk_i64max_unsigned(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, (uint64_t)INT64_MAX);
}

static void
pk_u64_over(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, (uint64_t)INT64_MAX + 1);
}

static void
pk_float32(msgpack_packer *pk)
{
	msgpack_pack_float(pk, 0.25f);
}

static void
pk_nan(msgpack_packer *pk)
{
	msgpack_pack_double(pk, NAN);
}

static void
pk_inf(msgpack_packer *pk)
{
	msgpack_pack_double(pk, INFINITY);
}

static void
pk_ninf32(msgpack_packer *pk)
{
	msgpack_pack_float(pk, -INFINITY);
}

static void
pk_bin(msgpack_packer *pk)
{
	msgpack_pack_bin(pk, 3);
	msgpack_pack_bin_body(pk, "abc", 3);
}

static void
pk_ext(msgpack_packer *pk)
{
	msgpack_pack_ext(pk, 1, 5);
	msgpack_pack_ext_body(pk, "\x01", 1);
}

static void
pk_int_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_true(pk);
}

static void
pk_nil_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "a", 1);
	msgpack_pack_nil(pk);
	msgpack_pack_nil(pk);
	msgpack_pack_nil(pk);
}

static void
pk_bin_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_bin(pk, 1);
	msgpack_pack_bin_body(pk, "a", 1);
	msgpack_pack_nil(pk);
}

static void
pk_nested_bin(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "a", 1);
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 1);
	msgpack_pack_bin(pk, 1);
	msgpack_pack_bin_body(pk, "b", 1);
}

static void
pk_nested_nan(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "x", 1);
	msgpack_pack_double(pk, NAN);
}

static void
pk_bad_utf8(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 2);
	msgpack_pack_str_body(pk, "\xc3\x28", 2);
}

static void
pk_dup_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "k", 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "k", 1);
	msgpack_pack_int(pk, 2);
}

static void
pk_empty(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_str(pk, 0);
	msgpack_pack_str_body(pk, "", 0);
	msgpack_pack_array(pk, 2);
	msgpack_pack_str(pk, 0);
	msgpack_pack_str_body(pk, "", 0);
	msgpack_pack_map(pk, 0);
}

static void
pk_all(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 7);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "n", 1);
	msgpack_pack_nil(pk);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "t", 1);
	msgpack_pack_true(pk);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "f", 1);
	msgpack_pack_false(pk);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "u", 1);
	msgpack_pack_uint32(pk, 300);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "i", 1);
	msgpack_pack_int8(pk, -5);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "s", 1);
	msgpack_pack_str(pk, 2);
	msgpack_pack_str_body(pk, "hi", 2);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "a", 1);
	msgpack_pack_array(pk, 2);
	msgpack_pack_double(pk, 1.5);
	msgpack_pack_array(pk, 0);
}

static void
test_from_msgpack(void **state)
{
	(void)state;
	mp_expect(pk_all, "{\"a\":[1.5,[]],\"f\":false,\"i\":-5,\"n\":null,"
	                  "\"s\":\"hi\",\"t\":true,\"u\":300}");
	mp_expect(pk_i64max_unsigned, "9223372036854775807");
	mp_expect(pk_float32, "0.25");
	/* msgpack-c gives "" a NULL pointer: still a string. */
	mp_expect(pk_empty, "{\"\":[\"\",{}]}");
	/* The last of duplicate keys wins, as in JSON. */
	mp_expect(pk_dup_key, "{\"k\":2}");
}

static void
test_refusals(void **state)
{
	(void)state;
	mp_expect(pk_u64max, NULL);
	mp_expect(pk_u64_over, NULL);
	mp_expect(pk_nan, NULL);
	mp_expect(pk_inf, NULL);
	mp_expect(pk_ninf32, NULL);
	mp_expect(pk_bin, NULL);
	mp_expect(pk_ext, NULL);
	mp_expect(pk_int_key, NULL);
	mp_expect(pk_nil_key, NULL);
	mp_expect(pk_bin_key, NULL);
	mp_expect(pk_nested_bin, NULL);
	mp_expect(pk_nested_nan, NULL);
	mp_expect(pk_bad_utf8, NULL);
}

static void
test_json_reals_finite(void **state)
{
	json_t *j;

	(void)state;
	/* jansson itself holds no non-finite real: there is nothing that
	 * could reach the packer. */
	assert_null(json_real(NAN));
	assert_null(json_real(INFINITY));
	j = json_real(1.0);
	assert_int_equal(json_real_set(j, -INFINITY), -1);
	assert_true(json_real_value(j) == 1.0);
	json_decref(j);
}

/* A key with a NUL byte in it must keep all its bytes both ways. */
static void
pk_nul_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\0b", 3);
	msgpack_pack_int(pk, 1);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "a", 1);
	msgpack_pack_int(pk, 2);
}

static void
test_nul_in_key(void **state)
{
	ss_pack p, q;
	json_t *j, *back;

	(void)state;
	ss_pack_init(&p);
	ss_pack_init(&q);
	pk_nul_key(&p.pk);
	j = to_json(&p);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 2);
	assert_int_equal(json_integer_value(json_object_getn(j, "a\0b", 3)), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "a")), 2);
	assert_int_equal(ss_json_to_mp(&q, j), 0);
	/* Same keys, same order: the same bytes (json_equal() itself
	 * compares keys as C strings, so it cannot tell). */
	assert_int_equal(q.sb.size, p.sb.size);
	assert_memory_equal(q.sb.data, p.sb.data, p.sb.size);
	back = to_json(&q);
	assert_non_null(back);
	assert_int_equal(json_object_size(back), 2);
	assert_int_equal(json_integer_value(json_object_getn(back, "a\0b", 3)),
	                 1);
	json_decref(back);
	json_decref(j);
	ss_pack_free(&p);
	ss_pack_free(&q);
}

/* The writer keeps repeated keys as they come (documented). */
static void
test_writer_dup_key(void **state)
{
	msgpack_unpacked up;
	msgpack_sbuffer out;
	ss_pack p;
	size_t off = 0;

	(void)state;
	ss_pack_init(&p);
	pk_dup_key(&p.pk);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	msgpack_sbuffer_init(&out);
	assert_int_equal(ss_mp_write_json(&out, &up.data), 0);
	assert_int_equal(out.size, strlen("{\"k\":1,\"k\":2}"));
	assert_memory_equal(out.data, "{\"k\":1,\"k\":2}", out.size);
	msgpack_sbuffer_destroy(&out);
	msgpack_unpacked_destroy(&up);
	ss_pack_free(&p);
}

/* One string of n raw bytes through the writer (and jansson). */
static void
str_case(const char *bytes, size_t n)
{
	ss_pack p;

	ss_pack_init(&p);
	msgpack_pack_str(&p.pk, n);
	msgpack_pack_str_body(&p.pk, bytes, n);
	writer_matches(&p);
	ss_pack_free(&p);
}

static void
real_case(double d)
{
	ss_pack p;

	ss_pack_init(&p);
	msgpack_pack_double(&p.pk, d);
	writer_matches(&p);
	ss_pack_free(&p);
}

/* Escapes, every control byte, UTF-8 edges and reals: the same text as
 * jansson's, or the same refusal. */
static void
test_writer_text(void **state)
{
	static const char *const bad[] = {
	    "\xc0\x80",
	    "\xc1\xbf",
	    "\xe0\x80\x80",
	    "\xed\xa0\x80",
	    "\xed\xbf\xbf",
	    "\xf0\x80\x80\x80",
	    "\xf4\x90\x80\x80",
	    "\xf5\x80\x80\x80",
	    "\xe2\x82",
	    "\x80",
	    "a\xbf",
	    "\xff",
	    "\xf0\x9f\x98",
	    "\xc3(",
	    "ok\xe2\x28\xa1",
	};
	char b[4];
	int c;

	(void)state;
	for (c = 0; c < 0x80; c++) {
		b[0] = 'x';
		b[1] = (char)c;
		b[2] = 'y';
		str_case(b, 3);
	}
	str_case("\"\\/\b\f\n\r\t", 8);
	str_case("\xe2\x80\xa8 \xe2\x80\xa9 \x7f", 9);
	str_case("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 10);
	str_case("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8);
	str_case("\xed\x9f\xbf\xee\x80\x80", 6);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msgpack_unpacked up;
		msgpack_sbuffer out;
		ss_pack p;
		size_t off = 0;

		str_case(bad[i], strlen(bad[i]));
		/* and refused outright, not only like jansson */
		ss_pack_init(&p);
		msgpack_pack_str(&p.pk, strlen(bad[i]));
		msgpack_pack_str_body(&p.pk, bad[i], strlen(bad[i]));
		msgpack_unpacked_init(&up);
		assert_int_equal(
		    msgpack_unpack_next(&up, p.sb.data, p.sb.size, &off),
		    MSGPACK_UNPACK_SUCCESS);
		msgpack_sbuffer_init(&out);
		assert_int_equal(ss_mp_write_json(&out, &up.data), SS_EBADREQ);
		msgpack_sbuffer_destroy(&out);
		msgpack_unpacked_destroy(&up);
		ss_pack_free(&p);
	}
	real_case(0.0);
	real_case(-0.0);
	real_case(100.0);
	real_case(0.1);
	real_case(1e300);
	real_case(-1.5e-7);
	real_case(1e-300);
	real_case(5e-324);
	real_case(1.7976931348623157e308);
	real_case(123456789012345678.0);
	real_case(1e21);
	real_case(1e16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_containers),
	    cmocka_unit_test(test_from_msgpack),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_json_reals_finite),
	    cmocka_unit_test(test_nul_in_key),
	    cmocka_unit_test(test_writer_dup_key),
	    cmocka_unit_test(test_writer_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
