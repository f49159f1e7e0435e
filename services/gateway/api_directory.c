/*
 * services/gateway/api_directory.c - PUT /api/v1/directory: an operator
 * imports the directory document (API.md "The directory").
 *
 *   Authorization: Bearer <operator token>, body: the document
 *   authz.directory.import {document} -> 200 {"changed", "version", ...}
 *
 * The operator token is a separate secret (--operator-token), not a user's
 * JWT: importing the directory changes every account and permission, and
 * no user role grants it.  Without the setting the route answers 401 to
 * everyone.  The presented token is compared with the configured one as
 * keyed BLAKE2b hashes under a random per-process key, in constant time,
 * so neither its bytes nor its length leak through timing.
 *
 * The body may be up to --directory-body-max bytes; it must be a JSON
 * object, and authz checks everything else (naming the entry it refuses).
 */
#include <string.h>

#include <sodium.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "services/gateway/gateway.h"

int
gw_operator_init(gw_server *s)
{
	const char *t = s->cfg->operator_token;
	size_t n = strlen(t);

	if (n == 0) {
		s->op_enabled = false;
		ss_info("http.directory_disabled", NULL, "reason",
		        "no operator-token: PUT /api/v1/directory answers 401",
		        NULL);
		return 0;
	}
	if (n < 32) {
		/* Before the log is set up: said as a bad setting is. */
		fprintf(stderr, "studyshare-gateway: --operator-token: must be "
		                "empty or at least 32 bytes long\n");
		return SS_EBADREQ;
	}
	if (sodium_init() < 0)
		return SS_EINTERNAL;
	randombytes_buf(s->op_key, sizeof s->op_key);
	crypto_generichash(s->op_hash, sizeof s->op_hash,
	                   (const unsigned char *)t, n, s->op_key,
	                   sizeof s->op_key);
	s->op_enabled = true;
	return 0;
}

void
gw_api_directory(gw_req *r)
{
	char why[256];
	const char *b;
	json_t *doc;
	size_t n;
	ss_pack *p;
	int rv;

	b = gw_body(r, &n);
	if ((rv = gw_json_parse(b, n, (size_t)r->s->cfg->directory_max, &doc,
	                        why, sizeof why)) != 0) {
		gw_fail(r, rv, why);
		return;
	}
	json_decref(doc);
	p = gw_peer_begin(r, "authz.directory.import");
	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_strn(p, "document", b, n);
	ss_info("http.directory_import", r->id, "addr", r->addr, NULL);
	gw_peer_passthrough(r, r->s->authz, 200, NULL);
	/* Copied out: leave no initial password in the scratch. */
	sodium_memzero(p->sb.data, p->sb.size);
}
