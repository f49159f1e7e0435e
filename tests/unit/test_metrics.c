/*
 * tests/unit/test_metrics.c - runtime/metrics.c.
 *
 * Renders the registry and checks it with `promtool check metrics` (the
 * test fails when promtool is missing: it is part of the toolchain), then
 * checks values, histogram buckets, family grouping and concurrent
 * updates by reading the rendered text back.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "runtime/metrics.h"

static char *
render(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	assert_non_null(b);
	ss_metrics_render(b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

/* The value on the sample line that starts with prefix (name{labels}). */
static double
sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = text;
	double v;

	while ((p = strstr(p, prefix)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			break;
		p += n;
	}
	if (p == NULL)
		fail_msg("no sample %s in:\n%s", prefix, text);
	assert_int_equal(sscanf(p + n, " %lf", &v), 1);
	return v;
}

static int
count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL;
	     p += strlen(needle))
		n++;
	return n;
}

static void
promtool_check(const char *text)
{
	FILE *p = popen("promtool check metrics", "w");
	int st;

	assert_non_null(p);
	fputs(text, p);
	st = pclose(p);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 127)
		fail_msg("promtool is not installed (package prometheus)");
	if (WEXITSTATUS(st) != 0)
		fail_msg("promtool check metrics failed (%d) on:\n%s",
		         WEXITSTATUS(st), text);
}

static void
test_promtool(void **state)
{
	ss_metric *a, *b, *g, *h1, *h2, *h3;
	char *text;

	(void)state;
	a = ss_counter("t_requests_total", "Requests handled.",
	               "type=\"authz.check\"");
	/* Another family in between: its lines must not split this one. */
	g = ss_gauge("t_queue_depth", "Jobs waiting.\nSecond \\ line.", NULL);
	b = ss_counter("t_requests_total", "Requests handled.",
	               "type=\"share.create\"");
	h1 = ss_histogram("t_request_duration_seconds", "Request latency.",
	                  "type=\"authz.check\"");
	h2 = ss_histogram("t_request_duration_seconds", "Request latency.",
	                  "type=\"share.create\"");
	h3 = ss_histogram("t_lua_duration_seconds", "Script latency.", NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(g);
	assert_non_null(h1);
	assert_non_null(h2);
	assert_non_null(h3);
	ss_metric_add(a, 3);
	ss_metric_add(b, 1);
	ss_metric_set(g, 7);
	ss_metric_observe(h1, 0.002);
	ss_metric_observe(h2, 0.3);
	ss_metric_observe(h3, 12);

	text = render();
	promtool_check(text);

	assert_int_equal(count(text, "# HELP studyshare_t_requests_total "), 1);
	assert_int_equal(
	    count(text, "# TYPE studyshare_t_requests_total counter\n"), 1);
	assert_int_equal(count(text,
	                       "# TYPE studyshare_t_request_duration_seconds "
	                       "histogram\n"),
	                 1);
	assert_int_equal(count(text, "# TYPE studyshare_t_queue_depth gauge\n"),
	                 1);
	assert_non_null(strstr(text, "# HELP studyshare_t_queue_depth Jobs "
	                             "waiting.\\nSecond \\\\ line.\n"));
	/* Both label sets of the counter come before the gauge's family. */
	assert_true(
	    strstr(text, "studyshare_t_requests_total{type=\"share.create\"}") <
	    strstr(text, "# HELP studyshare_t_queue_depth"));
	assert_true(sample(text, "studyshare_t_requests_total{type=\"authz."
	                         "check\"}") == 3);
	assert_true(sample(text, "studyshare_t_requests_total{type=\"share."
	                         "create\"}") == 1);
	assert_true(sample(text, "studyshare_t_queue_depth") == 7);
	assert_true(sample(text, "studyshare_t_lua_duration_seconds_bucket{le="
	                         "\"+Inf\"}") == 1);
	assert_true(sample(text, "studyshare_t_lua_duration_seconds_bucket{le="
	                         "\"10\"}") == 0);
	assert_true(sample(text, "studyshare_t_request_duration_seconds_count{"
	                         "type=\"share.create\"}") == 1);
	free(text);
}

static void
test_histogram_buckets(void **state)
{
	static const struct {
		const char *le;
		double n;
	} want[] = {
	    {"0.0001", 1}, {"0.00025", 1}, {"0.0005", 1}, {"0.001", 2},
	    {"0.0025", 2}, {"0.005", 4},   {"0.01", 4},   {"0.025", 4},
	    {"0.05", 4},   {"0.1", 4},     {"0.25", 4},   {"0.5", 4},
	    {"1", 4},      {"2.5", 4},     {"5", 4},      {"10", 5},
	    {"+Inf", 6},
	};
	ss_metric *h =
	    ss_histogram("t_bucket_seconds", "Bucket test.", "kind=\"x\"");
	char prefix[128], *text;

	(void)state;
	assert_non_null(h);
	ss_metric_observe(h, 0.00005);
	ss_metric_observe(h, 0.001); /* on a bound: counts in that bucket */
	ss_metric_observe(h, 0.003);
	ss_metric_observe(h, 0.005);
	ss_metric_observe(h, 7);
	ss_metric_observe(h, 20);
	ss_metric_observe(h, NAN); /* ignored */

	text = render();
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(prefix, sizeof(prefix),
		         "studyshare_t_bucket_seconds_bucket{kind=\"x\",le="
		         "\"%s\"}",
		         want[i].le);
		if (sample(text, prefix) != want[i].n)
			fail_msg("%s: %g, want %g", prefix,
			         sample(text, prefix), want[i].n);
	}
	assert_true(sample(text, "studyshare_t_bucket_seconds_count{kind="
	                         "\"x\"}") == 6);
	assert_true(fabs(sample(text, "studyshare_t_bucket_seconds_sum{kind="
	                              "\"x\"}") -
	                 27.00905) < 1e-9);
	assert_int_equal(count(text, "studyshare_t_bucket_seconds_bucket{"),
	                 17);
	promtool_check(text);
	free(text);
}

static void
test_registration(void **state)
{
	ss_metric *a, *b, *c;

	(void)state;
	a = ss_counter("t_same_total", "Same.", "k=\"1\"");
	b = ss_counter("studyshare_t_same_total", "Same.", "k=\"1\"");
	c = ss_counter("t_same_total", "Same.", "k=\"2\"");
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_ptr_equal(ss_gauge("t_g", "G.", NULL),
	                 ss_gauge("t_g", "G.", ""));

	/* Bugs are refused: NULL, and every update accepts NULL. */
	assert_null(ss_counter("t_no_suffix", "Bad.", NULL));
	assert_null(ss_gauge("t_bad_total", "Bad.", NULL));
	assert_null(ss_histogram("t_same_total", "Other type.", NULL));
	assert_null(ss_gauge("t bad-name", "Bad.", NULL));
	ss_metric_add(NULL, 1);
	ss_metric_set(NULL, 1);
	ss_metric_observe(NULL, 1);
}

static void
test_gauge(void **state)
{
	ss_metric *g = ss_gauge("t_level", "Level.", NULL);
	char *text;

	(void)state;
	ss_metric_set(g, 10);
	ss_metric_add(g, 5);
	ss_metric_add(g, (uint64_t)-20);
	text = render();
	assert_true(sample(text, "studyshare_t_level") == -5);
	free(text);
}

static void
test_process_metrics(void **state)
{
	double rss, start, now = (double)time(NULL);
	char *text;

	(void)state;
	text = render();
	rss = sample(text, "studyshare_process_resident_memory_bytes");
	start = sample(text, "studyshare_process_start_time_seconds");
	assert_true(rss > 100 * 1024);
	/* This process started moments ago. */
	assert_true(start <= now + 1 && start > now - 600);
	assert_int_equal(
	    count(text, "# TYPE studyshare_process_resident_memory_bytes "
	                "gauge\n"),
	    1);
	free(text);
}

#define NTHREADS 4
#define NADDS    100000

static void *
hammer(void *arg)
{
	ss_metric **m = arg;

	for (int i = 0; i < NADDS; i++) {
		ss_metric_add(m[0], 1);
		ss_metric_add(m[1], 1);
		ss_metric_observe(m[2], 0.5);
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	ss_metric *m[3] = {
	    ss_counter("t_hammer_total", "Hammered.", NULL),
	    ss_gauge("t_hammer_level", "Hammered.", NULL),
	    ss_histogram("t_hammer_seconds", "Hammered.", NULL),
	};
	pthread_t th[NTHREADS];
	char *text;

	(void)state;
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, m), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	text = render();
	assert_true(sample(text, "studyshare_t_hammer_total") ==
	            NTHREADS * NADDS);
	assert_true(sample(text, "studyshare_t_hammer_level") ==
	            NTHREADS * NADDS);
	assert_true(sample(text, "studyshare_t_hammer_seconds_count") ==
	            NTHREADS * NADDS);
	assert_true(sample(text, "studyshare_t_hammer_seconds_sum") ==
	            NTHREADS * NADDS * 0.5);
	assert_true(
	    sample(text, "studyshare_t_hammer_seconds_bucket{le=\"0.5\"}") ==
	    NTHREADS * NADDS);
	free(text);
}

static void
test_now(void **state)
{
	double a = ss_now(), b;
	struct timespec ts = {0, 20 * 1000 * 1000};

	(void)state;
	nanosleep(&ts, NULL);
	b = ss_now();
	assert_true(b - a >= 0.019 && b - a < 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_promtool),
	    cmocka_unit_test(test_histogram_buckets),
	    cmocka_unit_test(test_registration),
	    cmocka_unit_test(test_gauge),
	    cmocka_unit_test(test_process_metrics),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_now),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
