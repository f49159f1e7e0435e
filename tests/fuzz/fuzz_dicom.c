/*
 * tests/fuzz/fuzz_dicom.c - runtime/dicom.c's header reader on arbitrary
 * bytes (seeds: tests/fuzz/corpus_dicom/, made by dcmtk).
 *
 * The reader must never read outside the input (ASan), must answer 0,
 * SS_EUNSUPPORTED or SS_EUNPROC with a reason, and what it accepts must
 * obey its contract: a valid Study Instance UID, every string terminated
 * within its field, dates of 8 digits or empty, no control characters,
 * and as a study.arrived body (as the upload path sends it) share must
 * accept it: a header the reader takes never makes share refuse a study.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/errors.h"
#include "runtime/dicom.h"
#include "services/share/study.h"

static void
check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap + 1);
	if (n > cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
			abort();
}

static void
check_date(const char *s)
{
	size_t n = strnlen(s, 9);
	if (n != 0 && n != 8)
		abort();
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			abort();
}

static void
kv(msgpack_packer *pk, const char *k, const char *v)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
	msgpack_pack_str_with_body(pk, v, strlen(v));
}

/* The body ss_ingest_publish() sends for this header: share must take
 * it. */
static void
check_share(const ss_dicom_info *d)
{
	const char *top[][2] = {{"study_date", d->study_date},
	                        {"accession", d->accession},
	                        {"modality", d->modality},
	                        {"description", d->description}};
	const char *pat[][2] = {{"id", d->patient_id},
	                        {"name", d->patient_name},
	                        {"birth_date", d->birth_date}};
	size_t nt = 3, np = 0;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
	char wl[SH_WL_MAX + 1], why[256];
	sh_study st;

	for (size_t i = 0; i < 4; i++)
		nt += top[i][1][0] != '\0';
	for (size_t i = 0; i < 3; i++)
		np += pat[i][1][0] != '\0';
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, nt);
	kv(&pk, "study_uid", d->study_uid);
	kv(&pk, "worklist", "location:ct");
	msgpack_pack_str_with_body(&pk, "patient", 7);
	msgpack_pack_map(&pk, np);
	for (size_t i = 0; i < 3; i++)
		if (pat[i][1][0] != '\0')
			kv(&pk, pat[i][0], pat[i][1]);
	for (size_t i = 0; i < 4; i++)
		if (top[i][1][0] != '\0')
			kv(&pk, top[i][0], top[i][1]);
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, sb.data, sb.size, NULL) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    sh_study_parse(&up.data, &st, wl, NULL, NULL, why, sizeof why) !=
	        0 ||
	    strcmp(st.uid, d->study_uid) != 0)
		abort();
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ss_dicom_info d;
	char why[128];
	int rv = ss_dicom_read(data, size, &d, why, sizeof why);

	if (rv != 0) {
		if ((rv != SS_EUNSUPPORTED && rv != SS_EUNPROC) ||
		    why[0] == '\0' || d.study_uid[0] != '\0')
			abort();
		return 0;
	}
	if (!ss_dicom_uid_ok(d.study_uid))
		abort();
	if (d.sop_instance_uid[0] != '\0' &&
	    !ss_dicom_uid_ok(d.sop_instance_uid))
		abort();
	check_text(d.transfer_syntax, SS_DICOM_UID_MAX);
	check_text(d.patient_id, SS_DICOM_UID_MAX);
	check_text(d.patient_name, SS_DICOM_TEXT_MAX);
	check_text(d.modality, sizeof d.modality - 1);
	check_text(d.accession, SS_DICOM_UID_MAX);
	check_text(d.description, SS_DICOM_TEXT_MAX);
	check_date(d.birth_date);
	check_date(d.study_date);
	check_share(&d);
	return 0;
}
