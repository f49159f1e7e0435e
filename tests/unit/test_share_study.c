/*
 * tests/unit/test_share_study.c - services/share/study.c: validation of
 * study.arrived bodies, the plain and the sealed form, listing members,
 * and keys (the priors keys with their keyed patient hash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "proto/errors.h"
#include "services/share/study.h"

#define SECRET "share-test-seal-key-0123456789abcdef0123"
#define OTHER  "share-other-seal-key-0123456789abcdef012"

static ss_seal_key key, other;

/* Builds a body map from key/value string pairs (NULL-terminated); a
 * value of "<int>" packs the integer 7 instead, for type errors. */
static void
body(ss_pack *p, msgpack_unpacked *up, const char *const *kv)
{
	size_t n = 0;

	while (kv[2 * n] != NULL)
		n++;
	ss_pack_reset(p);
	msgpack_pack_map(&p->pk, n);
	for (size_t i = 0; i < n; i++) {
		ss_pack_key(p, kv[2 * i]);
		if (strcmp(kv[2 * i + 1], "<int>") == 0)
			msgpack_pack_int(&p->pk, 7);
		else
			ss_pack_cstr(p, kv[2 * i + 1]);
	}
	msgpack_unpacked_init(up);
	assert_int_equal(msgpack_unpack_next(up, p->sb.data, p->sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
}

static int
parse(const char *const *kv, sh_study *st, char *wl, char *why)
{
	msgpack_unpacked up;
	ss_pack p;
	int rv;

	ss_pack_init(&p);
	body(&p, &up, kv);
	rv = sh_study_parse(&up.data, st, wl, NULL, NULL, why, 256);
	msgpack_unpacked_destroy(&up);
	ss_pack_free(&p);
	return rv;
}

static void
test_uids(void **state)
{
	const char *good[] = {
	    "1", "0", "1.2.840.10008.1", "0.0",
	    "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19"};
	const char *bad[] = {"",     ".",     "1.",  ".1",  "1..2", "01.2",
	                     "1.02", "1.2.a", "1,2", "1 2", "-1",   "1.2.3\n"};
	char max[SH_UID_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		assert_true(sh_valid_uid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_false(sh_valid_uid(bad[i], strlen(bad[i])));
	memset(max, '1', SH_UID_MAX);
	assert_true(sh_valid_uid(max, SH_UID_MAX));
	max[SH_UID_MAX] = '1';
	assert_false(sh_valid_uid(max, SH_UID_MAX + 1));
}

static void
test_dates(void **state)
{
	const char *good[] = {"20261101", "20240229", "20000229", "19991231",
	                      "10000101"};
	const char *bad[] = {"20230229", "19000229", "20261301",  "20261100",
	                     "20260431", "2026110",  "202611011", "2026-11-01",
	                     "0999123",  "09991231", "2026111a"};

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		assert_true(sh_valid_date(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_false(sh_valid_date(bad[i], strlen(bad[i])));
}

static void
test_worklists_and_text(void **state)
{
	(void)state;
	assert_true(sh_valid_worklist("location:ct", 11));
	assert_true(sh_valid_worklist("user:a.b_c-d", 12));
	assert_true(sh_valid_worklist("organisation:x", 14));
	assert_false(sh_valid_worklist("location:", 9));
	assert_false(sh_valid_worklist("planet:mars", 11));
	assert_false(sh_valid_worklist("ct", 2));
	assert_false(sh_valid_worklist("location:c t", 12));
	assert_false(sh_valid_worklist("group:{x}", 9)); /* no hash tags */

	assert_true(sh_valid_text("DOE^JANE", 8));
	assert_true(sh_valid_text("M\xc3\xbcller", 7));    /* Müller */
	assert_true(sh_valid_text("\xe2\x82\xac", 3));     /* € */
	assert_true(sh_valid_text("\xf0\x9f\x98\x80", 4)); /* emoji */
	assert_false(sh_valid_text("a\nb", 3));
	assert_false(sh_valid_text("a\x7f", 2));
	assert_false(sh_valid_text("\xc3", 1));         /* truncated */
	assert_false(sh_valid_text("\xc0\xaf", 2));     /* overlong */
	assert_false(sh_valid_text("\xed\xa0\x80", 3)); /* surrogate */
	assert_false(sh_valid_text("\xff", 1));
	assert_true(sh_valid_message("line one\nline two\r\n\tend", 23));
	assert_false(sh_valid_message("bell\a", 5));
}

static void
test_parse_full_event(void **state)
{
	const char *kv[] = {
	    "study_uid",   "1.2.840.1", "worklist", "location:ct", "study_date",
	    "20261101",    "accession", "A1",       "modality",    "CT",
	    "description", "CT HEAD",   NULL};
	char wl[SH_WL_MAX + 1], why[256];
	sh_study st;

	(void)state;
	assert_int_equal(parse(kv, &st, wl, why), 0);
	assert_string_equal(st.uid, "1.2.840.1");
	assert_string_equal(wl, "location:ct");
	assert_string_equal(st.study_date, "20261101");
	assert_string_equal(st.accession, "A1");
	assert_string_equal(st.modality, "CT");
	assert_string_equal(st.description, "CT HEAD");
	assert_string_equal(st.patient_id, "");
}

static void
test_parse_patient_map(void **state)
{
	char wl[SH_WL_MAX + 1], why[256];
	msgpack_unpacked up;
	sh_study st;
	ss_pack p;

	(void)state;
	ss_pack_init(&p);
	msgpack_pack_map(&p.pk, 3);
	ss_pack_kv_cstr(&p, "study_uid", "1.2.3");
	ss_pack_kv_cstr(&p, "worklist", "group:neuro");
	ss_pack_key(&p, "patient");
	msgpack_pack_map(&p.pk, 3);
	ss_pack_kv_cstr(&p, "id", "P123");
	ss_pack_kv_cstr(&p, "name", "DOE^JANE");
	ss_pack_kv_cstr(&p, "birth_date", "19800131");
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(
	    sh_study_parse(&up.data, &st, wl, NULL, NULL, why, sizeof why), 0);
	assert_string_equal(st.patient_id, "P123");
	assert_string_equal(st.patient_name, "DOE^JANE");
	assert_string_equal(st.birth_date, "19800131");
	msgpack_unpacked_destroy(&up);

	/* A bad birth date is named with its path. */
	ss_pack_reset(&p);
	msgpack_pack_map(&p.pk, 3);
	ss_pack_kv_cstr(&p, "study_uid", "1.2.3");
	ss_pack_kv_cstr(&p, "worklist", "group:neuro");
	ss_pack_key(&p, "patient");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_cstr(&p, "birth_date", "19801331");
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(
	    sh_study_parse(&up.data, &st, wl, NULL, NULL, why, sizeof why),
	    SS_EBADREQ);
	assert_non_null(strstr(why, "'patient.birth_date'"));
	assert_string_equal(wl, "");
	msgpack_unpacked_destroy(&up);

	/* An unknown field inside patient, too. */
	ss_pack_reset(&p);
	msgpack_pack_map(&p.pk, 3);
	ss_pack_kv_cstr(&p, "study_uid", "1.2.3");
	ss_pack_kv_cstr(&p, "worklist", "group:neuro");
	ss_pack_key(&p, "patient");
	msgpack_pack_map(&p.pk, 1);
	ss_pack_kv_cstr(&p, "sex", "F");
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, p.sb.data, p.sb.size, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(
	    sh_study_parse(&up.data, &st, wl, NULL, NULL, why, sizeof why),
	    SS_EBADREQ);
	assert_non_null(strstr(why, "patient"));
	assert_non_null(strstr(why, "sex"));
	msgpack_unpacked_destroy(&up);
	ss_pack_free(&p);
}

/* A date in another form is answered with the rule, whatever its length,
 * up to a length no date has. */
static void
test_dates_answer_with_the_rule(void **state)
{
	static const char *const dates[] = {"2026-11-01", "2026/11/01",
	                                    "1 November 2026", "202611011"};
	static const char *const kv[] = {
	    "study_uid",  "1.2", "worklist", "location:ct",
	    "study_date", NULL,  NULL};
	const char *k[7];
	char wl[SH_WL_MAX + 1], why[256];
	char long_date[40];
	sh_study st;

	(void)state;
	memcpy(k, kv, sizeof k);
	for (size_t i = 0; i < sizeof dates / sizeof *dates; i++) {
		k[5] = dates[i];
		assert_int_equal(parse(k, &st, wl, why), SS_EBADREQ);
		assert_string_equal(
		    why, "field 'study_date': expected a YYYYMMDD date");
	}
	memset(long_date, '2', sizeof long_date - 1);
	long_date[sizeof long_date - 1] = '\0';
	k[5] = long_date;
	assert_int_equal(parse(k, &st, wl, why), SS_EBADREQ);
	assert_string_equal(why, "field 'study_date': at most 32 bytes");
}

/* Each bad event is refused, and the message names the field. */
static void
test_refusals_name_the_field(void **state)
{
	static const struct {
		const char *kv[12];
		const char *field;
	} cases[] = {
	    {{"worklist", "location:ct", NULL}, "study_uid"},
	    {{"study_uid", "1.2", NULL}, "worklist"},
	    {{"study_uid", "1..2", "worklist", "location:ct", NULL},
	     "study_uid"},
	    {{"study_uid", "<int>", "worklist", "location:ct", NULL},
	     "study_uid"},
	    {{"study_uid", "1.2", "worklist", "mars", NULL}, "worklist"},
	    {{"study_uid", "1.2", "worklist", "location:ct", "study_date",
	      "2026-11-01", NULL},
	     "study_date"},
	    {{"study_uid", "1.2", "worklist", "location:ct", "modality", "C\tT",
	      NULL},
	     "modality"},
	    {{"study_uid", "1.2", "worklist", "location:ct", "description", "",
	      NULL},
	     "description"},
	    {{"study_uid", "1.2", "worklist", "location:ct", "accession",
	      "\xc3", NULL},
	     "accession"},
	    {{"study_uid", "1.2", "worklist", "location:ct", "colour", "red",
	      NULL},
	     "colour"},
	    {{"study_uid", "1.2", "worklist", "location:ct", "patient", "P1",
	      NULL},
	     "patient"},
	};
	char wl[SH_WL_MAX + 1], why[256], want[64];
	sh_study st;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		assert_int_equal(parse(cases[i].kv, &st, wl, why), SS_EBADREQ);
		snprintf(want, sizeof want, "'%s'", cases[i].field);
		if (strstr(why, want) == NULL)
			fail_msg("case %zu: \"%s\" does not name %s", i, why,
			         want);
	}
}

static void
test_stored_form_round_trips(void **state)
{
	sh_study a = {0}, b;
	ss_pack p1, p2;

	(void)state;
	strcpy(a.uid, "1.2.840.99");
	strcpy(a.patient_id, "P1");
	strcpy(a.patient_name, "DOE^JANE");
	strcpy(a.study_date, "20261101");
	strcpy(a.modality, "MR");
	ss_pack_init(&p1);
	ss_pack_init(&p2);
	sh_study_pack(&a, &p1);
	assert_int_equal(sh_study_unpack(p1.sb.data, p1.sb.size, &b), 0);
	assert_memory_equal(&a, &b, sizeof a);
	/* The same study always gives the same bytes. */
	sh_study_pack(&b, &p2);
	assert_int_equal(p1.sb.size, p2.sb.size);
	assert_memory_equal(p1.sb.data, p2.sb.data, p1.sb.size);
	/* Broken bytes are refused. */
	assert_int_equal(sh_study_unpack(p1.sb.data, p1.sb.size - 1, &b),
	                 SS_EINTERNAL);
	assert_int_equal(sh_study_unpack("\x81\xa1x\x01", 4, &b),
	                 SS_EINTERNAL); /* no study_uid */
	assert_int_equal(sh_study_unpack(NULL, 0, &b), SS_EINTERNAL);
	ss_pack_free(&p1);
	ss_pack_free(&p2);
}

static void
test_sealed_form(void **state)
{
	unsigned char b1[SH_BLOB_MAX], b2[SH_BLOB_MAX];
	char plain[SH_PLAIN_MAX];
	size_t n1, n2, n;
	sh_study a = {0}, b;

	(void)state;
	strcpy(a.uid, "1.2.840.99");
	strcpy(a.patient_id, "PID-4711");
	strcpy(a.patient_name, "DOE^JANE");
	strcpy(a.birth_date, "19800131");
	strcpy(a.study_date, "20261101");
	strcpy(a.description, "CT HEAD");
	assert_int_equal(sh_study_seal(&key, &a, b1, &n1), 0);
	/* Nothing of the patient in the bytes. */
	assert_null(memmem(b1, n1, "DOE^JANE", 8));
	assert_null(memmem(b1, n1, "19800131", 8));
	assert_null(memmem(b1, n1, "PID-4711", 8));
	assert_null(memmem(b1, n1, "CT HEAD", 7));
	/* It opens into the same study, under its own uid only. */
	assert_int_equal(sh_study_open(&key, "1.2.840.99", (char *)b1, n1, &b),
	                 0);
	assert_memory_equal(&a, &b, sizeof a);
	assert_int_equal(sh_study_open(&key, "1.2.840.98", (char *)b1, n1, &b),
	                 SS_EINTERNAL);
	assert_string_equal(b.patient_name, ""); /* nothing half-opened */
	assert_int_equal(
	    sh_study_open(&other, "1.2.840.99", (char *)b1, n1, &b),
	    SS_EINTERNAL);
	b1[n1 / 2] ^= 1;
	assert_int_equal(sh_study_open(&key, "1.2.840.99", (char *)b1, n1, &b),
	                 SS_EINTERNAL);
	b1[n1 / 2] ^= 1;
	assert_int_equal(
	    sh_blob_open(&key, "1.2.840.99", 10, (char *)b1, n1 - 1, plain, &n),
	    SS_EINTERNAL);
	assert_int_equal(
	    sh_blob_open(&key, "1.2.840.99", 10, (char *)b1, n1, plain, &n), 0);
	assert_int_equal(n, n1 - SS_SEAL_OVERHEAD);
	/* The same study sealed twice: other bytes, same study. */
	assert_int_equal(sh_study_seal(&key, &a, b2, &n2), 0);
	assert_int_equal(n1, n2);
	assert_memory_not_equal(b1, b2, n1);
	assert_int_equal(sh_study_open(&key, "1.2.840.99", (char *)b2, n2, &b),
	                 0);
	/* A study at every bound still fits. */
	memset(&b, 'x', sizeof b);
	strcpy(b.uid, "1.2.3");
	b.study_date[SH_DATE_LEN] = b.birth_date[SH_DATE_LEN] = '\0';
	b.patient_id[SH_PID_MAX] = b.patient_name[SH_PNAME_MAX] = '\0';
	b.accession[SH_ACC_MAX] = b.modality[SH_MOD_MAX] = '\0';
	b.description[SH_DESC_MAX] = '\0';
	assert_int_equal(sh_study_seal(&key, &b, b2, &n2), 0);
}

static void
test_diff(void **state)
{
	sh_study a = {0}, b;
	char names[160];

	(void)state;
	strcpy(a.uid, "1.2");
	strcpy(a.patient_name, "DOE^JANE");
	strcpy(a.birth_date, "19800131");
	b = a;
	assert_int_equal(sh_study_diff(&a, &b, names), 0);
	assert_string_equal(names, "");
	strcpy(b.patient_name, "DOE^JOHN");
	strcpy(b.birth_date, "19800130");
	strcpy(b.modality, "CT");
	assert_int_equal(sh_study_diff(&a, &b, names), 3);
	/* Names only, never the values. */
	assert_string_equal(names, "patient.name,patient.birth_date,modality");
}

static void
test_members(void **state)
{
	char im[SH_INDEX_MAX + 1];
	sh_study st = {0};
	size_t n;

	(void)state;
	/* The list script cuts members at a fixed 1-based offset (store.c). */
	assert_int_equal(SH_INDEX_UID_AT + 1, 24);

	strcpy(st.uid, "1.2.3");
	n = sh_index_member(&st, 1732871234567, im);
	assert_string_equal(im, "00000000:1732871234567:1.2.3");
	assert_int_equal(n, strlen(im));
	assert_true(sh_valid_cursor(im, n));
	assert_int_equal(sh_index_added(im, n), 1732871234567);
	strcpy(st.study_date, "20261101");
	sh_index_member(&st, 5, im);
	assert_string_equal(im, "20261101:0000000000005:1.2.3");

	assert_false(sh_valid_cursor("20261101:123:1.2", 16));
	assert_false(sh_valid_cursor("20261101:0000000000005:", 23));
	assert_false(sh_valid_cursor("2026110x:0000000000005:1", 24));
	assert_false(sh_valid_cursor("20261101;0000000000005:1", 24));
	assert_int_equal(sh_index_added("junk", 4), -1);
}

/* The priors set of a patient in a worklist: named by a keyed hash of the
 * patient id, in the worklist's hash tag. */
static void
test_priors_keys(void **state)
{
	static const char pre[] = "share:{wl:location:ct}:pri:";
	char k[SH_KEY_MAX], k2[SH_KEY_MAX], hex[SH_PHASH_LEN + 1];
	unsigned char pkey[SH_PKEY_LEN], pkey2[SH_PKEY_LEN];
	unsigned char mac[crypto_auth_hmacsha256_BYTES], h[SH_PHASH_LEN / 2];
	char long_wl[SH_WL_MAX + 1];
	sh_study st = {0};
	size_t n;

	(void)state;
	sh_patient_key(&key, pkey);
	sh_patient_key(&other, pkey2);
	assert_memory_not_equal(pkey, pkey2, SH_PKEY_LEN);
	/* Not the seal key itself, nor a seal subkey of it. */
	assert_memory_not_equal(pkey, key.k, SH_PKEY_LEN);

	strcpy(st.uid, "1.2.3");
	strcpy(k, "x");
	assert_int_equal(sh_priors_key("location:ct", &st, pkey, k), 0);
	assert_string_equal(k, ""); /* no date, no id: no priors */
	strcpy(st.study_date, "20261101");
	assert_int_equal(sh_priors_key("location:ct", &st, pkey, k), 0);
	strcpy(st.study_date, "");
	strcpy(st.patient_id, "P123");
	assert_int_equal(sh_priors_key("location:ct", &st, pkey, k), 0);
	strcpy(st.study_date, "20261101");
	n = sh_priors_key("location:ct", &st, pkey, k);
	assert_int_equal(n, strlen(k));
	assert_int_equal(n, sizeof pre - 1 + SH_PHASH_LEN);
	assert_memory_equal(k, pre, sizeof pre - 1);
	assert_null(strstr(k, "P123")); /* no patient id in clear */
	/* The hash is HMAC-SHA256 under the patient key, cut to 128 bits;
	 * not a hash anyone could recompute without the key. */
	crypto_auth_hmacsha256(mac, (const unsigned char *)"P123", 4, pkey);
	sodium_bin2hex(hex, sizeof hex, mac, SH_PHASH_LEN / 2);
	assert_string_equal(k + sizeof pre - 1, hex);
	crypto_generichash(h, sizeof h, (const unsigned char *)"P123", 4, NULL,
	                   0);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	assert_string_not_equal(k + sizeof pre - 1, hex);
	/* Another key, another set for the same patient. */
	sh_priors_key("location:ct", &st, pkey2, k2);
	assert_string_not_equal(k, k2);
	/* Same patient, same set, whatever the study; another patient or
	 * another worklist, another set. */
	strcpy(st.uid, "1.2.4");
	strcpy(st.study_date, "20250101");
	sh_priors_key("location:ct", &st, pkey, k2);
	assert_string_equal(k, k2);
	sh_priors_key("location:mri", &st, pkey, k2);
	assert_memory_equal(k2, "share:{wl:location:mri}:pri:", 28);
	assert_string_equal(k2 + 28, k + sizeof pre - 1); /* same hash */
	strcpy(st.patient_id, "P124");
	sh_priors_key("location:ct", &st, pkey, k2);
	assert_string_not_equal(k, k2);
	/* The longest worklist still fits. */
	memcpy(long_wl, "organisation:", 13);
	memset(long_wl + 13, 'x', SH_ID_MAX);
	long_wl[13 + SH_ID_MAX] = '\0';
	assert_true(sh_valid_worklist(long_wl, strlen(long_wl)));
	n = sh_priors_key(long_wl, &st, pkey, k2);
	assert_int_equal(n, strlen(k2));
	assert_int_equal(n, sizeof "share:{wl:}:pri:" - 1 + 13 + SH_ID_MAX +
	                        SH_PHASH_LEN);
}

/* A prior found by patient id is kept unless both birth dates are known
 * and differ. */
static void
test_prior_fits(void **state)
{
	sh_study a = {0}, b = {0};

	(void)state;
	assert_true(sh_study_prior_fits(&a, &b));
	strcpy(a.birth_date, "19800131");
	assert_true(sh_study_prior_fits(&a, &b));
	assert_true(sh_study_prior_fits(&b, &a));
	strcpy(b.birth_date, "19800131");
	assert_true(sh_study_prior_fits(&a, &b));
	strcpy(b.birth_date, "19550505");
	assert_false(sh_study_prior_fits(&a, &b));
	assert_false(sh_study_prior_fits(&b, &a));
}

static void
test_keys(void **state)
{
	char k[SH_KEY_MAX], k2[SH_KEY_MAX], long_wl[200];

	(void)state;
	assert_int_equal(sh_key_wl(k, "location:ct", "index"), 0);
	assert_string_equal(k, "share:{wl:location:ct}:index");
	assert_int_equal(sh_key_study(k, "1.2.3", NULL), 0);
	assert_string_equal(k, "share:{study:1.2.3}");
	assert_int_equal(sh_key_study(k, "1.2.3", "shares"), 0);
	assert_string_equal(k, "share:{study:1.2.3}:shares");
	assert_int_equal(sh_key_token(k, "ab12"), 0);
	assert_string_equal(k, "share:{tok:ab12}");
	/* Addresses: case-insensitive, never in clear in a key, and keyed:
	 * another key gives another name, and the name is no plain hash of
	 * the address anyone could compute. */
	{
		unsigned char pk[SH_PKEY_LEN], pk2[SH_PKEY_LEN];
		unsigned char plain[SH_PHASH_LEN / 2];
		char hex[SH_PHASH_LEN + 1];
		const char *a = "gp@outside.example";

		memset(pk, 1, sizeof pk);
		memset(pk2, 2, sizeof pk2);
		assert_int_equal(
		    sh_key_mail(k, pk, "GP@Outside.example", "inv"), 0);
		assert_int_equal(sh_key_mail(k2, pk, a, "inv"), 0);
		assert_string_equal(k, k2);
		assert_null(strstr(k, "outside"));
		assert_int_equal(strncmp(k, "share:{mail:", 12), 0);
		crypto_generichash(plain, sizeof plain,
		                   (const unsigned char *)a, strlen(a), NULL,
		                   0);
		sodium_bin2hex(hex, sizeof hex, plain, sizeof plain);
		assert_null(strstr(k, hex));
		assert_int_equal(sh_key_mail(k2, pk2, a, "inv"), 0);
		assert_string_not_equal(k, k2);
		assert_int_equal(sh_key_mail(k2, pk, a, "pending"), 0);
		/* Same hash tag, so one script may touch both. */
		assert_memory_equal(k, k2, 12 + SH_PHASH_LEN + 1);
		assert_int_not_equal(
		    sh_key_mail(k, pk, "not-an-address", "inv"), 0);
		/* The longest address authz takes (254) has a key of the
		 * usual length: only its hash is in it. */
		char mail[SH_EMAIL_KEY_MAX + 1];

		memset(mail, 'a', sizeof mail - 1);
		memcpy(mail + 64, "@", 1);
		for (size_t i = 128; i < SH_EMAIL_KEY_MAX; i += 63)
			mail[i] = '.';
		mail[SH_EMAIL_KEY_MAX] = '\0';
		assert_int_equal(sh_key_mail(k2, pk, mail, "inv"), 0);
		assert_int_equal(strlen(k2), strlen(k));
	}
	memset(long_wl, 'x', sizeof long_wl - 1);
	long_wl[sizeof long_wl - 1] = '\0';
	assert_int_equal(sh_key_wl(k, long_wl, "index"), SS_EINTERNAL);
}

static void
test_time_format(void **state)
{
	char t[SH_TIME_LEN + 1];

	(void)state;
	sh_time_fmt(0, t);
	assert_string_equal(t, "1970-01-01T00:00:00Z");
	sh_time_fmt(1795000000999, t);
	assert_string_equal(t, "2026-11-18T11:06:40Z");
	assert_true(sh_now_ms() > 1700000000000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uids),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_worklists_and_text),
	    cmocka_unit_test(test_parse_full_event),
	    cmocka_unit_test(test_parse_patient_map),
	    cmocka_unit_test(test_refusals_name_the_field),
	    cmocka_unit_test(test_dates_answer_with_the_rule),
	    cmocka_unit_test(test_stored_form_round_trips),
	    cmocka_unit_test(test_sealed_form),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_members),
	    cmocka_unit_test(test_priors_keys),
	    cmocka_unit_test(test_prior_fits),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_time_format),
	};

	if (ss_seal_key_init(&key, SECRET, strlen(SECRET)) != 0 ||
	    ss_seal_key_init(&other, OTHER, strlen(OTHER)) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
