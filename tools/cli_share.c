/*
 * tools/cli_share.c - studyshare publish-study: one study.arrived event to
 * share's ingest endpoint.
 *
 *   studyshare publish-study --study-uid UID --worklist WL [--patient-id ID]
 *       [--patient-name NAME] [--birth-date YYYYMMDD] [--study-date YYYYMMDD]
 *       [--accession A] [--modality M] [--description TEXT]
 *   studyshare publish-study --file EVENT.json      ("-": stdin)
 *
 * The file holds the event body of API.md as JSON.  The reply body is
 * printed as JSON; share checks every field, so nothing is validated here
 * beyond what makes an event.
 */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static int
usage(void)
{
	fprintf(
	    stderr,
	    "usage: studyshare publish-study --study-uid UID --worklist WL\n"
	    "         [--patient-id ID] [--patient-name NAME] "
	    "[--birth-date YYYYMMDD]\n"
	    "         [--study-date YYYYMMDD] [--accession A] "
	    "[--modality M] [--description TEXT]\n"
	    "       studyshare publish-study --file EVENT.json   "
	    "(\"-\": stdin)\n");
	return CLI_USAGE;
}

/* Flag -> where it goes in the event: a top-level field or in patient. */
static const struct {
	const char *flag;
	const char *field;
	bool patient;
} flags[] = {
    {"--study-uid", "study_uid", false},
    {"--worklist", "worklist", false},
    {"--patient-id", "id", true},
    {"--patient-name", "name", true},
    {"--birth-date", "birth_date", true},
    {"--study-date", "study_date", false},
    {"--accession", "accession", false},
    {"--modality", "modality", false},
    {"--description", "description", false},
};

#define NFLAGS (sizeof flags / sizeof flags[0])

static json_t *
from_file(const char *path)
{
	json_error_t e;
	json_t *j = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &e)
	                                   : json_load_file(path, 0, &e);

	if (j == NULL) {
		fprintf(stderr, "studyshare: %s:%d: %s\n", path, e.line,
		        e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		fprintf(stderr, "studyshare: %s: expected a JSON object\n",
		        path);
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *
from_flags(int argc, char **argv)
{
	json_t *ev = json_object(), *pat = json_object();
	int i;

	if (ev == NULL || pat == NULL)
		goto fail;
	for (i = 0; i < argc; i++) {
		size_t k;

		for (k = 0; k < NFLAGS; k++)
			if (strcmp(argv[i], flags[k].flag) == 0)
				break;
		if (k == NFLAGS || i + 1 >= argc) {
			fprintf(stderr, "studyshare: publish-study: %s %s\n",
			        k == NFLAGS ? "unknown option" : "no value for",
			        argv[i]);
			goto fail;
		}
		if (json_object_set_new(flags[k].patient ? pat : ev,
		                        flags[k].field,
		                        json_string(argv[++i])) != 0) {
			fprintf(stderr,
			        "studyshare: publish-study: %s: not UTF-8\n",
			        argv[i - 1]);
			goto fail;
		}
	}
	if (json_object_get(ev, "study_uid") == NULL ||
	    json_object_get(ev, "worklist") == NULL) {
		fprintf(stderr, "studyshare: publish-study: --study-uid and "
		                "--worklist are required\n");
		goto fail;
	}
	if (json_object_size(pat) > 0 &&
	    json_object_set(ev, "patient", pat) != 0)
		goto fail;
	json_decref(pat);
	return ev;
fail:
	json_decref(pat);
	json_decref(ev);
	return NULL;
}

int
cli_publish_study(const cli_opts *o, int argc, char **argv)
{
	json_t *ev, *reply;
	int rv;

	if (argc == 0)
		return usage();
	if (strcmp(argv[0], "--file") == 0) {
		if (argc != 2)
			return usage();
		ev = from_file(argv[1]);
	} else {
		ev = from_flags(argc, argv);
	}
	if (ev == NULL)
		return usage();
	rv = cli_call(o, o->ingest, "study.arrived", ev, &reply);
	json_decref(ev);
	if (rv == CLI_OK) {
		if (!o->quiet)
			cli_print(reply);
		json_decref(reply);
	}
	return rv;
}
