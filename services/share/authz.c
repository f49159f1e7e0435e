/*
 * services/share/authz.c - requests to authz.
 *
 * share asks authz every permission question (authz.check, authz.resolve),
 * whether a worklist exists (authz.worklist.info), who a user is
 * (authz.user.get) and to create accounts (authz.register).  One REQ
 * client with many requests in flight; each request carries the id of the
 * call that caused it, so one id follows a request through both daemons'
 * logs.  A request is built in the server's scratch packer and copied
 * out by ss_req_queue() or ss_req_send(), so the packer is free again at
 * once.  Quick questions are queued: those of one loop turn (the steps of
 * concurrent shares) reach authz as one bus.batch.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sodium.h>

#include "proto/errors.h"
#include "services/share/share.h"

ss_pack *
sh_authz_begin(sh_server *s, const char *type, const char *id)
{
	ss_pack_reset(&s->scratch);
	ss_pack_request(&s->scratch, type, id);
	return &s->scratch;
}

static int
authz_send(sh_server *s, ss_reply_fn fn, void *arg, bool batch)
{
	int rv = batch ? ss_req_queue(s->authz, &s->scratch, fn, arg)
	               : ss_req_send(s->authz, &s->scratch, fn, arg);

	/* authz.register carries a password: leave no copy behind. */
	sodium_memzero(s->scratch.sb.data, s->scratch.sb.size);
	ss_pack_reset(&s->scratch);
	return rv;
}

int
sh_authz_send(sh_server *s, ss_reply_fn fn, void *arg)
{
	return authz_send(s, fn, arg, true);
}

int
sh_authz_send_alone(sh_server *s, ss_reply_fn fn, void *arg)
{
	return authz_send(s, fn, arg, false);
}

int
sh_authz_err(int err, const ss_msg *reply)
{
	if (err != 0)
		return sh_err(err);
	if (reply == NULL)
		return SS_EUNAVAIL;
	if (!reply->ok)
		return reply->err < 0 ? reply->err : SS_EINTERNAL;
	return reply->body != NULL ? 0 : SS_EINTERNAL;
}
