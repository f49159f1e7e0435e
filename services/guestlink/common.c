/*
 * services/guestlink/common.c - what every handler of guestlink uses:
 * parsing bodies, requests to authz and share, errors, audit entries,
 * mail, key names, validation and time.
 *
 * Requests to peers are built in the server's scratch packer and copied
 * out by ss_req_send(), so the packer is free again at once; each carries
 * the id of the call that caused it, so one id follows a request through
 * every daemon's logs.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/utf8.h"
#include "runtime/audit.h"
#include "runtime/log.h"
#include "runtime/mailq.h"
#include "services/guestlink/guestlink.h"

int
gl_parse(ss_call *c, const msgpack_object *body, const ss_field_spec *spec,
         size_t n, const msgpack_object **out)
{
	char why[256];

	if (ss_fields_parse(body, spec, n, out, why, sizeof why) != 0) {
		ss_call_reply_err(c, SS_EBADREQ, why);
		return SS_EBADREQ;
	}
	return 0;
}

/* A peer that did not answer, or Redis gone: "unavailable", which tells
 * the caller to retry later. */
int
gl_err(int err)
{
	switch (err) {
	case 0:
		return 0;
	case SS_ETIMEDOUT:
	case SS_EUNAVAIL:
		return SS_EUNAVAIL;
	case SS_ENOMEM:
		return SS_ENOMEM;
	default:
		return err < 0 ? err : SS_EINTERNAL;
	}
}

int
gl_peer_err(int err, const ss_msg *reply)
{
	if (err != 0)
		return gl_err(err);
	if (reply == NULL)
		return SS_EUNAVAIL;
	if (!reply->ok)
		return reply->err < 0 ? reply->err : SS_EINTERNAL;
	return reply->body != NULL ? 0 : SS_EINTERNAL;
}

ss_pack *
gl_peer_begin(gl_server *s, const char *type, const char *id)
{
	ss_pack_reset(&s->scratch);
	ss_pack_request(&s->scratch, type, id);
	return &s->scratch;
}

int
gl_peer_send(gl_server *s, ss_req *peer, ss_reply_fn fn, void *arg)
{
	int rv = ss_req_send(peer, &s->scratch, fn, arg);

	ss_pack_reset(&s->scratch);
	return rv;
}

int
gl_authz_check(gl_server *s, const char *id, const char *user, const char *perm,
               const char *wl, ss_reply_fn fn, void *arg)
{
	ss_pack *p = gl_peer_begin(s, "authz.check", id);

	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "user", user);
	ss_pack_kv_cstr(p, "permission", perm);
	ss_pack_kv_cstr(p, "worklist", wl);
	return gl_peer_send(s, s->authz, fn, arg);
}

bool
gl_allowed(const ss_msg *reply)
{
	const msgpack_object *a = ss_map_get(reply->body, "allowed");

	return a != NULL && a->type == MSGPACK_OBJECT_BOOLEAN && a->via.boolean;
}

/* Who cannot see a link's worklist must not learn that the link exists
 * (API.md: 404 for what the caller cannot see).  authz draws that line
 * itself: a worklist exists for its members only (authz.worklist.get).
 * Asked only once the permission was refused, so an allowed action costs
 * nothing more. */
int
gl_authz_member(gl_server *s, const char *id, const char *user, const char *wl,
                ss_reply_fn fn, void *arg)
{
	ss_pack *p = gl_peer_begin(s, "authz.worklist.get", id);

	msgpack_pack_map(&p->pk, 2);
	ss_pack_kv_cstr(p, "user", user);
	ss_pack_kv_cstr(p, "worklist", wl);
	return gl_peer_send(s, s->authz, fn, arg);
}

int
gl_member_answer(int err, const ss_msg *reply)
{
	int rv = gl_peer_err(err, reply);

	if (rv == 0)
		return SS_EFORBIDDEN;
	if (rv == SS_EBADREQ)
		return SS_EINTERNAL; /* our request, not the caller's */
	return rv;
}

bool
gl_lost(ss_metric *m, const char *event, const char *tpl, int err,
        const redisReply *r)
{
	const char *why = ss_redis_refused(err, r);

	if (why == NULL)
		return false;
	ss_metric_add(m, 1);
	if (tpl != NULL)
		ss_error(event, NULL, "template", tpl, "reason", why, NULL);
	else
		ss_error(event, NULL, "reason", why, NULL);
	return true;
}

/* Thread: loop.  An audit entry that Redis refuses is counted and logged:
 * the action itself has happened and is not undone. */
static void
on_audit(int err, redisReply *r, void *arg)
{
	gl_server *s = arg;

	(void)gl_lost(s->m_audit_failed, "audit.failed", NULL, err, r);
}

void
gl_audit(gl_server *s, const char *reqid, const char *actor, const char *action,
         const char *id, const char *wl, struct json_t *detail,
         const char *addr)
{
	char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
	ss_audit a = {
	    .actor = actor,
	    .action = action,
	    .object = id,
	    .worklist = wl,
	    .detail = text,
	    .addr = addr,
	};

	if (ss_audit_append(s->redis, "guestlink", &a, on_audit, s) != 0) {
		ss_metric_add(s->m_audit_failed, 1);
		ss_error("audit.failed", reqid, "action", action, "link", id,
		         NULL);
	}
	free(text);
	json_decref(detail);
}

/* Thread: loop.  For mails nobody waits for (view notices): a refusal
 * is counted and logged, as a push that could not be sent is. */
static void
on_mail(int err, redisReply *r, void *arg)
{
	gl_server *s = arg;

	(void)gl_lost(s->m_mail_failed, "mail.not_queued", NULL, err, r);
}

int
gl_mail(gl_server *s, const char *reqid, const struct ss_mail *m,
        ss_redis_fn fn, void *arg)
{
	int rv;

	if (fn == NULL) {
		fn = on_mail;
		arg = s;
	}
	rv = ss_mailq_push(s->redis, &s->mail, m, fn, arg, NULL);

	if (rv != 0) {
		ss_metric_add(s->m_mail_failed, 1);
		ss_error("mail.not_queued", reqid, "template", m->template,
		         "reason", ss_err_word(rv), NULL);
	}
	return rv;
}

int
gl_key_link(char out[GL_KEY_MAX], const char *id, const char *suffix)
{
	int n = snprintf(out, GL_KEY_MAX, "link:{%s}%s", id,
	                 suffix != NULL ? suffix : "");

	return n > 0 && n < GL_KEY_MAX ? 0 : SS_EINTERNAL;
}

int
gl_key_index(char out[GL_KEY_MAX], const char *wl, const char *uid)
{
	int n = snprintf(out, GL_KEY_MAX, "link:{ix:%s:%s}", wl, uid);

	return n > 0 && n < GL_KEY_MAX ? 0 : SS_EINTERNAL;
}

static bool
id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* "<kind>:<id>": the kinds of API.md, ids of authz's alphabet.  Braces
 * can never appear, so a worklist cannot break a key's hash tag. */
bool
gl_valid_worklist(const char *s, size_t n)
{
	static const char *const kinds[] = {"organisation", "location", "group",
	                                    "user"};
	const char *colon = memchr(s, ':', n);
	size_t klen, idlen;
	bool kind = false;

	if (colon == NULL)
		return false;
	klen = (size_t)(colon - s);
	idlen = n - klen - 1;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strlen(kinds[i]) == klen && memcmp(s, kinds[i], klen) == 0)
			kind = true;
	if (!kind || idlen < 1 || idlen > 64)
		return false;
	for (size_t i = klen + 1; i < n; i++)
		if (!id_char(s[i]))
			return false;
	return true;
}

/* DICOM UID: dot-separated components of digits, no empty component, no
 * leading zero in a component longer than one digit, at most 64. */
bool
gl_valid_uid(const char *s, size_t n)
{
	size_t start = 0;

	if (n < 1 || n > GL_UID_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (s[i] < '0' || s[i] > '9')
				return false;
			continue;
		}
		if (i == start || (s[start] == '0' && i - start > 1))
			return false;
		start = i + 1;
	}
	return true;
}

/* A client address as the gateway passes it: printable ASCII, no
 * spaces (an IPv4 or IPv6 address, maybe with a port). */
bool
gl_valid_addr(const char *s, size_t n)
{
	if (n < 1 || n > GL_MAX_ADDR)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

bool
gl_valid_text(const char *s, size_t n, bool lines)
{
	return ss_text_valid(s, n, lines ? SS_TEXT_LINES : 0);
}

void
gl_clean_ua(const char *s, size_t n, char out[GL_UA_KEEP + 1])
{
	size_t k = n < GL_UA_KEEP ? n : GL_UA_KEEP;

	for (size_t i = 0; i < k; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	/* A cut inside a character: keep none of it. */
	for (int i = 0;
	     n > k && i < 3 && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80;
	     i++)
		k--;
	if (!ss_mail_utf8_ok(out, k))
		for (size_t i = 0; i < k; i++)
			if ((unsigned char)out[i] >= 0x80)
				out[i] = '?';
	out[k] = '\0';
}

void
gl_ua_summary(const char *ua, char out[GL_UA_SUMMARY_MAX + 1])
{
	/* First match wins: Edge and Opera say Chrome too, Chrome says
	 * Safari, Android says Linux, iOS says Mac OS X. */
	static const char *const browsers[][2] = {
	    {"Edg/", "Edge"},          {"OPR/", "Opera"},
	    {"Firefox/", "Firefox"},   {"Chrome/", "Chrome"},
	    {"Chromium/", "Chromium"}, {"Safari/", "Safari"},
	    {"curl/", "curl"},         {"Wget/", "Wget"},
	};
	static const char *const systems[][2] = {
	    {"Android", "Android"}, {"iPhone", "iOS"},     {"iPad", "iOS"},
	    {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"},
	    {"Linux", "Linux"},
	};
	const char *b = NULL, *os = NULL;

	for (size_t i = 0; b == NULL && i < sizeof browsers / sizeof *browsers;
	     i++)
		if (strstr(ua, browsers[i][0]) != NULL)
			b = browsers[i][1];
	for (size_t i = 0; os == NULL && i < sizeof systems / sizeof *systems;
	     i++)
		if (strstr(ua, systems[i][0]) != NULL)
			os = systems[i][1];
	if (b != NULL && os != NULL)
		snprintf(out, GL_UA_SUMMARY_MAX + 1, "%s on %s", b, os);
	else
		snprintf(out, GL_UA_SUMMARY_MAX + 1, "%s",
		         b != NULL    ? b
		         : os != NULL ? os
		                      : "");
}

void
gl_dob_typed(char *pw, size_t *n)
{
	size_t a = 0, b = *n;
	char *s;

	while (a < b && (pw[a] == ' ' || pw[a] == '\t'))
		a++;
	while (b > a && (pw[b - 1] == ' ' || pw[b - 1] == '\t'))
		b--;
	s = pw + a;
	if (b - a == 10 && (s[4] == '-' || s[4] == '/' || s[4] == '.') &&
	    s[7] == s[4]) {
		memmove(s + 4, s + 5, 2);
		memmove(s + 6, s + 8, 2);
		b -= 2;
	}
	memmove(pw, s, b - a);
	sodium_memzero(pw + (b - a), *n - (b - a));
	*n = b - a;
}

static int
digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SS_EBADREQ;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static bool
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
gl_time_parse(const char *s, size_t n, int64_t *ms)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
	size_t i = 19;

	if (n < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' ||
	    digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
	    digits(s + 17, 2, &sec))
		return SS_EBADREQ;
	if (s[i] == '.') {
		size_t k = 0;
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
			if (k < 3)
				frac = frac * 10 + (s[i] - '0');
		if (k == 0 || k > 9)
			return SS_EBADREQ;
		for (; k < 3; k++)
			frac *= 10;
	}
	if (i == n - 1 && (s[i] == 'Z' || s[i] == 'z')) {
		sign = 0;
	} else if (i == n - 6 && (s[i] == '+' || s[i] == '-') &&
	           s[i + 3] == ':' && digits(s + i + 1, 2, &oh) == 0 &&
	           digits(s + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59) {
		sign = s[i] == '+' ? 1 : -1;
	} else {
		return SS_EBADREQ;
	}
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 ||
	    mi > 59 || sec > 59 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0))
		return SS_EBADREQ;
	*ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	        sign * (oh * 3600 + om * 60)) *
	       1000) +
	      frac;
	return 0;
}

int64_t
gl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
gl_time_fmt(int64_t ms, char out[GL_TIME_LEN + 1])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, GL_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
