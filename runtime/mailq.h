/*
 * runtime/mailq.h - queueing an email for the notify workers.
 *
 * Email is never sent by the daemon that wants it: a job is appended to the
 * Redis stream "notify:jobs" (XADD, field "job") and the notify workers send
 * it.  The stream is the durable queue: a job is acknowledged by a worker
 * only after the SMTP server accepted the mail, so nothing is lost when a
 * worker dies.
 *
 * A job is one msgpack map:
 *   {"v": 1,
 *    "id": "<32 lower-case hex>",      idempotency key and Message-ID
 *    "template": "share.invitation",   one of SS_MAIL_TEMPLATES
 *    "to": "someone@example.org",
 *    "vars": {"name": "value", ...},   strings only; the template's inputs
 *    "created_at": <unix seconds>}
 *
 * Never put a password in vars: no template shows one.
 */
#ifndef SS_RUNTIME_MAILQ_H
#define SS_RUNTIME_MAILQ_H

#include <stddef.h>

#include "proto/envelope.h"
#include "runtime/redis.h"

#define SS_MAILQ_STREAM "notify:jobs"
#define SS_MAIL_ID_LEN  32

/*
 * The templates notify knows (services/notify/templates/<name>.{txt,html}):
 *   share.invitation    a study was shared to an address without an account:
 *                       vars sharer_name, organisation, message, register_url,
 *                       study_description
 *   share.notice        a study was shared to a user's worklist: vars
 *                       sharer_name, worklist_name, message, study_description
 *   guestlink.recipient a guest link for the recipient: vars sharer_name,
 *                       url, message, expires_at
 *   guestlink.viewed    a use of a link, to its creator: vars link_id, time,
 *                       addr, user_agent, recipient
 *   guestlink.locked    a link locked by wrong passwords, to its creator:
 *                       vars link_id, time, addr, attempts
 *   upload.received     files arrived through an upload link, to its creator:
 *                       vars link_id, time, studies, files
 */
#define SS_MAIL_TEMPLATES                                                      \
	"share.invitation", "share.notice", "guestlink.recipient",             \
	    "guestlink.viewed", "guestlink.locked", "upload.received"

typedef struct ss_mail {
	const char *template;
	const char *to;
	const char *const *vars; /* name, value, name, value, ..., NULL */
} ss_mail;

/*
 * Encodes a job (a fresh id is written to id_out, which may be NULL) into p.
 * SS_EBADREQ when the template is unknown, to is not an address, or any
 * value carries CR or LF where a header would (to) — notify refuses those too.
 */
int ss_mail_encode(ss_pack *p, const ss_mail *m,
                   char id_out[SS_MAIL_ID_LEN + 1]);

/* Encodes and XADDs the job; fn gets the XADD reply (the stream entry id). */
int ss_mailq_push(ss_redis *r, const ss_mail *m, ss_redis_fn fn, void *arg,
                  char id_out[SS_MAIL_ID_LEN + 1]);

#endif
