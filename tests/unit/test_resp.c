/*
 * tests/unit/test_resp.c - RESP writing of an argv: the same bytes as
 * hiredis's formatter for every shape of argument, and the buffer's reuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "runtime/resp.h"

/* ss_resp_format(b, ...) equals redisFormatCommandArgv(...). */
static void
same(ss_resp_buf *b, int argc, const char **argv, const size_t *lens)
{
	char *want = NULL;
	long long n = redisFormatCommandArgv(&want, argc, argv, lens);

	assert_true(n > 0);
	assert_int_equal(ss_resp_format(b, argc, argv, lens), 0);
	assert_int_equal(b->len, (size_t)n);
	assert_memory_equal(b->data, want, b->len);
	redisFreeCommand(want);
}

static void
test_shapes(void **state)
{
	ss_resp_buf b = {0};
	const char *ping[] = {"PING"};
	const char *set[] = {"SET", "k", "v", "PX", "900000"};
	const char *bin[] = {"SET", "a\r\nb", "\0\r\n$3\r\n"};
	size_t binlens[] = {3, 4, 8};
	const char *empty[] = {"HSET", "k", "", ""};
	size_t emptylens[] = {4, 1, 0, 0};

	(void)state;
	same(&b, 1, ping, NULL);
	same(&b, 5, set, NULL);
	same(&b, 3, bin, binlens);
	same(&b, 4, empty, emptylens);
	same(&b, 0, ping, NULL);
	ss_resp_free(&b);
}

/* Lengths across digit boundaries, many arguments, a long one, then a
 * short one again (the buffer shrinks back). */
static void
test_sizes(void **state)
{
	static const size_t sizes[] = {
	    0,   1,    9,    10,    11,    99,    100,    101,
	    999, 1000, 9999, 10000, 65535, 65536, 100000, 1000000};
	ss_resp_buf b = {0};
	const char *argv[1001];
	size_t lens[1001], i;
	char *big = malloc(1000000);

	(void)state;
	assert_non_null(big);
	for (i = 0; i < 1000000; i++)
		big[i] = (char)(i * 7);
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		argv[0] = "SET";
		lens[0] = 3;
		argv[1] = big;
		lens[1] = sizes[i];
		same(&b, 2, argv, lens);
	}
	assert_true(b.cap >= 1000000);
	for (i = 0; i < 1001; i++) {
		argv[i] = big + i;
		lens[i] = i % 13;
	}
	same(&b, 1001, argv, lens);
	assert_true(b.cap <= 64 * 1024);
	free(big);
	ss_resp_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shapes),
	    cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
