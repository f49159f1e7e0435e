/*
 * services/authz/store.c - keeps the in-memory directory in step with Redis.
 *
 * Loading is one script call that returns the version, the canonical
 * document, the share codes and the registered accounts together, so a
 * snapshot is never assembled from two different versions.  A timer polls
 * the version; a change (an import or registration here or on another authz
 * replica) triggers a reload.  The new snapshot replaces the old one only
 * once it is fully built.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <jansson.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "services/authz/authz.h"

/* KEYS: version, doc, codes, reg */
ss_script az_script_load = {
    .name = "authz_load",
    .src = "return {redis.call('GET', KEYS[1]) or '0',"
           " redis.call('GET', KEYS[2]) or '{}',"
           " redis.call('HGETALL', KEYS[3]),"
           " redis.call('HGETALL', KEYS[4])}",
};

typedef struct load_op {
	az_server *s;
	az_loaded_fn fn;
	void *arg;
} load_op;

static void
finish_load(az_server *s, load_op *op, int err)
{
	s->loading = false;
	if (op->fn != NULL)
		op->fn(err, op->arg);
	free(op);
}

static const char *
rstr(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING ? r->str : NULL;
}

/*
 * Adds one registered account from its record in the reg hash.  The two
 * scripts write only well-formed records whose id and email are free; a
 * store edited by hand may hold anything, so *why says what was wrong.
 */
static int
add_account(az_dir *d, const redisReply *id, const redisReply *rec,
            const char **why)
{
	const char *name, *mail;
	bool readable;
	json_t *o;
	int rv;

	*why = "not a JSON object with a name and an email";
	if (rstr(id) == NULL || rstr(rec) == NULL)
		return SS_EBADREQ;
	/* A NUL inside would make the id or the record read shorter. */
	if (strlen(id->str) != id->len) {
		*why = "not a valid account";
		return SS_EBADREQ;
	}
	o = json_loadb(rec->str, rec->len, 0, NULL);
	name = json_string_value(json_object_get(o, "name"));
	mail = json_string_value(json_object_get(o, "email"));
	readable = name != NULL && mail != NULL;
	rv = readable ? az_dir_add_registered(d, id->str, name, mail)
	              : SS_EBADREQ;
	json_decref(o);
	if (rv == SS_ECONFLICT)
		*why = "its id or email is a directory user's";
	else if (rv == SS_EBADREQ && readable)
		*why = "not a valid account";
	return rv;
}

/* Builds a snapshot from the load script's answer. */
static int
build(const redisReply *r, az_dir **out, int64_t *version)
{
	const redisReply *codes, *reg;
	const char *reason;
	char why[512];
	az_dir *d;
	int rv;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
	    rstr(r->element[0]) == NULL || rstr(r->element[1]) == NULL ||
	    r->element[2]->type != REDIS_REPLY_ARRAY ||
	    r->element[3]->type != REDIS_REPLY_ARRAY)
		return SS_EINTERNAL;
	*version = strtoll(r->element[0]->str, NULL, 10);
	rv = az_dir_parse(r->element[1]->str, r->element[1]->len, &d, why,
	                  sizeof why);
	if (rv != 0) {
		ss_error("directory.invalid_in_redis", NULL, "why", why, NULL);
		return SS_EINTERNAL;
	}
	reg = r->element[3];
	for (size_t i = 0; i + 1 < reg->elements; i += 2) {
		rv = add_account(d, reg->element[i], reg->element[i + 1],
		                 &reason);
		/* An account that clashes with the document (the two scripts
		 * refuse that) or whose record does not parse can only come
		 * from a store edited by hand: it is left out and named,
		 * rather than every check failing. */
		if (rv == SS_ECONFLICT || rv == SS_EBADREQ) {
			ss_error("directory.account_left_out", NULL, "user",
			         rstr(reg->element[i]) != NULL
			             ? reg->element[i]->str
			             : "",
			         "reason", reason, NULL);
			continue;
		}
		if (rv != 0) {
			ss_error("directory.load_failed", NULL, "user",
			         reg->element[i]->str, "error", ss_err_word(rv),
			         NULL);
			goto fail;
		}
	}
	codes = r->element[2];
	for (size_t i = 0; i + 1 < codes->elements; i += 2) {
		/* A code of a worklist that is gone is harmless: skip it. */
		(void)az_dir_set_code(d, codes->element[i]->str,
		                      codes->element[i + 1]->str);
	}
	*out = d;
	return 0;
fail:
	az_dir_free(d);
	return rv;
}

static void
on_load(int err, redisReply *r, void *arg)
{
	load_op *op = arg;
	az_server *s = op->s;
	az_dir *d;
	int64_t version;

	if (err != 0 || r->type == REDIS_REPLY_ERROR) {
		finish_load(s, op, err != 0 ? err : SS_EUNAVAIL);
		return;
	}
	if ((err = build(r, &d, &version)) != 0) {
		finish_load(s, op, err);
		return;
	}
	az_dir_free(s->dir);
	s->dir = d;
	s->version = version;
	s->confirmed_at = ss_now();
	ss_info("directory.loaded", NULL, "version", r->element[0]->str, NULL);
	finish_load(s, op, 0);
}

void
az_store_reload(az_server *s, az_loaded_fn fn, void *arg)
{
	const char *keys[] = {AZ_K_VERSION, AZ_K_DOC, AZ_K_CODES, AZ_K_REG};
	load_op *op = calloc(1, sizeof *op);
	int rv;

	if (op == NULL) {
		if (fn != NULL)
			fn(SS_ENOMEM, arg);
		return;
	}
	op->s = s;
	op->fn = fn;
	op->arg = arg;
	s->loading = true;
	rv = ss_redis_eval(s->redis, &az_script_load, on_load, op, 4, 4, keys,
	                   NULL);
	if (rv != 0)
		finish_load(s, op, rv);
}

static void
on_version(int err, redisReply *r, void *arg)
{
	az_server *s = arg;
	int64_t v;

	if (err != 0 || r->type == REDIS_REPLY_ERROR)
		return;
	v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
	if (v == s->version && s->dir != NULL)
		s->confirmed_at = ss_now();
	else if (!s->loading)
		az_store_reload(s, NULL, NULL);
}

static void
on_refresh(evutil_socket_t fd, short what, void *arg)
{
	az_server *s = arg;

	(void)fd;
	(void)what;
	if (s->loading)
		return;
	if (s->dir == NULL)
		az_store_reload(s, NULL, NULL);
	else
		(void)ss_redis_cmd(s->redis, on_version, s, "GET %s",
		                   AZ_K_VERSION);
}

int
az_store_usable(const az_server *s)
{
	double stale = 3.0 * (double)s->cfg->refresh_ms / 1000.0;

	if (s->dir == NULL || !ss_redis_ready(s->redis) ||
	    ss_now() - s->confirmed_at > stale)
		return SS_EUNAVAIL;
	return 0;
}

int
az_store_start(az_server *s)
{
	struct timeval tv = {
	    .tv_sec = s->cfg->refresh_ms / 1000,
	    .tv_usec = (s->cfg->refresh_ms % 1000) * 1000,
	};

	s->refresh = event_new(s->d->base, -1, EV_PERSIST, on_refresh, s);
	if (s->refresh == NULL || event_add(s->refresh, &tv) != 0)
		return SS_ENOMEM;
	return 0;
}

void
az_store_stop(az_server *s)
{
	if (s->refresh != NULL) {
		event_free(s->refresh);
		s->refresh = NULL;
	}
}
