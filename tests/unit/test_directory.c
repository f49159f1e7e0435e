/*
 * tests/unit/test_directory.c - the directory document: the model a valid
 * document gives, permissions, every refusal (and that its message names
 * the entry), the canonical form, registered accounts and share codes.
 *
 * DOC is tests/integration/fixtures/directory.json, embedded because the
 * build passes no source path to the tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto/errors.h"
#include "services/authz/directory.h"
#include "services/authz/perm.h"

/* clang-format off */
static const char DOC[] =
"{\n"
"  \"organisations\": [\n"
"    {\"id\": \"stelsewhere\", \"name\": \"St Elsewhere\", \"shares_with\": [\"northclinic\"]},\n"
"    {\"id\": \"northclinic\", \"name\": \"North Clinic\"},\n"
"    {\"id\": \"southside\", \"name\": \"Southside Imaging\"}\n"
"  ],\n"
"  \"roles\": [\n"
"    {\"id\": \"radiologist\", \"permissions\": [\"studies.view\", \"studies.share\", \"studies.share.users\",\n"
"      \"studies.share.groups\", \"studies.share.locations\", \"studies.share.organisations\",\n"
"      \"studies.share.code\", \"studies.share.email\", \"links.guest.create\", \"links.guest.view\",\n"
"      \"links.upload.manage\"]},\n"
"    {\"id\": \"viewer\", \"permissions\": [\"studies.view\"]},\n"
"    {\"id\": \"nothing\", \"permissions\": []}\n"
"  ],\n"
"  \"locations\": [\n"
"    {\"id\": \"ct\", \"organisation\": \"stelsewhere\", \"name\": \"CT suite\"},\n"
"    {\"id\": \"mri\", \"organisation\": \"stelsewhere\", \"name\": \"MRI\"},\n"
"    {\"id\": \"north-ct\", \"organisation\": \"northclinic\", \"name\": \"North CT\"}\n"
"  ],\n"
"  \"groups\": [\n"
"    {\"id\": \"neuro\", \"organisation\": \"stelsewhere\", \"name\": \"Neuroradiology\"},\n"
"    {\"id\": \"south-msk\", \"organisation\": \"southside\", \"name\": \"MSK\", \"share_code\": \"sothmsk1\"}\n"
"  ],\n"
"  \"users\": [\n"
"    {\"id\": \"alice\", \"organisation\": \"stelsewhere\", \"email\": \"alice@stelsewhere.example\",\n"
"     \"name\": \"Alice Adams\", \"password\": \"alice-password\", \"personal_role\": \"radiologist\",\n"
"     \"memberships\": [{\"worklist\": \"location:ct\", \"role\": \"radiologist\"},\n"
"                     {\"worklist\": \"group:neuro\", \"role\": \"viewer\"},\n"
"                     {\"worklist\": \"organisation:stelsewhere\", \"role\": \"radiologist\"}]},\n"
"    {\"id\": \"bob\", \"organisation\": \"stelsewhere\", \"email\": \"bob@stelsewhere.example\",\n"
"     \"name\": \"Bob Brown\", \"password\": \"bob-password\", \"personal_role\": \"radiologist\",\n"
"     \"memberships\": [{\"worklist\": \"location:mri\", \"role\": \"radiologist\"},\n"
"                     {\"worklist\": \"location:ct\", \"role\": \"viewer\"}]},\n"
"    {\"id\": \"carol\", \"organisation\": \"northclinic\", \"email\": \"Carol@North.example\",\n"
"     \"name\": \"Carol Clark\", \"password\": \"carol-password\", \"personal_role\": \"radiologist\",\n"
"     \"memberships\": [{\"worklist\": \"location:north-ct\", \"role\": \"radiologist\"},\n"
"                     {\"worklist\": \"organisation:northclinic\", \"role\": \"radiologist\"}]},\n"
"    {\"id\": \"dave\", \"organisation\": \"southside\", \"email\": \"dave@south.example\",\n"
"     \"name\": \"Dave Dunn\", \"memberships\": [{\"worklist\": \"group:south-msk\", \"role\": \"radiologist\"}]},\n"
"    {\"id\": \"erin\", \"organisation\": \"stelsewhere\", \"email\": \"erin@stelsewhere.example\",\n"
"     \"name\": \"Erin Evans\", \"active\": false,\n"
"     \"memberships\": [{\"worklist\": \"location:ct\", \"role\": \"radiologist\"}]}\n"
"  ]\n"
"}\n";

/* DOC again, with sections and keys reordered, other whitespace and other
 * passwords: the same directory. */
static const char DOC_SHUFFLED[] =
"{\"users\":[{\"name\":\"Alice Adams\",\"id\":\"alice\",\"personal_role\":\"radiologist\","
"\"memberships\":[{\"role\":\"radiologist\",\"worklist\":\"location:ct\"},"
"{\"role\":\"viewer\",\"worklist\":\"group:neuro\"},"
"{\"role\":\"radiologist\",\"worklist\":\"organisation:stelsewhere\"}],"
"\"email\":\"alice@stelsewhere.example\",\"organisation\":\"stelsewhere\"},"
"{\"password\":\"another-bob-pw\",\"organisation\":\"stelsewhere\",\"email\":\"bob@stelsewhere.example\","
"\"name\":\"Bob Brown\",\"personal_role\":\"radiologist\","
"\"memberships\":[{\"worklist\":\"location:mri\",\"role\":\"radiologist\"},"
"{\"worklist\":\"location:ct\",\"role\":\"viewer\"}],\"id\":\"bob\"},"
"{\"id\":\"carol\",\"organisation\":\"northclinic\",\"email\":\"Carol@North.example\","
"\"name\":\"Carol Clark\",\"password\":\"yet-another-one\",\"personal_role\":\"radiologist\","
"\"memberships\":[{\"worklist\":\"location:north-ct\",\"role\":\"radiologist\"},"
"{\"worklist\":\"organisation:northclinic\",\"role\":\"radiologist\"}]},"
"{\"memberships\":[{\"worklist\":\"group:south-msk\",\"role\":\"radiologist\"}],"
"\"id\":\"dave\",\"organisation\":\"southside\",\"email\":\"dave@south.example\",\"name\":\"Dave Dunn\"},"
"{\"active\":false,\"id\":\"erin\",\"organisation\":\"stelsewhere\",\"email\":\"erin@stelsewhere.example\","
"\"name\":\"Erin Evans\",\"memberships\":[{\"worklist\":\"location:ct\",\"role\":\"radiologist\"}]}],"
"  \"groups\" : [ {\"organisation\":\"stelsewhere\",\"id\":\"neuro\",\"name\":\"Neuroradiology\"},"
"{\"share_code\":\"sothmsk1\",\"name\":\"MSK\",\"organisation\":\"southside\",\"id\":\"south-msk\"}],"
"\"locations\":[{\"name\":\"CT suite\",\"id\":\"ct\",\"organisation\":\"stelsewhere\"},"
"{\"name\":\"MRI\",\"organisation\":\"stelsewhere\",\"id\":\"mri\"},"
"{\"organisation\":\"northclinic\",\"name\":\"North CT\",\"id\":\"north-ct\"}],"
"\"roles\":[{\"permissions\":[\"studies.view\",\"studies.share\",\"studies.share.users\","
"\"studies.share.groups\",\"studies.share.locations\",\"studies.share.organisations\","
"\"studies.share.code\",\"studies.share.email\",\"links.guest.create\",\"links.guest.view\","
"\"links.upload.manage\"],\"id\":\"radiologist\"},"
"{\"permissions\":[\"studies.view\"],\"id\":\"viewer\"},{\"permissions\":[],\"id\":\"nothing\"}],"
"\"organisations\":[{\"shares_with\":[\"northclinic\"],\"name\":\"St Elsewhere\",\"id\":\"stelsewhere\"},"
"{\"name\":\"North Clinic\",\"id\":\"northclinic\"},{\"name\":\"Southside Imaging\",\"id\":\"southside\"}]}";
/* clang-format on */

#define ALL_PERMS ((1u << AZ_NPERMS) - 1)

static az_dir *
parse_ok(const char *doc)
{
	char why[512] = "";
	az_dir *d = (az_dir *)1;
	int rv = az_dir_parse(doc, strlen(doc), &d, why, sizeof why);

	if (rv != 0)
		print_error("unexpected refusal: %s\n", why);
	assert_int_equal(rv, 0);
	assert_non_null(d);
	return d;
}

static void
test_valid_model(void **state)
{
	az_dir *d = parse_ok(DOC);
	const az_user *alice, *carol, *dave, *erin;
	const az_worklist *wl;
	const az_org *se, *nc, *ss;

	(void)state;
	assert_int_equal(az_dir_nusers(d), 5);
	assert_int_equal(az_dir_norgs(d), 3);
	/* 3 organisations, 3 locations, 2 groups, 5 users. */
	assert_int_equal(az_dir_nworklists(d), 13);

	se = az_dir_org(d, "stelsewhere");
	nc = az_dir_org(d, "northclinic");
	ss = az_dir_org(d, "southside");
	assert_non_null(se);
	assert_non_null(nc);
	assert_non_null(ss);
	assert_null(az_dir_org(d, "nowhere"));
	assert_string_equal(se->name, "St Elsewhere");
	assert_ptr_equal(ss_strmap_gets(se->shares_with, "northclinic"), nc);
	assert_int_equal(ss_strmap_len(se->shares_with), 1);
	assert_int_equal(ss_strmap_len(nc->shares_with), 0);

	alice = az_dir_user(d, "alice");
	assert_non_null(alice);
	assert_ptr_equal(az_dir_user_at(d, 0), alice);
	assert_string_equal(alice->id, "alice");
	assert_string_equal(alice->name, "Alice Adams");
	assert_string_equal(alice->email, "alice@stelsewhere.example");
	assert_ptr_equal(alice->org, se);
	assert_string_equal(alice->password, "alice-password");
	assert_true(alice->active);
	assert_false(alice->registered);
	assert_non_null(alice->personal);
	assert_string_equal(alice->personal->id, "user:alice");
	/* Personal worklist and three memberships. */
	assert_int_equal(ss_strmap_len(alice->members), 4);

	carol = az_dir_user(d, "carol");
	assert_non_null(carol);
	assert_string_equal(carol->email, "Carol@North.example");
	assert_string_equal(carol->email_key, "carol@north.example");
	dave = az_dir_user(d, "dave");
	assert_non_null(dave);
	assert_null(dave->password);
	assert_ptr_equal(dave->org, ss);
	erin = az_dir_user_at(d, 4);
	assert_non_null(erin);
	assert_string_equal(erin->id, "erin");
	assert_false(erin->active);
	assert_null(az_dir_user_at(d, 5));
	assert_null(az_dir_user(d, "Alice"));
	assert_null(az_dir_user(d, "nobody"));

	wl = az_dir_worklist(d, "location:ct");
	assert_non_null(wl);
	assert_string_equal(wl->id, "location:ct");
	assert_int_equal(wl->kind, AZ_WL_LOCATION);
	assert_string_equal(wl->name, "CT suite");
	assert_ptr_equal(wl->org, se);
	assert_string_equal(wl->code, "");
	assert_false(wl->code_fixed);
	assert_non_null(strstr(wl->entry, "locations[0]"));
	assert_non_null(strstr(wl->entry, "ct"));

	wl = az_dir_worklist(d, "user:alice");
	assert_ptr_equal(wl, alice->personal);
	assert_int_equal(wl->kind, AZ_WL_USER);
	assert_string_equal(wl->name, "Alice Adams");
	assert_ptr_equal(wl->org, se);

	wl = az_dir_worklist(d, "organisation:northclinic");
	assert_non_null(wl);
	assert_int_equal(wl->kind, AZ_WL_ORGANISATION);
	assert_string_equal(wl->name, "North Clinic");
	assert_ptr_equal(wl->org, nc);

	wl = az_dir_worklist(d, "group:south-msk");
	assert_non_null(wl);
	assert_int_equal(wl->kind, AZ_WL_GROUP);
	assert_ptr_equal(wl->org, ss);
	/* The document's code, normalised, and findable as people type it. */
	assert_string_equal(wl->code, "S0THMSK1");
	assert_true(wl->code_fixed);
	assert_ptr_equal(az_dir_worklist_by_code(d, "S0THMSK1"), wl);
	assert_ptr_equal(az_dir_worklist_by_code(d, "soth-msk1"), wl);
	assert_null(az_dir_worklist_by_code(d, "S0THMSK2"));
	assert_null(az_dir_worklist_by_code(d, "not a code"));

	assert_non_null(az_dir_worklist(d, "group:neuro"));
	assert_null(az_dir_worklist(d, "ct"));
	assert_null(az_dir_worklist(d, "location:CT"));
	assert_null(az_dir_worklist(d, "group:ct"));
	assert_null(az_dir_worklist(d, "location:neuro"));

	/* Document order: organisations, locations, groups, users. */
	assert_string_equal(az_dir_worklist_at(d, 0)->id,
	                    "organisation:stelsewhere");
	assert_string_equal(az_dir_worklist_at(d, 3)->id, "location:ct");
	assert_string_equal(az_dir_worklist_at(d, 6)->id, "group:neuro");
	assert_string_equal(az_dir_worklist_at(d, 8)->id, "user:alice");
	assert_string_equal(az_dir_worklist_at(d, 12)->id, "user:erin");
	assert_null(az_dir_worklist_at(d, 13));

	assert_string_equal(az_wl_kind_name(AZ_WL_ORGANISATION),
	                    "organisation");
	assert_string_equal(az_wl_kind_name(AZ_WL_LOCATION), "location");
	assert_string_equal(az_wl_kind_name(AZ_WL_GROUP), "group");
	assert_string_equal(az_wl_kind_name(AZ_WL_USER), "user");
	az_dir_free(d);
	az_dir_free(NULL);
}

static uint32_t
perms(const az_dir *d, const char *user, const char *wl)
{
	return az_dir_perms(az_dir_user(d, user), az_dir_worklist(d, wl));
}

static void
test_perms(void **state)
{
	az_dir *d = parse_ok(DOC);

	(void)state;
	/* Members hold their role's permissions. */
	assert_int_equal(perms(d, "alice", "location:ct"), ALL_PERMS);
	assert_int_equal(perms(d, "alice", "group:neuro"), AZ_STUDIES_VIEW);
	assert_int_equal(perms(d, "alice", "organisation:stelsewhere"),
	                 ALL_PERMS);
	assert_int_equal(perms(d, "bob", "location:ct"), AZ_STUDIES_VIEW);
	assert_int_equal(perms(d, "bob", "location:mri"), ALL_PERMS);
	assert_int_equal(perms(d, "carol", "organisation:northclinic"),
	                 ALL_PERMS);
	assert_int_equal(perms(d, "dave", "group:south-msk"), ALL_PERMS);
	/* Non-members hold nothing, in their own organisation or not. */
	assert_int_equal(perms(d, "alice", "location:mri"), 0);
	assert_int_equal(perms(d, "bob", "group:neuro"), 0);
	assert_int_equal(perms(d, "carol", "location:ct"), 0);
	assert_int_equal(perms(d, "alice", "organisation:northclinic"), 0);
	assert_int_equal(perms(d, "bob", "organisation:stelsewhere"), 0);
	assert_int_equal(perms(d, "alice", "user:bob"), 0);
	/* Inactive users hold nothing, even where they are members. */
	assert_int_equal(perms(d, "erin", "location:ct"), 0);
	assert_int_equal(perms(d, "erin", "user:erin"), 0);
	/* Personal worklists: personal_role, or view only by default. */
	assert_int_equal(perms(d, "alice", "user:alice"), ALL_PERMS);
	assert_int_equal(perms(d, "dave", "user:dave"), AZ_STUDIES_VIEW);
	/* Unknown users or worklists. */
	assert_int_equal(perms(d, "nobody", "location:ct"), 0);
	assert_int_equal(perms(d, "alice", "location:nowhere"), 0);
	assert_int_equal(az_dir_perms(NULL, NULL), 0);
	assert_int_equal(az_dir_registration_role(d)->perms, AZ_STUDIES_VIEW);
	az_dir_free(d);
}

static void
test_role_without_permissions(void **state)
{
	az_dir *d = parse_ok(
	    "{\"roles\":[{\"id\":\"nothing\",\"permissions\":[]},"
	    "{\"id\":\"v\",\"permissions\":[\"studies.view\","
	    "\"studies.view\",\"links.guest.view\"]}],"
	    "\"organisations\":[{\"id\":\"o\",\"name\":\"O\"}],"
	    "\"locations\":[{\"id\":\"l\",\"organisation\":\"o\",\"name\":"
	    "\"L\"}],"
	    "\"users\":[{\"id\":\"u\",\"organisation\":\"o\",\"email\":\"u@o."
	    "x\","
	    "\"name\":\"U\",\"personal_role\":\"nothing\",\"active\":true,"
	    "\"memberships\":[{\"worklist\":\"location:l\",\"role\":\"v\"},"
	    "{\"worklist\":\"organisation:o\",\"role\":\"nothing\"}]}]}");

	(void)state;
	assert_int_equal(perms(d, "u", "user:u"), 0);
	assert_int_equal(perms(d, "u", "organisation:o"), 0);
	assert_int_equal(perms(d, "u", "location:l"),
	                 AZ_STUDIES_VIEW | AZ_LINKS_GUEST_VIEW);
	assert_true(az_dir_user(d, "u")->active);
	az_dir_free(d);
}

static void
test_empty_documents(void **state)
{
	az_dir *d = parse_ok("{}");

	(void)state;
	assert_int_equal(az_dir_nusers(d), 0);
	assert_int_equal(az_dir_nworklists(d), 0);
	assert_int_equal(az_dir_norgs(d), 0);
	assert_int_equal(az_dir_registration_role(d)->perms, AZ_STUDIES_VIEW);
	az_dir_free(d);
	d = parse_ok("{\"organisations\":[],\"roles\":[],\"locations\":[],"
	             "\"groups\":[],\"users\":[]}");
	assert_int_equal(az_dir_nusers(d), 0);
	az_dir_free(d);
}

static void
test_same_id_other_kinds(void **state)
{
	/* Worklist ids carry their kind: location "x", group "x", user "x"
	 * and organisation "x" are four worklists. */
	az_dir *d = parse_ok(
	    "{\"organisations\":[{\"id\":\"x\",\"name\":\"X\"}],"
	    "\"roles\":[{\"id\":\"x\",\"permissions\":[\"studies.view\"]}],"
	    "\"locations\":[{\"id\":\"x\",\"organisation\":\"x\",\"name\":"
	    "\"LX\"}],"
	    "\"groups\":[{\"id\":\"x\",\"organisation\":\"x\",\"name\":\"GX\"}]"
	    ","
	    "\"users\":[{\"id\":\"x\",\"organisation\":\"x\",\"email\":\"x@x."
	    "x\","
	    "\"name\":\"UX\",\"memberships\":[{\"worklist\":\"group:x\","
	    "\"role\":\"x\"}]}]}");

	(void)state;
	assert_int_equal(az_dir_nworklists(d), 4);
	assert_string_equal(az_dir_worklist(d, "location:x")->name, "LX");
	assert_string_equal(az_dir_worklist(d, "group:x")->name, "GX");
	assert_string_equal(az_dir_worklist(d, "organisation:x")->name, "X");
	assert_string_equal(az_dir_worklist(d, "user:x")->name, "UX");
	assert_int_equal(perms(d, "x", "group:x"), AZ_STUDIES_VIEW);
	assert_int_equal(perms(d, "x", "location:x"), 0);
	az_dir_free(d);
}

static void
test_registration_role(void **state)
{
	static const char doc[] =
	    "{\"registration_role\":\"viewer\",\"roles\":[{\"id\":\"viewer\","
	    "\"permissions\":[\"studies.view\",\"studies.share\"]}]}";
	az_dir *d = parse_ok(doc);
	const az_user *u;

	(void)state;
	assert_string_equal(az_dir_registration_role(d)->id, "viewer");
	assert_int_equal(az_dir_registration_role(d)->perms,
	                 AZ_STUDIES_VIEW | AZ_STUDIES_SHARE);
	assert_int_equal(az_dir_add_registered(d, "newbie", "New Bie",
	                                       "New.Bie@Example.org"),
	                 0);
	u = az_dir_user(d, "newbie");
	assert_non_null(u);
	assert_true(u->registered);
	assert_true(u->active);
	assert_null(u->org);
	assert_null(u->password);
	assert_ptr_equal(az_dir_user_by_email(d, "new.bie@example.org"), u);
	assert_non_null(u->personal);
	assert_null(u->personal->org);
	assert_int_equal(perms(d, "newbie", "user:newbie"),
	                 AZ_STUDIES_VIEW | AZ_STUDIES_SHARE);
	az_dir_free(d);
}

static void
test_add_registered(void **state)
{
	az_dir *d = parse_ok(DOC);
	char *before = az_dir_canonical(d), *after;
	const az_user *u;

	(void)state;
	assert_non_null(before);
	/* Taken ids and emails, whatever their case. */
	assert_int_equal(
	    az_dir_add_registered(d, "alice", "Another Alice", "a2@x.example"),
	    SS_ECONFLICT);
	assert_int_equal(az_dir_add_registered(d, "alice2", "Alice Two",
	                                       "ALICE@StElsewhere.example"),
	                 SS_ECONFLICT);
	assert_int_equal(az_dir_add_registered(d, "carol2", "Carol Two",
	                                       "carol@north.example"),
	                 SS_ECONFLICT);
	assert_null(az_dir_user(d, "alice2"));
	/* Not ids, names or emails at all. */
	assert_int_equal(az_dir_add_registered(d, "a:b", "N", "n@x.example"),
	                 SS_EBADREQ);
	assert_int_equal(az_dir_add_registered(d, "ok", "", "n@x.example"),
	                 SS_EBADREQ);
	assert_int_equal(az_dir_add_registered(d, "ok", "N", "not-an-email"),
	                 SS_EBADREQ);
	assert_int_equal(az_dir_nusers(d), 5);

	assert_int_equal(
	    az_dir_add_registered(d, "frank", "Frank Fox", "frank@ex.example"),
	    0);
	assert_int_equal(az_dir_nusers(d), 6);
	u = az_dir_user(d, "frank");
	assert_non_null(u);
	assert_ptr_equal(az_dir_user_at(d, 5), u);
	assert_true(u->registered);
	assert_null(u->org);
	assert_string_equal(u->email, "frank@ex.example");
	assert_ptr_equal(az_dir_worklist(d, "user:frank"), u->personal);
	assert_int_equal(u->personal->kind, AZ_WL_USER);
	/* Without registration_role: view only, in user:<id> alone. */
	assert_int_equal(perms(d, "frank", "user:frank"), AZ_STUDIES_VIEW);
	assert_int_equal(perms(d, "frank", "location:ct"), 0);
	assert_int_equal(perms(d, "alice", "user:frank"), 0);
	/* Now taken in turn. */
	assert_int_equal(
	    az_dir_add_registered(d, "frank", "Frank Two", "f2@ex.example"),
	    SS_ECONFLICT);
	assert_int_equal(
	    az_dir_add_registered(d, "frank2", "Frank Two", "FRANK@ex.example"),
	    SS_ECONFLICT);
	assert_int_equal(az_dir_nusers(d), 6);
	/* Registered accounts are not part of the document. */
	after = az_dir_canonical(d);
	assert_non_null(after);
	assert_string_equal(before, after);
	free(before);
	free(after);
	az_dir_free(d);
}

static void
test_user_by_email(void **state)
{
	az_dir *d = parse_ok(DOC);
	const az_user *alice = az_dir_user(d, "alice");
	const az_user *carol = az_dir_user(d, "carol");

	(void)state;
	assert_ptr_equal(az_dir_user_by_email(d, "alice@stelsewhere.example"),
	                 alice);
	assert_ptr_equal(az_dir_user_by_email(d, "ALICE@STELSEWHERE.EXAMPLE"),
	                 alice);
	assert_ptr_equal(az_dir_user_by_email(d, "Alice@StElsewhere.Example"),
	                 alice);
	assert_ptr_equal(az_dir_user_by_email(d, "carol@north.example"), carol);
	assert_ptr_equal(az_dir_user_by_email(d, "Carol@North.example"), carol);
	assert_ptr_equal(az_dir_user_by_email(d, "CAROL@NORTH.EXAMPLE"), carol);
	assert_null(az_dir_user_by_email(d, "alice@elsewhere.example"));
	assert_null(az_dir_user_by_email(d, "alice"));
	assert_null(az_dir_user_by_email(d, ""));
	assert_null(az_dir_user_by_email(d, " alice@stelsewhere.example"));
	az_dir_free(d);
}

static void
test_email_and_id_helpers(void **state)
{
	char key[AZ_MAX_EMAIL_LEN + 1], long_email[AZ_MAX_EMAIL_LEN + 2];
	char id[AZ_MAX_ID_LEN + 2];

	(void)state;
	assert_int_equal(az_email_key("A.B@C.Example", 13, key), 0);
	assert_string_equal(key, "a.b@c.example");
	assert_int_equal(az_email_key("a@b", 3, key), 0);
	assert_int_equal(az_email_key("@b", 2, key), SS_EBADREQ);
	assert_int_equal(az_email_key("ab@", 3, key), SS_EBADREQ);
	assert_int_equal(az_email_key("@ab", 3, key), SS_EBADREQ);
	assert_int_equal(az_email_key("a@b@c", 5, key), SS_EBADREQ);
	assert_int_equal(az_email_key("a b@c", 5, key), SS_EBADREQ);
	assert_int_equal(az_email_key("a<b@c", 5, key), SS_EBADREQ);
	assert_int_equal(az_email_key("abc", 3, key), SS_EBADREQ);
	memset(long_email, 'a', sizeof long_email);
	long_email[10] = '@';
	assert_int_equal(az_email_key(long_email, AZ_MAX_EMAIL_LEN, key), 0);
	assert_int_equal(strlen(key), AZ_MAX_EMAIL_LEN);
	assert_int_equal(az_email_key(long_email, AZ_MAX_EMAIL_LEN + 1, key),
	                 SS_EBADREQ);

	assert_true(az_valid_id("a", 1));
	assert_true(az_valid_id("A-z_0.9", 7));
	assert_false(az_valid_id("", 0));
	assert_false(az_valid_id("a:b", 3));
	assert_false(az_valid_id("a b", 3));
	assert_false(az_valid_id("a/b", 3));
	assert_false(az_valid_id("caf\xc3\xa9", 5));
	memset(id, 'i', sizeof id);
	assert_true(az_valid_id(id, AZ_MAX_ID_LEN));
	assert_false(az_valid_id(id, AZ_MAX_ID_LEN + 1));
}

/* ---- refusals ---- */

#define ROLES                                                                  \
	"\"roles\":[{\"id\":\"viewer\",\"permissions\":[\"studies.view\"]}]"
#define ORGS                                                                   \
	"\"organisations\":[{\"id\":\"o1\",\"name\":\"Org One\"},"             \
	"{\"id\":\"o2\",\"name\":\"Org Two\"}]"
#define LOCS                                                                   \
	"\"locations\":[{\"id\":\"l1\",\"organisation\":\"o1\",\"name\":"      \
	"\"L1\"}]"
#define GRPS                                                                   \
	"\"groups\":[{\"id\":\"g1\",\"organisation\":\"o1\",\"name\":\"G1\"}]"
#define U1                                                                     \
	"{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":\"u1@o1.example\","  \
	"\"name\":\"User One\"}"
#define BASE ROLES "," ORGS "," LOCS "," GRPS
/* A document of the base sections plus users. */
#define WITH_USERS(users) "{" BASE ",\"users\":[" users "]}"

typedef struct refusal {
	const char *doc;
	const char *want; /* must appear in why */
} refusal;

static const refusal refusals[] = {
    /* Not a document. */
    {"", "not JSON"},
    {"{", "not JSON"},
    {"{\"roles\":[]} x", "not JSON"},
    {"{\"roles\":[],\"roles\":[]}", "not JSON"},
    {"[]", "the document must be a JSON object"},
    {"\"text\"", "not JSON"},
    {"{\"extra\":1}", "document: unknown field \"extra\""},
    {"{" BASE ",\"Users\":[]}", "document: unknown field \"Users\""},
    {"{\"roles\":{}}", "document: field \"roles\" must be an array"},
    {"{\"users\":null}", "document: field \"users\" must be an array"},
    {"{\"roles\":[1]}", "roles[0]: must be an object"},
    {"{" ROLES ",\"organisations\":[\"o1\"]}",
     "organisations[0]: must be an object"},
    {WITH_USERS("[]"), "users[0]: must be an object"},

    /* Unknown fields in each kind of entry. */
    {"{\"roles\":[{\"id\":\"r\",\"permissions\":[],\"perms\":[]}]}",
     "roles[0] (\"r\"): unknown field \"perms\""},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\",\"x\":1}]}",
     "organisations[0] (\"o\"): unknown field \"x\""},
    {"{" BASE ",\"locations\":[{\"id\":\"l\",\"organisation\":\"o1\","
     "\"name\":\"L\",\"floor\":2}]}",
     "not JSON"}, /* locations twice: jansson refuses duplicates */
    {"{" ROLES "," ORGS ",\"locations\":[{\"id\":\"l\",\"organisation\":"
     "\"o1\",\"name\":\"L\",\"floor\":2}]}",
     "locations[0] (\"l\"): unknown field \"floor\""},
    {"{" ROLES "," ORGS ",\"groups\":[{\"id\":\"g\",\"organisation\":"
     "\"o1\",\"name\":\"G\",\"members\":[]}]}",
     "groups[0] (\"g\"): unknown field \"members\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"role\":\"viewer\"}"),
     "users[0] (\"u1\"): unknown field \"role\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":"
                "[{\"worklist\":\"location:l1\",\"role\":\"viewer\","
                "\"since\":1}]}"),
     "users[0] (\"u1\"): memberships[0]: unknown field \"since\""},

    /* Missing required fields. */
    {"{\"roles\":[{\"permissions\":[]}]}", "roles[0]: missing field \"id\""},
    {"{\"organisations\":[{\"name\":\"O\"}]}",
     "organisations[0]: missing field \"id\""},
    {"{\"organisations\":[{\"id\":\"o\"}]}",
     "organisations[0] (\"o\"): missing field \"name\""},
    {"{" ORGS ",\"locations\":[{\"organisation\":\"o1\",\"name\":\"L\"}]}",
     "locations[0]: missing field \"id\""},
    {"{" ORGS ",\"locations\":[{\"id\":\"l\",\"name\":\"L\"}]}",
     "locations[0] (\"l\"): missing field \"organisation\""},
    {"{" ORGS ",\"locations\":[{\"id\":\"l\",\"organisation\":\"o1\"}]}",
     "locations[0] (\"l\"): missing field \"name\""},
    {"{" ORGS ",\"groups\":[{\"organisation\":\"o1\",\"name\":\"G\"}]}",
     "groups[0]: missing field \"id\""},
    {"{" ORGS ",\"groups\":[{\"id\":\"g\",\"name\":\"G\"}]}",
     "groups[0] (\"g\"): missing field \"organisation\""},
    {"{" ORGS ",\"groups\":[{\"id\":\"g\",\"organisation\":\"o1\"}]}",
     "groups[0] (\"g\"): missing field \"name\""},
    {WITH_USERS("{\"organisation\":\"o1\",\"email\":\"u1@o1.example\","
                "\"name\":\"U\"}"),
     "users[0]: missing field \"id\""},
    {WITH_USERS("{\"id\":\"u1\",\"email\":\"u1@o1.example\","
                "\"name\":\"U\"}"),
     "users[0] (\"u1\"): missing field \"organisation\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"name\":\"U\"}"),
     "users[0] (\"u1\"): missing field \"email\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\","
                "\"email\":\"u1@o1.example\"}"),
     "users[0] (\"u1\"): missing field \"name\""},
    {WITH_USERS(U1 ",{\"id\":\"u2\",\"organisation\":\"o1\",\"email\":"
                   "\"u2@o1.example\",\"name\":\"U\",\"memberships\":"
                   "[{\"role\":\"viewer\"}]}"),
     "users[1] (\"u2\"): memberships[0]: missing field \"worklist\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":"
                "[{\"worklist\":\"location:l1\"}]}"),
     "users[0] (\"u1\"): memberships[0]: missing field \"role\""},

    /* Fields of the wrong type or shape. */
    {"{\"roles\":[{\"id\":7,\"permissions\":[]}]}",
     "roles[0]: field \"id\" must be a string"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"\"}]}",
     "organisations[0] (\"o\"): field \"name\" must be 1-200"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"a\\nb\"}]}",
     "organisations[0] (\"o\"): field \"name\" must be 1-200"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"a\\u0000b\"}]}", "not JSON"},
    {"{\"roles\":[{\"id\":\"r\",\"permissions\":\"studies.view\"}]}",
     "roles[0] (\"r\"): field \"permissions\" must be an array"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\",\"shares_with\":"
     "\"p\"}]}",
     "organisations[0] (\"o\"): field \"shares_with\" must be an array"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":{}}"),
     "users[0] (\"u1\"): field \"memberships\" must be an array"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":[1]}"),
     "users[0] (\"u1\"): memberships[0]: must be an object"},
    {"{\"registration_role\":1}",
     "document: field \"registration_role\" must be a string"},

    /* Bad ids. */
    {"{\"organisations\":[{\"id\":\"a:b\",\"name\":\"O\"}]}",
     "organisations[0]: field \"id\" must be 1-64 characters"},
    {"{\"organisations\":[{\"id\":\"a b\",\"name\":\"O\"}]}",
     "organisations[0]: field \"id\" must be 1-64 characters"},
    {"{\"organisations\":[{\"id\":\"\",\"name\":\"O\"}]}",
     "organisations[0]: field \"id\" must be 1-64 characters"},
    {"{" ORGS ",\"locations\":[{\"id\":\"ct:1\",\"organisation\":\"o1\","
     "\"name\":\"L\"}]}",
     "locations[0]: field \"id\" must be 1-64 characters"},
    {"{" ORGS ",\"groups\":[{\"id\":\"g/1\",\"organisation\":\"o1\","
     "\"name\":\"G\"}]}",
     "groups[0]: field \"id\" must be 1-64 characters"},
    {"{\"roles\":[{\"id\":\"r r\",\"permissions\":[]}]}",
     "roles[0]: field \"id\" must be 1-64 characters"},
    {WITH_USERS("{\"id\":\"user:u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\"}"),
     "users[0]: field \"id\" must be 1-64 characters"},
    {"{\"organisations\":[{\"id\":\"a23456789012345678901234567890123456789"
     "01234567890123456789012345\",\"name\":\"O\"}]}",
     "organisations[0]: field \"id\" must be 1-64 characters"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"personal_role\":\"a:b\"}"),
     "users[0] (\"u1\"): field \"personal_role\" must be 1-64 characters"},

    /* Duplicate ids, per kind. */
    {"{\"roles\":[{\"id\":\"r\",\"permissions\":[]},"
     "{\"id\":\"r\",\"permissions\":[]}]}",
     "roles[1] (\"r\"): duplicate id"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\"},"
     "{\"id\":\"o\",\"name\":\"O2\"}]}",
     "organisations[1] (\"o\"): duplicate id"},
    {"{" ORGS ",\"locations\":[{\"id\":\"x\",\"organisation\":\"o1\","
     "\"name\":\"X\"},{\"id\":\"x\",\"organisation\":\"o2\",\"name\":\"Y\"}]}",
     "locations[1] (\"x\"): duplicate id"},
    {"{" ORGS ",\"groups\":[{\"id\":\"x\",\"organisation\":\"o1\","
     "\"name\":\"X\"},{\"id\":\"x\",\"organisation\":\"o1\",\"name\":\"X\"}]}",
     "groups[1] (\"x\"): duplicate id"},
    {WITH_USERS(U1 ",{\"id\":\"u1\",\"organisation\":\"o2\",\"email\":"
                   "\"other@o2.example\",\"name\":\"U\"}"),
     "users[1] (\"u1\"): duplicate id"},

    /* Unknown references. */
    {"{" ORGS ",\"locations\":[{\"id\":\"l\",\"organisation\":\"o3\","
     "\"name\":\"L\"}]}",
     "locations[0] (\"l\"): unknown organisation \"o3\""},
    {"{" ORGS ",\"groups\":[{\"id\":\"g\",\"organisation\":\"o3\","
     "\"name\":\"G\"}]}",
     "groups[0] (\"g\"): unknown organisation \"o3\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o3\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\"}"),
     "users[0] (\"u1\"): unknown organisation \"o3\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":"
                "[{\"worklist\":\"location:l1\",\"role\":\"boss\"}]}"),
     "users[0] (\"u1\"): memberships[0]: unknown role \"boss\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"personal_role\":"
                "\"boss\"}"),
     "users[0] (\"u1\"): unknown personal_role \"boss\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":"
                "[{\"worklist\":\"location:l1\",\"role\":\"viewer\"},"
                "{\"worklist\":\"location:l2\",\"role\":\"viewer\"}]}"),
     "users[0] (\"u1\"): memberships[1]: unknown worklist \"location:l2\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":"
                "[{\"worklist\":\"l1\",\"role\":\"viewer\"}]}"),
     "users[0] (\"u1\"): memberships[0]: unknown worklist \"l1\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":"
                "[{\"worklist\":\"group:l1\",\"role\":\"viewer\"}]}"),
     "users[0] (\"u1\"): memberships[0]: unknown worklist \"group:l1\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"memberships\":"
                "[{\"worklist\":\"location:l1\",\"role\":\"viewer\"},"
                "{\"worklist\":\"group:g1\",\"role\":\"viewer\"},"
                "{\"worklist\":\"location:l1\",\"role\":\"viewer\"}]}"),
     "users[0] (\"u1\"): memberships[2]: a second membership of "
     "\"location:l1\""},
    {"{\"roles\":[{\"id\":\"r\",\"permissions\":[\"studies.view\","
     "\"studies.fly\"]}]}",
     "roles[0] (\"r\"): permissions[1]: unknown permission \"studies.fly\""},
    {"{\"roles\":[{\"id\":\"r\",\"permissions\":[\"Studies.View\"]}]}",
     "roles[0] (\"r\"): permissions[0]: unknown permission"},
    {"{\"roles\":[{\"id\":\"r\",\"permissions\":[3]}]}",
     "roles[0] (\"r\"): permissions[0]: unknown permission (not a string)"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\",\"shares_with\":"
     "[\"p\"]}]}",
     "organisations[0] (\"o\"): shares_with[0]: unknown organisation"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\",\"shares_with\":"
     "[\"p\",1]},{\"id\":\"p\",\"name\":\"P\"}]}",
     "organisations[0] (\"o\"): shares_with[1]: unknown organisation"},
    {"{\"organisations\":[{\"id\":\"p\",\"name\":\"P\"},{\"id\":\"o\","
     "\"name\":\"O\",\"shares_with\":[\"p\",\"o\"]}]}",
     "organisations[1] (\"o\"): shares_with[1]: an organisation cannot "
     "share with itself"},
    {"{\"registration_role\":\"boss\"," ROLES "}",
     "document: registration_role: unknown role \"boss\""},

    /* Emails and passwords. */
    {WITH_USERS(U1 ",{\"id\":\"u2\",\"organisation\":\"o2\",\"email\":"
                   "\"U1@O1.Example\",\"name\":\"U\"}"),
     "users[1] (\"u2\"): email is already used by user \"u1\""},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"nobody\",\"name\":\"U\"}"),
     "users[0] (\"u1\"): \"nobody\" is not an email address"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"a@b@c\",\"name\":\"U\"}"),
     "users[0] (\"u1\"): \"a@b@c\" is not an email address"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"a b@c.example\",\"name\":\"U\"}"),
     "users[0] (\"u1\"): \"a b@c.example\" is not an email address"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"@c.example\",\"name\":\"U\"}"),
     "users[0] (\"u1\"): \"@c.example\" is not an email address"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"\",\"name\":\"U\"}"),
     "users[0] (\"u1\"): \"\" is not an email address"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"password\":\"1234567\"}"),
     "users[0] (\"u1\"): password must be 8-1024 characters"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"password\":\"\"}"),
     "users[0] (\"u1\"): password must be 8-1024 characters"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"password\":12345678}"),
     "users[0] (\"u1\"): field \"password\" must be a string"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"active\":\"no\"}"),
     "users[0] (\"u1\"): field \"active\" must be true or false"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"active\":0}"),
     "users[0] (\"u1\"): field \"active\" must be true or false"},
    {WITH_USERS("{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
                "\"u1@o1.example\",\"name\":\"U\",\"active\":null}"),
     "users[0] (\"u1\"): field \"active\" must be true or false"},

    /* Share codes. */
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\",\"share_code\":"
     "\"ABCDU123\"}]}",
     "organisations[0] (\"o\"): share_code \"ABCDU123\" is not 8 "
     "characters of Crockford base32"},
    {"{" ORGS ",\"locations\":[{\"id\":\"l\",\"organisation\":\"o1\","
     "\"name\":\"L\",\"share_code\":\"ABC\"}]}",
     "locations[0] (\"l\"): share_code \"ABC\" is not 8 characters"},
    {"{" ORGS ",\"groups\":[{\"id\":\"g\",\"organisation\":\"o1\","
     "\"name\":\"G\",\"share_code\":\"ABCD12345\"}]}",
     "groups[0] (\"g\"): share_code \"ABCD12345\" is not 8 characters"},
    {WITH_USERS(
         "{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
         "\"u1@o1.example\",\"name\":\"U\",\"share_code\":\"ABCD_123\"}"),
     "users[0] (\"u1\"): share_code \"ABCD_123\" is not 8 characters"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\",\"share_code\":"
     "12345678}]}",
     "organisations[0] (\"o\"): field \"share_code\" must be a string"},
    {"{" ORGS ",\"locations\":[{\"id\":\"l\",\"organisation\":\"o1\","
     "\"name\":\"L\",\"share_code\":\"abcd-1234\"}],"
     "\"groups\":[{\"id\":\"g\",\"organisation\":\"o2\",\"name\":\"G\","
     "\"share_code\":\"ABCD1234\"}]}",
     "groups[0] (\"g\"): share_code ABCD1234 is already used by "
     "locations[0] (\"l\")"},
    {"{\"organisations\":[{\"id\":\"o\",\"name\":\"O\",\"share_code\":"
     "\"0000IIII\"}],\"locations\":[{\"id\":\"l\",\"organisation\":\"o\","
     "\"name\":\"L\",\"share_code\":\"oooo1111\"}]}",
     "locations[0] (\"l\"): share_code 00001111 is already used by "
     "organisations[0] (\"o\")"},
    {WITH_USERS(
         "{\"id\":\"u1\",\"organisation\":\"o1\",\"email\":"
         "\"u1@o1.example\",\"name\":\"U\",\"share_code\":\"ZZZZZZZZ\"},"
         "{\"id\":\"u2\",\"organisation\":\"o1\",\"email\":"
         "\"u2@o1.example\",\"name\":\"U\",\"share_code\":\"zzzz zzzz\"}"),
     "users[1] (\"u2\"): share_code ZZZZZZZZ is already used by "
     "users[0] (\"u1\")"},
};

static void
test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		const refusal *r = &refusals[i];
		char why[512];
		az_dir *d = (az_dir *)1;
		int rv;

		memset(why, 0, sizeof why);
		rv = az_dir_parse(r->doc, strlen(r->doc), &d, why, sizeof why);
		if (rv != SS_EBADREQ || strstr(why, r->want) == NULL)
			print_error("case %zu: %s\n  rv %d, why \"%s\"\n  want "
			            "\"%s\"\n",
			            i, r->doc, rv, why, r->want);
		assert_int_equal(rv, SS_EBADREQ);
		assert_null(d);
		assert_non_null(strstr(why, r->want));
	}
}

static void
test_why_truncated(void **state)
{
	const char *doc =
	    "{\"organisations\":[{\"id\":\"a:b\",\"name\":\"O\"}]}";
	char why[12];
	az_dir *d;

	(void)state;
	memset(why, 'x', sizeof why);
	assert_int_equal(az_dir_parse(doc, strlen(doc), &d, why, sizeof why),
	                 SS_EBADREQ);
	assert_null(d);
	assert_int_equal(strlen(why), sizeof why - 1);
	assert_memory_equal(why, "organisatio", sizeof why - 1);
}

static void
test_accepted_edges(void **state)
{
	/* Just inside every limit. */
	az_dir *d = parse_ok(WITH_USERS(
	    "{\"id\":\"a234567890123456789012345678901234567890123456789012"
	    "345678901234\",\"organisation\":\"o1\",\"email\":\"U1@o1."
	    "example\","
	    "\"name\":\"U\",\"password\":\"12345678\",\"share_code\":"
	    "\"abcd-efgh\",\"active\":true},"
	    "{\"id\":\"u2\",\"organisation\":\"o2\",\"email\":\"u2@o1."
	    "example\","
	    "\"name\":\"U Two\",\"memberships\":[{\"worklist\":\"user:"
	    "a234567890123456789012345678901234567890123456789012345678901234"
	    "\",\"role\":\"viewer\"}]}"));
	const az_user *u = az_dir_user_at(d, 0);

	(void)state;
	assert_int_equal(strlen(u->id), AZ_MAX_ID_LEN);
	assert_string_equal(u->password, "12345678");
	assert_string_equal(u->personal->code, "ABCDEFGH");
	assert_string_equal(
	    u->personal->id,
	    "user:a234567890123456789012345678901234567890123456789012345678901"
	    "234");
	/* Another user's personal worklist may be shared with a member. */
	assert_int_equal(az_dir_perms(az_dir_user(d, "u2"), u->personal),
	                 AZ_STUDIES_VIEW);
	assert_int_equal(az_dir_perms(u, az_dir_user(d, "u2")->personal), 0);
	az_dir_free(d);
}

/* ---- canonical form ---- */

/* True when every object's keys, in text order, are sorted. */
static bool
sorted_keys(json_t *j)
{
	const char *k, *prev = NULL;
	json_t *v;
	size_t i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
		{
			if (!sorted_keys(v))
				return false;
		}
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v)
		{
			if ((prev != NULL && strcmp(prev, k) >= 0) ||
			    !sorted_keys(v))
				return false;
			prev = k;
		}
	}
	return true;
}

static void
test_canonical(void **state)
{
	az_dir *d = parse_ok(DOC), *d2;
	char *c1 = az_dir_canonical(d), *c2, *c3;
	json_t *j;

	(void)state;
	assert_non_null(c1);
	assert_null(strstr(c1, "password"));
	assert_null(strstr(c1, "alice-password"));
	assert_null(strstr(c1, "labels"));
	assert_null(strchr(c1, '\n'));
	assert_null(strstr(c1, "\": "));
	assert_non_null(strstr(c1, "\"active\":false"));
	assert_non_null(strstr(c1, "\"email\":\"Carol@North.example\""));
	assert_non_null(strstr(c1, "\"share_code\":\"sothmsk1\""));
	/* Sorted keys: parsed back, jansson iterates in text order. */
	j = json_loads(c1, 0, NULL);
	assert_non_null(j);
	assert_true(sorted_keys(j));
	assert_int_equal(json_array_size(json_object_get(j, "users")), 5);
	json_decref(j);
	assert_memory_equal(c1, "{\"groups\":", 10);

	/* Stable: the same document twice, and the same model, give the
	 * same string. */
	c2 = az_dir_canonical(d);
	assert_string_equal(c1, c2);
	free(c2);
	d2 = parse_ok(DOC);
	c2 = az_dir_canonical(d2);
	assert_string_equal(c1, c2);
	free(c2);
	az_dir_free(d2);

	/* The same directory written otherwise: same canonical form. */
	d2 = parse_ok(DOC_SHUFFLED);
	c2 = az_dir_canonical(d2);
	assert_string_equal(c1, c2);
	free(c2);
	az_dir_free(d2);

	/* The model still holds the passwords for the import. */
	assert_string_equal(az_dir_user(d, "bob")->password, "bob-password");

	/* Re-parsing the canonical form gives the same form, and the same
	 * model without passwords. */
	d2 = parse_ok(c1);
	c3 = az_dir_canonical(d2);
	assert_string_equal(c1, c3);
	assert_int_equal(az_dir_nusers(d2), 5);
	assert_int_equal(az_dir_nworklists(d2), 13);
	assert_null(az_dir_user(d2, "alice")->password);
	assert_int_equal(perms(d2, "alice", "location:ct"), ALL_PERMS);
	assert_int_equal(perms(d2, "erin", "location:ct"), 0);
	assert_string_equal(az_dir_worklist(d2, "group:south-msk")->code,
	                    "S0THMSK1");
	free(c3);
	az_dir_free(d2);
	free(c1);
	az_dir_free(d);
}

static void
test_canonical_registration_role(void **state)
{
	static const char doc[] =
	    "{\"roles\":[{\"id\":\"r\",\"permissions\":[\"studies.view\"]}],"
	    "\"registration_role\":\"r\",\"users\":[]}";
	az_dir *d = parse_ok(doc), *d2;
	char *c = az_dir_canonical(d), *c2;

	(void)state;
	assert_non_null(c);
	assert_string_equal(c,
	                    "{\"registration_role\":\"r\",\"roles\":[{\"id\":"
	                    "\"r\",\"permissions\":[\"studies.view\"]}],"
	                    "\"users\":[]}");
	d2 = parse_ok(c);
	assert_string_equal(az_dir_registration_role(d2)->id, "r");
	c2 = az_dir_canonical(d2);
	assert_string_equal(c, c2);
	free(c);
	free(c2);
	az_dir_free(d);
	az_dir_free(d2);
}

/* ---- share codes from Redis ---- */

static void
test_set_code(void **state)
{
	az_dir *d = parse_ok(DOC);
	const az_worklist *ct = az_dir_worklist(d, "location:ct");
	const az_worklist *mri = az_dir_worklist(d, "location:mri");

	(void)state;
	assert_int_equal(az_dir_set_code(d, "location:ct", "ABCDEFGH"), 0);
	assert_string_equal(ct->code, "ABCDEFGH");
	assert_false(ct->code_fixed);
	assert_ptr_equal(az_dir_worklist_by_code(d, "ABCDEFGH"), ct);
	assert_ptr_equal(az_dir_worklist_by_code(d, "abcd-efgh"), ct);
	/* Setting the same code again is no conflict. */
	assert_int_equal(az_dir_set_code(d, "location:ct", "ABCDEFGH"), 0);
	/* A code another worklist holds is. */
	assert_int_equal(az_dir_set_code(d, "location:mri", "ABCDEFGH"),
	                 SS_ECONFLICT);
	assert_string_equal(mri->code, "");
	assert_int_equal(az_dir_set_code(d, "location:mri", "S0THMSK1"),
	                 SS_ECONFLICT);
	assert_ptr_equal(az_dir_worklist_by_code(d, "S0THMSK1"),
	                 az_dir_worklist(d, "group:south-msk"));
	assert_int_equal(az_dir_set_code(d, "location:nowhere", "ABCDEFGJ"),
	                 SS_ENOTFOUND);
	assert_int_equal(az_dir_set_code(d, "location:mri", "ABC"), SS_EBADREQ);
	assert_int_equal(az_dir_set_code(d, "location:mri", "MMMMMMMM"), 0);
	assert_ptr_equal(az_dir_worklist_by_code(d, "mmmm mmmm"), mri);

	/* A new code replaces the old one, which is then free. */
	assert_int_equal(az_dir_set_code(d, "location:ct", "CCCCCCCC"), 0);
	assert_ptr_equal(az_dir_worklist_by_code(d, "CCCCCCCC"), ct);
	assert_null(az_dir_worklist_by_code(d, "ABCDEFGH"));
	assert_int_equal(az_dir_set_code(d, "location:mri", "ABCDEFGH"), 0);
	assert_ptr_equal(az_dir_worklist_by_code(d, "ABCDEFGH"), mri);
	assert_null(az_dir_worklist_by_code(d, "MMMMMMMM"));
	az_dir_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_model),
	    cmocka_unit_test(test_perms),
	    cmocka_unit_test(test_role_without_permissions),
	    cmocka_unit_test(test_empty_documents),
	    cmocka_unit_test(test_same_id_other_kinds),
	    cmocka_unit_test(test_registration_role),
	    cmocka_unit_test(test_add_registered),
	    cmocka_unit_test(test_user_by_email),
	    cmocka_unit_test(test_email_and_id_helpers),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_why_truncated),
	    cmocka_unit_test(test_accepted_edges),
	    cmocka_unit_test(test_canonical),
	    cmocka_unit_test(test_canonical_registration_role),
	    cmocka_unit_test(test_set_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
