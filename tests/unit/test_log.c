/*
 * tests/unit/test_log.c - runtime/log.c.
 *
 * stderr is redirected to a pipe (or, for the threaded test, a file) with
 * dup2; every line written must be one JSON object that jansson parses,
 * with the fields and order runtime/log.h shows.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "runtime/log.h"

typedef struct capture {
	int saved;
	int rd;
} capture;

static void
cap_start(capture *c)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	c->rd = p[0];
}

static char *
read_all(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

static char *
cap_end(capture *c)
{
	char *out;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	out = read_all(c->rd);
	close(c->rd);
	return out;
}

static json_t *
parse_line(const char *p, size_t len)
{
	json_error_t err;
	json_t *j = json_loadb(p, len, 0, &err);

	if (j == NULL)
		fail_msg("not JSON (%s): %.*s", err.text, (int)len, p);
	assert_true(json_is_object(j));
	return j;
}

/* Parses the only line of out; fails unless out is exactly one line. */
static json_t *
one_line(const char *out)
{
	const char *nl = strchr(out, '\n');

	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');
	return parse_line(out, (size_t)(nl - out));
}

static const char *
jstr(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void
test_line_format(void **state)
{
	struct tm tm;
	time_t now = time(NULL), t;
	const char *ts, *rest;
	capture c;
	char *out;
	json_t *j;

	(void)state;
	ss_log_init("logtest", SS_LOG_DEBUG);
	cap_start(&c);
	ss_info("redis.connected", "req-1", "addr", "127.0.0.1:6379", NULL);
	out = cap_end(&c);

	/* Exactly the order runtime/log.h shows. */
	assert_memory_equal(out, "{\"time\":\"", 9);
	rest = strstr(out, "\",\"level\"");
	assert_non_null(rest);
	assert_string_equal(rest, "\",\"level\":\"info\",\"service\":"
	                          "\"logtest\",\"event\":\"redis.connected\","
	                          "\"request_id\":\"req-1\",\"addr\":"
	                          "\"127.0.0.1:6379\"}\n");

	j = one_line(out);
	assert_int_equal(json_object_size(j), 6);
	ts = jstr(j, "time");
	/* 2026-11-29T09:15:00.123Z, UTC, within a minute of now. */
	assert_int_equal(strlen(ts), 24);
	memset(&tm, 0, sizeof(tm));
	rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(rest);
	assert_true(rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' &&
	            rest[2] >= '0' && rest[2] <= '9' && rest[3] >= '0' &&
	            rest[3] <= '9' && rest[4] == 'Z');
	t = timegm(&tm);
	assert_true(t >= now - 60 && t <= now + 60);
	assert_string_equal(jstr(j, "level"), "info");
	json_decref(j);
	free(out);
}

static void
test_no_reqid(void **state)
{
	capture c;
	char *out;
	json_t *j;

	(void)state;
	ss_log_init("logtest", SS_LOG_DEBUG);
	cap_start(&c);
	ss_warn("daemon.stopping", NULL, NULL);
	out = cap_end(&c);
	j = one_line(out);
	assert_null(json_object_get(j, "request_id"));
	assert_string_equal(jstr(j, "level"), "warn");
	assert_string_equal(jstr(j, "event"), "daemon.stopping");
	assert_int_equal(json_object_size(j), 4);
	json_decref(j);
	free(out);
}

static void
test_escaping(void **state)
{
	/* Quotes, backslash, control characters, DEL, valid UTF-8 (é, €,
	 * U+1F600) and invalid bytes: a lone 0xff, a cut-short sequence, an
	 * overlong '/', a UTF-16 surrogate. */
	const char *in = "a\"b\\c\nd\te\x01"
	                 "f\x1f\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
	                 "|\xff|\xc3|\xc0\xaf|\xed\xa0\x80|";
	const char *want = "a\"b\\c\nd\te\x01"
	                   "f\x1f\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
	                   "|\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf"
	                   "\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|";
	capture c;
	char *out;
	json_t *j;

	(void)state;
	ss_log_init("svc\"x", SS_LOG_DEBUG);
	cap_start(&c);
	ss_error("ev\\ent", "id\n1", "k\"ey", in, "nothing", (char *)NULL,
	         NULL);
	out = cap_end(&c);

	/* The raw form: JSON escapes, control characters as \u00XX. */
	assert_non_null(strstr(out, "\"a\\\"b\\\\c\\u000ad\\u0009e\\u0001f"
	                            "\\u001f\\u007f\xc3\xa9"));
	assert_non_null(strstr(out, "\"nothing\":null}"));
	assert_null(strchr(out, '\t'));

	j = one_line(out);
	assert_string_equal(jstr(j, "k\"ey"), want);
	assert_string_equal(jstr(j, "service"), "svc\"x");
	assert_string_equal(jstr(j, "event"), "ev\\ent");
	assert_string_equal(jstr(j, "request_id"), "id\n1");
	assert_true(json_is_null(json_object_get(j, "nothing")));
	json_decref(j);
	free(out);
}

static void
test_long_line(void **state)
{
	size_t n = 20000;
	char *big = malloc(n + 1);
	capture c;
	char *out;
	json_t *j;

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	ss_log_init("logtest", SS_LOG_DEBUG);
	cap_start(&c);
	ss_info("big", NULL, "v", big, NULL);
	out = cap_end(&c);
	j = one_line(out);
	assert_string_equal(jstr(j, "v"), big);
	json_decref(j);
	free(out);
	free(big);
}

static void
test_level_filter(void **state)
{
	capture c;
	char *out, *nl;
	json_t *j;

	(void)state;
	ss_log_init("logtest", SS_LOG_WARN);
	cap_start(&c);
	ss_debug("d", NULL, NULL);
	ss_info("i", NULL, NULL);
	ss_warn("w", NULL, NULL);
	ss_error("e", NULL, NULL);
	out = cap_end(&c);
	nl = strchr(out, '\n');
	assert_non_null(nl);
	j = parse_line(out, (size_t)(nl - out));
	assert_string_equal(jstr(j, "event"), "w");
	assert_string_equal(jstr(j, "level"), "warn");
	json_decref(j);
	j = one_line(nl + 1);
	assert_string_equal(jstr(j, "event"), "e");
	assert_string_equal(jstr(j, "level"), "error");
	json_decref(j);
	free(out);

	ss_log_init("logtest", SS_LOG_ERROR);
	cap_start(&c);
	ss_warn("w", NULL, NULL);
	out = cap_end(&c);
	assert_string_equal(out, "");
	free(out);

	ss_log_init("logtest", SS_LOG_DEBUG);
	cap_start(&c);
	ss_debug("d", NULL, NULL);
	out = cap_end(&c);
	j = one_line(out);
	assert_string_equal(jstr(j, "level"), "debug");
	json_decref(j);
	free(out);
}

static void
test_level_parse(void **state)
{
	(void)state;
	assert_int_equal(ss_log_level_parse("debug"), SS_LOG_DEBUG);
	assert_int_equal(ss_log_level_parse("info"), SS_LOG_INFO);
	assert_int_equal(ss_log_level_parse("warn"), SS_LOG_WARN);
	assert_int_equal(ss_log_level_parse("error"), SS_LOG_ERROR);
	assert_int_equal(ss_log_level_parse("verbose"), -1);
	assert_int_equal(ss_log_level_parse("warning"), -1);
	assert_int_equal(ss_log_level_parse(""), -1);
	assert_int_equal(ss_log_level_parse(NULL), -1);
}

#define NTHREADS 4
#define NLINES   300

static void *
log_thread(void *arg)
{
	char n[16], pad[200];

	memset(pad, 'a' + (int)(intptr_t)arg, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < NLINES; i++) {
		snprintf(n, sizeof(n), "%d", i);
		ss_info("thread.line", NULL, "n", n, "pad", pad, NULL);
	}
	return NULL;
}

/* Lines from several threads never interleave. */
static void
test_threads(void **state)
{
	char path[] = "/tmp/ss-test-log-XXXXXX";
	pthread_t th[NTHREADS];
	int fd, saved, lines = 0;
	char *out, *line, *save;
	json_t *j;

	(void)state;
	ss_log_init("logtest", SS_LOG_INFO);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	for (intptr_t i = 0; i < NTHREADS; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, log_thread, (void *)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	out = read_all(fd);
	close(fd);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		j = json_loads(line, 0, NULL);
		if (j == NULL)
			fail_msg("line %d is not JSON: %s", lines, line);
		assert_int_equal(strlen(jstr(j, "pad")), 199);
		json_decref(j);
		lines++;
	}
	assert_int_equal(lines, NTHREADS * NLINES);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_format),
	    cmocka_unit_test(test_no_reqid),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_level_filter),
	    cmocka_unit_test(test_level_parse),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
