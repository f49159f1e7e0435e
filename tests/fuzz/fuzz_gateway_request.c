/*
 * tests/fuzz/fuzz_gateway_request.c - the other untrusted bytes of an HTTP
 * request on arbitrary input: the path (routing and percent-decoding of
 * parameters), the query or form body, the Cookie header, the bearer
 * token and the X-Forwarded-For header.
 *
 * Decoded values must be NUL-terminated within their buffers and free of
 * NUL and control bytes; no token made of arbitrary bytes verifies; a
 * forwarded address taken is an address found in the header.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

static void
h(gw_req *r)
{
	(void)r;
}

static const gw_route tab[] = {
    {"a", GW_POST, "/api/v1/sessions", GW_AUTH_NONE, false, h, false},
    {"b", GW_GET, "/api/v1/worklists/*/studies", GW_AUTH_BEARER, false, h,
     false},
    {"c", GW_GET | GW_POST, "/api/v1/studies/*/guest-links", GW_AUTH_BEARER,
     false, h, false},
    {"d", GW_GET | GW_POST, "/g/*", GW_AUTH_NONE, true, h, false},
    {"e", GW_GET, "/static/*", GW_AUTH_NONE, true, h, false},
};

static void
clean(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		abort(); /* not terminated */
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = {"password", "limit", NULL};
	static const char key[] = "fuzz-jwt-secret-0123456789abcdef0123";
	char *s, out[64], why[128], user[GW_USER_MAX + 1];
	char addr[GW_ADDR_MAX + 1];
	unsigned char ip[16];
	gw_params pm;
	size_t n;
	int allowed_m, rv;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	rv = gw_route_find(tab, sizeof tab / sizeof tab[0], GW_GET, s, &pm,
	                   &allowed_m);
	if (rv >= 0)
		for (size_t i = 0; i < pm.n; i++)
			clean(pm.v[i], sizeof pm.v[i]);

	if (gw_pct_decode(s, size, true, out, sizeof out, &n) == 0) {
		clean(out, sizeof out);
		if (n != strlen(out))
			abort();
	}
	if (gw_form_get(s, size, "password", out, sizeof out, &n) == 1)
		clean(out, sizeof out);
	(void)gw_form_check(s, size, allowed, why, sizeof why);
	if (gw_cookie_get(s, "ss_guest", out, sizeof out) == 1 &&
	    strnlen(out, sizeof out) == sizeof out)
		abort();
	if (gw_jwt_verify(key, sizeof key - 1, s, size, 1800000000, user,
	                  NULL) == 0)
		abort(); /* nobody forges a token from random bytes */
	(void)gw_static_name_ok(s);
	if (gw_xff_client(s, addr) == 0) {
		clean(addr, sizeof addr);
		if (strstr(s, addr) == NULL ||
		    (inet_pton(AF_INET, addr, ip) != 1 &&
		     inet_pton(AF_INET6, addr, ip) != 1))
			abort();
	}
	free(s);
	return 0;
}
