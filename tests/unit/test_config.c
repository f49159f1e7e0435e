/*
 * tests/unit/test_config.c - runtime/config.c and the common table.
 *
 * Loads a test settings struct (common settings first, then one setting
 * of each type) from defaults, environment, secret files and argv, and
 * checks the exact messages printed for every kind of bad input by
 * capturing stderr (and stdout for --help) through a pipe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/errors.h"
#include "runtime/config.h"
#include "runtime/daemon.h"

extern char **environ;

typedef struct tset {
	ss_common_settings common;
	char *name;
	char *token;
	char *key;
	int64_t workers;
	bool verbose;
	int64_t ttl_ms;
	char *peer;
	char *svc;
	int64_t optional_ms;
} tset;

#define F(x) offsetof(tset, x)

static const ss_cfg_opt test_opts[] = {
    {"name", SS_CFG_STR, "anon", 1, 16, F(name), "a display name"},
    {"token", SS_CFG_SECRET, NULL, 8, 64, F(token), "a required secret"},
    {"key", SS_CFG_SECRET, "hunter2-default-key", 0, 64, F(key),
     "a secret with a default"},
    {"workers", SS_CFG_INT, "4", 1, 64, F(workers), "worker threads"},
    {"verbose", SS_CFG_BOOL, "false", 0, 0, F(verbose), "talk more"},
    {"ttl", SS_CFG_MS, "1h", 1000, 30LL * 86400000, F(ttl_ms),
     "time to live | with a pipe"},
    {"peer", SS_CFG_ADDR, "tcp://127.0.0.1:7001", 1, 255, F(peer),
     "the peer to dial"},
    {"svc", SS_CFG_STR, NULL, 1, 255, F(svc), "a required string"},
    {"optional", SS_CFG_MS, NULL, 0, 0, F(optional_ms), "no default"},
};

static const ss_cfg_table test_table = {
    test_opts, sizeof(test_opts) / sizeof(test_opts[0]), NULL};

/* --- capturing an fd ---------------------------------------------------- */

typedef struct capture {
	int fd;
	int saved;
	int rd;
} capture;

static void
cap_start(capture *c, int fd)
{
	int p[2];

	fflush(stdout);
	fflush(stderr);
	assert_int_equal(pipe(p), 0);
	c->fd = fd;
	c->saved = dup(fd);
	assert_true(c->saved >= 0);
	assert_true(dup2(p[1], fd) >= 0);
	close(p[1]);
	c->rd = p[0];
}

static char *
cap_end(capture *c)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	fflush(stdout);
	fflush(stderr);
	dup2(c->saved, c->fd);
	close(c->saved);
	assert_non_null(buf);
	while ((n = read(c->rd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	close(c->rd);
	buf[len] = '\0';
	return buf;
}

/* --- loading ------------------------------------------------------------ */

/* Loads with "test" then the NULL-terminated args; *out gets stderr (or
 * stdout when want_stdout) when out is not NULL. */
static int
load_v(tset *s, char **out, bool want_stdout, va_list ap)
{
	const ss_cfg_table tabs[] = {ss_common_table, test_table};
	char *argv[32];
	int argc = 0, rv;
	const char *a;
	capture c;

	argv[argc++] = "studyshare-test";
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	argv[argc] = NULL;
	memset(s, 0x5a, sizeof(*s)); /* the load must not rely on zeroes */
	s->optional_ms = 77;
	cap_start(&c, want_stdout ? STDOUT_FILENO : STDERR_FILENO);
	rv = ss_config_load(tabs, 2, s, argc, argv, "test");
	if (out != NULL)
		*out = cap_end(&c);
	else
		free(cap_end(&c));
	return rv;
}

static int
load(tset *s, char **err, ...)
{
	va_list ap;
	int rv;

	va_start(ap, err);
	rv = load_v(s, err, false, ap);
	va_end(ap);
	return rv;
}

static int
load_stdout(tset *s, char **out, ...)
{
	va_list ap;
	int rv;

	va_start(ap, out);
	rv = load_v(s, out, true, ap);
	va_end(ap);
	return rv;
}

static void
free_set(tset *s)
{
	const ss_cfg_table tabs[] = {ss_common_table, test_table};

	ss_config_free(tabs, 2, s);
	assert_null(s->name);
	assert_null(s->token);
	assert_null(s->common.admin_addr);
}

/* Every string field is NULL after a failed load: nothing leaks. */
static void
assert_all_freed(const tset *s)
{
	assert_null(s->common.admin_addr);
	assert_null(s->common.redis_addr);
	assert_null(s->common.redis_user);
	assert_null(s->common.redis_password);
	assert_null(s->common.log_level);
	assert_null(s->name);
	assert_null(s->token);
	assert_null(s->key);
	assert_null(s->peer);
	assert_null(s->svc);
}

static int
clear_env(void **state)
{
	char *names[256];
	int n = 0;

	(void)state;
	for (char **e = environ; *e != NULL && n < 256; e++) {
		if (strncmp(*e, "STUDYSHARE_", 11) != 0)
			continue;
		names[n] = strndup(*e, strcspn(*e, "="));
		assert_non_null(names[n]);
		n++;
	}
	for (int i = 0; i < n; i++) {
		unsetenv(names[i]);
		free(names[i]);
	}
	/* The two required settings, so each test starts from a valid set. */
	setenv("STUDYSHARE_TOKEN", "token-123456", 1);
	setenv("STUDYSHARE_SVC", "svc-a", 1);
	return 0;
}

static char *
write_tmp(const char *content)
{
	char *path = strdup("/tmp/ss-test-config-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
	                 (ssize_t)strlen(content));
	close(fd);
	return path;
}

/* --- tests -------------------------------------------------------------- */

static void
test_defaults(void **state)
{
	tset s;

	(void)state;
	assert_int_equal(load(&s, NULL, NULL), 0);
	assert_string_equal(s.common.admin_addr, "127.0.0.1:9100");
	assert_string_equal(s.common.redis_addr, "127.0.0.1:6379");
	assert_string_equal(s.common.redis_password, "");
	assert_int_equal(s.common.redis_timeout_ms, 2000);
	assert_int_equal(s.common.drain_ms, 9000);
	assert_int_equal(s.common.recv_max, 1048576);
	assert_string_equal(s.common.log_level, "info");
	assert_string_equal(s.name, "anon");
	assert_string_equal(s.key, "hunter2-default-key");
	assert_int_equal(s.workers, 4);
	assert_false(s.verbose);
	assert_int_equal(s.ttl_ms, 3600000);
	assert_string_equal(s.peer, "tcp://127.0.0.1:7001");
	assert_string_equal(s.token, "token-123456");
	assert_string_equal(s.svc, "svc-a");
	/* No default and not set: the field is left as it was. */
	assert_int_equal(s.optional_ms, 77);
	free_set(&s);
}

static void
test_env(void **state)
{
	tset s;

	(void)state;
	setenv("STUDYSHARE_REDIS_TIMEOUT", "250ms", 1);
	setenv("STUDYSHARE_REDIS_ADDR", "redis.internal:6380", 1);
	setenv("STUDYSHARE_RECV_MAX", "2048", 1);
	setenv("STUDYSHARE_WORKERS", "8", 1);
	setenv("STUDYSHARE_VERBOSE", "Yes", 1);
	setenv("STUDYSHARE_OPTIONAL", "3s", 1);
	assert_int_equal(load(&s, NULL, NULL), 0);
	assert_int_equal(s.common.redis_timeout_ms, 250);
	assert_string_equal(s.common.redis_addr, "redis.internal:6380");
	assert_int_equal(s.common.recv_max, 2048);
	assert_int_equal(s.workers, 8);
	assert_true(s.verbose);
	assert_int_equal(s.optional_ms, 3000);
	free_set(&s);
}

static void
test_flags_override_env(void **state)
{
	tset s;

	(void)state;
	setenv("STUDYSHARE_WORKERS", "8", 1);
	setenv("STUDYSHARE_NAME", "from-env", 1);
	/* A bad environment value overridden by a flag is never used. */
	setenv("STUDYSHARE_DRAIN", "bogus", 1);
	assert_int_equal(load(&s, NULL, "--workers", "16", "--name=bob",
	                      "--drain=1s", "--verbose", "--token",
	                      "flag-token-1", NULL),
	                 0);
	assert_int_equal(s.workers, 16);
	assert_string_equal(s.name, "bob");
	assert_int_equal(s.common.drain_ms, 1000);
	assert_true(s.verbose);
	assert_string_equal(s.token, "flag-token-1");
	free_set(&s);

	/* A bool flag takes a following bool word; the last flag wins. */
	unsetenv("STUDYSHARE_DRAIN");
	setenv("STUDYSHARE_VERBOSE", "true", 1);
	assert_int_equal(load(&s, NULL, "--verbose", "off", "--workers=2",
	                      "--workers=3", "--peer=tcp://[::1]:7002", NULL),
	                 0);
	assert_false(s.verbose);
	assert_int_equal(s.workers, 3);
	assert_string_equal(s.peer, "tcp://[::1]:7002");
	free_set(&s);

	/* A value may contain '=' after the first one. */
	assert_int_equal(load(&s, NULL, "--key=a=b=c", NULL), 0);
	assert_string_equal(s.key, "a=b=c");
	free_set(&s);
}

static void
test_bad_values(void **state)
{
	static const struct {
		const char *arg;
		const char *msg;
	} cases[] = {
	    {"--redis-timeout=5ms",
	     "studyshare-test: --redis-timeout: must be between 10ms and "
	     "60s\n"},
	    {"--redis-timeout=61s",
	     "studyshare-test: --redis-timeout: must be between 10ms and "
	     "60s\n"},
	    {"--log-level=trace",
	     "studyshare-test: --log-level: must be debug, info, warn or "
	     "error\n"},
	    {"--drain=11m",
	     "studyshare-test: --drain: must be between 0s and 10m\n"},
	    {"--recv-max=1023", "studyshare-test: --recv-max: must be "
	                        "between 1024 and 67108864\n"},
	    {"--workers=abc",
	     "studyshare-test: --workers: must be an integer\n"},
	    {"--workers=4x",
	     "studyshare-test: --workers: must be an integer\n"},
	    {"--workers=-3",
	     "studyshare-test: --workers: must be between 1 and 64\n"},
	    {"--workers=99999999999999999999",
	     "studyshare-test: --workers: must be an integer\n"},
	    {"--verbose=maybe", "studyshare-test: --verbose: must be true, "
	                        "false, 1, 0, yes, no, on or off\n"},
	    {"--ttl=5x", "studyshare-test: --ttl: must be a duration such as "
	                 "250ms, 5s, 2m, 1h, 30d or a number of "
	                 "milliseconds\n"},
	    {"--ttl=1.5s", "studyshare-test: --ttl: must be a duration such "
	                   "as 250ms, 5s, 2m, 1h, 30d or a number of "
	                   "milliseconds\n"},
	    {"--ttl=-1s", "studyshare-test: --ttl: must be a duration such as "
	                  "250ms, 5s, 2m, 1h, 30d or a number of "
	                  "milliseconds\n"},
	    {"--ttl=99999999999999999d",
	     "studyshare-test: --ttl: must be a duration such as 250ms, 5s, "
	     "2m, 1h, 30d or a number of milliseconds\n"},
	    {"--ttl=999ms",
	     "studyshare-test: --ttl: must be between 1s and 30d\n"},
	    {"--name=", "studyshare-test: --name: must not be empty\n"},
	    {"--name=aaaaaaaaaaaaaaaaa",
	     "studyshare-test: --name: must be at most 16 bytes long\n"},
	    {"--token=short",
	     "studyshare-test: --token: must be at least 8 bytes long\n"},
	    {"--peer=http://x:1",
	     "studyshare-test: --peer: must be tcp://host:port, "
	     "tls+tcp://host:port, ipc:///path or host:port\n"},
	    {"--peer=host", "studyshare-test: --peer: must be host:port\n"},
	    {"--peer=host:0", "studyshare-test: --peer: the port must be a "
	                      "number between 1 and 65535\n"},
	    {"--peer=host:65536", "studyshare-test: --peer: the port must be "
	                          "a number between 1 and 65535\n"},
	    {"--peer=tcp://host:80/x", "studyshare-test: --peer: the port "
	                               "must be a number between 1 and "
	                               "65535\n"},
	    {"--peer=host:", "studyshare-test: --peer: the port is missing\n"},
	    {"--peer=ipc://relative",
	     "studyshare-test: --peer: an ipc:// address needs an absolute "
	     "path (ipc:///run/x.sock)\n"},
	    {"--peer=::1:80", "studyshare-test: --peer: an IPv6 host must be "
	                      "written [addr]:port\n"},
	    {"--peer=ho st:80",
	     "studyshare-test: --peer: bad character in the host\n"},
	    {"--admin-addr=:9100",
	     "studyshare-test: --admin-addr: the host is empty\n"},
	    {"--admin-addr=*:9100",
	     "studyshare-test: --admin-addr: bad character in the host\n"},
	    /* host:port settings take no URL: Redis would be "tcp://redis" */
	    {"--redis-addr=tcp://redis:6379",
	     "studyshare-test: --redis-addr: must be host:port, without a "
	     "scheme\n"},

	    {"--redis-addr", "studyshare-test: --redis-addr: needs a value\n"},
	};
	tset s;
	char *err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rv = load(&s, &err, cases[i].arg, NULL);
		if (rv != SS_EBADREQ || strcmp(err, cases[i].msg) != 0)
			fail_msg("%s: rv %d, stderr \"%s\"", cases[i].arg, rv,
			         err);
		assert_all_freed(&s);
		free(err);
	}

	/* "--name value" form, with the value missing before another flag. */
	assert_int_equal(load(&s, &err, "--name", "--workers=2", NULL),
	                 SS_EBADREQ);
	assert_string_equal(err, "studyshare-test: --name: needs a value\n");
	free(err);

	/* A bad value from the environment names the variable. */
	setenv("STUDYSHARE_WORKERS", "100", 1);
	assert_int_equal(load(&s, &err, NULL), SS_EBADREQ);
	assert_string_equal(
	    err, "studyshare-test: STUDYSHARE_WORKERS: must be between 1 and "
	         "64\n");
	assert_all_freed(&s);
	free(err);
}

static void
test_good_addrs(void **state)
{
	static const char *const ok[] = {
	    "tcp://[::1]:7001",   "tls+tcp://host.example:443",
	    "ipc:///run/x.sock",  "localhost:1",
	    "10.0.0.1:65535",     "tcp://*:7001",
	    "tcp://:7001",        "[fe80::1%eth0]:80",
	    "redis_1.local:6379",
	};
	char arg[128];
	tset s;
	char *err;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(arg, sizeof(arg), "--peer=%s", ok[i]);
		if (load(&s, &err, arg, NULL) != 0)
			fail_msg("%s: %s", ok[i], err);
		assert_string_equal(s.peer, ok[i]);
		free(err);
		free_set(&s);
	}
}

static void
test_unknown_flag(void **state)
{
	tset s;
	char *err;

	(void)state;
	assert_int_equal(load(&s, &err, "--nope=1", NULL), SS_EBADREQ);
	assert_string_equal(
	    err, "studyshare-test: --nope: unknown setting (see --help)\n");
	free(err);

	assert_int_equal(load(&s, &err, "--nope", "1", NULL), SS_EBADREQ);
	assert_string_equal(
	    err, "studyshare-test: --nope: unknown setting (see --help)\n");
	free(err);

	assert_int_equal(load(&s, &err, "--workers=2", "extra", NULL),
	                 SS_EBADREQ);
	assert_string_equal(err, "studyshare-test: extra: unexpected argument "
	                         "(settings are --name value or "
	                         "--name=value)\n");
	assert_all_freed(&s);
	free(err);
}

/* A variable one edit from a setting's is a typo, refused; others (the
 * other daemons', the local stack's) are not this daemon's business. */
static void
test_misspelt_env(void **state)
{
	static const char *const typos[][2] = {
	    {"STUDYSHARE_SVX", "STUDYSHARE_SVC"},    /* a letter */
	    {"STUDYSHARE_SV", "STUDYSHARE_SVC"},     /* one missing */
	    {"STUDYSHARE_NAMEE", "STUDYSHARE_NAME"}, /* one extra */
	    {"STUDYSHARE_TOKEN_FLIE", "STUDYSHARE_TOKEN_FILE"}, /* swapped */
	};
	char want[256];
	tset s;
	char *err;

	(void)state;
	for (size_t i = 0; i < sizeof typos / sizeof typos[0]; i++) {
		setenv(typos[i][0], "x", 1);
		assert_int_equal(load(&s, &err, NULL), SS_EBADREQ);
		snprintf(want, sizeof want,
		         "studyshare-test: %s: not a setting of test; did you "
		         "mean %s?\n",
		         typos[i][0], typos[i][1]);
		assert_string_equal(err, want);
		assert_all_freed(&s);
		free(err);
		unsetenv(typos[i][0]);
	}
	/* Far from every name, or exactly one: fine. */
	setenv("STUDYSHARE_HOME", "/tmp", 1);
	setenv("STUDYSHARE_HTTP_PORT", "8080", 1);
	setenv("STUDYSHARE_NAME", "bob", 1);
	assert_int_equal(load(&s, NULL, NULL), 0);
	assert_string_equal(s.name, "bob");
	free_set(&s);
	unsetenv("STUDYSHARE_HOME");
	unsetenv("STUDYSHARE_HTTP_PORT");
	unsetenv("STUDYSHARE_NAME");
}

static void
test_required_missing(void **state)
{
	tset s;
	char *err;

	(void)state;
	unsetenv("STUDYSHARE_TOKEN");
	assert_int_equal(load(&s, &err, NULL), SS_EBADREQ);
	assert_string_equal(err, "studyshare-test: --token: required; set "
	                         "--token or STUDYSHARE_TOKEN\n");
	assert_all_freed(&s);
	free(err);

	/* Set but empty is as good as missing for a required setting. */
	setenv("STUDYSHARE_TOKEN", "token-123456", 1);
	setenv("STUDYSHARE_SVC", "", 1);
	assert_int_equal(load(&s, &err, NULL), SS_EBADREQ);
	assert_string_equal(err, "studyshare-test: --svc: required; set --svc "
	                         "or STUDYSHARE_SVC\n");
	free(err);

	/* The flag alone is enough. */
	unsetenv("STUDYSHARE_SVC");
	assert_int_equal(load(&s, NULL, "--svc", "x", NULL), 0);
	assert_string_equal(s.svc, "x");
	free_set(&s);
}

/* A table's check runs once every setting is read: a Redis ACL user
 * without its password stops the load, naming the flag. */
static void
test_settings_wrong_together(void **state)
{
	tset s;
	char *err;

	(void)state;
	setenv("STUDYSHARE_TOKEN", "token-123456", 1);
	assert_int_equal(
	    load(&s, &err, "--svc", "x", "--redis-user", "ss-authz", NULL),
	    SS_EBADREQ);
	assert_non_null(strstr(err, "studyshare-test: --redis-user: needs "
	                            "--redis-password"));
	assert_all_freed(&s);
	free(err);
	assert_int_equal(load(&s, NULL, "--svc", "x", "--redis-user",
	                      "ss-authz", "--redis-password", "pw-1", NULL),
	                 0);
	assert_string_equal(s.common.redis_user, "ss-authz");
	free_set(&s);
	/* No user: the default user, with or without a password. */
	assert_int_equal(load(&s, NULL, "--svc", "x", NULL), 0);
	assert_string_equal(s.common.redis_user, "");
	free_set(&s);
}

static void
test_secret_file(void **state)
{
	char *path = write_tmp("file-secret-1\n");
	char *crlf = write_tmp("pw-from-file\r\n\n");
	tset s;
	char *err;

	(void)state;
	unsetenv("STUDYSHARE_TOKEN");
	setenv("STUDYSHARE_TOKEN_FILE", path, 1);
	setenv("STUDYSHARE_REDIS_PASSWORD_FILE", crlf, 1);
	assert_int_equal(load(&s, NULL, NULL), 0);
	assert_string_equal(s.token, "file-secret-1");
	assert_string_equal(s.common.redis_password, "pw-from-file");
	free_set(&s);

	/* The flag still wins over the file. */
	assert_int_equal(load(&s, NULL, "--token=flag-secret-2", NULL), 0);
	assert_string_equal(s.token, "flag-secret-2");
	free_set(&s);

	/* Both the variable and the file: ambiguous. */
	setenv("STUDYSHARE_TOKEN", "token-123456", 1);
	assert_int_equal(load(&s, &err, NULL), SS_EBADREQ);
	assert_string_equal(err, "studyshare-test: STUDYSHARE_TOKEN_FILE: set "
	                         "only one of STUDYSHARE_TOKEN and "
	                         "STUDYSHARE_TOKEN_FILE\n");
	assert_all_freed(&s);
	free(err);

	/* A file that cannot be read names the variable and the path. */
	unsetenv("STUDYSHARE_TOKEN");
	setenv("STUDYSHARE_TOKEN_FILE", "/nonexistent/ss-secret", 1);
	assert_int_equal(load(&s, &err, NULL), SS_EBADREQ);
	assert_non_null(strstr(err, "studyshare-test: STUDYSHARE_TOKEN_FILE: "
	                            "cannot open /nonexistent/ss-secret: "));
	free(err);

	/* Bounds apply to the file's content, named by the file variable. */
	unlink(path);
	free(path);
	path = write_tmp("short\n");
	setenv("STUDYSHARE_TOKEN_FILE", path, 1);
	assert_int_equal(load(&s, &err, NULL), SS_EBADREQ);
	assert_string_equal(err, "studyshare-test: STUDYSHARE_TOKEN_FILE: "
	                         "must be at least 8 bytes long\n");
	free(err);

	/* An empty _FILE is not set (a compose file's ${VAR:-}): the
	 * variable, or the default, holds. */
	setenv("STUDYSHARE_TOKEN_FILE", "", 1);
	setenv("STUDYSHARE_TOKEN", "token-from-env", 1);
	assert_int_equal(load(&s, NULL, NULL), 0);
	assert_string_equal(s.token, "token-from-env");
	free_set(&s);
	unsetenv("STUDYSHARE_TOKEN");

	/* _FILE is for secrets only: a plain setting ignores it. */
	setenv("STUDYSHARE_TOKEN_FILE", crlf, 1);
	setenv("STUDYSHARE_NAME_FILE", crlf, 1);
	assert_int_equal(load(&s, NULL, NULL), 0);
	assert_string_equal(s.name, "anon");
	free_set(&s);

	unlink(path);
	unlink(crlf);
	free(path);
	free(crlf);
}

static void
test_help(void **state)
{
	tset s;
	char *out, *err;
	capture c;

	(void)state;
	/* The secrets' values, whatever their source, never appear. */
	setenv("STUDYSHARE_REDIS_PASSWORD", "redis-pw-in-env", 1);
	unsetenv("STUDYSHARE_SVC"); /* --help works with settings missing */
	assert_int_equal(load_stdout(&s, &out, "--workers=bad", "--help",
	                             "--key=key-from-flag", NULL),
	                 1);
	assert_non_null(strstr(out, "usage: studyshare-test "));
	assert_non_null(strstr(out, "  --redis-timeout <duration>\n"
	                            "        env STUDYSHARE_REDIS_TIMEOUT; "
	                            "default 2s; 10ms..60s\n"));
	assert_non_null(strstr(out, "  --recv-max <int>\n        env "
	                            "STUDYSHARE_RECV_MAX; default 1048576; "
	                            "1024..67108864\n"));
	assert_non_null(strstr(out, "  --admin-addr <addr>\n        env "
	                            "STUDYSHARE_ADMIN_ADDR; default "
	                            "127.0.0.1:9100; length 1..255\n"));
	assert_non_null(strstr(out, "--key <secret>\n        env "
	                            "STUDYSHARE_KEY or STUDYSHARE_KEY_FILE; "
	                            "default (secret, not shown)"));
	assert_non_null(strstr(out, "--svc <string>\n        env "
	                            "STUDYSHARE_SVC; default required"));
	assert_non_null(strstr(out, "        worker threads\n"));
	assert_null(strstr(out, "hunter2"));
	assert_null(strstr(out, "redis-pw-in-env"));
	assert_null(strstr(out, "key-from-flag"));
	free(out);

	assert_int_equal(load_stdout(&s, &out, "--help-markdown", NULL), 1);
	assert_memory_equal(out,
	                    "| setting | env | default | meaning |\n"
	                    "|---|---|---|---|\n",
	                    strlen("| setting | env | default | meaning "
	                           "|\n|---|---|---|---|\n"));
	assert_non_null(
	    strstr(out, "| `--redis-addr` | `STUDYSHARE_REDIS_ADDR` | "
	                "`127.0.0.1:6379` | host:port of Redis (host:port, "
	                "length 1..255) |\n"));
	assert_non_null(strstr(
	    out, "| `--redis-password` | `STUDYSHARE_REDIS_PASSWORD`, "
	         "`STUDYSHARE_REDIS_PASSWORD_FILE` | (secret, not shown) |"));
	assert_non_null(strstr(out, "time to live \\| with a pipe (duration, "
	                            "1s..30d) |\n"));
	assert_null(strstr(out, "hunter2"));
	assert_null(strstr(out, "redis-pw-in-env"));
	free(out);

	/* --help writes to stdout only. */
	cap_start(&c, STDOUT_FILENO);
	assert_int_equal(load(&s, &err, "--help", NULL), 1);
	out = cap_end(&c);
	assert_string_equal(err, "");
	assert_non_null(strstr(out, "--workers <int>"));
	free(out);
	free(err);
}

static void
test_ms_units(void **state)
{
	static const struct {
		const char *v;
		int64_t ms;
	} cases[] = {
	    {"1500ms", 1500},      {"2s", 2000},      {"3m", 180000},
	    {"1h", 3600000},       {"2d", 172800000}, {"5000", 5000},
	    {"30d", 2592000000LL}, {"0001s", 1000},
	};
	char arg[64];
	tset s;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(arg, sizeof(arg), "--ttl=%s", cases[i].v);
		assert_int_equal(load(&s, NULL, arg, NULL), 0);
		assert_int_equal(s.ttl_ms, cases[i].ms);
		free_set(&s);
	}
	/* A unit without a number, a space, or an unknown unit. */
	assert_int_equal(load(&s, NULL, "--ttl=s", NULL), SS_EBADREQ);
	assert_int_equal(load(&s, NULL, "--ttl=5 s", NULL), SS_EBADREQ);
	assert_int_equal(load(&s, NULL, "--ttl=5w", NULL), SS_EBADREQ);
	assert_int_equal(load(&s, NULL, "--ttl=", NULL), SS_EBADREQ);
	/* Unbounded (min == max == 0) accepts 0. */
	assert_int_equal(load(&s, NULL, "--optional=0", NULL), 0);
	assert_int_equal(s.optional_ms, 0);
	free_set(&s);
}

static void
test_bools(void **state)
{
	static const char *const t[] = {"true", "1", "yes", "on", "TRUE"};
	static const char *const f[] = {"false", "0", "no", "off", "Off"};
	char arg[32];
	tset s;

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		snprintf(arg, sizeof(arg), "--verbose=%s", t[i]);
		assert_int_equal(load(&s, NULL, arg, NULL), 0);
		assert_true(s.verbose);
		free_set(&s);
		snprintf(arg, sizeof(arg), "--verbose=%s", f[i]);
		assert_int_equal(load(&s, NULL, arg, NULL), 0);
		assert_false(s.verbose);
		free_set(&s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_defaults, clear_env),
	    cmocka_unit_test_setup(test_env, clear_env),
	    cmocka_unit_test_setup(test_flags_override_env, clear_env),
	    cmocka_unit_test_setup(test_bad_values, clear_env),
	    cmocka_unit_test_setup(test_good_addrs, clear_env),
	    cmocka_unit_test_setup(test_unknown_flag, clear_env),
	    cmocka_unit_test_setup(test_misspelt_env, clear_env),
	    cmocka_unit_test_setup(test_required_missing, clear_env),
	    cmocka_unit_test_setup(test_settings_wrong_together, clear_env),
	    cmocka_unit_test_setup(test_secret_file, clear_env),
	    cmocka_unit_test_setup(test_help, clear_env),
	    cmocka_unit_test_setup(test_ms_units, clear_env),
	    cmocka_unit_test_setup(test_bools, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
