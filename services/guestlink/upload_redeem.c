/*
 * services/guestlink/upload_redeem.c - guestlink.upload.redeem: a guest
 * opens an upload link (API.md "Guest upload links").
 *
 *   {token, password?, addr, user_agent, session?}
 *   -> {"upload": {"id", "worklist", "message"}, "session", "expires_at"}
 *                                                  a use (an upload session),
 *                                                  or a live session
 *      {"password_required": true}                 no use counted
 *      {"wrong_password": true, "attempts_left": N}
 *      not_found "no such upload link"            every unusable link
 *      too_many_requests, retry_after 1           as for a guest link
 *
 * The same rules, scripts and steps as a guest link's redemption, run by
 * redeem.c (RD_OPEN, RD_VERIFY, RD_SETTLE), with the upload token's own
 * lookup hash (upload.h) and the upload's own audit actions.  A use opens
 * an upload session; the files of that session are taken by
 * guestlink.upload.reserve and guestlink.upload.received (upload_files.c).
 */
#include "services/guestlink/upload.h"

/* An upload link shows no study: its audit entries name none, a use is
 * neither mailed to the owner nor published as guestlink.accessed, and a
 * lock is mailed as upload.locked (it cannot be unlocked). */
static const gl_redeem_kind upload = {
    .gone_msg = GL_UP_GONE_MSG,
    .token_ids = gl_upload_token_ids,
    .view_pairs = 1, /* "upload", written by upload.c */
    .ev_used = "upload_link.used",
    .a_use = "upload_link.use",
    .a_failed = "upload_link.password_failed",
    .a_lock = "upload_link.lock",
    .lock_mail = "upload.locked",
    .study = false,
};

void
gl_handle_upload_redeem(ss_call *c, const msgpack_object *body, void *arg)
{
	gl_redeem(&upload, arg, c, body);
}
