/*
 * proto/errors.h - the error codes of studyshare.
 *
 * One list serves three purposes: the negative return codes of every
 * function in the project, the "code" word of an error reply on the bus,
 * and the HTTP status the gateway answers with.  Functions return 0 on
 * success or one of these (always negative).
 */
#ifndef SS_PROTO_ERRORS_H
#define SS_PROTO_ERRORS_H

#include <stddef.h>

enum ss_err {
	SS_OK = 0,
	SS_EBADREQ = -1,    /* bad_request, 400 */
	SS_EUNAUTH = -2,    /* unauthenticated, 401 */
	SS_EFORBIDDEN = -3, /* forbidden, 403 */
	SS_ENOTFOUND = -4,  /* not_found, 404 */
	SS_ECONFLICT = -5,  /* conflict, 409 */
	SS_EUNPROC = -6,    /* unprocessable, 422 */
	SS_ETOOMANY = -7,   /* too_many_requests, 429 */
	SS_EUNAVAIL = -8,   /* unavailable, 503 */
	SS_EINTERNAL = -9,  /* internal, 500: a bug, never expected */
	SS_ENOMEM = -10,    /* out of memory; reported as internal */
	SS_ETIMEDOUT = -11, /* a peer did not answer; reported as unavailable */
	SS_ETOOLARGE = -12, /* payload_too_large, 413 */
	SS_EUNSUPPORTED = -13, /* unsupported_media_type, 415 */
};

/* The wire word of an error ("bad_request", ...); never NULL. */
const char *ss_err_word(int err);

/* The HTTP status of an error; 200 for SS_OK. */
int ss_err_http(int err);

/* The error for a wire word; SS_EINTERNAL for an unknown word. */
int ss_err_from_word(const char *word, size_t len);

#endif
