/*
 * runtime/dicom.h - the study a DICOM Part 10 file belongs to, read from
 * its header.
 *
 * A small, bounded reader of untrusted bytes (guest uploads, a directory
 * import): the 128-byte preamble, "DICM", the file meta group (group
 * 0x0002, always explicit VR little endian), then the data set in explicit
 * or implicit VR little endian.  It walks every element of the data set to
 * its end, skipping sequences of defined and undefined length, their items
 * and delimiters, and encapsulated pixel data, so a file cut short is
 * noticed wherever it was cut.  Only top-level elements are taken: a Study
 * Instance UID inside a sequence (a referenced study) is not the file's.
 *
 *   ss_dicom_info d;
 *   char why[128];
 *   switch (ss_dicom_read(buf, len, &d, why, sizeof why)) {
 *   case 0:               d.study_uid, d.patient_id, ... ("" when absent)
 *   case SS_EUNSUPPORTED: not DICOM Part 10, or a transfer syntax this
 *                         reader does not decode (big endian, deflated)
 *   case SS_EUNPROC:      truncated, malformed, or no Study Instance UID
 *   }
 *
 * Values are trimmed of DICOM padding; text is made UTF-8 (ISO_IR 100 is
 * converted from Latin-1, other bytes outside printable ASCII become
 * '?'); a date that is not a real YYYYMMDD date is left out rather than
 * refusing the file.  Pure: no allocation, no I/O, never reads outside
 * [buf, buf + len).
 */
#ifndef SS_RUNTIME_DICOM_H
#define SS_RUNTIME_DICOM_H

#include <stddef.h>
#include <stdint.h>

#define SS_DICOM_UID_MAX  64
#define SS_DICOM_TEXT_MAX 256

typedef struct ss_dicom_info {
	char transfer_syntax[SS_DICOM_UID_MAX + 1];  /* (0002,0010) */
	char sop_class_uid[SS_DICOM_UID_MAX + 1];    /* (0008,0016) */
	char sop_instance_uid[SS_DICOM_UID_MAX + 1]; /* (0008,0018) */
	char study_uid[SS_DICOM_UID_MAX + 1];        /* (0020,000D), required */
	char patient_id[SS_DICOM_UID_MAX + 1];       /* (0010,0020) */
	char patient_name[SS_DICOM_TEXT_MAX + 1];    /* (0010,0010) */
	char birth_date[9];                          /* (0010,0030) */
	char study_date[9];                          /* (0008,0020) */
	char modality[17];                           /* (0008,0060) */
	char accession[SS_DICOM_UID_MAX + 1];        /* (0008,0050) */
	char description[SS_DICOM_TEXT_MAX + 1];     /* (0008,1030) */
} ss_dicom_info;

/* Deepest nesting of sequences and items the reader follows. */
#define SS_DICOM_DEPTH_MAX 16

/*
 * Reads the header of the Part 10 file in buf.  0 with *out filled;
 * SS_EUNSUPPORTED (not DICOM, or an unsupported transfer syntax) or
 * SS_EUNPROC (truncated, malformed, no valid Study Instance UID), with a
 * short reason in why (which may be NULL).  The reason never holds a
 * value from the file.
 */
int ss_dicom_read(const uint8_t *buf, size_t len, ss_dicom_info *out, char *why,
                  size_t why_len);

/* 1 when s is a DICOM UID: 1..64 characters, dot-separated components of
 * digits, none empty, no leading zero in a component of several digits. */
int ss_dicom_uid_ok(const char *s);

#endif
