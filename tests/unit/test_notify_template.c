/*
 * tests/unit/test_notify_template.c - template parsing and rendering, and
 * the templates shipped in services/notify/templates.
 *
 * The shipped templates are checked against runtime/mailq.h: each renders
 * with the vars documented there, each required var is really required
 * (the mail is refused without it), and the optional ones may be left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/errors.h"
#include "runtime/mailq.h"
#include "services/notify/notify.h"

/* Vars from C strings: name, value, ..., NULL. */
static size_t
mkvars(nt_var *out, const char *const *kv)
{
	size_t n = 0;

	for (; kv[2 * n] != NULL; n++) {
		out[n].name = kv[2 * n];
		out[n].nlen = strlen(kv[2 * n]);
		out[n].val = kv[2 * n + 1];
		out[n].vlen = strlen(kv[2 * n + 1]);
	}
	return n;
}

/* Renders src with vars; returns the rendering or fails the test. */
static char *
render(const char *src, const char *const *kv, enum nt_esc esc)
{
	nt_var vars[16];
	size_t n = mkvars(vars, kv);
	char why[NT_WHY_MAX] = "";
	nt_buf out = {0};
	nt_tpl *t;
	char *s;

	if (nt_tpl_parse(&t, src, strlen(src), why, sizeof why) != 0)
		fail_msg("parse \"%s\": %s", src, why);
	if (nt_tpl_render(t, vars, n, esc, &out, why, sizeof why) != 0)
		fail_msg("render \"%s\": %s", src, why);
	assert_int_equal(nt_buf_finish(&out), 0);
	s = strdup(out.p);
	nt_buf_free(&out);
	nt_tpl_free(t);
	return s;
}

static void
expect(const char *src, const char *const *kv, enum nt_esc esc,
       const char *want)
{
	char *got = render(src, kv, esc);

	assert_string_equal(got, want);
	free(got);
}

/* A render that must fail with a reason containing want. */
static void
render_fails(const char *src, const char *const *kv, enum nt_esc esc,
             const char *want)
{
	nt_var vars[16];
	size_t n = mkvars(vars, kv);
	char why[NT_WHY_MAX] = "";
	nt_buf out = {0};
	nt_tpl *t;

	assert_int_equal(nt_tpl_parse(&t, src, strlen(src), why, sizeof why),
	                 0);
	assert_int_equal(nt_tpl_render(t, vars, n, esc, &out, why, sizeof why),
	                 SS_EUNPROC);
	if (strstr(why, want) == NULL)
		fail_msg("reason \"%s\" does not contain \"%s\"", why, want);
	nt_buf_free(&out);
	nt_tpl_free(t);
}

static void
parse_fails(const char *src, const char *want)
{
	char why[NT_WHY_MAX] = "";
	nt_tpl *t = (nt_tpl *)1;

	assert_int_equal(nt_tpl_parse(&t, src, strlen(src), why, sizeof why),
	                 SS_EBADREQ);
	assert_null(t);
	if (strstr(why, want) == NULL)
		fail_msg("parse \"%s\": reason \"%s\" does not contain \"%s\"",
		         src, why, want);
}

static void
test_substitution(void **state)
{
	static const char *const kv[] = {"name", "Zoë", "n", "3", NULL};
	static const char *const none[] = {NULL};

	(void)state;
	expect("Hello {{name}}!", kv, NT_ESC_TEXT, "Hello Zoë!");
	expect("{{ name }}{{n}}{{name}}", kv, NT_ESC_TEXT, "Zoë3Zoë");
	expect("no placeholders { } }} {x}", none, NT_ESC_TEXT,
	       "no placeholders { } }} {x}");
	expect("", none, NT_ESC_TEXT, "");
	/* Unknown vars are ignored; only used ones matter. */
	expect("{{n}}", kv, NT_ESC_TEXT, "3");
}

/* The vars of the section tests: "msg" there, empty, or absent. */
static const char *const full[] = {"msg", "hi", "who", "Bo", NULL};
static const char *const empty[] = {"msg", "", "who", "Bo", NULL};
static const char *const absent[] = {"who", "Bo", NULL};

static void
test_sections(void **state)
{
	const char *src = "A{{#msg}}[{{who}}: {{msg}}]{{/msg}}B";

	(void)state;
	expect(src, full, NT_ESC_TEXT, "A[Bo: hi]B");
	expect(src, empty, NT_ESC_TEXT, "AB");
	expect(src, absent, NT_ESC_TEXT, "AB");
	/* A var used only inside a section that is skipped is not needed. */
	expect("{{#msg}}{{missing}}{{/msg}}ok", absent, NT_ESC_TEXT, "ok");
	render_fails("{{#msg}}{{missing}}{{/msg}}", full, NT_ESC_TEXT,
	             "missing var 'missing'");
	/* Nesting. */
	expect("{{#who}}<{{#msg}}{{msg}}{{/msg}}>{{/who}}", full, NT_ESC_TEXT,
	       "<hi>");
	expect("{{#who}}<{{#msg}}{{msg}}{{/msg}}>{{/who}}", absent, NT_ESC_TEXT,
	       "<>");
}

static void
test_inverted_sections(void **state)
{
	const char *src = "{{#msg}}[{{msg}}]{{/msg}}{{^msg}}<{{who}}>{{/msg}}";

	(void)state;
	/* What a mail says without the var: empty counts as absent. */
	expect(src, full, NT_ESC_TEXT, "[hi]");
	expect(src, empty, NT_ESC_TEXT, "<Bo>");
	expect(src, absent, NT_ESC_TEXT, "<Bo>");
	/* A var only inside a skipped inverted section is not needed... */
	expect("{{^msg}}{{missing}}{{/msg}}ok", full, NT_ESC_TEXT, "ok");
	/* ...but one inside a rendered one is. */
	render_fails("{{^msg}}{{missing}}{{/msg}}", absent, NT_ESC_TEXT,
	             "missing var 'missing'");
	/* Nesting, both kinds; in a header too. */
	expect("{{#who}}{{^msg}}no message from {{who}}{{/msg}}{{/who}}",
	       absent, NT_ESC_TEXT, "no message from Bo");
	expect("{{^who}}x{{#msg}}{{msg}}{{/msg}}{{/who}}y", full, NT_ESC_HEADER,
	       "y");
}

static void
test_escaping(void **state)
{
	static const char *const kv[] = {"x",
	                                 "<script>alert(\"a\" & 'b')</script>",
	                                 "m", "one\ntwo\r\nthree\rfour", NULL};

	(void)state;
	expect("<p title=\"{{x}}\">{{x}}</p>", kv, NT_ESC_HTML,
	       "<p title=\"&lt;script&gt;alert(&quot;a&quot; &amp; "
	       "&#39;b&#39;)&lt;/script&gt;\">&lt;script&gt;alert(&quot;a&"
	       "quot; &amp; &#39;b&#39;)&lt;/script&gt;</p>");
	expect("{{m}}", kv, NT_ESC_HTML, "one<br>\ntwo<br>\nthree<br>\nfour");
	/* Plain text is verbatim. */
	expect("{{x}}|{{m}}", kv, NT_ESC_TEXT,
	       "<script>alert(\"a\" & 'b')</script>|one\ntwo\r\nthree\rfour");
	/* Literal template text is never escaped. */
	expect("<b>&amp;</b>", kv, NT_ESC_HTML, "<b>&amp;</b>");
}

static void
test_header_values(void **state)
{
	static const char *const crlf[] = {"s", "Hi\r\nBcc: eve@example.org",
	                                   NULL};
	static const char *const lf[] = {"s", "Hi\nthere", NULL};
	static const char *const cr[] = {"s", "Hi\rthere", NULL};
	static const char *const nul_free_ctl[] = {"s", "a\x1b[31m", NULL};
	static const char *const tab[] = {"s", "a\tb", NULL};

	(void)state;
	render_fails("Re: {{s}}", crlf, NT_ESC_HEADER, "var 's': CR, LF");
	render_fails("Re: {{s}}", lf, NT_ESC_HEADER, "CR, LF");
	render_fails("Re: {{s}}", cr, NT_ESC_HEADER, "CR, LF");
	render_fails("Re: {{s}}", nul_free_ctl, NT_ESC_HEADER, "control");
	expect("Re: {{s}}", tab, NT_ESC_HEADER, "Re: a\tb");
	/* The same values are fine in a body. */
	expect("{{s}}", crlf, NT_ESC_TEXT, "Hi\r\nBcc: eve@example.org");
}

static void
test_missing_var(void **state)
{
	static const char *const kv[] = {"a", "1", NULL};

	(void)state;
	render_fails("{{a}} {{b}}", kv, NT_ESC_TEXT, "missing var 'b'");
	render_fails("{{b}}", kv, NT_ESC_HTML, "missing var 'b'");
}

static void
test_parse_errors(void **state)
{
	(void)state;
	parse_fails("x {{", "line 1: {{ without }}");
	parse_fails("a\nb\n{{name", "line 3: {{ without }}");
	parse_fails("{{Name}}", "placeholder must be");
	parse_fails("{{}}", "placeholder must be");
	parse_fails("{{na-me}}", "placeholder must be");
	parse_fails("{{#}}", "placeholder must be");
	parse_fails("{{^}}", "placeholder must be");
	parse_fails("{{^^a}}", "placeholder must be");
	parse_fails("{{na\nme}}", "spans lines");
	parse_fails("{{#a}}x", "{{#a}} is never closed");
	parse_fails("x\n{{/a}}", "line 2: {{/a}} closes nothing");
	parse_fails("{{#a}}{{/b}}", "{{/b}} does not close {{#a}} of line 1");
	parse_fails("{{#a}}{{#b}}{{/a}}{{/b}}", "does not close");
	parse_fails("{{^a}}x", "{{^a}} is never closed");
	parse_fails("{{^a}}{{/b}}", "{{/b}} does not close {{^a}} of line 1");
	parse_fails("{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}",
	            "nest too deep");
	parse_fails("caf\xc3", "not UTF-8");
	parse_fails("caf\xe9", "not UTF-8");
}

/* ---- whole mails -------------------------------------------------------- */

static void
test_mailtpl_subject_line(void **state)
{
	static const char *const kv[] = {"who", "Bo", NULL};
	const char *txt = "Subject:  Hello {{who}}  \r\n\r\nBody {{who}}\n";
	char why[NT_WHY_MAX];
	nt_rendered r = {0};
	nt_mailtpl m;
	nt_var vars[2];
	size_t n = mkvars(vars, kv);

	(void)state;
	assert_int_equal(nt_mailtpl_parse(&m, "t", txt, strlen(txt),
	                                  "<p>{{who}}", 10, why, sizeof why),
	                 0);
	assert_int_equal(nt_mailtpl_render(&m, vars, n, &r, why, sizeof why),
	                 0);
	assert_string_equal(r.subject.p, "Hello Bo");
	assert_string_equal(r.text.p, "Body Bo\n");
	assert_string_equal(r.html.p, "<p>Bo");
	nt_rendered_free(&r);
	nt_mailtpl_free(&m);

	assert_int_equal(nt_mailtpl_parse(&m, "t", "Hello\n\nBody", 11, "", 0,
	                                  why, sizeof why),
	                 SS_EBADREQ);
	assert_non_null(strstr(why, "t.txt: the first line must be"));
	assert_int_equal(nt_mailtpl_parse(&m, "t", "Subject:   \nBody", 16, "",
	                                  0, why, sizeof why),
	                 SS_EBADREQ);
	assert_int_equal(nt_mailtpl_parse(&m, "t", "Subject: {{x\n", 13, "", 0,
	                                  why, sizeof why),
	                 SS_EBADREQ);
	assert_non_null(strstr(why, "t.txt: subject:"));
	assert_int_equal(nt_mailtpl_parse(&m, "t", "Subject: x\n", 11,
	                                  "<p>{{#a}}", 9, why, sizeof why),
	                 SS_EBADREQ);
	assert_non_null(strstr(why, "t.html: line 1:"));
}

/* The shipped templates, and what runtime/mailq.h says about their vars. */
static const struct {
	const char *name;
	const char *required[6];
	const char *optional[8];
} shipped[NT_NTEMPLATES] = {
    {"share.invitation",
     {"sharer_name", "organisation", "register_url"},
     {"message", "study_description", "expires_at"}},
    {"share.notice",
     {"sharer_name"},
     {"message", "study_description", "app_url"}},
    {"guestlink.recipient",
     {"sharer_name", "url", "expires_at"},
     {"message", "sharer_org", "single_use", "max_uses", "dob_password"}},
    {"guestlink.viewed",
     {"link_id", "time", "addr"},
     {"user_agent", "recipient", "study_description", "quiet_until", "held",
      "held_since"}},
    {"guestlink.locked",
     {"link_id", "time", "addr", "attempts"},
     {"study_description"}},
    {"upload.locked",
     {"link_id", "time", "addr", "attempts"},
     {"worklist_name"}},
    {"upload.received",
     {"link_id", "time", "studies", "files"},
     {"worklist_name"}},
    {"upload.request",
     {"sharer_name", "url", "expires_at"},
     {"message", "worklist_name", "sharer_org"}},
    {"mail.undelivered",
     {"recipient", "what", "reason", "time"},
     {"study_description", "refused"}},
};

static void
shipped_dir(char *out, size_t len)
{
	const char *f = __FILE__;
	const char *slash = strrchr(f, '/');

	snprintf(out, len, "%.*s/../../services/notify/templates",
	         slash ? (int)(slash - f) : 1, slash ? f : ".");
}

/* Vars that only switch a section on (any non-empty value), never shown. */
static bool
is_flag(const char *name)
{
	return strcmp(name, "single_use") == 0 ||
	       strcmp(name, "dob_password") == 0 ||
	       strcmp(name, "refused") == 0;
}

/* Every var of one shipped template, each value naming its var. */
static size_t
all_vars(nt_var *vars, size_t i, char values[][64])
{
	size_t n = 0;

	for (int k = 0; k < 6 && shipped[i].required[k] != NULL; k++, n++)
		snprintf(values[n], 64, "<%s>", shipped[i].required[k]);
	for (int k = 0; k < 8 && shipped[i].optional[k] != NULL; k++, n++)
		snprintf(values[n], 64, "<%s>", shipped[i].optional[k]);
	n = 0;
	for (int k = 0; k < 6 && shipped[i].required[k] != NULL; k++, n++) {
		vars[n].name = shipped[i].required[k];
		vars[n].nlen = strlen(vars[n].name);
		vars[n].val = values[n];
		vars[n].vlen = strlen(values[n]);
	}
	for (int k = 0; k < 8 && shipped[i].optional[k] != NULL; k++, n++) {
		vars[n].name = shipped[i].optional[k];
		vars[n].nlen = strlen(vars[n].name);
		vars[n].val = values[n];
		vars[n].vlen = strlen(values[n]);
	}
	return n;
}

static void
test_shipped_templates(void **state)
{
	char dir[4096], why[NT_WHY_MAX] = "";
	nt_templates ts;

	(void)state;
	shipped_dir(dir, sizeof dir);
	if (nt_templates_load(&ts, dir, why, sizeof why) != 0)
		fail_msg("%s", why);
	for (size_t i = 0; i < NT_NTEMPLATES; i++) {
		const nt_mailtpl *m = nt_templates_get(&ts, shipped[i].name);
		nt_var vars[14], fewer[14];
		char values[14][64];
		nt_rendered r = {0};
		size_t n = all_vars(vars, i, values), nreq = 0;

		assert_non_null(m);
		assert_int_equal(
		    nt_mailtpl_render(m, vars, n, &r, why, sizeof why), 0);
		/* Every var shows up: in the text verbatim, in HTML escaped. */
		for (size_t k = 0; k < n; k++) {
			char esc[80];

			if (is_flag(vars[k].name))
				continue;
			snprintf(esc, sizeof esc, "&lt;%s&gt;", vars[k].name);
			if (strstr(r.text.p, values[k]) == NULL)
				fail_msg("%s.txt lacks %s", shipped[i].name,
				         vars[k].name);
			if (strstr(r.html.p, esc) == NULL)
				fail_msg("%s.html lacks %s", shipped[i].name,
				         vars[k].name);
		}
		assert_true(r.subject.n > 0);
		assert_null(strchr(r.subject.p, '\n'));
		/* Each required var is required. */
		while (nreq < 6 && shipped[i].required[nreq] != NULL)
			nreq++;
		for (size_t drop = 0; drop < nreq; drop++) {
			size_t m2 = 0;
			char want[96];

			for (size_t k = 0; k < n; k++)
				if (k != drop)
					fewer[m2++] = vars[k];
			assert_int_equal(nt_mailtpl_render(m, fewer, m2, &r,
			                                   why, sizeof why),
			                 SS_EUNPROC);
			snprintf(want, sizeof want, "missing var '%s'",
			         vars[drop].name);
			assert_string_equal(why, want);
		}
		/* The optional ones may all be left out. */
		assert_int_equal(
		    nt_mailtpl_render(m, vars, nreq, &r, why, sizeof why), 0);
		for (size_t k = nreq; k < n; k++)
			assert_null(strstr(r.text.p, values[k]));
		nt_rendered_free(&r);
	}
	assert_null(nt_templates_get(&ts, "nope"));
	nt_templates_free(&ts);
}

/* One shipped mail rendered with the vars kv (name, value, ..., NULL). */
static void
render_shipped(const nt_templates *ts, const char *name, const char *const *kv,
               nt_rendered *r)
{
	const nt_mailtpl *m = nt_templates_get(ts, name);
	char why[NT_WHY_MAX] = "";
	nt_var vars[16];
	size_t n = mkvars(vars, kv);

	assert_non_null(m);
	if (nt_mailtpl_render(m, vars, n, r, why, sizeof why) != 0)
		fail_msg("%s: %s", name, why);
}

static void
assert_contains(const char *name, const char *s, const char *want)
{
	if (strstr(s, want) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", name, s, want);
}

static void
assert_lacks(const char *name, const char *s, const char *unwanted)
{
	if (strstr(s, unwanted) != NULL)
		fail_msg("%s: \"%s\" has \"%s\"", name, s, unwanted);
}

/* A creator's subject names the study (or the worklist) when the mail has
 * it, and the link's id only when it has not. */
static void
test_shipped_subjects(void **state)
{
	static const char *const viewed[] = {
	    "link_id", "73452098754f92777a3c", "time",     "t", "addr",
	    "a",       "study_description",    "CT CHEST", NULL};
	static const char *const locked[] = {"link_id",
	                                     "73452098754f92777a3c",
	                                     "time",
	                                     "t",
	                                     "addr",
	                                     "a",
	                                     "attempts",
	                                     "5",
	                                     "study_description",
	                                     "CT CHEST",
	                                     NULL};
	static const char *const received[] = {
	    "link_id", "a29b", "time",          "t",         "studies", "1",
	    "files",   "2",    "worklist_name", "Radiology", NULL};
	char dir[4096], why[NT_WHY_MAX] = "";
	nt_rendered r = {0};
	nt_templates ts;
	const char *kv[16];

	(void)state;
	shipped_dir(dir, sizeof dir);
	if (nt_templates_load(&ts, dir, why, sizeof why) != 0)
		fail_msg("%s", why);
	/* Each var list ends in the optional one: cut there, it is absent. */
	memcpy(kv, viewed, sizeof viewed);
	render_shipped(&ts, "guestlink.viewed", kv, &r);
	assert_string_equal(r.subject.p,
	                    "Your guest link for CT CHEST was opened");
	kv[6] = NULL;
	render_shipped(&ts, "guestlink.viewed", kv, &r);
	assert_string_equal(r.subject.p,
	                    "Your guest link 73452098754f92777a3c was opened");

	memcpy(kv, locked, sizeof locked);
	render_shipped(&ts, "guestlink.locked", kv, &r);
	assert_string_equal(r.subject.p,
	                    "Your guest link for CT CHEST was locked");
	kv[8] = NULL;
	render_shipped(&ts, "guestlink.locked", kv, &r);
	assert_string_equal(r.subject.p,
	                    "Your guest link 73452098754f92777a3c was locked");

	memcpy(kv, received, sizeof received);
	render_shipped(&ts, "upload.received", kv, &r);
	assert_string_equal(r.subject.p, "Studies received in Radiology");
	kv[8] = NULL; /* a link made before its worklist's name was kept */
	render_shipped(&ts, "upload.received", kv, &r);
	assert_string_equal(r.subject.p,
	                    "Studies received through upload link a29b");

	memcpy(kv, locked, sizeof locked);
	kv[8] = "worklist_name";
	kv[9] = "Radiology";
	render_shipped(&ts, "upload.locked", kv, &r);
	assert_string_equal(r.subject.p,
	                    "Your upload link for Radiology was locked");
	assert_contains("upload.locked", r.text.p,
	                "73452098754f92777a3c for Radiology\nhas been locked");
	kv[8] = NULL;
	render_shipped(&ts, "upload.locked", kv, &r);
	assert_string_equal(r.subject.p,
	                    "Your upload link 73452098754f92777a3c was locked");
	nt_rendered_free(&r);
	nt_templates_free(&ts);
}

/* What the bodies say: a lock is told truthfully and for the link's kind,
 * the worklist is named when known, the invitation says when its link
 * ends, a notice says where the study is without quoting a non-name. */
static void
test_shipped_bodies(void **state)
{
	static const char *const lock[] = {
	    "link_id", "l1", "time", "t", "addr", "a", "attempts", "5", NULL};
	static const char *const received[] = {
	    "link_id", "l2", "time",          "t",         "studies", "1",
	    "files",   "2",  "worklist_name", "Radiology", NULL};
	static const char *const invitation[] = {"sharer_name",
	                                         "Al",
	                                         "organisation",
	                                         "O",
	                                         "register_url",
	                                         "u",
	                                         "expires_at",
	                                         "6 January 2027, 16:09 UTC",
	                                         NULL};
	static const char *const notice[] = {"sharer_name", "Al", NULL};
	static const char *const fallback = "They are in the worklist the "
	                                    "upload link delivers to.";
	char dir[4096], why[NT_WHY_MAX] = "";
	nt_rendered r = {0};
	nt_templates ts;
	const char *kv[16];

	(void)state;
	shipped_dir(dir, sizeof dir);
	if (nt_templates_load(&ts, dir, why, sizeof why) != 0)
		fail_msg("%s", why);
	render_shipped(&ts, "guestlink.locked", lock, &r);
	assert_contains("guestlink.locked", r.text.p,
	                "a session\nalready open keeps working");
	assert_lacks("guestlink.locked", r.text.p, "Nobody can open it");
	assert_lacks("guestlink.locked", r.text.p, "upload link");
	render_shipped(&ts, "upload.locked", lock, &r);
	assert_string_equal(r.subject.p, "Your upload link l1 was locked");
	assert_contains("upload.locked", r.text.p, "Your upload link l1");
	assert_contains("upload.locked", r.html.p, "cannot be unlocked");
	assert_lacks("upload.locked", r.text.p, "guest link");
	assert_lacks("upload.locked", r.html.p, "guest link");

	render_shipped(&ts, "upload.received", received, &r);
	assert_contains("upload.received", r.text.p,
	                "They are in the worklist \"Radiology\".");
	assert_contains("upload.received", r.html.p,
	                "<strong>Radiology</strong>");
	assert_lacks("upload.received", r.text.p, fallback);
	memcpy(kv, received, sizeof received);
	kv[8] = NULL;
	render_shipped(&ts, "upload.received", kv, &r);
	assert_contains("upload.received", r.text.p, fallback);
	assert_contains("upload.received", r.html.p, fallback);

	render_shipped(&ts, "share.invitation", invitation, &r);
	assert_contains("share.invitation", r.text.p,
	                "The link works until 6 January 2027, 16:09 UTC.");
	assert_contains("share.invitation", r.html.p,
	                "The link works until 6 January 2027, 16:09 UTC.");
	memcpy(kv, invitation, sizeof invitation);
	kv[6] = NULL; /* queued by a share that did not send it */
	render_shipped(&ts, "share.invitation", kv, &r);
	assert_lacks("share.invitation", r.text.p, "works until");

	render_shipped(&ts, "share.notice", notice, &r);
	assert_string_equal(r.subject.p, "Al shared an imaging study with you");
	assert_contains("share.notice", r.text.p, "your\npersonal worklist");
	assert_lacks("share.notice", r.text.p, "\"");
	nt_rendered_free(&r);
	nt_templates_free(&ts);
}

static void
write_file(const char *dir, const char *name, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void
test_load_errors(void **state)
{
	static const char *const names[] = {SS_MAIL_TEMPLATES};
	char dir[] = "/tmp/ss-tpl-XXXXXX", why[NT_WHY_MAX] = "", path[512];
	nt_templates ts;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* Missing files are named. */
	assert_int_equal(nt_templates_load(&ts, dir, why, sizeof why),
	                 SS_EBADREQ);
	assert_non_null(strstr(why, "share.invitation.txt"));
	for (size_t i = 0; i < NT_NTEMPLATES; i++) {
		snprintf(path, sizeof path, "%s.txt", names[i]);
		write_file(dir, path, "Subject: s\n\nbody {{x}}\n");
		snprintf(path, sizeof path, "%s.html", names[i]);
		write_file(dir, path, "<p>{{x}}</p>");
	}
	assert_int_equal(nt_templates_load(&ts, dir, why, sizeof why), 0);
	nt_templates_free(&ts);
	/* A typo in one template stops the load, naming file and line. */
	write_file(dir, "guestlink.viewed.html", "<p>\n{{#x}}\n{{/y}}</p>");
	assert_int_equal(nt_templates_load(&ts, dir, why, sizeof why),
	                 SS_EBADREQ);
	assert_non_null(strstr(why, "guestlink.viewed.html: line 3:"));
	for (size_t i = 0; i < NT_NTEMPLATES; i++) {
		snprintf(path, sizeof path, "%s/%s.txt", dir, names[i]);
		unlink(path);
		snprintf(path, sizeof path, "%s/%s.html", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_substitution),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_inverted_sections),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_header_values),
	    cmocka_unit_test(test_missing_var),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_mailtpl_subject_line),
	    cmocka_unit_test(test_shipped_templates),
	    cmocka_unit_test(test_shipped_subjects),
	    cmocka_unit_test(test_shipped_bodies),
	    cmocka_unit_test(test_load_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
