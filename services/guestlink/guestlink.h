/*
 * services/guestlink/guestlink.h - the guestlink daemon's state, shared by
 * its modules.
 *
 * guestlink issues guest links to a study (API.md "Guest links"), lists,
 * deletes and unlocks them, and redeems them (API.md "Redeeming a guest
 * link").  Permissions come from authz, studies and their priors from
 * share; guestlink decides no permission and stores no study of its own
 * beyond the frozen view of each link.
 *
 * Redis layout (README.md "Redis keys"): every key starts with "link:"
 * and each Lua script touches the keys of one hash tag.  A link's id is
 * derived from its token (a keyed hash), so a redemption finds the link's
 * slot from the token alone and is one script call:
 *
 *   link:{<id>}               hash    the link (fields below)
 *   link:{<id>}:res           zset    password attempts under way:
 *                                     reservation id -> lease end (ms)
 *   link:{<id>}:s:<hash>      string  a viewer session (TTL)
 *   link:{ix:<wl>:<uid>}      zset    the links of a study made from a
 *                                     worklist: id -> purge time (ms)
 */
#ifndef SS_GUESTLINK_GUESTLINK_H
#define SS_GUESTLINK_GUESTLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/envelope.h"
#include "proto/fields.h"
#include "runtime/argv.h"
#include "runtime/daemon.h"
#include "runtime/metrics.h"
#include "runtime/passwd.h"
#include "runtime/pub.h"
#include "runtime/redis.h"
#include "runtime/rep.h"
#include "runtime/req.h"
#include "runtime/seal.h"
#include "runtime/token.h"
#include "runtime/work.h"

typedef struct gl_settings {
	ss_common_settings common; /* must stay first */
	char *listen;
	char *pub_listen;
	char *authz_url;
	int64_t authz_timeout_ms;
	char *share_url;
	int64_t share_timeout_ms;
	char *token_key;
	char *seal_key;
	char *mail_key;
	char *pepper;
	char *public_url;
	int64_t default_expiry_ms;
	int64_t max_expiry_ms;
	int64_t grace_ms;
	int64_t session_ttl_ms;
	int64_t view_notice_max;
	int64_t view_notice_window_ms;
	int64_t default_attempts;
	int64_t workers;
	int64_t checks_max;
} gl_settings;

extern const struct ss_cfg_table gl_settings_table;

/* The purposes of the keyed hashes of tokens (crypto.c): one
 * ss_token_hasher each in gl_server. */
enum gl_purpose {
	GL_H_LOOKUP,  /* GL_PURPOSE_LOOKUP: a guest link's lookup hash */
	GL_H_ID,      /* GL_PURPOSE_ID: every link's id */
	GL_H_SESSION, /* GL_PURPOSE_SESSION: a viewer session's key */
	GL_H_UPLOAD,  /* GL_UP_PURPOSE (upload.h): an upload link's */
	GL_NPURPOSES,
};

typedef struct gl_server {
	const gl_settings *cfg;
	ss_daemon *d;
	ss_redis *redis;
	ss_req *authz;
	ss_req *share;
	ss_rep *rep;
	ss_pub *pub;
	ss_work_pool *work;
	ss_pack scratch; /* requests are built here, then sent (copied) */
	ss_seal_key seal;
	ss_seal_key mail; /* seals email jobs (runtime/mailq.h) */
	/* --token-key with each purpose absorbed (gl_hashers_init). */
	ss_token_hasher hashers[GL_NPURPOSES];
	ss_metric *m_created, *m_deleted, *m_unlocked, *m_locked;
	ss_metric *m_used, *m_pwreq, *m_wrong, *m_gone, *m_session, *m_busy;
	int64_t checking; /* password checks and hashes under way */
	/* The view-notice bound as the redemption scripts' ARGV, written
	 * once at start (scripts.c). */
	char vn_window[24], vn_max[24];
	/* Records an action leaves behind that were lost (logged too). */
	ss_metric *m_audit_failed, *m_mail_failed;
} gl_server;

/* Bounds of the request bodies. */
#define GL_MAX_USER     64
#define GL_WL_MAX       80 /* "organisation:" + 64 */
#define GL_UID_MAX      64
#define GL_DESC_MAX     256 /* a study description, as share stores it */
#define GL_MAX_USES     1000000
#define GL_MAX_ATTEMPTS 100
#define GL_PW_MIN       4
#define GL_PW_MAX       1024
#define GL_MAX_EMAIL    254
#define GL_MAX_MESSAGE  2000
#define GL_MAX_ADDR     63
#define GL_MAX_UA       2048 /* accepted; GL_UA_KEEP bytes are kept */
#define GL_UA_KEEP      256
#define GL_MAX_NAME     200
#define GL_MAX_LIST     500 /* links listed per study and worklist */
#define GL_MAX_PRIORS   100
#define GL_RESERVE_MS   60000 /* lease of a password attempt under way */
#define GL_STORE_TRIES  3     /* fresh tokens tried on an id collision */

/* Ids, tokens and sessions. */
#define GL_ID_LEN      20 /* hex: 80 bits of a keyed hash of the token */
#define GL_SESSION_LEN (GL_ID_LEN + 1 + SS_TOKEN_LEN) /* "<id>.<token>" */
#define GL_KEY_MAX     192
#define GL_TIME_LEN    20 /* "2026-11-29T09:15:00Z" */
/* The longest expires_at taken, as the gateway's: any string up to it
 * (even an empty one) reaches gl_time_parse(), whose refusal shows the
 * expected form, instead of a length refusal that does not. */
#define GL_TIME_ARG_MAX 64

/* The longest id argument taken (delete, unlock, update): a shorter one
 * that is not an id is not_found, like an unknown one; a longer one is a
 * bad_request, as any field out of bounds. */
#define GL_ID_ARG_MAX 64

/* Purposes of the keyed hashes (runtime/token.h). */
#define GL_PURPOSE_LOOKUP  "guestlink"
#define GL_PURPOSE_ID      "guestlink.id"
#define GL_PURPOSE_SESSION "guestlink.session"

/* The one answer for every unusable link. */
#define GL_GONE_MSG "no such guest link"

/* --- the link record (link.c) -------------------------------------- */

/*
 * The fields of link:{<id>} that a listing reads, in this order (HMGET),
 * and their names in the hash.  Others: th (token hash, for lookup),
 * view (the sealed frozen study and priors), pw (the password hash),
 * by_email (where notifications go), purge (when the keys go).
 */
enum gl_field {
	GL_F_TOK,    /* sealed token; absent once deleted */
	GL_F_STUDY,  /* study uid */
	GL_F_WL,     /* worklist it was made from */
	GL_F_BY,     /* creator */
	GL_F_AT,     /* created, ms */
	GL_F_EXP,    /* expires, ms */
	GL_F_MAX,    /* max uses; 0: unlimited */
	GL_F_USES,   /* uses so far */
	GL_F_MAXPW,  /* max password attempts; 0: no password */
	GL_F_FAIL,   /* wrong passwords counted */
	GL_F_DOB,    /* "1" when the password is the birth date */
	GL_F_EMAIL,  /* recipient, "" for none */
	GL_F_MSG,    /* message, "" for none */
	GL_F_NOTIFY, /* "1": view notification */
	GL_F_PRIORS, /* "1": include priors */
	GL_F_PUIDS,  /* the frozen priors' uids, comma-separated */
	GL_F_STATE,  /* active, locked or deleted */
	GL_NFIELDS,
};

extern const char *const gl_field_names[GL_NFIELDS];

typedef struct gl_link {
	char id[GL_ID_LEN + 1];
	ss_str tok; /* sealed token; n == 0 when gone */
	ss_str study, wl, by, email, msg, puids, state;
	int64_t at_ms, exp_ms, max_uses, uses, max_pw, fail;
	bool dob, notify, priors;
} gl_link;

/* Reads an HMGET reply of gl_field_names into l (views into r).
 * SS_ENOTFOUND when the link is gone, SS_EINTERNAL when malformed. */
int gl_link_parse(gl_link *l, const char *id, const redisReply *r);

/* "active", "expired", "used_up", "locked" or "deleted". */
const char *gl_link_status(const gl_link *l, int64_t now_ms);

/* Packs the link object of API.md; can_delete < 0 leaves it out.  The
 * map has room for extra more pairs, which the caller packs after. */
int gl_link_pack(gl_server *s, ss_pack *p, const gl_link *l, int64_t now_ms,
                 int can_delete, int extra);

/* Pushes the HMGET field names onto a. */
struct ss_argv;
void gl_link_fields_push(struct ss_argv *a);

/* --- crypto.c: tokens, ids, sessions, sealed values ------------------ */

/*
 * Sets up s->hashers from s->cfg->token_key: 0, or the error of
 * ss_token_hasher_init().  main.c calls it before the loop runs, so the
 * hashers are read-only while the daemon serves (and may be used from
 * any thread).  gl_hashers_wipe() erases them at exit.
 */
int gl_hashers_init(gl_server *s);
void gl_hashers_wipe(gl_server *s);
/* The keyed hash of a token for purpose p; SS_EBADREQ when it is not a
 * token (out is then empty). */
int gl_token_hash(gl_server *s, enum gl_purpose p, const char *tok, size_t n,
                  char out[SS_TOKEN_HASH_LEN + 1]);
/* The lookup hash and id of a token; SS_EBADREQ when it is not one. */
int gl_token_ids(gl_server *s, const char *tok, size_t n,
                 char th[SS_TOKEN_HASH_LEN + 1], char id[GL_ID_LEN + 1]);
/* A fresh session "<id>.<token>" and the key it is kept under. */
int gl_session_new(gl_server *s, const char *id, char sess[GL_SESSION_LEN + 1],
                   char key[GL_KEY_MAX]);
/* The link id and key of a presented session; SS_EBADREQ when it is not
 * one. */
int gl_session_key(gl_server *s, const char *sess, size_t n,
                   char id[GL_ID_LEN + 1], char key[GL_KEY_MAX]);
/* Seals a token or a view for link id (out: len + SS_SEAL_OVERHEAD). */
int gl_seal_token(gl_server *s, const char *id, const char *tok,
                  unsigned char *out, size_t cap, size_t *outlen);
int gl_seal_view(gl_server *s, const char *id, const void *view, size_t len,
                 unsigned char **out, size_t *outlen);
/* Opens a sealed token into tok (SS_TOKEN_LEN + 1). */
int gl_open_token(gl_server *s, const char *id, const char *sealed, size_t len,
                  char tok[SS_TOKEN_LEN + 1]);
/* Opens a sealed view; *out is malloc'd (free it). */
int gl_open_view(gl_server *s, const char *id, const char *sealed, size_t len,
                 unsigned char **out, size_t *outlen);
/* True for GL_ID_LEN lower-case hex characters. */
bool gl_valid_id(const char *s, size_t n);

/* --- keys (common.c) ------------------------------------------------- */

int gl_key_link(char out[GL_KEY_MAX], const char *id, const char *suffix);
int gl_key_index(char out[GL_KEY_MAX], const char *wl, const char *uid);

/* --- scripts.c ------------------------------------------------------- */

extern ss_script gl_script_store, gl_script_index_add, gl_script_index_read,
    gl_script_redeem, gl_script_settle, gl_script_session, gl_script_delete,
    gl_script_unlock;

/* The answers of the redemption scripts (first element). */
enum gl_outcome {
	GL_GONE = 0,     /* {0} */
	GL_VIEW = 1,     /* {1, view, ttl ms, used, uses, info...} */
	GL_PWREQ = 2,    /* {2} */
	GL_CHECK = 3,    /* {3, hash, dob, abandoned, attempts, info...} */
	GL_LOCKED = 4,   /* {4, attempts, info..., abandoned, view, wlname} */
	GL_WRONG = 5,    /* {5, attempts left, attempts, info...} */
	GL_BUSY = 6,     /* {6}: the attempts left are all being checked */
	GL_OUTCOMES = 7, /* count */
};

/* The "info" part of those answers: what audit and notifications need. */
typedef struct gl_info {
	ss_str study, wl, notify, by_email, email;
} gl_info;

/* --- common.c -------------------------------------------------------- */

/* Parses body against spec, answering bad_request itself on failure. */
int gl_parse(ss_call *c, const msgpack_object *body, const ss_field_spec *spec,
             size_t n, const msgpack_object **out);
/* Redis or peer error -> what to answer. */
int gl_err(int err);
/* A peer's reply -> 0 or the error to answer. */
int gl_peer_err(int err, const ss_msg *reply);

/* Starts a request to a peer in s->scratch; pack one body map, then
 * gl_peer_send().  id: the caller's request id. */
ss_pack *gl_peer_begin(gl_server *s, const char *type, const char *id);
int gl_peer_send(gl_server *s, ss_req *peer, ss_reply_fn fn, void *arg);

/* authz.check {user, permission, worklist}; fn gets the reply. */
int gl_authz_check(gl_server *s, const char *id, const char *user,
                   const char *perm, const char *wl, ss_reply_fn fn, void *arg);
/* The "allowed" of an authz.check reply (false for anything else). */
bool gl_allowed(const ss_msg *reply);
/* After a refused check on a link's worklist: authz.worklist.get {user,
 * worklist}, which answers members only; fn gets the reply, and
 * gl_member_answer() reads it: SS_EFORBIDDEN for a member (told what they
 * lack), SS_ENOTFOUND for anyone else (the worklist, and so the link, is
 * not theirs to see), or the error of the call. */
int gl_authz_member(gl_server *s, const char *id, const char *user,
                    const char *wl, ss_reply_fn fn, void *arg);
int gl_member_answer(int err, const ss_msg *reply);

/* Appends an audit entry; detail is a JSON object (stolen: decref'd). */
struct json_t;
void gl_audit(gl_server *s, const char *reqid, const char *actor,
              const char *action, const char *id, const char *wl,
              struct json_t *detail, const char *addr);

/* Thread: loop.  For a write Redis took or refused after its action was
 * done (an audit entry, a mail): a refusal is counted on m and logged as
 * event (with the mail's template, when tpl is given); true if refused. */
bool gl_lost(ss_metric *m, const char *event, const char *tpl, int err,
             const redisReply *r);

/* Queues a mail; logs (never the vars) when it cannot.  fn may be NULL:
 * then a refusal by Redis is counted and logged too. */
struct ss_mail;
int gl_mail(gl_server *s, const char *reqid, const struct ss_mail *m,
            ss_redis_fn fn, void *arg);

/* Validation. */
bool gl_valid_worklist(const char *s, size_t n);
bool gl_valid_uid(const char *s, size_t n);
bool gl_valid_addr(const char *s, size_t n);
/* UTF-8 without control characters; line breaks and tabs when lines. */
bool gl_valid_text(const char *s, size_t n, bool lines);
/* Copies a user agent into out (GL_UA_KEEP + 1): control characters and
 * invalid UTF-8 become '?', cut at GL_UA_KEEP bytes on a boundary. */
void gl_clean_ua(const char *s, size_t n, char out[GL_UA_KEEP + 1]);
/* What the creator's mail says of a user agent: "Chrome on Windows",
 * "Firefox", "curl", or "" when no name in the table is in it.  Words
 * from a table only: the user agent is the guest's to write, and a mail
 * from studyshare must not carry a guest's text (a made-up warning with
 * a link) to the link's creator.  The audit keeps it whole. */
#define GL_UA_SUMMARY_MAX 40
void gl_ua_summary(const char *ua, char out[GL_UA_SUMMARY_MAX + 1]);
/* A birth date as a guest types it, made the stored YYYYMMDD in place:
 * spaces around it dropped, and YYYY-MM-DD, YYYY/MM/DD or YYYY.MM.DD
 * joined.  Day-first and month-first forms are left as typed (which of
 * the two is meant cannot be told), so they are wrong passwords. */
void gl_dob_typed(char *pw, size_t *n);
/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" -> ms. */
int gl_time_parse(const char *s, size_t n, int64_t *ms);

int64_t gl_now_ms(void);
void gl_time_fmt(int64_t ms, char out[GL_TIME_LEN + 1]);

/* --- owner.c: may this user manage this link? ------------------------ */

/*
 * delete and unlock need links.guest.create on the link's worklist.
 * gl_owner_check() reads the link's worklist and study (OW_READ), asks
 * authz (OW_CHECK), then calls fn: err 0 when allowed (wl and study are
 * set), SS_ENOTFOUND for no such link or one of a worklist the caller is
 * no member of, SS_EFORBIDDEN, or the error of a
 * dependency.  Embed a gl_owner in the job's state.
 */
struct gl_owner;
typedef void (*gl_owner_fn)(struct gl_owner *o, int err);

typedef struct gl_owner {
	gl_server *s;
	ss_call *c;
	gl_owner_fn fn;
	int step;
	char id[GL_ID_LEN + 1];
	char user[GL_MAX_USER + 1];
	char wl[GL_WL_MAX + 1];
	char study[GL_UID_MAX + 1];
	char addr[GL_MAX_ADDR + 1];
} gl_owner;

/* Parses {user, id, addr?} into o and starts the check; answers the call
 * itself (and returns non-zero) when the body is refused (a malformed id:
 * not_found, as an unknown one). */
int gl_owner_start(gl_owner *o, gl_server *s, ss_call *c,
                   const msgpack_object *body, gl_owner_fn fn);

/* --- handlers, one module each -------------------------------------- */

void gl_handle_create(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_list(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_delete(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_unlock(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_redeem(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_session(ss_call *c, const msgpack_object *body, void *arg);

/* redeem.c and session.c: the success answer, spliced from a view. */
int gl_reply_view(gl_server *s, ss_call *c, const char *id,
                  const redisReply *view, const char *sess, int64_t ttl_ms);
/* The one answer for every unusable link. */
void gl_reply_gone(gl_server *s, ss_call *c);

/* gl_token_ids, or an upload token's (upload.h). */
typedef int (*gl_token_ids_fn)(gl_server *s, const char *tok, size_t n,
                               char th[SS_TOKEN_HASH_LEN + 1],
                               char id[GL_ID_LEN + 1]);

/* --- mint.c: what creating a guest link and an upload link share ----- */

/* The expiry from expires_at or expires_in (at most one), or the
 * default; refused past --max-expiry.  why says what is wrong. */
int gl_parse_expiry(const gl_settings *cfg, int64_t now,
                    const msgpack_object *at, const msgpack_object *in,
                    int64_t *exp_ms, char *why, size_t whylen);
/* Text without control characters into dst (room for the spec's max). */
int gl_parse_text(const msgpack_object *o, char *dst, const char *name,
                  char *why, size_t whylen);
/* A client address into dst (GL_MAX_ADDR + 1). */
int gl_parse_addr(const msgpack_object *o, char *dst, char *why, size_t whylen);
/* A UTF-8 password into dst (GL_PW_MAX + 1), its length in *n. */
int gl_parse_password(const msgpack_object *o, char *dst, size_t *n, char *why,
                      size_t whylen);
/* An email address into dst (GL_MAX_EMAIL + 1). */
int gl_parse_email(const msgpack_object *o, char *dst, char *why,
                   size_t whylen);
/* Thread: worker.  A new link's password hash (ss_passwd_hash, with the
 * pepper); the password (its whole buffer) is wiped. */
int gl_hash_password(gl_server *s, char password[GL_PW_MAX + 1], size_t n,
                     char hash[SS_PASSWD_HASH_LEN]);
/* Queues fn (which calls gl_hash_password) on the workers, counted with
 * the redemptions' password checks under --checks-max; done must call
 * gl_hash_done() first.  SS_ETOOMANY past the bound (nothing queued): the
 * caller answers it with gl_reply_busy(). */
int gl_hash_submit(gl_server *s, ss_work_fn fn, ss_done_fn done, void *arg);
void gl_hash_done(gl_server *s);
/* Answers too_many_requests, retry in 1 s: the workers are full. */
void gl_reply_busy(ss_call *c);
/* A new link's token: made, hashed (by ids), sealed into these. */
typedef struct gl_mint {
	gl_token_ids_fn ids; /* the kind's lookup hash */
	const char *wl;      /* the index entry: gl_key_index(wl, index) */
	const char *index;
	int64_t exp_ms;
	char *token;           /* SS_TOKEN_LEN + 1 */
	char *th;              /* SS_TOKEN_HASH_LEN + 1 */
	char *id;              /* GL_ID_LEN + 1 */
	unsigned char *sealed; /* cap bytes */
	size_t cap;
	size_t *sealed_len;
} gl_mint;
/* A fresh token and its id added to the worklist's index
 * (gl_script_index_add, whose reply goes to fn). */
int gl_mint_token(gl_server *s, const gl_mint *m, ss_redis_fn fn, void *arg);

/* The hash of a new link (gl_script_store). */
typedef struct gl_new_link {
	const char *kind; /* NULL: a guest link's hash has no "kind" */
	const char *id, *th;
	const unsigned char *tok, *view; /* sealed */
	size_t tok_len, view_len;
	const char *study, *wl, *by, *by_email, *email, *msg, *puids;
	const char *wl_name; /* an upload link's "wlname"; NULL or "": none */
	const char *pw;      /* the password hash, NULL without one */
	int64_t at, exp_ms, max_uses, max_pw;
	bool dob, notify, priors;
} gl_new_link;
int gl_store_link(gl_server *s, const gl_new_link *n, ss_redis_fn fn,
                  void *arg);
/* A "field", value pair of a link's hash. */
void gl_argv_kv(ss_argv *a, const char *k, const char *v);
void gl_argv_ki(ss_argv *a, const char *k, int64_t v);

/* What differs between the redemption of a guest link and of an upload
 * link (upload_redeem.c); redeem.c runs both with the same steps. */
typedef struct gl_redeem_kind {
	const char *gone_msg; /* the not_found message */
	/* The token's lookup hash: each kind its own purpose. */
	gl_token_ids_fn token_ids;
	/* Pairs in the sealed view, spliced into the success answer. */
	uint32_t view_pairs;
	const char *ev_used;                   /* log event of a use */
	const char *a_use, *a_failed, *a_lock; /* audit actions */
	/* The creator's mail when wrong passwords lock the link: each kind
	 * its own, as what a lock means and what to do next differ. */
	const char *lock_mail;
	/* The link shows a study: audit entries carry its study_uid, and a
	 * use is mailed to the owner (if asked) and published. */
	bool study;
} gl_redeem_kind;

/* guestlink.redeem and guestlink.upload.redeem: {token, password?, addr,
 * user_agent, session?}; answers the call. */
void gl_redeem(const gl_redeem_kind *k, gl_server *s, ss_call *c,
               const msgpack_object *body);

#endif
