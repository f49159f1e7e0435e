/*
 * services/guestlink/owner.c - may this user manage this link?
 *
 * Deleting and unlocking a link need links.guest.create on the worklist
 * the link was made from (API.md "Guest links"), whoever made it:
 *
 *   OW_READ   HMGET link:{<id>} wl study (none: not_found)
 *   OW_CHECK  authz.check links.guest.create on that worklist
 *   OW_MEMBER refused: authz.worklist.get, is the caller a member there?
 *
 * then the job's callback.  A link that is gone, one that never was, an
 * id that cannot be one and a link of a worklist the caller is no member
 * of (another organisation's, say) are the same not_found (API.md: 404
 * for what the caller cannot see), as for upload links; forbidden tells a
 * member what they lack.
 */
#include <string.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "services/guestlink/guestlink.h"

enum {
	OW_READ,
	OW_CHECK,
	OW_MEMBER,
};

static void
on_member(int err, const ss_msg *reply, void *arg)
{
	gl_owner *o = arg;

	o->fn(o, gl_member_answer(err, reply));
}

static void
on_check(int err, const ss_msg *reply, void *arg)
{
	gl_owner *o = arg;
	int rv = gl_peer_err(err, reply);

	if (rv == SS_EBADREQ || rv == SS_ENOTFOUND)
		rv = SS_EINTERNAL; /* our request, not the caller's */
	if (rv == 0 && !gl_allowed(reply)) {
		o->step = OW_MEMBER;
		rv = gl_authz_member(o->s, ss_call_id(o->c), o->user, o->wl,
		                     on_member, o);
		if (rv == 0)
			return;
		rv = gl_err(rv);
	}
	o->fn(o, rv);
}

static int
copy(const redisReply *e, char *dst, size_t cap)
{
	if (e->type != REDIS_REPLY_STRING || e->len >= cap)
		return SS_EINTERNAL;
	memcpy(dst, e->str, e->len);
	dst[e->len] = '\0';
	return 0;
}

static void
on_read(int err, redisReply *r, void *arg)
{
	gl_owner *o = arg;
	int rv;

	if (err != 0) {
		o->fn(o, gl_err(err));
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		o->fn(o, SS_EINTERNAL);
		return;
	}
	/* An upload link is not a guest link: upload.c manages it, under
	 * links.upload.manage. */
	if (r->element[0]->type == REDIS_REPLY_NIL ||
	    r->element[2]->type == REDIS_REPLY_STRING) {
		o->fn(o, SS_ENOTFOUND);
		return;
	}
	if (copy(r->element[0], o->wl, sizeof o->wl) != 0 ||
	    copy(r->element[1], o->study, sizeof o->study) != 0) {
		ss_error("link.corrupt", ss_call_id(o->c), "link", o->id, NULL);
		o->fn(o, SS_EINTERNAL);
		return;
	}
	o->step = OW_CHECK;
	if ((rv = gl_authz_check(o->s, ss_call_id(o->c), o->user,
	                         "links.guest.create", o->wl, on_check, o)) !=
	    0)
		o->fn(o, gl_err(rv));
}

int
gl_owner_start(gl_owner *o, gl_server *s, ss_call *c,
               const msgpack_object *body, gl_owner_fn fn)
{
	static const ss_field_spec spec[] = {
	    {"user", SS_F_STR, true, 1, GL_MAX_USER},
	    {"id", SS_F_STR, true, 1, GL_ID_ARG_MAX},
	    {"addr", SS_F_STR, false, 1, GL_MAX_ADDR},
	};
	const msgpack_object *f[3];
	char key[GL_KEY_MAX];
	ss_str v;
	int rv;

	if (gl_parse(c, body, spec, 3, f) != 0)
		return SS_EBADREQ;
	v = ss_obj_str(f[1]);
	if (!gl_valid_id(v.p, v.n)) {
		ss_call_reply_err(c, SS_ENOTFOUND, GL_GONE_MSG);
		return SS_ENOTFOUND;
	}
	if (f[2] != NULL) {
		ss_str a = ss_obj_str(f[2]);
		if (!gl_valid_addr(a.p, a.n)) {
			ss_call_reply_err(c, SS_EBADREQ,
			                  "field 'addr': expected a client "
			                  "address");
			return SS_EBADREQ;
		}
		memcpy(o->addr, a.p, a.n);
	}
	o->s = s;
	o->c = c;
	o->fn = fn;
	o->step = OW_READ;
	memcpy(o->id, v.p, v.n);
	(void)ss_obj_strcpy(f[0], o->user, sizeof o->user);
	if ((rv = gl_key_link(key, o->id, NULL)) == 0)
		rv = ss_redis_cmd(s->redis, on_read, o,
		                  "HMGET %s wl study kind", key);
	if (rv != 0) {
		ss_call_reply_err(c, gl_err(rv), NULL);
		return rv;
	}
	return 0;
}
