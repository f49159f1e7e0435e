/*
 * services/gateway/api_directory.c - PUT /api/v1/directory: an operator
 * imports the directory document (API.md "The directory").
 *
 *   Authorization: Bearer <operator token>, body: the document
 *   authz.directory.import {document} -> 200 {"changed", "version", ...}
 *   ?dry_run=true: {document, dry_run} -> 200 {"dry_run": true, what it
 *                  would add and remove}, nothing written (an addition
 *                  to API.md's route, for a look before the import)
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
	static const char *const params[] = {"dry_run", NULL};
	char why[256], dry[8];
	const char *b;
	json_t *doc;
	size_t n;
	ss_pack *p;
	int rv;

	if (gw_query_check(r, params) != 0 ||
	    (rv = gw_query_get(r, "dry_run", dry, sizeof dry)) < 0)
		return;
	if (rv == 1 && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0) {
		gw_fail(r, SS_EBADREQ,
		        "parameter 'dry_run': expected true or false");
		return;
	}
	b = gw_body(r, &n);
	if ((rv = gw_json_parse(b, n, (size_t)r->s->cfg->directory_max, &doc,
	                        why, sizeof why)) != 0) {
		gw_fail(r, rv, why);
		return;
	}
	json_decref(doc);
	p = gw_peer_begin(r, "authz.directory.import");
	msgpack_pack_map(&p->pk, strcmp(dry, "true") == 0 ? 2 : 1);
	ss_pack_kv_strn(p, "document", b, n);
	if (strcmp(dry, "true") == 0)
		ss_pack_kv_bool(p, "dry_run", true);
	ss_info("http.directory_import", r->id, "addr", r->addr, "dry_run",
	        strcmp(dry, "true") == 0 ? "true" : "false", NULL);
	gw_peer_passthrough(r, r->s->authz, 200, NULL);
	/* Copied out: leave no initial password in the scratch. */
	sodium_memzero(p->sb.data, p->sb.size);
}
