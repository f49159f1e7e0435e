/*
 * services/authz/perm.c - see perm.h.
 */
#include <string.h>

#include "services/authz/perm.h"

static const char *const names[AZ_NPERMS] = {
    "studies.view",
    "studies.share",
    "studies.share.email",
    "studies.share.code",
    "studies.share.groups",
    "studies.share.locations",
    "studies.share.organisations",
    "studies.share.users",
    "links.guest.create",
    "links.upload.manage",
    "links.guest.view",
};

uint32_t
az_perm_parse(const char *name, size_t len)
{
	for (unsigned i = 0; i < AZ_NPERMS; i++) {
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return 1u << i;
	}
	return 0;
}

const char *
az_perm_name(unsigned i)
{
	return i < AZ_NPERMS ? names[i] : NULL;
}
