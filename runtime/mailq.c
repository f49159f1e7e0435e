/*
 * runtime/mailq.c - queueing an email for the notify workers.
 *
 * Contract (see mailq.h): ss_mail_encode() checks a mail against the same
 * bounds notify's decoder applies, packs it as one msgpack map and seals
 * that under the mail key in a job with a fresh 128-bit id;
 * ss_mailq_push() XADDs it to notify:jobs.  ss_mail_open() is the other
 * end of the envelope, shared by notify and the CLI.  Nothing here talks
 * SMTP or knows a template's contents.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpcheck.h"
#include "proto/utf8.h"
#include "runtime/mailq.h"

/* The seal's context of a job's box: its id. */
#define BOX_CTX_PREFIX "mail:"
#define BOX_CTX_MAX    (sizeof BOX_CTX_PREFIX + SS_MAIL_ID_LEN)

static const char *const templates[] = {SS_MAIL_TEMPLATES};

bool
ss_mail_template_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++)
		if (strlen(templates[i]) == n &&
		    memcmp(templates[i], s, n) == 0)
			return true;
	return false;
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* RFC 5322 atext: what a dot-atom is made of. */
static bool
is_atext(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool
local_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static bool
domain_ok(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
				return false;
			continue;
		}
		/* A label ends at s[i]: 1..63 bytes, no hyphen at an end. */
		if (i == start || i - start > 63 || s[start] == '-' ||
		    s[i - 1] == '-')
			return false;
		start = i + 1;
	}
	return true;
}

bool
ss_mail_addr_ok(const char *s, size_t n)
{
	const char *at;

	if (s == NULL || n < 3 || n > SS_MAIL_ADDR_MAX)
		return false;
	at = memrchr(s, '@', n);
	if (at == NULL)
		return false;
	return local_ok(s, (size_t)(at - s)) &&
	       domain_ok(at + 1, n - (size_t)(at - s) - 1);
}

bool
ss_mail_var_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > SS_MAIL_VAR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Strict UTF-8 (proto/utf8.h) without NUL bytes. */
bool
ss_mail_utf8_ok(const char *s, size_t n)
{
	return memchr(s, 0, n) == NULL && ss_utf8_valid(s, n);
}

bool
ss_mail_value_ok(const char *s, size_t n)
{
	return n <= SS_MAIL_MAX_VALUE && ss_mail_utf8_ok(s, n);
}

static int
check_vars(const char *const *vars, size_t *count)
{
	size_t n = 0;

	for (; vars != NULL && vars[2 * n] != NULL; n++) {
		const char *name = vars[2 * n], *val = vars[2 * n + 1];

		if (n == SS_MAIL_MAX_VARS || val == NULL ||
		    !ss_mail_var_name_ok(name, strlen(name)) ||
		    !ss_mail_value_ok(val, strlen(val)))
			return SS_EBADREQ;
		for (size_t k = 0; k < n; k++)
			if (strcmp(vars[2 * k], name) == 0)
				return SS_EBADREQ;
	}
	*count = n;
	return 0;
}

static void
new_id(char out[SS_MAIL_ID_LEN + 1])
{
	unsigned char raw[SS_MAIL_ID_LEN / 2];

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(out, SS_MAIL_ID_LEN + 1, raw, sizeof raw);
}

bool
ss_mail_id_ok(const char *s, size_t n)
{
	if (n != SS_MAIL_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void
box_ctx(char out[BOX_CTX_MAX], const char *id)
{
	snprintf(out, BOX_CTX_MAX, BOX_CTX_PREFIX "%s", id);
}

int
ss_mail_seal(ss_pack *p, const ss_seal_key *key, const char *id,
             const void *mail, size_t len)
{
	char ctx[BOX_CTX_MAX];
	unsigned char *box;
	size_t boxlen;

	if (id == NULL || !ss_mail_id_ok(id, strlen(id)) ||
	    len > SS_MAIL_PLAIN_MAX)
		return SS_EBADREQ;
	if ((box = malloc(len + SS_SEAL_OVERHEAD)) == NULL)
		return SS_ENOMEM;
	box_ctx(ctx, id);
	if (ss_seal(key, ctx, mail, len, box, len + SS_SEAL_OVERHEAD,
	            &boxlen) != 0) {
		free(box);
		return SS_EINTERNAL;
	}
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_int(p, "v", SS_MAIL_VERSION);
	ss_pack_kv_cstr(p, "id", id);
	ss_pack_key(p, "box");
	msgpack_pack_bin(&p->pk, boxlen);
	msgpack_pack_bin_body(&p->pk, box, boxlen);
	free(box);
	return 0;
}

int
ss_mail_encode(ss_pack *p, const ss_seal_key *key, const ss_mail *m,
               char id_out[SS_MAIL_ID_LEN + 1])
{
	char id[SS_MAIL_ID_LEN + 1];
	size_t nvars = 0;
	ss_pack in;
	int rv;

	bool bounce = m != NULL && m->bounce_to != NULL && *m->bounce_to;

	if (m == NULL || m->template == NULL || m->to == NULL ||
	    !ss_mail_template_ok(m->template, strlen(m->template)) ||
	    !ss_mail_addr_ok(m->to, strlen(m->to)) ||
	    (bounce && !ss_mail_addr_ok(m->bounce_to, strlen(m->bounce_to))) ||
	    (m->id != NULL && !ss_mail_id_ok(m->id, strlen(m->id))) ||
	    check_vars(m->vars, &nvars) != 0)
		return SS_EBADREQ;
	/* randombytes_buf() is safe before sodium_init() on Linux, but the
	 * library wants it called once; it is idempotent. */
	if (sodium_init() < 0)
		return SS_EINTERNAL;
	if (m->id != NULL)
		memcpy(id, m->id, sizeof id);
	else
		new_id(id);

	ss_pack_init(&in);
	msgpack_pack_map(&in.pk, bounce ? 5 : 4);
	ss_pack_kv_cstr(&in, "template", m->template);
	ss_pack_kv_cstr(&in, "to", m->to);
	ss_pack_key(&in, "vars");
	msgpack_pack_map(&in.pk, (uint32_t)nvars);
	for (size_t i = 0; i < nvars; i++)
		ss_pack_kv_cstr(&in, m->vars[2 * i], m->vars[2 * i + 1]);
	ss_pack_kv_int(&in, "created_at", (int64_t)time(NULL));
	if (bounce)
		ss_pack_kv_cstr(&in, "bounce_to", m->bounce_to);
	/* Vars within their bounds always fit SS_MAIL_PLAIN_MAX. */
	rv = ss_mail_seal(p, key, id, in.sb.data, in.sb.size);
	/* The clear mail holds a link's token: leave no copy behind. */
	if (in.sb.data != NULL)
		sodium_memzero(in.sb.data, in.sb.alloc);
	ss_pack_free(&in);
	if (rv == 0 && id_out != NULL)
		memcpy(id_out, id, sizeof id);
	return rv;
}

static void
why_set(char *why, size_t whylen, const char *msg, const char *arg)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, msg, arg);
}

/* The job's map, checked; box points into the job's bytes.  The id is
 * taken first, whenever it is one, so that a refusal can name it. */
static int
open_fields(const msgpack_object *map, char id_out[SS_MAIL_ID_LEN + 1],
            const msgpack_object **box, char *why, size_t whylen)
{
	static const ss_field_spec spec[] = {
	    {"v", SS_F_INT, true, SS_MAIL_VERSION, SS_MAIL_VERSION},
	    {"id", SS_F_STR, true, SS_MAIL_ID_LEN, SS_MAIL_ID_LEN},
	    {"box", SS_F_ANY, true, 0, 0},
	};
	const msgpack_object *f[3], *v = ss_map_get(map, "v");
	const msgpack_object *id = ss_map_get(map, "id");

	if (id != NULL && id->type == MSGPACK_OBJECT_STR &&
	    ss_mail_id_ok(id->via.str.ptr, id->via.str.size)) {
		memcpy(id_out, id->via.str.ptr, id->via.str.size);
		id_out[id->via.str.size] = '\0';
	}
	/* Before the field checks, which would name a v 1 job's first
	 * field: say what it is. */
	if (v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 == 1) {
		why_set(why, whylen, "%s",
		        "field 'v': a job of version 1 is not sealed; "
		        "expected 2");
		return SS_EUNPROC;
	}
	if (ss_fields_parse(map, spec, 3, f, why, whylen) != 0)
		return SS_EUNPROC;
	if (id_out[0] == '\0') {
		why_set(why, whylen, "field 'id': expected %s",
		        "32 lower-case hex digits");
		return SS_EUNPROC;
	}
	if (f[2]->type != MSGPACK_OBJECT_BIN) {
		why_set(why, whylen, "field 'box': expected %s", "bin");
		return SS_EUNPROC;
	}
	*box = f[2];
	return 0;
}

int
ss_mail_open(const ss_seal_key *key, const void *job, size_t len,
             char id_out[SS_MAIL_ID_LEN + 1], unsigned char **plain,
             size_t *plainlen, char *why, size_t whylen)
{
	const msgpack_object *box = NULL;
	char ctx[BOX_CTX_MAX];
	msgpack_unpacked up;
	const char *w = NULL;
	unsigned char *out = NULL;
	size_t cap = 0, n = 0;
	int rv = SS_EUNPROC;

	id_out[0] = '\0';
	*plain = NULL;
	*plainlen = 0;
	msgpack_unpacked_init(&up);
	if (len > SS_MAIL_JOB_MAX) {
		why_set(why, whylen, "%s", "job too large");
		goto fail;
	}
	/* Depth 2, not 1: a v 1 job (its vars map) gets its own reason. */
	if (ss_mpcheck(job, len, 2, SS_MAIL_PLAIN_MAX + SS_SEAL_OVERHEAD, &w) !=
	    0) {
		why_set(why, whylen, "bad msgpack: %s", w);
		goto fail;
	}
	switch (msgpack_unpack_next(&up, job, len, NULL)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rv = SS_ENOMEM;
		why_set(why, whylen, "%s", "out of memory");
		goto fail;
	default:
		why_set(why, whylen, "%s", "bad msgpack: malformed");
		goto fail;
	}
	if ((rv = open_fields(&up.data, id_out, &box, why, whylen)) != 0)
		goto fail;
	rv = SS_EUNPROC;
	if (box->via.bin.size < SS_SEAL_OVERHEAD) {
		why_set(why, whylen, "%s", "box does not open (too short)");
		goto fail;
	}
	cap = box->via.bin.size - SS_SEAL_OVERHEAD;
	if ((out = malloc(cap > 0 ? cap : 1)) == NULL) {
		rv = SS_ENOMEM;
		why_set(why, whylen, "%s", "out of memory");
		goto fail;
	}
	box_ctx(ctx, id_out);
	if (ss_unseal(key, ctx, (const unsigned char *)box->via.bin.ptr,
	              box->via.bin.size, out, cap, &n) != 0) {
		why_set(why, whylen, "%s",
		        "box does not open: sealed under another mail key, "
		        "for another id, or altered");
		goto fail;
	}
	msgpack_unpacked_destroy(&up);
	*plain = out;
	*plainlen = n;
	return 0;
fail:
	msgpack_unpacked_destroy(&up);
	free(out); /* ss_unseal wiped it */
	return rv;
}

void
ss_mail_plain_free(unsigned char *plain, size_t len)
{
	if (plain == NULL)
		return;
	sodium_memzero(plain, len);
	free(plain);
}

void
ss_mail_time(int64_t unix_s, char out[SS_MAIL_TIME_MAX])
{
	/* Not strftime's %B: that follows the locale, and mails are English
	 * whatever a daemon's environment says. */
	static const char *const month[12] = {
	    "January",   "February", "March",    "April",
	    "May",       "June",     "July",     "August",
	    "September", "October",  "November", "December"};
	time_t t = (time_t)unix_s;
	struct tm tm;

	/* a time_t narrower than the input, or a year gmtime cannot hold */
	if ((int64_t)t != unix_s || gmtime_r(&t, &tm) == NULL) {
		snprintf(out, SS_MAIL_TIME_MAX, "%lld UTC", (long long)unix_s);
		return;
	}
	snprintf(out, SS_MAIL_TIME_MAX, "%d %s %lld, %02d:%02d UTC", tm.tm_mday,
	         month[tm.tm_mon], (long long)tm.tm_year + 1900, tm.tm_hour,
	         tm.tm_min);
}

int
ss_mailq_push(ss_redis *r, const ss_seal_key *key, const ss_mail *m,
              ss_redis_fn fn, void *arg, char id_out[SS_MAIL_ID_LEN + 1])
{
	const char *argv[5] = {"XADD", SS_MAILQ_STREAM, "*", SS_MAILQ_FIELD};
	size_t lens[5] = {4, sizeof SS_MAILQ_STREAM - 1, 1,
	                  sizeof SS_MAILQ_FIELD - 1};
	ss_pack p;
	int rv;

	ss_pack_init(&p);
	if ((rv = ss_mail_encode(&p, key, m, id_out)) != 0)
		goto fail;
	argv[4] = p.sb.data;
	lens[4] = p.sb.size;
	/* hiredis formats the command at once: the buffer may go after. */
	rv = ss_redis_cmdargv(r, fn, arg, 5, argv, lens);
fail:
	ss_pack_free(&p);
	return rv;
}
