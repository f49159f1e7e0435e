/*
 * services/authz/authz.h - the authz daemon's state, shared by its modules.
 *
 * authz owns the directory.  Permission checks are answered from an
 * in-memory snapshot (services/authz/directory.h) that store.c keeps in
 * step with Redis: it polls the directory version every refresh interval
 * and reloads on change.  While Redis is unreachable, or the snapshot could
 * not be confirmed for three intervals, every request is answered
 * "unavailable": a revocation may have been missed, and authz denies by
 * default rather than answer from a stale copy.
 */
#ifndef SS_AUTHZ_AUTHZ_H
#define SS_AUTHZ_AUTHZ_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/fields.h"
#include "runtime/daemon.h"
#include "runtime/redis.h"
#include "runtime/rep.h"
#include "runtime/work.h"
#include "services/authz/directory.h"

typedef struct az_settings {
	ss_common_settings common; /* must stay first */
	char *listen;
	char *pepper;
	int64_t refresh_ms;
	int64_t login_fail_user;
	int64_t login_fail_addr;
	int64_t login_window_ms;
	int64_t login_known_ms;
	int64_t workers;
	int64_t checks_max;
} az_settings;

extern const struct ss_cfg_table az_settings_table;

typedef struct az_server az_server;
typedef void (*az_loaded_fn)(int err, void *arg);

struct az_server {
	const az_settings *cfg;
	ss_daemon *d;
	ss_redis *redis;
	ss_work_pool *work;
	int64_t checking; /* logins and registration hashes under way
	                     (--checks-max) */
	ss_rep *rep;
	az_dir *dir;         /* current snapshot; NULL until loaded */
	int64_t version;     /* of the snapshot */
	double confirmed_at; /* last time Redis confirmed the version */
	struct event *refresh;
	bool loading;
};

/* store.c: the directory in Redis. */
int az_store_start(az_server *s);
void az_store_stop(az_server *s);
/* Reloads the snapshot now, then calls fn (on the loop). */
void az_store_reload(az_server *s, az_loaded_fn fn, void *arg);
/* 0 when the snapshot may be used, else SS_EUNAVAIL. */
int az_store_usable(const az_server *s);

/* The Redis layout, shared by the scripts of store.c, import.c, login.c
 * and register.c.  One hash tag: every script touches keys of one slot. */
#define AZ_K_DOC     "authz:{dir}:doc"
#define AZ_K_VERSION "authz:{dir}:version"
#define AZ_K_CODES   "authz:{dir}:codes"   /* worklist -> code */
#define AZ_K_CODEIX  "authz:{dir}:code"    /* code -> worklist */
#define AZ_K_PW      "authz:{dir}:pw"      /* user -> password hash */
#define AZ_K_REG     "authz:{dir}:reg"     /* user -> {"name","email"} */
#define AZ_K_REGMAIL "authz:{dir}:regmail" /* email key -> user */
#define AZ_K_DOCMAIL "authz:{dir}:docmail" /* email key -> document user */
#define AZ_K_RETIRED "authz:{dir}:retired" /* ids removed from the document */
#define AZ_K_FAIL_U  "authz:{dir}:fail:u:" /* + user: failed logins */
#define AZ_K_FAIL_A  "authz:{dir}:fail:a:" /* + address */
#define AZ_K_KNOWN   "authz:{dir}:known:" /* + user: addresses logged in from */

extern ss_script az_script_load, az_script_import, az_script_register,
    az_script_login_begin, az_script_login_refund;

/* Handlers, one module each. */
void az_handle_check(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_check_batch(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_worklist_get(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_worklist_info(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_worklists(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_user_get(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_resolve(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_login(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_register(ss_call *c, const msgpack_object *body, void *arg);
void az_handle_import(ss_call *c, const msgpack_object *body, void *arg);

/* authz.resolve's two steps, apart from the call for tests and fuzzing.
 * az_resolve_check: every target's shape; SS_EBADREQ with msg naming the
 * first bad one ("targets[2]: ...").  az_resolve_pack: the reply body
 * {"targets": [...]}, one verdict per target (already checked) for user u
 * sharing from a worklist on which u has perms (not 0). */
int az_resolve_check(const msgpack_object_array *ts, char *msg, size_t msglen);
void az_resolve_pack(const az_dir *dir, const az_user *u, uint32_t perms,
                     const msgpack_object_array *ts, ss_pack *p);

/* Parses body against spec, answering bad_request itself on failure.
 * Returns 0 when the handler may go on. */
int az_parse(ss_call *c, const msgpack_object *body, const ss_field_spec *spec,
             size_t n, const msgpack_object **out);

/* The snapshot for a handler, or answers unavailable and returns NULL. */
const az_dir *az_dir_or_reply(az_server *s, ss_call *c);

#endif
