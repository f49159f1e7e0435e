/*
 * services/share/ingest.c - study.arrived: storing a study that another
 * service tells us has arrived in a worklist.
 *
 *   IN_WORKLIST  authz.worklist.info: does the worklist exist?  (skipped
 *                while the answer is cached, --worklist-cache)
 *   IN_STUDY     SET share:{study:<uid>} <sealed study> NX GET: the first
 *                event of a study defines it; later ones get the stored
 *                study back (and open it)
 *   IN_DELIVER   the deliver script on the worklist's slot: the study
 *                joins the worklist's hash and listing, and its patient's
 *                priors set there
 *
 * With check_only (and match_patient, the upload path asking before it
 * forwards a file to the archive) IN_STUDY is a GET and nothing is
 * written: the answer is the conflict the event would get, or success
 * with created and added false.
 *
 * The reply goes out only after both writes.  Both are idempotent, so an
 * event sent again (after a timeout, say) stores nothing new, and a retry
 * after a failure between the two writes completes the second.  The
 * stored study never changes: an event whose other fields differ still
 * adds its worklist, and the difference is logged (field names only).
 * Two seals of the same study never have the same bytes, so "differ" is
 * decided on the opened fields, and every worklist gets the stored blob.
 * Every field is checked before anything is stored; a refusal names the
 * field.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "services/share/share.h"

#define WLCACHE_MAX 4096 /* entries before the cache starts over */

typedef enum in_step {
	IN_WORKLIST,
	IN_STUDY,
	IN_DELIVER,
} in_step;

typedef struct in_op {
	sh_server *s;
	ss_call *c;
	in_step step;
	sh_study st; /* the event's, then the stored one */
	char wl[SH_WL_MAX + 1];
	unsigned char ev[SH_BLOB_MAX]; /* the event's study, sealed */
	size_t evlen;
	char *canon; /* the sealed study found in Redis, if any */
	size_t canonlen;
	bool created;
	bool match; /* match_patient: the sender is not trusted with every
	               study (the upload path) */
	bool check; /* check_only: ask, store nothing */
} in_op;

static ss_metric *m_created, *m_added;

static void
finish(in_op *op, int err, const char *msg, bool added)
{
	if (err == 0) {
		ss_pack *p = ss_call_reply_ok(op->c);
		msgpack_pack_map(&p->pk, 4);
		ss_pack_kv_cstr(p, "study_uid", op->st.uid);
		ss_pack_kv_cstr(p, "worklist", op->wl);
		ss_pack_kv_bool(p, "created", op->created);
		ss_pack_kv_bool(p, "added", added);
		ss_call_reply_end(op->c);
		if (op->created)
			ss_metric_add(m_created, 1);
		if (added)
			ss_metric_add(m_added, 1);
	} else {
		ss_call_reply_err(op->c, err, msg);
	}
	free(op->canon);
	sodium_memzero(&op->st, sizeof op->st);
	free(op);
}

/* --- the worklist cache --------------------------------------------- */

static void
free_entry(const char *k, void *v, void *arg)
{
	(void)k;
	(void)arg;
	free(v);
}

static bool
wl_known(sh_server *s, const char *wl)
{
	double *until;

	if (s->wlcache == NULL)
		return false;
	until = ss_strmap_gets(s->wlcache, wl);
	return until != NULL && *until > ss_now();
}

/* Remembers that wl exists, for --worklist-cache.  Positive answers only:
 * an unknown worklist is asked about every time, so a worklist imported a
 * moment ago is found at once. */
static void
wl_remember(sh_server *s, const char *wl)
{
	double *until;

	if (s->cfg->worklist_cache_ms <= 0)
		return;
	if (s->wlcache != NULL && s->wlcache_size >= WLCACHE_MAX) {
		ss_strmap_each(s->wlcache, free_entry, NULL);
		ss_strmap_free(s->wlcache);
		s->wlcache = NULL;
		s->wlcache_size = 0;
	}
	if (s->wlcache == NULL && (s->wlcache = ss_strmap_new()) == NULL)
		return;
	if ((until = ss_strmap_gets(s->wlcache, wl)) == NULL) {
		if ((until = malloc(sizeof *until)) == NULL ||
		    ss_strmap_put(s->wlcache, wl, strlen(wl), until) != 0) {
			free(until);
			return;
		}
		s->wlcache_size++;
	}
	*until = ss_now() + (double)s->cfg->worklist_cache_ms / 1000.0;
}

void
sh_ingest_fini(sh_server *s)
{
	if (s->wlcache != NULL) {
		ss_strmap_each(s->wlcache, free_entry, NULL);
		ss_strmap_free(s->wlcache);
		s->wlcache = NULL;
		s->wlcache_size = 0;
	}
}

/* --- the steps ------------------------------------------------------ */

static void on_authz(int err, const ss_msg *reply, void *arg);
static void on_redis(int err, redisReply *r, void *arg);

static int
store_study(in_op *op)
{
	char k[SH_KEY_MAX];
	const char *argv[6];
	size_t lens[6];

	if (sh_key_study(k, op->st.uid, NULL) != 0)
		return SS_EINTERNAL;
	op->step = IN_STUDY;
	if (op->check)
		return ss_redis_cmd(op->s->redis, on_redis, op, "GET %s", k);
	argv[0] = "SET";
	argv[1] = k;
	argv[2] = (const char *)op->ev;
	argv[3] = "NX";
	argv[4] = "GET";
	for (int i = 0; i < 5; i++)
		lens[i] = i == 2 ? op->evlen : strlen(argv[i]);
	return ss_redis_cmdargv(op->s->redis, on_redis, op, 5, argv, lens);
}

static int
stored(in_op *op, redisReply *r)
{
	char names[160];
	sh_study ev;

	if (r->type == REDIS_REPLY_NIL) {
		if (op->check) { /* a new study: no patient to differ */
			finish(op, 0, NULL, false);
			return 0;
		}
		op->created = true;
	} else if (r->type == REDIS_REPLY_STRING) {
		if ((op->canon = malloc(r->len > 0 ? r->len : 1)) == NULL)
			return SS_ENOMEM;
		memcpy(op->canon, r->str, r->len);
		op->canonlen = r->len;
		ev = op->st;
		if (sh_study_open(&op->s->seal, ev.uid, op->canon, op->canonlen,
		                  &op->st) != 0) {
			/* Another --seal-key, or an altered value. */
			ss_error("study.corrupt", ss_call_id(op->c),
			         "study_uid", ev.uid, NULL);
			op->st = ev;
			sodium_memzero(&ev, sizeof ev);
			return SS_EINTERNAL;
		}
		/* A UID is no secret (reports, CDs): from an untrusted
		 * sender it opens a stored study only with its patient. */
		if (op->match && !sh_study_same_patient(&op->st, &ev)) {
			ss_warn("study.patient_differs", ss_call_id(op->c),
			        "study_uid", ev.uid, NULL);
			sodium_memzero(&ev, sizeof ev);
			finish(op, SS_ECONFLICT,
			       "a study with this study_uid is stored for "
			       "another patient",
			       false);
			return 0;
		}
		if (op->check) {
			sodium_memzero(&ev, sizeof ev);
			finish(op, 0, NULL, false);
			return 0;
		}
		if (sh_study_diff(&op->st, &ev, names) > 0)
			ss_warn("study.fields_differ", ss_call_id(op->c),
			        "study_uid", op->st.uid, "fields", names, NULL);
		sodium_memzero(&ev, sizeof ev);
	} else {
		return SS_EINTERNAL;
	}
	op->step = IN_DELIVER;
	return sh_store_deliver(op->s, op->wl, &op->st,
	                        op->canon ? op->canon : (const char *)op->ev,
	                        op->canon ? op->canonlen : op->evlen, on_redis,
	                        op);
}

static void
on_authz(int err, const ss_msg *reply, void *arg)
{
	in_op *op = arg;
	int rv = sh_authz_err(err, reply);

	if (rv == SS_ENOTFOUND) {
		finish(op, SS_ENOTFOUND, "field 'worklist': no such worklist",
		       false);
		return;
	}
	if (rv != 0) {
		/* authz's other refusals are about its state, not the event */
		finish(op, rv == SS_EBADREQ ? SS_EINTERNAL : rv, NULL, false);
		return;
	}
	wl_remember(op->s, op->wl);
	if ((rv = store_study(op)) != 0)
		finish(op, rv, NULL, false);
}

static void
on_redis(int err, redisReply *r, void *arg)
{
	in_op *op = arg;
	int rv;

	if (err != 0 || r->type == REDIS_REPLY_ERROR) {
		if (err == 0)
			ss_error("redis.error", ss_call_id(op->c), "error",
			         r->str, NULL);
		finish(op, err != 0 ? sh_err(err) : SS_EINTERNAL, NULL, false);
		return;
	}
	switch (op->step) {
	case IN_STUDY:
		if ((rv = stored(op, r)) != 0)
			finish(op, rv, NULL, false);
		return;
	case IN_DELIVER:
		if (r->type != REDIS_REPLY_INTEGER) {
			finish(op, SS_EINTERNAL, NULL, false);
			return;
		}
		ss_debug("study.stored", ss_call_id(op->c), "study_uid",
		         op->st.uid, "worklist", op->wl, NULL);
		finish(op, 0, NULL, r->integer == 1);
		return;
	default:
		finish(op, SS_EINTERNAL, NULL, false);
	}
}

void
sh_handle_arrived(ss_call *c, const msgpack_object *body, void *arg)
{
	sh_server *s = arg;
	char why[256];
	in_op *op;
	ss_pack *p;
	int rv;

	if (m_created == NULL) {
		m_created =
		    ss_counter("studyshare_studies_created_total",
		               "Studies stored for the first time.", NULL);
		m_added = ss_counter("studyshare_study_arrivals_total",
		                     "Arrivals that put a study in a worklist.",
		                     NULL);
	}
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = s;
	op->c = c;
	if (sh_study_parse(body, &op->st, op->wl, &op->match, &op->check, why,
	                   sizeof why) != 0) {
		finish(op, SS_EBADREQ, why, false);
		return;
	}
	if (sh_study_seal(&s->seal, &op->st, op->ev, &op->evlen) != 0) {
		finish(op, SS_EINTERNAL, NULL, false);
		return;
	}
	if (wl_known(s, op->wl)) {
		if ((rv = store_study(op)) != 0)
			finish(op, rv, NULL, false);
		return;
	}
	op->step = IN_WORKLIST;
	p = sh_authz_begin(s, "authz.worklist.info", ss_call_id(c));
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "worklist", op->wl);
	if ((rv = sh_authz_send(s, on_authz, op)) != 0)
		finish(op, sh_err(rv), NULL, false);
}
