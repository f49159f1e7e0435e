/*
 * runtime/keycheck.h - a daemon's keys against the ones the data in Redis
 * was made with.
 *
 * A key that protects what Redis holds (a seal key, a token or mail key,
 * a pepper) and is not the one the data was made with fails quietly:
 * sealed values do not open, hashes match nothing, and the daemon answers
 * as if nothing were there (an empty worklist, a link that is "gone", a
 * mail dead-lettered).  So the first daemon to start with a key records
 * the key's fingerprint in Redis (keycheck:{k}:<purpose>: 16 bytes of
 * HMAC-SHA256 under the key, in hex; it says nothing about the key), and
 * every daemon holding a key for that purpose compares its own with it:
 *
 *   same         ready
 *   different    key.mismatch logged (the setting's name, never the key),
 *                /readyz 503 "keys: --seal-key is not the key Redis's
 *                data was made with", ss_keycheck_ok() false (a worker
 *                that takes jobs from Redis, notify, stops taking them)
 *   not asked    /readyz 503 "keys: not checked yet" (Redis not ready)
 *
 * Checked once Redis is ready, then every 10 s, so that a record an
 * operator deleted to rotate a key (docs/operations.md) is taken up.
 */
#ifndef SS_RUNTIME_KEYCHECK_H
#define SS_RUNTIME_KEYCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/daemon.h"
#include "runtime/redis.h"

typedef struct ss_keycheck ss_keycheck;

#define SS_KEYCHECK_MAX 4 /* keys per daemon */

/* Starts checking keys on r's connection, with the readiness probe
 * "keys".  keys: triples of the setting that names the key in logs
 * ("seal-key"), the purpose that names the data it protects, the same in
 * every daemon holding such a key ("mail", "share.seal"), and the key,
 * then NULL.  Only fingerprints are kept.  0, SS_ENOMEM, or SS_EBADREQ
 * past SS_KEYCHECK_MAX keys. */
int ss_keycheck_start(ss_keycheck **out, ss_daemon *d, ss_redis *r,
                      const char *const *keys);
/* Every key checked and the same as Redis's record. */
bool ss_keycheck_ok(const ss_keycheck *kc);
void ss_keycheck_close(ss_keycheck *kc);

#endif
