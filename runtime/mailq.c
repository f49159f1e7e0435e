/*
 * runtime/mailq.c - queueing an email for the notify workers.
 *
 * Contract (see mailq.h): ss_mail_encode() checks a mail against the same
 * bounds notify's decoder applies and packs it as one msgpack map with a
 * fresh 128-bit id; ss_mailq_push() XADDs it to notify:jobs.  Nothing here
 * talks SMTP or knows a template's contents.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "proto/errors.h"
#include "runtime/mailq.h"

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

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool
ss_mail_utf8_ok(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
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

int
ss_mail_encode(ss_pack *p, const ss_mail *m, char id_out[SS_MAIL_ID_LEN + 1])
{
	char id[SS_MAIL_ID_LEN + 1];
	size_t nvars = 0;

	if (m == NULL || m->template == NULL || m->to == NULL ||
	    !ss_mail_template_ok(m->template, strlen(m->template)) ||
	    !ss_mail_addr_ok(m->to, strlen(m->to)) ||
	    check_vars(m->vars, &nvars) != 0)
		return SS_EBADREQ;
	/* randombytes_buf() is safe before sodium_init() on Linux, but the
	 * library wants it called once; it is idempotent. */
	if (sodium_init() < 0)
		return SS_EINTERNAL;
	new_id(id);

	msgpack_pack_map(&p->pk, 6);
	ss_pack_kv_int(p, "v", 1);
	ss_pack_kv_cstr(p, "id", id);
	ss_pack_kv_cstr(p, "template", m->template);
	ss_pack_kv_cstr(p, "to", m->to);
	ss_pack_key(p, "vars");
	msgpack_pack_map(&p->pk, (uint32_t)nvars);
	for (size_t i = 0; i < nvars; i++)
		ss_pack_kv_cstr(p, m->vars[2 * i], m->vars[2 * i + 1]);
	ss_pack_kv_int(p, "created_at", (int64_t)time(NULL));
	if (id_out != NULL)
		memcpy(id_out, id, sizeof id);
	return 0;
}

int
ss_mailq_push(ss_redis *r, const ss_mail *m, ss_redis_fn fn, void *arg,
              char id_out[SS_MAIL_ID_LEN + 1])
{
	const char *argv[5] = {"XADD", SS_MAILQ_STREAM, "*", SS_MAILQ_FIELD};
	size_t lens[5] = {4, sizeof SS_MAILQ_STREAM - 1, 1,
	                  sizeof SS_MAILQ_FIELD - 1};
	ss_pack p;
	int rv;

	ss_pack_init(&p);
	if ((rv = ss_mail_encode(&p, m, id_out)) != 0)
		goto fail;
	argv[4] = p.sb.data;
	lens[4] = p.sb.size;
	/* hiredis formats the command at once: the buffer may go after. */
	rv = ss_redis_cmdargv(r, fn, arg, 5, argv, lens);
fail:
	ss_pack_free(&p);
	return rv;
}
