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
 * The cookie is HttpOnly, SameSite=Lax, Secure under --https, scoped
 * to Path=/g/<token> (it is of no use to any other link) and lives as long
 * as the session (Lax, not Strict: see gw_link_set_cookie).  A token that does
 * not even have a token's shape gets the same 404 without asking guestlink. The
 * page never contains the token: the form posts to the URL it was loaded from.
 *
 * An upload link's page (upload.c) is asked and answered the same way:
 * the steps and answers are linkpage.c's, and this file has what is a
 * guest link's own, the page of a study.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

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
	char name[512], birth[16], date[16], n[16], exp[GW_EXP_MAX];
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
	gw_time_human(str_or(view, "expires_at"), exp);
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
		    "expires_iso",
		    str_or(view, "expires_at"),
		    "message",
		    str_or(view, "message"),
		    NULL,
		};
		gw_reply_page(r, 200, GW_T_GUEST_VIEW, vars);
	}
	evbuffer_free(rows);
}

static const gw_link_kind guest = {
    .method = "guestlink.redeem",
    .gone_msg = GW_GONE_MSG,
    .cookie = GW_COOKIE,
    .path = "/g/",
    .t_password = GW_T_GUEST_PASSWORD,
    .page = view_page,
};

static void
on_redeem(int err, const ss_msg *reply, void *arg)
{
	gw_link_answer(&guest, arg, err, reply);
}

static void
guest_post(gw_req *r)
{
	gw_link_post(&guest, r, on_redeem);
}

void
gw_page_guest(gw_req *r)
{
	gw_link_page(&guest, r, guest_post, on_redeem);
}
