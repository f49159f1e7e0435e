/*
 * tests/unit/test_dicom.c - runtime/dicom.c: the header reader on files
 * made by dcmtk (tests/fuzz/corpus_dicom/, both little endian syntaxes,
 * sequences of defined and undefined length) and on hand-built bad input:
 * not DICOM, cut anywhere, lengths past the end, nesting too deep,
 * unsupported syntaxes, no or an invalid Study Instance UID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/dicom.h"

#define CT_UID "1.2.826.0.1.3680043.10.1.1"
#define SC_UID "1.2.826.0.1.3680043.10.2.1"
#define EXPL   "1.2.840.10008.1.2.1"
#define IMPL   "1.2.840.10008.1.2"

/* --- files made by dcmtk -------------------------------------------- */

static uint8_t *
seed(const char *name, size_t *len)
{
	const char *f = __FILE__;
	const char *slash = strrchr(f, '/');
	char path[1024];
	static uint8_t buf[65536];

	snprintf(path, sizeof path, "%.*s/../fuzz/corpus_dicom/%s",
	         slash ? (int)(slash - f) : 1, slash ? f : ".", name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	*len = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	assert_true(*len > 132 && *len < sizeof buf);
	return buf;
}

static void
check_ct(const char *name, const char *ts)
{
	size_t len;
	uint8_t *b = seed(name, &len);
	ss_dicom_info d;
	char why[128];

	assert_int_equal(ss_dicom_read(b, len, &d, why, sizeof why), 0);
	assert_string_equal(d.transfer_syntax, ts);
	assert_string_equal(d.study_uid, CT_UID); /* not 1.2.3.99 nested */
	assert_string_equal(d.sop_instance_uid, CT_UID ".1");
	assert_string_equal(d.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
	assert_string_equal(d.patient_id, "P123");
	assert_string_equal(d.patient_name, "DOE^JANE");
	assert_string_equal(d.birth_date, "19800131");
	assert_string_equal(d.study_date, "20261101");
	assert_string_equal(d.modality, "CT");
	assert_string_equal(d.accession, "ACC001");
	assert_string_equal(d.description, "CT HEAD");
}

static void
test_dcmtk_ct(void **state)
{
	(void)state;
	check_ct("ct_explicit.dcm", EXPL);
	check_ct("ct_implicit.dcm", IMPL);
	check_ct("ct_explicit_undef.dcm", EXPL);
	check_ct("ct_implicit_undef.dcm", IMPL);
}

static void
check_sc(const char *name, const char *ts)
{
	size_t len;
	uint8_t *b = seed(name, &len);
	ss_dicom_info d;

	assert_int_equal(ss_dicom_read(b, len, &d, NULL, 0), 0);
	assert_string_equal(d.transfer_syntax, ts);
	assert_string_equal(d.study_uid, SC_UID);
	assert_string_equal(d.patient_name, "ROE^RICHARD");
	assert_string_equal(d.patient_id, "P456");
	assert_string_equal(d.birth_date, "19700215");
	assert_string_equal(d.study_date, "20261102");
	assert_string_equal(d.modality, "OT");
	assert_string_equal(d.accession, "ACC002");
	assert_string_equal(d.description, "PHOTO");
}

static void
test_dcmtk_img2dcm(void **state)
{
	(void)state;
	check_sc("sc_bmp.dcm", EXPL);
	check_sc("sc_bmp_implicit.dcm", IMPL);
}

static void
test_dcmtk_no_uid(void **state)
{
	size_t len;
	uint8_t *b = seed("no_study_uid.dcm", &len);
	ss_dicom_info d;
	char why[128];

	(void)state;
	assert_int_equal(ss_dicom_read(b, len, &d, why, sizeof why),
	                 SS_EUNPROC);
	assert_string_equal(why, "no Study Instance UID");
	assert_string_equal(d.patient_id, ""); /* nothing half-filled */
}

/*
 * Every cut of every file: under 132 bytes it is not DICOM; otherwise it
 * is refused as unprocessable, unless the cut falls exactly between two
 * top-level elements after the Study Instance UID (a shorter valid file:
 * Part 10 has no overall length), and then it reads the same study.
 */
static void
cut_everywhere(const char *name)
{
	size_t len;
	uint8_t *b = seed(name, &len);
	uint8_t *copy = malloc(len);
	ss_dicom_info full, d;

	assert_non_null(copy);
	assert_int_equal(ss_dicom_read(b, len, &full, NULL, 0), 0);
	for (size_t n = 0; n < len; n++) {
		/* A copy of exactly n bytes, so ASan sees any overread. */
		uint8_t *c = malloc(n ? n : 1);
		assert_non_null(c);
		memcpy(c, b, n);
		int rv = ss_dicom_read(c, n, &d, NULL, 0);
		free(c);
		if (n < 132)
			assert_int_equal(rv, SS_EUNSUPPORTED);
		else if (rv != 0)
			assert_int_equal(rv, SS_EUNPROC);
		else
			assert_string_equal(d.study_uid, full.study_uid);
	}
	/* The last element (pixel data) cut by one byte. */
	assert_int_equal(ss_dicom_read(b, len - 1, &d, NULL, 0), SS_EUNPROC);
	free(copy);
}

static void
test_truncated(void **state)
{
	(void)state;
	cut_everywhere("ct_explicit.dcm");
	cut_everywhere("ct_implicit.dcm");
	cut_everywhere("ct_explicit_undef.dcm");
	cut_everywhere("ct_implicit_undef.dcm");
	cut_everywhere("sc_bmp.dcm");
}

/* --- hand-built files ----------------------------------------------- */

typedef struct bld {
	uint8_t b[8192];
	size_t n;
} bld;

static void
raw(bld *f, const void *p, size_t n)
{
	assert_true(f->n + n <= sizeof f->b);
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void
le16(bld *f, unsigned v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	raw(f, x, 2);
}

static void
le32(bld *f, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
	                (uint8_t)(v >> 24)};
	raw(f, x, 4);
}

/* Explicit VR element; long VRs get the reserved bytes and 32-bit len. */
static void
ex(bld *f, unsigned g, unsigned e, const char *vr, const void *v, uint32_t n)
{
	le16(f, g);
	le16(f, e);
	raw(f, vr, 2);
	if (strstr("OBODOFOLOVOWSQSVUCUNURUTUV", vr) != NULL &&
	    (strstr("OBODOFOLOVOWSQSVUCUNURUTUV", vr) -
	     "OBODOFOLOVOWSQSVUCUNURUTUV") %
	            2 ==
	        0) {
		le16(f, 0);
		le32(f, n);
	} else {
		le16(f, n);
	}
	if (v != NULL)
		raw(f, v, n);
}

static void
im(bld *f, unsigned g, unsigned e, const void *v, uint32_t n)
{
	le16(f, g);
	le16(f, e);
	le32(f, n);
	if (v != NULL)
		raw(f, v, n);
}

static void
head(bld *f, const char *ts)
{
	size_t n = strlen(ts);
	memset(f, 0, sizeof *f);
	f->n = 128;
	raw(f, "DICM", 4);
	ex(f, 0x0002, 0x0010, "UI", ts, (uint32_t)(n + (n & 1)));
	if (n & 1)
		f->b[f->n - 1] = '\0';
}

static void
ex_str(bld *f, unsigned g, unsigned e, const char *vr, const char *s)
{
	char v[1024];
	size_t n = strlen(s);

	assert_true(n + 1 < sizeof v);
	memcpy(v, s, n);
	if (n & 1)
		v[n++] = strcmp(vr, "UI") == 0 ? '\0' : ' ';
	ex(f, g, e, vr, v, (uint32_t)n);
}

static int
rd(bld *f, ss_dicom_info *d, char *why)
{
	/* Read from an exact-size heap copy so ASan catches overreads. */
	uint8_t *c = malloc(f->n);
	assert_non_null(c);
	memcpy(c, f->b, f->n);
	int rv = ss_dicom_read(c, f->n, d, why, 128);
	free(c);
	return rv;
}

static void
test_not_dicom(void **state)
{
	ss_dicom_info d;
	char why[128];
	const char *text = "hello, this is a text file, not DICOM\n";
	bld f;

	(void)state;
	assert_int_equal(ss_dicom_read((const uint8_t *)text, strlen(text), &d,
	                               why, sizeof why),
	                 SS_EUNSUPPORTED);
	assert_string_equal(why, "not a DICOM Part 10 file");
	assert_int_equal(ss_dicom_read(NULL, 0, &d, why, sizeof why),
	                 SS_EUNSUPPORTED);
	/* 132 bytes of text, "DICM" missing. */
	memset(&f, 'x', sizeof f);
	f.n = 300;
	assert_int_equal(rd(&f, &d, why), SS_EUNSUPPORTED);
}

static void
test_syntaxes(void **state)
{
	ss_dicom_info d;
	char why[128];
	bld f;

	(void)state;
	head(&f, "1.2.840.10008.1.2.2"); /* explicit big endian */
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), SS_EUNSUPPORTED);
	head(&f, "1.2.840.10008.1.2.1.99"); /* deflated */
	assert_int_equal(rd(&f, &d, why), SS_EUNSUPPORTED);
	head(&f, "1.3.6.1.4.1.5962.300.1"); /* not a DICOM syntax */
	assert_int_equal(rd(&f, &d, why), SS_EUNSUPPORTED);
	/* No transfer syntax at all. */
	memset(&f, 0, sizeof f);
	f.n = 128;
	raw(&f, "DICM", 4);
	ex_str(&f, 0x0008, 0x0060, "CS", "CT");
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	assert_string_equal(why, "malformed: no transfer syntax");
	/* JPEG baseline: explicit VR LE with encapsulated pixel data. */
	head(&f, "1.2.840.10008.1.2.4.50");
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	ex(&f, 0x7FE0, 0x0010, "OB", NULL, 0xFFFFFFFF);
	im(&f, 0xFFFE, 0xE000, NULL, 0); /* empty offset table */
	im(&f, 0xFFFE, 0xE000, "\xFF\xD8\xFF\xD9", 4);
	im(&f, 0xFFFE, 0xE0DD, NULL, 0);
	assert_int_equal(rd(&f, &d, why), 0);
	assert_string_equal(d.study_uid, "1.2.3");
	/* The same without its sequence delimiter: truncated. */
	f.n -= 8;
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	assert_string_equal(why, "truncated");
	/* A fragment of undefined length is malformed. */
	f.n -= 12;
	im(&f, 0xFFFE, 0xE000, NULL, 0xFFFFFFFF);
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
}

static void
test_lengths(void **state)
{
	ss_dicom_info d;
	char why[128];
	bld f;

	(void)state;
	/* A 32-bit length near 4 GiB must not wrap the position. */
	head(&f, EXPL);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	ex(&f, 0x0029, 0x0010, "UN", "abcd", 4);
	memcpy(f.b + f.n - 8, "\xF0\xFF\xFF\xFF", 4);
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	assert_string_equal(why, "truncated");
	/* The same in implicit VR, and in a defined-length item. */
	head(&f, IMPL);
	im(&f, 0x0020, 0x000D, "1.2.3\0", 6);
	im(&f, 0x0008, 0x1110, NULL, 0xFFFFFFFF);
	im(&f, 0xFFFE, 0xE000, NULL, 0xFFFFFFF8);
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	/* Undefined length on a value that cannot have one. */
	head(&f, EXPL);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	ex(&f, 0x0008, 0x0119, "UT", NULL, 0xFFFFFFFF);
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	/* An unknown VR. */
	head(&f, EXPL);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	ex(&f, 0x0008, 0x0060, "ZZ", "CT", 2);
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	/* A delimiter where an element belongs. */
	head(&f, EXPL);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	im(&f, 0xFFFE, 0xE0DD, NULL, 0);
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	/* Meta group cut in its last element. */
	head(&f, EXPL);
	f.n -= 3;
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
}

static void
test_nesting(void **state)
{
	ss_dicom_info d;
	char why[128];
	bld f;

	(void)state;
	/* Nested within the limit: fine; one deeper: refused. */
	for (int depth = 1; depth <= 12; depth++) {
		head(&f, EXPL);
		for (int i = 0; i < depth; i++) {
			ex(&f, 0x0040, 0xA730, "SQ", NULL, 0xFFFFFFFF);
			im(&f, 0xFFFE, 0xE000, NULL, 0xFFFFFFFF);
		}
		for (int i = 0; i < depth; i++) {
			im(&f, 0xFFFE, 0xE00D, NULL, 0);
			im(&f, 0xFFFE, 0xE0DD, NULL, 0);
		}
		ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
		int rv = rd(&f, &d, why);
		if (2 * depth <= SS_DICOM_DEPTH_MAX)
			assert_int_equal(rv, 0);
		else
			assert_int_equal(rv, SS_EUNPROC);
	}
	/* Thousands of levels never reach the stack's end. */
	head(&f, IMPL);
	while (f.n + 16 < sizeof f.b) {
		im(&f, 0x0040, 0xA730, NULL, 0xFFFFFFFF);
		im(&f, 0xFFFE, 0xE000, NULL, 0xFFFFFFFF);
	}
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	assert_string_equal(why, "malformed: sequences nested too deep");
}

static void
test_nested_uid_is_not_the_study(void **state)
{
	ss_dicom_info d;
	char why[128];
	bld f;

	(void)state;
	head(&f, IMPL);
	im(&f, 0x0008, 0x1110, NULL, 0xFFFFFFFF);
	im(&f, 0xFFFE, 0xE000, NULL, 0xFFFFFFFF);
	im(&f, 0x0020, 0x000D, "1.2.3\0", 6);
	im(&f, 0xFFFE, 0xE00D, NULL, 0);
	im(&f, 0xFFFE, 0xE0DD, NULL, 0);
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	assert_string_equal(why, "no Study Instance UID");
	/* UN of undefined length: its items are implicit VR. */
	head(&f, EXPL);
	ex(&f, 0x0009, 0x1010, "UN", NULL, 0xFFFFFFFF);
	im(&f, 0xFFFE, 0xE000, NULL, 0xFFFFFFFF);
	im(&f, 0x0009, 0x0010, "ACME", 4);
	im(&f, 0xFFFE, 0xE00D, NULL, 0);
	im(&f, 0xFFFE, 0xE0DD, NULL, 0);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), 0);
	assert_string_equal(d.study_uid, "1.2.3");
}

static void
test_values(void **state)
{
	ss_dicom_info d;
	char why[128];
	bld f;

	(void)state;
	/* Latin-1 names become UTF-8; bad dates are left out. */
	head(&f, EXPL);
	ex_str(&f, 0x0008, 0x0005, "CS", "ISO_IR 100");
	ex_str(&f, 0x0008, 0x0020, "DA", "20260230");
	ex_str(&f, 0x0010, 0x0010, "PN", "M\xFCLLER^J\xD6RG ");
	ex_str(&f, 0x0010, 0x0030, "DA", "20000229");
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), 0);
	assert_string_equal(d.patient_name, "M\xC3\xBCLLER^J\xC3\x96RG");
	assert_string_equal(d.study_date, "");
	assert_string_equal(d.birth_date, "20000229");
	/* UTF-8 kept when valid; control bytes and broken UTF-8 become '?'. */
	head(&f, EXPL);
	ex_str(&f, 0x0008, 0x0005, "CS", "ISO_IR 192");
	ex_str(&f, 0x0008, 0x1030, "LO", "CT \xE2\x80\x94 HEAD\x1B\xC3");
	ex_str(&f, 0x0008, 0x0020, "DA", "09991231");
	ex_str(&f, 0x0010, 0x0030, "DA", "19001301");
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), 0);
	assert_string_equal(d.description, "CT \xE2\x80\x94 HEAD??");
	assert_string_equal(d.birth_date, "");
	assert_string_equal(d.study_date, "");
	/* A C1 control and a direction override (valid UTF-8, no text
	 * people read: proto/utf8.h) become one '?' each; a mark stays. */
	head(&f, EXPL);
	ex_str(&f, 0x0008, 0x0005, "CS", "ISO_IR 192");
	ex_str(&f, 0x0008, 0x1030, "LO",
	       "A\xC2\x85"
	       "B\xE2\x80\xAE"
	       "C\xE2\x80\x8F"
	       "D");
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), 0);
	assert_string_equal(d.description, "A?B?C\xE2\x80\x8F"
	                                   "D");
	/* No character set: bytes over 0x7F become '?'. */
	head(&f, EXPL);
	ex_str(&f, 0x0010, 0x0010, "PN", "M\xFCLLER");
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), 0);
	assert_string_equal(d.patient_name, "M?LLER");
	/* A patient id over 64 characters is left out, a long description
	 * is cut to 256 bytes. */
	char big[400];
	memset(big, 'A', sizeof big);
	big[sizeof big - 1] = '\0';
	head(&f, EXPL);
	ex_str(&f, 0x0008, 0x1030, "LO", big);
	ex_str(&f, 0x0010, 0x0020, "LO", big + 300);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), 0);
	assert_int_equal(strlen(d.description), SS_DICOM_TEXT_MAX);
	assert_string_equal(d.patient_id, "");
	/* In UTF-8, the cut falls between characters: 100 euro signs (300
	 * bytes) keep 85 of them (255 bytes), no partial one as a '?'. */
	char euros[301];
	for (int i = 0; i < 100; i++)
		memcpy(euros + 3 * i, "\xE2\x82\xAC", 3);
	euros[300] = '\0';
	head(&f, EXPL);
	ex_str(&f, 0x0008, 0x0005, "CS", "ISO_IR 192");
	ex_str(&f, 0x0008, 0x1030, "LO", euros);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.2.3");
	assert_int_equal(rd(&f, &d, why), 0);
	assert_int_equal(strlen(d.description), 255);
	assert_memory_equal(d.description, euros, 255);
	/* An invalid Study Instance UID is no UID. */
	head(&f, EXPL);
	ex_str(&f, 0x0020, 0x000D, "UI", "1.02.3");
	assert_int_equal(rd(&f, &d, why), SS_EUNPROC);
	assert_string_equal(why, "no Study Instance UID");
}

static void
test_uid_syntax(void **state)
{
	(void)state;
	assert_true(ss_dicom_uid_ok("1.2.840.10008.1.2"));
	assert_true(ss_dicom_uid_ok("0"));
	assert_true(ss_dicom_uid_ok("1.0.3"));
	assert_false(ss_dicom_uid_ok(""));
	assert_false(ss_dicom_uid_ok("1..2"));
	assert_false(ss_dicom_uid_ok(".1"));
	assert_false(ss_dicom_uid_ok("1."));
	assert_false(ss_dicom_uid_ok("1.02"));
	assert_false(ss_dicom_uid_ok("1.2a"));
	assert_false(ss_dicom_uid_ok(
	    "1.2345678901234567890123456789012345678901234567890123456789012"
	    "34"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dcmtk_ct),
	    cmocka_unit_test(test_dcmtk_img2dcm),
	    cmocka_unit_test(test_dcmtk_no_uid),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_not_dicom),
	    cmocka_unit_test(test_syntaxes),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_nesting),
	    cmocka_unit_test(test_nested_uid_is_not_the_study),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_uid_syntax),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
