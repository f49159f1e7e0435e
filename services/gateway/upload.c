/*
 * services/gateway/upload.c - the guest upload page /u/{token} and its
 * files endpoint (API.md "Guest upload links").
 *
 *   GET /u/{token}           opens an upload session (a use) when the link
 *                            has no password: the upload page; with the
 *                            session cookie, the page again (no use)
 *   POST /u/{token}          form field (or JSON) password: as a guest
 *                            link's, rate limited the same way
 *   POST /u/{token}/files    DICOM Part 10 files with the session
 *                            cookie: one as the body (Content-Type
 *                            application/dicom), or several as the file
 *                            parts of a multipart/related or
 *                            multipart/form-data body (upload_multipart.c)
 *
 * Redemption is guestlink.upload.redeem, answered like /g/{token}
 * (guest.c): the page, the password form, 401 with the attempts left, or
 * the one 404; the session cookie is ss_upload, Path=/u/<token>.
 *
 * A file goes through these steps (struct gw_upload):
 *
 *   UP_CHECK     on the loop, before anyone is asked: the size cap per
 *                file (413), the media type (415), the header of every
 *                file (runtime/dicom.h: 415 not DICOM or an unsupported
 *                transfer syntax, 422 truncated, malformed or without a
 *                Study Instance UID).  One refused file refuses the
 *                request (naming it), and nothing is kept.
 *   UP_LIMIT     a slot among the client address's uploads
 *                (upload_limit.c): 429 when it had upload-refusal-limit
 *                files refused as another patient's within the window, or
 *                has upload-inflight-max uploads in progress (a Study UID
 *                tried with patient after patient would tell whose it is)
 *   UP_OPEN      no session cookie: guestlink.upload.redeem opens one
 *                (passwordless links; otherwise 401 password_required)
 *   UP_RESERVE   guestlink.upload.reserve: the session is live and the
 *                file fits the per-session cap (413 otherwise); gives the
 *                link's worklist
 *   UP_WORK      on a worker thread, file by file: the spool (fsynced,
 *                named by the SHA-256), STOW-RS when --stow-url is set
 *                (after share, asked with check_only, says it would not
 *                refuse the file as another patient's), then study.arrived
 *                to share's ingest endpoint (which answers once the study
 *                is stored)
 *   UP_RECEIVED  guestlink.upload.received per file: audit, counts, the
 *                creator's email
 *
 * The slot is given back when the request is freed, as a refusal when
 * share refused a file as another patient's (named by a keyed hash of its
 * Study UID and patient: the same file again is not another try).
 *
 * and 201 {"study_uid", "sop_instance_uid", "sha256", "bytes",
 * "forwarded", "study": {...}, "studies", "files"} (a multipart request:
 * {"received": [those per file], "studies", "files"}).  A failure of the
 * disk, the STOW server or share is 503 and the guest may send the file
 * again: the spool name, STOW and ingest are all idempotent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "runtime/dicom.h"
#include "runtime/ingest_client.h"
#include "runtime/log.h"
#include "runtime/token.h"
#include "runtime/work.h"
#include "services/gateway/gateway.h"
#include "services/gateway/upload.h"

#define UP_GONE_MSG "no such upload link"

typedef enum up_step {
	UP_CHECK,
	UP_LIMIT,
	UP_OPEN,
	UP_RESERVE,
	UP_WORK,
	UP_RECEIVED,
} up_step;

/* One file of the request. */
typedef struct up_file {
	ss_dicom_info d;
	const uint8_t *buf; /* into gw_upload.copy */
	size_t len;
	bool forwarded;              /* set by the worker */
	char sha[GW_SHA256_HEX + 1]; /* set by the worker */
} up_file;

struct gw_upload {
	up_step step;
	uint8_t *copy; /* the body: the worker must not depend on libevent
	                * keeping the request */
	size_t len;
	up_file *files;
	size_t n;
	size_t at;      /* UP_RECEIVED: the file being told; after a failed
	                 * UP_WORK, the file that failed */
	bool multipart; /* answer {"received": [...]} */
	json_t *results;
	char wl[96];
	char ua[GW_UA_MAX + 1];
	int rv; /* set by the worker */
	char why[320];
	char cookie_exp[GW_EXP_MAX];
	char refusal[33]; /* a file refused as another patient's (hex) */
};

void
gw_upload_free(gw_req *r)
{
	gw_upload_slot_put(r, r->up != NULL && r->up->refusal[0] != '\0'
	                          ? r->up->refusal
	                          : NULL);
	if (r->up != NULL) {
		free(r->up->copy);
		free(r->up->files);
		json_decref(r->up->results);
	}
	free(r->up);
	r->up = NULL;
}

/* ---- the page ----------------------------------------------------------- */

static const char *
str_or(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : "";
}

/* The upload page of a session: where the guest picks the files. */
static void
upload_page(gw_req *r, const json_t *j)
{
	const json_t *up = json_object_get(j, "upload");
	char fmax[32];
	const char *vars[] = {"message",    str_or(up, "message"),
	                      "expires_at", str_or(j, "expires_at"),
	                      "file_max",   fmax,
	                      NULL};

	snprintf(fmax, sizeof fmax, "%lld",
	         (long long)r->s->cfg->upload_file_max);
	gw_reply_page(r, 200, GW_T_UPLOAD, vars);
}

/* Redeemed as a guest link's page is (linkpage.c). */
static const gw_link_kind upload = {
    .method = "guestlink.upload.redeem",
    .gone_msg = UP_GONE_MSG,
    .cookie = GW_UP_COOKIE,
    .path = "/u/",
    .t_password = GW_T_UPLOAD_PASSWORD,
    .page = upload_page,
};

static void
on_page_redeem(int err, const ss_msg *reply, void *arg)
{
	gw_link_answer(&upload, arg, err, reply);
}

static void
page_post(gw_req *r)
{
	gw_link_post(&upload, r, on_page_redeem);
}

void
gw_page_upload(gw_req *r)
{
	gw_link_page(&upload, r, page_post, on_page_redeem);
}

/* ---- the files ------------------------------------------------------------
 */

static void reserve(gw_req *r);

/* A refusal before the link is known (the body's checks come first, so
 * that a bad request spends no use of the link): logged and counted, not
 * audited, since anyone can send one and the stream is trimmed by hand. */
static void
fail_file(gw_req *r, int err, const char *why)
{
	ss_metric_add(r->s->m_upload_refused, 1);
	ss_info("upload.refused", r->id, "error", ss_err_word(err), "reason",
	        why, "addr", r->addr, NULL);
	gw_reply_error(r, err, why);
}

static void
on_open(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;

	r->want_json = true;
	if (gw_link_redeemed(&upload, r, err, reply, r->up->cookie_exp))
		return;
	/* The use is spent now: whatever answer follows carries the
	 * session, so that a guest told to retry does not spend another. */
	gw_link_set_cookie(&upload, r, r->session, r->up->cookie_exp);
	reserve(r);
}

/* Thread: worker.  study.arrived for f (or, check_only, whether it would
 * be refused), its failure put in words. */
static int
ingest(gw_req *r, up_file *f, const ss_study_event *ev, bool created)
{
	struct gw_upload *u = r->up;
	ss_ingest_result res;
	int rv;

	rv = ss_ingest_publish(r->s->ingest, ev, &res);
	if (rv == SS_ETIMEDOUT || rv == SS_EUNAVAIL) {
		snprintf(u->why, sizeof u->why,
		         "the worklist could not be reached; retry later");
		return SS_EUNAVAIL;
	}
	if (rv != 0) {
		snprintf(u->why, sizeof u->why, "the study was refused: %s",
		         res.message);
		/* Refused for what the bytes are (their UID is another
		 * patient's): every upload of them gets this answer, so none
		 * can need the copy, and nothing of it is kept.  Any other
		 * failure may be the link's or the moment's, and the same
		 * bytes may be another request's accepted file: kept. */
		if (rv == SS_ECONFLICT && created &&
		    gw_spool_drop(r->s->cfg->spool_dir, f->sha) != 0)
			ss_warn("upload.unspool_failed", r->id, "sha256",
			        f->sha, NULL);
	}
	return rv;
}

/* Thread: worker.  One file: spool, STOW, ingest.  With an archive, share
 * is asked first whether it would refuse the file (another patient's
 * study UID): such a file must not reach the archive either. */
static int
work_file(gw_req *r, up_file *f)
{
	struct gw_upload *u = r->up;
	const gw_settings *cfg = r->s->cfg;
	const ss_dicom_info *d = &f->d;
	char why[192];
	bool created;
	int rv;

#define OPT_S(s) ((s)[0] != '\0' ? (s) : NULL)
	ss_study_event ev = {
	    .study_uid = d->study_uid,
	    .worklist = u->wl,
	    .patient_id = OPT_S(d->patient_id),
	    .patient_name = OPT_S(d->patient_name),
	    .birth_date = OPT_S(d->birth_date),
	    .study_date = OPT_S(d->study_date),
	    .accession = OPT_S(d->accession),
	    .modality = OPT_S(d->modality),
	    .description = OPT_S(d->description),
	    /* An outsider's file: its UID alone opens no stored study. */
	    .match_patient = true,
	};
#undef OPT_S

	if ((rv = gw_spool_put(cfg->spool_dir, f->buf, f->len, f->sha,
	                       &created)) != 0) {
		snprintf(u->why, sizeof u->why,
		         "the file could not be stored; retry later");
		return rv;
	}
	if (cfg->stow_url[0] != '\0') {
		ev.check_only = true;
		if ((rv = ingest(r, f, &ev, created)) != 0)
			return rv;
		ev.check_only = false;
		rv = gw_stow_send(cfg->stow_url, f->buf, f->len,
		                  (long)cfg->stow_timeout_ms, why, sizeof why);
		if (rv != 0) {
			snprintf(u->why, sizeof u->why,
			         "the archive did not take the file (%s); "
			         "retry later",
			         why);
			return rv;
		}
		f->forwarded = true;
	}
	return ingest(r, f, &ev, created);
}

/* Thread: worker.  Every file in order; the first failure stops (what
 * went before is kept and announced: sending it all again is safe).  So
 * does the end of the drain: a slow archive would otherwise hold the exit
 * for --stow-timeout per file left. */
static void
work(void *arg)
{
	gw_req *r = arg;
	struct gw_upload *u = r->up;

	u->rv = 0;
	for (size_t i = 0; i < u->n && u->rv == 0; i++) {
		if (atomic_load(&r->s->closing)) {
			snprintf(u->why, sizeof u->why,
			         "the gateway is shutting down; retry later");
			u->rv = SS_EUNAVAIL;
			break;
		}
		u->at = i;
		u->rv = work_file(r, &u->files[i]);
	}
}

static json_t *
file_json(const up_file *f)
{
	const ss_dicom_info *d = &f->d;

#define OPT_J(s) ((s)[0] != '\0' ? json_string(s) : json_null())
	return json_pack(
	    "{s:s, s:o, s:s, s:I, s:b, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o}}",
	    "study_uid", d->study_uid, "sop_instance_uid",
	    OPT_J(d->sop_instance_uid), "sha256", f->sha, "bytes",
	    (json_int_t)f->len, "forwarded", f->forwarded, "study",
	    "patient_name", OPT_J(d->patient_name), "patient_id",
	    OPT_J(d->patient_id), "birth_date", OPT_J(d->birth_date),
	    "study_date", OPT_J(d->study_date), "modality", OPT_J(d->modality),
	    "accession", OPT_J(d->accession), "description",
	    OPT_J(d->description));
#undef OPT_J
}

static void tell(gw_req *r);

static void
on_received(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;
	struct gw_upload *u = r->up;
	const msgpack_object *ns, *nf;
	char n[24];
	json_t *j;

	if (gw_peer_failed(r, err, reply))
		return;
	if (++u->at < u->n) {
		tell(r);
		return;
	}
	ns = ss_map_get(reply->body, "studies");
	nf = ss_map_get(reply->body, "files");
	if (u->multipart) {
		j = json_pack("{s:O}", "received", u->results);
	} else {
		j = file_json(&u->files[0]);
	}
	json_object_set_new(j, "studies",
	                    json_integer(ns != NULL ? ss_obj_int(ns) : 0));
	json_object_set_new(j, "files",
	                    json_integer(nf != NULL ? ss_obj_int(nf) : 0));
	snprintf(n, sizeof n, "%zu", u->n);
	ss_info("upload.accepted", r->id, "files", n, NULL);
	gw_reply_json(r, 201, j);
}

/* guestlink.upload.received for file u->at. */
static void
tell(gw_req *r)
{
	struct gw_upload *u = r->up;
	const up_file *f = &u->files[u->at];
	ss_pack *p;

	if (u->multipart)
		json_array_append_new(u->results, file_json(f));
	p = gw_peer_begin(r, "guestlink.upload.received");
	msgpack_pack_map(&p->pk,
	                 7 + (f->d.sop_instance_uid[0] != '\0' ? 1 : 0));
	ss_pack_kv_cstr(p, "session", r->session);
	ss_pack_kv_cstr(p, "study_uid", f->d.study_uid);
	if (f->d.sop_instance_uid[0] != '\0')
		ss_pack_kv_cstr(p, "sop_instance_uid", f->d.sop_instance_uid);
	ss_pack_kv_cstr(p, "sha256", f->sha);
	ss_pack_kv_int(p, "bytes", (int64_t)f->len);
	ss_pack_kv_bool(p, "forwarded", f->forwarded);
	ss_pack_kv_cstr(p, "addr", r->addr);
	ss_pack_kv_cstr(p, "user_agent", u->ua);
	gw_peer_send(r, r->s->guestlink, on_received);
}

/* What a refused file counts as: a keyed hash of its Study UID and of
 * what share compares of the patient (id, name, birth date), so that
 * varying any of them is another try.  Redis holds no patient's data; the
 * key comes from the JWT secret, so every replica names a file alike. */
static void
refusal_name(gw_req *r, const ss_dicom_info *d, char *hex, size_t len)
{
	const char *parts[] = {d->study_uid, d->patient_id, d->patient_name,
	                       d->birth_date};
	unsigned char h[16];
	crypto_generichash_state st;

	crypto_generichash_init(&st, r->s->refusal_key,
	                        sizeof r->s->refusal_key, sizeof h);
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		crypto_generichash_update(&st, (const unsigned char *)parts[i],
		                          strlen(parts[i]) + 1);
	crypto_generichash_final(&st, h, sizeof h);
	sodium_bin2hex(hex, len, h, sizeof h);
}

static void
worked(void *arg)
{
	gw_req *r = arg;
	struct gw_upload *u = r->up;

	if (u->rv != 0) {
		ss_warn("upload.failed", r->id, "error", ss_err_word(u->rv),
		        NULL);
		if (u->rv == SS_ECONFLICT)
			refusal_name(r, &u->files[u->at].d, u->refusal,
			             sizeof u->refusal);
		gw_reply_error(r, u->rv, u->why);
		return;
	}
	u->step = UP_RECEIVED;
	u->at = 0;
	tell(r);
}

static void
on_reserve(int err, const ss_msg *reply, void *arg)
{
	gw_req *r = arg;
	struct gw_upload *u = r->up;
	const msgpack_object *wl;

	if (err == 0 && !reply->ok && reply->err == SS_ENOTFOUND) {
		gw_reply_error(r, SS_ENOTFOUND, UP_GONE_MSG);
		return;
	}
	if (gw_peer_failed(r, err, reply))
		return;
	wl = ss_map_get(reply->body, "worklist");
	if (wl == NULL || ss_obj_strcpy(wl, u->wl, sizeof u->wl) != 0) {
		gw_fail(r, SS_EINTERNAL, NULL);
		return;
	}
	u->step = UP_WORK;
	r->step = GW_STEP_PEER; /* waiting, as for a daemon */
	if (ss_work_submit(r->s->work, work, worked, r) != 0) {
		r->step = GW_STEP_ROUTE;
		gw_fail(r, SS_EUNAVAIL, "the gateway is shutting down");
	}
}

static void
reserve(gw_req *r)
{
	ss_pack *p = gw_peer_begin(r, "guestlink.upload.reserve");

	r->up->step = UP_RESERVE;
	msgpack_pack_map(&p->pk, 3);
	ss_pack_kv_cstr(p, "session", r->session);
	ss_pack_kv_int(p, "bytes", (int64_t)r->up->len);
	/* (the whole body: a multipart request's files with their framing) */
	ss_pack_kv_int(p, "max_bytes", r->s->cfg->upload_session_max);
	gw_peer_send(r, r->s->guestlink, on_reserve);
}

static bool
type_is(const char *ct, const char *t)
{
	size_t n = strlen(t);

	return ct != NULL && strncasecmp(ct, t, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/*
 * The files of the body: the body itself (application/dicom), or the
 * file parts of a multipart/related or multipart/form-data body.  Every
 * one is read (runtime/dicom.h) before anything else: one refused file
 * refuses the request, naming it, and nothing is kept.
 */
static int
read_files(gw_req *r, struct gw_upload *u, const char *ct, char *msg,
           size_t msglen)
{
	gw_part *parts = NULL;
	size_t n = 1;
	char why[160];
	int rv;

	if (type_is(ct, "multipart/related") ||
	    type_is(ct, "multipart/form-data")) {
		u->multipart = true;
		if ((parts = calloc(GW_PARTS_MAX, sizeof *parts)) == NULL)
			return SS_ENOMEM;
		rv = gw_multipart_split(ct, u->copy, u->len, parts,
		                        GW_PARTS_MAX, &n, why, sizeof why);
		if (rv == 0 && n == 0) {
			snprintf(why, sizeof why, "multipart: no file part");
			rv = SS_EBADREQ;
		}
		if (rv != 0) {
			snprintf(msg, msglen, "%s", why);
			free(parts);
			return rv;
		}
	} else if (!type_is(ct, "application/dicom")) {
		snprintf(msg, msglen,
		         "send DICOM files as Content-Type: application/dicom "
		         "(one per request) or multipart/related");
		return SS_EUNSUPPORTED;
	}
	if ((u->files = calloc(n, sizeof *u->files)) == NULL ||
	    (u->multipart && (u->results = json_array()) == NULL)) {
		free(parts);
		return SS_ENOMEM;
	}
	u->n = n;
	for (size_t i = 0; i < n; i++) {
		up_file *f = &u->files[i];
		f->buf = parts != NULL ? parts[i].data : u->copy;
		f->len = parts != NULL ? parts[i].len : u->len;
		if (f->len > (size_t)r->s->cfg->upload_file_max) {
			snprintf(msg, msglen,
			         "file %zu: a file may have at most %lld bytes",
			         i + 1, (long long)r->s->cfg->upload_file_max);
			free(parts);
			return SS_ETOOLARGE;
		}
		if ((rv = ss_dicom_read(f->buf, f->len, &f->d, why,
		                        sizeof why)) != 0) {
			if (u->multipart)
				snprintf(msg, msglen,
				         "file %zu: not accepted as DICOM: %s",
				         i + 1, why);
			else
				snprintf(msg, msglen,
				         "not accepted as DICOM: %s", why);
			free(parts);
			return rv;
		}
	}
	free(parts);
	return 0;
}

/* UP_LIMIT passed: the session, from the cookie or a use of the link. */
static void
open_session(gw_req *r)
{
	gw_link_read_cookie(&upload, r);
	if (r->session[0] != '\0') {
		reserve(r);
		return;
	}
	r->up->step = UP_OPEN;
	gw_link_redeem(&upload, r, on_open);
}

void
gw_page_upload_files(gw_req *r)
{
	const char *tok = r->pm.v[0], *ua = gw_header(r, "User-Agent");
	const gw_settings *cfg = r->s->cfg;
	struct gw_upload *u;
	char msg[256];
	size_t n;
	int rv;

	r->want_json = true;
	const uint8_t *b = (const uint8_t *)gw_body(r, &n);
	if (!ss_token_valid(tok, strlen(tok))) {
		gw_reply_error(r, SS_ENOTFOUND, UP_GONE_MSG);
		return;
	}
	if (cfg->spool_dir[0] == '\0' || r->s->work == NULL) {
		gw_reply_error(r, SS_EUNAVAIL,
		               "uploads are not enabled on this server");
		return;
	}
	/* A single file is capped by upload-file-max; a multipart body may
	 * carry several such files, within the session's cap. */
	if (n > (size_t)cfg->upload_file_max &&
	    !type_is(gw_header(r, "Content-Type"), "multipart/related") &&
	    !type_is(gw_header(r, "Content-Type"), "multipart/form-data")) {
		snprintf(msg, sizeof msg, "a file may have at most %lld bytes",
		         (long long)cfg->upload_file_max);
		fail_file(r, SS_ETOOLARGE, msg);
		return;
	}
	if ((u = r->up = calloc(1, sizeof *u)) == NULL ||
	    (u->copy = malloc(n > 0 ? n : 1)) == NULL) {
		gw_fail(r, SS_ENOMEM, NULL);
		return;
	}
	memcpy(u->copy, b, n);
	u->len = n;
	if ((rv = read_files(r, u, gw_header(r, "Content-Type"), msg,
	                     sizeof msg)) != 0) {
		fail_file(r, rv, msg);
		return;
	}
	if (ua != NULL)
		snprintf(u->ua, sizeof u->ua, "%s", ua);
	u->step = UP_LIMIT;
	gw_upload_slot_take(r, u->n, open_session);
}
