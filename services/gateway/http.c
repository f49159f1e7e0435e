/*
 * services/gateway/http.c - the HTTP server: routing, authentication,
 * replies and the headers every answer carries.
 *
 * Contract (gateway.h): one evhttp on the daemon's loop.  Each request
 * becomes a gw_req (held on the daemon, so SIGTERM lets it finish), is
 * routed (route.c), authenticated as its route says (a user's bearer JWT,
 * or the operator token), and handed to its handler, which ends in exactly
 * one gw_reply_*().  evhttp keeps a request whose client went away until
 * we answer it (and then frees it), so a late answer is always safe.
 *
 * Every answer of ours carries the security headers: a CSP that allows
 * scripts and styles from this origin only (no inline script anywhere),
 * frame-ancestors 'none', nosniff, Referrer-Policy no-referrer (guest and
 * registration URLs hold tokens), and HSTS under --https.  API answers and
 * pages are never cached (Cache-Control: no-store); static files set their
 * own.  Errors have the body of API.md.
 *
 * Bodies are capped twice: evhttp refuses anything over the largest cap
 * (with its own short 413 page, before we see the request), and each
 * route checks its own cap so that it can answer 413 in the API's shape.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/mpjson.h"
#include "proto/utf8.h"
#include "runtime/addr.h"
#include "runtime/log.h"
#include "runtime/mailq.h"
#include "services/gateway/gateway.h"

_Static_assert(GW_EXP_MAX >= SS_MAIL_TIME_MAX, "a human time fits GW_EXP_MAX");

#define CSP                                                                    \
	"default-src 'none'; script-src 'self'; style-src 'self'; "            \
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; "          \
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* --- time ------------------------------------------------------------- */

int64_t
gw_now(void)
{
	return (int64_t)time(NULL);
}

void
gw_time_fmt(int64_t t, char out[21])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SS_EBADREQ;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int
gw_time_parse(const char *s, int64_t *t)
{
	int y, mo, d, h, mi, se;
	struct tm tm = {0};
	size_t n = strlen(s), i = 19;

	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || digits(s, 4, &y) != 0 ||
	    digits(s + 5, 2, &mo) != 0 || digits(s + 8, 2, &d) != 0 ||
	    digits(s + 11, 2, &h) != 0 || digits(s + 14, 2, &mi) != 0 ||
	    digits(s + 17, 2, &se) != 0)
		return SS_EBADREQ;
	if (s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
	if (i != n - 1 || s[i] != 'Z' || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || se > 60)
		return SS_EBADREQ;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*t = (int64_t)timegm(&tm);
	return 0;
}

void
gw_time_human(const char *rfc3339, char out[GW_EXP_MAX])
{
	int64_t t;

	if (gw_time_parse(rfc3339, &t) != 0)
		snprintf(out, GW_EXP_MAX, "%s", rfc3339);
	else
		ss_mail_time(t, out);
}

/* --- replies ---------------------------------------------------------- */

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Internal Server Error" : "Error";
	}
}

void
gw_add_header(gw_req *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->er), name,
	                  value);
}

/* A request is ~2 KiB: reusing freed ones keeps malloc's large-chunk
 * path (which consolidates fast bins) off every request. */
#define GW_SPARE_MAX 256

static gw_req *
req_new(gw_server *s)
{
	gw_req *r = s->spare;

	if (r == NULL)
		return calloc(1, sizeof *r);
	s->spare = r->spare_next;
	s->nspare--;
	memset(r, 0, sizeof *r);
	return r;
}

/* A password member of a parsed body, zeroed in place before the tree
 * is freed (jansson frees without wiping). */
void
gw_json_wipe(json_t *obj, const char *field)
{
	json_t *v = json_object_get(obj, field);

	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v),
		               json_string_length(v));
}

/* The body as evhttp holds it, zeroed where it lies (evbuffer_peek gives
 * the chains themselves): logins, registrations and guest passwords
 * travel in bodies this small.  Uploads, larger, are left alone. */
static void
wipe_input(gw_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->er);
	struct evbuffer_iovec v[16];
	size_t len = in != NULL ? evbuffer_get_length(in) : 0;
	int n;

	if (len == 0 || len > (size_t)r->s->cfg->body_max)
		return;
	n = evbuffer_peek(in, -1, NULL, v, 16);
	for (int i = 0; i < n && i < 16; i++)
		sodium_memzero(v[i].iov_base, v[i].iov_len);
}

static void
req_free(gw_req *r)
{
	gw_server *s = r->s;

	gw_json_wipe(r->body, "password");
	json_decref(r->body);
	gw_upload_free(r);
	sodium_memzero(r->pw, sizeof r->pw);
	sodium_memzero(r->session, sizeof r->session);
	if (s->nspare == GW_SPARE_MAX || s->http == NULL) {
		free(r);
		return;
	}
	r->spare_next = s->spare;
	s->spare = r;
	s->nspare++;
}

/* A HEAD answer: the length a GET would have, and no body.  evhttp
 * (2.1) leaves the length out but writes the body, which a client on a
 * kept-alive connection would read as the start of its next answer. */
static void
head_only(struct evkeyvalq *h, struct evbuffer *body)
{
	char n[24];

	snprintf(n, sizeof n, "%zu", evbuffer_get_length(body));
	evhttp_remove_header(h, "Content-Length");
	evhttp_add_header(h, "Content-Length", n);
	evbuffer_drain(body, evbuffer_get_length(body));
}

static void
finish(gw_req *r, int status, const char *ctype, const char *cache,
       struct evbuffer *body)
{
	gw_server *s = r->s;
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->er);
	char code[8], ms[24];
	double dt;
	int cls = status / 100;

	evhttp_add_header(h, "Content-Security-Policy", CSP);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
	if (s->cfg->https)
		evhttp_add_header(h, "Strict-Transport-Security",
		                  "max-age=31536000");
	if (ctype != NULL)
		evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control",
	                  cache != NULL ? cache : "no-store");
	evhttp_add_header(h, "X-Request-Id", r->id);
	if (s->d->stopping)
		evhttp_add_header(h, "Connection", "close");
	wipe_input(r);
	if (body != NULL &&
	    evhttp_request_get_command(r->er) == EVHTTP_REQ_HEAD)
		head_only(h, body);
	evhttp_send_reply(r->er, status, reason(status), body);
	r->step = GW_STEP_DONE;

	dt = ss_now() - r->t0;
	ss_metric_add(r->rm->requests, 1);
	if (cls >= 1 && cls <= 5)
		ss_metric_add(r->rm->status[cls], 1);
	ss_metric_observe(r->rm->duration, dt);
	/* Formatted only when it is written (debug, or warn for 5xx). */
	if (s->log_debug || status >= 500) {
		snprintf(code, sizeof code, "%d", status);
		snprintf(ms, sizeof ms, "%.3f", dt * 1000);
		/* The route's name, never the path: paths carry tokens. */
		ss_log(status >= 500 ? SS_LOG_WARN : SS_LOG_DEBUG,
		       "http.request", r->id, "route",
		       r->route != NULL ? r->route->name : "other", "status",
		       code, "ms", ms, NULL);
	}
	ss_daemon_release(s->d);
	req_free(r);
}

void
gw_reply_body(gw_req *r, int status, const char *ctype, const char *cache,
              struct evbuffer *body)
{
	finish(r, status, ctype, cache, body);
}

void
gw_reply_empty(gw_req *r, int status)
{
	finish(r, status, NULL, NULL, NULL);
}

/* json_dump_callback's writer: straight into the answer's buffer. */
static int
dump_to_evbuffer(const char *text, size_t n, void *arg)
{
	return evbuffer_add(arg, text, n) == 0 ? 0 : -1;
}

void
gw_reply_json(gw_req *r, int status, json_t *j)
{
	struct evbuffer *b = evbuffer_new();
	int rv = -1;

	if (b != NULL && j != NULL)
		rv = json_dump_callback(j, dump_to_evbuffer, b, JSON_COMPACT);
	json_decref(j);
	if (rv != 0) {
		if (b != NULL)
			evbuffer_free(b);
		finish(r, 500, NULL, NULL, NULL);
		return;
	}
	finish(r, status, "application/json", NULL, b);
	evbuffer_free(b);
}

#define GW_OUT_KEEP (256 * 1024) /* bytes of gw_reply_mp's buffer kept */

void
gw_reply_mp(gw_req *r, int status, const msgpack_object *o)
{
	msgpack_sbuffer *t = &r->s->out;
	struct evbuffer *b;

	t->size = 0;
	if (ss_mp_write_json(t, o) != 0 || (b = evbuffer_new()) == NULL) {
		gw_fail(r, SS_EINTERNAL, NULL);
		return;
	}
	if (evbuffer_add(b, t->data, t->size) != 0) {
		evbuffer_free(b);
		gw_fail(r, SS_ENOMEM, NULL);
		return;
	}
	/* A long list once need not keep its buffer for good. */
	if (t->alloc > GW_OUT_KEEP) {
		msgpack_sbuffer_destroy(t);
		msgpack_sbuffer_init(t);
	}
	finish(r, status, "application/json", NULL, b);
	evbuffer_free(b);
}

const char *
gw_text(char *dst, size_t cap, const char *msg)
{
	size_t n = strlen(msg);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, msg, n);
	dst[n] = '\0';
	ss_utf8_scrub(dst, n);
	return dst;
}

void
gw_reply_error_extra(gw_req *r, int err, const char *msg, json_t *extra)
{
	json_t *j = extra != NULL ? extra : json_object();
	char text[GW_TEXT_MAX];

	if (j != NULL)
		json_object_set_new(
		    j, "error",
		    json_pack("{s:s, s:s}", "code", ss_err_word(err), "message",
		              gw_text(text, sizeof text,
		                      msg != NULL ? msg : ss_err_word(err))));
	gw_reply_json(r, ss_err_http(err), j);
}

void
gw_reply_error(gw_req *r, int err, const char *msg)
{
	gw_reply_error_extra(r, err, msg, NULL);
}

void
gw_reply_html(gw_req *r, int status, struct evbuffer *body)
{
	finish(r, status, "text/html; charset=utf-8", NULL, body);
}

void
gw_reply_page(gw_req *r, int status, int tmpl, const char *const *vars)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || gw_tmpl_render(&r->s->tmpl[tmpl], vars, b) != 0) {
		if (b != NULL)
			evbuffer_free(b);
		finish(r, 500, NULL, NULL, NULL);
		return;
	}
	gw_reply_html(r, status, b);
	evbuffer_free(b);
}

static bool
wants_page(gw_req *r)
{
	if (r->want_json)
		return false;
	if (r->route != NULL)
		return r->route->page;
	return true;
}

/* What the error page tells its reader to do: only a refusal of the
 * moment (a limit, a daemon down) is worth trying again. */
static const char *
advice(int status)
{
	if (status == 429)
		return "Please wait, then try again.";
	if (status >= 500)
		return "Please try again in a moment.";
	if (status == 413)
		return "What was sent is too large, so sending it again will "
		       "not help.";
	return "The link or the request is not valid, so trying again will "
	       "not help. If you followed a link, check that it is complete, "
	       "or ask the person who sent it for a new one.";
}

void
gw_fail(gw_req *r, int err, const char *msg)
{
	char status[8], text[GW_TEXT_MAX];
	const char *vars[] = {"status", status, "message", NULL,
	                      "advice", NULL,   NULL};

	if (!wants_page(r)) {
		gw_reply_error(r, err, msg);
		return;
	}
	if (err == SS_ENOTFOUND) {
		static const char *const nf[] = {
		    "message",
		    "There is nothing at this address. Please check the link "
		    "you followed.",
		    NULL};

		gw_reply_page(r, 404, GW_T_NOT_FOUND, nf);
		return;
	}
	snprintf(status, sizeof status, "%d", ss_err_http(err));
	vars[3] =
	    gw_text(text, sizeof text, msg != NULL ? msg : ss_err_word(err));
	vars[5] = advice(ss_err_http(err));
	gw_reply_page(r, ss_err_http(err), GW_T_ERROR, vars);
}

void
gw_retry_after(gw_req *r, int secs)
{
	char v[16];

	snprintf(v, sizeof v, "%d", secs);
	gw_add_header(r, "Retry-After", v);
}

void
gw_fail_retry(gw_req *r, int err, const char *msg, int retry_after)
{
	gw_retry_after(r, retry_after);
	gw_fail(r, err, msg);
}

/* --- request helpers -------------------------------------------------- */

const char *
gw_header(gw_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->er),
	                          name);
}

const char *
gw_query(gw_req *r)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r->er);

	return u != NULL ? evhttp_uri_get_query(u) : NULL;
}

const char *
gw_body(gw_req *r, size_t *n)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(r->er);

	*n = evbuffer_get_length(b);
	return *n > 0 ? (const char *)evbuffer_pullup(b, -1) : "";
}

int
gw_body_json(gw_req *r, const gw_jfield *spec, size_t n)
{
	char why[256];
	const char *b;
	size_t len;
	int rv;

	b = gw_body(r, &len);
	if ((rv = gw_json_parse(b, len, (size_t)r->s->cfg->body_max, &r->body,
	                        why, sizeof why)) != 0 ||
	    (rv = gw_json_fields(r->body, spec, n, "", why, sizeof why)) != 0) {
		gw_fail(r, rv, why);
		return rv;
	}
	return 0;
}

int
gw_query_check(gw_req *r, const char *const *allowed)
{
	const char *q = gw_query(r);
	char why[128];

	if (q == NULL)
		return 0;
	if (gw_form_check(q, strlen(q), allowed, why, sizeof why) != 0) {
		gw_fail(r, SS_EBADREQ, why);
		return SS_EBADREQ;
	}
	return 0;
}

int
gw_query_get(gw_req *r, const char *name, char *out, size_t cap)
{
	const char *q = gw_query(r);
	char why[128];
	int rv;

	out[0] = '\0';
	if (q == NULL)
		return 0;
	rv = gw_form_get(q, strlen(q), name, out, cap, NULL);
	if (rv < 0) {
		snprintf(why, sizeof why, "parameter '%s': malformed", name);
		gw_fail(r, SS_EBADREQ, why);
	}
	return rv;
}

int
gw_query_need(gw_req *r, const char *name, char *out, size_t cap)
{
	char why[96];
	int rv = gw_query_get(r, name, out, cap);

	if (rv < 0)
		return rv;
	if (rv == 0 || out[0] == '\0') {
		snprintf(why, sizeof why, "missing parameter '%s'", name);
		gw_fail(r, SS_EBADREQ, why);
		return SS_EBADREQ;
	}
	return 0;
}

/* --- dispatch --------------------------------------------------------- */

static bool
addr_ok(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

int
gw_xff_client(const char *xff, char out[GW_ADDR_MAX + 1])
{
	const char *p = strrchr(xff, ',');
	char last[GW_ADDR_MAX + 1];
	size_t n;

	p = p != NULL ? p + 1 : xff;
	while (*p == ' ')
		p++;
	n = strcspn(p, " ");
	if (n == 0 || n > GW_ADDR_MAX)
		return -1;
	memcpy(last, p, n);
	last[n] = '\0';
	if (!addr_ok(last))
		return -1;
	memcpy(out, last, n + 1);
	return 0;
}

/* The last header of that name.  A proxy may add its own
 * X-Forwarded-For line after the client's instead of extending it (HAProxy
 * does): the first line, evhttp_find_header's, is then the client's. */
static const char *
last_header(gw_req *r, const char *name)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->er);
	const char *v = NULL;

	for (struct evkeyval *kv = h->tqh_first; kv != NULL;
	     kv = kv->next.tqe_next)
		if (strcasecmp(kv->key, name) == 0)
			v = kv->value;
	return v;
}

/* The client's address: the peer's, or behind a trusted proxy the last
 * entry of the last X-Forwarded-For (the one the proxy itself appended). */
static void
client_addr(gw_req *r)
{
	struct evhttp_connection *c = evhttp_request_get_connection(r->er);
	const char *xff;
	char *peer = NULL;
	ev_uint16_t port;

	snprintf(r->addr, sizeof r->addr, "-");
	if (c != NULL) {
		evhttp_connection_get_peer(c, &peer, &port);
		if (peer != NULL && addr_ok(peer))
			snprintf(r->addr, sizeof r->addr, "%s", peer);
	}
	if (r->s->cfg->trust_proxy &&
	    (xff = last_header(r, "X-Forwarded-For")) != NULL)
		(void)gw_xff_client(xff, r->addr);
}

static int
method_of(struct evhttp_request *er)
{
	switch (evhttp_request_get_command(er)) {
	case EVHTTP_REQ_GET:
		return GW_GET;
	case EVHTTP_REQ_HEAD:
		return GW_HEAD;
	case EVHTTP_REQ_POST:
		return GW_POST;
	case EVHTTP_REQ_PUT:
		return GW_PUT;
	case EVHTTP_REQ_DELETE:
		return GW_DELETE;
	case EVHTTP_REQ_PATCH:
		return GW_PATCH;
	case EVHTTP_REQ_OPTIONS:
		return GW_OPTIONS;
	default:
		return 0;
	}
}

static void
allow_header(gw_req *r, int mask)
{
	static const struct {
		int m;
		const char *name;
	} names[] = {{GW_GET, "GET"},       {GW_HEAD, "HEAD"},
	             {GW_POST, "POST"},     {GW_PUT, "PUT"},
	             {GW_DELETE, "DELETE"}, {GW_PATCH, "PATCH"}};
	char v[64] = "";

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(mask & names[i].m))
			continue;
		if (v[0] != '\0')
			strcat(v, ", ");
		strcat(v, names[i].name);
	}
	gw_add_header(r, "Allow", v);
}

static int
auth_bearer(gw_req *r, const char **tok, size_t *n)
{
	const char *h = gw_header(r, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return SS_EUNAUTH;
	h += 7;
	while (*h == ' ')
		h++;
	*tok = h;
	*n = strlen(h);
	while (*n > 0 && h[*n - 1] == ' ')
		(*n)--;
	return *n > 0 ? 0 : SS_EUNAUTH;
}

static int
authenticate(gw_req *r)
{
	const gw_server *s = r->s;
	unsigned char h[32];
	const char *tok;
	size_t n;

	if (r->route->auth == GW_AUTH_NONE)
		return 0;
	if (auth_bearer(r, &tok, &n) != 0)
		return SS_EUNAUTH;
	if (r->route->auth == GW_AUTH_BEARER)
		return gw_jwt_verify(s->cfg->jwt_secret,
		                     strlen(s->cfg->jwt_secret), tok, n,
		                     gw_now(), r->user, NULL);
	/* The operator token: keyed hashes of both, compared in constant
	 * time, so neither its bytes nor its length leak through timing. */
	if (!s->op_enabled)
		return SS_EUNAUTH;
	crypto_generichash(h, sizeof h, (const unsigned char *)tok, n,
	                   s->op_key, sizeof s->op_key);
	return sodium_memcmp(h, s->op_hash, sizeof h) == 0 ? 0 : SS_EUNAUTH;
}

static const char *const no_params[] = {NULL};

static void
dispatch(gw_req *r)
{
	gw_server *s = r->s;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r->er);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	const char *accept = gw_header(r, "Accept");
	int method = method_of(r->er), allowed = 0, i;

	if (path == NULL || path[0] == '\0')
		path = "/";
	r->want_json = accept != NULL && strstr(accept, "application/json");
	i = gw_route_find(s->routes, s->nroutes, method, path, &r->pm,
	                  &allowed);
	/* The public routes' parameters are link tokens and file names: one
	 * that does not decode names nothing, and gets the route's own 404
	 * (for a link, the one answer of every unusable link).  An API
	 * route's is a malformed request. */
	if (i >= 0 && r->pm.bad && s->routes[i].auth != GW_AUTH_NONE) {
		r->want_json = true;
		gw_fail(r, SS_EBADREQ, "malformed path");
		return;
	}
	if (i < 0) {
		r->want_json = r->want_json || strncmp(path, "/api/", 5) == 0;
		if (allowed == 0) {
			gw_fail(r, SS_ENOTFOUND, "no such resource");
			return;
		}
		allow_header(r, allowed);
		json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code",
		                      "method_not_allowed", "message",
		                      "method not allowed");
		gw_reply_json(r, 405, e);
		return;
	}
	r->route = &s->routes[i];
	r->rm = &s->rm[i];
	if (s->d->stopping) {
		gw_fail(r, SS_EUNAVAIL, "the gateway is shutting down");
		return;
	}
	if (authenticate(r) != 0) {
		gw_add_header(r, "WWW-Authenticate",
		              "Bearer realm=\"studyshare\"");
		gw_reply_error(
		    r, SS_EUNAUTH,
		    r->route->auth == GW_AUTH_OPERATOR
		        ? "missing or invalid operator token"
		        : "missing, expired or invalid bearer token");
		return;
	}
	/* The API's routes without GET take no query (the GET handlers
	 * check their own parameters): one left there is a client's mistake,
	 * said, not ignored. */
	if (!r->route->page && (r->route->methods & GW_GET) == 0 &&
	    !r->route->own_query && gw_query_check(r, no_params) != 0)
		return;
	r->step = GW_STEP_ROUTE;
	r->route->fn(r);
}

static void
on_request(struct evhttp_request *er, void *arg)
{
	gw_server *s = arg;
	gw_req *r;

	if ((r = req_new(s)) == NULL) {
		evhttp_send_error(er, 500, NULL);
		return;
	}
	r->s = s;
	r->er = er;
	r->rm = &s->rm_other;
	r->t0 = ss_now();
	ss_req_new_id(r->id);
	ss_daemon_hold(s->d);
	client_addr(r);
	dispatch(r);
}

/* --- start and stop --------------------------------------------------- */

static void
metrics_init(gw_route_metrics *m, const char *route)
{
	char l[128];

	snprintf(l, sizeof l, "route=\"%s\"", route);
	m->requests = ss_counter("studyshare_http_requests_total",
	                         "HTTP requests answered, by route", l);
	m->duration = ss_histogram("studyshare_http_request_duration_seconds",
	                           "time from a request's arrival to its "
	                           "answer, by route",
	                           l);
	for (int c = 1; c <= 5; c++) {
		snprintf(l, sizeof l, "route=\"%s\",code=\"%dxx\"", route, c);
		m->status[c] = ss_counter("studyshare_http_responses_total",
		                          "HTTP answers by route and status "
		                          "class",
		                          l);
	}
}

int
gw_http_start(gw_server *s, const gw_route *routes, size_t n)
{
	char host[256];
	ev_uint16_t port;
	int64_t cap = s->cfg->body_max > s->cfg->directory_max
	                  ? s->cfg->body_max
	                  : s->cfg->directory_max;

	/* evhttp has one cap for every route, checked before any handler:
	 * the uploads' larger one only when uploads are on. */
	if (s->cfg->spool_dir[0] != '\0' && s->cfg->upload_file_max > cap)
		cap = s->cfg->upload_file_max;
	s->log_debug =
	    s->cfg->common.log_level != NULL &&
	    ss_log_level_parse(s->cfg->common.log_level) == SS_LOG_DEBUG;
	s->routes = routes;
	s->nroutes = n;
	if ((s->rm = calloc(n, sizeof *s->rm)) == NULL)
		return SS_ENOMEM;
	for (size_t i = 0; i < n; i++)
		metrics_init(&s->rm[i], routes[i].name);
	metrics_init(&s->rm_other, "other");
	if (ss_addr_split(s->cfg->listen, host, sizeof host, &port) != 0) {
		ss_error("http.bad_listen", NULL, "listen", s->cfg->listen,
		         NULL);
		return SS_EBADREQ;
	}
	if ((s->http = evhttp_new(s->d->base)) == NULL)
		return SS_ENOMEM;
	evhttp_set_max_headers_size(s->http, 16384);
	/* Some room over the largest cap, so that a body a little too large
	 * still reaches us and gets a 413 in the API's shape. */
	evhttp_set_max_body_size(s->http, cap + 65536);
	evhttp_set_timeout(s->http, (int)(s->cfg->http_timeout_ms / 1000));
	evhttp_set_allowed_methods(
	    s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                 EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(s->http, on_request, s);
	EVUTIL_SET_SOCKET_ERROR(0);
	if ((s->bound = evhttp_bind_socket_with_handle(s->http, host, port)) ==
	    NULL) {
		int err = EVUTIL_SOCKET_ERROR();

		/* A name that does not resolve leaves no errno behind. */
		ss_error("http.bind_failed", NULL, "listen", s->cfg->listen,
		         "error",
		         err != 0 ? evutil_socket_error_to_string(err)
		                  : "cannot resolve or bind",
		         NULL);
		return SS_EUNAVAIL;
	}
	ss_info("http.listening", NULL, "listen", s->cfg->listen, NULL);
	return 0;
}

void
gw_http_stop(gw_server *s)
{
	if (s->http != NULL) {
		evhttp_free(s->http);
		s->http = NULL;
	}
	free(s->rm);
	s->rm = NULL;
	while (s->spare != NULL) {
		gw_req *r = s->spare;
		s->spare = r->spare_next;
		free(r);
	}
	s->nspare = 0;
}
