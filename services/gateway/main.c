/*
 * services/gateway/main.c - the gateway daemon: wires config, loop, Redis
 * (rate limits), the clients of authz, share and guestlink, the templates
 * and the HTTP server with its route table.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/config.h"
#include "runtime/daemon.h"
#include "runtime/ingest_client.h"
#include "runtime/keycheck.h"
#include "runtime/log.h"
#include "runtime/work.h"
#include "services/gateway/gateway.h"

#define OPT(n, t, d, lo, hi, f, h)                                             \
	{                                                                      \
		n, t, d, lo, hi, offsetof(gw_settings, f), h                   \
	}

static const ss_cfg_opt opts[] = {
    OPT("listen", SS_CFG_ADDR, "127.0.0.1:8080", 1, 255, listen,
        "host:port of the HTTP server (API, pages, web UI)"),
    OPT("authz-url", SS_CFG_ADDR, "tcp://127.0.0.1:7101", 0, 0, authz_url,
        "NNG address of authz"),
    OPT("authz-timeout", SS_CFG_MS, "5s", 10, 60000, authz_timeout_ms,
        "time authz has to answer a request before the client gets 503"),
    OPT("share-url", SS_CFG_ADDR, "tcp://127.0.0.1:7201", 0, 0, share_url,
        "NNG address of share's RPC endpoint"),
    OPT("share-timeout", SS_CFG_MS, "5s", 10, 60000, share_timeout_ms,
        "time share has to answer a request before the client gets 503"),
    OPT("guestlink-url", SS_CFG_ADDR, "tcp://127.0.0.1:7401", 0, 0,
        guestlink_url, "NNG address of guestlink"),
    OPT("guestlink-timeout", SS_CFG_MS, "5s", 10, 60000, guestlink_timeout_ms,
        "time guestlink has to answer a request before the client gets 503"),
    OPT("jwt-secret", SS_CFG_SECRET, NULL, 32, 1024, jwt_secret,
        "HS256 key of the bearer tokens; changing it ends every session"),
    OPT("token-ttl", SS_CFG_MS, "8h", 60000, 7LL * 86400000, token_ttl_ms,
        "lifetime of a bearer token issued by POST /api/v1/sessions"),
    OPT("operator-token", SS_CFG_SECRET, "", 0, 1024, operator_token,
        "bearer token of PUT /api/v1/directory (at least 32 bytes); empty "
        "disables that route"),
    OPT("body-max", SS_CFG_INT, "65536", 1024, 1048576, body_max,
        "largest JSON request body in bytes; larger ones get 413"),
    OPT("directory-body-max", SS_CFG_INT, "1000000", 1024, 67108864,
        directory_max,
        "largest directory document PUT /api/v1/directory takes, in bytes "
        "(keep it under the gateway's and authz's recv-max, less 1 KiB)"),
    OPT("https", SS_CFG_BOOL, "false", 0, 0, https,
        "the gateway is reached over HTTPS (behind a TLS proxy): cookies "
        "get Secure, answers get Strict-Transport-Security"),
    OPT("trust-proxy", SS_CFG_BOOL, "false", 0, 0, trust_proxy,
        "take the client's address from the last X-Forwarded-For entry "
        "(only behind a proxy that sets it)"),
    OPT("web-root", SS_CFG_STR, "", 0, 900, web_root,
        "directory of the web UI (index.html, static/, templates/); empty: "
        "the web/ directory of the source tree the binary was built from"),
    OPT("guest-password-limit", SS_CFG_INT, "60", 1, 1000000,
        guest_password_limit,
        "guest link password posts per client address per rate-window"),
    OPT("registration-limit", SS_CFG_INT, "10", 1, 1000000, registration_limit,
        "registration attempts per client address per rate-window"),
    OPT("rate-window", SS_CFG_MS, "60s", 1000, 86400000, rate_window_ms,
        "window of the gateway's per-address rate limits"),
    OPT("http-timeout", SS_CFG_MS, "30s", 1000, 600000, http_timeout_ms,
        "how long an HTTP connection may sit idle (nothing received or "
        "sent); a client sending a byte at a time is not cut off by it: "
        "a proxy in front buffers requests (deploy/k8s/README.md)"),
    OPT("static-max-age", SS_CFG_MS, "0s", 0, 86400000, static_max_age_ms,
        "Cache-Control max-age of the web UI's files; 0: no-cache "
        "(revalidated with their ETag every time)"),
    OPT("spool-dir", SS_CFG_STR, "", 0, 900, spool_dir,
        "directory where uploaded DICOM files are kept (named by their "
        "SHA-256, fsynced); empty: guest uploads are refused with 503"),
    OPT("stow-url", SS_CFG_STR, "", 0, 900, stow_url,
        "DICOMweb STOW-RS URL (.../studies) each uploaded file is "
        "forwarded to; empty: no forwarding"),
    OPT("stow-timeout", SS_CFG_MS, "60s", 100, 600000, stow_timeout_ms,
        "time the STOW-RS server has to take one file"),
    OPT("ingest-url", SS_CFG_ADDR, "tcp://127.0.0.1:7300", 0, 0, ingest_url,
        "NNG address of share's ingest endpoint (uploaded studies arrive "
        "there as study.arrived)"),
    OPT("ingest-timeout", SS_CFG_MS, "10s", 10, 60000, ingest_timeout_ms,
        "time share's ingest has to store an uploaded study"),
    OPT("upload-file-max", SS_CFG_INT, "67108864", 1024, 2147483647LL,
        upload_file_max,
        "largest DICOM file a guest may upload, in bytes (413 beyond); "
        "the whole file is held in memory while it is checked"),
    OPT("upload-session-max", SS_CFG_INT, "2147483648", 1024, 1099511627776LL,
        upload_session_max,
        "bytes one upload session (one use of an upload link) may send in "
        "all (413 beyond)"),
    OPT("upload-refusal-limit", SS_CFG_INT, "10", 1, 1000000,
        upload_refusal_limit,
        "files (a Study UID with a patient) a client address may have "
        "refused as another patient's per upload-refusal-window before "
        "its uploads get 429 (bounds probing which patient a Study UID "
        "belongs to; the same file again does not count)"),
    OPT("upload-refusal-window", SS_CFG_MS, "1h", 1000, 86400000,
        upload_refusal_window_ms,
        "window of upload-refusal-limit: an address's count starts with "
        "its first upload and ends a window later"),
    OPT("upload-inflight-max", SS_CFG_INT, "32", 1, 100000, upload_inflight_max,
        "upload requests one client address may have in progress at once "
        "(429 beyond; they count with upload-refusal-limit, so that "
        "requests sent side by side cannot pass its check together)"),
    OPT("upload-workers", SS_CFG_INT, "2", 1, 64, upload_workers,
        "threads that spool, forward and announce uploaded files off the "
        "event loop"),
};

const struct ss_cfg_table gw_settings_table = {
    opts, sizeof opts / sizeof opts[0], NULL};

static const gw_route routes[] = {
    {"sessions.create", GW_POST, "/api/v1/sessions", GW_AUTH_NONE, false,
     gw_api_session, false},
    {"worklists.list", GW_GET, "/api/v1/worklists", GW_AUTH_BEARER, false,
     gw_api_worklists, false},
    {"worklists.get", GW_GET, "/api/v1/worklists/*", GW_AUTH_BEARER, false,
     gw_api_worklist, false},
    {"studies.list", GW_GET, "/api/v1/worklists/*/studies", GW_AUTH_BEARER,
     false, gw_api_studies, false},
    {"studies.get", GW_GET, "/api/v1/studies/*", GW_AUTH_BEARER, false,
     gw_api_study, false},
    {"shares.create", GW_POST, "/api/v1/studies/*/shares", GW_AUTH_BEARER,
     false, gw_api_share_create, false},
    {"shares.history", GW_GET, "/api/v1/studies/*/shares", GW_AUTH_BEARER,
     false, gw_api_share_history, false},
    {"links.create", GW_POST, "/api/v1/studies/*/guest-links", GW_AUTH_BEARER,
     false, gw_api_link_create, false},
    {"links.list", GW_GET, "/api/v1/studies/*/guest-links", GW_AUTH_BEARER,
     false, gw_api_link_list, false},
    {"links.delete", GW_DELETE, "/api/v1/guest-links/*", GW_AUTH_BEARER, false,
     gw_api_link_delete, false},
    {"links.unlock", GW_POST, "/api/v1/guest-links/*/unlock", GW_AUTH_BEARER,
     false, gw_api_link_unlock, false},
    {"registrations.create", GW_POST, "/api/v1/registrations", GW_AUTH_NONE,
     false, gw_api_register, false},
    {"directory.import", GW_PUT, "/api/v1/directory", GW_AUTH_OPERATOR, false,
     gw_api_directory, true},
    {"page.guest", GW_GET | GW_POST, "/g/*", GW_AUTH_NONE, true, gw_page_guest,
     false},
    {"uploads.create", GW_POST, "/api/v1/worklists/*/upload-links",
     GW_AUTH_BEARER, false, gw_api_upload_create, false},
    {"uploads.list", GW_GET, "/api/v1/worklists/*/upload-links", GW_AUTH_BEARER,
     false, gw_api_upload_list, false},
    {"uploads.update", GW_PATCH, "/api/v1/upload-links/*", GW_AUTH_BEARER,
     false, gw_api_upload_update, false},
    {"uploads.delete", GW_DELETE, "/api/v1/upload-links/*", GW_AUTH_BEARER,
     false, gw_api_upload_delete, false},
    {"page.upload", GW_GET | GW_POST, "/u/*", GW_AUTH_NONE, true,
     gw_page_upload, false},
    {"upload.files", GW_POST, "/u/*/files", GW_AUTH_NONE, false,
     gw_page_upload_files, false},
    {"page.register", GW_GET, "/register", GW_AUTH_NONE, true, gw_page_register,
     false},
    {"page.index", GW_GET | GW_HEAD, "/", GW_AUTH_NONE, true, gw_page_index,
     false},
    {"static", GW_GET | GW_HEAD, "/static/*", GW_AUTH_NONE, true,
     gw_page_static, false},
};

static const char *const tmpl_files[GW_NTMPL] = {
    [GW_T_GUEST_PASSWORD] = "guest_password.html",
    [GW_T_GUEST_VIEW] = "guest_view.html",
    [GW_T_GONE] = "guest_gone.html",
    [GW_T_REGISTER] = "register.html",
    [GW_T_NOT_FOUND] = "not_found.html",
    [GW_T_ERROR] = "error.html",
    [GW_T_UPLOAD_PASSWORD] = "upload_password.html",
    [GW_T_UPLOAD] = "upload.html",
};

/* What the table's bounds cannot say: a URL's form, and one setting
 * against another.  A mistake here would show only at the first upload
 * or import. */
static int
check_settings(const gw_settings *cfg)
{
	const char *u = cfg->stow_url, *host;

	if (u[0] != '\0') {
		host = strncmp(u, "http://", 7) == 0    ? u + 7
		       : strncmp(u, "https://", 8) == 0 ? u + 8
		                                        : NULL;
		if (host == NULL || host[0] == '\0' || host[0] == '/') {
			fprintf(stderr, "studyshare-gateway: stow-url: "
			                "expected http://host[:port]/... or "
			                "https://host[:port]/...\n");
			return SS_EBADREQ;
		}
	}
	/* The document goes to authz in one NNG message of at most
	 * --recv-max, with its envelope. */
	if (cfg->directory_max > cfg->common.recv_max - 1024) {
		fprintf(stderr,
		        "studyshare-gateway: directory-body-max: %lld is over "
		        "--recv-max (%lld) less 1024; raise --recv-max here "
		        "and in authz\n",
		        (long long)cfg->directory_max,
		        (long long)cfg->common.recv_max);
		return SS_EBADREQ;
	}
	return 0;
}

/* The web/ directory beside services/ in the tree this file was built
 * from (CMake passes absolute source paths). */
static int
web_root(gw_server *s)
{
	const char *f = __FILE__, *cut = strstr(f, "services/gateway/main.c");

	if (s->cfg->web_root[0] != '\0') {
		snprintf(s->web_root, sizeof s->web_root, "%s",
		         s->cfg->web_root);
		return 0;
	}
	if (cut == NULL || cut == f) {
		snprintf(s->web_root, sizeof s->web_root, "web");
		return 0;
	}
	snprintf(s->web_root, sizeof s->web_root, "%.*sweb", (int)(cut - f), f);
	return 0;
}

static int
load_templates(gw_server *s)
{
	char path[1200];
	int rv;

	for (int i = 0; i < GW_NTMPL; i++) {
		snprintf(path, sizeof path, "%s/templates/%s", s->web_root,
		         tmpl_files[i]);
		if ((rv = gw_tmpl_load(&s->tmpl[i], path)) != 0) {
			fprintf(stderr,
			        "studyshare-gateway: web-root: cannot read %s "
			        "(%s)\n",
			        path, ss_err_word(rv));
			return rv;
		}
	}
	return 0;
}

/* SIGTERM: no new connections; requests in flight finish (each holds the
 * daemon), and keep-alive connections get 503 with Connection: close. */
#define GW_FLUSH_MS 200 /* at exit, for the last answers' bytes */

/* The closes answered what the drain left (503 and the like) into
 * evhttp's buffers, but the loop has stopped: a moment more of it writes
 * them before evhttp closes the connections.  A request arriving meanwhile
 * gets 503 from dispatch() (the daemon is stopping); no handler runs. */
static void
flush_answers(ss_daemon *d)
{
	struct timeval tv = {0, GW_FLUSH_MS * 1000};

	if (event_base_loopexit(d->base, &tv) == 0)
		(void)event_base_loop(d->base, 0);
}

static void
on_stop(void *arg)
{
	gw_server *s = arg;

	if (s->bound != NULL) {
		evhttp_del_accept_socket(s->http, s->bound);
		s->bound = NULL;
	}
}

int
main(int argc, char **argv)
{
	const ss_cfg_table tabs[] = {ss_common_table, gw_settings_table};
	static ss_script *scripts[] = {&gw_script_limit,
	                               &gw_script_upload_slot};
	gw_settings cfg;
	gw_server s = {0};
	ss_keycheck *kc = NULL;
	ss_daemon d;
	bool ran = false;
	int rv = 1;

	if ((rv = ss_config_main(tabs, 2, &cfg, argc, argv, "gateway")) >= 0)
		return rv;
	/* not data in Redis, but every replica must sign with one secret */
	const char *const keys[] = {"jwt-secret", "gateway.jwt", cfg.jwt_secret,
	                            NULL};
	rv = 1;
	s.cfg = &cfg;
	s.d = &d;
	ss_pack_init(&s.scratch);
	msgpack_sbuffer_init(&s.out);
	if (cfg.spool_dir[0] != '\0' &&
	    access(cfg.spool_dir, W_OK | X_OK) != 0) {
		fprintf(stderr,
		        "studyshare-gateway: spool-dir: %s is not a "
		        "writable directory\n",
		        cfg.spool_dir);
		rv = 2;
		goto fail_cfg;
	}
	if (check_settings(&cfg) != 0) {
		rv = 2;
		goto fail_cfg;
	}
	if (web_root(&s) != 0 || load_templates(&s) != 0 ||
	    gw_operator_init(&s) != 0) {
		rv = 2;
		goto fail_cfg;
	}
	if (ss_daemon_init(&d, "gateway", &cfg.common) != 0)
		goto fail_cfg;
	/* Every replica, and the next process, names a refused upload alike
	 * (upload_limit.c): the key is derived from the shared secret. */
	if (sodium_init() < 0 ||
	    crypto_generichash(
	        s.refusal_key, sizeof s.refusal_key,
	        (const unsigned char *)"studyshare upload refusals", 26,
	        (const unsigned char *)cfg.jwt_secret,
	        strlen(cfg.jwt_secret) > crypto_generichash_KEYBYTES_MAX
	            ? crypto_generichash_KEYBYTES_MAX
	            : strlen(cfg.jwt_secret)) != 0)
		goto fail;
	s.m_limited = ss_counter("studyshare_http_rate_limited_total",
	                         "requests refused by a per-address rate "
	                         "limit",
	                         NULL);
	s.m_upload_refused = ss_counter("studyshare_upload_refused_total",
	                                "guest uploads refused by the "
	                                "gateway's own checks, before the "
	                                "link is known",
	                                NULL);
	if (ss_redis_open(&s.redis, &d, "redis", cfg.common.redis_addr,
	                  cfg.common.redis_user, cfg.common.redis_password,
	                  (int)cfg.common.redis_timeout_ms, scripts,
	                  sizeof scripts / sizeof scripts[0]) != 0 ||
	    ss_req_dial(&s.authz, &d, cfg.authz_url,
	                (int)cfg.authz_timeout_ms) != 0 ||
	    ss_req_dial(&s.share, &d, cfg.share_url,
	                (int)cfg.share_timeout_ms) != 0 ||
	    ss_req_dial(&s.guestlink, &d, cfg.guestlink_url,
	                (int)cfg.guestlink_timeout_ms) != 0 ||
	    ss_work_open(&s.work, &d, (int)cfg.upload_workers) != 0 ||
	    ss_ingest_open(&s.ingest, cfg.ingest_url,
	                   (int)cfg.ingest_timeout_ms) != 0 ||
	    ss_keycheck_start(&kc, &d, s.redis, keys) != 0 ||
	    ss_daemon_on_stop(&d, on_stop, &s) != 0 ||
	    gw_http_start(&s, routes, sizeof routes / sizeof routes[0]) != 0) {
		ss_error("daemon.start_failed", NULL, "listen", cfg.listen,
		         NULL);
		goto fail;
	}
	ss_info("gateway.web_root", NULL, "path", s.web_root, NULL);
	rv = ss_daemon_run(&d);
	ran = true;
fail:
	/* Requests still waiting past the drain are answered by the
	 * callbacks these closes run, so evhttp goes last.  Each close may
	 * start work on those after it (a rate limit's answer calls a
	 * daemon, a finished upload calls guestlink), never on those
	 * before it. */
	atomic_store(&s.closing, true);
	ss_keycheck_close(kc);
	if (s.redis != NULL)
		ss_redis_close(s.redis);
	s.redis = NULL; /* requests answered from here on do not count */
	if (s.work != NULL)
		ss_work_close(s.work);
	if (s.ingest != NULL)
		ss_ingest_close(s.ingest);
	if (s.guestlink != NULL)
		ss_req_close(s.guestlink);
	if (s.share != NULL)
		ss_req_close(s.share);
	if (s.authz != NULL)
		ss_req_close(s.authz);
	if (ran)
		flush_answers(&d);
	gw_http_stop(&s);
	ss_daemon_fini(&d);
fail_cfg:
	for (int i = 0; i < GW_NTMPL; i++)
		gw_tmpl_free(&s.tmpl[i]);
	ss_pack_free(&s.scratch);
	msgpack_sbuffer_destroy(&s.out);
	ss_config_free(tabs, 2, &cfg);
	return rv == 0 ? 0 : rv;
}
