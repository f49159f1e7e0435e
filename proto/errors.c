/*
 * proto/errors.c - the error codes' wire words and HTTP statuses.
 *
 * One table maps every SS_E* code to the word an error reply carries and
 * the status the gateway answers with.  SS_ENOMEM and SS_ETIMEDOUT are
 * internal conditions: they go on the wire as "internal" and "unavailable",
 * and a word never maps back to them.  Unknown codes and words are treated
 * as internal errors, so a newer peer cannot make us crash or lie.
 */
#include <string.h>

#include "proto/errors.h"

struct ss_err_desc {
	int err;
	const char *word;
	int http;
};

/* Codes that have a word of their own; first match wins in both ways. */
static const struct ss_err_desc ss_errs[] = {
    {SS_EBADREQ, "bad_request", 400},
    {SS_EUNAUTH, "unauthenticated", 401},
    {SS_EFORBIDDEN, "forbidden", 403},
    {SS_ENOTFOUND, "not_found", 404},
    {SS_ECONFLICT, "conflict", 409},
    {SS_EUNPROC, "unprocessable", 422},
    {SS_ETOOMANY, "too_many_requests", 429},
    {SS_EUNAVAIL, "unavailable", 503},
    {SS_EINTERNAL, "internal", 500},
    {SS_ETOOLARGE, "payload_too_large", 413},
    {SS_EUNSUPPORTED, "unsupported_media_type", 415},
};

#define SS_NERRS (sizeof(ss_errs) / sizeof(ss_errs[0]))

/* Folds the codes that are reported as another one. */
static int
ss_err_public(int err)
{
	switch (err) {
	case SS_ENOMEM:
		return SS_EINTERNAL;
	case SS_ETIMEDOUT:
		return SS_EUNAVAIL;
	default:
		return err;
	}
}

static const struct ss_err_desc *
ss_err_find(int err)
{
	size_t i;

	err = ss_err_public(err);
	for (i = 0; i < SS_NERRS; i++) {
		if (ss_errs[i].err == err)
			return &ss_errs[i];
	}
	return NULL;
}

const char *
ss_err_word(int err)
{
	const struct ss_err_desc *d;

	if (err == SS_OK)
		return "ok";
	d = ss_err_find(err);
	return d != NULL ? d->word : "internal";
}

int
ss_err_http(int err)
{
	const struct ss_err_desc *d;

	if (err == SS_OK)
		return 200;
	d = ss_err_find(err);
	return d != NULL ? d->http : 500;
}

int
ss_err_from_word(const char *word, size_t len)
{
	size_t i;

	if (word == NULL)
		return SS_EINTERNAL;
	for (i = 0; i < SS_NERRS; i++) {
		if (strlen(ss_errs[i].word) == len &&
		    memcmp(ss_errs[i].word, word, len) == 0)
			return ss_errs[i].err;
	}
	return SS_EINTERNAL;
}
