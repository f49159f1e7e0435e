/*
 * tests/unit/test_addr.c - runtime/addr.h: host:port settings split by
 * one rule (and every malformed one refused), and whom a per-address
 * limit counts: an IPv4 address itself, an IPv6 address by its /64, a
 * v4-mapped address as its IPv4 address, anything else as given.
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

static void
test_split(void **state)
{
	static const struct {
		const char *in, *host;
		uint16_t port;
	} good[] = {
	    {"127.0.0.1:8080", "127.0.0.1", 8080},
	    {"tcp://127.0.0.1:1", "127.0.0.1", 1},
	    {"redis.default.svc:6379", "redis.default.svc", 6379},
	    {"0.0.0.0:65535", "0.0.0.0", 65535},
	    {"[::1]:9100", "::1", 9100},
	    {"tcp://[::]:8080", "::", 8080},
	    {"[fe80::1%eth0]:80", "fe80::1%eth0", 80},
	};
	static const char *const bad[] = {
	    "",
	    "8080",
	    ":8080",
	    "host:",
	    "host:0",
	    "host:65536",
	    "host:99999999999999999999",
	    "host:80x",
	    "host:-1",
	    "host: 80",
	    "host:+80",
	    "[::1]",
	    "[::1]8080",
	    "[::1:8080",
	    "[]:8080",
	    "tcp://",
	    "tcp://:80",
	    "tcp://[::1]",
	    "host:80:",
	};
	char host[32], small[4];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		port = 0;
		assert_int_equal(
		    ss_addr_split(good[i].in, host, sizeof host, &port), 0);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (ss_addr_split(bad[i], host, sizeof host, &port) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* A host longer than the room given is refused, not cut. */
	assert_int_not_equal(
	    ss_addr_split("abcd:80", small, sizeof small, &port), 0);
	assert_int_equal(ss_addr_split("abc:80", small, sizeof small, &port),
	                 0);
	assert_string_equal(small, "abc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
