/*
 * tools/cli_token.c - studyshare token USER: a bearer token for the HTTP
 * API, minted locally from the gateway's signing secret.
 *
 *   studyshare token USER [--ttl DURATION] [--secret-file FILE]
 *
 * For development and operations: whoever holds the secret can act as any
 * user, so the command only works where the secret is at hand: the file
 * named by --secret-file, else STUDYSHARE_JWT_SECRET, else the file named
 * by STUDYSHARE_JWT_SECRET_FILE (the gateway's own settings).  The token
 * carries the same claims as the gateway's (sub, iss "studyshare", iat,
 * exp; HS256) and is printed on one line.  DURATION is seconds or a
 * number with s, m, h or d (default 1h, at most 7d).  The user id is not
 * checked against the directory: authz decides on every call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <sodium.h>

#include "tools/cli.h"

#define SECRET_MIN 32
#define SECRET_MAX 1024
#define TTL_MAX    (7L * 86400)

static void
usage(void)
{
	fprintf(stderr, "usage: studyshare token USER [--ttl DURATION] "
	                "[--secret-file FILE]\n"
	                "  the signing secret comes from --secret-file, "
	                "STUDYSHARE_JWT_SECRET or\n"
	                "  STUDYSHARE_JWT_SECRET_FILE\n");
}

static bool
user_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* "90", "90s", "15m", "8h", "2d" -> seconds; -1 when malformed. */
static long
parse_ttl(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || v <= 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return v <= TTL_MAX ? v : -1;
	if (end[1] != '\0')
		return -1;
	switch (*end) {
	case 'm':
		v = v <= TTL_MAX / 60 ? v * 60 : -1;
		break;
	case 'h':
		v = v <= TTL_MAX / 3600 ? v * 3600 : -1;
		break;
	case 'd':
		v = v <= TTL_MAX / 86400 ? v * 86400 : -1;
		break;
	default:
		return -1;
	}
	return v > 0 && v <= TTL_MAX ? v : -1;
}

/* Reads a secret file; a trailing newline is not part of the secret. */
static int
read_secret(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "studyshare: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	return 0;
}

int
cli_token(const cli_opts *o, int argc, char **argv)
{
	char secret[SECRET_MAX + 2] = "", *tok = NULL;
	const char *user = NULL, *file = NULL, *env;
	long ttl = 3600;
	time_t now = time(NULL);
	jwt_t *j = NULL;
	int rv = CLI_ERR;

	(void)o;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
			if ((ttl = parse_ttl(argv[++i])) < 0) {
				fprintf(stderr, "studyshare: --ttl: expected a "
				                "duration up to 7d\n");
				return CLI_USAGE;
			}
		} else if (strcmp(argv[i], "--secret-file") == 0 &&
		           i + 1 < argc) {
			file = argv[++i];
		} else if (argv[i][0] != '-' && user == NULL) {
			user = argv[i];
		} else {
			usage();
			return CLI_USAGE;
		}
	}
	if (user == NULL) {
		usage();
		return CLI_USAGE;
	}
	if (!user_ok(user)) {
		fprintf(stderr, "studyshare: %s: not a user id\n", user);
		return CLI_USAGE;
	}
	if (file == NULL && (env = getenv("STUDYSHARE_JWT_SECRET")) != NULL &&
	    env[0] != '\0')
		snprintf(secret, sizeof secret, "%s", env);
	else if (file != NULL ||
	         ((file = getenv("STUDYSHARE_JWT_SECRET_FILE")) != NULL &&
	          file[0] != '\0')) {
		if (read_secret(file, secret, sizeof secret) != 0)
			return CLI_ERR;
	}
	if (strlen(secret) < SECRET_MIN || strlen(secret) > SECRET_MAX) {
		fprintf(stderr,
		        "studyshare: no signing secret of %d..%d bytes: "
		        "set STUDYSHARE_JWT_SECRET or use --secret-file\n",
		        SECRET_MIN, SECRET_MAX);
		goto fail;
	}
	if (jwt_new(&j) != 0 || jwt_add_grant(j, "sub", user) != 0 ||
	    jwt_add_grant(j, "iss", "studyshare") != 0 ||
	    jwt_add_grant_int(j, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(j, "exp", (long)now + ttl) != 0 ||
	    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret,
	                (int)strlen(secret)) != 0 ||
	    (tok = jwt_encode_str(j)) == NULL) {
		fprintf(stderr, "studyshare: cannot make the token\n");
		goto fail;
	}
	printf("%s\n", tok);
	rv = CLI_OK;
fail:
	free(tok);
	jwt_free(j);
	sodium_memzero(secret, sizeof secret);
	return rv;
}
