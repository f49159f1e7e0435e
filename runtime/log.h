/*
 * runtime/log.h - JSON-lines logs on stderr.
 *
 * One line per event:
 *   {"time":"2026-11-29T09:15:00.123Z","level":"info","service":"authz",
 *    "event":"redis.connected","request_id":"...","addr":"127.0.0.1:6379"}
 *
 * Extra fields are string pairs ending with NULL.  Never pass a secret, a
 * token, a password, a date of birth or a patient name: the logs are read
 * by people who may not see them.  Thread-safe (one write(2) per line).
 */
#ifndef SS_RUNTIME_LOG_H
#define SS_RUNTIME_LOG_H

enum ss_log_level {
	SS_LOG_DEBUG = 0,
	SS_LOG_INFO = 1,
	SS_LOG_WARN = 2,
	SS_LOG_ERROR = 3,
};

void ss_log_init(const char *service, int min_level);
/* "debug", "info", "warn", "error" -> level; -1 for anything else. */
int ss_log_level_parse(const char *s);

/* reqid may be NULL; then key/value string pairs, NULL-terminated. */
void ss_log(int level, const char *event, const char *reqid, ...)
    __attribute__((sentinel));

#define ss_debug(ev, id, ...) ss_log(SS_LOG_DEBUG, ev, id, __VA_ARGS__)
#define ss_info(ev, id, ...)  ss_log(SS_LOG_INFO, ev, id, __VA_ARGS__)
#define ss_warn(ev, id, ...)  ss_log(SS_LOG_WARN, ev, id, __VA_ARGS__)
#define ss_error(ev, id, ...) ss_log(SS_LOG_ERROR, ev, id, __VA_ARGS__)

#endif
