/*
 * tests/unit/test_batch.c - the body of a bus.batch: ss_batch_items() on
 * sound and malformed bodies, and the packing helpers round trip.
 *
 * Bodies are packed with msgpack-c (or written byte for byte) and unpacked
 * with msgpack-c, as ss_msg_decode() hands them on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "proto/batch.h"
#include "proto/errors.h"

typedef struct fx {
	msgpack_unpacked up;
	ss_str items[SS_BATCH_MAX];
	size_t n;
	const char *why;
} fx;

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	msgpack_unpacked_init(&f->up);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;

	msgpack_unpacked_destroy(&f->up);
	free(f);
	return 0;
}

/* ss_batch_items() on the body in bytes, with key "calls". */
static int
items_of(fx *f, const void *bytes, size_t len, size_t max)
{
	assert_int_equal(msgpack_unpack_next(&f->up, bytes, len, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	f->why = NULL;
	return ss_batch_items(&f->up.data, "calls", f->items, max, &f->n,
	                      &f->why);
}

/* A byte string literal and its length. */
#define B(lit) lit, sizeof(lit) - 1

static void
assert_refused(fx *f, const void *bytes, size_t len, const char *why)
{
	assert_int_equal(items_of(f, bytes, len, SS_BATCH_MAX), SS_EBADREQ);
	assert_int_equal(f->n, 0);
	assert_non_null(f->why);
	assert_string_equal(f->why, why);
}

static void
test_round_trip(void **state)
{
	fx *f = *state;
	static const char *const msg[] = {"\x80", "abc", "\x01\x02\x03\x04"};
	ss_pack p;

	ss_pack_init(&p);
	ss_batch_pack_head(&p, "calls", 3);
	for (int i = 0; i < 3; i++)
		ss_pack_bin(&p, msg[i], strlen(msg[i]));
	assert_int_equal(items_of(f, p.sb.data, p.sb.size, SS_BATCH_MAX), 0);
	assert_int_equal(f->n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(f->items[i].n, strlen(msg[i]));
		assert_memory_equal(f->items[i].p, msg[i], f->items[i].n);
	}
	/* The same body under a smaller cap is refused. */
	assert_int_equal(items_of(f, p.sb.data, p.sb.size, 2), SS_EBADREQ);
	ss_pack_free(&p);
}

static void
test_bad_shapes(void **state)
{
	fx *f = *state;

	assert_refused(f, B("\x90"), "a batch body has exactly one field");
	assert_refused(f, B("\x80"), "a batch body has exactly one field");
	assert_refused(f,
	               B("\x82\xa5"
	                 "calls\x91\xc4\x01\x80\xa1x\x01"),
	               "a batch body has exactly one field");
	assert_refused(f, B("\x81\xa7replies\x91\xc4\x01\x80"),
	               "a batch body has an unknown field");
	assert_refused(f,
	               B("\x81\xa4"
	                 "call\x91\xc4\x01\x80"),
	               "a batch body has an unknown field");
	assert_refused(f, B("\x81\x01\x91\xc4\x01\x80"),
	               "a batch body has an unknown field");
	assert_refused(f,
	               B("\x81\xa5"
	                 "calls\x90"),
	               "a batch holds no messages or too many");
	assert_refused(f,
	               B("\x81\xa5"
	                 "calls\xc4\x01\x80"),
	               "a batch holds no messages or too many");
	assert_refused(f,
	               B("\x81\xa5"
	                 "calls\x91\xa1x"),
	               "a batch item is not a message (bin)");
	assert_refused(f,
	               B("\x81\xa5"
	                 "calls\x91\xc4\x00"),
	               "a batch item is not a message (bin)");
	assert_refused(f,
	               B("\x81\xa5"
	                 "calls\x92\xc4\x01\x80\x80"),
	               "a batch item is not a message (bin)");
	assert_refused(f,
	               B("\x81\xa5"
	                 "calls\x91\xc0"),
	               "a batch item is not a message (bin)");
}

static void
test_too_many(void **state)
{
	fx *f = *state;
	ss_pack p;

	ss_pack_init(&p);
	ss_batch_pack_head(&p, "calls", SS_BATCH_MAX + 1);
	for (int i = 0; i <= SS_BATCH_MAX; i++)
		ss_pack_bin(&p, "\x80", 1);
	assert_int_equal(items_of(f, p.sb.data, p.sb.size, SS_BATCH_MAX),
	                 SS_EBADREQ);
	assert_string_equal(f->why, "a batch holds no messages or too many");
	ss_pack_free(&p);
	/* NULL (an error reply has no body) is refused, not read. */
	f->why = NULL;
	assert_int_equal(ss_batch_items(NULL, "calls", f->items, SS_BATCH_MAX,
	                                &f->n, &f->why),
	                 SS_EBADREQ);
	assert_non_null(f->why);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_shapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
