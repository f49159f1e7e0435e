/*
 * services/share/share.h - the share daemon's state, shared by its modules.
 *
 * share owns studies (stored from study.arrived events), which worklist
 * holds which study, shares between worklists, and email invitations for
 * people without an account.  Every permission question goes to authz;
 * share never decides one itself.
 *
 * Two REP endpoints: --ingest-listen takes study.arrived from other
 * services, --listen the internal RPC of the gateway and guestlink.
 * Events go out on --pub-listen.
 *
 * Redis layout (README.md "Redis keys" explains the choices): every key
 * starts with "share:" and one Lua script only ever touches keys of one
 * hash tag, so the layout works on Redis Cluster.
 *
 *   share:{study:<uid>}            string  the study, sealed (study.h)
 *   share:{study:<uid>}:shares     list    share records (msgpack)
 *   share:{wl:<worklist>}:studies  hash    uid -> sealed study
 *   share:{wl:<worklist>}:index    zset    listing, newest first (lex)
 *   share:{wl:<worklist>}:pri:<h>  zset    one patient's studies there,
 *                                          scored by date (h: keyed hash
 *                                          of the patient id)
 *   share:{mail:<h>}:inv           hash    invitations of one address
 *   share:{mail:<h>}:pending       hash    shares waiting for it
 *   share:{tok:<hmac>}             string  invitation token -> address
 */
#ifndef SS_SHARE_SHARE_H
#define SS_SHARE_SHARE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/envelope.h"
#include "proto/fields.h"
#include "runtime/daemon.h"
#include "runtime/pub.h"
#include "runtime/redis.h"
#include "runtime/rep.h"
#include "runtime/req.h"
#include "runtime/strmap.h"
#include "services/share/study.h"

typedef struct sh_settings {
	ss_common_settings common; /* must stay first */
	char *listen;
	char *ingest_listen;
	char *pub_listen;
	char *authz_url;
	int64_t authz_timeout_ms;
	char *token_key;
	char *seal_key;
	char *mail_key;
	char *public_url;
	int64_t invite_ttl_ms;
	int64_t worklist_cache_ms;
	bool notices;
} sh_settings;

extern const struct ss_cfg_table sh_settings_table;

typedef struct sh_server {
	const sh_settings *cfg;
	ss_daemon *d;
	ss_redis *redis;
	ss_req *authz;
	ss_rep *rep;
	ss_rep *ingest;
	ss_pub *pub;
	ss_pack scratch;  /* requests are built here, then sent (copied) */
	ss_seal_key seal; /* seals the stored studies */
	ss_seal_key mail; /* seals email jobs (runtime/mailq.h) */
	unsigned char patient_key[SH_PKEY_LEN]; /* the priors index's hash */
	ss_strmap *wlcache;  /* worklist -> expiry (double *), see ingest.c */
	size_t wlcache_size; /* entries, for the bound */
} sh_server;

/* Limits of the RPC bodies. */
#define SH_MAX_TARGETS  100
#define SH_MAX_MESSAGE  2000
#define SH_MAX_PAGE     500
#define SH_DEF_PAGE     50
#define SH_MAX_PRIORS   100
#define SH_MAX_HISTORY  1000 /* share records kept per study */
#define SH_MAX_ADDR     63
#define SH_MAX_EMAIL    254
#define SH_MAX_USER     64
#define SH_MAX_NAME     200
#define SH_MAX_PASSWORD 1024

/* Purpose of invitation tokens in their keyed hash (runtime/token.h). */
#define SH_TOKEN_PURPOSE "invite"

/* --- authz.c: requests to authz ----------------------------------- */

/* Starts a request to authz in s->scratch; pack exactly one body map,
 * then sh_authz_send().  id ties authz's logs to ours: the caller's id. */
ss_pack *sh_authz_begin(sh_server *s, const char *type, const char *id);
/* 0 when fn will be called; else the error (fn will not be).  The
 * request may travel in one bus.batch with the others of this loop turn
 * (authz answers from memory); authz.register, which hashes a password,
 * goes with sh_authz_send_alone() so that it holds up nobody. */
int sh_authz_send(sh_server *s, ss_reply_fn fn, void *arg);
int sh_authz_send_alone(sh_server *s, ss_reply_fn fn, void *arg);
/* Maps a transport error or an error reply to the SS_E* to answer. */
int sh_authz_err(int err, const ss_msg *reply);

/* --- store.c: the scripts on the worklist slot --------------------- */

extern ss_script sh_script_deliver, sh_script_list, sh_script_priors,
    sh_script_invite, sh_script_claim, sh_script_release, sh_script_finish;

/*
 * Puts a study (its sealed blob, as share:{study:<uid>} holds it) into a
 * worklist: one script on the worklist's slot.  fn gets an integer reply:
 * 1 when the worklist did not hold it, 0 when it did (nothing changed).
 */
int sh_store_deliver(sh_server *s, const char *wl, const sh_study *st,
                     const char *blob, size_t bloblen, ss_redis_fn fn,
                     void *arg);

/*
 * The priors of st (the study as stored: it names its patient's set) in a
 * worklist: one script.  fn gets [[prior blob, ...], [prior uid, ...]],
 * newest first.  SS_ENOTFOUND when st has no patient id or no date: no
 * priors then (fn will not be called).
 */
int sh_store_priors(sh_server *s, const char *wl, const sh_study *st,
                    ss_redis_fn fn, void *arg);

/*
 * Packs the stored blob of the study uid (uidlen bytes) as a reply map
 * (opened and checked first, as any input), adding "added_at" when it is
 * not NULL.  SS_EINTERNAL for a blob that does not open or decode
 * (nothing is packed then).
 */
int sh_pack_blob(ss_pack *p, const sh_server *s, const char *uid, size_t uidlen,
                 const char *blob, size_t len, const char *added_at);
/* True when sh_pack_blob would pack the blob. */
bool sh_blob_ok(const sh_server *s, const char *uid, size_t uidlen,
                const char *blob, size_t len);

/* Packs a lookup's answer for the study uid, from its blob and the
 * priors script's answer (NULL: no priors), as
 * {"study": {...}, "priors": [...]}; SS_EINTERNAL (nothing packed) on a
 * blob that does not open or a bad answer. */
int sh_pack_lookup(ss_pack *p, const sh_server *s, const char *uid,
                   const char *blob, size_t len, const redisReply *r);

/* --- history.c: share records of a study --------------------------- */

#define SH_SHARE_ID_LEN 16

/*
 * One share as the history keeps it (a msgpack map):
 *   {"id", "at", "by", "from", "target", "worklist", "status", "changed"}
 * target is the request's target map as given, or {"kind": "email",
 * "email"} when target is NULL; worklist is where it landed (nil for an
 * invitation); status "delivered" or "invited"; changed false when the
 * worklist held the study already.
 */
typedef struct sh_record {
	const char *id;
	int64_t at_ms;
	const char *by;
	const char *from;
	const msgpack_object *target;
	const char *email;
	const char *worklist;
	const char *status;
	bool changed;
} sh_record;

void sh_record_pack(ss_pack *p, const sh_record *r);
/* A fresh share id (hex) into out[SH_SHARE_ID_LEN + 1]. */
void sh_share_id(char *out);
/* RPUSHes n packed records onto the study's history (keeping the last
 * SH_MAX_HISTORY); fn gets the RPUSH reply. */
int sh_history_append(sh_server *s, const char *uid, int n,
                      const char *const *recs, const size_t *lens,
                      ss_redis_fn fn, void *arg);

/* --- ingest.c ------------------------------------------------------- */

/* Frees the worklist cache. */
void sh_ingest_fini(sh_server *s);

/* --- handlers, one module each -------------------------------------- */

void sh_handle_arrived(ss_call *c, const msgpack_object *body, void *arg);
void sh_handle_list(ss_call *c, const msgpack_object *body, void *arg);
void sh_handle_get(ss_call *c, const msgpack_object *body, void *arg);
void sh_handle_lookup(ss_call *c, const msgpack_object *body, void *arg);
void sh_handle_create(ss_call *c, const msgpack_object *body, void *arg);
void sh_handle_history(ss_call *c, const msgpack_object *body, void *arg);
void sh_handle_register(ss_call *c, const msgpack_object *body, void *arg);
void sh_handle_invitation(ss_call *c, const msgpack_object *body, void *arg);

/* Parses body against spec, answering bad_request itself on failure.
 * Returns 0 when the handler may go on. */
int sh_parse(ss_call *c, const msgpack_object *body, const ss_field_spec *spec,
             size_t n, const msgpack_object **out);

/* Redis or authz error -> what to answer: timeouts are unavailable. */
int sh_err(int err);

/*
 * A step that sends several commands at once and goes on only once every
 * one has answered (share.create and share.register fan out per target or
 * per study).  The first error of the step is kept for its end.
 */
typedef struct sh_fan {
	int pending; /* commands of this step not answered yet */
	int err;
	char errmsg[400];
	const char *reqid; /* the call's request id, for logs */
} sh_fan;

void sh_fan_err(sh_fan *f, int err, const char *msg);
/* Notes a command that was sent (rv 0) or could not be (an error). */
void sh_fan_sent(sh_fan *f, int rv);
/* One answer came in; true when it was the step's last. */
bool sh_fan_answered(sh_fan *f);
/* True when a Redis answer can be read; records the error otherwise. */
bool sh_fan_redis_ok(sh_fan *f, int err, const redisReply *r);

#endif
