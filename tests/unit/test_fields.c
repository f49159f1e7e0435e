/*
 * tests/unit/test_fields.c - ss_fields_parse() and the object views.
 *
 * Bodies are packed with msgpack-c and unpacked again, as a handler would
 * see them after ss_msg_decode().
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

/* A body being built, then the same body decoded. */
typedef struct fx {
	ss_pack p;
	msgpack_unpacked up;
	char why[128];
} fx;

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	ss_pack_init(&f->p);
	msgpack_unpacked_init(&f->up);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;

	msgpack_unpacked_destroy(&f->up);
	ss_pack_free(&f->p);
	free(f);
	return 0;
}

/* Starts a body map of n entries. */
static ss_pack *
body(fx *f, uint32_t n)
{
	ss_pack_reset(&f->p);
	msgpack_pack_map(&f->p.pk, n);
	return &f->p;
}

static const msgpack_object *
decoded(fx *f)
{
	size_t off = 0;

	assert_int_equal(
	    msgpack_unpack_next(&f->up, f->p.sb.data, f->p.sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, f->p.sb.size);
	return &f->up.data;
}

static const ss_field_spec spec[] = {
    {"user", SS_F_STR, true, 1, 8},       {"limit", SS_F_INT, false, 1, 500},
    {"deep", SS_F_BOOL, false, 0, 0},     {"patient", SS_F_MAP, false, 0, 2},
    {"targets", SS_F_ARRAY, false, 1, 3}, {"extra", SS_F_ANY, false, 0, 0},
    {"offset", SS_F_INT, false, -10, 0},  {"note", SS_F_STR, false, 0, 0},
};
#define NSPEC (sizeof spec / sizeof spec[0])

static int
parse(fx *f, const msgpack_object **out)
{
	memset(f->why, 0, sizeof f->why);
	return ss_fields_parse(decoded(f), spec, NSPEC, out, f->why,
	                       sizeof f->why);
}

static void
assert_refused(fx *f, const char *want)
{
	const msgpack_object *out[NSPEC];
	size_t i;

	assert_int_equal(parse(f, out), SS_EBADREQ);
	assert_string_equal(f->why, want);
	for (i = 0; i < NSPEC; i++)
		assert_null(out[i]);
}

static void
assert_ok(fx *f)
{
	const msgpack_object *out[NSPEC];

	assert_int_equal(parse(f, out), 0);
}

static void
test_every_type(void **state)
{
	fx *f = *state;
	ss_pack *p = body(f, 8);
	const msgpack_object *out[NSPEC];

	ss_pack_kv_cstr(p, "note", "hello");
	ss_pack_kv_cstr(p, "user", "alice");
	ss_pack_kv_int(p, "limit", 500);
	ss_pack_kv_bool(p, "deep", true);
	ss_pack_key(p, "patient");
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "id", "P1");
	ss_pack_key(p, "targets");
	msgpack_pack_array(&p->pk, 2);
	msgpack_pack_int(&p->pk, 1);
	msgpack_pack_int(&p->pk, 2);
	ss_pack_key(p, "extra");
	msgpack_pack_nil(&p->pk);
	ss_pack_kv_int(p, "offset", -10);

	assert_int_equal(parse(f, out), 0);
	assert_true(ss_obj_streq(out[0], "alice"));
	assert_int_equal(ss_obj_int(out[1]), 500);
	assert_true(ss_obj_bool(out[2]));
	assert_true(ss_obj_streq(ss_map_get(out[3], "id"), "P1"));
	assert_int_equal(out[4]->via.array.size, 2);
	assert_int_equal(out[5]->type, MSGPACK_OBJECT_NIL);
	assert_int_equal(ss_obj_int(out[6]), -10);
	assert_true(ss_obj_streq(out[7], "hello"));
}

static void
test_optional_absent_is_null(void **state)
{
	fx *f = *state;
	ss_pack *p = body(f, 1);
	const msgpack_object *out[NSPEC];
	size_t i;

	ss_pack_kv_cstr(p, "user", "bob");
	assert_int_equal(parse(f, out), 0);
	assert_non_null(out[0]);
	for (i = 1; i < NSPEC; i++)
		assert_null(out[i]);
}

static void
test_missing_required(void **state)
{
	fx *f = *state;
	ss_pack *p = body(f, 1);

	ss_pack_kv_int(p, "limit", 3);
	assert_refused(f, "missing field 'user'");

	body(f, 0);
	assert_refused(f, "missing field 'user'");
}

static void
test_wrong_types(void **state)
{
	fx *f = *state;
	ss_pack *p;

	p = body(f, 1);
	ss_pack_kv_int(p, "user", 1);
	assert_refused(f, "field 'user': expected string");

	p = body(f, 1);
	ss_pack_key(p, "user");
	msgpack_pack_bin_with_body(&p->pk, "bob", 3);
	assert_refused(f, "field 'user': expected string");

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "bob");
	ss_pack_kv_cstr(p, "limit", "10");
	assert_refused(f, "field 'limit': expected integer");

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "bob");
	ss_pack_key(p, "limit");
	msgpack_pack_double(&p->pk, 10.0);
	assert_refused(f, "field 'limit': expected integer");

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "bob");
	ss_pack_kv_int(p, "deep", 1);
	assert_refused(f, "field 'deep': expected bool");

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "bob");
	ss_pack_key(p, "patient");
	msgpack_pack_array(&p->pk, 0);
	assert_refused(f, "field 'patient': expected map");

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "bob");
	ss_pack_key(p, "targets");
	msgpack_pack_map(&p->pk, 0);
	assert_refused(f, "field 'targets': expected array");

	/* nil is not "absent" for a typed field. */
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "bob");
	ss_pack_key(p, "note");
	msgpack_pack_nil(&p->pk);
	assert_refused(f, "field 'note': expected string");
}

static void
test_bounds(void **state)
{
	fx *f = *state;
	ss_pack *p;

	/* Strings: byte length 1..8. */
	p = body(f, 1);
	ss_pack_kv_cstr(p, "user", "12345678");
	assert_ok(f);
	p = body(f, 1);
	ss_pack_kv_cstr(p, "user", "123456789");
	assert_refused(f, "field 'user': at most 8 bytes");
	p = body(f, 1);
	ss_pack_kv_cstr(p, "user", "");
	assert_refused(f, "field 'user': at least 1 byte");

	/* max 0: no bound but the envelope's. */
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_cstr(p, "note", "");
	assert_ok(f);

	/* Integers: 1..500, and -10..unbounded. */
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_int(p, "limit", 1);
	assert_ok(f);
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_int(p, "limit", 0);
	assert_refused(f, "field 'limit': at least 1");
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_int(p, "limit", 501);
	assert_refused(f, "field 'limit': at most 500");
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_int(p, "limit", -1);
	assert_refused(f, "field 'limit': at least 1");
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_int(p, "offset", -11);
	assert_refused(f, "field 'offset': at least -10");
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_int(p, "offset", INT64_MAX);
	assert_ok(f);
	/* Beyond int64: out of range even without a maximum. */
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_key(p, "offset");
	msgpack_pack_uint64(&p->pk, UINT64_MAX);
	assert_refused(f, "field 'offset': out of range");

	/* Maps: at most 2 entries; arrays: 1..3 elements. */
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_key(p, "patient");
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_int(p, "a", 1);
	ss_pack_kv_int(p, "b", 1);
	ss_pack_kv_int(p, "c", 1);
	assert_refused(f, "field 'patient': at most 2 fields");
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_key(p, "targets");
	msgpack_pack_array(&p->pk, 0);
	assert_refused(f, "field 'targets': at least 1 item");
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_key(p, "targets");
	msgpack_pack_array(&p->pk, 4);
	for (int i = 0; i < 4; i++)
		msgpack_pack_int(&p->pk, i);
	assert_refused(f, "field 'targets': at most 3 items");
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_key(p, "targets");
	msgpack_pack_array(&p->pk, 3);
	for (int i = 0; i < 3; i++)
		msgpack_pack_int(&p->pk, i);
	assert_ok(f);
}

static void
test_unknown_field(void **state)
{
	fx *f = *state;
	ss_pack *p;
	char longkey[200];

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_cstr(p, "foo", "x");
	assert_refused(f, "unknown field 'foo'");

	/* Names are compared whole. */
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_cstr(p, "use", "x");
	assert_refused(f, "unknown field 'use'");

	/* A hostile name is cut and made printable in the message. */
	memset(longkey, 'k', sizeof longkey);
	longkey[0] = '\n';
	longkey[1] = '\'';
	p = body(f, 1);
	ss_pack_strn(p, longkey, sizeof longkey);
	ss_pack_cstr(p, "x");
	memset(f->why, 0, sizeof f->why);
	{
		const msgpack_object *out[NSPEC];

		assert_int_equal(parse(f, out), SS_EBADREQ);
	}
	assert_true(strncmp(f->why, "unknown field '??kkk", 20) == 0);
	assert_non_null(strstr(f->why, "...'"));
	assert_true(strlen(f->why) < 100);

	/* Keys must be strings. */
	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	msgpack_pack_int(&p->pk, 1);
	msgpack_pack_int(&p->pk, 2);
	assert_refused(f, "field names must be strings");
}

static void
test_nul_refused(void **state)
{
	fx *f = *state;
	ss_pack *p;

	p = body(f, 1);
	ss_pack_kv_strn(p, "user", "al\0ce", 5);
	assert_refused(f, "field 'user': contains a NUL byte");

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_strn(p, "note", "\0", 1);
	assert_refused(f, "field 'note': contains a NUL byte");
}

static void
test_duplicate_refused(void **state)
{
	fx *f = *state;
	ss_pack *p;

	p = body(f, 2);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_cstr(p, "user", "v");
	assert_refused(f, "duplicate field 'user'");

	/* Even with the same value, and for optional fields. */
	p = body(f, 3);
	ss_pack_kv_int(p, "limit", 5);
	ss_pack_kv_cstr(p, "user", "u");
	ss_pack_kv_int(p, "limit", 5);
	assert_refused(f, "duplicate field 'limit'");
}

static void
test_not_a_map(void **state)
{
	fx *f = *state;
	const msgpack_object *out[1] = {(const msgpack_object *)&f};
	msgpack_object arr;
	char why[64];

	memset(&arr, 0, sizeof arr);
	arr.type = MSGPACK_OBJECT_ARRAY;
	assert_int_equal(ss_fields_parse(&arr, spec, 1, out, why, sizeof why),
	                 SS_EBADREQ);
	assert_null(out[0]);
	assert_string_equal(why, "expected a map");
	assert_int_equal(ss_fields_parse(NULL, spec, 1, out, why, sizeof why),
	                 SS_EBADREQ);
	/* A NULL or short why buffer is fine. */
	assert_int_equal(ss_fields_parse(NULL, spec, 1, out, NULL, 0),
	                 SS_EBADREQ);
	assert_int_equal(ss_fields_parse(NULL, spec, 1, out, why, 4),
	                 SS_EBADREQ);
	assert_string_equal(why, "exp");
}

static void
test_views(void **state)
{
	fx *f = *state;
	ss_pack *p = body(f, 5);
	const msgpack_object *m;
	char dst[6];
	ss_str s;

	ss_pack_kv_cstr(p, "s", "hello");
	ss_pack_kv_int(p, "n", -42);
	ss_pack_kv_bool(p, "b", true);
	ss_pack_kv_strn(p, "z", "a\0b", 3);
	ss_pack_key(p, "big");
	msgpack_pack_uint64(&p->pk, UINT64_MAX);
	m = decoded(f);

	assert_null(ss_map_get(m, "missing"));
	assert_null(ss_map_get(m, "hell"));
	assert_null(ss_map_get(NULL, "s"));
	assert_null(ss_map_get(ss_map_get(m, "s"), "s"));

	s = ss_obj_str(ss_map_get(m, "s"));
	assert_int_equal(s.n, 5);
	assert_memory_equal(s.p, "hello", 5);
	s = ss_obj_str(ss_map_get(m, "n"));
	assert_int_equal(s.n, 0);

	assert_int_equal(ss_obj_int(ss_map_get(m, "n")), -42);
	assert_true(ss_obj_int(ss_map_get(m, "big")) == INT64_MAX);
	assert_int_equal(ss_obj_int(ss_map_get(m, "s")), 0);
	assert_true(ss_obj_bool(ss_map_get(m, "b")));
	assert_false(ss_obj_bool(ss_map_get(m, "n")));

	assert_int_equal(ss_obj_strcpy(ss_map_get(m, "s"), dst, sizeof dst), 0);
	assert_string_equal(dst, "hello");
	assert_int_equal(ss_obj_strcpy(ss_map_get(m, "s"), dst, 5), SS_EBADREQ);
	assert_int_equal(ss_obj_strcpy(ss_map_get(m, "n"), dst, sizeof dst),
	                 SS_EBADREQ);
	assert_int_equal(ss_obj_strcpy(ss_map_get(m, "z"), dst, sizeof dst),
	                 SS_EBADREQ);

	assert_true(ss_obj_streq(ss_map_get(m, "s"), "hello"));
	assert_false(ss_obj_streq(ss_map_get(m, "s"), "hell"));
	assert_false(ss_obj_streq(ss_map_get(m, "s"), "hello!"));
	assert_false(ss_obj_streq(ss_map_get(m, "n"), "-42"));
	assert_false(ss_obj_streq(NULL, "x"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_optional_absent_is_null, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_missing_required, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_field, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_nul_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_map, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_views, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
