/*
 * runtime/redis.h - asynchronous Redis on the daemon's loop.
 *
 * One hiredis async connection attached to libevent.  hiredis 0.14 has no
 * command timeouts, so every command carries a deadline; replies come back
 * in order, so one timer armed for the oldest pending command is enough.
 * When it fires the connection is dropped: every pending command fails with
 * SS_EUNAVAIL and we reconnect with exponential backoff (100 ms .. 5 s).
 * While disconnected, commands fail at once with SS_EUNAVAIL.  Nothing is
 * retried behind the caller's back: the caller decides.
 *
 * Scripts are registered once (ss_script), loaded on every connect, and
 * run with EVALSHA (EVAL until the first SCRIPT LOAD has answered); a
 * NOSCRIPT answer is retried once with EVAL.
 *
 * Blocking commands (XREADGROUP BLOCK) need their own ss_redis opened with
 * a timeout above the block time.
 *
 * Callbacks run on the loop, exactly once per accepted command.  On err == 0
 * reply is non-NULL and may be a REDIS_REPLY_ERROR; it is freed when the
 * callback returns.
 */
#ifndef SS_RUNTIME_REDIS_H
#define SS_RUNTIME_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>

#include "runtime/daemon.h"

typedef struct ss_redis ss_redis;

typedef void (*ss_redis_fn)(int err, redisReply *reply, void *arg);

typedef struct ss_script {
	const char *name; /* for logs and metrics */
	const char *src;
	char sha[41]; /* set from SCRIPT LOAD's answer; "" until then */
} ss_script;

/*
 * Connects to addr ("host:port") and keeps reconnecting, authenticating
 * with AUTH [user] password when password is given (user NULL or "": the
 * default user).  name is used in
 * logs, metrics and the readiness probe it registers ("redis" or
 * "redis-blocking").  scripts (may be NULL) are SCRIPT LOADed on connect.
 * The probe sends a PING when no command is pending, so a Redis that
 * stopped answering makes a later probe unready within timeout_ms.
 */
int ss_redis_open(ss_redis **out, ss_daemon *d, const char *name,
                  const char *addr, const char *user, const char *password,
                  int timeout_ms, ss_script **scripts, size_t nscripts);
void ss_redis_close(ss_redis *r);
bool ss_redis_ready(const ss_redis *r);

/* For a callback's (err, reply): NULL when Redis took the command, else
 * why not (the error's word, or Redis's own error text).  An error that
 * is Redis's state rather than the command's (OOM, LOADING, BUSY,
 * READONLY, MASTERDOWN) comes as err SS_EUNAVAIL, logged as
 * redis.refused. */
const char *ss_redis_refused(int err, const redisReply *reply);

/* Sends one command; 0, or SS_EUNAVAIL (then fn is not called). */
int ss_redis_cmd(ss_redis *r, ss_redis_fn fn, void *arg, const char *fmt, ...);
int ss_redis_cmdargv(ss_redis *r, ss_redis_fn fn, void *arg, int argc,
                     const char **argv, const size_t *lens);

/* EVALSHA s numkeys keys... args...: argv holds the keys, then the args. */
int ss_redis_eval(ss_redis *r, ss_script *s, ss_redis_fn fn, void *arg,
                  int nkeys, int argc, const char **argv, const size_t *lens);

#endif
