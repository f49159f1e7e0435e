/*
 * services/gateway/gateway.h - the gateway's state, shared by its modules.
 *
 * The gateway is the HTTP edge (API.md): the JSON API under /api/v1, the
 * guest pages /g/{token}, the registration page /register and the static
 * web UI, all on one evhttp server on the daemon's loop.  It decides no
 * permission itself: every request becomes a message to authz, share or
 * guestlink (one ss_req per peer, many in flight, a timeout per call),
 * and the reply becomes the HTTP answer.  Its own state is the signing
 * secret of the bearer JWTs and the per-address rate-limit counters in
 * Redis (shared by every gateway replica).
 *
 * Modules, one job each:
 *   http.c      the server: routing, authentication, replies, headers
 *   route.c     matching a method and a path against the route table
 *   json.c      request bodies: JSON with limits, fields, share targets
 *   form.c      percent-decoding, form bodies, query strings, cookies
 *   jwt.c       bearer tokens: minting and pinned HS256 verification
 *   peer.c      a request to a daemon on behalf of an HTTP request
 *   limit.c     per-address rate limits (Redis counters)
 *   upload_limit.c  per-address bounds on uploads: in flight, refused
 *   tmpl.c      HTML templates of the pages
 *   static.c    the web UI's files
 *   api_*.c     the /api/v1 routes, one area each
 *   guest.c     /g/{token}
 *   upload*.c   guest uploads: /u/{token}, upload links (upload.h)
 *   register.c  /register and POST /api/v1/registrations
 */
#ifndef SS_GATEWAY_GATEWAY_H
#define SS_GATEWAY_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/envelope.h"
#include "runtime/daemon.h"
#include "runtime/metrics.h"
#include "runtime/redis.h"
#include "runtime/req.h"

struct evbuffer;
struct evhttp;
struct evhttp_request;
struct evhttp_bound_socket;

/* --- settings (main.c) ------------------------------------------------ */

typedef struct gw_settings {
	ss_common_settings common; /* must stay first */
	char *listen;              /* host:port of the HTTP server */
	char *authz_url;
	int64_t authz_timeout_ms;
	char *share_url;
	int64_t share_timeout_ms;
	char *guestlink_url;
	int64_t guestlink_timeout_ms;
	char *jwt_secret;
	int64_t token_ttl_ms;
	char *operator_token; /* "" disables PUT /api/v1/directory */
	int64_t body_max;
	int64_t directory_max;
	bool https;
	bool trust_proxy;
	char *web_root; /* "" : the source tree's web/ */
	int64_t guest_password_limit;
	int64_t registration_limit;
	int64_t rate_window_ms;
	int64_t http_timeout_ms;
	int64_t static_max_age_ms;
	/* guest uploads (upload.c) */
	char *spool_dir; /* "" : uploads are refused (503) */
	char *stow_url;  /* "" : no forwarding */
	int64_t stow_timeout_ms;
	char *ingest_url;
	int64_t ingest_timeout_ms;
	int64_t upload_file_max;
	int64_t upload_session_max;
	int64_t upload_refusal_limit;
	int64_t upload_refusal_window_ms;
	int64_t upload_inflight_max;
	int64_t upload_workers;
} gw_settings;

extern const struct ss_cfg_table gw_settings_table;

/* --- bounds ----------------------------------------------------------- */

#define GW_USER_MAX    64   /* a user id */
#define GW_ADDR_MAX    63   /* a client address as passed to the daemons */
#define GW_PARAM_MAX   256  /* a decoded path parameter */
#define GW_NPARAMS     2    /* path parameters of one route */
#define GW_JWT_MAX     4096 /* a presented bearer token */
#define GW_PW_MAX      1024 /* a guest link password */
#define GW_SESSION_MAX 128  /* a guest viewer session (cookie) */
#define GW_EXP_MAX     40   /* an RFC 3339 time, as guestlink writes it */
#define GW_UA_MAX      2048 /* user agent passed on, cut beyond */
#define GW_QUERY_MAX   512  /* a decoded query parameter */
#define GW_TEXT_MAX    512  /* an error message answered (gw_text) */
#define GW_COOKIE      "ss_guest"
#define GW_UP_COOKIE   "ss_upload"

/* The one answer for every unusable guest link (as guestlink's). */
#define GW_GONE_MSG "no such guest link"

/* --- JSON bodies (json.c) --------------------------------------------- */

typedef enum gw_jtype {
	GW_J_STR,
	GW_J_INT,
	GW_J_BOOL,
	GW_J_OBJ,
	GW_J_ARR,
} gw_jtype;

/* One field of a body: bounds as proto/fields.h (bytes of a string,
 * elements of an array or object, value of an integer; max 0: none). */
typedef struct gw_jfield {
	const char *name;
	gw_jtype type;
	bool required;
	int64_t min;
	int64_t max;
} gw_jfield;

/*
 * Parses an untrusted body: at most cap bytes (SS_ETOOLARGE), one JSON
 * object (SS_EBADREQ: empty, malformed, duplicate keys, a NUL in a string,
 * or not an object).  why gets a message for the client; *out the object.
 */
int gw_json_parse(const char *buf, size_t len, size_t cap, json_t **out,
                  char *why, size_t whylen);

/*
 * Checks obj against spec: no unknown field, every required one present,
 * types and bounds.  where prefixes field names in messages ("targets[2]."
 * or "").  0, or SS_EBADREQ with why naming the field.
 */
int gw_json_fields(const json_t *obj, const gw_jfield *spec, size_t n,
                   const char *where, char *why, size_t whylen);

/* Checks a share's "targets" array: each one of the six kinds of API.md
 * with exactly that kind's fields. */
int gw_json_targets(const json_t *arr, char *why, size_t whylen);

/* Packs the pairs of obj as a msgpack map with room for extra more pairs,
 * which the caller packs after.  0 or SS_EBADREQ. */
int gw_pack_object(ss_pack *p, const json_t *obj, size_t extra);

/* --- forms, queries, cookies (form.c) --------------------------------- */

/* Percent-decodes n bytes of s ('+' as a space when plus) into out
 * (NUL-terminated, *outlen bytes).  SS_EBADREQ for a bad escape, a NUL or
 * control byte, invalid UTF-8, or more than cap - 1 bytes. */
int gw_pct_decode(const char *s, size_t n, bool plus, char *out, size_t cap,
                  size_t *outlen);

/* The value of name in an x-www-form-urlencoded string or URL query:
 * 1 found (decoded into out), 0 absent, SS_EBADREQ malformed. */
int gw_form_get(const char *s, size_t n, const char *name, char *out,
                size_t cap, size_t *outlen);

/* SS_EBADREQ naming the first key that is not in allowed (a NULL-ended
 * list) or appears twice; 0 otherwise. */
int gw_form_check(const char *s, size_t n, const char *const *allowed,
                  char *why, size_t whylen);

/* The value of cookie name in a Cookie header: 1 found, 0 absent or too
 * long for out. */
int gw_cookie_get(const char *hdr, const char *name, char *out, size_t cap);

/* --- JWT (jwt.c) ------------------------------------------------------ */

#define GW_JWT_ISSUER "studyshare"

/* True for 1..GW_USER_MAX characters of [A-Za-z0-9._-]. */
bool gw_user_valid(const char *s, size_t n);

/* A token for user valid from now for ttl_s seconds; *out is malloc'd
 * (free()).  0, SS_EBADREQ for a bad user, SS_ENOMEM. */
int gw_jwt_mint(const char *key, size_t keylen, const char *user, int64_t now,
                int64_t ttl_s, char **out);

/*
 * Verifies a presented token: HS256 only (the header's alg must be
 * exactly that, whatever else libjwt would accept), the signature checked
 * in constant time, iss ours, exp in the future, sub a user id.  0 with
 * user and *exp set, or SS_EUNAUTH.
 */
int gw_jwt_verify(const char *key, size_t keylen, const char *tok, size_t n,
                  int64_t now, char user[GW_USER_MAX + 1], int64_t *exp);

/* --- routes (route.c) ------------------------------------------------- */

enum gw_method {
	GW_GET = 1 << 0,
	GW_HEAD = 1 << 1,
	GW_POST = 1 << 2,
	GW_PUT = 1 << 3,
	GW_DELETE = 1 << 4,
	GW_PATCH = 1 << 5,
	GW_OPTIONS = 1 << 6,
};

typedef enum gw_auth {
	GW_AUTH_NONE,     /* anyone */
	GW_AUTH_BEARER,   /* a user's JWT */
	GW_AUTH_OPERATOR, /* the operator token */
} gw_auth;

typedef struct gw_req gw_req;
typedef void (*gw_handler)(gw_req *r);

typedef struct gw_route {
	const char *name;    /* metrics and logs: never the path */
	int methods;         /* GW_* mask */
	const char *pattern; /* "/api/v1/studies/ * /shares": '*' a param */
	gw_auth auth;
	bool page; /* errors as HTML unless the client asks for JSON */
	gw_handler fn;
	/* A route without GET that checks its own query parameters (every
	 * other one refuses any, http.c). */
	bool own_query;
} gw_route;

typedef struct gw_params {
	char v[GW_NPARAMS][GW_PARAM_MAX + 1];
	size_t n;
	bool bad; /* one did not decode (or was too long): left "" */
} gw_params;

#define GW_ROUTE_NONE (-1) /* no route has this path */

/*
 * The index of the route for method and path (raw, still
 * percent-encoded), its parameters decoded into pm; one that does not
 * decode is "" and sets pm->bad (the caller decides: an API route's
 * malformed path, or a public page's own 404).  GW_ROUTE_NONE with
 * *allowed the methods of routes whose path matched (0: none: 404; else
 * 405).
 */
int gw_route_find(const gw_route *tab, size_t n, int method, const char *path,
                  gw_params *pm, int *allowed);

/* --- templates (tmpl.c) ----------------------------------------------- */

typedef struct gw_tmpl {
	char *text;
	size_t len;
} gw_tmpl;

#define GW_TMPL_MAX (256 * 1024)

/* Reads a template file; SS_ENOTFOUND, SS_ETOOLARGE or SS_ENOMEM. */
int gw_tmpl_load(gw_tmpl *t, const char *path);
void gw_tmpl_free(gw_tmpl *t);

/*
 * Renders t into out: {{name}} (name: [a-z0-9_]) is replaced by the
 * HTML-escaped value of name in vars (name, value, ..., NULL), {{{name}}} by
 * the value as it is (HTML the gateway built itself, escaping every piece); an
 * unknown name renders empty.  0 or SS_ENOMEM.
 */
int gw_tmpl_render(const gw_tmpl *t, const char *const *vars,
                   struct evbuffer *out);

/* Appends s HTML-escaped (& < > " ' become entities). */
int gw_html_escape(struct evbuffer *out, const char *s, size_t n);

/* --- static files (static.c) ------------------------------------------ */

/* The Content-Type of a served file name, NULL when not served. */
const char *gw_static_type(const char *name);
/* True for a flat file name: [A-Za-z0-9._-], no leading dot, a type. */
bool gw_static_name_ok(const char *name);

/* --- the server ------------------------------------------------------- */

/* The client's address behind a trusted proxy: the last entry of an
 * X-Forwarded-For value (the one the proxy itself appended), when it is
 * an IPv4 or IPv6 address; -1 leaves out untouched. */
int gw_xff_client(const char *xff, char out[GW_ADDR_MAX + 1]);

enum gw_tmpl_id {
	GW_T_GUEST_PASSWORD,
	GW_T_GUEST_VIEW,
	GW_T_GONE,
	GW_T_REGISTER,
	GW_T_NOT_FOUND,
	GW_T_ERROR,
	GW_T_UPLOAD_PASSWORD,
	GW_T_UPLOAD,
	GW_NTMPL,
};

typedef struct gw_route_metrics {
	ss_metric *requests;
	ss_metric *status[6]; /* by status class: 1xx .. 5xx */
	ss_metric *duration;
} gw_route_metrics;

typedef struct gw_server {
	const gw_settings *cfg;
	ss_daemon *d;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	ss_redis *redis;
	ss_req *authz;
	ss_req *share;
	ss_req *guestlink;
	ss_pack scratch;     /* requests are built here, then sent (copied) */
	msgpack_sbuffer out; /* gw_reply_mp's JSON text, then copied */
	char web_root[1024];
	gw_tmpl tmpl[GW_NTMPL];
	const gw_route *routes;
	size_t nroutes;
	gw_route_metrics *rm;      /* per route */
	gw_route_metrics rm_other; /* static files and unrouted paths */
	struct gw_req *spare;      /* freed requests kept for reuse (http.c) */
	size_t nspare;
	ss_metric *m_limited;
	ss_metric *m_upload_refused;
	unsigned char op_key[32];      /* keys the operator token comparison */
	unsigned char refusal_key[16]; /* keys the names of refused uploads
	                                * in Redis (upload.c), from the JWT
	                                * secret */
	unsigned char op_hash[32];
	bool op_enabled;
	struct ss_work_pool *work; /* uploads: spool, STOW, ingest */
	struct ss_ingest *ingest;  /* share's ingest endpoint */
	atomic_bool closing;       /* the drain is over: upload jobs stop
	                              before their next file (upload.c) */
	bool log_debug;            /* each answer is logged (http.c) */
} gw_server;

/*
 * One HTTP request, from its arrival to its answer: the explicit state of
 * the async flow.  Every handler ends in exactly one gw_reply_*(), which
 * sends the answer and frees the request.
 */
typedef enum gw_step {
	GW_STEP_ROUTE, /* routed and authenticated; the handler runs */
	GW_STEP_LIMIT, /* waiting for the rate limiter (Redis) */
	GW_STEP_PEER,  /* waiting for a daemon's reply */
	GW_STEP_DONE,  /* answered */
} gw_step;

typedef int (*gw_shape_fn)(gw_req *r, json_t *body, json_t **out);

struct gw_req {
	gw_server *s;
	struct evhttp_request *er;
	const gw_route *route;
	gw_route_metrics *rm;
	gw_step step;
	char id[SS_MAX_ID_LEN + 1];
	char addr[GW_ADDR_MAX + 1];
	char user[GW_USER_MAX + 1];
	gw_params pm;
	double t0;
	bool want_json; /* pages: the client asked for JSON */
	json_t *body;   /* a parsed JSON body */
	ss_req *peer;   /* the daemon last asked, for logs */
	/* the passthrough of a daemon's reply (peer.c) */
	int ok_status;
	gw_shape_fn shape;
	/* a refusal kept while authz says whether the user still exists */
	int refused;
	char refused_msg[GW_TEXT_MAX];
	/* the rate limiter (limit.c): the limit, then what runs next */
	int64_t limit;
	gw_handler next;
	bool up_slot; /* holds a slot among its address's uploads */
	/* guest pages (guest.c): secrets, wiped when the request is freed */
	bool has_pw;
	char pw[GW_PW_MAX + 1];
	size_t pwlen;
	char session[GW_SESSION_MAX + 1];
	struct gw_upload *up; /* POST /u/{token}/files (upload.c) */
	/* a link's page (linkpage.c): a refused password post is its form */
	const struct gw_link_kind *link;
	struct gw_req *spare_next; /* in s->spare */
};

/* http.c */
int gw_http_start(gw_server *s, const gw_route *routes, size_t n);
void gw_http_stop(gw_server *s);

/* The body of the request (not NUL-terminated); *n its length. */
const char *gw_body(gw_req *r, size_t *n);
/* A request header, or NULL. */
const char *gw_header(gw_req *r, const char *name);
/* The raw query string of the URL, or NULL. */
const char *gw_query(gw_req *r);
/* Adds a response header. */
void gw_add_header(gw_req *r, const char *name, const char *value);

/*
 * Parses the JSON body against spec (cap: settings' body-max) into
 * r->body.  Answers 400/413 itself and returns non-zero when refused.
 */
int gw_body_json(gw_req *r, const gw_jfield *spec, size_t n);

/* Checks the query against allowed names; answers 400 itself on refusal. */
int gw_query_check(gw_req *r, const char *const *allowed);
/* A query parameter: 1 found, 0 absent; answers 400 itself (and returns
 * SS_EBADREQ) when malformed. */
int gw_query_get(gw_req *r, const char *name, char *out, size_t cap);
/* The same for a required, non-empty parameter: 0 or non-zero (answered). */
int gw_query_need(gw_req *r, const char *name, char *out, size_t cap);

/* msg cut to cap - 1 bytes into dst with every byte that is not valid
 * UTF-8 made '?', so that jansson takes it (an error message may quote a
 * client's bytes, or be cut by snprintf inside a character).  Returns dst. */
const char *gw_text(char *dst, size_t cap, const char *msg);

/* Zeroes obj's string member field in place (a password), before the
 * tree is freed; anything else is left alone. */
void gw_json_wipe(json_t *obj, const char *field);

/* Replies; each sends the answer and frees r. */
void gw_reply_json(gw_req *r, int status, json_t *j); /* steals j */
/* A daemon's msgpack answer as JSON, without a tree (ss_mp_write_json);
 * 500 when it has no JSON form. */
void gw_reply_mp(gw_req *r, int status, const msgpack_object *o);
void gw_reply_error(gw_req *r, int err, const char *msg);
/* An error reply with extra members beside "error" (stolen). */
void gw_reply_error_extra(gw_req *r, int err, const char *msg, json_t *extra);
void gw_reply_html(gw_req *r, int status, struct evbuffer *body);
void gw_reply_body(gw_req *r, int status, const char *ctype, const char *cache,
                   struct evbuffer *body);
void gw_reply_empty(gw_req *r, int status);
/* A page from a template; on a render failure a plain 500. */
void gw_reply_page(gw_req *r, int status, int tmpl, const char *const *vars);
/* An error as the route wants it: JSON, or the error page for pages. */
void gw_fail(gw_req *r, int err, const char *msg);
/* gw_fail() with a Retry-After header (a 429 or 503). */
void gw_fail_retry(gw_req *r, int err, const char *msg, int retry_after);
/* Adds a Retry-After header of secs. */
void gw_retry_after(gw_req *r, int secs);

/* peer.c */
/* Starts a request to a daemon in s->scratch: pack one body map next. */
ss_pack *gw_peer_begin(gw_req *r, const char *type);
/* A request whose body is the request's JSON body with what the gateway
 * adds: user (the token's), key = the path's parameter, addr.  NULL when
 * the body cannot be packed (then answered 400). */
ss_pack *gw_peer_body(gw_req *r, const char *type, const char *key);
/* Zeroes s->scratch: a request that carried a password was copied out. */
void gw_peer_wipe(gw_server *s);
/* Sends it; fn gets the reply.  Answers 503 itself when it cannot. */
void gw_peer_send(gw_req *r, ss_req *peer, ss_reply_fn fn);
/* The same for a call the daemon answers quickly with a small reply: it
 * may go in one bus.batch with the others of this loop turn. */
void gw_peer_queue(gw_req *r, ss_req *peer, ss_reply_fn fn);
/* Answers an error reply or a failed call (timeout: 503); returns true
 * when it did, false when the reply is a success to handle. */
bool gw_peer_failed(gw_req *r, int err, const ss_msg *reply);
/* A reply fn that answers the reply's body as JSON with r->ok_status,
 * reshaped by r->shape when set. */
void gw_peer_pass(int err, const ss_msg *reply, void *arg);
/* Sends the request built in scratch and answers with gw_peer_pass. */
void gw_peer_passthrough(gw_req *r, ss_req *peer, int ok_status,
                         gw_shape_fn shape);
/* The same through gw_peer_queue(). */
void gw_peer_passthrough_queued(gw_req *r, ss_req *peer, int ok_status,
                                gw_shape_fn shape);

/* limit.c */
extern ss_script gw_script_limit;
/* Counts this request against kind's limit for the client's address;
 * over it answers 429 with Retry-After, else runs next. */
void gw_limit(gw_req *r, const char *kind, int64_t limit, gw_handler next);
/* 429 too_many_requests "too many <what>; retry in N seconds" with
 * Retry-After (ttl_ms rounded up to seconds, at least 1), counted. */
void gw_limited(gw_req *r, int64_t ttl_ms, const char *what);
/* The key of kind's count for r's client address (its IPv6 /64):
 * gateway:{rl:<kind>:<client>}. */
#define GW_LIMIT_KEY_MAX 160
void gw_limit_key(const gw_req *r, const char *kind,
                  char key[GW_LIMIT_KEY_MAX]);
/* 503: the rate limiter's store cannot be reached. */
void gw_limit_unavailable(gw_req *r);
/* For a limit script's callback: true when rep is its {count, ms left}
 * (r back at GW_STEP_ROUTE); else logged, answered 503, false. */
bool gw_limit_answered(gw_req *r, int err, const redisReply *rep);

/* static.c */
void gw_static_serve(gw_req *r, const char *name);

/* The handlers. */
void gw_api_session(gw_req *r);
void gw_api_worklists(gw_req *r);
void gw_api_worklist(gw_req *r);
void gw_api_studies(gw_req *r);
void gw_api_study(gw_req *r);
void gw_api_share_create(gw_req *r);
void gw_api_share_history(gw_req *r);
void gw_api_link_create(gw_req *r);
void gw_api_link_list(gw_req *r);
void gw_api_link_delete(gw_req *r);
void gw_api_link_unlock(gw_req *r);
void gw_api_directory(gw_req *r);
void gw_api_register(gw_req *r);
void gw_page_register(gw_req *r);
void gw_page_guest(gw_req *r);

/* linkpage.c: the page of a guest link (guest.c) and of an upload link
 * (upload.c) are redeemed and answered alike; what differs: */
typedef struct gw_link_kind {
	const char *method;   /* guestlink's redeem request */
	const char *gone_msg; /* the JSON 404's message */
	const char *cookie;   /* the session cookie's name */
	const char *path;     /* its Path before the token: "/g/" */
	enum gw_tmpl_id t_password;
	/* The HTML answer to a session (j: the reply, with "session"). */
	void (*page)(gw_req *r, const json_t *j);
} gw_link_kind;

/* GET: redeems (fn answers); POST: post, within the password limit.
 * A token without a token's shape is answered 404 here. */
void gw_link_page(const gw_link_kind *k, gw_req *r, gw_handler post,
                  ss_reply_fn fn);
/* POST: reads the password and redeems with it (fn answers). */
void gw_link_post(const gw_link_kind *k, gw_req *r, ss_reply_fn fn);
/* Asks guestlink to redeem r's token (r->pw, r->session when set). */
void gw_link_redeem(const gw_link_kind *k, gw_req *r, ss_reply_fn fn);
/* A redeem reply: answered here (true) unless it is a session: then its
 * "session" is in r->session and its "expires_at" in exp ("" if none). */
bool gw_link_redeemed(const gw_link_kind *k, gw_req *r, int err,
                      const ss_msg *reply, char exp[GW_EXP_MAX]);
/* A redeem reply answered in full: a session sets the cookie and is
 * answered with k->page (or JSON). */
void gw_link_answer(const gw_link_kind *k, gw_req *r, int err,
                    const ss_msg *reply);
void gw_link_gone(const gw_link_kind *k, gw_req *r);
/* Too many password posts from r's address: the form again, 429, with
 * Retry-After secs (gw_limited, for an HTML request of a link's page). */
void gw_link_limited(gw_req *r, int secs);
void gw_link_set_cookie(const gw_link_kind *k, gw_req *r, const char *session,
                        const char *expires_at);
/* r->session from the kind's cookie, when it has a session's shape. */
void gw_link_read_cookie(const gw_link_kind *k, gw_req *r);

void gw_page_index(gw_req *r);
void gw_page_static(gw_req *r);
void gw_api_upload_create(gw_req *r);
void gw_api_upload_list(gw_req *r);
void gw_api_upload_update(gw_req *r);
void gw_api_upload_delete(gw_req *r);
void gw_page_upload(gw_req *r);
void gw_page_upload_files(gw_req *r);
/* upload_limit.c: takes this request's slot among its address's uploads
 * (nfiles: for its lease): 429 when the address had
 * --upload-refusal-limit files refused as another patient's in the window
 * or has --upload-inflight-max uploads in progress, 503 when Redis cannot
 * count it, else next runs.  gw_upload_slot_put() gives it back (once the
 * answer is out, not awaited), counting refusal (a name, NULL: none). */
extern ss_script gw_script_upload_slot;
void gw_upload_slot_take(gw_req *r, size_t nfiles, gw_handler next);
void gw_upload_slot_put(gw_req *r, const char *refusal);

/* Frees what an upload request holds (http.c, when r is freed). */
void gw_upload_free(gw_req *r);

/* Operator token (api_directory.c): prepares the comparison. */
int gw_operator_init(gw_server *s);

/* Time. */
int64_t gw_now(void); /* unix seconds */
void gw_time_fmt(int64_t t, char out[21]);
/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac]Z" -> unix seconds; SS_EBADREQ. */
int gw_time_parse(const char *s, int64_t *t);
/* An RFC 3339 time as people read it, "7 December 2026, 13:50 UTC"
 * (pages without a script cannot show the reader's own zone); the input
 * itself when it does not parse. */
void gw_time_human(const char *rfc3339, char out[GW_EXP_MAX]);

#endif
