/*
 * services/gateway/guest.c - the guest link page /g/{token} (API.md
 * "Redeeming a guest link").
 *
 *   GET /g/{token}             a use when the link has no password; with
 *                              the viewer-session cookie, a reload (no use)
 *   POST /g/{token} password   form field (or a JSON body {"password"})
 *
 *   GL_LIMIT   POST only: the per-address limit of password posts
 *              (--guest-password-limit per --rate-window, API.md: 60 a
 *              minute), counted in Redis across replicas
 *   GL_REDEEM  guestlink.redeem {token, password?, addr, user_agent,
 *              session?}: one script decides (see guestlink)
 *   then       the answer, HTML or (Accept: application/json) JSON:
 *                view               200 page / {"study", "priors",
 *                                   "session", "expires_at"}, and the
 *                                   cookie ss_guest=<session>
 *                password_required  200 form / {"password_required": true}
 *                wrong_password     401 form saying how many tries remain
 *                                   / {"error": ..., "attempts_left": N}
 *                not_found          the one 404 for every unusable link
 *
 * The cookie is HttpOnly, SameSite=Strict, Secure under --https, scoped
 * to Path=/g/<token> (it is of no use to any other link) and lives as long
 * as the session.  A token that does not even have a token's shape gets
 * the same 404 without asking guestlink.  The page never contains the
 * token: the form posts to the URL it was loaded from.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "runtime/log.h"
#include "runtime/token.h"
#include "services/gateway/gateway.h"

/* A session is "<link id>.<token>": hex, '.', URL-safe base64. */
#define SESSION_CHARS                                                          \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

static void
gone(gw_req *r)
{
	if (r->want_json)
		gw_reply_error(r, SS_ENOTFOUND, GW_GONE_MSG);
	else
		gw_reply_page(r, 404, GW_T_GONE, NULL);
}

static void
password_form(gw_req *r, int status, const char *message)
{
	const char *vars[] = {"message", message != NULL ? message : "", NULL};

	gw_reply_page(r, status, GW_T_GUEST_PASSWORD, vars);
}

/* "19800131" -> "1980-01-31"; anything else as it is. */
static const char *
fmt_date(const json_t *v, char out[16])
{
	const char *s = json_is_string(v) ? json_string_value(v) : "";

	if (strlen(s) == 8 && strspn(s, "0123456789") == 8) {
		snprintf(out, 16, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
		return out;
	}
	snprintf(out, 16, "%s", s);
	return out;
}

/* DICOM person name "DOE^JANE" -> "DOE, JANE". */
static void
fmt_name(const json_t *v, char *out, size_t cap)
{
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	const char *caret = strchr(s, '^');
	size_t o = 0;

	if (caret == NULL) {
		snprintf(out, cap, "%s", s);
		return;
	}
	o = (size_t)snprintf(out, cap, "%.*s, ", (int)(caret - s), s);
	for (s = caret + 1; *s != '\0' && o + 1 < cap; s++)
		out[o++] = *s == '^' ? ' ' : *s;
	out[o < cap ? o : cap - 1] = '\0';
}

static const char *
str_or(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : "";
}

/* One row of the priors table, every cell escaped. */
static int
prior_row(struct evbuffer *b, const json_t *st)
{
	char d[16];
	const char *cells[3] = {fmt_date(json_object_get(st, "study_date"), d),
	                        str_or(st, "modality"),
	                        str_or(st, "description")};

	if (evbuffer_add_printf(b, "<tr>") < 0)
		return SS_ENOMEM;
	for (int i = 0; i < 3; i++) {
		if (evbuffer_add_printf(b, "<td>") < 0 ||
		    gw_html_escape(b, cells[i], strlen(cells[i])) != 0 ||
		    evbuffer_add_printf(b, "</td>") < 0)
			return SS_ENOMEM;
	}
	return evbuffer_add_printf(b, "</tr>\n") < 0 ? SS_ENOMEM : 0;
}

static void
view_page(gw_req *r, const json_t *view)
{
	const json_t *st = json_object_get(view, "study");
	const json_t *pt = json_object_get(st, "patient");
	const json_t *priors = json_object_get(view, "priors");
	char name[512], birth[16], date[16], n[16], exp[32];
	struct evbuffer *rows = evbuffer_new();
	const char *rows_s;
	size_t i;

	if (rows == NULL) {
		gw_fail(r, SS_ENOMEM, NULL);
		return;
	}
	for (i = 0; i < json_array_size(priors); i++) {
		if (prior_row(rows, json_array_get(priors, i)) != 0) {
			evbuffer_free(rows);
			gw_fail(r, SS_ENOMEM, NULL);
			return;
		}
	}
	evbuffer_add(rows, "", 1);
	rows_s = (const char *)evbuffer_pullup(rows, -1);
	fmt_name(json_object_get(pt, "name"), name, sizeof name);
	snprintf(n, sizeof n, "%zu", json_array_size(priors));
	snprintf(exp, sizeof exp, "%s", str_or(view, "expires_at"));
	{
		const char *vars[] = {
		    "patient_name",
		    name,
		    "patient_id",
		    str_or(pt, "id"),
		    "birth_date",
		    fmt_date(json_object_get(pt, "birth_date"), birth),
		    "study_date",
		    fmt_date(json_object_get(st, "study_date"), date),
		    "modality",
		    str_or(st, "modality"),
		    "description",
		    str_or(st, "description"),
		    "accession",
		    str_or(st, "accession"),
		    "study_uid",
		    str_or(st, "study_uid"),
		    "priors_count",
		    n,
		    "priors_rows",
		    rows_s,
		    "priors_none",
		    i == 0 ? "No earlier studies are included with this "
		             "link."
		           : "",
		    "expires_at",
		    exp,
		    NULL,
		};
		gw_reply_page(r, 200, GW_T_GUEST_VIEW, vars);
	}
	evbuffer_free(rows);
}

static void
set_cookie(gw_req *r, const char *session, const char *expires_at)
{
	char c[512];
	int64_t exp, age = 0;

	if (gw_time_parse(expires_at, &exp) == 0)
		age = exp - gw_now();
	if (age < 1)
		age = 1;
	snprintf(c, sizeof c,
	         GW_COOKIE "=%s; Path=/g/%s; Max-Age=%lld; HttpOnly; "
	                   "SameSite=Strict%s",
	         session, r->pm.v[0], (long long)age,
	         r->s->cfg->https ? "; Secure" : "");
	gw_add_header(r, "Set-Cookie", c);
}

static void
on_redeem(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;
	const msgpack_object *v;
	char msg[128];
	json_t *j;
	int64_t left;

	if (err == 0 && !reply->ok && reply->err == SS_ENOTFOUND) {
		gone(r);
		return;
	}
	if (gw_peer_failed(r, err, reply))
		return;
	if ((v = ss_map_get(reply->body, "password_required")) != NULL) {
		if (r->want_json)
			gw_reply_json(
			    r, 200, json_pack("{s:b}", "password_required", 1));
		else
			password_form(r, 200, NULL);
		return;
	}
	if ((v = ss_map_get(reply->body, "wrong_password")) != NULL) {
		v = ss_map_get(reply->body, "attempts_left");
		left = v != NULL && (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		           ? ss_obj_int(v)
		           : 0;
		if (r->want_json) {
			gw_reply_error_extra(r, SS_EUNAUTH, "wrong password",
			                     json_pack("{s:I}", "attempts_left",
			                               (json_int_t)left));
			return;
		}
		if (left > 0)
			snprintf(msg, sizeof msg,
			         "Wrong password. %lld attempt%s left.",
			         (long long)left, left == 1 ? "" : "s");
		else
			snprintf(
			    msg, sizeof msg,
			    "Wrong password. No attempts are left: the link "
			    "is locked.");
		password_form(r, 401, msg);
		return;
	}
	if ((j = ss_mp_to_json(reply->body)) == NULL ||
	    !json_is_string(json_object_get(j, "session"))) {
		json_decref(j);
		gw_fail(r, SS_EINTERNAL, NULL);
		return;
	}
	set_cookie(r, json_string_value(json_object_get(j, "session")),
	           str_or(j, "expires_at"));
	if (r->want_json) {
		gw_reply_json(r, 200, j);
		return;
	}
	view_page(r, j);
	json_decref(j);
}

static void
redeem(gw_req *r)
{
	const char *ua = gw_header(r, "User-Agent");
	size_t ualen = ua != NULL ? strlen(ua) : 0;
	ss_pack *p;

	if (ualen > GW_UA_MAX)
		ualen = GW_UA_MAX; /* guestlink cleans a cut character */
	p = gw_peer_begin(r, "guestlink.redeem");
	msgpack_pack_map(&p->pk, 3 + (r->has_pw ? 1 : 0) +
	                             (r->session[0] != '\0' ? 1 : 0));
	ss_pack_kv_cstr(p, "token", r->pm.v[0]);
	ss_pack_kv_cstr(p, "addr", r->addr);
	ss_pack_kv_strn(p, "user_agent", ua != NULL ? ua : "", ualen);
	if (r->has_pw)
		ss_pack_kv_strn(p, "password", r->pw, r->pwlen);
	if (r->session[0] != '\0')
		ss_pack_kv_cstr(p, "session", r->session);
	gw_peer_send(r, r->s->guestlink, on_redeem);
	sodium_memzero(p->sb.data, p->sb.size);
}

/* The password from a form body, or from a JSON one. */
static int
read_password(gw_req *r, char *why, size_t whylen)
{
	static const char *const allowed[] = {"password", NULL};
	static const gw_jfield spec[] = {
	    {"password", GW_J_STR, true, 1, GW_PW_MAX},
	};
	const char *ct = gw_header(r, "Content-Type"), *b;
	json_t *j = NULL;
	size_t n;
	int rv;

	b = gw_body(r, &n);
	if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0) {
		if ((rv = gw_json_parse(b, n, (size_t)r->s->cfg->body_max, &j,
		                        why, whylen)) != 0 ||
		    (rv = gw_json_fields(j, spec, 1, "", why, whylen)) != 0) {
			json_decref(j);
			return rv;
		}
		n = json_string_length(json_object_get(j, "password"));
		memcpy(r->pw, json_string_value(json_object_get(j, "password")),
		       n);
		r->pw[n] = '\0';
		r->pwlen = n;
		json_decref(j);
		return 0;
	}
	if (n > (size_t)r->s->cfg->body_max) {
		snprintf(why, whylen, "request body larger than %lld bytes",
		         (long long)r->s->cfg->body_max);
		return SS_ETOOLARGE;
	}
	if (gw_form_check(b, n, allowed, why, whylen) != 0)
		return SS_EBADREQ;
	rv = gw_form_get(b, n, "password", r->pw, sizeof r->pw, &r->pwlen);
	if (rv < 0) {
		snprintf(why, whylen, "field 'password': malformed");
		return SS_EBADREQ;
	}
	if (rv == 0 || r->pwlen == 0) {
		snprintf(why, whylen, "missing field 'password'");
		return SS_EBADREQ;
	}
	return 0;
}

static void
guest_post(gw_req *r)
{
	char why[256];
	int rv;

	if ((rv = read_password(r, why, sizeof why)) != 0) {
		if (r->want_json || rv != SS_EBADREQ)
			gw_fail(r, rv, why);
		else
			password_form(r, 400, "Please enter the password.");
		return;
	}
	r->has_pw = true;
	redeem(r);
}

void
gw_page_guest(gw_req *r)
{
	const char *tok = r->pm.v[0], *cookie = gw_header(r, "Cookie");
	size_t n;

	(void)gw_body(r, &n);
	if (!ss_token_valid(tok, strlen(tok))) {
		gone(r);
		return;
	}
	if (cookie != NULL &&
	    (gw_cookie_get(cookie, GW_COOKIE, r->session, sizeof r->session) !=
	         1 ||
	     strspn(r->session, SESSION_CHARS) != strlen(r->session)))
		r->session[0] = '\0';
	if (evhttp_request_get_command(r->er) == EVHTTP_REQ_POST)
		gw_limit(r, "guestpw", r->s->cfg->guest_password_limit,
		         guest_post);
	else
		redeem(r);
}
