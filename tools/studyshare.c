/*
 * tools/studyshare.c - the studyshare command-line tool.
 *
 *   studyshare [--authz URL] [--ingest URL] [--timeout D] [--quiet]
 *              COMMAND ...
 *
 * Addresses default to the environment (STUDYSHARE_AUTHZ_URL, ...) and
 * then to the local stack's defaults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config.h"
#include "tools/cli.h"

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: studyshare [options] COMMAND ...\n"
	    "\n"
	    "commands:\n"
	    "  directory import [--dry-run] FILE\n"
	    "                                   import a directory document "
	    "(\"-\": stdin);\n"
	    "                                   --dry-run: only say what it "
	    "would add and remove\n"
	    "  authz check USER PERMISSION WORKLIST\n"
	    "                                   exit 0 when allowed, 1 when "
	    "denied\n"
	    "  publish-study --study-uid UID --worklist WL [--patient-id "
	    "ID]\n"
	    "      [--patient-name N] [--birth-date D] [--study-date D]\n"
	    "      [--accession A] [--modality M] [--description T]\n"
	    "  publish-study --file EVENT.json  send a study.arrived event "
	    "to share\n"
	    "  links list STUDY_UID --worklist WL --user USER\n"
	    "                                   the study's guest links as "
	    "USER sees them\n"
	    "  token USER [--ttl DURATION] [--secret-file FILE]\n"
	    "                                   a bearer token for the HTTP "
	    "API (dev;\n"
	    "                                   needs STUDYSHARE_JWT_SECRET)\n"
	    "  mail list [--dead] [--redis ADDR]\n"
	    "                                   the email jobs (or dead "
	    "letters), opened:\n"
	    "                                   one JSON line each (needs "
	    "STUDYSHARE_MAIL_KEY)\n"
	    "  mail push [--unchecked] [--redis ADDR] < JOBS\n"
	    "                                   seal and queue JSON jobs, "
	    "one a line\n"
	    "\n"
	    "options:\n"
	    "  --authz URL     authz endpoint (STUDYSHARE_AUTHZ_URL, "
	    "default tcp://127.0.0.1:7101)\n"
	    "  --ingest URL    share's ingest endpoint "
	    "(STUDYSHARE_INGEST_URL,\n"
	    "                  default tcp://127.0.0.1:7300)\n"
	    "  --guestlink URL guestlink's endpoint "
	    "(STUDYSHARE_GUESTLINK_URL,\n"
	    "                  default tcp://127.0.0.1:7401)\n"
	    "  --timeout D     time each step may take: reaching the daemon,\n"
	    "                  sending, the reply (5s, 250ms, or ms; default "
	    "10s)\n"
	    "  --quiet         print nothing on success\n");
}

static const char *
env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : def;
}

int
main(int argc, char **argv)
{
	cli_opts o = {
	    .authz = env_or("STUDYSHARE_AUTHZ_URL", "tcp://127.0.0.1:7101"),
	    .ingest = env_or("STUDYSHARE_INGEST_URL", "tcp://127.0.0.1:7300"),
	    .guestlink =
	        env_or("STUDYSHARE_GUESTLINK_URL", "tcp://127.0.0.1:7401"),
	    .timeout_ms = 10000,
	};
	int i;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return CLI_OK;
		} else if (strcmp(argv[i], "--quiet") == 0) {
			o.quiet = true;
		} else if (strcmp(argv[i], "--authz") == 0 && i + 1 < argc) {
			o.authz = argv[++i];
		} else if (strcmp(argv[i], "--ingest") == 0 && i + 1 < argc) {
			o.ingest = argv[++i];
		} else if (strcmp(argv[i], "--guestlink") == 0 &&
		           i + 1 < argc) {
			o.guestlink = argv[++i];
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			int64_t ms;

			if (ss_cfg_parse_ms(argv[++i], &ms) != 0 || ms < 1 ||
			    ms > 3600000) {
				fprintf(stderr,
				        "studyshare: --timeout: expected a "
				        "duration from 1ms to 1h (5000, 5s, "
				        "250ms)\n");
				return CLI_USAGE;
			}
			o.timeout_ms = (int)ms;
		} else {
			fprintf(stderr, "studyshare: unknown option %s\n",
			        argv[i]);
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	/* "studyshare <command> ... --help": the usage names every
	 * command's arguments. */
	for (int j = i + 1; j < argc; j++) {
		if (strcmp(argv[j], "--help") == 0) {
			usage(stdout);
			return CLI_OK;
		}
	}
	if (strcmp(argv[i], "directory") == 0)
		return cli_directory(&o, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "authz") == 0)
		return cli_authz(&o, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "publish-study") == 0)
		return cli_publish_study(&o, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "links") == 0)
		return cli_links(&o, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "token") == 0)
		return cli_token(&o, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "mail") == 0)
		return cli_mail(&o, argc - i - 1, argv + i + 1);
	fprintf(stderr, "studyshare: unknown command %s\n", argv[i]);
	usage(stderr);
	return CLI_USAGE;
}
