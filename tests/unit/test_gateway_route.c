/*
 * tests/unit/test_gateway_route.c - services/gateway/route.c, tmpl.c and
 * static.c: routing, templates, and which files may be served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

static void
h_a(gw_req *r)
{
	(void)r;
}

static const gw_route tab[] = {
    {"sessions", GW_POST, "/api/v1/sessions", GW_AUTH_NONE, false, h_a, false},
    {"wl.get", GW_GET, "/api/v1/worklists/*", GW_AUTH_BEARER, false, h_a,
     false},
    {"wl.studies", GW_GET, "/api/v1/worklists/*/studies", GW_AUTH_BEARER, false,
     h_a, false},
    {"share.create", GW_POST, "/api/v1/studies/*/shares", GW_AUTH_BEARER, false,
     h_a, false},
    {"share.list", GW_GET, "/api/v1/studies/*/shares", GW_AUTH_BEARER, false,
     h_a, false},
    {"guest", GW_GET | GW_POST, "/g/*", GW_AUTH_NONE, true, h_a, false},
    {"index", GW_GET | GW_HEAD, "/", GW_AUTH_NONE, true, h_a, false},
};
#define NTAB (sizeof tab / sizeof tab[0])

static int
find(int method, const char *path, gw_params *pm, int *allowed)
{
	return gw_route_find(tab, NTAB, method, path, pm, allowed);
}

static void
test_routes_match_with_parameters(void **state)
{
	gw_params pm;
	int allowed;

	(void)state;
	assert_int_equal(find(GW_POST, "/api/v1/sessions", &pm, &allowed), 0);
	assert_int_equal(pm.n, 0);
	assert_int_equal(
	    find(GW_GET, "/api/v1/worklists/location:ct", &pm, &allowed), 1);
	assert_string_equal(pm.v[0], "location:ct");
	assert_int_equal(find(GW_GET, "/api/v1/worklists/location%3Act/studies",
	                      &pm, &allowed),
	                 2);
	assert_string_equal(pm.v[0], "location:ct");
	assert_int_equal(
	    find(GW_POST, "/api/v1/studies/1.2.3/shares", &pm, &allowed), 3);
	assert_int_equal(
	    find(GW_GET, "/api/v1/studies/1.2.3/shares", &pm, &allowed), 4);
	assert_string_equal(pm.v[0], "1.2.3");
	assert_int_equal(find(GW_GET, "/", &pm, &allowed), 6);
	/* an encoded slash stays inside its parameter */
	assert_int_equal(find(GW_GET, "/g/a%2Fb", &pm, &allowed), 5);
	assert_string_equal(pm.v[0], "a/b");
}

static void
test_no_route_and_wrong_method(void **state)
{
	gw_params pm;
	int allowed;

	(void)state;
	static const char *const none[] = {"/api/v1",
	                                   "/api/v1/sessions/",
	                                   "/api/v1/worklists/",
	                                   "/api/v1/worklists//studies",
	                                   "/api/v1/worklists/a/b",
	                                   "/g/",
	                                   "/g/a/b",
	                                   "",
	                                   "//"};
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		assert_int_equal(find(GW_GET, none[i], &pm, &allowed),
		                 GW_ROUTE_NONE);
		assert_int_equal(allowed, 0);
	}
	assert_int_equal(find(GW_DELETE, "/api/v1/sessions", &pm, &allowed),
	                 GW_ROUTE_NONE);
	assert_int_equal(allowed, GW_POST);
	assert_int_equal(
	    find(GW_PUT, "/api/v1/studies/1/shares", &pm, &allowed),
	    GW_ROUTE_NONE);
	assert_int_equal(allowed, GW_GET | GW_POST);
	/* parameters that do not decode: the route, the parameter "" */
	assert_int_equal(find(GW_GET, "/g/a%00b", &pm, &allowed), 5);
	assert_true(pm.bad);
	assert_string_equal(pm.v[0], "");
	assert_int_equal(find(GW_GET, "/g/%zz", &pm, &allowed), 5);
	assert_true(pm.bad);
	char longp[GW_PARAM_MAX + 16];
	memcpy(longp, "/g/", 3);
	memset(longp + 3, 'a', GW_PARAM_MAX + 1);
	longp[3 + GW_PARAM_MAX + 1] = '\0';
	assert_int_equal(find(GW_GET, longp, &pm, &allowed), 5);
	assert_true(pm.bad);
	assert_string_equal(pm.v[0], "");
	assert_int_equal(
	    find(GW_GET, "/api/v1/worklists/%zz/studies", &pm, &allowed), 2);
	assert_true(pm.bad);
	/* and one that does clears the flag */
	assert_int_equal(find(GW_GET, "/g/abc", &pm, &allowed), 5);
	assert_false(pm.bad);
	assert_string_equal(pm.v[0], "abc");
}

static char *
render(const char *text, const char *const *vars)
{
	gw_tmpl t = {(char *)text, strlen(text)};
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	assert_int_equal(gw_tmpl_render(&t, vars, b), 0);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void
test_templates_escape(void **state)
{
	const char *vars[] = {"name", "<b>\"O'Neil\" & co</b>", "rows",
	                      "<tr><td>x</td></tr>", NULL};
	char *s;

	(void)state;
	s = render("<p>{{name}}</p>{{{rows}}}{{missing}}.", vars);
	assert_string_equal(s, "<p>&lt;b&gt;&quot;O&#39;Neil&quot; &amp; "
	                       "co&lt;/b&gt;</p><tr><td>x</td></tr>.");
	free(s);
	/* braces that are no placeholder are left as they are */
	s = render("a {{ b {{}} c }} {{x", vars);
	assert_string_equal(s, "a {{ b {{}} c }} {{x");
	free(s);
	s = render("no placeholders", NULL);
	assert_string_equal(s, "no placeholders");
	free(s);
}

static void
test_template_files(void **state)
{
	char path[] = "/tmp/gw-tmpl-XXXXXX";
	gw_tmpl t;
	int fd;

	(void)state;
	assert_int_equal(gw_tmpl_load(&t, "/nonexistent/x.html"), SS_ENOTFOUND);
	assert_int_equal(gw_tmpl_load(&t, "/tmp"), SS_ENOTFOUND);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hi {{x}}", 8), 8);
	close(fd);
	assert_int_equal(gw_tmpl_load(&t, path), 0);
	assert_int_equal(t.len, 8);
	assert_string_equal(t.text, "hi {{x}}");
	gw_tmpl_free(&t);
	assert_null(t.text);
	unlink(path);
}

static void
test_static_names_and_types(void **state)
{
	(void)state;
	assert_string_equal(gw_static_type("app.js"),
	                    "text/javascript; charset=utf-8");
	assert_string_equal(gw_static_type("app.css"),
	                    "text/css; charset=utf-8");
	assert_string_equal(gw_static_type("index.html"),
	                    "text/html; charset=utf-8");
	assert_string_equal(gw_static_type("logo.svg"), "image/svg+xml");
	assert_null(gw_static_type("app.exe"));
	assert_null(gw_static_type(".js"));
	assert_true(gw_static_name_ok("app.js"));
	assert_true(gw_static_name_ok("guest-links_2.css"));
	static const char *const bad[] = {
	    "",        ".js",      ".hidden.js", "../app.js", "a/b.js",
	    "a\\b.js", "app.js\n", "app",        "app.exe",   "a b.js"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(gw_static_name_ok(bad[i]));
}

static void
test_times(void **state)
{
	char out[21];
	int64_t t;

	(void)state;
	gw_time_fmt(1800000000, out);
	assert_string_equal(out, "2027-01-15T08:00:00Z");
	assert_int_equal(gw_time_parse(out, &t), 0);
	assert_int_equal(t, 1800000000);
	assert_int_equal(gw_time_parse("2027-01-15T08:00:00.123Z", &t), 0);
	assert_int_equal(t, 1800000000);
	assert_int_equal(gw_time_parse("2027-01-15 08:00:00Z", &t), SS_EBADREQ);
	assert_int_equal(gw_time_parse("2027-13-15T08:00:00Z", &t), SS_EBADREQ);
	assert_int_equal(gw_time_parse("2027-01-15T08:00:00+01:00", &t),
	                 SS_EBADREQ);
	assert_int_equal(gw_time_parse("", &t), SS_EBADREQ);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routes_match_with_parameters),
	    cmocka_unit_test(test_no_route_and_wrong_method),
	    cmocka_unit_test(test_templates_escape),
	    cmocka_unit_test(test_template_files),
	    cmocka_unit_test(test_static_names_and_types),
	    cmocka_unit_test(test_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
