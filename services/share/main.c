/*
 * services/share/main.c - the share daemon: wires config, loop, Redis, the
 * authz client, the two REP endpoints and PUB to the handlers.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/config.h"
#include "runtime/daemon.h"
#include "runtime/keycheck.h"
#include "runtime/log.h"
#include "runtime/token.h"
#include "services/share/share.h"

#define OPT(n, t, d, lo, hi, f, h)                                             \
	{                                                                      \
		n, t, d, lo, hi, offsetof(sh_settings, f), h                   \
	}

static const ss_cfg_opt opts[] = {
    OPT("listen", SS_CFG_ADDR, "tcp://127.0.0.1:7201", 0, 0, listen,
        "NNG address of the internal RPC endpoint (gateway, guestlink)"),
    OPT("ingest-listen", SS_CFG_ADDR, "tcp://127.0.0.1:7300", 0, 0,
        ingest_listen,
        "NNG address of the study.arrived endpoint for other services"),
    OPT("pub-listen", SS_CFG_ADDR, "tcp://127.0.0.1:7202", 0, 0, pub_listen,
        "NNG address of the PUB socket (study.shared events)"),
    OPT("authz-url", SS_CFG_ADDR, "tcp://127.0.0.1:7101", 0, 0, authz_url,
        "NNG address of authz"),
    OPT("authz-timeout", SS_CFG_MS, "2s", 10, 60000, authz_timeout_ms,
        "time authz has to answer a request"),
    OPT("token-key", SS_CFG_SECRET, NULL, SS_TOKEN_KEY_MIN, 1024, token_key,
        "server key of the invitation tokens' keyed hashes (HMAC-SHA256); "
        "changing it voids every open invitation"),
    OPT("seal-key", SS_CFG_SECRET, NULL, SS_SEAL_SECRET_MIN, 1024, seal_key,
        "server key that encrypts every stored study (patient name, id, "
        "birth date, ...) in Redis and keys the patient-id hash of the "
        "priors index; changing it makes every stored study unreadable"),
    OPT("mail-key", SS_CFG_SECRET, NULL, SS_SEAL_SECRET_MIN, 1024, mail_key,
        "secret that seals the email jobs this daemon queues on "
        "notify:jobs: the same as notify's --mail-key"),
    OPT("public-url", SS_CFG_STR, "http://127.0.0.1:8080", 8, 512, public_url,
        "URL the gateway is reached at, for links in emails (no trailing "
        "slash)"),
    OPT("invite-ttl", SS_CFG_MS, "30d", 3600000, 31536000000LL, invite_ttl_ms,
        "how long an email invitation can be used"),
    OPT("worklist-cache", SS_CFG_MS, "2s", 0, 60000, worklist_cache_ms,
        "how long ingest trusts that a worklist exists before asking "
        "authz again; 0 asks every time"),
    OPT("notices", SS_CFG_BOOL, "true", 0, 0, notices,
        "email a user when a share puts a study in their personal "
        "worklist (share.notice)"),
};

const struct ss_cfg_table sh_settings_table = {
    opts, sizeof opts / sizeof opts[0], NULL};

static const ss_route rpc_routes[] = {
    {"share.studies.list", sh_handle_list},
    {"share.study.get", sh_handle_get},
    {"share.study.lookup", sh_handle_lookup},
    {"share.create", sh_handle_create},
    {"share.history", sh_handle_history},
    {"share.register", sh_handle_register},
    {"share.invitation.get", sh_handle_invitation},
};

static const ss_route ingest_routes[] = {
    {"study.arrived", sh_handle_arrived},
};

static ss_script *scripts[] = {
    &sh_script_deliver, &sh_script_list,  &sh_script_priors,
    &sh_script_invite,  &sh_script_claim, &sh_script_release,
    &sh_script_finish,
};

/* Settings that depend on each other.  Each key has one purpose, so no
 * two may be the same secret.  The URL goes into emails as the start of a
 * link: refuse what would make a broken or misleading one. */
static int
check_settings(const sh_settings *cfg)
{
	const char *u = cfg->public_url;
	size_t n = strlen(u);

	if (strcmp(cfg->seal_key, cfg->token_key) == 0) {
		fprintf(stderr, "studyshare-share: seal-key: must differ from "
		                "token-key\n");
		return SS_EBADREQ;
	}
	if (strcmp(cfg->mail_key, cfg->seal_key) == 0 ||
	    strcmp(cfg->mail_key, cfg->token_key) == 0) {
		fprintf(stderr, "studyshare-share: mail-key: must differ from "
		                "seal-key and token-key\n");
		return SS_EBADREQ;
	}
	if ((strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    u[n - 1] == '/' || strpbrk(u, " \t\r\n?#\"'<>") != NULL) {
		fprintf(stderr,
		        "studyshare-share: public-url: must be an http:// or "
		        "https:// URL without a trailing slash, query or "
		        "spaces\n");
		return SS_EBADREQ;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const ss_cfg_table tabs[] = {ss_common_table, sh_settings_table};
	sh_settings cfg;
	sh_server s = {0};
	ss_keycheck *kc = NULL;
	ss_daemon d;
	int rv = 1;

	if ((rv = ss_config_main(tabs, 2, &cfg, argc, argv, "share")) >= 0)
		return rv;
	const char *const keys[] = {"seal-key",  "share.seal",  cfg.seal_key,
	                            "token-key", "share.token", cfg.token_key,
	                            "mail-key",  "mail",        cfg.mail_key,
	                            NULL};
	rv = 1;
	if (check_settings(&cfg) != 0 ||
	    ss_seal_key_init(&s.seal, cfg.seal_key, strlen(cfg.seal_key)) !=
	        0 ||
	    ss_seal_key_init(&s.mail, cfg.mail_key, strlen(cfg.mail_key)) !=
	        0) {
		ss_seal_key_clear(&s.seal);
		ss_config_free(tabs, 2, &cfg);
		return 2;
	}
	sh_patient_key(&s.seal, s.patient_key);
	s.cfg = &cfg;
	s.d = &d;
	ss_pack_init(&s.scratch);
	if (ss_daemon_init(&d, "share", &cfg.common) != 0)
		goto fail_cfg;
	if (ss_redis_open(&s.redis, &d, "redis", cfg.common.redis_addr,
	                  cfg.common.redis_user, cfg.common.redis_password,
	                  (int)cfg.common.redis_timeout_ms, scripts,
	                  sizeof scripts / sizeof scripts[0]) != 0 ||
	    ss_keycheck_start(&kc, &d, s.redis, keys) != 0 ||
	    ss_req_dial(&s.authz, &d, cfg.authz_url,
	                (int)cfg.authz_timeout_ms) != 0 ||
	    ss_pub_listen(&s.pub, cfg.pub_listen) != 0 ||
	    ss_rep_listen(&s.rep, &d, cfg.listen, rpc_routes,
	                  sizeof rpc_routes / sizeof rpc_routes[0], &s) != 0 ||
	    ss_rep_listen(&s.ingest, &d, cfg.ingest_listen, ingest_routes,
	                  sizeof ingest_routes / sizeof ingest_routes[0],
	                  &s) != 0) {
		ss_error("daemon.start_failed", NULL, "listen", cfg.listen,
		         "ingest_listen", cfg.ingest_listen, NULL);
		goto fail;
	}
	rv = ss_daemon_run(&d);
fail:
	if (s.ingest != NULL)
		ss_rep_close(s.ingest);
	if (s.rep != NULL)
		ss_rep_close(s.rep);
	if (s.authz != NULL)
		ss_req_close(s.authz);
	ss_keycheck_close(kc);
	if (s.redis != NULL)
		ss_redis_close(s.redis);
	if (s.pub != NULL)
		ss_pub_close(s.pub);
	sh_ingest_fini(&s);
	ss_daemon_fini(&d);
fail_cfg:
	ss_seal_key_clear(&s.mail);
	ss_seal_key_clear(&s.seal);
	sodium_memzero(s.patient_key, sizeof s.patient_key);
	ss_pack_free(&s.scratch);
	ss_config_free(tabs, 2, &cfg);
	return rv == 0 ? 0 : 1;
}
