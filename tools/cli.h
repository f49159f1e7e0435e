/*
 * tools/cli.h - the studyshare command-line tool's shared pieces.
 *
 * Each command group is one file (cli_directory.c, cli_authz.c, ...) with
 * one entry point; studyshare.c dispatches.  The tool talks to the daemons
 * with plain blocking NNG REQ sockets: it is a one-shot program, not a
 * daemon, so it needs no event loop.
 *
 * Exit codes: 0 success, 1 the daemon answered with an error, 2 usage,
 * 3 the daemon could not be reached.
 */
#ifndef SS_TOOLS_CLI_H
#define SS_TOOLS_CLI_H

#include <stdbool.h>
#include <jansson.h>

#include "proto/envelope.h"

#define CLI_OK          0
#define CLI_ERR         1
#define CLI_USAGE       2
#define CLI_UNREACHABLE 3

typedef struct cli_opts {
	const char *authz; /* NNG URL of authz */
	const char *share;
	const char *ingest;
	const char *guestlink;
	int timeout_ms;
	bool quiet;
} cli_opts;

/*
 * Sends one request (type, body as JSON) to url and waits for the reply.
 * On success *reply holds the body as JSON (caller json_decref()s).
 * Prints errors to stderr; returns a CLI_* exit code.
 */
int cli_call(const cli_opts *o, const char *url, const char *type,
             const json_t *body, json_t **reply);

/* Prints j to stdout, indented. */
void cli_print(const json_t *j);

int cli_directory(const cli_opts *o, int argc, char **argv);
int cli_authz(const cli_opts *o, int argc, char **argv);
int cli_publish_study(const cli_opts *o, int argc, char **argv);
int cli_links(const cli_opts *o, int argc, char **argv);
int cli_token(const cli_opts *o, int argc, char **argv);
int cli_mail(const cli_opts *o, int argc, char **argv);

#endif
