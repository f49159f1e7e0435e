/*
 * services/guestlink/main.c - the guestlink daemon: wires config, loop,
 * Redis, the authz and share clients, the worker pool, PUB and the REP
 * endpoint to the handlers.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/config.h"
#include "runtime/daemon.h"
#include "runtime/keycheck.h"
#include "runtime/log.h"
#include "services/guestlink/upload.h"

#define OPT(n, t, d, lo, hi, f, h)                                             \
	{                                                                      \
		n, t, d, lo, hi, offsetof(gl_settings, f), h                   \
	}

#define DAY_MS (86400000LL)

static const ss_cfg_opt opts[] = {
    OPT("listen", SS_CFG_ADDR, "tcp://127.0.0.1:7401", 0, 0, listen,
        "NNG address of the request endpoint (gateway)"),
    OPT("pub-listen", SS_CFG_ADDR, "tcp://127.0.0.1:7402", 0, 0, pub_listen,
        "NNG address of the PUB socket (guestlink.accessed events)"),
    OPT("authz-url", SS_CFG_ADDR, "tcp://127.0.0.1:7101", 0, 0, authz_url,
        "NNG address of authz"),
    OPT("authz-timeout", SS_CFG_MS, "2s", 10, 60000, authz_timeout_ms,
        "time authz has to answer a request"),
    OPT("share-url", SS_CFG_ADDR, "tcp://127.0.0.1:7201", 0, 0, share_url,
        "NNG address of share's RPC endpoint"),
    OPT("share-timeout", SS_CFG_MS, "2s", 10, 60000, share_timeout_ms,
        "time share has to answer a request"),
    OPT("token-key", SS_CFG_SECRET, NULL, SS_TOKEN_KEY_MIN, 1024, token_key,
        "server key of the keyed hashes of link and session tokens "
        "(HMAC-SHA256); changing it voids every link and session"),
    OPT("seal-key", SS_CFG_SECRET, NULL, SS_SEAL_SECRET_MIN, 1024, seal_key,
        "server key that encrypts each link's token (for the list's URL) "
        "and frozen study view in Redis; changing it voids every link"),
    OPT("mail-key", SS_CFG_SECRET, NULL, SS_SEAL_SECRET_MIN, 1024, mail_key,
        "secret that seals the email jobs this daemon queues on "
        "notify:jobs: the same as notify's --mail-key"),
    OPT("pepper", SS_CFG_SECRET, NULL, 16, 1024, pepper,
        "server secret mixed into every link password hash (HMAC key)"),
    OPT("public-url", SS_CFG_STR, "http://127.0.0.1:8080", 8, 512, public_url,
        "URL the gateway is reached at; a link's URL is this + /g/<token> "
        "(no trailing slash)"),
    OPT("default-expiry", SS_CFG_MS, "30d", 60000, 3650 * DAY_MS,
        default_expiry_ms,
        "how long a link lives when the request gives no expiry"),
    OPT("max-expiry", SS_CFG_MS, "365d", 60000, 3650 * DAY_MS, max_expiry_ms,
        "the longest expiry a request may ask for"),
    OPT("grace", SS_CFG_MS, "7d", 0, 365 * DAY_MS, grace_ms,
        "how long an ended link stays in the list (and in Redis) after it "
        "expired or was deleted"),
    OPT("session-ttl", SS_CFG_MS, "30m", 1000, DAY_MS, session_ttl_ms,
        "lifetime of a viewer session made by a use (reloading within it "
        "is not another use)"),
    OPT("view-notice-max", SS_CFG_INT, "10", 1, 100000, view_notice_max,
        "view notifications one guest link mails its creator per "
        "view-notice-window, at most; the last says so, and the views "
        "after it are counted and told in the next window's first "
        "(anyone holding a link could otherwise flood its creator's "
        "mailbox and the relay)"),
    OPT("view-notice-window", SS_CFG_MS, "1h", 1000, 30 * DAY_MS,
        view_notice_window_ms, "the window of view-notice-max"),
    OPT("default-attempts", SS_CFG_INT, "5", 1, GL_MAX_ATTEMPTS,
        default_attempts,
        "wrong passwords a link with a password allows when the request "
        "does not say"),
    OPT("workers", SS_CFG_INT, "2", 1, 64, workers,
        "threads hashing and checking passwords (Argon2id) off the event "
        "loop"),
    OPT("checks-max", SS_CFG_INT, "128", 1, 100000, checks_max,
        "redemptions with a password under way (most waiting for a "
        "worker's password check) and new links' password hashes, at "
        "most; past it a redemption or a link with a password is answered "
        "too_many_requests (retry in 1 s), a redemption before any attempt "
        "is counted"),
};

const struct ss_cfg_table gl_settings_table = {
    opts, sizeof opts / sizeof opts[0], NULL};

static const ss_route routes[] = {
    {"guestlink.create", gl_handle_create},
    {"guestlink.list", gl_handle_list},
    {"guestlink.delete", gl_handle_delete},
    {"guestlink.unlock", gl_handle_unlock},
    {"guestlink.redeem", gl_handle_redeem},
    {"guestlink.session", gl_handle_session},
    {"guestlink.upload.create", gl_handle_upload_create},
    {"guestlink.upload.update", gl_handle_upload_update},
    {"guestlink.upload.list", gl_handle_upload_list},
    {"guestlink.upload.delete", gl_handle_upload_delete},
    {"guestlink.upload.redeem", gl_handle_upload_redeem},
    {"guestlink.upload.reserve", gl_handle_upload_reserve},
    {"guestlink.upload.received", gl_handle_upload_received},
};

static ss_script *scripts[] = {
    &gl_script_store,           &gl_script_index_add,
    &gl_script_index_read,      &gl_script_redeem,
    &gl_script_settle,          &gl_script_session,
    &gl_script_delete,          &gl_script_unlock,
    &gl_script_upload_update,   &gl_script_upload_reserve,
    &gl_script_upload_received,
};

/* Settings that depend on each other; each message names the setting. */
static int
check_settings(const gl_settings *cfg)
{
	const char *u = cfg->public_url;
	size_t n = strlen(u);

	if ((strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    u[n - 1] == '/' || strpbrk(u, " \t\r\n?#\"'<>") != NULL) {
		fprintf(
		    stderr,
		    "studyshare-guestlink: public-url: must be an http:// or "
		    "https:// URL without a trailing slash, query or "
		    "spaces\n");
		return SS_EBADREQ;
	}
	if (cfg->default_expiry_ms > cfg->max_expiry_ms) {
		fprintf(stderr, "studyshare-guestlink: default-expiry: must "
		                "not be more than max-expiry\n");
		return SS_EBADREQ;
	}
	if (strcmp(cfg->token_key, cfg->seal_key) == 0) {
		fprintf(stderr, "studyshare-guestlink: seal-key: must differ "
		                "from token-key\n");
		return SS_EBADREQ;
	}
	if (strcmp(cfg->mail_key, cfg->seal_key) == 0 ||
	    strcmp(cfg->mail_key, cfg->token_key) == 0) {
		fprintf(stderr, "studyshare-guestlink: mail-key: must differ "
		                "from seal-key and token-key\n");
		return SS_EBADREQ;
	}
	return 0;
}

static void
metrics(gl_server *s)
{
	static const char *rh = "guest link redemptions by outcome";

	s->m_created =
	    ss_counter("guestlinks_created_total", "guest links created", NULL);
	s->m_deleted =
	    ss_counter("guestlinks_deleted_total", "guest links deleted", NULL);
	s->m_unlocked = ss_counter("guestlinks_unlocked_total",
	                           "locked guest links unlocked", NULL);
	s->m_locked = ss_counter("guestlinks_locked_total",
	                         "guest links locked by wrong passwords", NULL);
	s->m_used =
	    ss_counter("guestlink_redemptions_total", rh, "result=\"used\"");
	s->m_session =
	    ss_counter("guestlink_redemptions_total", rh, "result=\"session\"");
	s->m_pwreq = ss_counter("guestlink_redemptions_total", rh,
	                        "result=\"password_required\"");
	s->m_wrong = ss_counter("guestlink_redemptions_total", rh,
	                        "result=\"wrong_password\"");
	s->m_gone = ss_counter("guestlink_redemptions_total", rh,
	                       "result=\"not_found\"");
	s->m_busy =
	    ss_counter("guestlink_redemptions_total", rh, "result=\"busy\"");
	s->m_audit_failed = ss_counter(
	    "guestlink_audit_failures_total",
	    "audit entries of done actions that Redis did not take", NULL);
	s->m_mail_failed = ss_counter(
	    "guestlink_mails_not_queued_total",
	    "mail jobs (notices, lock mails) Redis did not take", NULL);
}

int
main(int argc, char **argv)
{
	const ss_cfg_table tabs[] = {ss_common_table, gl_settings_table};
	gl_settings cfg;
	gl_server s = {0};
	ss_keycheck *kc = NULL;
	ss_daemon d;
	int rv = 1;

	/* Every redemption makes a session token: libsodium's ChaCha20
	 * generator (seeded from getrandom, rekeyed after each call, one
	 * stream per thread) instead of a getrandom system call per token.
	 * Still a CSPRNG; it must be chosen before sodium_init(), and the
	 * daemon never forks (the generator refuses to run in a child). */
	randombytes_set_implementation(&randombytes_internal_implementation);
	if ((rv = ss_config_main(tabs, 2, &cfg, argc, argv, "guestlink")) >= 0)
		return rv;
	const char *const keys[] = {"seal-key",
	                            "guestlink.seal",
	                            cfg.seal_key,
	                            "token-key",
	                            "guestlink.token",
	                            cfg.token_key,
	                            "mail-key",
	                            "mail",
	                            cfg.mail_key,
	                            "pepper",
	                            "guestlink.pepper",
	                            cfg.pepper,
	                            NULL};
	rv = 1;
	s.cfg = &cfg;
	snprintf(s.vn_window, sizeof s.vn_window, "%lld",
	         (long long)cfg.view_notice_window_ms);
	snprintf(s.vn_max, sizeof s.vn_max, "%lld",
	         (long long)cfg.view_notice_max);
	if (check_settings(&cfg) != 0 || gl_hashers_init(&s) != 0 ||
	    ss_seal_key_init(&s.seal, cfg.seal_key, strlen(cfg.seal_key)) !=
	        0 ||
	    ss_seal_key_init(&s.mail, cfg.mail_key, strlen(cfg.mail_key)) !=
	        0) {
		gl_hashers_wipe(&s);
		ss_seal_key_clear(&s.seal);
		ss_config_free(tabs, 2, &cfg);
		return 2;
	}
	s.d = &d;
	ss_pack_init(&s.scratch);
	if (ss_daemon_init(&d, "guestlink", &cfg.common) != 0)
		goto fail_cfg;
	metrics(&s);
	if (ss_redis_open(&s.redis, &d, "redis", cfg.common.redis_addr,
	                  cfg.common.redis_user, cfg.common.redis_password,
	                  (int)cfg.common.redis_timeout_ms, scripts,
	                  sizeof scripts / sizeof scripts[0]) != 0 ||
	    ss_keycheck_start(&kc, &d, s.redis, keys) != 0 ||
	    ss_req_dial(&s.authz, &d, cfg.authz_url,
	                (int)cfg.authz_timeout_ms) != 0 ||
	    ss_req_dial(&s.share, &d, cfg.share_url,
	                (int)cfg.share_timeout_ms) != 0 ||
	    ss_work_open(&s.work, &d, (int)cfg.workers) != 0 ||
	    ss_pub_listen(&s.pub, cfg.pub_listen) != 0 ||
	    ss_rep_listen(&s.rep, &d, cfg.listen, routes,
	                  sizeof routes / sizeof routes[0], &s) != 0) {
		ss_error("daemon.start_failed", NULL, "listen", cfg.listen,
		         "pub_listen", cfg.pub_listen, NULL);
		goto fail;
	}
	rv = ss_daemon_run(&d);
fail:
	if (s.rep != NULL)
		ss_rep_close(s.rep);
	if (s.work != NULL)
		ss_work_close(s.work);
	if (s.share != NULL)
		ss_req_close(s.share);
	if (s.authz != NULL)
		ss_req_close(s.authz);
	ss_keycheck_close(kc);
	if (s.redis != NULL)
		ss_redis_close(s.redis);
	if (s.pub != NULL)
		ss_pub_close(s.pub);
	ss_daemon_fini(&d);
fail_cfg:
	gl_hashers_wipe(&s);
	ss_seal_key_clear(&s.mail);
	ss_seal_key_clear(&s.seal);
	ss_pack_free(&s.scratch);
	ss_config_free(tabs, 2, &cfg);
	return rv == 0 ? 0 : 1;
}
