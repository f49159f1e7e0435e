/*
 * tests/unit/test_addr.c - whom a per-address limit counts (runtime/addr.h):
 * an IPv4 address itself, an IPv6 address by its /64, a v4-mapped address
 * as its IPv4 address, anything else as given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/addr.h"

static void
test_clients(void **state)
{
	static const char *const cases[][2] = {
	    {"192.0.2.7", "192.0.2.7"},
	    {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
	    {"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
	    {"2001:db8:1:3::1", "2001:db8:1:3::/64"},
	    {"::1", "::/64"},
	    {"::ffff:192.0.2.7", "192.0.2.7"},
	    {"fe80::1", "fe80::/64"},
	    {"-", "-"},
	    {"not an address", "not an address"},
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ss_addr_client(cases[i][0], out, sizeof out);
		assert_string_equal(out, cases[i][1]);
	}
	/* Two addresses of one /64 share a count; the next /64 does not. */
	char a[64], b[64], c[64];
	ss_addr_client("2001:db8::1", a, sizeof a);
	ss_addr_client("2001:db8::ffff:1", b, sizeof b);
	ss_addr_client("2001:db8:0:1::1", c, sizeof c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
