/*
 * services/notify/template.c - the mail templates: parsing and rendering.
 *
 * Each template is two files an operator may restyle without rebuilding:
 * <name>.txt, whose first line is "Subject: ..." (one blank line after it
 * is skipped) and whose rest is the plain-text body, and <name>.html.  A
 * text is literal bytes with placeholders:
 *
 *   {{name}}             the var's value (HTML-escaped in the .html, with
 *                        line breaks as <br>; verbatim in the .txt)
 *   {{#name}}..{{/name}} a section, rendered only when the var is present
 *                        and not empty (sections nest, 8 deep at most)
 *   {{^name}}..{{/name}} an inverted section, rendered only when it is not:
 *                        what a mail says without an optional var (a
 *                        subject naming the link when there is no study)
 *
 * A placeholder outside a section that tests it is required: a job without
 * the var is refused (SS_EUNPROC, "missing var 'name'").  In the subject a
 * value with CR, LF or another control character is refused too: it would
 * end the header (header injection).  Parsing is strict so that a typo in
 * a template stops the daemon at start-up instead of mailing "{{nmae}}".
 * The parser reads operator files, but it is written as for untrusted
 * bytes (bounded, no recursion) and is fuzzed with the jobs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/errors.h"
#include "services/notify/notify.h"

#define NT_TPL_FILE_MAX (256 * 1024)
#define NT_TPL_DEPTH    8

enum tk_kind { TK_LIT, TK_VAR, TK_BEGIN, TK_END };

struct tk {
	enum tk_kind kind;
	const char *p; /* literal bytes or the var name, in t->src */
	size_t n;
	size_t end;    /* TK_BEGIN: index of its TK_END */
	bool inverted; /* TK_BEGIN: {{^name}}, rendered when the var is not */
	unsigned line;
};

struct nt_tpl {
	char *src;
	struct tk *tk;
	size_t ntk;
	size_t cap;
};

static const char *const names[] = {SS_MAIL_TEMPLATES};
_Static_assert(sizeof names / sizeof names[0] == NT_NTEMPLATES,
               "NT_NTEMPLATES must count SS_MAIL_TEMPLATES");

static void why_fmt(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
why_fmt(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* ---- parsing ------------------------------------------------------------ */

static int
tk_push(nt_tpl *t, enum tk_kind kind, const char *p, size_t n, unsigned line)
{
	struct tk *tk;

	if (t->ntk == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;

		if ((tk = realloc(t->tk, cap * sizeof(*tk))) == NULL)
			return SS_ENOMEM;
		t->tk = tk;
		t->cap = cap;
	}
	tk = &t->tk[t->ntk++];
	tk->kind = kind;
	tk->p = p;
	tk->n = n;
	tk->end = 0;
	tk->inverted = false;
	tk->line = line;
	return 0;
}

static unsigned
count_lines(const char *p, size_t n)
{
	unsigned lines = 0;

	for (size_t i = 0; i < n; i++)
		lines += p[i] == '\n';
	return lines;
}

/* The opening tag's sigil, for messages. */
static char
sigil(const struct tk *open)
{
	return open->inverted ? '^' : '#';
}

/* One placeholder's inside, spaces trimmed: [#^/]?name. */
static int
parse_tag(nt_tpl *t, const char *p, size_t n, unsigned line, size_t *stack,
          size_t *depth, char *why, size_t whylen)
{
	enum tk_kind kind = TK_VAR;
	bool inverted = false;
	int rv;

	while (n > 0 && *p == ' ') {
		p++;
		n--;
	}
	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (n > 0 && (*p == '#' || *p == '^' || *p == '/')) {
		kind = *p == '/' ? TK_END : TK_BEGIN;
		inverted = *p == '^';
		p++;
		n--;
	}
	if (!ss_mail_var_name_ok(p, n)) {
		why_fmt(why, whylen,
		        "line %u: a placeholder must be {{name}}, {{#name}}, "
		        "{{^name}} or {{/name}} with a name of [a-z0-9_]",
		        line);
		return SS_EBADREQ;
	}
	if (kind == TK_END) {
		const struct tk *open;

		if (*depth == 0) {
			why_fmt(why, whylen,
			        "line %u: {{/%.*s}} closes nothing", line,
			        (int)n, p);
			return SS_EBADREQ;
		}
		open = &t->tk[stack[*depth - 1]];
		if (open->n != n || memcmp(open->p, p, n) != 0) {
			why_fmt(why, whylen,
			        "line %u: {{/%.*s}} does not close {{%c%.*s}} "
			        "of line %u",
			        line, (int)n, p, sigil(open), (int)open->n,
			        open->p, open->line);
			return SS_EBADREQ;
		}
	}
	if (kind == TK_BEGIN && *depth == NT_TPL_DEPTH) {
		why_fmt(why, whylen, "line %u: sections nest too deep", line);
		return SS_EBADREQ;
	}
	if ((rv = tk_push(t, kind, p, n, line)) != 0)
		return rv;
	t->tk[t->ntk - 1].inverted = inverted;
	if (kind == TK_BEGIN)
		stack[(*depth)++] = t->ntk - 1;
	else if (kind == TK_END)
		t->tk[stack[--(*depth)]].end = t->ntk - 1;
	return 0;
}

static int
parse(nt_tpl *t, size_t len, char *why, size_t whylen)
{
	size_t stack[NT_TPL_DEPTH], depth = 0, i = 0;
	const char *s = t->src;
	unsigned line = 1;
	int rv;

	while (i < len) {
		const char *open = memmem(s + i, len - i, "{{", 2);
		const char *close;
		size_t lit = open ? (size_t)(open - (s + i)) : len - i;

		if (lit > 0 && (rv = tk_push(t, TK_LIT, s + i, lit, line)) != 0)
			return rv;
		line += count_lines(s + i, lit);
		i += lit;
		if (open == NULL)
			break;
		close = memmem(open + 2, len - i - 2, "}}", 2);
		if (close == NULL) {
			why_fmt(why, whylen, "line %u: {{ without }}", line);
			return SS_EBADREQ;
		}
		if (memchr(open + 2, '\n', (size_t)(close - open - 2)) !=
		    NULL) {
			why_fmt(why, whylen,
			        "line %u: a placeholder spans lines", line);
			return SS_EBADREQ;
		}
		rv = parse_tag(t, open + 2, (size_t)(close - open - 2), line,
		               stack, &depth, why, whylen);
		if (rv != 0)
			return rv;
		i = (size_t)(close + 2 - s);
	}
	if (depth > 0) {
		const struct tk *o = &t->tk[stack[depth - 1]];

		why_fmt(why, whylen, "line %u: {{%c%.*s}} is never closed",
		        o->line, sigil(o), (int)o->n, o->p);
		return SS_EBADREQ;
	}
	return 0;
}

int
nt_tpl_parse(nt_tpl **out, const char *src, size_t len, char *why,
             size_t whylen)
{
	nt_tpl *t;
	int rv = SS_ENOMEM;

	*out = NULL;
	if (!ss_mail_utf8_ok(src, len)) {
		why_fmt(why, whylen, "not UTF-8 text");
		return SS_EBADREQ;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->src = malloc(len + 1)) == NULL)
		goto fail;
	memcpy(t->src, src, len);
	t->src[len] = '\0';
	if ((rv = parse(t, len, why, whylen)) != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	if (rv == SS_ENOMEM)
		why_fmt(why, whylen, "out of memory");
	nt_tpl_free(t);
	return rv;
}

void
nt_tpl_free(nt_tpl *t)
{
	if (t == NULL)
		return;
	free(t->tk);
	free(t->src);
	free(t);
}

/* ---- rendering ---------------------------------------------------------- */

const nt_var *
nt_var_find(const nt_var *vars, size_t nvars, const char *name, size_t n)
{
	for (size_t i = 0; i < nvars; i++)
		if (vars[i].nlen == n && memcmp(vars[i].name, name, n) == 0)
			return &vars[i];
	return NULL;
}

static void
esc_html(nt_buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '&':
			nt_buf_adds(out, "&amp;");
			break;
		case '<':
			nt_buf_adds(out, "&lt;");
			break;
		case '>':
			nt_buf_adds(out, "&gt;");
			break;
		case '"':
			nt_buf_adds(out, "&quot;");
			break;
		case '\'':
			nt_buf_adds(out, "&#39;");
			break;
		case '\r':
			/* CRLF and a lone CR are line breaks too. */
			nt_buf_adds(out, "<br>\n");
			if (i + 1 < n && s[i + 1] == '\n')
				i++;
			break;
		case '\n':
			nt_buf_adds(out, "<br>\n");
			break;
		default:
			nt_buf_addc(out, s[i]);
			break;
		}
	}
}

static bool
header_safe(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

int
nt_tpl_render(const nt_tpl *t, const nt_var *vars, size_t nvars,
              enum nt_esc esc, nt_buf *out, char *why, size_t whylen)
{
	for (size_t i = 0; i < t->ntk; i++) {
		const struct tk *tk = &t->tk[i];
		const nt_var *v;

		switch (tk->kind) {
		case TK_LIT:
			nt_buf_add(out, tk->p, tk->n);
			break;
		case TK_BEGIN:
			v = nt_var_find(vars, nvars, tk->p, tk->n);
			if ((v != NULL && v->vlen > 0) == tk->inverted)
				i = tk->end;
			break;
		case TK_END:
			break;
		case TK_VAR:
			v = nt_var_find(vars, nvars, tk->p, tk->n);
			if (v == NULL) {
				why_fmt(why, whylen, "missing var '%.*s'",
				        (int)tk->n, tk->p);
				return SS_EUNPROC;
			}
			if (esc == NT_ESC_HTML) {
				esc_html(out, v->val, v->vlen);
				break;
			}
			if (esc == NT_ESC_HEADER &&
			    !header_safe(v->val, v->vlen)) {
				why_fmt(why, whylen,
				        "var '%.*s': CR, LF or a control "
				        "character in a header (the subject)",
				        (int)tk->n, tk->p);
				return SS_EUNPROC;
			}
			nt_buf_add(out, v->val, v->vlen);
			break;
		}
	}
	return out->oom ? SS_ENOMEM : 0;
}

/* ---- a mail's three texts ----------------------------------------------- */

void
nt_mailtpl_free(nt_mailtpl *m)
{
	nt_tpl_free(m->subject);
	nt_tpl_free(m->text);
	nt_tpl_free(m->html);
	memset(m, 0, sizeof(*m));
}

/* Splits "Subject: s\n[\n]body" into the subject line and the body. */
static int
split_subject(const char *txt, size_t len, const char **subj, size_t *slen,
              const char **body, size_t *blen)
{
	static const char key[] = "Subject:";
	const char *nl;

	if (len < sizeof key - 1 || strncasecmp(txt, key, sizeof key - 1) != 0)
		return SS_EBADREQ;
	*subj = txt + sizeof key - 1;
	nl = memchr(*subj, '\n', len - (sizeof key - 1));
	*slen = nl ? (size_t)(nl - *subj) : len - (sizeof key - 1);
	*body = nl ? nl + 1 : txt + len;
	*blen = (size_t)(txt + len - *body);
	while (*slen > 0 && (**subj == ' ' || **subj == '\t')) {
		(*subj)++;
		(*slen)--;
	}
	while (*slen > 0 &&
	       ((*subj)[*slen - 1] == '\r' || (*subj)[*slen - 1] == ' ' ||
	        (*subj)[*slen - 1] == '\t'))
		(*slen)--;
	if (*slen == 0)
		return SS_EBADREQ;
	if (*blen > 0 && **body == '\n') {
		(*body)++;
		(*blen)--;
	} else if (*blen > 1 && (*body)[0] == '\r' && (*body)[1] == '\n') {
		*body += 2;
		*blen -= 2;
	}
	return 0;
}

int
nt_mailtpl_parse(nt_mailtpl *m, const char *name, const char *txt,
                 size_t txtlen, const char *html, size_t htmllen, char *why,
                 size_t whylen)
{
	const char *subj, *body;
	size_t slen, blen;
	char w[NT_WHY_MAX];
	int rv;

	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof m->name, "%s", name);
	if (split_subject(txt, txtlen, &subj, &slen, &body, &blen) != 0) {
		why_fmt(why, whylen,
		        "%s.txt: the first line must be \"Subject: ...\"",
		        name);
		return SS_EBADREQ;
	}
	if ((rv = nt_tpl_parse(&m->subject, subj, slen, w, sizeof w)) != 0) {
		why_fmt(why, whylen, "%s.txt: subject: %s", name, w);
		goto fail;
	}
	if ((rv = nt_tpl_parse(&m->text, body, blen, w, sizeof w)) != 0) {
		/* Lines count from the body; the subject is line 1 above. */
		why_fmt(why, whylen, "%s.txt (after the subject): %s", name, w);
		goto fail;
	}
	if ((rv = nt_tpl_parse(&m->html, html, htmllen, w, sizeof w)) != 0) {
		why_fmt(why, whylen, "%s.html: %s", name, w);
		goto fail;
	}
	return 0;
fail:
	nt_mailtpl_free(m);
	return rv;
}

static int
read_file(const char *path, char **out, size_t *len, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	int rv = SS_EBADREQ;

	*out = NULL;
	if (f == NULL) {
		why_fmt(why, whylen, "%s: %s", path, strerror(errno));
		return SS_EBADREQ;
	}
	if ((buf = malloc(NT_TPL_FILE_MAX + 1)) == NULL) {
		rv = SS_ENOMEM;
		why_fmt(why, whylen, "out of memory");
		goto fail;
	}
	n = fread(buf, 1, NT_TPL_FILE_MAX + 1, f);
	if (ferror(f)) {
		why_fmt(why, whylen, "%s: read error", path);
		goto fail;
	}
	if (n > NT_TPL_FILE_MAX) {
		why_fmt(why, whylen, "%s: larger than %d bytes", path,
		        NT_TPL_FILE_MAX);
		goto fail;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	fclose(f);
	return rv;
}

int
nt_templates_load(nt_templates *ts, const char *dir, char *why, size_t whylen)
{
	char path[4096];
	char *txt = NULL, *html = NULL;
	size_t txtlen = 0, htmllen = 0;
	int rv = 0;

	memset(ts, 0, sizeof(*ts));
	for (size_t i = 0; i < NT_NTEMPLATES && rv == 0; i++) {
		snprintf(path, sizeof path, "%s/%s.txt", dir, names[i]);
		if ((rv = read_file(path, &txt, &txtlen, why, whylen)) != 0)
			break;
		snprintf(path, sizeof path, "%s/%s.html", dir, names[i]);
		if ((rv = read_file(path, &html, &htmllen, why, whylen)) == 0)
			rv = nt_mailtpl_parse(&ts->t[i], names[i], txt, txtlen,
			                      html, htmllen, why, whylen);
		free(txt);
		free(html);
		txt = html = NULL;
	}
	if (rv != 0)
		nt_templates_free(ts);
	return rv;
}

void
nt_templates_free(nt_templates *ts)
{
	for (size_t i = 0; i < NT_NTEMPLATES; i++)
		nt_mailtpl_free(&ts->t[i]);
}

const nt_mailtpl *
nt_templates_get(const nt_templates *ts, const char *name)
{
	for (size_t i = 0; i < NT_NTEMPLATES; i++)
		if (ts->t[i].subject != NULL &&
		    strcmp(ts->t[i].name, name) == 0)
			return &ts->t[i];
	return NULL;
}

/* ---- rendering a mail --------------------------------------------------- */

void
nt_rendered_free(nt_rendered *r)
{
	nt_buf_free(&r->subject);
	nt_buf_free(&r->text);
	nt_buf_free(&r->html);
}

int
nt_mailtpl_render(const nt_mailtpl *m, const nt_var *vars, size_t nvars,
                  nt_rendered *out, char *why, size_t whylen)
{
	int rv;

	nt_buf_reset(&out->subject);
	nt_buf_reset(&out->text);
	nt_buf_reset(&out->html);
	if ((rv = nt_tpl_render(m->subject, vars, nvars, NT_ESC_HEADER,
	                        &out->subject, why, whylen)) != 0 ||
	    (rv = nt_tpl_render(m->text, vars, nvars, NT_ESC_TEXT, &out->text,
	                        why, whylen)) != 0 ||
	    (rv = nt_tpl_render(m->html, vars, nvars, NT_ESC_HTML, &out->html,
	                        why, whylen)) != 0)
		return rv;
	if (nt_buf_finish(&out->subject) != 0 ||
	    nt_buf_finish(&out->text) != 0 || nt_buf_finish(&out->html) != 0) {
		why_fmt(why, whylen, "out of memory");
		return SS_ENOMEM;
	}
	return 0;
}
