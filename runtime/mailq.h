/*
 * runtime/mailq.h - queueing an email for the notify workers.
 *
 * Email is never sent by the daemon that wants it: a job is appended to the
 * Redis stream "notify:jobs" (XADD, field "job") and the notify workers send
 * it.  The stream is the durable queue: a job is acknowledged by a worker
 * only after the SMTP server accepted the mail, so nothing is lost when a
 * worker dies.
 *
 * A job carries secrets (a registration link with its token, a guest
 * link's URL) and personal data until it is sent, so Redis holds it sealed
 * (runtime/seal.h) under the mail key, a secret that share, guestlink and
 * notify are configured with (--mail-key) and that is never in Redis.  A
 * job is one msgpack map:
 *   {"v": 2,
 *    "id": "<32 lower-case hex>",      idempotency key and Message-ID
 *    "box": <bin>}                     ss_seal(mail key, "mail:<id>", mail)
 * and the sealed mail is one msgpack map:
 *   {"template": "share.invitation",   one of SS_MAIL_TEMPLATES
 *    "to": "someone@example.org",
 *    "vars": {"name": "value", ...},   strings only; the template's inputs
 *    "created_at": <unix seconds>,
 *    "bounce_to": "sender@example.org"} optional: who is told, by a
 *                                        mail.undelivered, when notify
 *                                        gives this mail up (a mistyped
 *                                        recipient must not fail unseen)
 * The id is the box's context: a box moved under another id does not
 * open.  Only a holder of the mail key can make a job that opens, so write
 * access to Redis is not enough to send mail in our name.  notify refuses
 * (dead-letters, never sends) a job whose box does not open.
 *
 * Bounds (the same in the encoder and in notify's decoder, so a job that
 * encodes also decodes): "to" is an address as ss_mail_addr_ok() says; at
 * most SS_MAIL_MAX_VARS vars, names of 1..64 bytes of [a-z0-9_], values
 * valid UTF-8 without NUL of at most SS_MAIL_MAX_VALUE bytes, no name twice.
 *
 * A job id is 128 bits from libsodium's CSPRNG.  Pushing the same encoded
 * job twice (a producer retrying an XADD whose answer it never saw) sends
 * one mail: notify keeps a sent marker per id.
 *
 * Never put a password in vars: no template shows one.
 */
#ifndef SS_RUNTIME_MAILQ_H
#define SS_RUNTIME_MAILQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/envelope.h"
#include "runtime/redis.h"
#include "runtime/seal.h"

#define SS_MAILQ_STREAM   "notify:jobs"
#define SS_MAILQ_FIELD    "job"
#define SS_MAIL_ID_LEN    32
#define SS_MAIL_ADDR_MAX  254
#define SS_MAIL_MAX_VARS  64
#define SS_MAIL_VAR_MAX   64
#define SS_MAIL_MAX_VALUE (16 * 1024)
#define SS_MAIL_VERSION   2
/* The largest sealed mail (vars at their largest, plus the rest) and the
 * largest job around it. */
#define SS_MAIL_PLAIN_MAX (SS_MAIL_MAX_VARS * (SS_MAIL_MAX_VALUE + 80) + 1024)
#define SS_MAIL_JOB_MAX   (SS_MAIL_PLAIN_MAX + SS_SEAL_OVERHEAD + 64)

/*
 * The templates notify knows (services/notify/templates/<name>.{txt,html}):
 *   share.invitation    a study was shared to an address without an account:
 *                       vars sharer_name, organisation, message, register_url,
 *                       expires_at (of the registration link),
 *                       study_description
 *   share.notice        a study was shared to a user's personal worklist:
 *                       vars sharer_name, message, study_description
 *   guestlink.recipient a guest link for the recipient: vars sharer_name,
 *                       url, message, expires_at
 *   guestlink.viewed    a use of a link, to its creator: vars link_id, time,
 *                       addr, user_agent, recipient, study_description,
 *                       quiet_until, held, held_since (the bound on
 *                       notices: services/guestlink/README.md)
 *   guestlink.locked    a guest link locked by wrong passwords, to its
 *                       creator: vars link_id, time, addr, attempts,
 *                       study_description
 *   upload.locked       the same for an upload link: vars link_id, time,
 *                       addr, attempts, worklist_name
 *   upload.received     files arrived through an upload link, to its creator:
 *                       vars link_id, time, studies, files, worklist_name
 *   upload.request      an upload link for the address it was made for:
 *                       vars sharer_name, url, message, expires_at,
 *                       worklist_name (where the studies go)
 *   mail.undelivered    notify gave a mail up, to its bounce_to: vars
 *                       recipient, what (the mail, in words), reason (the
 *                       server's answer), time
 * "message", "study_description", "user_agent", "recipient" and
 * "worklist_name" may be empty or left out, and so may share.invitation's
 * "expires_at" (jobs queued by a share that did not send it yet still go
 * out); every other var is required (a job without it is refused by
 * notify and lands in the dead-letter stream).  "time" and "expires_at"
 * are written for people, by ss_mail_time(): the mails show them as they
 * are.
 */
#define SS_MAIL_TEMPLATES                                                      \
	"share.invitation", "share.notice", "guestlink.recipient",             \
	    "guestlink.viewed", "guestlink.locked", "upload.locked",           \
	    "upload.received", "upload.request", "mail.undelivered"

/* A time as mails and pages show it to people, in UTC to the minute:
 * "7 December 2026, 16:09 UTC" (unix seconds in; English month names
 * from a table, whatever the process's locale). */
#define SS_MAIL_TIME_MAX 40
void ss_mail_time(int64_t unix_s, char out[SS_MAIL_TIME_MAX]);

typedef struct ss_mail {
	const char *template;
	const char *to;
	const char *const *vars; /* name, value, name, value, ..., NULL */
	const char *bounce_to;   /* optional (NULL or ""): told if it fails */
	const char *id;          /* optional: the job's id, 32 lower-case hex (a
	                          * notice derived from another job, sent once);
	                          * NULL: a fresh one */
} ss_mail;

/*
 * Encodes a job sealed under key (a fresh id is written to id_out, which
 * may be NULL) into p.  SS_EBADREQ when the template is unknown, to is not
 * an address, or any value carries CR or LF where a header would (to) —
 * notify refuses those too.  Vars out of the bounds above are SS_EBADREQ
 * as well.
 */
int ss_mail_encode(ss_pack *p, const ss_seal_key *key, const ss_mail *m,
                   char id_out[SS_MAIL_ID_LEN + 1]);

/* Encodes and XADDs the job; fn gets the XADD reply (the stream entry id). */
int ss_mailq_push(ss_redis *r, const ss_seal_key *key, const ss_mail *m,
                  ss_redis_fn fn, void *arg, char id_out[SS_MAIL_ID_LEN + 1]);

/*
 * The two halves of the envelope, for notify and for tools.
 * ss_mail_seal packs a job {"v": 2, "id", "box"} around len bytes of an
 * already packed mail map, checking neither (a tool re-queueing a dead
 * letter, a test building a bad job); SS_EBADREQ when id is not 32
 * lower-case hex digits or the mail is larger than SS_MAIL_PLAIN_MAX.
 *
 * ss_mail_open checks a job's bytes (untrusted: any Redis client may have
 * written them) and opens its box into *plain (malloc'd; release it with
 * ss_mail_plain_free, which wipes it).  id_out gets the job's id, or ""
 * when it has none that is valid, also on failure (a dead letter names
 * it).  SS_EUNPROC with a reason in why (never quoting the input) when the
 * bytes are not a job of this version or the box does not open under key
 * and the id; SS_ENOMEM.
 */
int ss_mail_seal(ss_pack *p, const ss_seal_key *key, const char *id,
                 const void *mail, size_t len);
int ss_mail_open(const ss_seal_key *key, const void *job, size_t len,
                 char id_out[SS_MAIL_ID_LEN + 1], unsigned char **plain,
                 size_t *plainlen, char *why, size_t whylen);
void ss_mail_plain_free(unsigned char *plain, size_t len);
/* True for 32 lower-case hex digits. */
bool ss_mail_id_ok(const char *s, size_t n);

/*
 * The checks shared by the encoder and notify's decoder.
 * ss_mail_addr_ok: local@domain, at most SS_MAIL_ADDR_MAX bytes; the local
 * part a dot-atom of at most 64 bytes (letters, digits and
 * !#$%&'*+-/=?^_`{|}~, dots only between them), the domain dot-separated
 * labels of letters, digits and inner hyphens (ASCII: internationalised
 * domains in their xn-- form).  No quoted local parts, no address
 * literals, no spaces, no control characters.
 */
bool ss_mail_addr_ok(const char *s, size_t n);
bool ss_mail_template_ok(const char *s, size_t n);
bool ss_mail_var_name_ok(const char *s, size_t n);
/* Valid UTF-8 without NUL, at most SS_MAIL_MAX_VALUE bytes. */
bool ss_mail_value_ok(const char *s, size_t n);
/* Strict UTF-8 (no overlong forms, no surrogates) without NUL, any length. */
bool ss_mail_utf8_ok(const char *s, size_t n);

#endif
