/*
 * services/authz/directory.h - the directory: who may do what, where.
 *
 * The operators' JSON document (API.md "The directory") is parsed and
 * validated here into an immutable in-memory model with indexes, which
 * every permission check reads.  The same parser loads the canonical copy
 * kept in Redis, so what was validated on import is what is served.
 *
 * Validation refuses the whole document with a message that names the
 * offending entry: unknown fields, bad or duplicate ids, unknown references
 * (organisation, role, worklist, permission), duplicate emails and colliding
 * share codes.
 *
 * Worklists: every organisation, location, group and user has one, named
 * "<kind>:<id>".  Registered accounts (made by registration, not in the
 * document) are added with az_dir_add_registered(); they belong to no
 * organisation.
 */
#ifndef SS_AUTHZ_DIRECTORY_H
#define SS_AUTHZ_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "runtime/strmap.h"
#include "services/authz/sharecode.h"

#define AZ_MAX_ID_LEN    64
#define AZ_MAX_WL_LEN    (AZ_MAX_ID_LEN + 16)
#define AZ_MAX_NAME_LEN  200
#define AZ_MAX_EMAIL_LEN 254
#define AZ_MIN_PASSWORD  8
#define AZ_MAX_PASSWORD  1024

typedef enum az_wl_kind {
	AZ_WL_ORGANISATION,
	AZ_WL_LOCATION,
	AZ_WL_GROUP,
	AZ_WL_USER,
} az_wl_kind;

typedef struct az_role {
	const char *id;
	uint32_t perms;
} az_role;

typedef struct az_org {
	const char *id;
	const char *name;
	ss_strmap *shares_with; /* organisation id -> the az_org */
} az_org;

typedef struct az_worklist {
	char id[AZ_MAX_WL_LEN + 1]; /* "location:ct" */
	az_wl_kind kind;
	const char *name;
	const az_org *org;          /* NULL for a registered account's */
	char code[AZ_CODE_LEN + 1]; /* "" until assigned */
	bool code_fixed;            /* given in the document */
	const char *entry;          /* "locations[2] (ct)", for messages */
} az_worklist;

typedef struct az_member {
	const az_worklist *wl;
	const az_role *role;
} az_member;

typedef struct az_user {
	const char *id;
	const char *name;
	const char *email;    /* as written */
	char *email_key;      /* lower case */
	const az_org *org;    /* NULL for a registered account */
	const char *password; /* initial password; document imports only */
	bool active;
	bool registered;
	ss_strmap *members; /* worklist id -> az_member (personal included) */
	az_worklist *personal;
} az_user;

typedef struct az_dir az_dir;

/*
 * Parses and validates a document.  On failure returns SS_EBADREQ with a
 * message in why naming the entry.  The canonical form (sorted keys, no
 * passwords) is available from az_dir_canonical().
 */
int az_dir_parse(const char *json, size_t len, az_dir **out, char *why,
                 size_t whylen);
void az_dir_free(az_dir *d);

/* The stricter rule for a document being imported (proto/utf8.h
 * ss_text_valid): every name without control or direction characters.
 * Not applied to a stored document, which loads as it was accepted.
 * SS_EBADREQ naming the entry. */
int az_dir_text_check(const az_dir *d, char *why, size_t whylen);

/* The document without passwords, compact, keys sorted: malloc'd. */
char *az_dir_canonical(const az_dir *d);

/* Adds an account created by registration; SS_ECONFLICT if the id or the
 * email is taken. */
int az_dir_add_registered(az_dir *d, const char *id, const char *name,
                          const char *email);

/* Sets a worklist's code (from Redis); SS_ENOTFOUND, SS_ECONFLICT. */
int az_dir_set_code(az_dir *d, const char *wl, const char *code);

const az_user *az_dir_user(const az_dir *d, const char *id);
const az_user *az_dir_user_by_email(const az_dir *d, const char *email);
const az_worklist *az_dir_worklist(const az_dir *d, const char *id);
const az_worklist *az_dir_worklist_by_code(const az_dir *d, const char *code);
const az_org *az_dir_org(const az_dir *d, const char *id);
const az_role *az_dir_registration_role(const az_dir *d);

/* The permissions user holds in worklist; 0 for a non-member or an
 * inactive user. Either may be NULL (then 0). */
uint32_t az_dir_perms(const az_user *u, const az_worklist *wl);

/* Iteration over users and worklists, in document order. */
size_t az_dir_nusers(const az_dir *d);
const az_user *az_dir_user_at(const az_dir *d, size_t i);
size_t az_dir_nworklists(const az_dir *d);
az_worklist *az_dir_worklist_at(const az_dir *d, size_t i);

size_t az_dir_norgs(const az_dir *d);

/* Lower-cases an email into out (size AZ_MAX_EMAIL_LEN + 1); SS_EBADREQ
 * when it is not a plausible address. */
int az_email_key(const char *email, size_t len, char *out);

/* True for 1..64 characters of [A-Za-z0-9._-]. */
bool az_valid_id(const char *s, size_t len);

const char *az_wl_kind_name(az_wl_kind k);

#endif
