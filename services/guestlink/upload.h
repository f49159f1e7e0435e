/*
 * services/guestlink/upload.h - guest upload links (upload.c,
 * upload_redeem.c, upload_files.c): what they share beyond guestlink.h.
 */
#ifndef SS_GUESTLINK_UPLOAD_H
#define SS_GUESTLINK_UPLOAD_H

#include "services/guestlink/guestlink.h"

/* Purpose of the lookup hash of an upload token: not the guest links'
 * (GL_PURPOSE_LOOKUP), so neither kind of token opens the other kind. */
#define GL_UP_PURPOSE "guestlink.upload"

/* The one answer for every unusable upload link or session. */
#define GL_UP_GONE_MSG "no such upload link"

/* Scripts of upload links (upload.c, upload_files.c), beside those of
 * scripts.c; main.c loads them with the others. */
extern ss_script gl_script_upload_update, gl_script_upload_reserve,
    gl_script_upload_received;

/* The lookup hash and id of an upload token. */
int gl_upload_token_ids(gl_server *s, const char *tok, size_t n,
                        char th[SS_TOKEN_HASH_LEN + 1], char id[GL_ID_LEN + 1]);

/* Packs the upload link object (README.md "Upload links"), with
 * "email_queued" when queued is 0 or 1 (create, when email was given). */
void gl_upload_pack(gl_server *s, ss_pack *p, const gl_link *l, int64_t now_ms,
                    int queued);

void gl_handle_upload_create(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_upload_update(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_upload_list(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_upload_delete(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_upload_redeem(ss_call *c, const msgpack_object *body, void *arg);
void gl_handle_upload_reserve(ss_call *c, const msgpack_object *body,
                              void *arg);
void gl_handle_upload_received(ss_call *c, const msgpack_object *body,
                               void *arg);

#endif
