/*
 * tests/unit/test_argv.c - the Redis argument vector: copies, lengths,
 * binary data, integers and the status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/errors.h"
#include "runtime/argv.h"

static void
test_init_free(void **state)
{
	ss_argv a;

	(void)state;
	memset(&a, 0xa5, sizeof a);
	ss_argv_init(&a);
	assert_int_equal(a.n, 0);
	assert_int_equal(a.oom, 0);
	assert_int_equal(ss_argv_status(&a), 0);
	ss_argv_free(&a);
	assert_int_equal(a.n, 0);
	assert_null(a.v);
	assert_null(a.lens);
	/* Free leaves a usable empty vector. */
	ss_argv_pushs(&a, "again");
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0], "again");
	ss_argv_free(&a);
}

static void
test_push_copies(void **state)
{
	ss_argv a;
	char buf[16];

	(void)state;
	ss_argv_init(&a);
	strcpy(buf, "EVALSHA");
	ss_argv_pushs(&a, buf);
	strcpy(buf, "overwrite");
	ss_argv_push(&a, "abcdef", 3);
	ss_argv_push(&a, "whole", (size_t)-1);
	ss_argv_push(&a, "", 0);
	assert_int_equal(ss_argv_status(&a), 0);
	assert_int_equal(a.n, 4);
	assert_string_equal(a.v[0], "EVALSHA");
	assert_int_equal(a.lens[0], 7);
	assert_memory_equal(a.v[1], "abc", 3);
	assert_int_equal(a.lens[1], 3);
	assert_int_equal(a.v[1][3], '\0');
	assert_string_equal(a.v[2], "whole");
	assert_int_equal(a.lens[2], 5);
	assert_string_equal(a.v[3], "");
	assert_int_equal(a.lens[3], 0);
	ss_argv_free(&a);
}

static void
test_binary(void **state)
{
	static const char bin[] = {'a', '\0', 'b', '\xff', '\0', '\n'};
	ss_argv a;

	(void)state;
	ss_argv_init(&a);
	ss_argv_push(&a, bin, sizeof bin);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.lens[0], sizeof bin);
	assert_memory_equal(a.v[0], bin, sizeof bin);
	ss_argv_free(&a);
}

static void
test_ints(void **state)
{
	static const struct {
		int64_t v;
		const char *s;
	} cases[] = {
	    {0, "0"},
	    {1, "1"},
	    {-1, "-1"},
	    {1234567890123LL, "1234567890123"},
	    {INT64_MAX, "9223372036854775807"},
	    {INT64_MIN, "-9223372036854775808"},
	};
	size_t n = sizeof cases / sizeof cases[0];
	ss_argv a;

	(void)state;
	ss_argv_init(&a);
	for (size_t i = 0; i < n; i++)
		ss_argv_pushi(&a, cases[i].v);
	assert_int_equal(a.n, (int)n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(a.v[i], cases[i].s);
		assert_int_equal(a.lens[i], strlen(cases[i].s));
	}
	ss_argv_free(&a);
}

static void
test_many(void **state)
{
	ss_argv a;
	char want[32];

	(void)state;
	ss_argv_init(&a);
	for (int i = 0; i < 5000; i++) {
		if (i % 2)
			ss_argv_pushi(&a, i);
		else {
			snprintf(want, sizeof want, "s%d", i);
			ss_argv_pushs(&a, want);
		}
	}
	assert_int_equal(ss_argv_status(&a), 0);
	assert_int_equal(a.n, 5000);
	assert_true(a.cap >= a.n);
	for (int i = 0; i < 5000; i++) {
		snprintf(want, sizeof want, i % 2 ? "%d" : "s%d", i);
		assert_string_equal(a.v[i], want);
		assert_int_equal(a.lens[i], strlen(want));
	}
	ss_argv_free(&a);
}

static void
test_status_after_oom(void **state)
{
	ss_argv a;

	(void)state;
	ss_argv_init(&a);
	ss_argv_pushs(&a, "one");
	/* A failed push marks the vector and later pushes are dropped. */
	a.oom = 1;
	assert_int_equal(ss_argv_status(&a), SS_ENOMEM);
	ss_argv_pushs(&a, "two");
	assert_int_equal(a.n, 1);
	assert_int_equal(ss_argv_status(&a), SS_ENOMEM);
	ss_argv_free(&a);
	assert_int_equal(ss_argv_status(&a), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_free),
	    cmocka_unit_test(test_push_copies),
	    cmocka_unit_test(test_binary),
	    cmocka_unit_test(test_ints),
	    cmocka_unit_test(test_many),
	    cmocka_unit_test(test_status_after_oom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
