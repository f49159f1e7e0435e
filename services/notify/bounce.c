/*
 * services/notify/bounce.c - telling a mail's sender that it failed.
 *
 * A producer may name who should hear of a mail that cannot be delivered
 * (the job's "bounce_to": the clinician who made the guest link, the
 * upload link or the invitation).  When notify gives such a mail up for
 * the recipient's sake (the server refused it, or it gave up after
 * --max-tries), the worker stores the dead letter, then queues a
 * mail.undelivered job to bounce_to naming the recipient, what the mail
 * was and the server's answer, with advice for why ("refused": check the
 * address; else the address may well be right).  A mistyped patient's
 * address would otherwise fail unseen while the clinician believes the
 * images were sent; the mail server's own bounce goes to --from.  A job
 * given up for our own reasons (it does not render) is a dead letter for
 * operators only: its sender could do nothing about it.
 *
 * The notice's id is derived from the failed job's (BLAKE2b, keyed by
 * nothing secret: ids are not secrets), so a worker that dies after
 * queueing it and before its ack, and the worker that takes the job over,
 * queue the same id and notify sends one mail (its sent marker).  A
 * notice never has a bounce_to of its own: a notice that fails is only a
 * dead letter, never a loop.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "proto/utf8.h"
#include "services/notify/notify.h"

#define BOUNCE_TEMPLATE "mail.undelivered"

/* What each template's mail was, for the sender's eyes. */
static const char *
what_of(const char *template)
{
	static const struct {
		const char *t, *what;
	} w[] = {
	    {"guestlink.recipient", "the email with your guest link"},
	    {"upload.request", "the email with your upload link"},
	    {"share.invitation", "the invitation to see the study you shared"},
	    {"share.notice", "the notice of the study you shared"},
	};

	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		if (strcmp(template, w[i].t) == 0)
			return w[i].what;
	return "an email from studyshare";
}

/* The failed mail's var name, NUL-terminated in buf, or "". */
static const char *
var_of(const nt_job *j, const char *name, char *buf, size_t cap)
{
	const nt_var *v = nt_var_find(j->vars, j->nvars, name, strlen(name));

	if (v == NULL || v->vlen >= cap)
		return "";
	memcpy(buf, v->val, v->vlen);
	buf[v->vlen] = '\0';
	return buf;
}

bool
nt_bounce_due(const nt_job *j)
{
	return j->bounce_to[0] != '\0' &&
	       strcmp(j->template, BOUNCE_TEMPLATE) != 0;
}

void
nt_bounce_id(const char *id, char out[SS_MAIL_ID_LEN + 1])
{
	static const char ctx[] = "studyshare mail.undelivered:";
	unsigned char in[sizeof ctx - 1 + SS_MAIL_ID_LEN];
	unsigned char h[SS_MAIL_ID_LEN / 2];

	memcpy(in, ctx, sizeof ctx - 1);
	memcpy(in + sizeof ctx - 1, id, SS_MAIL_ID_LEN);
	crypto_generichash(h, sizeof h, in, sizeof in, NULL, 0);
	sodium_bin2hex(out, SS_MAIL_ID_LEN + 1, h, sizeof h);
}

int
nt_bounce_push(ss_redis *r, const ss_seal_key *key, const nt_job *j,
               const char *why, bool refused, int64_t now_s, ss_redis_fn fn,
               void *arg)
{
	char id[SS_MAIL_ID_LEN + 1], when[SS_MAIL_TIME_MAX];
	char study[SS_MAIL_MAX_VALUE + 1], reason[NT_WHY_MAX];
	const char *vars[] = {
	    "recipient",
	    j->to,
	    "what",
	    what_of(j->template),
	    "reason",
	    reason,
	    "time",
	    when,
	    "study_description",
	    var_of(j, "study_description", study, sizeof study),
	    "refused",
	    refused ? "1" : "",
	    NULL};
	ss_mail m = {.template = BOUNCE_TEMPLATE,
	             .to = j->bounce_to,
	             .vars = vars,
	             .id = id};

	if (!nt_bounce_due(j) || !ss_mail_id_ok(j->id, strlen(j->id)))
		return SS_EBADREQ;
	nt_bounce_id(j->id, id);
	ss_mail_time(now_s, when);
	/* A server's words may be any bytes: a mail var must be UTF-8. */
	snprintf(reason, sizeof reason, "%s", why);
	ss_utf8_scrub(reason, strlen(reason));
	return ss_mailq_push(r, key, &m, fn, arg, NULL);
}
