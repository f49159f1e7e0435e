/*
 * tests/unit/test_notify_smtp.c - how a finished SMTP transfer is judged,
 * the SMTP settings check, the reading of the server's reply lines, and
 * the retry backoff.
 *
 * The transfers themselves run against a real SMTP server in
 * tests/integration/test_notify.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "proto/errors.h"
#include "services/notify/notify.h"

/* A byte string literal and its length. */
#define B(lit) lit, sizeof(lit) - 1

static void
test_reply_lines(void **state)
{
	static const char multi[] = "250-mx.example\r\n250-PIPELINING\r\n"
	                            "250 8BITMIME\r\n354";
	size_t used, off = 0;
	long code = 0;
	bool last = true;
	int n = 0;

	(void)state;
	/* A multi-line reply, line by line; the last line ends it. */
	while (nt_smtp_reply_line(multi + off, sizeof multi - 1 - off, &used,
	                          &code, &last) == 1) {
		assert_int_equal(code, 250);
		assert_int_equal(last, ++n == 3);
		off += used;
	}
	assert_int_equal(n, 3);
	/* "354" without its line end: not whole yet. */
	assert_int_equal(nt_smtp_reply_line(multi + off, sizeof multi - 1 - off,
	                                    &used, &code, &last),
	                 0);
	assert_int_equal(used, 0);
	/* A bare code with CR LF and one with LF only are whole replies. */
	assert_int_equal(nt_smtp_reply_line(B("221\r\n"), &used, &code, &last),
	                 1);
	assert_int_equal(code, 221);
	assert_true(last);
	assert_int_equal(used, 5);
	assert_int_equal(nt_smtp_reply_line(B("550 no\n"), &used, &code, &last),
	                 1);
	assert_int_equal(code, 550);
	assert_int_equal(nt_smtp_reply_line(B(""), &used, &code, &last), 0);
}

static void
test_reply_lines_refused(void **state)
{
	static const struct {
		const char *p;
		size_t n;
	} bad[] = {
	    {B("\n")},       {B("25\n")},           {B("250\n")},
	    {B("2500 x\n")}, {B("650 x\n")},        {B("150 x\n")},
	    {B("2a0 x\n")},  {B("25 0 x\n")},       {B("250x\n")},
	    {B("\r\n")},     {B("HTTP/1.1 200\n")}, {B("\0\0\0 \n")},
	};
	size_t used;
	long code;
	bool last;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		used = 99;
		assert_int_equal(
		    nt_smtp_reply_line(bad[i].p, bad[i].n, &used, &code, &last),
		    SS_EBADREQ);
		assert_int_equal(used, 0);
	}
}

static nt_settings
settings(const char *url, const char *starttls)
{
	nt_settings s;

	memset(&s, 0, sizeof s);
	s.smtp_url = (char *)url;
	s.smtp_starttls = (char *)starttls;
	s.retry_min_ms = 1000;
	s.retry_max_ms = 60000;
	return s;
}

static void
check_ok(const char *url, const char *starttls)
{
	nt_settings s = settings(url, starttls);
	char why[NT_WHY_MAX] = "";

	if (nt_smtp_check(&s, why, sizeof why) != 0)
		fail_msg("%s %s: %s", url, starttls, why);
}

static void
check_bad(const char *url, const char *starttls, const char *want)
{
	nt_settings s = settings(url, starttls);
	char why[NT_WHY_MAX] = "";

	assert_int_equal(nt_smtp_check(&s, why, sizeof why), SS_EBADREQ);
	assert_non_null(strstr(why, want));
}

static void
test_check(void **state)
{
	(void)state;
	check_ok("smtp://127.0.0.1:25", "none");
	check_ok("smtp://mail.example.org", "try");
	check_ok("smtps://mail.example.org:465", "required");
	check_ok("smtp://[::1]:2525", "required");
	check_bad("http://mail.example.org", "try", "--smtp-url");
	check_bad("mail.example.org:25", "try", "--smtp-url");
	check_bad("smtp://", "try", "--smtp-url");
	check_bad("smtp://x", "always", "--smtp-starttls");
}

static void
test_backoff(void **state)
{
	nt_settings s = settings("smtp://x", "try");
	int64_t prev_hi = 0;

	(void)state;
	/* rnd 0 gives the bottom of the jitter range, UINT32_MAX the top. */
	assert_int_equal(nt_backoff_ms(&s, 1, 0), 500);
	assert_in_range(nt_backoff_ms(&s, 1, UINT32_MAX), 999, 1000);
	assert_int_equal(nt_backoff_ms(&s, 2, 0), 1000);
	assert_int_equal(nt_backoff_ms(&s, 3, 0), 2000);
	assert_int_equal(nt_backoff_ms(&s, 7, 0), 30000);
	/* Capped at retry-max, however many tries. */
	assert_int_equal(nt_backoff_ms(&s, 8, 0), 30000);
	assert_in_range(nt_backoff_ms(&s, 1000, UINT32_MAX), 59999, 60000);
	for (int64_t n = 1; n < 12; n++) {
		int64_t lo = nt_backoff_ms(&s, n, 0);
		int64_t hi = nt_backoff_ms(&s, n, UINT32_MAX);
		int64_t mid = nt_backoff_ms(&s, n, UINT32_MAX / 2);

		assert_true(lo <= mid && mid <= hi);
		assert_true(hi >= prev_hi); /* never shrinks */
		prev_hi = hi;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_lines),
	    cmocka_unit_test(test_reply_lines_refused),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
