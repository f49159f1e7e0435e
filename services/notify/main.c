/*
 * services/notify/main.c - the notify daemon: wires config, templates, the
 * SMTP client and the queue worker.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "runtime/config.h"
#include "runtime/daemon.h"
#include "runtime/log.h"
#include "services/notify/notify.h"

#define OPT(n, t, d, lo, hi, f, h)                                             \
	{                                                                      \
		n, t, d, lo, hi, offsetof(nt_settings, f), h                   \
	}

static const ss_cfg_opt opts[] = {
    OPT("smtp-url", SS_CFG_STR, "smtp://127.0.0.1:25", 8, 1024, smtp_url,
        "SMTP server: smtp://host[:port] (STARTTLS as --smtp-starttls says) "
        "or smtps://host[:port] (implicit TLS, port 465 by default)"),
    OPT("smtp-starttls", SS_CFG_STR, "try", 3, 8, smtp_starttls,
        "STARTTLS on smtp://: none, try (when the server offers it) or "
        "required (refuse to send in clear)"),
    OPT("smtp-user", SS_CFG_STR, "", 0, 256, smtp_user,
        "SMTP AUTH user; empty for no authentication"),
    OPT("smtp-password", SS_CFG_SECRET, "", 0, 1024, smtp_password,
        "SMTP AUTH password"),
    OPT("smtp-ca-file", SS_CFG_STR, "", 0, 4096, smtp_ca_file,
        "PEM file of the CAs that may sign the SMTP server's certificate; "
        "empty for the system's"),
    OPT("smtp-timeout", SS_CFG_MS, "30s", 100, 600000, smtp_timeout_ms,
        "time one mail may take, connecting included; then it counts as a "
        "temporary failure"),
    OPT("from", SS_CFG_STR, "studyshare <studyshare@localhost>", 3, 512, from,
        "sender of every mail: \"Display Name <address>\" or \"address\""),
    OPT("templates", SS_CFG_STR, "", 0, 4096, templates,
        "directory of the mail templates (<name>.txt and <name>.html); "
        "empty for services/notify/templates of the source tree the "
        "binary was built from"),
    OPT("mail-key", SS_CFG_SECRET, NULL, SS_SEAL_SECRET_MIN, 1024, mail_key,
        "secret that opens the sealed email jobs on notify:jobs: the same "
        "as share's and guestlink's --mail-key; a job that does not open "
        "goes to notify:dead, never sent"),
    OPT("concurrency", SS_CFG_INT, "4", 1, 64, concurrency,
        "SMTP sessions per process, kept open: each sends one mail at a "
        "time and holds the next"),
    OPT("max-tries", SS_CFG_INT, "10", 1, 1000, max_tries,
        "tries before a temporarily failing mail goes to the dead-letter "
        "stream"),
    OPT("retry-min", SS_CFG_MS, "10s", 10, 86400000, retry_min_ms,
        "wait before the second try; it doubles with every try (with "
        "jitter)"),
    OPT("retry-max", SS_CFG_MS, "30m", 10, 86400000, retry_max_ms,
        "longest wait between two tries"),
    OPT("claim-idle", SS_CFG_MS, "60s", 100, 86400000, claim_idle_ms,
        "a job delivered to a worker that has not finished it for this "
        "long is taken over by another (its worker died); must exceed "
        "--smtp-timeout"),
    OPT("block", SS_CFG_MS, "2s", 10, 60000, block_ms,
        "how long one XREADGROUP waits for new jobs"),
    OPT("consumer-idle", SS_CFG_MS, "1h", 1000, 2592000000LL, consumer_idle_ms,
        "a consumer of the group that holds no job and has been handed "
        "none for this long is removed (its worker was killed or "
        "restarted; a live worker's comes back with its next job)"),
    OPT("sent-ttl", SS_CFG_MS, "7d", 1000, 31536000000LL, sent_ttl_ms,
        "how long a sent job's id is remembered, so that a job delivered "
        "again is not mailed twice"),
    OPT("dead-max", SS_CFG_INT, "100000", 100, 100000000, dead_max,
        "approximate number of entries kept in the dead-letter stream "
        "notify:dead"),
};

const struct ss_cfg_table nt_settings_table = {
    opts, sizeof opts / sizeof opts[0], NULL};

/* Checks that span settings; prints like ss_config_load() does. */
static int
check_settings(nt_settings *cfg, nt_from *from)
{
	char why[NT_WHY_MAX];

	if (nt_smtp_check(cfg, why, sizeof why) != 0)
		goto fail;
	if (nt_from_parse(from, cfg->from, why + 8, sizeof why - 8) != 0) {
		memcpy(why, "--from: ", 8);
		goto fail;
	}
	if (cfg->claim_idle_ms <= cfg->smtp_timeout_ms) {
		snprintf(why, sizeof why,
		         "--claim-idle: must be longer than --smtp-timeout, "
		         "or a slow mail would be sent twice");
		goto fail;
	}
	if (cfg->retry_max_ms < cfg->retry_min_ms) {
		snprintf(why, sizeof why,
		         "--retry-max: must not be shorter than --retry-min");
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "studyshare-notify: %s\n", why);
	return -1;
}

/* The templates of the source tree: this file's directory (CMake passes
 * absolute source paths) + "templates". */
static void
default_templates(char *out, size_t len)
{
	const char *f = __FILE__;
	const char *slash = strrchr(f, '/');

	if (slash == NULL)
		snprintf(out, len, "templates");
	else
		snprintf(out, len, "%.*s/templates", (int)(slash - f), f);
}

int
main(int argc, char **argv)
{
	const ss_cfg_table tabs[] = {ss_common_table, nt_settings_table};
	char tdir[4096], why[NT_WHY_MAX];
	nt_templates tpl = {0};
	nt_settings cfg;
	nt_from from;
	nt_smtp *smtp = NULL;
	nt_worker *w = NULL;
	ss_seal_key key;
	ss_daemon d;
	int rv = 1;

	if ((rv = ss_config_main(tabs, 2, &cfg, argc, argv, "notify")) >= 0)
		return rv;
	rv = 1;
	if (check_settings(&cfg, &from) != 0 ||
	    ss_seal_key_init(&key, cfg.mail_key, strlen(cfg.mail_key)) != 0) {
		ss_config_free(tabs, 2, &cfg);
		return 2;
	}
	if (cfg.templates[0] != '\0')
		snprintf(tdir, sizeof tdir, "%s", cfg.templates);
	else
		default_templates(tdir, sizeof tdir);
	if (nt_templates_load(&tpl, tdir, why, sizeof why) != 0) {
		fprintf(stderr, "studyshare-notify: --templates: %s\n", why);
		ss_seal_key_clear(&key);
		ss_config_free(tabs, 2, &cfg);
		return 2;
	}
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "studyshare-notify: cannot initialise "
		                "libsodium or libcurl\n");
		goto fail_tpl;
	}
	if (ss_daemon_init(&d, "notify", &cfg.common) != 0)
		goto fail_curl;
	if (nt_smtp_open(&smtp, &d, &cfg, &from) != 0 ||
	    nt_worker_start(&w, &d, &cfg, &key, &tpl, &from, smtp) != 0) {
		ss_error("daemon.start_failed", NULL, NULL);
		goto fail;
	}
	ss_info("notify.templates", NULL, "dir", tdir, NULL);
	rv = ss_daemon_run(&d);
fail:
	/* SMTP first: its threads may still read the messages of tasks. */
	nt_smtp_close(smtp);
	nt_worker_close(w);
	ss_daemon_fini(&d);
fail_curl:
	curl_global_cleanup();
fail_tpl:
	nt_templates_free(&tpl);
	ss_seal_key_clear(&key);
	ss_config_free(tabs, 2, &cfg);
	return rv == 0 ? 0 : 1;
}
