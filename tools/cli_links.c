/*
 * tools/cli_links.c - studyshare links list STUDY --worklist WL --user USER
 *
 * Lists the guest links of a study made from a worklist, as USER sees
 * them (guestlink.list: USER needs links.guest.view on WL).  Prints the
 * reply body as JSON: {"links": [{"id", "url", "status", "uses", ...}]}.
 * Operators use it to find a link's id (to delete it) or its URL.
 */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static int
usage(void)
{
	fprintf(stderr, "usage: studyshare links list STUDY_UID --worklist WL "
	                "--user USER\n");
	return CLI_USAGE;
}

int
cli_links(const cli_opts *o, int argc, char **argv)
{
	const char *study = NULL, *wl = NULL, *user = NULL;
	json_t *body, *reply;
	int rv;

	if (argc < 1 || strcmp(argv[0], "list") != 0)
		return usage();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--worklist") == 0 && i + 1 < argc)
			wl = argv[++i];
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (argv[i][0] != '-' && study == NULL)
			study = argv[i];
		else
			return usage();
	}
	if (study == NULL || wl == NULL || user == NULL)
		return usage();
	body = json_pack("{s:s, s:s, s:s}", "user", user, "worklist", wl,
	                 "study_uid", study);
	if (body == NULL)
		return CLI_USAGE;
	rv = cli_call(o, o->guestlink, "guestlink.list", body, &reply);
	json_decref(body);
	if (rv != CLI_OK)
		return rv;
	if (!o->quiet)
		cli_print(reply);
	json_decref(reply);
	return CLI_OK;
}
