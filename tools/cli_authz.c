/*
 * tools/cli_authz.c - studyshare authz check USER PERMISSION WORKLIST
 *
 * Prints "allowed" or "denied"; the exit code is 0 for allowed and 1 for
 * denied, so scripts can test it.
 */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

int
cli_authz(const cli_opts *o, int argc, char **argv)
{
	json_t *body, *reply;
	int rv;

	if (argc != 4 || strcmp(argv[0], "check") != 0) {
		fprintf(stderr, "usage: studyshare authz check USER PERMISSION "
		                "WORKLIST\n");
		return CLI_USAGE;
	}
	body = json_pack("{s:s, s:s, s:s}", "user", argv[1], "permission",
	                 argv[2], "worklist", argv[3]);
	if (body == NULL)
		return CLI_USAGE;
	rv = cli_call(o, o->authz, "authz.check", body, &reply);
	json_decref(body);
	if (rv != CLI_OK)
		return rv;
	rv = json_is_true(json_object_get(reply, "allowed")) ? CLI_OK : CLI_ERR;
	json_decref(reply);
	printf("%s\n", rv == CLI_OK ? "allowed" : "denied");
	return rv;
}
