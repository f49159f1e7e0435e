/*
 * services/authz/main.c - the authz daemon: wires config, loop, Redis, the
 * worker pool and the REP endpoint to the handlers.
 */
#include <stddef.h>
#include <stdio.h>

#include "runtime/config.h"
#include "runtime/daemon.h"
#include "runtime/keycheck.h"
#include "runtime/log.h"
#include "services/authz/authz.h"

#define OPT(n, t, d, lo, hi, f, h)                                             \
	{                                                                      \
		n, t, d, lo, hi, offsetof(az_settings, f), h                   \
	}

static const ss_cfg_opt opts[] = {
    OPT("listen", SS_CFG_ADDR, "tcp://127.0.0.1:7101", 0, 0, listen,
        "NNG address of the request endpoint"),
    OPT("pepper", SS_CFG_SECRET, NULL, 16, 1024, pepper,
        "server secret mixed into every password hash (HMAC key)"),
    OPT("refresh", SS_CFG_MS, "1s", 100, 60000, refresh_ms,
        "how often the directory version is checked in Redis; requests "
        "answer unavailable after three intervals without confirmation"),
    OPT("login-fail-user", SS_CFG_INT, "10", 1, 100000, login_fail_user,
        "failed logins allowed per user per window"),
    OPT("login-fail-addr", SS_CFG_INT, "30", 1, 1000000, login_fail_addr,
        "failed logins allowed per client address (an IPv6 address's "
        "/64) per window"),
    OPT("login-window", SS_CFG_MS, "60s", 1000, 86400000, login_window_ms,
        "window of the failed-login limits"),
    OPT("login-known", SS_CFG_MS, "30d", 0, 31536000000, login_known_ms,
        "how long an address a user logged in from stays known: from it "
        "the user's right password is taken even while --login-fail-user "
        "holds the user (others' wrong guesses cannot lock them out); 0: "
        "never"),
    OPT("workers", SS_CFG_INT, "2", 1, 64, workers,
        "threads hashing passwords (Argon2id) off the event loop"),
    OPT("checks-max", SS_CFG_INT, "128", 1, 100000, checks_max,
        "logins under way (most waiting for a worker's password check) "
        "and registrations' password hashes, at most; past it a login or "
        "a registration is answered too_many_requests (retry in 1 s), a "
        "login before it counts against any limit"),
};

const struct ss_cfg_table az_settings_table = {
    opts, sizeof opts / sizeof opts[0], NULL};

static const ss_route routes[] = {
    {"authz.check", az_handle_check},
    {"authz.check_batch", az_handle_check_batch},
    {"authz.worklist.get", az_handle_worklist_get},
    {"authz.worklist.info", az_handle_worklist_info},
    {"authz.worklists", az_handle_worklists},
    {"authz.user.get", az_handle_user_get},
    {"authz.resolve", az_handle_resolve},
    {"authz.login", az_handle_login},
    {"authz.register", az_handle_register},
    {"authz.directory.import", az_handle_import},
};

static ss_script *scripts[] = {
    &az_script_load,        &az_script_import,       &az_script_register,
    &az_script_login_begin, &az_script_login_refund,
};

static bool
dir_ready(void *arg, const char **why)
{
	if (az_store_usable(arg) != 0) {
		*why = "directory not loaded or not confirmed";
		return false;
	}
	return true;
}

int
main(int argc, char **argv)
{
	const ss_cfg_table tabs[] = {ss_common_table, az_settings_table};
	az_settings cfg;
	az_server s = {0};
	ss_keycheck *kc = NULL;
	ss_daemon d;
	int rv = 1;

	if ((rv = ss_config_main(tabs, 2, &cfg, argc, argv, "authz")) >= 0)
		return rv;
	const char *const keys[] = {"pepper", "authz.pepper", cfg.pepper, NULL};
	rv = 1;
	s.cfg = &cfg;
	s.d = &d;
	if (ss_daemon_init(&d, "authz", &cfg.common) != 0)
		goto fail_cfg;
	if (ss_redis_open(&s.redis, &d, "redis", cfg.common.redis_addr,
	                  cfg.common.redis_user, cfg.common.redis_password,
	                  (int)cfg.common.redis_timeout_ms, scripts,
	                  sizeof scripts / sizeof scripts[0]) != 0 ||
	    ss_keycheck_start(&kc, &d, s.redis, keys) != 0 ||
	    ss_work_open(&s.work, &d, (int)cfg.workers) != 0 ||
	    az_store_start(&s) != 0 ||
	    ss_daemon_add_probe(&d, "directory", dir_ready, &s) != 0 ||
	    ss_rep_listen(&s.rep, &d, cfg.listen, routes,
	                  sizeof routes / sizeof routes[0], &s) != 0) {
		ss_error("daemon.start_failed", NULL, "listen", cfg.listen,
		         NULL);
		goto fail;
	}
	rv = ss_daemon_run(&d);
fail:
	if (s.rep != NULL)
		ss_rep_close(s.rep);
	az_store_stop(&s);
	if (s.work != NULL)
		ss_work_close(s.work);
	ss_keycheck_close(kc);
	if (s.redis != NULL)
		ss_redis_close(s.redis);
	az_dir_free(s.dir);
	ss_daemon_fini(&d);
fail_cfg:
	ss_config_free(tabs, 2, &cfg);
	return rv == 0 ? 0 : 1;
}
