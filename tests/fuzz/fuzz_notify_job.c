/*
 * tests/fuzz/fuzz_notify_job.c - notify's job decoder on arbitrary bytes,
 * and what a decoded job turns into.
 *
 * Every input is decoded twice: as a job read from the stream (the
 * envelope; its box never opens, since the fuzzer holds no key), and as
 * the mail inside a box, sealed under the test key by ss_mail_seal() the
 * way a producer would, so the mail's checks behind the seal are reached.
 * The seeds (corpus_notify_job/) are such mails.  A refusal must come
 * with a reason.  A job that decodes is rendered with the shipped
 * templates (services/notify/templates, loaded once) and, if it renders,
 * built into a message, which must hold the invariants of the wire:
 * CRLF line ends only, no line over 998 bytes, and a header block made of
 * our own headers only (a line that starts anything else would be an
 * injected header).  The input is scribbled over after each step that
 * may not point into it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "runtime/mailq.h"
#include "services/notify/notify.h"

#define SECRET "fuzz-mail-key-0123456789abcdef0123456789"
#define ID     "00112233445566778899aabbccddeeff"

static ss_seal_key key;
static nt_templates tpl;
static nt_from from;
static int loaded;

static void
load(void)
{
	const char *f = __FILE__, *slash = strrchr(f, '/');
	char dir[4096], why[NT_WHY_MAX];

	snprintf(dir, sizeof dir, "%.*s/../../services/notify/templates",
	         slash ? (int)(slash - f) : 1, slash ? f : ".");
	if (sodium_init() < 0 ||
	    ss_seal_key_init(&key, SECRET, strlen(SECRET)) != 0 ||
	    nt_templates_load(&tpl, dir, why, sizeof why) != 0 ||
	    nt_from_parse(&from, "Zoë <noreply@studyshare.example>", why,
	                  sizeof why) != 0) {
		fprintf(stderr, "fuzz_notify_job: %s\n", why);
		abort();
	}
	loaded = 1;
}

static int
known_header(const char *line, size_t n)
{
	static const char *const names[] = {
	    "Date: ",    "Message-ID: ",   "From: ",           "To: ",
	    "Subject: ", "MIME-Version: ", "Auto-Submitted: ", "Content-Type: ",
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (n >= strlen(names[i]) &&
		    memcmp(line, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

static void
check_message(const nt_buf *m)
{
	size_t start = 0;
	int in_headers = 1;

	for (size_t i = 0; i < m->n; i++) {
		if (m->p[i] == '\n')
			abort(); /* a LF not after CR */
		if (m->p[i] != '\r')
			continue;
		if (i + 1 >= m->n || m->p[i + 1] != '\n')
			abort(); /* a bare CR */
		if (i - start > 998)
			abort();
		if (in_headers) {
			if (i == start)
				in_headers = 0;
			else if (m->p[start] != ' ' &&
			         !known_header(m->p + start, i - start))
				abort();
		}
		i++;
		start = i + 1;
	}
	if (start != m->n || in_headers)
		abort(); /* ends with CRLF, has a body */
}

/* Decodes a job and, when it decodes, renders and builds it. */
static void
one_job(uint8_t *copy, size_t size)
{
	char why[NT_WHY_MAX] = "";
	const nt_mailtpl *mt;
	nt_rendered r = {0};
	nt_buf msg = {0};
	nt_mail mail;
	nt_job j;
	int rv;

	rv = nt_job_decode(&j, &key, copy, size, why, sizeof why);
	if (rv != 0) {
		if (rv != SS_EUNPROC || why[0] == '\0')
			abort();
		return;
	}
	/* The job owns its opened mail: the bytes read may go. */
	memset(copy, 0x5a, size);
	if (strlen(j.id) != SS_MAIL_ID_LEN ||
	    !ss_mail_addr_ok(j.to, strlen(j.to)))
		abort();
	mt = nt_templates_get(&tpl, j.template);
	if (mt == NULL)
		abort();
	rv = nt_mailtpl_render(mt, j.vars, j.nvars, &r, why, sizeof why);
	if (rv == 0) {
		mail.from = &from;
		mail.to = j.to;
		mail.id = j.id;
		mail.r = &r;
		mail.date = 1767225599;
		if (nt_mime_build(&msg, &mail) != 0)
			abort();
		check_message(&msg);
	} else if (rv != SS_EUNPROC || why[0] == '\0') {
		abort();
	}
	nt_buf_free(&msg);
	nt_rendered_free(&r);
	nt_job_free(&j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	ss_pack p;

	if (!loaded)
		load();
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	one_job(copy, size);
	free(copy);

	ss_pack_init(&p);
	if (ss_mail_seal(&p, &key, ID, data, size) == 0) {
		if ((copy = malloc(p.sb.size)) == NULL)
			abort();
		memcpy(copy, p.sb.data, p.sb.size);
		one_job(copy, p.sb.size);
		free(copy);
	} else if (size <= SS_MAIL_PLAIN_MAX) {
		abort();
	}
	ss_pack_free(&p);
	return 0;
}
