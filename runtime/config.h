/*
 * runtime/config.h - declarative settings.
 *
 * Each daemon has one settings struct and one table describing its fields:
 * name, type, default, bounds and help.  A setting named "redis-addr" is the
 * flag --redis-addr and the environment variable STUDYSHARE_REDIS_ADDR; the
 * flag wins over the environment, which wins over the default.  A secret may
 * also come from a file named by STUDYSHARE_<NAME>_FILE (container secrets)
 * and is never printed.
 *
 * ss_config_load() validates everything before the daemon starts; a bad value
 * stops start-up with a message that names the setting.  --help prints the
 * table; --help-markdown prints it as a Markdown table for the docs.
 */
#ifndef SS_RUNTIME_CONFIG_H
#define SS_RUNTIME_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ss_cfg_type {
	SS_CFG_STR,    /* char *, owned by the settings; min/max bound length */
	SS_CFG_SECRET, /* char *, like STR but never printed */
	SS_CFG_INT,    /* int64_t, bounded by min/max */
	SS_CFG_BOOL,   /* bool: true/false/1/0/yes/no/on/off */
	SS_CFG_MS, /* int64_t milliseconds: "250ms", "5s", "2m", "1h", "30d" or
	              a bare number of milliseconds; bounded by min/max (ms) */
	SS_CFG_ADDR,     /* char *, an NNG URL (tcp://, tls+tcp://, ipc://) or
	                    host:port, checked for shape */
	SS_CFG_HOSTPORT, /* char *, host:port only (Redis: hiredis would take
	                    a URL's scheme for part of the host) */
	SS_CFG_LEVEL,    /* char *, a log level: debug, info, warn or error */
} ss_cfg_type;

typedef struct ss_cfg_opt {
	const char *name;
	ss_cfg_type type;
	const char
	    *def; /* NULL: required for STR/SECRET/ADDR, unset otherwise */
	int64_t min;
	int64_t max;
	size_t offset; /* offsetof(settings, field) */
	const char *help;
} ss_cfg_opt;

typedef struct ss_cfg_table {
	const ss_cfg_opt *opts;
	size_t n;
	/* Optional: settings that are wrong together, checked once all are
	 * read; returns why (and sets *flag, "--name") or NULL. */
	const char *(*check)(const void *settings, const char **flag);
} ss_cfg_table;

/*
 * Fills settings from defaults, environment and argv, in that order.
 * Returns 0; 1 when --help or --help-markdown was printed (exit 0);
 * SS_EBADREQ after printing "studyshare-<service>: <name>: <why>" to stderr.
 */
int ss_config_load(const ss_cfg_table *tabs, size_t ntabs, void *settings,
                   int argc, char **argv, const char *service);

/* For main(): ss_config_load(), then -1 to go on, or the exit code to
 * return at once (0 after --help, 2 after a bad setting). */
int ss_config_main(const ss_cfg_table *tabs, size_t ntabs, void *settings,
                   int argc, char **argv, const char *service);

/* A duration as SS_CFG_MS reads it ("250ms", "5s", "2m", a bare number
 * of milliseconds) into *out: 0, or SS_EBADREQ. */
int ss_cfg_parse_ms(const char *s, int64_t *out);

/* Releases the strings ss_config_load() allocated. */
void ss_config_free(const ss_cfg_table *tabs, size_t ntabs, void *settings);

#endif
