/*
 * tools/cli_mail.c - studyshare mail list|push: the email jobs in Redis,
 * opened and sealed with the mail key.
 *
 *   studyshare mail list [--dead] [--redis ADDR]
 *   studyshare mail push [--unchecked] [--redis ADDR] < JOBS
 *
 * Jobs are sealed (runtime/mailq.h): neither redis-cli nor a copy of Redis
 * shows what they say; an operator who holds the mail key does.
 *
 * list prints every entry of notify:jobs (--dead: of notify:dead), one
 * JSON object a line: {"entry", "id", "template", "to", "vars",
 * "created_at", "bounce_to" (when the job has one)}, with "error" and
 * "tries" for a dead letter.  An entry
 * whose job does not open has "open_error" (the reason) instead of the
 * mail.
 *
 * push reads JSON objects, one a line, {"template", "to", "vars", "id"?,
 * "created_at"?, "bounce_to"?}, seals each under its id and XADDs it to
 * notify:jobs, and prints each job's id.  A given id is kept (re-queueing a
 * dead letter: notify's sent marker still stops a second copy); without one a
 * fresh id is made.  The producers' checks apply (those of ss_mail_encode())
 * unless
 * --unchecked, which seals the object as it is (without "id"): for
 * testing what notify refuses.
 *
 * The key comes from STUDYSHARE_MAIL_KEY or the file named by
 * STUDYSHARE_MAIL_KEY_FILE; Redis is --redis, else STUDYSHARE_REDIS_ADDR
 * (default 127.0.0.1:6379), with STUDYSHARE_REDIS_PASSWORD or
 * STUDYSHARE_REDIS_PASSWORD_FILE for AUTH (and STUDYSHARE_REDIS_USER, an
 * ACL user, as the daemons' --redis-user).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/mpcheck.h"
#include "proto/mpjson.h"
#include "runtime/addr.h"
#include "runtime/mailq.h"
#include "tools/cli.h"

#define SECRET_MAX 1024
#define PAGE       500
#define DEAD       "notify:dead"

static int
usage(void)
{
	fprintf(stderr,
	        "usage: studyshare mail list [--dead] [--redis ADDR]\n"
	        "       studyshare mail push [--unchecked] [--redis ADDR] "
	        "< JOBS\n"
	        "  the key comes from STUDYSHARE_MAIL_KEY or "
	        "STUDYSHARE_MAIL_KEY_FILE\n");
	return CLI_USAGE;
}

/* The value of env, else the contents of the file named by env_FILE
 * (trailing newlines stripped), else "".  -1 when the file is unreadable.
 */
static int
secret(const char *env, char *out, size_t cap)
{
	char name[64];
	const char *v = getenv(env), *path;
	FILE *f;
	size_t n;

	out[0] = '\0';
	if (v != NULL && v[0] != '\0') {
		snprintf(out, cap, "%s", v);
		return 0;
	}
	snprintf(name, sizeof name, "%s_FILE", env);
	if ((path = getenv(name)) == NULL || path[0] == '\0')
		return 0;
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "studyshare: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	return 0;
}

static int
load_key(ss_seal_key *key)
{
	char s[SECRET_MAX + 2];
	int rv = 0;

	if (secret("STUDYSHARE_MAIL_KEY", s, sizeof s) != 0)
		return CLI_ERR;
	if (ss_seal_key_init(key, s, strlen(s)) != 0) {
		fprintf(stderr,
		        "studyshare: no mail key of at least %d bytes: set "
		        "STUDYSHARE_MAIL_KEY or STUDYSHARE_MAIL_KEY_FILE\n",
		        SS_SEAL_SECRET_MIN);
		rv = CLI_USAGE;
	}
	sodium_memzero(s, sizeof s);
	return rv;
}

static int
connect_redis(const char *addr, redisContext **out)
{
	struct timeval tv = {5, 0};
	char host[256], pw[SECRET_MAX + 2];
	const char *user = getenv("STUDYSHARE_REDIS_USER");
	redisContext *c;
	redisReply *r;
	uint16_t port;
	int rv = CLI_UNREACHABLE;

	*out = NULL;
	if (ss_addr_split(addr, host, sizeof host, &port) != 0) {
		fprintf(stderr, "studyshare: --redis: expected host:port\n");
		return CLI_USAGE;
	}
	c = redisConnectWithTimeout(host, port, tv);
	if (c == NULL || c->err) {
		fprintf(stderr, "studyshare: redis %s: %s\n", addr,
		        c != NULL ? c->errstr : "out of memory");
		goto fail;
	}
	if (secret("STUDYSHARE_REDIS_PASSWORD", pw, sizeof pw) != 0)
		goto fail;
	if (user != NULL && user[0] != '\0' && pw[0] == '\0') {
		fprintf(stderr,
		        "studyshare: STUDYSHARE_REDIS_USER needs "
		        "STUDYSHARE_REDIS_PASSWORD, the user's password\n");
		rv = CLI_USAGE;
		goto fail;
	}
	if (pw[0] != '\0') {
		r = user != NULL && user[0] != '\0'
		        ? redisCommand(c, "AUTH %s %s", user, pw)
		        : redisCommand(c, "AUTH %s", pw);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "studyshare: redis %s: AUTH refused\n",
			        addr);
			if (r != NULL)
				freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	*out = c;
	c = NULL;
	rv = CLI_OK;
fail:
	sodium_memzero(pw, sizeof pw);
	if (c != NULL)
		redisFree(c);
	return rv;
}

/* --- list ------------------------------------------------------------ */

static const redisReply *
field(const redisReply *fields, const char *name)
{
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(fields->element[i]->str, name) == 0 &&
		    fields->element[i + 1]->type == REDIS_REPLY_STRING)
			return fields->element[i + 1];
	return NULL;
}

/* Adds the opened mail's fields to o; a reason when it is no map. */
static const char *
add_mail(json_t *o, const unsigned char *plain, size_t len)
{
	msgpack_unpacked up;
	const char *why = NULL;
	json_t *m = NULL;

	if (ss_mpcheck(plain, len, 2, SS_MAIL_MAX_VALUE, &why) != 0)
		return "the mail in the box is no msgpack map";
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)plain, len, NULL) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    (m = ss_mp_to_json(&up.data)) == NULL || !json_is_object(m))
		why = "the mail in the box has no JSON form";
	else
		json_object_update(o, m);
	json_decref(m);
	msgpack_unpacked_destroy(&up);
	return why;
}

static void
print_entry(const ss_seal_key *key, const redisReply *e, bool dead)
{
	const redisReply *fields, *job, *f;
	char id[SS_MAIL_ID_LEN + 1] = "", why[256] = "";
	unsigned char *plain = NULL;
	size_t plainlen = 0;
	const char *bad = NULL;
	json_t *o = json_object();
	char *line;

	if (o == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		goto done;
	fields = e->element[1];
	json_object_set_new(o, "entry", json_string(e->element[0]->str));
	if (dead) {
		if ((f = field(fields, "error")) != NULL)
			json_object_set_new(o, "error",
			                    json_stringn(f->str, f->len));
		if ((f = field(fields, "tries")) != NULL)
			json_object_set_new(o, "tries",
			                    json_integer(atoll(f->str)));
	}
	if ((job = field(fields, SS_MAILQ_FIELD)) == NULL || job->len == 0) {
		bad = "entry has no 'job' field";
	} else if (ss_mail_open(key, job->str, job->len, id, &plain, &plainlen,
	                        why, sizeof why) != 0) {
		bad = why;
	} else {
		bad = add_mail(o, plain, plainlen);
	}
	json_object_set_new(o, "id", json_string(id));
	if (bad != NULL)
		json_object_set_new(o, "open_error", json_string(bad));
	if ((line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) != NULL) {
		printf("%s\n", line);
		sodium_memzero(line, strlen(line));
		free(line);
	}
done:
	ss_mail_plain_free(plain, plainlen);
	json_decref(o);
}

static int
list(redisContext *c, const ss_seal_key *key, bool dead)
{
	const char *stream = dead ? DEAD : SS_MAILQ_STREAM;
	char start[64] = "-";
	redisReply *r;
	size_t n;

	do {
		r = redisCommand(c, "XRANGE %s %s + COUNT %d", stream, start,
		                 PAGE);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			fprintf(stderr, "studyshare: XRANGE %s: %s\n", stream,
			        r != NULL && r->type == REDIS_REPLY_ERROR
			            ? r->str
			            : c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			return r == NULL ? CLI_UNREACHABLE : CLI_ERR;
		}
		n = r->elements;
		for (size_t i = 0; i < n; i++)
			print_entry(key, r->element[i], dead);
		/* The next page starts after the last entry of this one. */
		if (n > 0 && r->element[n - 1]->type == REDIS_REPLY_ARRAY &&
		    r->element[n - 1]->elements == 2)
			snprintf(start, sizeof start, "(%s",
			         r->element[n - 1]->element[0]->str);
		freeReplyObject(r);
	} while (n == PAGE);
	return CLI_OK;
}

/* --- push ------------------------------------------------------------ */

static const char *
json_str(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The producers' checks (ss_mail_encode's), on a JSON job. */
static const char *
check(const json_t *o)
{
	static char unknown[96];
	const char *tpl = json_str(o, "template"), *to = json_str(o, "to");
	const json_t *vars = json_object_get(o, "vars"), *v;
	const char *k;

	json_object_foreach((json_t *)o, k, v)
	{
		if (strcmp(k, "template") != 0 && strcmp(k, "to") != 0 &&
		    strcmp(k, "vars") != 0 && strcmp(k, "id") != 0 &&
		    strcmp(k, "created_at") != 0 &&
		    strcmp(k, "bounce_to") != 0) {
			snprintf(unknown, sizeof unknown,
			         "unknown field '%.64s'", k);
			return unknown;
		}
	}
	if (tpl == NULL || !ss_mail_template_ok(tpl, strlen(tpl)))
		return "field 'template': unknown template";
	if (to == NULL || !ss_mail_addr_ok(to, strlen(to)))
		return "field 'to': not a mail address";
	if (json_object_get(o, "bounce_to") != NULL &&
	    (json_str(o, "bounce_to") == NULL ||
	     !ss_mail_addr_ok(json_str(o, "bounce_to"),
	                      strlen(json_str(o, "bounce_to")))))
		return "field 'bounce_to': not a mail address";
	if (!json_is_object(vars) || json_object_size(vars) > SS_MAIL_MAX_VARS)
		return "field 'vars': expected an object of at most 64";
	json_object_foreach((json_t *)vars, k, v)
	{
		if (!ss_mail_var_name_ok(k, strlen(k)) || !json_is_string(v) ||
		    !ss_mail_value_ok(json_string_value(v),
		                      json_string_length(v)))
			return "field 'vars': a name or value out of bounds";
	}
	if (json_object_get(o, "created_at") != NULL &&
	    !json_is_integer(json_object_get(o, "created_at")))
		return "field 'created_at': expected an integer";
	return NULL;
}

/* Seals one JSON job into p; its id into id. */
static const char *
seal_one(json_t *o, const ss_seal_key *key, bool unchecked, ss_pack *p,
         char id[SS_MAIL_ID_LEN + 1])
{
	const char *why, *given = json_str(o, "id");
	unsigned char raw[SS_MAIL_ID_LEN / 2];
	ss_pack in;
	int rv;

	/* A line of `mail list` goes back as it is: what the listing adds
	 * about the entry is not part of the job. */
	if (json_object_get(o, "open_error") != NULL)
		return "a job that did not open when listed (open_error) "
		       "cannot be pushed";
	json_object_del(o, "entry");
	json_object_del(o, "error");
	json_object_del(o, "tries");
	if (json_object_get(o, "id") != NULL &&
	    (given == NULL || !ss_mail_id_ok(given, strlen(given))))
		return "field 'id': expected 32 lower-case hex digits";
	if (!unchecked && (why = check(o)) != NULL)
		return why;
	if (given != NULL) {
		snprintf(id, SS_MAIL_ID_LEN + 1, "%s", given);
	} else {
		randombytes_buf(raw, sizeof raw);
		sodium_bin2hex(id, SS_MAIL_ID_LEN + 1, raw, sizeof raw);
	}
	json_object_del(o, "id");
	if (!unchecked && json_object_get(o, "created_at") == NULL)
		json_object_set_new(o, "created_at",
		                    json_integer((json_int_t)time(NULL)));
	ss_pack_init(&in);
	rv = ss_json_to_mp(&in, o);
	if (rv == 0)
		rv = ss_mail_seal(p, key, id, in.sb.data, in.sb.size);
	if (in.sb.data != NULL)
		sodium_memzero(in.sb.data, in.sb.size);
	ss_pack_free(&in);
	return rv == 0 ? NULL : "cannot seal it (too large?)";
}

static int
push(redisContext *c, const ss_seal_key *key, bool unchecked)
{
	const char *argv[5] = {"XADD", SS_MAILQ_STREAM, "*", SS_MAILQ_FIELD};
	size_t lens[5] = {4, sizeof SS_MAILQ_STREAM - 1, 1,
	                  sizeof SS_MAILQ_FIELD - 1};
	char id[SS_MAIL_ID_LEN + 1], *line = NULL;
	size_t cap = 0, lineno = 0;
	int rv = CLI_OK;
	ssize_t n;
	ss_pack p;

	ss_pack_init(&p);
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		json_error_t err;
		const char *why;
		redisReply *r;
		json_t *o;

		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		o = json_loadb(line, (size_t)n, 0, &err);
		sodium_memzero(line, (size_t)n);
		if (!json_is_object(o)) {
			fprintf(stderr,
			        "studyshare: line %zu: not a JSON "
			        "object\n",
			        lineno);
			json_decref(o);
			rv = CLI_ERR;
			continue;
		}
		ss_pack_reset(&p);
		why = seal_one(o, key, unchecked, &p, id);
		json_decref(o);
		if (why != NULL) {
			fprintf(stderr, "studyshare: line %zu: %s\n", lineno,
			        why);
			rv = CLI_ERR;
			continue;
		}
		argv[4] = p.sb.data;
		lens[4] = p.sb.size;
		r = redisCommandArgv(c, 5, argv, lens);
		if (r == NULL || r->type != REDIS_REPLY_STRING) {
			fprintf(stderr, "studyshare: XADD: %s\n",
			        r != NULL && r->type == REDIS_REPLY_ERROR
			            ? r->str
			            : c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			rv = r == NULL ? CLI_UNREACHABLE : CLI_ERR;
			break;
		}
		freeReplyObject(r);
		printf("%s\n", id);
	}
	free(line);
	ss_pack_free(&p);
	return rv;
}

int
cli_mail(const cli_opts *o, int argc, char **argv)
{
	const char *addr = getenv("STUDYSHARE_REDIS_ADDR");
	bool dead = false, unchecked = false;
	redisContext *c = NULL;
	ss_seal_key key;
	int rv;

	(void)o;
	if (addr == NULL || addr[0] == '\0')
		addr = "127.0.0.1:6379";
	if (argc < 1 ||
	    (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "push") != 0))
		return usage();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
			addr = argv[++i];
		else if (strcmp(argv[i], "--dead") == 0 &&
		         strcmp(argv[0], "list") == 0)
			dead = true;
		else if (strcmp(argv[i], "--unchecked") == 0 &&
		         strcmp(argv[0], "push") == 0)
			unchecked = true;
		else
			return usage();
	}
	if ((rv = load_key(&key)) != 0)
		return rv;
	if ((rv = connect_redis(addr, &c)) == CLI_OK)
		rv = strcmp(argv[0], "list") == 0 ? list(c, &key, dead)
		                                  : push(c, &key, unchecked);
	if (c != NULL)
		redisFree(c);
	ss_seal_key_clear(&key);
	fflush(stdout);
	return rv;
}
