/*
 * tests/unit/test_gateway_json.c - services/gateway/json.c, form.c and
 * http.c's X-Forwarded-For: untrusted request bodies, queries, cookies
 * and forwarded addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpcheck.h"
#include "services/gateway/gateway.h"

static const gw_jfield spec[] = {
    {"worklist", GW_J_STR, true, 1, 10}, {"max_uses", GW_J_INT, false, 1, 5},
    {"priors", GW_J_BOOL, false, 0, 0},  {"targets", GW_J_ARR, false, 1, 2},
    {"opts", GW_J_OBJ, false, 0, 1},
};
#define NSPEC (sizeof spec / sizeof spec[0])

/* Parses s and checks it against spec; returns the code, why in why. */
static int
check(const char *s, char *why, size_t whylen)
{
	json_t *j = NULL;
	int rv = gw_json_parse(s, strlen(s), 1024, &j, why, whylen);

	if (rv == 0)
		rv = gw_json_fields(j, spec, NSPEC, "", why, whylen);
	json_decref(j);
	return rv;
}

static void
test_good_bodies_pass(void **state)
{
	char why[256] = "";

	(void)state;
	assert_int_equal(
	    check("{\"worklist\":\"location:c\"}", why, sizeof why), 0);
	assert_int_equal(
	    check("{\"worklist\":\"w\",\"max_uses\":5,\"priors\":false,"
	          "\"targets\":[1],\"opts\":{}}",
	          why, sizeof why),
	    0);
	/* whitespace around the object is fine */
	assert_int_equal(check(" \n{\"worklist\":\"w\"}\n ", why, sizeof why),
	                 0);
}

static void
test_each_refusal_names_the_field(void **state)
{
	static const struct {
		const char *body;
		int rv;
		const char *why;
	} cases[] = {
	    {"", SS_EBADREQ, "empty body: expected a JSON object"},
	    {"nope", SS_EBADREQ, "malformed JSON at byte"},
	    {"[1]", SS_EBADREQ, "body: expected a JSON object"},
	    {"\"s\"", SS_EBADREQ, "body: expected a JSON object"},
	    {"{\"worklist\":\"a\",\"worklist\":\"b\"}", SS_EBADREQ,
	     "duplicate field 'worklist'"},
	    {"{\"worklist\":\"a\\u0000b\"}", SS_EBADREQ, "malformed JSON"},
	    {"{\"worklist\":\"a\"} {}", SS_EBADREQ, "malformed JSON"},
	    {"{}", SS_EBADREQ, "missing field 'worklist'"},
	    {"{\"worklist\":\"w\",\"user\":\"bob\"}", SS_EBADREQ,
	     "unknown field 'user'"},
	    {"{\"worklist\":1}", SS_EBADREQ,
	     "field 'worklist': expected string"},
	    {"{\"worklist\":null}", SS_EBADREQ,
	     "field 'worklist': expected string"},
	    {"{\"worklist\":\"\"}", SS_EBADREQ,
	     "field 'worklist': at least 1 byte"},
	    {"{\"worklist\":\"12345678901\"}", SS_EBADREQ,
	     "field 'worklist': at most 10 bytes"},
	    {"{\"worklist\":\"w\",\"max_uses\":3.0}", SS_EBADREQ,
	     "field 'max_uses': expected integer"},
	    {"{\"worklist\":\"w\",\"max_uses\":\"3\"}", SS_EBADREQ,
	     "field 'max_uses': expected integer"},
	    {"{\"worklist\":\"w\",\"max_uses\":6}", SS_EBADREQ,
	     "field 'max_uses': at most 5"},
	    {"{\"worklist\":\"w\",\"max_uses\":0}", SS_EBADREQ,
	     "field 'max_uses': at least 1"},
	    {"{\"worklist\":\"w\",\"priors\":1}", SS_EBADREQ,
	     "field 'priors': expected bool"},
	    {"{\"worklist\":\"w\",\"targets\":[]}", SS_EBADREQ,
	     "field 'targets': at least 1 item"},
	    {"{\"worklist\":\"w\",\"targets\":{}}", SS_EBADREQ,
	     "field 'targets': expected array"},
	    {"{\"worklist\":\"w\",\"opts\":{\"a\":1,\"b\":2}}", SS_EBADREQ,
	     "field 'opts': at most 1 field"},
	};
	char why[256], big[2048];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		why[0] = '\0';
		assert_int_equal(check(cases[i].body, why, sizeof why),
		                 cases[i].rv);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("%s: got '%s', want '%s'", cases[i].body, why,
			         cases[i].why);
	}
	/* over the cap */
	memset(big, ' ', sizeof big);
	big[0] = '{';
	big[sizeof big - 1] = '}';
	json_t *j = NULL;
	assert_int_equal(
	    gw_json_parse(big, sizeof big, 1024, &j, why, sizeof why),
	    SS_ETOOLARGE);
	assert_null(j);
	assert_string_equal(why, "request body larger than 1024 bytes");
	assert_int_equal(
	    gw_json_parse(big, sizeof big, sizeof big, &j, why, sizeof why), 0);
	json_decref(j);
}

static int
targets(const char *s, char *why, size_t whylen)
{
	json_t *j = json_loads(s, 0, NULL);
	int rv;

	assert_non_null(j);
	rv = gw_json_targets(j, why, whylen);
	json_decref(j);
	return rv;
}

static void
test_targets(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(
	    targets("[{\"kind\":\"organisation\",\"id\":\"n\"},"
	            "{\"kind\":\"location\",\"id\":\"mri\"},"
	            "{\"kind\":\"group\",\"id\":\"g\"},"
	            "{\"kind\":\"user\",\"id\":\"bob\"},"
	            "{\"kind\":\"share_code\",\"code\":\"7K2M9QXA\"},"
	            "{\"kind\":\"email\",\"email\":\"a@b.c\"}]",
	            why, sizeof why),
	    0);
	assert_int_equal(
	    targets("[{\"kind\":\"planet\",\"id\":\"x\"}]", why, sizeof why),
	    SS_EBADREQ);
	assert_non_null(
	    strstr(why, "field 'targets[0].kind': expected one of"));
	assert_int_equal(
	    targets("[{\"kind\":\"user\",\"id\":\"b\"},{\"id\":\"x\"}]", why,
	            sizeof why),
	    SS_EBADREQ);
	assert_string_equal(why, "missing field 'targets[1].kind'");
	assert_int_equal(targets("[{\"kind\":7}]", why, sizeof why),
	                 SS_EBADREQ);
	assert_string_equal(why, "field 'targets[0].kind': expected string");
	assert_int_equal(
	    targets("[{\"kind\":\"email\",\"id\":\"x\"}]", why, sizeof why),
	    SS_EBADREQ);
	assert_string_equal(why, "unknown field 'targets[0].id'");
	assert_int_equal(
	    targets("[{\"kind\":\"share_code\"}]", why, sizeof why),
	    SS_EBADREQ);
	assert_string_equal(why, "missing field 'targets[0].code'");
	assert_int_equal(targets("[[]]", why, sizeof why), SS_EBADREQ);
	assert_string_equal(why, "field 'targets[0]': expected object");
	assert_int_equal(
	    targets("[{\"kind\":\"user\",\"id\":\"\"}]", why, sizeof why),
	    SS_EBADREQ);
	assert_string_equal(why, "field 'targets[0].id': at least 1 byte");
}

static void
test_pack_object_adds_room_for_extra_pairs(void **state)
{
	json_t *j = json_loads("{\"worklist\":\"w\",\"n\":3,\"b\":true,"
	                       "\"t\":[{\"kind\":\"user\"}]}",
	                       0, NULL);
	const char *why = NULL;
	msgpack_unpacked up;
	size_t off = 0;
	ss_pack p;

	(void)state;
	ss_pack_init(&p);
	assert_int_equal(gw_pack_object(&p, j, 1), 0);
	ss_pack_kv_cstr(&p, "user", "alice");
	assert_int_equal(ss_mpcheck((const uint8_t *)p.sb.data, p.sb.size, 16,
	                            1 << 20, &why),
	                 0);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(up.data.via.map.size, 5);
	assert_true(ss_obj_streq(ss_map_get(&up.data, "user"), "alice"));
	assert_true(ss_obj_streq(ss_map_get(&up.data, "worklist"), "w"));
	assert_int_equal(ss_obj_int(ss_map_get(&up.data, "n")), 3);
	msgpack_unpacked_destroy(&up);
	ss_pack_free(&p);
	json_decref(j);
}

static void
test_percent_decoding(void **state)
{
	char out[16];
	size_t n;

	(void)state;
	assert_int_equal(gw_pct_decode("a%3Ab+c", 7, true, out, sizeof out, &n),
	                 0);
	assert_string_equal(out, "a:b c");
	assert_int_equal(n, 5);
	assert_int_equal(gw_pct_decode("a+b", 3, false, out, sizeof out, &n),
	                 0);
	assert_string_equal(out, "a+b");
	assert_int_equal(gw_pct_decode("%C3%A9", 6, false, out, sizeof out, &n),
	                 0);
	assert_string_equal(out, "\xc3\xa9");
	/* refused: bad escapes, NUL, control bytes, bad UTF-8, too long */
	static const char *const bad[] = {
	    "%",   "%4",  "%zz",    "a%00b",     "%0a",
	    "%7f", "%C3", "%C0%80", "%ED%A0%80", "0123456789abcdefg"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(gw_pct_decode(bad[i], strlen(bad[i]), true,
		                               out, sizeof out, &n),
		                 SS_EBADREQ);
	/* exactly fits: 15 bytes and the NUL */
	assert_int_equal(
	    gw_pct_decode("0123456789abcde", 15, true, out, sizeof out, &n), 0);
}

static void
test_forms_and_queries(void **state)
{
	static const char *const allowed[] = {"limit", "cursor", NULL};
	const char *q = "limit=5&cursor=a%2Fb&empty=&flag";
	char out[32], why[128];
	size_t n;

	(void)state;
	assert_int_equal(
	    gw_form_get(q, strlen(q), "limit", out, sizeof out, &n), 1);
	assert_string_equal(out, "5");
	assert_int_equal(
	    gw_form_get(q, strlen(q), "cursor", out, sizeof out, &n), 1);
	assert_string_equal(out, "a/b");
	assert_int_equal(
	    gw_form_get(q, strlen(q), "empty", out, sizeof out, &n), 1);
	assert_string_equal(out, "");
	assert_int_equal(gw_form_get(q, strlen(q), "flag", out, sizeof out, &n),
	                 1);
	assert_int_equal(gw_form_get(q, strlen(q), "nope", out, sizeof out, &n),
	                 0);
	assert_int_equal(
	    gw_form_get("password=a%zz", 13, "password", out, sizeof out, &n),
	    SS_EBADREQ);
	assert_int_equal(gw_form_get("password=p%40ss+w", 17, "password", out,
	                             sizeof out, &n),
	                 1);
	assert_string_equal(out, "p@ss w");

	assert_int_equal(
	    gw_form_check("limit=1&cursor=x", 16, allowed, why, sizeof why), 0);
	assert_int_equal(gw_form_check("", 0, allowed, why, sizeof why), 0);
	assert_int_equal(
	    gw_form_check("limit=1&sort=x", 14, allowed, why, sizeof why),
	    SS_EBADREQ);
	assert_string_equal(why, "unknown parameter 'sort'");
	assert_int_equal(
	    gw_form_check("limit=1&limit=2", 15, allowed, why, sizeof why),
	    SS_EBADREQ);
	assert_string_equal(why, "duplicate parameter 'limit'");
}

static void
test_cookies(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(gw_cookie_get("a=1; ss_guest=abc.def; b=2", "ss_guest",
	                               out, sizeof out),
	                 1);
	assert_string_equal(out, "abc.def");
	assert_int_equal(
	    gw_cookie_get("ss_guest=x", "ss_guest", out, sizeof out), 1);
	assert_string_equal(out, "x");
	assert_int_equal(gw_cookie_get("xss_guest=1; ss_guestx=2", "ss_guest",
	                               out, sizeof out),
	                 0);
	assert_int_equal(gw_cookie_get("ss_guest=0123456789abcdefXYZ",
	                               "ss_guest", out, sizeof out),
	                 0);
	assert_int_equal(gw_cookie_get("", "ss_guest", out, sizeof out), 0);
}

/* Only the last entry counts (the one the trusted proxy appended), and
 * only when it is an address; a refusal leaves the peer's address. */
static void
test_forwarded_for(void **state)
{
	char out[GW_ADDR_MAX + 1];

	(void)state;
	assert_int_equal(gw_xff_client("203.0.113.7", out), 0);
	assert_string_equal(out, "203.0.113.7");
	assert_int_equal(gw_xff_client("10.0.0.1, 198.51.100.2", out), 0);
	assert_string_equal(out, "198.51.100.2");
	assert_int_equal(gw_xff_client("spoofed,2001:db8::1 ", out), 0);
	assert_string_equal(out, "2001:db8::1");
	strcpy(out, "peer");
	assert_int_equal(gw_xff_client("198.51.100.2, ", out), -1);
	assert_int_equal(gw_xff_client("", out), -1);
	assert_int_equal(gw_xff_client("198.51.100.2, unknown", out), -1);
	assert_int_equal(gw_xff_client("198.51.100.2, 1.2.3.4:80", out), -1);
	assert_int_equal(gw_xff_client("198.51.100.2\r\nX: y", out), -1);
	assert_int_equal(
	    gw_xff_client("0000:0000:0000:0000:0000:0000:0000:0000:0000:"
	                  "0000:0000:0000:0000:0000:1",
	                  out),
	    -1);
	strcpy(out, "peer");
	assert_int_equal(gw_xff_client("::ffff:999.1.1.1", out), -1);
	assert_string_equal(out, "peer");
}

/* A password member is zeroed where jansson keeps it; other members and
 * other types are left as they are. */
static void
test_json_wipe(void **state)
{
	json_t *j = json_pack("{s:s, s:s, s:i}", "user", "alice", "password",
	                      "tulip-lantern", "n", 5);
	const char *pw;

	(void)state;
	assert_non_null(j);
	pw = json_string_value(json_object_get(j, "password"));
	gw_json_wipe(j, "password");
	for (size_t i = 0; i < strlen("tulip-lantern"); i++)
		assert_int_equal(pw[i], 0);
	assert_string_equal(json_string_value(json_object_get(j, "user")),
	                    "alice");
	gw_json_wipe(j, "n"); /* not a string: untouched */
	assert_int_equal(json_integer_value(json_object_get(j, "n")), 5);
	gw_json_wipe(j, "absent");
	gw_json_wipe(NULL, "password");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_bodies_pass),
	    cmocka_unit_test(test_each_refusal_names_the_field),
	    cmocka_unit_test(test_targets),
	    cmocka_unit_test(test_pack_object_adds_room_for_extra_pairs),
	    cmocka_unit_test(test_percent_decoding),
	    cmocka_unit_test(test_forms_and_queries),
	    cmocka_unit_test(test_cookies),
	    cmocka_unit_test(test_forwarded_for),
	    cmocka_unit_test(test_json_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
