/*
 * services/notify/smtp.c - SMTP with libcurl, off the event loop.
 *
 * There are cfg->concurrency slots.  Each slot is one curl easy handle,
 * configured once (URL, sender, TLS, auth, timeouts) and kept for the
 * life of the daemon, so its SMTP session stays open between mails (curl
 * sends the next MAIL FROM on the same connection).  A send fills in the
 * recipient and the message on the loop, then runs curl_easy_perform() on
 * a thread of the runtime's pool (runtime/work.h, one thread per slot);
 * curl reads the message through CURLOPT_READFUNCTION and does the
 * dot-stuffing; the result comes back to the loop.
 *
 * Why not curl's multi interface on the loop (socket and timer callbacks
 * on libevent): libcurl waits for the server's answer to the final "." of
 * DATA in a blocking loop inside the multi handle (smtp_done(); curl issue
 * #8555, "More non-blocking" in curl's list of planned work; still so in 7.88).
 * Measured here with a server that answers the end of data after 1.5 s: the
 * daemon's loop stalled 1.5 s per mail, four transfers "in flight" were
 * served one after another, and the later ones hit their timeouts after
 * the server had accepted them, so they went out twice on retry.  On
 * threads, a slow server stalls only the slot it is talking to; the loop
 * (Redis, the admin server) never waits, and each transfer's timeout
 * measures only its own transfer.
 *
 * When a transfer ends, nt_smtp_classify() sorts it:
 *   sent       curl says OK: the server answered 250 to the end of DATA
 *   permanent  the server answered 5xx (to MAIL FROM, RCPT TO or DATA)
 *   temporary  everything else: 4xx, refused or dropped connections,
 *              timeouts, TLS or STARTTLS failures and rejected logins
 *              (those are about our setup, not about the mail: retrying
 *              is right once the operator has fixed it)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "proto/errors.h"
#include "runtime/work.h"
#include "services/notify/notify.h"

struct nt_xfer {
	nt_smtp *s;
	CURL *easy;
	struct curl_slist *rcpt;
	const char *msg;
	size_t len;
	size_t off;
	nt_sent_fn fn;
	void *arg;
	bool busy;
	/* Written by the worker thread, read on the loop after it is done. */
	CURLcode rc;
	long smtp_code;
	char err[CURL_ERROR_SIZE];
};

struct nt_smtp {
	const nt_settings *cfg;
	ss_work_pool *pool;
	struct nt_xfer *x;
	int nx;
	atomic_bool closing; /* read by the worker threads */
	char mail_from[SS_MAIL_ADDR_MAX + 3];
};

/* ---- classification ----------------------------------------------------- */

enum nt_outcome
nt_smtp_classify(int curlcode, long smtp_code)
{
	if (curlcode == CURLE_OK)
		return NT_SENT;
	/* A refused login is the operator's to fix; the mail is fine. */
	if (curlcode == CURLE_LOGIN_DENIED || curlcode == CURLE_USE_SSL_FAILED)
		return NT_TEMPFAIL;
	if (smtp_code >= 500 && smtp_code <= 599)
		return NT_PERMFAIL;
	return NT_TEMPFAIL;
}

int
nt_smtp_check(const nt_settings *cfg, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rv = SS_EBADREQ;

	if (u == NULL)
		return SS_ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, cfg->smtp_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0)) {
		snprintf(why, whylen,
		         "--smtp-url: expected smtp://host[:port] or "
		         "smtps://host[:port]");
		goto done;
	}
	if (strcmp(cfg->smtp_starttls, "none") != 0 &&
	    strcmp(cfg->smtp_starttls, "try") != 0 &&
	    strcmp(cfg->smtp_starttls, "required") != 0) {
		snprintf(why, whylen,
		         "--smtp-starttls: must be none, try or required");
		goto done;
	}
	rv = 0;
done:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rv;
}

/* ---- a transfer --------------------------------------------------------- */

/* Runs on a worker thread, inside curl_easy_perform(). */
static size_t
on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct nt_xfer *x = arg;
	size_t n = size * nitems;

	if (n > x->len - x->off)
		n = x->len - x->off;
	memcpy(buf, x->msg + x->off, n);
	x->off += n;
	return n;
}

/* Runs on a worker thread: a daemon that is closing cuts transfers short. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
            curl_off_t ulnow)
{
	struct nt_xfer *x = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&x->s->closing) ? 1 : 0;
}

/* Runs on a worker thread. */
static void
perform(void *arg)
{
	struct nt_xfer *x = arg;

	x->rc = curl_easy_perform(x->easy);
	x->smtp_code = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->smtp_code);
}

static void
performed(void *arg)
{
	struct nt_xfer *x = arg;
	nt_smtp *s = x->s;
	enum nt_outcome out = nt_smtp_classify(x->rc, x->smtp_code);
	char why[NT_WHY_MAX];

	if (out == NT_SENT)
		snprintf(why, sizeof why, "sent");
	else if (x->smtp_code != 0)
		snprintf(why, sizeof why, "smtp %ld: %.200s", x->smtp_code,
		         x->err[0] ? x->err : curl_easy_strerror(x->rc));
	else
		snprintf(why, sizeof why, "%.200s",
		         x->err[0] ? x->err : curl_easy_strerror(x->rc));
	curl_slist_free_all(x->rcpt);
	x->rcpt = NULL;
	x->busy = false;
	/* Once nt_smtp_close() has begun, the callers are gone. */
	if (!atomic_load(&s->closing))
		x->fn(x->arg, out, why);
}

/* ---- slots -------------------------------------------------------------- */

static long
use_ssl(const char *starttls)
{
	if (strcmp(starttls, "required") == 0)
		return CURLUSESSL_ALL;
	if (strcmp(starttls, "try") == 0)
		return CURLUSESSL_TRY;
	return CURLUSESSL_NONE;
}

static int
xfer_init(nt_smtp *s, struct nt_xfer *x)
{
	const nt_settings *c = s->cfg;
	long connect_ms =
	    c->smtp_timeout_ms < 10000 ? (long)c->smtp_timeout_ms : 10000L;
	CURL *e;
	int bad = 0;

	x->s = s;
	if ((x->easy = e = curl_easy_init()) == NULL)
		return SS_ENOMEM;
	bad |= curl_easy_setopt(e, CURLOPT_URL, c->smtp_url);
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	bad |= curl_easy_setopt(e, CURLOPT_MAIL_FROM, s->mail_from);
	bad |= curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
	bad |= curl_easy_setopt(e, CURLOPT_READDATA, x);
	bad |= curl_easy_setopt(e, CURLOPT_USE_SSL, use_ssl(c->smtp_starttls));
	bad |=
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->smtp_timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->err);
	if (c->smtp_user[0] != '\0') {
		bad |= curl_easy_setopt(e, CURLOPT_USERNAME, c->smtp_user);
		bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, c->smtp_password);
	}
	if (c->smtp_ca_file[0] != '\0')
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, c->smtp_ca_file);
	return bad ? SS_EINTERNAL : 0;
}

int
nt_smtp_open(nt_smtp **out, ss_daemon *d, const nt_settings *cfg,
             const nt_from *from)
{
	nt_smtp *s;
	int rv = SS_ENOMEM;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SS_ENOMEM;
	s->cfg = cfg;
	atomic_init(&s->closing, false);
	snprintf(s->mail_from, sizeof s->mail_from, "<%s>", from->addr);
	s->nx = (int)cfg->concurrency;
	if ((s->x = calloc((size_t)s->nx, sizeof(*s->x))) == NULL)
		goto fail;
	for (int i = 0; i < s->nx; i++)
		if ((rv = xfer_init(s, &s->x[i])) != 0)
			goto fail;
	if ((rv = ss_work_open(&s->pool, d, s->nx)) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	nt_smtp_close(s);
	return rv;
}

void
nt_smtp_close(nt_smtp *s)
{
	if (s == NULL)
		return;
	/* Transfers still running (the drain deadline passed) stop at their
	 * next progress call; none of them reports back. */
	atomic_store(&s->closing, true);
	ss_work_close(s->pool);
	for (int i = 0; s->x != NULL && i < s->nx; i++) {
		curl_slist_free_all(s->x[i].rcpt);
		/* Ends the slot's open session (QUIT). */
		if (s->x[i].easy != NULL)
			curl_easy_cleanup(s->x[i].easy);
	}
	free(s->x);
	free(s);
}

int
nt_smtp_send(nt_smtp *s, const char *rcpt, const char *msg, size_t len,
             nt_sent_fn fn, void *arg)
{
	char to[SS_MAIL_ADDR_MAX + 3];
	struct nt_xfer *x = NULL;

	for (int i = 0; i < s->nx && x == NULL; i++)
		if (!s->x[i].busy)
			x = &s->x[i];
	if (x == NULL)
		return SS_ETOOMANY;
	snprintf(to, sizeof to, "<%s>", rcpt);
	if ((x->rcpt = curl_slist_append(NULL, to)) == NULL)
		return SS_ENOMEM;
	x->msg = msg;
	x->len = len;
	x->off = 0;
	x->fn = fn;
	x->arg = arg;
	x->err[0] = '\0';
	/* The slot is idle: its handle is the loop's until submitted. */
	if (curl_easy_setopt(x->easy, CURLOPT_MAIL_RCPT, x->rcpt) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE,
	                     (curl_off_t)len) != CURLE_OK ||
	    ss_work_submit(s->pool, perform, performed, x) != 0) {
		curl_slist_free_all(x->rcpt);
		x->rcpt = NULL;
		return SS_EINTERNAL;
	}
	x->busy = true;
	return 0;
}
