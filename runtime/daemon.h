/*
 * runtime/daemon.h - the life of a daemon: loop, signals, shutdown, admin.
 *
 * main() of every daemon:
 *
 *   ss_daemon d;
 *   if (ss_daemon_init(&d, "authz", &common) != 0) return 1;
 *   ... open endpoints and Redis with &d ...
 *   return ss_daemon_run(&d);   // 0 after a clean SIGTERM/SIGINT
 *
 * On SIGTERM or SIGINT every stop hook runs (endpoints stop taking new
 * work), then the loop keeps running until the in-flight count is zero or
 * the drain deadline (default 9 s) passes.  Anything that starts a unit of
 * work brackets it with ss_daemon_hold() / ss_daemon_release().
 *
 * Readiness: each dependency registers a probe; /readyz answers 200 when
 * every probe says ready, else 503 naming the first that is not.
 */
#ifndef SS_RUNTIME_DAEMON_H
#define SS_RUNTIME_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct evhttp;

/* Settings every daemon has (see runtime/common.c for the table). */
typedef struct ss_common_settings {
	char *admin_addr; /* host:port of /healthz /readyz /metrics */
	char *redis_addr; /* host:port */
	char *redis_user; /* ACL user; "" the default user */
	char *redis_password;
	int64_t redis_timeout_ms;
	int64_t drain_ms;
	int64_t recv_max; /* NNG_OPT_RECVMAXSZ, bytes */
	char *log_level;
} ss_common_settings;

/* The table of ss_common_settings, for ss_config_load(); it expects the
 * daemon's settings struct to start with an ss_common_settings member. */
extern const struct ss_cfg_table ss_common_table;

typedef bool (*ss_ready_fn)(void *arg, const char **why);
typedef void (*ss_hook_fn)(void *arg);

#define SS_DAEMON_MAX_HOOKS 16

typedef struct ss_daemon {
	struct event_base *base;
	const char *service;
	const ss_common_settings *common;
	struct evhttp *admin;
	bool stopping;
	int64_t inflight;
	struct event *sigterm, *sigint, *drain_timer;
	struct {
		ss_hook_fn fn;
		void *arg;
	} stop_hooks[SS_DAEMON_MAX_HOOKS];
	int nstop;
	struct {
		const char *name;
		ss_ready_fn fn;
		void *arg;
	} probes[SS_DAEMON_MAX_HOOKS];
	int nprobes;
} ss_daemon;

/* Creates the loop, installs signal handlers, starts the admin server. */
int ss_daemon_init(ss_daemon *d, const char *service,
                   const ss_common_settings *common);
int ss_daemon_on_stop(ss_daemon *d, ss_hook_fn fn, void *arg);
int ss_daemon_add_probe(ss_daemon *d, const char *name, ss_ready_fn fn,
                        void *arg);
/* Removes every probe registered with arg (a dependency being closed). */
void ss_daemon_remove_probes(ss_daemon *d, const void *arg);
void ss_daemon_hold(ss_daemon *d);
void ss_daemon_release(ss_daemon *d);
/* Starts shutdown as SIGTERM does (tests, fatal conditions). */
void ss_daemon_stop(ss_daemon *d);
/* Runs the loop; returns 0 after a clean shutdown. */
int ss_daemon_run(ss_daemon *d);
void ss_daemon_fini(ss_daemon *d);

#endif
