/*
 * services/notify/notify.h - the modules of the notify daemon.
 *
 *   job.c       decodes a job read from the stream (untrusted bytes)
 *   template.c  parses the operator's templates and renders them
 *   mime.c      builds the RFC 5322 / MIME message
 *   smtp.c      SMTP sessions set up by libcurl, mail sent on the loop
 *   worker.c    the queue: reading, claiming, retries, dead letters, acks
 *   buf.c       a growable byte buffer
 *
 * Every function returns 0 or a negative SS_E* code.  A job that can never
 * be sent as it is (it does not decode, a var is missing, a header would
 * carry CR or LF) is SS_EUNPROC with a reason; SS_ENOMEM is ours.
 */
#ifndef SS_NOTIFY_NOTIFY_H
#define SS_NOTIFY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <msgpack.h>

#include "runtime/config.h"
#include "runtime/daemon.h"
#include "runtime/mailq.h"
#include "runtime/redis.h"
#include "runtime/seal.h"

#define NT_GROUP       "notify"
#define NT_DEAD_STREAM "notify:dead"
/* A job's keys carry the hash tag {notify:jobs}: they live in the Redis
 * Cluster slot of the stream itself, so one script can check or finish
 * several jobs and ack their entries (worker.c).  The job key holds the
 * delivery sending it, then "sent". */
#define NT_KEY_TAG      "{" SS_MAILQ_STREAM "}"
#define NT_JOB_PREFIX   "notify:" NT_KEY_TAG ":job:"
#define NT_TRIES_PREFIX "notify:" NT_KEY_TAG ":tries:"
#define NT_SENT_VALUE   "sent"
#define NT_NTEMPLATES   9
#define NT_WHY_MAX      256

typedef struct nt_settings {
	ss_common_settings common; /* first: see runtime/common.c */
	char *smtp_url;
	char *smtp_starttls;
	char *smtp_user;
	char *smtp_password;
	char *smtp_ca_file;
	char *from;
	char *templates;
	char *mail_key;
	int64_t smtp_timeout_ms;
	int64_t concurrency;
	int64_t max_tries;
	int64_t retry_min_ms;
	int64_t retry_max_ms;
	int64_t claim_idle_ms;
	int64_t block_ms;
	int64_t consumer_idle_ms;
	int64_t sent_ttl_ms;
	int64_t dead_max;
} nt_settings;

extern const struct ss_cfg_table nt_settings_table;

/* ---- buf.c -------------------------------------------------------------- */

typedef struct nt_buf {
	char *p;
	size_t n;
	size_t cap;
	bool oom; /* an append failed: the content is incomplete */
} nt_buf;

void nt_buf_free(nt_buf *b);
void nt_buf_reset(nt_buf *b);
void nt_buf_add(nt_buf *b, const void *p, size_t n);
void nt_buf_adds(nt_buf *b, const char *s);
void nt_buf_addc(nt_buf *b, char c);
/* NUL-terminates (not counted in n); SS_ENOMEM if any append failed. */
int nt_buf_finish(nt_buf *b);

/* ---- job.c -------------------------------------------------------------- */

typedef struct nt_var {
	const char *name;
	size_t nlen;
	const char *val;
	size_t vlen;
} nt_var;

/* The var of vars named name (n bytes), or NULL (template.c). */
const nt_var *nt_var_find(const nt_var *vars, size_t nvars, const char *name,
                          size_t n);

typedef struct nt_job {
	msgpack_unpacked up;
	unsigned char *plain; /* the opened box, which vars point into */
	size_t plainlen;
	char id[SS_MAIL_ID_LEN + 1];
	char template[64 + 1];
	char to[SS_MAIL_ADDR_MAX + 1];
	char bounce_to[SS_MAIL_ADDR_MAX + 1]; /* "" when none */
	int64_t created_at;
	nt_var vars[SS_MAIL_MAX_VARS];
	size_t nvars;
} nt_job;

/*
 * Decodes a job (runtime/mailq.h): opens its box with the mail key, then
 * decodes the mail inside.  j owns the opened mail, which its var names
 * and values point into; nt_job_free() wipes it.  SS_EUNPROC with the
 * reason in why for anything that is not a valid job, a box that does not
 * open included; then j needs no nt_job_free(), and j->id is the job's id
 * if that field was valid (for the dead letter), else "".
 */
int nt_job_decode(nt_job *j, const ss_seal_key *key, const void *buf,
                  size_t len, char *why, size_t whylen);
/* The second half: decodes an opened mail of the job id (valid).  Var
 * names and values point into buf, which must outlive j; j->plain stays
 * NULL.  For tests and the fuzzer, which reach the mail's checks without
 * a key. */
int nt_job_decode_mail(nt_job *j, const char *id, const void *buf, size_t len,
                       char *why, size_t whylen);
void nt_job_free(nt_job *j);

/* bounce.c: the mail.undelivered notice of a job given up (refused: the
 * server refused it; else it gave up after its tries).  Due when the
 * job names a bounce_to and is no such notice itself.  The notice's id is
 * derived from the job's (nt_bounce_id), so queueing it twice sends one
 * mail.  nt_bounce_push queues it (fn gets the XADD's answer); SS_EBADREQ
 * when it is not due or cannot be made. */
bool nt_bounce_due(const nt_job *j);
void nt_bounce_id(const char *id, char out[SS_MAIL_ID_LEN + 1]);
int nt_bounce_push(ss_redis *r, const ss_seal_key *key, const nt_job *j,
                   const char *why, bool refused, int64_t now_s, ss_redis_fn fn,
                   void *arg);

/* ---- template.c --------------------------------------------------------- */

typedef struct nt_tpl nt_tpl;

enum nt_esc {
	NT_ESC_TEXT,   /* verbatim */
	NT_ESC_HTML,   /* & < > " ' escaped */
	NT_ESC_HEADER, /* verbatim, but CR, LF and other controls refused */
};

/*
 * A template text: literal bytes, {{name}} placeholders, sections
 * {{#name}}...{{/name}} that render only when the var is present and not
 * empty, and inverted sections {{^name}}...{{/name}} that render only when
 * it is not.  Names are [a-z0-9_]; spaces inside the braces are allowed.
 */
int nt_tpl_parse(nt_tpl **out, const char *src, size_t len, char *why,
                 size_t whylen);
void nt_tpl_free(nt_tpl *t);
/* Appends the rendering; SS_EUNPROC names a missing var or a bad value. */
int nt_tpl_render(const nt_tpl *t, const nt_var *vars, size_t nvars,
                  enum nt_esc esc, nt_buf *out, char *why, size_t whylen);

typedef struct nt_mailtpl {
	char name[32];
	nt_tpl *subject; /* the first line of the .txt, after "Subject:" */
	nt_tpl *text;    /* the rest of the .txt */
	nt_tpl *html;
} nt_mailtpl;

typedef struct nt_templates {
	nt_mailtpl t[NT_NTEMPLATES];
} nt_templates;

int nt_mailtpl_parse(nt_mailtpl *m, const char *name, const char *txt,
                     size_t txtlen, const char *html, size_t htmllen, char *why,
                     size_t whylen);
void nt_mailtpl_free(nt_mailtpl *m);
/* Loads <dir>/<name>.txt and .html for every name of SS_MAIL_TEMPLATES. */
int nt_templates_load(nt_templates *ts, const char *dir, char *why,
                      size_t whylen);
void nt_templates_free(nt_templates *ts);
const nt_mailtpl *nt_templates_get(const nt_templates *ts, const char *name);

typedef struct nt_rendered {
	nt_buf subject;
	nt_buf text;
	nt_buf html;
} nt_rendered;

int nt_mailtpl_render(const nt_mailtpl *m, const nt_var *vars, size_t nvars,
                      nt_rendered *out, char *why, size_t whylen);
void nt_rendered_free(nt_rendered *r);

/* ---- mime.c ------------------------------------------------------------- */

typedef struct nt_from {
	char addr[SS_MAIL_ADDR_MAX + 1];
	char name[128]; /* display name, UTF-8; "" for none */
} nt_from;

/* "Display Name <addr>" or "addr"; SS_EBADREQ with a reason. */
int nt_from_parse(nt_from *f, const char *s, char *why, size_t whylen);

/* "Tue, 04 Nov 2025 09:05:00 +0000" (RFC 5322 date-time, UTC). */
void nt_mime_date(char out[40], time_t t);
/* Appends s as quoted-printable with CRLF line breaks (LF, CR or CRLF in
 * s are line breaks), lines of at most 76 characters. */
void nt_mime_qp(nt_buf *out, const char *s, size_t n);
/* Appends "Name: value" folded with CRLF SP; value as RFC 2047 encoded
 * words (UTF-8, base64) when it is not short printable ASCII. */
void nt_mime_header(nt_buf *out, const char *name, const char *value, size_t n);

typedef struct nt_mail {
	const nt_from *from;
	const char *to;
	const char *id; /* Message-ID <id@studyshare> */
	const nt_rendered *r;
	time_t date;
} nt_mail;

/* The whole message, CRLF line ends, multipart/alternative. */
int nt_mime_build(nt_buf *out, const nt_mail *m);

/* ---- smtp.c ------------------------------------------------------------- */

enum nt_outcome {
	NT_SENT = 0,
	NT_TEMPFAIL = 1, /* try again later */
	NT_PERMFAIL = 2, /* the server refused this mail for good */
	NT_LATE = 3,     /* not sent: it could not start by its start_by */
};

typedef struct nt_smtp nt_smtp;

/* Called on the loop when a transfer ends, never from nt_smtp_send();
 * why says what failed. */
typedef void (*nt_sent_fn)(void *arg, enum nt_outcome outcome, const char *why);

int nt_smtp_open(nt_smtp **out, ss_daemon *d, const nt_settings *cfg,
                 const nt_from *from);
void nt_smtp_close(nt_smtp *s);
/* Hands one mail to a slot: one that is free, else behind the mail a
 * slot sends (each slot takes two).  It must start by start_by (CLOCK_
 * MONOTONIC ms), else it ends as NT_LATE unsent; once started it ends
 * within --smtp-timeout.  msg must stay valid until fn.  SS_ETOOMANY when
 * every slot holds two. */
int nt_smtp_send(nt_smtp *s, const char *rcpt, const char *msg, size_t len,
                 int64_t start_by, nt_sent_fn fn, void *arg);
/* Checks smtp-url, smtp-starttls and the like; SS_EBADREQ names one. */
int nt_smtp_check(const nt_settings *cfg, char *why, size_t whylen);
/*
 * Reads one reply line from the server's bytes: "ddd" (2xx..5xx), then
 * " ", "-" (more lines of the same reply follow) or CR, up to LF.
 * 1: a line of *used bytes, its code and whether it ends the reply;
 * 0: no whole line yet; SS_EBADREQ: not a reply line (the session is
 * then dropped).  Multi-line replies are read line by line.
 */
int nt_smtp_reply_line(const char *buf, size_t len, size_t *used, long *code,
                       bool *last);

/* ---- worker.c ----------------------------------------------------------- */

typedef struct nt_worker nt_worker;

int nt_worker_start(nt_worker **out, ss_daemon *d, const nt_settings *cfg,
                    const ss_seal_key *key, const nt_templates *tpl,
                    const nt_from *from, nt_smtp *smtp);
/* After ss_daemon_run() and nt_smtp_close(). */
void nt_worker_close(nt_worker *w);
/* The retry delay before try n+1 (n >= 1): retry-min * 2^(n-1) capped at
 * retry-max, then scaled by a random factor in [0.5, 1) (jitter). */
int64_t nt_backoff_ms(const nt_settings *cfg, int64_t tries, uint32_t rnd);
/* Parks a temporarily failed delivery for its retry (worker.c has the
 * contract); shown for its tests. */
extern ss_script nt_retry_script;

#endif
