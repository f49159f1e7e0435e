/*
 * services/notify/smtp.c - SMTP: libcurl opens the sessions, the loop
 * sends the mail.
 *
 * There are cfg->concurrency slots, each one SMTP session kept open for
 * mail after mail.  libcurl sets a session up: connect, greeting, EHLO,
 * STARTTLS or implicit TLS with certificate checks, AUTH, all as the
 * settings say (curl_easy_perform() with CURLOPT_CONNECT_ONLY).  A connect
 * blocks, so it runs on a thread of the runtime's pool (runtime/work.h),
 * and only when a slot has no session.  The mail transactions are ours,
 * on the loop: libevent watches the session's socket and the bytes go
 * through curl_easy_send() and curl_easy_recv(), which add the session's
 * TLS.  A transaction is MAIL FROM, RCPT TO, DATA, the message
 * (dot-stuffed) with its final ".", and the final reply.  A refused mail
 * is followed by RSET.
 *
 * A slot holds up to two mails: the one it sends and the next.  When the
 * server's EHLO offered PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA
 * go out in one write, and the next mail's three go out in the same write
 * as the message before it: with a backlog, a mail costs one round trip
 * (the replies come back in order: the last one of a mail, then the first
 * three of the next).  Without PIPELINING, one command per round trip.
 *
 * Why the transactions are not curl's:
 * - curl's multi interface on the loop waits for the server's answer to
 *   the final "." of DATA in a blocking loop (smtp_done(); curl issue
 *   #8555, still so in 7.88): a server answering in 1.5 s stalled the
 *   daemon 1.5 s per mail and made later transfers time out after the
 *   server had accepted them.
 * - curl_easy_perform() per mail on a thread per slot (the previous
 *   design) costs each mail four blocking round trips on its own thread,
 *   each a sleep and a wake-up, plus the hand-off to the thread and back:
 *   measured 5 context switches, 27 system calls and ~95 us of CPU per
 *   mail against postfix's smtp-sink on 2 cores, more than postfix's
 *   smtp-source spends on the same mail in all (~41 us).  On the loop, one
 *   wake-up serves every session whose answer has come, and nothing waits
 *   in a blocking call, so a slow server stalls no other slot.  curl has
 *   no SMTP pipelining either.
 *
 * A session that broke (the server closed it while idle, a send or read
 * failed, a reply made no sense) is dropped and set up afresh for the
 * mails still in the slot.  A mail that got no reply at all when its
 * session broke (a server that timed an idle session out at that moment)
 * is started once more on the new session: nothing of it can have been
 * accepted.
 *
 * A mail's clock (--smtp-timeout) starts when the slot starts on it:
 * setting a session up for it, or sending its first command.  It must
 * start by the time its caller gave (else NT_LATE: it waited behind a
 * slow mail too long), so it ends by that time plus the timeout.
 *
 * A mail that ends is sorted:
 *   sent       250 to the end of DATA
 *   permanent  5xx to MAIL FROM, RCPT TO or DATA, even when the server
 *              then drops the session
 *   temporary  everything else: 4xx, refused or dropped connections,
 *              timeouts, and whatever fails while a session is set up —
 *              a 5xx greeting or EHLO, TLS or STARTTLS, a rejected login
 *              (the mail was never offered, and those are about our
 *              setup or the server's state: retrying is right once they
 *              are fixed)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "proto/errors.h"
#include "runtime/work.h"
#include "services/notify/notify.h"

/* Reply bytes held at once: a reply line is at most 512 (RFC 5321). */
#define NT_REPLY_MAX 2048

enum slot_state {
	SL_DOWN,       /* no session */
	SL_CONNECTING, /* curl sets one up on a pool thread */
	SL_UP,         /* a session */
};

enum mail_state {
	M_FREE,    /* no mail */
	M_WAITING, /* nothing of it sent yet */
	M_MAIL,    /* the reply to MAIL FROM comes next */
	M_RCPT,    /* ... to RCPT TO */
	M_DATA,    /* ... to DATA (354) */
	M_DOT,     /* ... to the end of the message */
	M_RSET,    /* refused: the reply to RSET comes next */
};

struct mail {
	enum mail_state st;
	int want;     /* replies still to come for what went out */
	bool heard;   /* a reply came for it */
	bool renewed; /* it was started again on a new session */
	char rcpt[SS_MAIL_ADDR_MAX + 3];
	const char *msg;
	size_t len;
	nt_sent_fn fn;
	void *arg;
	int64_t start_by; /* monotonic ms */
	int64_t t0;       /* the slot started on it; 0 not yet */
	long fail_code;   /* the first refusal's reply code; 0 for none */
	enum nt_outcome outcome;
	char why[NT_WHY_MAX];
};

struct slot {
	nt_smtp *s;
	CURL *easy;
	curl_socket_t fd;
	struct event *rd;  /* fd readable: added while there is a session */
	struct event *wr;  /* fd writable: added while output waits */
	struct event *tmo; /* the deadline of the mail in front */
	struct event *go;  /* makes progress from the loop */
	enum slot_state st;
	/* m[head] is in front, m[head ^ 1] behind it; n of them are used */
	struct mail m[2];
	int head;
	int n;
	nt_buf out;
	size_t off; /* of out, written so far */
	char in[NT_REPLY_MAX];
	size_t inlen;
	/* Written by the pool thread during a connect, read on the loop once
	 * it is done. */
	bool pipelining; /* the server's last EHLO answer offered it */
	CURLcode rc;
	long smtp_code;
	char err[CURL_ERROR_SIZE];
};

struct nt_smtp {
	ss_daemon *d;
	const nt_settings *cfg;
	ss_work_pool *pool;
	struct slot *x;
	int nx;
	atomic_bool closing; /* read by the pool threads */
	char mail_from[SS_MAIL_ADDR_MAX + 3];
};

static void slot_pump(struct slot *sl);

/* ---- classification ----------------------------------------------------- */

int
nt_smtp_check(const nt_settings *cfg, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rv = SS_EBADREQ;

	if (u == NULL)
		return SS_ENOMEM;
	/* curl takes "smtp:/relay" for smtp://relay: a typo would pass. */
	if ((strncmp(cfg->smtp_url, "smtp://", 7) != 0 &&
	     strncmp(cfg->smtp_url, "smtps://", 8) != 0) ||
	    curl_url_set(u, CURLUPART_URL, cfg->smtp_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0)) {
		snprintf(why, whylen,
		         "--smtp-url: expected smtp://host[:port] or "
		         "smtps://host[:port]");
		goto done;
	}
	/* Else every TLS handshake would fail, each mail retried for an
	 * hour and more before anyone noticed. */
	if (cfg->smtp_ca_file != NULL && cfg->smtp_ca_file[0] != '\0' &&
	    access(cfg->smtp_ca_file, R_OK) != 0) {
		snprintf(why, whylen, "--smtp-ca-file: cannot read %s",
		         cfg->smtp_ca_file);
		goto done;
	}
	if (strcmp(cfg->smtp_starttls, "none") != 0 &&
	    strcmp(cfg->smtp_starttls, "try") != 0 &&
	    strcmp(cfg->smtp_starttls, "required") != 0) {
		snprintf(why, whylen,
		         "--smtp-starttls: must be none, try or required");
		goto done;
	}
	/* "try" goes on in clear when the server offers no STARTTLS, which
	 * anyone on the path can arrange by striking it from the EHLO
	 * reply: with a login, that hands them the password. */
	if (strcmp(scheme, "smtp") == 0 && cfg->smtp_user != NULL &&
	    cfg->smtp_user[0] != '\0' &&
	    strcmp(cfg->smtp_starttls, "try") == 0) {
		snprintf(why, whylen,
		         "--smtp-user: with --smtp-starttls try the password "
		         "would go in clear to a server that offers no "
		         "STARTTLS; set --smtp-starttls required (or none to "
		         "send it in clear knowingly), or use smtps://");
		goto done;
	}
	rv = 0;
done:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rv;
}

/* ---- helpers ------------------------------------------------------------ */

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct mail *
front(struct slot *sl)
{
	return sl->n > 0 ? &sl->m[sl->head] : NULL;
}

static struct mail *
behind(struct slot *sl)
{
	return sl->n > 1 ? &sl->m[sl->head ^ 1] : NULL;
}

/* The message as DATA carries it: a line that starts with "." gets one
 * more (RFC 5321 4.5.2), then the final ".". */
static void
add_body(nt_buf *b, const char *m, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(m + i, '\n', n - i);
		size_t end = nl != NULL ? (size_t)(nl - m) + 1 : n;

		if (m[i] == '.')
			nt_buf_addc(b, '.');
		nt_buf_add(b, m + i, end - i);
		i = end;
	}
	if (n >= 2 && m[n - 2] == '\r' && m[n - 1] == '\n')
		nt_buf_adds(b, ".\r\n");
	else
		nt_buf_adds(b, "\r\n.\r\n");
}

/* Output is appended behind what still waits to be written. */
static nt_buf *
out_begin(struct slot *sl)
{
	if (sl->off == sl->out.n) {
		nt_buf_reset(&sl->out);
		sl->off = 0;
	}
	return &sl->out;
}

/* ---- ending mails ------------------------------------------------------- */

/* The front mail's deadline, while it is under way. */
static void
slot_timer(struct slot *sl)
{
	struct mail *m = front(sl);
	int64_t left;
	struct timeval tv;

	if (m == NULL || m->st == M_WAITING) {
		evtimer_del(sl->tmo);
		return;
	}
	left = m->t0 + sl->s->cfg->smtp_timeout_ms - mono_ms();
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	evtimer_add(sl->tmo, &tv);
}

/*
 * The front mail is over: the one behind moves up, then the caller hears
 * of it.  fn may hand this slot a new mail (nt_smtp_send() only queues),
 * so the slot is consistent before it is called.
 */
static void
mail_end(struct slot *sl, enum nt_outcome out, const char *why)
{
	struct mail *m = front(sl);
	nt_sent_fn fn = m->fn;
	void *arg = m->arg;
	char buf[NT_WHY_MAX];

	snprintf(buf, sizeof buf, "%s", why != NULL ? why : m->why);
	m->st = M_FREE;
	m->fn = NULL;
	m->msg = NULL;
	sl->head ^= 1;
	sl->n--;
	slot_timer(sl);
	if (!atomic_load(&sl->s->closing))
		fn(arg, out, buf);
}

/* Ends the slot's session, if any.  The socket is shut down first, so
 * that curl's goodbye (QUIT, TLS close) fails at once instead of waiting
 * on a server that may be stuck. */
static void
slot_drop(struct slot *sl)
{
	if (sl->rd != NULL)
		event_free(sl->rd);
	if (sl->wr != NULL)
		event_free(sl->wr);
	sl->rd = sl->wr = NULL;
	if (sl->fd != CURL_SOCKET_BAD)
		shutdown(sl->fd, SHUT_RDWR);
	sl->fd = CURL_SOCKET_BAD;
	if (sl->easy != NULL)
		curl_easy_cleanup(sl->easy);
	sl->easy = NULL;
	sl->st = SL_DOWN;
	sl->inlen = 0;
	nt_buf_reset(&sl->out);
	sl->off = 0;
}

/*
 * The session broke.  A mail under way that got no reply yet starts once
 * more on a new session (once); one that did failed for now.  The slot
 * sets up a new session for what is left when it next makes progress.
 */
static void
session_lost(struct slot *sl, const char *why)
{
	slot_drop(sl);
	for (int k = 0; k < 2; k++) {
		struct mail *m = &sl->m[sl->head ^ k];

		if (m->st == M_FREE || m->st == M_WAITING)
			continue;
		if (!m->heard && !m->renewed) {
			m->renewed = true;
			m->st = M_WAITING;
			m->want = 0;
		}
	}
	/* In order: the front one first.  One the server already refused
	 * keeps that refusal (a 550, then the server hung up: still a dead
	 * letter, with the 550's text). */
	while (front(sl) != NULL && front(sl)->st != M_WAITING) {
		const struct mail *f = front(sl);

		if (f->fail_code != 0)
			mail_end(sl, f->outcome, NULL);
		else
			mail_end(sl, NT_TEMPFAIL, why);
	}
	slot_timer(sl);
	if (sl->n > 0)
		event_active(sl->go, EV_TIMEOUT, 0);
}

/* ---- writing ------------------------------------------------------------ */

/* Writes what out holds, or waits for the socket; false if the session
 * broke (then it is handled). */
static bool
slot_flush(struct slot *sl)
{
	if (nt_buf_finish(&sl->out) != 0) {
		session_lost(sl, "out of memory");
		return false;
	}
	while (sl->off < sl->out.n) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(sl->easy, sl->out.p + sl->off,
		                             sl->out.n - sl->off, &n);

		if (rc == CURLE_AGAIN) {
			event_add(sl->wr, NULL);
			return true;
		}
		if (rc != CURLE_OK) {
			char why[NT_WHY_MAX];

			snprintf(why, sizeof why,
			         "sending to the SMTP server: %s",
			         curl_easy_strerror(rc));
			session_lost(sl, why);
			return false;
		}
		sl->off += n;
	}
	event_del(sl->wr);
	return true;
}

/* Puts a mail's first commands in out: all three when pipelining. */
static void
add_start(struct slot *sl, struct mail *m)
{
	nt_buf *b = out_begin(sl);

	m->st = M_MAIL;
	m->want = sl->pipelining ? 3 : 1;
	m->heard = false;
	m->fail_code = 0;
	nt_buf_adds(b, "MAIL FROM:");
	nt_buf_adds(b, sl->s->mail_from);
	nt_buf_adds(b, "\r\n");
	if (sl->pipelining) {
		nt_buf_adds(b, "RCPT TO:");
		nt_buf_adds(b, m->rcpt);
		nt_buf_adds(b, "\r\nDATA\r\n");
	}
}

/* One command for the front mail, which waits for its reply. */
static bool
say(struct slot *sl, struct mail *m, enum mail_state st, const char *a,
    const char *b)
{
	nt_buf *o = out_begin(sl);

	m->st = st;
	m->want = 1;
	nt_buf_adds(o, a);
	nt_buf_adds(o, b);
	nt_buf_adds(o, "\r\n");
	return slot_flush(sl);
}

/* ---- replies ------------------------------------------------------------ */

/* The server's words with every address they quote ("<pat@example.org>:
 * Recipient address rejected") replaced by "address": they go to logs
 * and dead letters, which never name a recipient. */
static void
scrub(char *out, size_t cap, const char *text, size_t n)
{
	/* Only what cannot be inside an address ends a token: quotes,
	 * apostrophes and parentheses can ("o'brien@..."). */
	static const char delim[] = " <>,;\t";
	size_t o = 0, i = 0;

	while (i < n && o + 1 < cap) {
		size_t j = i;

		while (j < n &&
		       memchr(delim, text[j], sizeof delim - 1) == NULL)
			j++;
		if (j == i) {
			out[o++] = text[i++];
			continue;
		}
		if (memchr(text + i, '@', j - i) != NULL) {
			o += (size_t)snprintf(out + o, cap - o, "address");
			o = o < cap ? o : cap - 1;
		} else {
			while (i < j && o + 1 < cap)
				out[o++] = text[i++];
		}
		i = j;
	}
	out[o] = '\0';
}

/* Notes the first refusal of a mail: its code and the server's words.
 * A 5xx is the mail's own end, except to MAIL FROM (our sender is the
 * same for every mail: a relay that refuses it refuses them all) and a
 * 530 (authentication required): those are about our setup, and are
 * retried like a refused login. */
static void
note_refusal(struct mail *m, long code, const char *text, size_t n)
{
	char words[201];
	bool setup = m->st == M_MAIL || code == 530;

	if (m->fail_code != 0)
		return;
	while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n'))
		n--;
	m->fail_code = code;
	m->outcome =
	    code >= 500 && code <= 599 && !setup ? NT_PERMFAIL : NT_TEMPFAIL;
	scrub(words, sizeof words, text, n);
	snprintf(m->why, sizeof m->why, "smtp %ld: %s", code, words);
}

/* The message of the front mail, and the next mail's first commands
 * behind it when pipelining (RFC 2920 lets them follow the message). */
static bool
send_message(struct slot *sl, struct mail *m)
{
	struct mail *next = behind(sl);

	m->st = M_DOT;
	m->want = 1;
	add_body(out_begin(sl), m->msg, m->len);
	if (sl->pipelining && next != NULL && next->st == M_WAITING &&
	    mono_ms() <= next->start_by) {
		next->t0 = mono_ms();
		add_start(sl, next);
	}
	return slot_flush(sl);
}

/* One whole reply (its last line); false when the session is gone. */
static bool
on_reply(struct slot *sl, long code, const char *line, size_t n)
{
	struct mail *m = front(sl);
	bool ok = code >= 200 && code <= 299;

	/* Replies come in the order of the commands: the front mail's
	 * first, then those of the one behind it. */
	if (m != NULL && m->want == 0)
		m = behind(sl);
	if (m == NULL || m->want == 0) {
		session_lost(sl, "SMTP server: a reply nobody asked for");
		return false;
	}
	m->heard = true;
	m->want--;
	switch (m->st) {
	case M_MAIL:
		if (!ok)
			note_refusal(m, code, line, n);
		if (sl->pipelining) {
			m->st = M_RCPT;
			return true;
		}
		if (!ok)
			return say(sl, m, M_RSET, "RSET", "");
		return say(sl, m, M_RCPT, "RCPT TO:", m->rcpt);
	case M_RCPT:
		if (!ok)
			note_refusal(m, code, line, n);
		if (sl->pipelining) {
			m->st = M_DATA;
			return true;
		}
		if (m->fail_code != 0)
			return say(sl, m, M_RSET, "RSET", "");
		return say(sl, m, M_DATA, "DATA", "");
	case M_DATA:
		/* The mail before has ended: this one is in front. */
		if (code != 354) {
			note_refusal(m, code, line, n);
			return say(sl, m, M_RSET, "RSET", "");
		}
		if (m->fail_code != 0) {
			/* DATA accepted though MAIL or RCPT was not
			 * (pipelined): ending the session aborts it. */
			slot_drop(sl);
			mail_end(sl, m->outcome, NULL);
			session_lost(sl, "aborted");
			return false;
		}
		return send_message(sl, m);
	case M_DOT:
		if (ok)
			mail_end(sl, NT_SENT, "sent");
		else {
			note_refusal(m, code, line, n);
			mail_end(sl, m->outcome, NULL);
		}
		return true;
	case M_RSET:
		if (!ok) {
			slot_drop(sl);
			mail_end(sl, m->outcome, NULL);
			session_lost(sl, "SMTP server: RSET refused");
			return false;
		}
		mail_end(sl, m->outcome, NULL);
		return true;
	default:
		session_lost(sl, "SMTP server: a reply nobody asked for");
		return false;
	}
}

int
nt_smtp_reply_line(const char *buf, size_t len, size_t *used, long *code,
                   bool *last)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n;

	*used = 0;
	if (nl == NULL)
		return 0;
	n = (size_t)(nl - buf) + 1;
	if (n < 5 || buf[0] < '2' || buf[0] > '5' || buf[1] < '0' ||
	    buf[1] > '9' || buf[2] < '0' || buf[2] > '9' ||
	    (buf[3] != ' ' && buf[3] != '-' && buf[3] != '\r'))
		return SS_EBADREQ;
	*used = n;
	*code = (buf[0] - '0') * 100 + (buf[1] - '0') * 10 + (buf[2] - '0');
	*last = buf[3] != '-';
	return 1;
}

/* Takes the whole replies out of in; false when the session is gone. */
static bool
parse_replies(struct slot *sl)
{
	size_t start = 0, n;
	long code;
	bool last;
	int rv;

	while ((rv = nt_smtp_reply_line(sl->in + start, sl->inlen - start, &n,
	                                &code, &last)) == 1) {
		const char *line = sl->in + start;

		start += n;
		if (!last)
			continue; /* more lines of the same reply */
		if (!on_reply(sl, code, line, n))
			return false;
	}
	if (rv < 0) {
		session_lost(sl, "SMTP server: malformed reply");
		return false;
	}
	memmove(sl->in, sl->in + start, sl->inlen - start);
	sl->inlen -= start;
	return true;
}

/* The session's socket is readable. */
static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct slot *sl = arg;

	(void)fd;
	(void)what;
	for (;;) {
		size_t n = 0;
		CURLcode rc;

		if (sl->inlen == sizeof sl->in) {
			session_lost(sl, "SMTP server: reply too long");
			break;
		}
		rc = curl_easy_recv(sl->easy, sl->in + sl->inlen,
		                    sizeof sl->in - sl->inlen, &n);
		if (rc == CURLE_AGAIN)
			break;
		if (front(sl) == NULL || front(sl)->st == M_WAITING) {
			/* Idle: the server closed the session or said why it
			 * will (421).  The next mail gets a new one. */
			slot_drop(sl);
			break;
		}
		if (rc != CURLE_OK || n == 0) {
			session_lost(sl, rc != CURLE_OK
			                     ? curl_easy_strerror(rc)
			                     : "the SMTP server closed the "
			                       "connection");
			break;
		}
		sl->inlen += n;
		if (!parse_replies(sl))
			break;
	}
	slot_pump(sl);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct slot *sl = arg;

	(void)fd;
	(void)what;
	slot_flush(sl);
	slot_pump(sl);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct slot *sl = arg;
	char why[NT_WHY_MAX];

	(void)fd;
	(void)what;
	snprintf(why, sizeof why,
	         "timeout: the SMTP server did not finish within %lld ms",
	         (long long)sl->s->cfg->smtp_timeout_ms);
	/* The front mail failed; the one behind may start again. */
	front(sl)->renewed = true;
	front(sl)->heard = true;
	session_lost(sl, why);
	slot_pump(sl);
}

static void
on_go(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	slot_pump(arg);
}

/* ---- setting a session up (a pool thread, then the loop) ---------------- */

/* Runs on a pool thread, inside a connect: notes whether the server's
 * last EHLO answer offered PIPELINING (a new EHLO, after STARTTLS, starts
 * over).  curl hands over one protocol line at a time. */
static int
on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
	struct slot *sl = arg;

	(void)e;
	if (type == CURLINFO_HEADER_OUT && size >= 4 &&
	    strncasecmp(data, "EHLO", 4) == 0)
		sl->pipelining = false;
	else if (type == CURLINFO_HEADER_IN && size >= 14 &&
	         (memcmp(data, "250-", 4) == 0 ||
	          memcmp(data, "250 ", 4) == 0) &&
	         strncasecmp(data + 4, "PIPELINING", 10) == 0 &&
	         (size == 14 || data[14] == '\r' || data[14] == '\n' ||
	          data[14] == ' '))
		sl->pipelining = true;
	return 0;
}

/* Runs on a pool thread: a daemon that is closing cuts a connect short. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
            curl_off_t ulnow)
{
	struct slot *sl = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&sl->s->closing) ? 1 : 0;
}

static long
use_ssl(const char *starttls)
{
	if (strcmp(starttls, "required") == 0)
		return CURLUSESSL_ALL;
	if (strcmp(starttls, "try") == 0)
		return CURLUSESSL_TRY;
	return CURLUSESSL_NONE;
}

/* A new easy handle that sets a session up and stops there. */
static int
easy_new(struct slot *sl)
{
	const nt_settings *c = sl->s->cfg;
	long connect_ms =
	    c->smtp_timeout_ms < 10000 ? (long)c->smtp_timeout_ms : 10000L;
	CURL *e;
	int bad = 0;

	if ((sl->easy = e = curl_easy_init()) == NULL)
		return SS_ENOMEM;
	bad |= curl_easy_setopt(e, CURLOPT_URL, c->smtp_url);
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	bad |= curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_USE_SSL, use_ssl(c->smtp_starttls));
	bad |=
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->smtp_timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	/* Bounds the QUIT of a session closed at exit. */
	bad |= curl_easy_setopt(e, CURLOPT_SERVER_RESPONSE_TIMEOUT,
	                        (long)((c->smtp_timeout_ms + 999) / 1000));
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFODATA, sl);
	/* The protocol lines of the setup, for PIPELINING; no output. */
	bad |= curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
	bad |= curl_easy_setopt(e, CURLOPT_DEBUGDATA, sl);
	bad |= curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, sl->err);
	if (c->smtp_user[0] != '\0') {
		bad |= curl_easy_setopt(e, CURLOPT_USERNAME, c->smtp_user);
		bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, c->smtp_password);
	}
	if (c->smtp_ca_file[0] != '\0')
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, c->smtp_ca_file);
	return bad ? SS_EINTERNAL : 0;
}

/* Runs on a pool thread. */
static void
connect_run(void *arg)
{
	struct slot *sl = arg;

	sl->pipelining = false;
	sl->err[0] = '\0';
	sl->rc = curl_easy_perform(sl->easy);
	sl->smtp_code = 0;
	curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &sl->smtp_code);
}

/* A set-up failed: the mails it was for hear why (not one that a caller
 * hands over meanwhile). */
static void
connect_failed(struct slot *sl, enum nt_outcome out, const char *why)
{
	int n = sl->n;

	slot_drop(sl);
	while (n-- > 0)
		mail_end(sl, out, why);
}

static void
connected(void *arg)
{
	struct slot *sl = arg;
	nt_smtp *s = sl->s;
	curl_socket_t fd = CURL_SOCKET_BAD;
	char why[NT_WHY_MAX];

	if (atomic_load(&s->closing))
		return;
	if (sl->rc != CURLE_OK) {
		if (sl->smtp_code != 0)
			snprintf(
			    why, sizeof why, "smtp %ld: %.200s", sl->smtp_code,
			    sl->err[0] ? sl->err : curl_easy_strerror(sl->rc));
		else
			snprintf(why, sizeof why, "%.200s",
			         sl->err[0] ? sl->err
			                    : curl_easy_strerror(sl->rc));
		connect_failed(sl, NT_TEMPFAIL, why);
		slot_pump(sl); /* a mail handed over meanwhile */
		return;
	}
	curl_easy_setopt(sl->easy, CURLOPT_VERBOSE, 0L);
	if (curl_easy_getinfo(sl->easy, CURLINFO_ACTIVESOCKET, &fd) !=
	        CURLE_OK ||
	    fd == CURL_SOCKET_BAD ||
	    (sl->rd = event_new(s->d->base, fd, EV_READ | EV_PERSIST,
	                        on_readable, sl)) == NULL ||
	    (sl->wr = event_new(s->d->base, fd, EV_WRITE | EV_PERSIST,
	                        on_writable, sl)) == NULL ||
	    event_add(sl->rd, NULL) != 0) {
		connect_failed(sl, NT_TEMPFAIL,
		               "cannot watch the SMTP session");
		slot_pump(sl);
		return;
	}
	sl->fd = fd;
	sl->st = SL_UP;
	slot_pump(sl);
}

/* ---- making progress ---------------------------------------------------- */

/*
 * Whatever the slot can do now: set a session up for its mails, or start
 * the front mail on the session.  A mail that can no longer start in time
 * ends as NT_LATE; one whose clock ran out while its session was set up
 * ends as a timeout.
 */
static void
slot_pump(struct slot *sl)
{
	struct mail *m;
	int64_t now;
	int rv;

	while ((m = front(sl)) != NULL && m->st == M_WAITING &&
	       sl->st != SL_CONNECTING) {
		now = mono_ms();
		if (m->t0 == 0 && now > m->start_by) {
			mail_end(sl, NT_LATE, "waited too long for a slot");
			continue;
		}
		if (m->t0 == 0)
			m->t0 = now;
		if (now >= m->t0 + sl->s->cfg->smtp_timeout_ms) {
			mail_end(sl, NT_TEMPFAIL,
			         "timeout: setting up the SMTP session took "
			         "too long");
			continue;
		}
		if (sl->st == SL_DOWN) {
			if ((rv = easy_new(sl)) != 0 ||
			    (rv = ss_work_submit(sl->s->pool, connect_run,
			                         connected, sl)) != 0) {
				connect_failed(sl, NT_TEMPFAIL,
				               "cannot set an SMTP session up");
				continue;
			}
			sl->st = SL_CONNECTING;
			return;
		}
		add_start(sl, m);
		slot_timer(sl);
		if (!slot_flush(sl))
			continue; /* broke: the mails were dealt with */
		return;
	}
}

/* ---- the pool of slots -------------------------------------------------- */

int
nt_smtp_open(nt_smtp **out, ss_daemon *d, const nt_settings *cfg,
             const nt_from *from)
{
	nt_smtp *s;
	int rv = SS_ENOMEM;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SS_ENOMEM;
	s->d = d;
	s->cfg = cfg;
	atomic_init(&s->closing, false);
	snprintf(s->mail_from, sizeof s->mail_from, "<%s>", from->addr);
	s->nx = (int)cfg->concurrency;
	if ((s->x = calloc((size_t)s->nx, sizeof(*s->x))) == NULL)
		goto fail;
	for (int i = 0; i < s->nx; i++) {
		struct slot *sl = &s->x[i];

		sl->s = s;
		sl->fd = CURL_SOCKET_BAD;
		sl->st = SL_DOWN;
		if ((sl->tmo = evtimer_new(d->base, on_timeout, sl)) == NULL ||
		    (sl->go = event_new(d->base, -1, 0, on_go, sl)) == NULL)
			goto fail;
	}
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
	/* Connects still running (the drain deadline passed) stop at their
	 * next progress call; no mail reports back from here on. */
	atomic_store(&s->closing, true);
	ss_work_close(s->pool);
	for (int i = 0; s->x != NULL && i < s->nx; i++) {
		struct slot *sl = &s->x[i];

		if (sl->st == SL_UP && sl->n == 0) {
			/* A session between mails says QUIT. */
			event_free(sl->rd);
			event_free(sl->wr);
			sl->rd = sl->wr = NULL;
			sl->fd = CURL_SOCKET_BAD;
		}
		slot_drop(sl);
		if (sl->tmo != NULL)
			event_free(sl->tmo);
		if (sl->go != NULL)
			event_free(sl->go);
		nt_buf_free(&sl->out);
	}
	free(s->x);
	free(s);
}

int
nt_smtp_send(nt_smtp *s, const char *rcpt, const char *msg, size_t len,
             int64_t start_by, nt_sent_fn fn, void *arg)
{
	struct slot *sl = NULL;
	struct mail *m;
	int best = 0;

	/* An open idle session first, then an idle slot, then a place
	 * behind a mail whose message has not gone out yet (it can follow
	 * that message when pipelining), then any place behind one. */
	for (int i = 0; i < s->nx; i++) {
		struct slot *c = &s->x[i];
		int score = c->n == 0   ? (c->st == SL_UP ? 4 : 3)
		            : c->n == 1 ? (c->m[c->head].st < M_DOT ? 2 : 1)
		                        : 0;

		if (score > best) {
			best = score;
			sl = c;
		}
	}
	if (sl == NULL)
		return SS_ETOOMANY;
	m = &sl->m[(sl->head + sl->n) & 1];
	memset(m, 0, sizeof(*m));
	snprintf(m->rcpt, sizeof m->rcpt, "<%s>", rcpt);
	m->st = M_WAITING;
	m->msg = msg;
	m->len = len;
	m->fn = fn;
	m->arg = arg;
	m->start_by = start_by;
	sl->n++;
	/* Nothing happens from here: fn is never called from within. */
	if (sl->n == 1)
		event_active(sl->go, EV_TIMEOUT, 0);
	return 0;
}
