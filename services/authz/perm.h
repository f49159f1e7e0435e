/*
 * services/authz/perm.h - the permissions of API.md as bits.
 *
 * A role is a set of permissions; checking one is a mask test.  The names
 * are the only spelling accepted anywhere (directory, bus, CLI): an unknown
 * name is never a permission.
 */
#ifndef SS_AUTHZ_PERM_H
#define SS_AUTHZ_PERM_H

#include <stddef.h>
#include <stdint.h>

enum az_perm {
	AZ_STUDIES_VIEW = 1u << 0,
	AZ_STUDIES_SHARE = 1u << 1,
	AZ_STUDIES_SHARE_EMAIL = 1u << 2,
	AZ_STUDIES_SHARE_CODE = 1u << 3,
	AZ_STUDIES_SHARE_GROUPS = 1u << 4,
	AZ_STUDIES_SHARE_LOCATIONS = 1u << 5,
	AZ_STUDIES_SHARE_ORGANISATIONS = 1u << 6,
	AZ_STUDIES_SHARE_USERS = 1u << 7,
	AZ_LINKS_GUEST_CREATE = 1u << 8,
	AZ_LINKS_UPLOAD_MANAGE = 1u << 9,
	AZ_LINKS_GUEST_VIEW = 1u << 10,
};

#define AZ_NPERMS 11

/* The bit of a permission name, or 0 when there is no such permission. */
uint32_t az_perm_parse(const char *name, size_t len);
/* The name of bit i (0 <= i < AZ_NPERMS). */
const char *az_perm_name(unsigned i);

#endif
