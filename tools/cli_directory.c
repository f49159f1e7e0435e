/*
 * tools/cli_directory.c - studyshare directory import [--dry-run] FILE
 *
 * The answer says what the document adds and removes against the
 * directory authz holds (users, and organisation, location and group
 * worklists); with --dry-run nothing is written and the answer lists the
 * ids (the first 100 of each).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static int
usage(void)
{
	fprintf(stderr,
	        "usage: studyshare directory import [--dry-run] FILE\n");
	return CLI_USAGE;
}

/* Reads a whole file ("-" for stdin) into a NUL-terminated buffer. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (cap ? cap * 2 : 65536);
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	if (buf != NULL && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	if (f != stdin)
		fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

int
cli_directory(const cli_opts *o, int argc, char **argv)
{
	json_t *body, *reply;
	bool dry = false;
	size_t len;
	char *doc;
	int rv;

	if (argc == 3 && strcmp(argv[1], "--dry-run") == 0) {
		dry = true;
		argv[1] = argv[2];
		argc = 2;
	}
	if (argc != 2 || strcmp(argv[0], "import") != 0)
		return usage();
	if ((doc = slurp(argv[1], &len)) == NULL) {
		perror(argv[1]);
		return CLI_USAGE;
	}
	body =
	    dry ? json_pack("{s:s%, s:b}", "document", doc, len, "dry_run", 1)
	        : json_pack("{s:s%}", "document", doc, len);
	free(doc);
	if (body == NULL) {
		fprintf(stderr, "studyshare: %s is not UTF-8 text\n", argv[1]);
		return CLI_USAGE;
	}
	rv = cli_call(o, o->authz, "authz.directory.import", body, &reply);
	json_decref(body);
	if (rv == CLI_OK) {
		if (!o->quiet)
			cli_print(reply);
		json_decref(reply);
	}
	return rv;
}
