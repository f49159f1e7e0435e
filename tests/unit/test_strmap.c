/*
 * tests/unit/test_strmap.c - the string hash map: insert, replace, growth,
 * binary keys and iteration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/strmap.h"

static void
test_put_get_replace(void **state)
{
	ss_strmap *m = ss_strmap_new();
	int a = 1, b = 2, c = 3;

	(void)state;
	assert_non_null(m);
	assert_int_equal(ss_strmap_len(m), 0);
	assert_null(ss_strmap_gets(m, "alice"));
	assert_null(ss_strmap_gets(m, ""));

	assert_int_equal(ss_strmap_put(m, "alice", 5, &a), 0);
	assert_int_equal(ss_strmap_put(m, "bob", 3, &b), 0);
	assert_int_equal(ss_strmap_len(m), 2);
	assert_ptr_equal(ss_strmap_gets(m, "alice"), &a);
	assert_ptr_equal(ss_strmap_get(m, "bob", 3), &b);
	/* Lookups use the length, not a terminator. */
	assert_ptr_equal(ss_strmap_get(m, "alicexyz", 5), &a);
	assert_null(ss_strmap_get(m, "alice", 4));
	assert_null(ss_strmap_gets(m, "Alice"));
	assert_null(ss_strmap_gets(m, "carol"));

	/* Replacing keeps one entry with the new value. */
	assert_int_equal(ss_strmap_put(m, "alice", 5, &c), 0);
	assert_int_equal(ss_strmap_len(m), 2);
	assert_ptr_equal(ss_strmap_gets(m, "alice"), &c);

	/* The empty key is a key like any other. */
	assert_int_equal(ss_strmap_put(m, "", 0, &a), 0);
	assert_ptr_equal(ss_strmap_gets(m, ""), &a);
	assert_int_equal(ss_strmap_len(m), 3);
	ss_strmap_free(m);
	ss_strmap_free(NULL);
}

static void
test_key_is_copied(void **state)
{
	ss_strmap *m = ss_strmap_new();
	char key[16];
	int v = 7;

	(void)state;
	assert_non_null(m);
	strcpy(key, "transient");
	assert_int_equal(ss_strmap_put(m, key, strlen(key), &v), 0);
	memset(key, 'x', sizeof key - 1);
	key[sizeof key - 1] = '\0';
	assert_ptr_equal(ss_strmap_gets(m, "transient"), &v);
	assert_null(ss_strmap_gets(m, key));
	ss_strmap_free(m);
}

#define NKEYS 10000

static void
test_many_keys(void **state)
{
	ss_strmap *m = ss_strmap_new();
	int *vals = calloc(NKEYS, sizeof *vals);
	char key[32];

	(void)state;
	assert_non_null(m);
	assert_non_null(vals);
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof key, "key-%d", i);
		vals[i] = i;
		assert_int_equal(ss_strmap_put(m, key, strlen(key), &vals[i]),
		                 0);
		assert_int_equal(ss_strmap_len(m), (size_t)i + 1);
	}
	/* Every key survived the growths, with its own value. */
	for (int i = 0; i < NKEYS; i++) {
		int *p;

		snprintf(key, sizeof key, "key-%d", i);
		p = ss_strmap_gets(m, key);
		assert_non_null(p);
		assert_ptr_equal(p, &vals[i]);
		assert_int_equal(*p, i);
	}
	for (int i = NKEYS; i < NKEYS + 1000; i++) {
		snprintf(key, sizeof key, "key-%d", i);
		assert_null(ss_strmap_gets(m, key));
	}
	/* Replacing them all does not add entries. */
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof key, "key-%d", i);
		assert_int_equal(
		    ss_strmap_put(m, key, strlen(key), &vals[NKEYS - 1 - i]),
		    0);
	}
	assert_int_equal(ss_strmap_len(m), NKEYS);
	snprintf(key, sizeof key, "key-%d", 0);
	assert_ptr_equal(ss_strmap_gets(m, key), &vals[NKEYS - 1]);
	ss_strmap_free(m);
	free(vals);
}

static void
test_nul_in_keys(void **state)
{
	ss_strmap *m = ss_strmap_new();
	int a = 1, b = 2, c = 3, d = 4;

	(void)state;
	assert_non_null(m);
	assert_int_equal(ss_strmap_put(m, "a\0b", 3, &a), 0);
	assert_int_equal(ss_strmap_put(m, "a\0c", 3, &b), 0);
	assert_int_equal(ss_strmap_put(m, "a", 1, &c), 0);
	assert_int_equal(ss_strmap_put(m, "a\0", 2, &d), 0);
	assert_int_equal(ss_strmap_len(m), 4);
	assert_ptr_equal(ss_strmap_get(m, "a\0b", 3), &a);
	assert_ptr_equal(ss_strmap_get(m, "a\0c", 3), &b);
	assert_ptr_equal(ss_strmap_get(m, "a", 1), &c);
	assert_ptr_equal(ss_strmap_gets(m, "a"), &c);
	assert_ptr_equal(ss_strmap_get(m, "a\0", 2), &d);
	assert_null(ss_strmap_get(m, "a\0d", 3));
	assert_null(ss_strmap_get(m, "a\0b\0", 4));
	ss_strmap_free(m);
}

typedef struct visit {
	int *counts;
	int n;
	int bad;
} visit;

static void
count_visit(const char *key, void *val, void *arg)
{
	visit *v = arg;
	int i = *(int *)val;
	char want[32];

	snprintf(want, sizeof want, "k%d", i);
	if (i < 0 || i >= v->n || strcmp(key, want) != 0)
		v->bad++;
	else
		v->counts[i]++;
}

static void
test_each(void **state)
{
	ss_strmap *m = ss_strmap_new();
	int vals[500], counts[500] = {0};
	visit v = {counts, 500, 0};
	char key[32];

	(void)state;
	assert_non_null(m);
	/* An empty map visits nothing. */
	ss_strmap_each(m, count_visit, &v);
	for (int i = 0; i < 500; i++)
		assert_int_equal(counts[i], 0);
	for (int i = 0; i < 500; i++) {
		vals[i] = i;
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(ss_strmap_put(m, key, strlen(key), &vals[i]),
		                 0);
	}
	ss_strmap_each(m, count_visit, &v);
	assert_int_equal(v.bad, 0);
	for (int i = 0; i < 500; i++)
		assert_int_equal(counts[i], 1);
	ss_strmap_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_replace),
	    cmocka_unit_test(test_key_is_copied),
	    cmocka_unit_test(test_many_keys),
	    cmocka_unit_test(test_nul_in_keys),
	    cmocka_unit_test(test_each),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
