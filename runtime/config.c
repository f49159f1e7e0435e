/*
 * runtime/config.c - declarative settings.
 *
 * Contract: ss_config_load() takes every setting of the given tables from,
 * in rising priority, its default, the environment variable
 * STUDYSHARE_<NAME> (upper case, '-' -> '_'), for a secret the file named by
 * STUDYSHARE_<NAME>_FILE (trailing newlines stripped; setting both is an
 * error; an empty one is not set), and the flag --name value or --name=value (a
 * bool flag alone means true).  Only the winning value is checked, so a bad
 * environment value overridden by a good flag is fine.  The first problem is
 * printed as "studyshare-<service>: <where>: <why>", where <where> is the flag,
 * the variable or the file variable the bad value came from, and the load fails
 * with SS_EBADREQ having freed what it allocated.
 *
 * Bounds: strings (STR, SECRET, ADDR) are at least min bytes long and, when
 * max > 0, at most max; INT and MS values lie in min..max unless both are 0
 * (unbounded).  A required setting (def NULL for STR, SECRET, ADDR) must be
 * set and not empty.  INT, BOOL and MS settings with def NULL that are not
 * set leave their field untouched.  Every string field of the tables is
 * written (NULL or an allocated string) so ss_config_free() is always safe.
 *
 * --help and --help-markdown (anywhere in argv) print to stdout before
 * anything is checked, and never show the default of a secret; so does
 * --version ("studyshare-<service> <version>").
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/config.h"

#define ENV_PREFIX   "STUDYSHARE_"
#define NAME_MAX_LEN 64
/* A secret file larger than this is not a secret but a mistake. */
#define SECRET_FILE_MAX (64 * 1024)

typedef enum src { SRC_NONE, SRC_DEFAULT, SRC_ENV, SRC_FILE, SRC_FLAG } src;

/* One setting while loading: where its value came from. */
typedef struct cfg_val {
	const ss_cfg_opt *opt;
	const char *val; /* borrowed from the table, environ or argv */
	char *owned;     /* a secret file's content (val points here) */
	src from;
	char flag[NAME_MAX_LEN + 3];
	char env[sizeof(ENV_PREFIX) + NAME_MAX_LEN + 5];
	char envfile[sizeof(ENV_PREFIX) + NAME_MAX_LEN + 5 + sizeof "_FILE"];
} cfg_val;

static const char *const type_arg[] = {
    [SS_CFG_STR] = "<string>",
    [SS_CFG_SECRET] = "<secret>",
    [SS_CFG_INT] = "<int>",
    [SS_CFG_BOOL] = "<bool>",
    [SS_CFG_MS] = "<duration>",
    [SS_CFG_ADDR] = "<addr>",
    [SS_CFG_HOSTPORT] = "<host:port>",
    [SS_CFG_LEVEL] = "<level>",
};

static void
fail_msg(const char *service, const char *where, const char *why)
{
	fprintf(stderr, "studyshare-%s: %s: %s\n", service, where, why);
}

static bool
is_string(ss_cfg_type t)
{
	return t == SS_CFG_STR || t == SS_CFG_SECRET || t == SS_CFG_ADDR ||
	       t == SS_CFG_HOSTPORT || t == SS_CFG_LEVEL;
}

static bool
bounded(const ss_cfg_opt *o)
{
	return !(o->min == 0 && o->max == 0);
}

static void
names_init(cfg_val *v)
{
	const char *n = v->opt->name;
	size_t i, len = strlen(n), plen = strlen(ENV_PREFIX);

	snprintf(v->flag, sizeof(v->flag), "--%s", n);
	memcpy(v->env, ENV_PREFIX, plen);
	for (i = 0; i < len; i++)
		v->env[plen + i] =
		    n[i] == '-' ? '_' : (char)toupper((unsigned char)n[i]);
	v->env[plen + len] = '\0';
	snprintf(v->envfile, sizeof(v->envfile), "%s_FILE", v->env);
}

/*
 * Writes ms in the largest unit that divides it, taking d, h and m only
 * from two of them up, as people write it: 60000 -> "60s", 120000 -> "2m".
 */
static void
fmt_ms(char *buf, size_t n, int64_t ms)
{
	static const struct {
		int64_t ms;
		const char *unit;
	} u[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};

	for (size_t i = 0; ms != 0 && i < sizeof(u) / sizeof(u[0]); i++) {
		if (ms % u[i].ms == 0 &&
		    (u[i].ms == 1000 || ms >= 2 * u[i].ms)) {
			snprintf(buf, n, "%" PRId64 "%s", ms / u[i].ms,
			         u[i].unit);
			return;
		}
	}
	snprintf(buf, n, ms == 0 ? "0s" : "%" PRId64 "ms", ms);
}

static int
parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!(isdigit((unsigned char)s[0]) ||
	      (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
parse_ms(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} u[] = {{"", 1},      {"ms", 1},      {"s", 1000},
	         {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	int64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		if (strcmp(p, u[i].unit) != 0)
			continue;
		if (v > INT64_MAX / u[i].ms)
			return -1;
		*out = v * u[i].ms;
		return 0;
	}
	return -1;
}

int
ss_cfg_parse_ms(const char *s, int64_t *out)
{
	return parse_ms(s, out) == 0 ? 0 : SS_EBADREQ;
}

static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};

	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static bool
host_char(char c, bool url)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_' ||
	       (url && c == '*');
}

/* "host:port" or "[v6]:port"; an empty or "*" host only in a URL. */
static const char *
check_hostport(const char *s, bool url)
{
	const char *colon, *p;
	long port = 0;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end == s + 1)
			return "an IPv6 host must be written [addr]:port";
		for (p = s + 1; p < end; p++)
			if (!(isxdigit((unsigned char)*p) || *p == ':' ||
			      *p == '.' || *p == '%' ||
			      isalnum((unsigned char)*p)))
				return "bad character in the IPv6 host";
		if (end[1] != ':')
			return "must be host:port";
		colon = end + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return "must be host:port";
		if (colon == s && !url)
			return "the host is empty";
		for (p = s; p < colon; p++) {
			if (*p == ':')
				return "an IPv6 host must be written "
				       "[addr]:port";
			if (!host_char(*p, url))
				return "bad character in the host";
		}
	}
	p = colon + 1;
	if (*p == '\0')
		return "the port is missing";
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p) || port > 65535)
			return "the port must be a number between 1 and "
			       "65535";
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535)
		return "the port must be a number between 1 and 65535";
	return NULL;
}

static const char *
check_addr(const char *s)
{
	if (strncmp(s, "ipc://", 6) == 0) {
		if (s[6] != '/' || s[7] == '\0')
			return "an ipc:// address needs an absolute path "
			       "(ipc:///run/x.sock)";
		return NULL;
	}
	if (strncmp(s, "tcp://", 6) == 0)
		return check_hostport(s + 6, true);
	if (strncmp(s, "tls+tcp://", 10) == 0)
		return check_hostport(s + 10, true);
	if (strstr(s, "://") != NULL)
		return "must be tcp://host:port, tls+tcp://host:port, "
		       "ipc:///path or host:port";
	return check_hostport(s, false);
}

/* host:port where no URL is taken (Redis). */
static const char *
check_plain(const char *s)
{
	if (strstr(s, "://") != NULL)
		return "must be host:port, without a scheme";
	return check_hostport(s, false);
}

/* Reads a secret file; trailing newlines are not part of the secret. */
static int
read_secret(const char *path, char **out, char *why, size_t nwhy)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, nwhy, "cannot open %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if ((buf = malloc(SECRET_FILE_MAX + 1)) == NULL) {
		snprintf(why, nwhy, "out of memory");
		goto fail;
	}
	while (len <= SECRET_FILE_MAX) {
		n = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, nwhy, "cannot read %s: %s", path,
			         strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > SECRET_FILE_MAX) {
		explicit_bzero(buf, SECRET_FILE_MAX + 1);
		snprintf(why, nwhy, "%s is larger than %d bytes", path,
		         SECRET_FILE_MAX);
		goto fail;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(why, nwhy, "%s contains a NUL byte", path);
		goto fail;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	close(fd);
	*out = buf;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

static const char *
where(const cfg_val *v)
{
	switch (v->from) {
	case SRC_ENV:
		return v->env;
	case SRC_FILE:
		return v->envfile;
	default:
		return v->flag;
	}
}

/* Default, then environment, then secret file. */
static int
collect_env(cfg_val *v, const char *service)
{
	const char *env, *file;
	char why[512];

	if (v->opt->def != NULL) {
		v->val = v->opt->def;
		v->from = SRC_DEFAULT;
	}
	env = getenv(v->env);
	if (env != NULL) {
		v->val = env;
		v->from = SRC_ENV;
	}
	/* An empty *_FILE is not set: what a compose file's ${VAR:-} gives
	 * for a secret the operator did not configure. */
	if (v->opt->type != SS_CFG_SECRET ||
	    (file = getenv(v->envfile)) == NULL || file[0] == '\0')
		return 0;
	if (env != NULL) {
		snprintf(why, sizeof(why), "set only one of %s and %s", v->env,
		         v->envfile);
		fail_msg(service, v->envfile, why);
		return SS_EBADREQ;
	}
	if (read_secret(file, &v->owned, why, sizeof(why)) != 0) {
		fail_msg(service, v->envfile, why);
		return SS_EBADREQ;
	}
	v->val = v->owned;
	v->from = SRC_FILE;
	return 0;
}

/* Edit distance with adjacent transpositions (optimal string alignment),
 * for names of at most NAME_MAX_LEN + 16 bytes; larger: "far". */
static size_t
name_distance(const char *a, size_t la, const char *b, size_t lb)
{
	enum { W = NAME_MAX_LEN + 24 };
	size_t d[3][W + 1], i, j;

	if (la > W || lb > W)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		size_t *c = d[i % 3], *p = d[(i - 1) % 3], *pp = d[(i + 1) % 3];

		c[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = p[j] + 1;

			if (c[j - 1] + 1 < best)
				best = c[j - 1] + 1;
			if (p[j - 1] + cost < best)
				best = p[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < best)
				best = pp[j - 2] + 1;
			c[j] = best;
		}
	}
	return d[la % 3][lb];
}

/*
 * A STUDYSHARE_ variable one edit (a letter wrong, missing, extra or two
 * swapped) from one of this daemon's is a typo: ignored, the setting
 * would keep its default unseen (STUDYSHARE_SMTP_STARTLS left STARTTLS
 * at "try").  Refused, naming both.  Every other name is left alone: the
 * other daemons' settings (no two daemons' names are one edit apart,
 * tests/integration/test_docs.py) and the local stack's own variables.
 */
static int
check_env_names(cfg_val *vals, size_t n, const char *service)
{
	extern char **environ;
	char why[160];

	for (char **e = environ; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		size_t len = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
		const char *near = NULL;

		if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
			continue;
		for (size_t k = 0; k < n; k++) {
			const cfg_val *v = &vals[k];
			bool secret = v->opt->type == SS_CFG_SECRET;

			if ((strlen(v->env) == len &&
			     strncmp(v->env, *e, len) == 0) ||
			    (secret && strlen(v->envfile) == len &&
			     strncmp(v->envfile, *e, len) == 0)) {
				near = NULL;
				break;
			}
			if (near == NULL &&
			    name_distance(*e, len, v->env, strlen(v->env)) == 1)
				near = v->env;
			if (near == NULL && secret &&
			    name_distance(*e, len, v->envfile,
			                  strlen(v->envfile)) == 1)
				near = v->envfile;
		}
		if (near != NULL) {
			char where[NAME_MAX_LEN + 32];

			snprintf(where, sizeof where, "%.*s", (int)len, *e);
			snprintf(why, sizeof why,
			         "not a setting of %s; did you mean %s?",
			         service, near);
			fail_msg(service, where, why);
			return SS_EBADREQ;
		}
	}
	return 0;
}

static cfg_val *
find_flag(cfg_val *vals, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(vals[i].opt->name) == len &&
		    strncmp(vals[i].opt->name, name, len) == 0)
			return &vals[i];
	return NULL;
}

static int
collect_argv(cfg_val *vals, size_t n, int argc, char **argv,
             const char *service)
{
	char where_buf[NAME_MAX_LEN + 16];
	const char *arg, *eq, *val;
	cfg_val *v;
	bool b;

	for (int i = 1; i < argc; i++) {
		arg = argv[i];
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			fail_msg(service, arg,
			         "unexpected argument (settings are "
			         "--name value or --name=value)");
			return SS_EBADREQ;
		}
		eq = strchr(arg + 2, '=');
		v = find_flag(vals, n, arg + 2,
		              eq != NULL ? (size_t)(eq - arg - 2)
		                         : strlen(arg + 2));
		if (v == NULL) {
			snprintf(where_buf, sizeof(where_buf), "%.*s",
			         eq != NULL ? (int)(eq - arg)
			                    : (int)strlen(arg),
			         arg);
			fail_msg(service, where_buf,
			         "unknown setting (see --help)");
			return SS_EBADREQ;
		}
		if (eq != NULL) {
			val = eq + 1;
		} else if (v->opt->type == SS_CFG_BOOL) {
			/* "--flag" alone is true; "--flag no" is allowed. */
			val = "true";
			if (i + 1 < argc && parse_bool(argv[i + 1], &b) == 0)
				val = argv[++i];
		} else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
			val = argv[++i];
		} else {
			fail_msg(service, v->flag, "needs a value");
			return SS_EBADREQ;
		}
		v->val = val;
		v->from = SRC_FLAG;
	}
	return 0;
}

/* Checks v's value and stores it in its field. */
static int
store(cfg_val *v, void *settings, const char *service)
{
	const ss_cfg_opt *o = v->opt;
	void *field = (char *)settings + o->offset;
	char why[256], lo[32], hi[32];
	const char *bad = NULL;
	int64_t iv;
	size_t len;
	bool bv;

	if (v->from == SRC_NONE ||
	    (is_string(o->type) && o->def == NULL && v->val[0] == '\0')) {
		if (!is_string(o->type))
			return 0; /* optional, left as the caller set it */
		snprintf(why, sizeof(why), "required; set %s or %s", v->flag,
		         v->env);
		fail_msg(service, v->flag, why);
		return SS_EBADREQ;
	}
	why[0] = '\0';
	switch (o->type) {
	case SS_CFG_ADDR:
	case SS_CFG_HOSTPORT:
		if ((bad = o->type == SS_CFG_ADDR
		               ? check_addr(v->val)
		               : check_plain(v->val)) != NULL)
			break;
		/* fall through */
	case SS_CFG_STR:
	case SS_CFG_SECRET:
	case SS_CFG_LEVEL:
		len = strlen(v->val);
		if ((int64_t)len < o->min) {
			snprintf(why, sizeof(why),
			         o->min == 1 ? "must not be empty"
			                     : "must be at least %" PRId64
			                       " bytes long",
			         o->min);
		} else if (o->max > 0 && (int64_t)len > o->max) {
			snprintf(why, sizeof(why),
			         "must be at most %" PRId64 " bytes long",
			         o->max);
		} else if (o->type == SS_CFG_LEVEL &&
		           ss_log_level_parse(v->val) < 0) {
			bad = "must be debug, info, warn or error";
		} else if ((*(char **)field = strdup(v->val)) == NULL) {
			bad = "out of memory";
		}
		break;
	case SS_CFG_INT:
		if (parse_int(v->val, &iv) != 0)
			bad = "must be an integer";
		else if (bounded(o) && (iv < o->min || iv > o->max))
			snprintf(why, sizeof(why),
			         "must be between %" PRId64 " and %" PRId64,
			         o->min, o->max);
		else
			*(int64_t *)field = iv;
		break;
	case SS_CFG_MS:
		if (parse_ms(v->val, &iv) != 0) {
			bad = "must be a duration such as 250ms, 5s, 2m, 1h, "
			      "30d or a number of milliseconds";
		} else if (bounded(o) && (iv < o->min || iv > o->max)) {
			fmt_ms(lo, sizeof(lo), o->min);
			fmt_ms(hi, sizeof(hi), o->max);
			snprintf(why, sizeof(why), "must be between %s and %s",
			         lo, hi);
		} else {
			*(int64_t *)field = iv;
		}
		break;
	case SS_CFG_BOOL:
		if (parse_bool(v->val, &bv) != 0)
			bad = "must be true, false, 1, 0, yes, no, on or off";
		else
			*(bool *)field = bv;
		break;
	default:
		bad = "unknown setting type";
		break;
	}
	if (bad == NULL && why[0] == '\0')
		return 0;
	fail_msg(service, where(v), bad != NULL ? bad : why);
	return SS_EBADREQ;
}

static void
print_bounds(FILE *f, const ss_cfg_opt *o)
{
	char lo[32], hi[32];

	switch (o->type) {
	case SS_CFG_INT:
		if (bounded(o))
			fprintf(f, "%" PRId64 "..%" PRId64, o->min, o->max);
		break;
	case SS_CFG_MS:
		if (bounded(o)) {
			fmt_ms(lo, sizeof(lo), o->min);
			fmt_ms(hi, sizeof(hi), o->max);
			fprintf(f, "%s..%s", lo, hi);
		}
		break;
	case SS_CFG_BOOL:
		fprintf(f, "true or false");
		break;
	default:
		if (o->max > 0)
			fprintf(f, "length %" PRId64 "..%" PRId64, o->min,
			        o->max);
		break;
	}
}

static const char *
shown_default(const ss_cfg_opt *o)
{
	if (o->def == NULL)
		return is_string(o->type) ? "required" : "unset";
	if (o->type == SS_CFG_SECRET)
		return "(secret, not shown)";
	if (o->def[0] == '\0')
		return "(empty)";
	return NULL;
}

static void
print_help(cfg_val *vals, size_t n, const char *service)
{
	const char *shown;

	printf("usage: studyshare-%s [--setting value | --setting=value]...\n"
	       "\n"
	       "Every setting is a flag and an environment variable; the "
	       "flag wins over\n"
	       "the environment, which wins over the default.  A secret "
	       "may also be read\n"
	       "from the file named by STUDYSHARE_<SETTING>_FILE.  "
	       "Durations take ms, s,\n"
	       "m, h or d (a bare number is milliseconds).\n\n",
	       service);
	for (size_t i = 0; i < n; i++) {
		const ss_cfg_opt *o = vals[i].opt;

		printf("  %s %s\n        env %s", vals[i].flag,
		       type_arg[o->type], vals[i].env);
		if (o->type == SS_CFG_SECRET)
			printf(" or %s", vals[i].envfile);
		shown = shown_default(o);
		printf("; default %s", shown != NULL ? shown : o->def);
		if (o->type != SS_CFG_BOOL && (bounded(o) || o->max > 0)) {
			printf("; ");
			print_bounds(stdout, o);
		}
		printf("\n        %s\n", o->help != NULL ? o->help : "");
	}
	fflush(stdout);
}

/* Markdown table cells: a '|' would end the cell. */
static void
md_cell(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputs("\\|", stdout);
		else if (*s == '\n')
			fputc(' ', stdout);
		else
			fputc(*s, stdout);
	}
}

static void
print_markdown(cfg_val *vals, size_t n)
{
	static const char *const kind[] = {
	    [SS_CFG_STR] = "string",         [SS_CFG_SECRET] = "secret",
	    [SS_CFG_INT] = "integer",        [SS_CFG_BOOL] = "bool",
	    [SS_CFG_MS] = "duration",        [SS_CFG_ADDR] = "address",
	    [SS_CFG_HOSTPORT] = "host:port", [SS_CFG_LEVEL] = "level",
	};
	const char *shown;

	printf("| setting | env | default | meaning |\n"
	       "|---|---|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		const ss_cfg_opt *o = vals[i].opt;

		printf("| `%s` | `%s`", vals[i].flag, vals[i].env);
		if (o->type == SS_CFG_SECRET)
			printf(", `%s`", vals[i].envfile);
		shown = shown_default(o);
		if (shown != NULL) {
			printf(" | %s | ", shown);
		} else {
			printf(" | `");
			md_cell(o->def);
			printf("` | ");
		}
		md_cell(o->help != NULL ? o->help : "");
		printf(" (%s", kind[o->type]);
		if (o->type != SS_CFG_BOOL && (bounded(o) || o->max > 0)) {
			printf(", ");
			print_bounds(stdout, o);
		}
		printf(") |\n");
	}
	fflush(stdout);
}

int
ss_config_load(const ss_cfg_table *tabs, size_t ntabs, void *settings, int argc,
               char **argv, const char *service)
{
	cfg_val *vals = NULL;
	size_t n = 0, k = 0;
	int rv = SS_EBADREQ;

	for (size_t t = 0; t < ntabs; t++)
		n += tabs[t].n;
	/* Every string field starts NULL so a failed load frees cleanly. */
	for (size_t t = 0; t < ntabs; t++)
		for (size_t i = 0; i < tabs[t].n; i++)
			if (is_string(tabs[t].opts[i].type))
				*(char **)((char *)settings +
				           tabs[t].opts[i].offset) = NULL;
	if ((vals = calloc(n > 0 ? n : 1, sizeof(*vals))) == NULL) {
		fail_msg(service, "config", "out of memory");
		return SS_ENOMEM;
	}
	for (size_t t = 0; t < ntabs; t++) {
		for (size_t i = 0; i < tabs[t].n; i++, k++) {
			vals[k].opt = &tabs[t].opts[i];
			if (strlen(vals[k].opt->name) > NAME_MAX_LEN) {
				fail_msg(service, vals[k].opt->name,
				         "setting name too long");
				goto fail;
			}
			names_init(&vals[k]);
		}
	}

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			print_help(vals, n, service);
			rv = 1;
			goto done;
		}
		if (strcmp(argv[i], "--help-markdown") == 0) {
			print_markdown(vals, n);
			rv = 1;
			goto done;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("studyshare-%s %s\n", service, SS_VERSION);
			rv = 1;
			goto done;
		}
	}

	for (k = 0; k < n; k++)
		if (collect_env(&vals[k], service) != 0)
			goto fail;
	if (check_env_names(vals, n, service) != 0)
		goto fail;
	if (collect_argv(vals, n, argc, argv, service) != 0)
		goto fail;
	for (k = 0; k < n; k++)
		if (store(&vals[k], settings, service) != 0)
			goto fail;
	for (size_t t = 0; t < ntabs; t++) {
		const char *flag = NULL, *why;

		if (tabs[t].check != NULL &&
		    (why = tabs[t].check(settings, &flag)) != NULL) {
			fail_msg(service, flag, why);
			goto fail;
		}
	}
	rv = 0;
	goto done;

fail:
	ss_config_free(tabs, ntabs, settings);
done:
	/* A secret file's copy should not linger in freed memory. */
	for (k = 0; k < n; k++) {
		if (vals[k].owned != NULL)
			explicit_bzero(vals[k].owned, strlen(vals[k].owned));
		free(vals[k].owned);
	}
	free(vals);
	return rv;
}

void
ss_config_free(const ss_cfg_table *tabs, size_t ntabs, void *settings)
{
	for (size_t t = 0; t < ntabs; t++) {
		for (size_t i = 0; i < tabs[t].n; i++) {
			const ss_cfg_opt *o = &tabs[t].opts[i];
			char **p = (char **)((char *)settings + o->offset);

			if (!is_string(o->type) || *p == NULL)
				continue;
			if (o->type == SS_CFG_SECRET)
				explicit_bzero(*p, strlen(*p));
			free(*p);
			*p = NULL;
		}
	}
}

int
ss_config_main(const ss_cfg_table *tabs, size_t ntabs, void *settings, int argc,
               char **argv, const char *service)
{
	switch (ss_config_load(tabs, ntabs, settings, argc, argv, service)) {
	case 0:
		return -1;
	case 1:
		return 0;
	default:
		return 2;
	}
}
