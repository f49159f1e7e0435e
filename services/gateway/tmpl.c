/*
 * services/gateway/tmpl.c - the HTML templates of the pages.
 *
 * Contract (gateway.h): a template is a file under <web-root>/templates,
 * read once at start-up.  {{name}} is replaced by the escaped value, so
 * nothing a client or a daemon sent can become markup; {{{name}}} inserts
 * HTML that the gateway assembled itself from escaped pieces.  Templates
 * carry no script: the CSP allows only the web UI's own files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/buffer.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

#define NAME_MAX_LEN 64

int
gw_tmpl_load(gw_tmpl *t, const char *path)
{
	struct stat st;
	FILE *f;
	char *buf;
	size_t n;

	t->text = NULL;
	t->len = 0;
	if ((f = fopen(path, "rb")) == NULL)
		return SS_ENOTFOUND;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return SS_ENOTFOUND;
	}
	if (st.st_size > GW_TMPL_MAX) {
		fclose(f);
		return SS_ETOOLARGE;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		fclose(f);
		return SS_ENOMEM;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	buf[n] = '\0';
	t->text = buf;
	t->len = n;
	return 0;
}

void
gw_tmpl_free(gw_tmpl *t)
{
	free(t->text);
	t->text = NULL;
	t->len = 0;
}

int
gw_html_escape(struct evbuffer *out, const char *s, size_t n)
{
	size_t i, run = 0;
	const char *ent;

	for (i = 0; i < n; i++) {
		switch (s[i]) {
		case '&':
			ent = "&amp;";
			break;
		case '<':
			ent = "&lt;";
			break;
		case '>':
			ent = "&gt;";
			break;
		case '"':
			ent = "&quot;";
			break;
		case '\'':
			ent = "&#39;";
			break;
		default:
			continue;
		}
		if (evbuffer_add(out, s + run, i - run) != 0 ||
		    evbuffer_add(out, ent, strlen(ent)) != 0)
			return SS_ENOMEM;
		run = i + 1;
	}
	return evbuffer_add(out, s + run, n - run) == 0 ? 0 : SS_ENOMEM;
}

/* Placeholder names are [a-z0-9_]: anything else is text. */
static bool
name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static const char *
lookup(const char *const *vars, const char *name, size_t n)
{
	for (size_t i = 0; vars != NULL && vars[i] != NULL; i += 2) {
		if (strlen(vars[i]) == n && memcmp(vars[i], name, n) == 0)
			return vars[i + 1] != NULL ? vars[i + 1] : "";
	}
	return "";
}

int
gw_tmpl_render(const gw_tmpl *t, const char *const *vars, struct evbuffer *out)
{
	const char *p = t->text, *end = t->text + t->len, *open, *close, *v;
	size_t nopen, nname;
	bool raw;

	while (p < end) {
		open = strstr(p, "{{");
		if (open == NULL || open >= end) {
			if (evbuffer_add(out, p, (size_t)(end - p)) != 0)
				return SS_ENOMEM;
			break;
		}
		raw = open + 2 < end && open[2] == '{';
		nopen = raw ? 3 : 2;
		close = strstr(open + nopen, raw ? "}}}" : "}}");
		nname = close != NULL ? (size_t)(close - open - nopen) : 0;
		if (close == NULL || nname == 0 || nname > NAME_MAX_LEN ||
		    !name_ok(open + nopen, nname)) {
			/* Not a placeholder: copy the braces as text. */
			if (evbuffer_add(out, p, (size_t)(open - p) + 2) != 0)
				return SS_ENOMEM;
			p = open + 2;
			continue;
		}
		if (evbuffer_add(out, p, (size_t)(open - p)) != 0)
			return SS_ENOMEM;
		v = lookup(vars, open + nopen, nname);
		if (raw ? evbuffer_add(out, v, strlen(v)) != 0
		        : gw_html_escape(out, v, strlen(v)) != 0)
			return SS_ENOMEM;
		p = close + nopen;
	}
	return 0;
}
