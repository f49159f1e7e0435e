/*
 * tests/fuzz/fuzz_directory.c - az_dir_parse() on arbitrary bytes.
 *
 * Whatever the parser accepts must give a canonical form that parses
 * again to the same canonical form, since Redis keeps only that form and
 * every daemon start reloads it.  A refusal must come with a message.
 * Accepted documents also exercise the lookups, registration and codes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "services/authz/directory.h"

static void
exercise(az_dir *d)
{
	for (size_t i = 0; i < az_dir_nusers(d); i++) {
		const az_user *u = az_dir_user_at(d, i);

		if (az_dir_user(d, u->id) != u ||
		    az_dir_user_by_email(d, u->email) != u)
			abort();
		for (size_t j = 0; j < az_dir_nworklists(d); j++)
			(void)az_dir_perms(u, az_dir_worklist_at(d, j));
	}
	for (size_t j = 0; j < az_dir_nworklists(d); j++) {
		const az_worklist *wl = az_dir_worklist_at(d, j);

		if (az_dir_worklist(d, wl->id) != wl ||
		    (wl->code[0] != '\0' &&
		     az_dir_worklist_by_code(d, wl->code) != wl))
			abort();
	}
	if (az_dir_add_registered(d, "fuzz-registered", "Fuzz",
	                          "fuzz@registered.invalid") == 0 &&
	    az_dir_user(d, "fuzz-registered") == NULL)
		abort();
	if (az_dir_nworklists(d) > 0)
		(void)az_dir_set_code(d, az_dir_worklist_at(d, 0)->id,
		                      "ZZZZZZZZ");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256], *c1, *c2;
	az_dir *d, *d2;
	int rv;

	why[0] = '\0';
	rv = az_dir_parse((const char *)data, size, &d, why, sizeof why);
	if (rv != 0) {
		if (d != NULL || why[0] == '\0' ||
		    (rv != SS_EBADREQ && rv != SS_ENOMEM))
			abort();
		return 0;
	}
	if ((c1 = az_dir_canonical(d)) == NULL || strstr(c1, "\"password\":"))
		abort();
	/* The canonical form is a valid document with the same form. */
	if (az_dir_parse(c1, strlen(c1), &d2, why, sizeof why) != 0)
		abort();
	if ((c2 = az_dir_canonical(d2)) == NULL || strcmp(c1, c2) != 0 ||
	    az_dir_nusers(d2) != az_dir_nusers(d) ||
	    az_dir_nworklists(d2) != az_dir_nworklists(d))
		abort();
	exercise(d);
	free(c1);
	free(c2);
	az_dir_free(d2);
	az_dir_free(d);
	return 0;
}
