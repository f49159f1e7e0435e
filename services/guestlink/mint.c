/*
 * services/guestlink/mint.c - what creating a guest link (create.c) and
 * an upload link (upload.c) do alike: the fields both take (expiry,
 * email, message, addr, password), the password's hash, the fresh token
 * with its id and sealed copy, the worklist index entry, and the link's
 * hash in Redis.  The kinds differ in their other fields, in the lookup
 * hash of their token and in their index, which the callers pass.
 */
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/mailq.h"
#include "runtime/passwd.h"
#include "services/guestlink/guestlink.h"

int
gl_parse_expiry(const gl_settings *cfg, int64_t now, const msgpack_object *at,
                const msgpack_object *in, int64_t *exp_ms, char *why,
                size_t whylen)
{
	if (at != NULL && in != NULL) {
		snprintf(why, whylen,
		         "fields 'expires_at' and 'expires_in': give one of "
		         "them");
		return SS_EBADREQ;
	}
	if (at != NULL) {
		ss_str t = ss_obj_str(at);
		if (gl_time_parse(t.p, t.n, exp_ms) != 0) {
			snprintf(why, whylen,
			         "field 'expires_at': expected an RFC 3339 "
			         "time (2026-12-31T00:00:00Z)");
			return SS_EBADREQ;
		}
		if (*exp_ms <= now) {
			snprintf(why, whylen,
			         "field 'expires_at': must be in the future");
			return SS_EBADREQ;
		}
	} else if (in != NULL) {
		*exp_ms = now + ss_obj_int(in) * 1000;
	} else {
		*exp_ms = now + cfg->default_expiry_ms;
	}
	if (*exp_ms > now + cfg->max_expiry_ms) {
		snprintf(why, whylen, "field '%s': at most %lld days ahead",
		         at != NULL ? "expires_at" : "expires_in",
		         (long long)(cfg->max_expiry_ms / 86400000));
		return SS_EBADREQ;
	}
	return 0;
}

/* v into dst, NUL-terminated, when ok; else the field is refused. */
static int
take(ss_str v, bool ok, char *dst, const char *name, const char *expected,
     char *why, size_t whylen)
{
	if (!ok) {
		snprintf(why, whylen, "field '%s': expected %s", name,
		         expected);
		return SS_EBADREQ;
	}
	memcpy(dst, v.p, v.n);
	dst[v.n] = '\0';
	return 0;
}

int
gl_parse_text(const msgpack_object *o, char *dst, const char *name, char *why,
              size_t whylen)
{
	ss_str v = ss_obj_str(o);

	return take(v, gl_valid_text(v.p, v.n, true), dst, name,
	            "UTF-8 text without control or direction characters", why,
	            whylen);
}

int
gl_parse_addr(const msgpack_object *o, char *dst, char *why, size_t whylen)
{
	ss_str v = ss_obj_str(o);

	return take(v, gl_valid_addr(v.p, v.n), dst, "addr", "a client address",
	            why, whylen);
}

int
gl_parse_password(const msgpack_object *o, char *dst, size_t *n, char *why,
                  size_t whylen)
{
	ss_str v = ss_obj_str(o);

	*n = v.n;
	return take(v, ss_mail_utf8_ok(v.p, v.n), dst, "password", "UTF-8", why,
	            whylen);
}

int
gl_parse_email(const msgpack_object *o, char *dst, char *why, size_t whylen)
{
	ss_str v = ss_obj_str(o);

	return take(v, ss_mail_addr_ok(v.p, v.n), dst, "email",
	            "an email address", why, whylen);
}

/* Thread: worker (Argon2id must not run on the loop). */
int
gl_hash_password(gl_server *s, char password[GL_PW_MAX + 1], size_t n,
                 char hash[SS_PASSWD_HASH_LEN])
{
	int rv = ss_passwd_hash(s->cfg->pepper, password, n, hash);

	/* The clear password is of no use once hashed. */
	sodium_memzero(password, GL_PW_MAX + 1);
	return rv;
}

int
gl_hash_submit(gl_server *s, ss_work_fn fn, ss_done_fn done, void *arg)
{
	int rv;

	/* Hashes and checks share the workers: past --checks-max a new one
	 * would only queue behind them. */
	if (s->checking >= s->cfg->checks_max)
		return SS_ETOOMANY;
	s->checking++;
	if ((rv = ss_work_submit(s->work, fn, done, arg)) != 0)
		s->checking--;
	return rv;
}

void
gl_hash_done(gl_server *s)
{
	s->checking--;
}

void
gl_reply_busy(ss_call *c)
{
	ss_call_reply_err_retry(c, SS_ETOOMANY,
	                        "too many passwords are being checked; retry "
	                        "in a moment",
	                        1);
}

int
gl_mint_token(gl_server *s, const gl_mint *m, ss_redis_fn fn, void *arg)
{
	char key[GL_KEY_MAX], purge[24];
	const char *argv[3];
	int rv;

	if ((rv = ss_token_new(m->token)) != 0 ||
	    (rv = m->ids(s, m->token, SS_TOKEN_LEN, m->th, m->id)) != 0 ||
	    (rv = gl_seal_token(s, m->id, m->token, m->sealed, m->cap,
	                        m->sealed_len)) != 0 ||
	    (rv = gl_key_index(key, m->wl, m->index)) != 0)
		return rv;
	/* The index entry lives as long as the link's hash: both are purged
	 * a grace period after the expiry. */
	snprintf(purge, sizeof purge, "%lld",
	         (long long)(m->exp_ms + s->cfg->grace_ms));
	argv[0] = key;
	argv[1] = purge;
	argv[2] = m->id;
	return ss_redis_eval(s->redis, &gl_script_index_add, fn, arg, 1, 3,
	                     argv, NULL);
}

int
gl_store_link(gl_server *s, const gl_new_link *n, ss_redis_fn fn, void *arg)
{
	int64_t purge = n->exp_ms + s->cfg->grace_ms;
	char key[GL_KEY_MAX];
	ss_argv a;
	int rv;

	if ((rv = gl_key_link(key, n->id, NULL)) != 0)
		return rv;
	ss_argv_init(&a);
	ss_argv_pushs(&a, key);
	ss_argv_pushi(&a, purge);
	if (n->kind != NULL)
		gl_argv_kv(&a, "kind", n->kind);
	gl_argv_kv(&a, "th", n->th);
	ss_argv_pushs(&a, "tok");
	ss_argv_push(&a, (const char *)n->tok, n->tok_len);
	ss_argv_pushs(&a, "view");
	ss_argv_push(&a, (const char *)n->view, n->view_len);
	gl_argv_kv(&a, "study", n->study);
	gl_argv_kv(&a, "wl", n->wl);
	if (n->wl_name != NULL && n->wl_name[0] != '\0')
		gl_argv_kv(&a, "wlname", n->wl_name);
	gl_argv_kv(&a, "by", n->by);
	gl_argv_kv(&a, "by_email", n->by_email);
	gl_argv_ki(&a, "at", n->at);
	gl_argv_ki(&a, "exp", n->exp_ms);
	gl_argv_ki(&a, "purge", purge);
	gl_argv_ki(&a, "max", n->max_uses);
	gl_argv_ki(&a, "uses", 0);
	gl_argv_ki(&a, "maxpw", n->pw != NULL ? n->max_pw : 0);
	gl_argv_ki(&a, "fail", 0);
	gl_argv_kv(&a, "pw", n->pw != NULL ? n->pw : "");
	gl_argv_kv(&a, "dob", n->dob ? "1" : "0");
	gl_argv_kv(&a, "email", n->email);
	gl_argv_kv(&a, "msg", n->msg);
	gl_argv_kv(&a, "notify", n->notify ? "1" : "0");
	gl_argv_kv(&a, "priors", n->priors ? "1" : "0");
	gl_argv_kv(&a, "puids", n->puids);
	gl_argv_kv(&a, "state", "active");
	if ((rv = ss_argv_status(&a)) == 0)
		rv = ss_redis_eval(s->redis, &gl_script_store, fn, arg, 1, a.n,
		                   a.v, a.lens);
	ss_argv_free(&a);
	return rv;
}

void
gl_argv_kv(ss_argv *a, const char *k, const char *v)
{
	ss_argv_pushs(a, k);
	ss_argv_pushs(a, v);
}

void
gl_argv_ki(ss_argv *a, const char *k, int64_t v)
{
	ss_argv_pushs(a, k);
	ss_argv_pushi(a, v);
}
