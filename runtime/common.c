/*
 * runtime/common.c - the settings every daemon has.
 *
 * Contract: ss_common_table describes ss_common_settings for
 * ss_config_load().  A daemon's settings struct starts with an
 * ss_common_settings member, so these offsets hold for it too:
 *
 *   struct authz_settings { ss_common_settings common; ... };
 *   const ss_cfg_table tabs[] = { ss_common_table, authz_table };
 *
 * admin-addr has one default for every daemon; daemons that share a host
 * (a compose stack, the integration tests) must each be given their own
 * through --admin-addr or STUDYSHARE_ADMIN_ADDR.
 */
#include <stddef.h>

#include "runtime/config.h"
#include "runtime/daemon.h"

#define F(x) offsetof(ss_common_settings, x)

static const ss_cfg_opt common_opts[] = {
    {"admin-addr", SS_CFG_ADDR, "127.0.0.1:9100", 1, 255, F(admin_addr),
     "host:port of the admin HTTP server (/healthz, /readyz, /metrics); "
     "give each daemon on a host its own"},
    {"redis-addr", SS_CFG_HOSTPORT, "127.0.0.1:6379", 1, 255, F(redis_addr),
     "host:port of Redis"},
    {"redis-user", SS_CFG_STR, "", 0, 128, F(redis_user),
     "Redis ACL user to authenticate as (AUTH user password; needs "
     "redis-password; deploy/redis/acl-rules); empty: the default user"},
    {"redis-password", SS_CFG_SECRET, "", 0, 512, F(redis_password),
     "Redis AUTH password; empty for none"},
    {"redis-timeout", SS_CFG_MS, "2s", 10, 60000, F(redis_timeout_ms),
     "time Redis has to answer a command before the connection is "
     "dropped and re-made"},
    {"drain", SS_CFG_MS, "9s", 0, 600000, F(drain_ms),
     "on SIGTERM, how long work in flight may take to finish before the "
     "daemon exits anyway"},
    {"recv-max", SS_CFG_INT, "1048576", 1024, 67108864, F(recv_max),
     "largest NNG request accepted, in bytes, and sent: a request over "
     "it is refused before it goes, as its peer would close the "
     "connection (the daemons share this setting; replies from peers: "
     "at least 4 MiB + 4 KiB, the size a batch reply may reach)"},
    {"log-level", SS_CFG_LEVEL, "info", 0, 0, F(log_level),
     "least severe log level written: debug, info, warn or error"},
};

/* An ACL user is named in AUTH together with its password. */
static const char *
common_check(const void *settings, const char **flag)
{
	const ss_common_settings *c = settings;

	if (c->redis_user[0] != '\0' && c->redis_password[0] == '\0') {
		*flag = "--redis-user";
		return "needs --redis-password (STUDYSHARE_REDIS_PASSWORD or "
		       "STUDYSHARE_REDIS_PASSWORD_FILE), the user's password";
	}
	return NULL;
}

const struct ss_cfg_table ss_common_table = {
    common_opts,
    sizeof(common_opts) / sizeof(common_opts[0]),
    common_check,
};
