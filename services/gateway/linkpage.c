/*
 * services/gateway/linkpage.c - what the page of a guest link (/g/{token},
 * guest.c) and of an upload link (/u/{token}, upload.c) do alike: both are
 * redeemed by guestlink with the same answers (API.md "Redeeming a guest
 * link", "Guest upload links"), so both are asked and answered here, with
 * a gw_link_kind for what differs (the request, the 404's message, the
 * cookie and its path, the password form, the page of a session).
 *
 *   GET  the token's shape is checked (not a token: the one 404, guestlink
 *        is not asked), the session cookie read when it has a session's
 *        shape, then the redeem request: a use, or a reload of a session
 *   POST within the per-address limit of password posts (gw_limit "guestpw",
 *        --guest-password-limit), the password (a form field, or a JSON
 *        body {"password"}), then the redeem request with it
 *
 * and the answer, HTML or (Accept: application/json) JSON:
 *   a session          200 the kind's page / the reply as it is, and the
 *                      cookie (HttpOnly, SameSite=Lax, Secure under
 *                      --https, Path=<kind's path><token>: of no use to any
 *                      other link, as long as the session lives)
 *   password_required  200 form / {"password_required": true}
 *   wrong_password     401 form saying how many tries remain (its
 *                      script, password.js, makes the page's history
 *                      entry a GET: a reload must not post the wrong
 *                      password again) / {"error": ..., "attempts_left": N}
 *   over the limit     429 form saying when to try again / the API's 429
 *   not_found          the one 404 for every unusable link
 *
 * The page never contains the token: the form posts to the URL it was
 * loaded from.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "runtime/token.h"
#include "services/gateway/gateway.h"

/* A session is "<link id>.<token>": hex, '.', URL-safe base64. */
#define SESSION_CHARS                                                          \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

void
gw_link_gone(const gw_link_kind *k, gw_req *r)
{
	if (r->want_json)
		gw_reply_error(r, SS_ENOTFOUND, k->gone_msg);
	else
		gw_reply_page(r, 404, GW_T_GONE, NULL);
}

/* The password page; locked: the message alone, without the form (no
 * attempt is left to make). */
static void
password_form(const gw_link_kind *k, gw_req *r, int status, const char *message,
              bool locked)
{
	const char *vars[] = {"message", message != NULL ? message : "",
	                      "form_hidden", locked ? "hidden" : "", NULL};

	gw_reply_page(r, status, k->t_password, vars);
}

void
gw_link_limited(gw_req *r, int secs)
{
	char msg[160];

	gw_retry_after(r, secs);
	snprintf(msg, sizeof msg,
	         "Too many passwords were tried from your network. Please "
	         "wait %d second%s, then try again.",
	         secs, secs == 1 ? "" : "s");
	password_form(r->link, r, 429, msg, false);
}

void
gw_link_set_cookie(const gw_link_kind *k, gw_req *r, const char *session,
                   const char *expires_at)
{
	char c[512];
	int64_t exp, age = 0;

	if (gw_time_parse(expires_at, &exp) == 0)
		age = exp - gw_now();
	if (age < 1)
		age = 1;
	/* Lax, not Strict: a guest opens the link from a mail, another
	 * site, and a Strict cookie is withheld from that navigation and
	 * from every reload of its page, each of which would then spend a
	 * use.  Lax still keeps it from other sites' subrequests and POSTs,
	 * and the path holds the link's own token. */
	snprintf(c, sizeof c,
	         "%s=%s; Path=%s%s; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
	         k->cookie, session, k->path, r->pm.v[0], (long long)age,
	         r->s->cfg->https ? "; Secure" : "");
	gw_add_header(r, "Set-Cookie", c);
}

bool
gw_link_redeemed(const gw_link_kind *k, gw_req *r, int err, const ss_msg *reply,
                 char exp[GW_EXP_MAX])
{
	const msgpack_object *v;
	char msg[128];
	int64_t left;

	exp[0] = '\0';
	if (err == 0 && !reply->ok && reply->err == SS_ENOTFOUND) {
		gw_link_gone(k, r);
		return true;
	}
	/* Every attempt left is being checked (a double-clicked last one),
	 * or guestlink has as many checks under way as it takes: the form
	 * again, not the gone page, for the link may well open. */
	if (err == 0 && !reply->ok && reply->err == SS_ETOOMANY &&
	    !r->want_json) {
		gw_add_header(r, "Retry-After", "1");
		password_form(k, r, 429,
		              "Your password could not be checked just now. "
		              "Please try again in a moment.",
		              false);
		return true;
	}
	if (gw_peer_failed(r, err, reply))
		return true;
	if (ss_map_get(reply->body, "password_required") != NULL) {
		/* A file sent without a session (r->up, upload.c) was not
		 * asking for a page: it is refused. */
		if (r->want_json)
			gw_reply_json(
			    r, r->up != NULL ? 401 : 200,
			    json_pack("{s:b}", "password_required", 1));
		else
			password_form(k, r, 200, NULL, false);
		return true;
	}
	if (ss_map_get(reply->body, "wrong_password") != NULL) {
		v = ss_map_get(reply->body, "attempts_left");
		left = v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
		           ? ss_obj_int(v)
		           : 0;
		if (r->want_json) {
			gw_reply_error_extra(r, SS_EUNAUTH, "wrong password",
			                     json_pack("{s:I}", "attempts_left",
			                               (json_int_t)left));
			return true;
		}
		if (left > 0)
			snprintf(msg, sizeof msg,
			         "Wrong password. %lld attempt%s left.",
			         (long long)left, left == 1 ? "" : "s");
		else
			snprintf(
			    msg, sizeof msg,
			    "Wrong password. No attempts are left: the "
			    "link is locked. Please ask the person who sent "
			    "it to you for a new one.");
		password_form(k, r, 401, msg, left == 0);
		return true;
	}
	v = ss_map_get(reply->body, "expires_at");
	if (ss_obj_strcpy(ss_map_get(reply->body, "session"), r->session,
	                  sizeof r->session) != 0 ||
	    (v != NULL && v->type == MSGPACK_OBJECT_STR &&
	     ss_obj_strcpy(v, exp, GW_EXP_MAX) != 0)) {
		r->session[0] = '\0';
		gw_fail(r, SS_EINTERNAL, NULL);
		return true;
	}
	return false;
}

void
gw_link_answer(const gw_link_kind *k, gw_req *r, int err, const ss_msg *reply)
{
	char exp[GW_EXP_MAX];
	json_t *j;

	if (gw_link_redeemed(k, r, err, reply, exp))
		return;
	gw_link_set_cookie(k, r, r->session, exp);
	if (r->want_json) {
		gw_reply_mp(r, 200, reply->body);
		return;
	}
	/* A page that answers the password form would be that form's POST
	 * in the browser's history: Back or Reload would send the password
	 * again, long after the session ended.  Post/Redirect/Get: the page
	 * comes from a GET that carries the session instead. */
	if (r->has_pw) {
		char loc[GW_PARAM_MAX + 8];

		snprintf(loc, sizeof loc, "%s%s", k->path, r->pm.v[0]);
		gw_add_header(r, "Location", loc);
		gw_reply_empty(r, 303);
		return;
	}
	if ((j = ss_mp_to_json(reply->body)) == NULL) {
		gw_fail(r, SS_EINTERNAL, NULL);
		return;
	}
	k->page(r, j);
	json_decref(j);
}

void
gw_link_redeem(const gw_link_kind *k, gw_req *r, ss_reply_fn fn)
{
	const char *ua = gw_header(r, "User-Agent");
	size_t ualen = ua != NULL ? strlen(ua) : 0;
	ss_pack *p;

	if (ualen > GW_UA_MAX)
		ualen = GW_UA_MAX; /* guestlink cleans a cut character */
	p = gw_peer_begin(r, k->method);
	msgpack_pack_map(&p->pk, 3 + (r->has_pw ? 1 : 0) +
	                             (r->session[0] != '\0' ? 1 : 0));
	ss_pack_kv_cstr(p, "token", r->pm.v[0]);
	ss_pack_kv_cstr(p, "addr", r->addr);
	ss_pack_kv_strn(p, "user_agent", ua != NULL ? ua : "", ualen);
	if (r->has_pw)
		ss_pack_kv_strn(p, "password", r->pw, r->pwlen);
	if (r->session[0] != '\0')
		ss_pack_kv_cstr(p, "session", r->session);
	/* Without a password guestlink answers with one script: batched.
	 * A password is hashed on a worker: alone, not to hold others up. */
	if (r->has_pw)
		gw_peer_send(r, r->s->guestlink, fn);
	else
		gw_peer_queue(r, r->s->guestlink, fn);
	/* The request was copied on sending: the password is wiped here. */
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
	/* Before either parser: gw_json_parse refuses the same way. */
	if (n > (size_t)r->s->cfg->body_max) {
		snprintf(why, whylen, "request body larger than %lld bytes",
		         (long long)r->s->cfg->body_max);
		return SS_ETOOLARGE;
	}
	if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0) {
		if ((rv = gw_json_parse(b, n, (size_t)r->s->cfg->body_max, &j,
		                        why, whylen)) != 0 ||
		    (rv = gw_json_fields(j, spec, 1, "", why, whylen)) != 0) {
			gw_json_wipe(j, "password");
			json_decref(j);
			return rv;
		}
		n = json_string_length(json_object_get(j, "password"));
		memcpy(r->pw, json_string_value(json_object_get(j, "password")),
		       n);
		r->pw[n] = '\0';
		r->pwlen = n;
		gw_json_wipe(j, "password");
		json_decref(j);
		return 0;
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

void
gw_link_post(const gw_link_kind *k, gw_req *r, ss_reply_fn fn)
{
	char why[256];
	int rv;

	if ((rv = read_password(r, why, sizeof why)) != 0) {
		if (r->want_json || rv != SS_EBADREQ)
			gw_fail(r, rv, why);
		else
			password_form(k, r, 400, "Please enter the password.",
			              false);
		return;
	}
	r->has_pw = true;
	gw_link_redeem(k, r, fn);
}

void
gw_link_read_cookie(const gw_link_kind *k, gw_req *r)
{
	const char *cookie = gw_header(r, "Cookie");

	if (cookie != NULL &&
	    (gw_cookie_get(cookie, k->cookie, r->session, sizeof r->session) !=
	         1 ||
	     strspn(r->session, SESSION_CHARS) != strlen(r->session)))
		r->session[0] = '\0';
}

void
gw_link_page(const gw_link_kind *k, gw_req *r, gw_handler post, ss_reply_fn fn)
{
	const char *tok = r->pm.v[0];
	size_t n;

	(void)gw_body(r, &n);
	if (!ss_token_valid(tok, strlen(tok))) {
		gw_link_gone(k, r);
		return;
	}
	gw_link_read_cookie(k, r);
	r->link = k;
	if (evhttp_request_get_command(r->er) == EVHTTP_REQ_POST)
		gw_limit(r, "guestpw", r->s->cfg->guest_password_limit, post);
	else
		gw_link_redeem(k, r, fn);
}
