/*
 * services/notify/mime.c - the message on the wire (RFC 5322, MIME).
 *
 * nt_mime_build() writes one multipart/alternative message with CRLF line
 * ends: Date, Message-ID <id@studyshare>, From, To, Subject, MIME-Version,
 * Auto-Submitted (RFC 3834: no auto-replies to us), then a text/plain and a
 * text/html part, both UTF-8 and quoted-printable.
 *
 * Why these choices:
 * - Quoted-printable keeps every line under 77 characters and never
 *   produces "=_" (an '=' is always followed by two hex digits or a line
 *   break), so a boundary that starts with "=_" cannot occur in a part;
 *   128 random bits after it keep it unique anyway.  A '.' or "From " at
 *   the start of a line is encoded too, for relays that mangle those.
 * - A header value that is not short printable ASCII goes out as RFC 2047
 *   encoded words (UTF-8, base64) of at most 39 bytes each, split between
 *   characters, one per folded line, so no line exceeds 78 characters.
 * - Header values never carry CR or LF: the template renderer refuses such
 *   vars in the subject, the job decoder such addresses, and nt_from_parse
 *   such display names.  This file assumes it and checks nothing again.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "services/notify/notify.h"

#define NT_QP_LINE                                                             \
	76 /* characters per encoded line, soft break '=' included             \
	    */
#define NT_EW_CHUNK   39 /* input bytes per encoded word: 52 base64 chars */
#define NT_HDR_FOLD   78
#define NT_HDR_WORD   70 /* a longer run without space is encoded instead */
#define NT_BOUNDARY_B 16

static const char hex[] = "0123456789ABCDEF";

void
nt_mime_date(char out[40], time_t t)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
	                                   "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
	                                     "May", "Jun", "Jul", "Aug",
	                                     "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	/* By hand: strftime's %a and %b follow the locale. */
	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	         days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- quoted-printable --------------------------------------------------- */

/* The encoder goes a character at a time; its output is staged in buf
 * and appended to out in large pieces (a buffer append per character was
 * a sixth of the daemon's CPU per mail). */
typedef struct qp {
	nt_buf *out;
	size_t col;
	size_t n; /* staged in buf */
	char buf[512];
} qp;

static void
qp_put(qp *q, const char *s, size_t n)
{
	if (q->n + n > sizeof q->buf) {
		nt_buf_add(q->out, q->buf, q->n);
		q->n = 0;
	}
	memcpy(q->buf + q->n, s, n);
	q->n += n;
}

static void
qp_emit(qp *q, const char *tok, size_t n)
{
	/* Leave room for the '=' of a soft break. */
	if (q->col + n > NT_QP_LINE - 1) {
		qp_put(q, "=\r\n", 3);
		q->col = 0;
	}
	qp_put(q, tok, n);
	q->col += n;
}

static void
qp_escape(qp *q, unsigned char c)
{
	char tok[3] = {'=', hex[c >> 4], hex[c & 15]};

	qp_emit(q, tok, 3);
}

/* Would a literal character start a line (after a soft break maybe)? */
static bool
qp_bol(const qp *q)
{
	return q->col == 0 || q->col + 1 > NT_QP_LINE - 1;
}

static bool
at_break(const char *s, size_t n, size_t i)
{
	return i == n || s[i] == '\r' || s[i] == '\n';
}

void
nt_mime_qp(nt_buf *out, const char *s, size_t n)
{
	qp q = {.out = out};

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char lit = (char)c;

		if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			qp_put(&q, "\r\n", 2);
			q.col = 0;
		} else if ((c == ' ' || c == '\t') && at_break(s, n, i + 1)) {
			qp_escape(&q, c); /* trailing space would be lost */
		} else if (qp_bol(&q) &&
		           (c == '.' || (c == 'F' && n - i >= 5 &&
		                         memcmp(s + i, "From ", 5) == 0))) {
			qp_escape(&q, c);
		} else if (c == ' ' || c == '\t' ||
		           (c >= 33 && c <= 126 && c != '=')) {
			qp_emit(&q, &lit, 1);
		} else {
			qp_escape(&q, c);
		}
	}
	nt_buf_add(out, q.buf, q.n);
}

/* ---- headers ------------------------------------------------------------ */

static bool
plain_ascii(const char *s, size_t n)
{
	size_t run = 0;

	if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			return false;
		if (c == '=' && i + 1 < n && s[i + 1] == '?')
			return false;
		run = c == ' ' ? 0 : run + 1;
		if (run > NT_HDR_WORD)
			return false;
	}
	return true;
}

/* Printable ASCII folded at spaces; col is where the value starts. */
static void
fold_ascii(nt_buf *out, const char *s, size_t n, size_t col)
{
	size_t i = 0;

	while (i < n) {
		const char *sp = memchr(s + i + 1, ' ', n - i - 1);
		size_t w = sp ? (size_t)(sp - (s + i)) : n - i;

		/* A word starts with its space; fold before that space. */
		if (col + w > NT_HDR_FOLD && i > 0) {
			nt_buf_add(out, "\r\n", 2);
			col = 0;
		}
		nt_buf_add(out, s + i, w);
		col += w;
		i += w;
	}
}

/* The length of a chunk of at most max bytes that ends between characters. */
static size_t
utf8_chunk(const char *s, size_t n, size_t max)
{
	size_t k = n < max ? n : max;

	if (k == n)
		return k;
	while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
		k--;
	return k > 0 ? k : (n < max ? n : max);
}

static void
encoded_words(nt_buf *out, const char *s, size_t n)
{
	char b64[sodium_base64_ENCODED_LEN(NT_EW_CHUNK,
	                                   sodium_base64_VARIANT_ORIGINAL)];
	bool first = true;

	while (n > 0) {
		size_t k = utf8_chunk(s, n, NT_EW_CHUNK);

		sodium_bin2base64(b64, sizeof b64, (const unsigned char *)s, k,
		                  sodium_base64_VARIANT_ORIGINAL);
		if (!first)
			nt_buf_add(out, "\r\n ", 3);
		nt_buf_adds(out, "=?UTF-8?B?");
		nt_buf_adds(out, b64);
		nt_buf_adds(out, "?=");
		first = false;
		s += k;
		n -= k;
	}
}

void
nt_mime_header(nt_buf *out, const char *name, const char *value, size_t n)
{
	size_t col = strlen(name) + 2;

	nt_buf_adds(out, name);
	nt_buf_add(out, ": ", 2);
	if (plain_ascii(value, n))
		fold_ascii(out, value, n, col);
	else
		encoded_words(out, value, n);
	nt_buf_add(out, "\r\n", 2);
}

/* ---- From --------------------------------------------------------------- */

int
nt_from_parse(nt_from *f, const char *s, char *why, size_t whylen)
{
	const char *lt = strrchr(s, '<');
	size_t n = strlen(s), nlen;

	memset(f, 0, sizeof(*f));
	if (lt == NULL) {
		if (!ss_mail_addr_ok(s, n))
			goto bad_addr;
		memcpy(f->addr, s, n);
		return 0;
	}
	if (n == 0 || s[n - 1] != '>')
		goto bad_addr;
	if (!ss_mail_addr_ok(lt + 1, (size_t)(s + n - 1 - (lt + 1))))
		goto bad_addr;
	memcpy(f->addr, lt + 1, (size_t)(s + n - 1 - (lt + 1)));
	nlen = (size_t)(lt - s);
	while (nlen > 0 && s[nlen - 1] == ' ')
		nlen--;
	if (nlen >= 2 && s[0] == '"' && s[nlen - 1] == '"') {
		s++;
		nlen -= 2;
	}
	if (nlen >= sizeof f->name || !ss_mail_utf8_ok(s, nlen)) {
		snprintf(why, whylen,
		         "display name: UTF-8 of at most %zu bytes expected",
		         sizeof f->name - 1);
		return SS_EBADREQ;
	}
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
			snprintf(why, whylen,
			         "display name: no quotes, backslashes or "
			         "control characters");
			return SS_EBADREQ;
		}
	}
	memcpy(f->name, s, nlen);
	return 0;
bad_addr:
	snprintf(why, whylen,
	         "expected \"Display Name <address>\" or \"address\" with a "
	         "plain address (local@domain)");
	return SS_EBADREQ;
}

static bool
needs_quotes(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == ' ' ||
		      strchr("!#$%&'*+-/=?^_`{|}~", *s) != NULL))
			return true;
	return false;
}

static void
from_header(nt_buf *out, const nt_from *f)
{
	size_t n = strlen(f->name);

	if (n == 0) {
		nt_buf_adds(out, "From: ");
		nt_buf_adds(out, f->addr);
		nt_buf_add(out, "\r\n", 2);
		return;
	}
	nt_buf_adds(out, "From: ");
	if (!plain_ascii(f->name, n)) {
		encoded_words(out, f->name, n);
		nt_buf_add(out, "\r\n ", 3);
	} else if (needs_quotes(f->name)) {
		/* nt_from_parse() let no '"' or '\\' through. */
		nt_buf_addc(out, '"');
		nt_buf_add(out, f->name, n);
		nt_buf_add(out, "\" ", 2);
	} else {
		nt_buf_add(out, f->name, n);
		nt_buf_addc(out, ' ');
	}
	nt_buf_addc(out, '<');
	nt_buf_adds(out, f->addr);
	nt_buf_add(out, ">\r\n", 3);
}

/* ---- the message -------------------------------------------------------- */

static void
part(nt_buf *out, const char *boundary, const char *type, const nt_buf *body)
{
	nt_buf_add(out, "--", 2);
	nt_buf_adds(out, boundary);
	nt_buf_adds(out, "\r\nContent-Type: ");
	nt_buf_adds(out, type);
	nt_buf_adds(out, "; charset=utf-8\r\n"
	                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	nt_mime_qp(out, body->p, body->n);
	nt_buf_add(out, "\r\n", 2);
}

int
nt_mime_build(nt_buf *out, const nt_mail *m)
{
	unsigned char rnd[NT_BOUNDARY_B];
	char boundary[3 + 11 + 2 * NT_BOUNDARY_B + 1];
	char rhex[2 * NT_BOUNDARY_B + 1];
	char date[40];

	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(rhex, sizeof rhex, rnd, sizeof rnd);
	snprintf(boundary, sizeof boundary, "=_studyshare_%s", rhex);
	nt_mime_date(date, m->date);

	nt_buf_reset(out);
	nt_buf_adds(out, "Date: ");
	nt_buf_adds(out, date);
	nt_buf_adds(out, "\r\nMessage-ID: <");
	nt_buf_adds(out, m->id);
	nt_buf_adds(out, "@studyshare>\r\n");
	from_header(out, m->from);
	nt_buf_adds(out, "To: ");
	nt_buf_adds(out, m->to);
	nt_buf_add(out, "\r\n", 2);
	nt_mime_header(out, "Subject", m->r->subject.p, m->r->subject.n);
	nt_buf_adds(out, "MIME-Version: 1.0\r\n"
	                 "Auto-Submitted: auto-generated\r\n"
	                 "Content-Type: multipart/alternative;\r\n"
	                 " boundary=\"");
	nt_buf_adds(out, boundary);
	nt_buf_adds(out, "\"\r\n\r\n");
	part(out, boundary, "text/plain", &m->r->text);
	part(out, boundary, "text/html", &m->r->html);
	nt_buf_add(out, "--", 2);
	nt_buf_adds(out, boundary);
	nt_buf_add(out, "--\r\n", 4);
	return nt_buf_finish(out);
}
