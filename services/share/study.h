/*
 * services/share/study.h - a study, its validation, its stored form, and
 * the names of share's Redis keys.
 *
 * Pure functions (no I/O), so every rule here is unit-tested directly.
 *
 * A study.arrived body (API.md "Studies") is validated field by field:
 *   study_uid    required; DICOM UID syntax: 1..64 characters, dot-separated
 *                components of digits, no empty component, no leading zero
 *                in a component of more than one digit
 *   worklist     required; "<kind>:<id>" (organisation, location, group,
 *                user; id 1..64 of A-Z a-z 0-9 . _ -)
 *   patient      optional map of optional id (1..64), name (1..256),
 *                birth_date (a valid YYYYMMDD date)
 *   study_date   optional valid YYYYMMDD date
 *   accession    optional 1..64;  modality 1..64;  description 1..256
 * Text fields must be UTF-8 without control characters.  A refusal names
 * the field ("field 'patient.birth_date': expected a YYYYMMDD date").
 *
 * The plain form of a study is one msgpack map with every field present,
 * nil when unknown, in a fixed order:
 *   {"study_uid", "patient": {"id", "name", "birth_date"}, "study_date",
 *    "modality", "description", "accession"}
 * Redis holds it only sealed (runtime/seal.h) under share's --seal-key with
 * the context "study:<uid>": that is the stored form (the "blob").  A blob
 * copied to another study's place does not open there.
 *
 * The priors of a patient are kept per worklist under a keyed hash of the
 * patient id (HMAC-SHA256 under a key derived from --seal-key, cut to 128
 * bits), so neither the id nor a hash anyone could recompute over the
 * small space of patient ids is in Redis.
 */
#ifndef SS_SHARE_STUDY_H
#define SS_SHARE_STUDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "proto/envelope.h"
#include "runtime/seal.h"

#define SH_UID_MAX   64
#define SH_WL_MAX    80 /* "organisation:" + 64 */
#define SH_ID_MAX    64
#define SH_PID_MAX   64
#define SH_PNAME_MAX 256
#define SH_DATE_LEN  8
#define SH_ACC_MAX   64
#define SH_MOD_MAX   64
#define SH_DESC_MAX  256

/* Members of a worklist's listing index (all scores 0, ordered by
 * bytes): "<study_date|00000000>:<added, 13-digit ms>:<uid>".  A priors
 * set's members are bare uids, scored by their study date (YYYYMMDD as a
 * number, exact in a double). */
#define SH_MS_DIGITS     13
#define SH_INDEX_UID_AT  (SH_DATE_LEN + 1 + SH_MS_DIGITS + 1)
#define SH_INDEX_MAX     (SH_INDEX_UID_AT + SH_UID_MAX)
#define SH_PHASH_LEN     32 /* hex digits of the keyed patient-id hash */
#define SH_KEY_MAX       160
#define SH_EMAIL_KEY_MAX 254 /* an address, lower-cased (RFC 5321's bound) */
#define SH_TIME_LEN      20  /* "2026-11-29T09:15:00Z" */
/* The largest plain form (every field at its bound, with room to spare)
 * and the largest blob. */
#define SH_PLAIN_MAX 2048
#define SH_BLOB_MAX  (SH_PLAIN_MAX + SS_SEAL_OVERHEAD)
#define SH_PKEY_LEN  32 /* the patient-id hash key */

typedef struct sh_study {
	char uid[SH_UID_MAX + 1];
	char patient_id[SH_PID_MAX + 1]; /* "" when unknown, as below */
	char patient_name[SH_PNAME_MAX + 1];
	char birth_date[SH_DATE_LEN + 1];
	char study_date[SH_DATE_LEN + 1];
	char accession[SH_ACC_MAX + 1];
	char modality[SH_MOD_MAX + 1];
	char description[SH_DESC_MAX + 1];
} sh_study;

bool sh_valid_uid(const char *s, size_t n);
bool sh_valid_date(const char *s, size_t n);
bool sh_valid_worklist(const char *s, size_t n);
/* UTF-8 without C0 controls or DEL. */
bool sh_valid_text(const char *s, size_t n);
/* Like sh_valid_text, but tabs and line breaks are allowed (messages). */
bool sh_valid_message(const char *s, size_t n);
/* A listing cursor: an index member as sh_index_member() makes them. */
bool sh_valid_cursor(const char *s, size_t n);

/*
 * Parses a study.arrived body into st and wl (size SH_WL_MAX + 1), and
 * its match_patient and check_only flags (false when absent) into *match
 * and *check when those are not NULL.  check_only is only taken with
 * match_patient.  Returns 0, or SS_EBADREQ with a message naming the
 * field in why.
 */
int sh_study_parse(const msgpack_object *body, sh_study *st, char *wl,
                   bool *match, bool *check, char *why, size_t whylen);

/* Whether a and b name the same patient (id, name and birth date). */
bool sh_study_same_patient(const sh_study *a, const sh_study *b);

/* Whether p, found under st's patient id, may be st's patient's: not when
 * both have a birth date and the dates differ (an id can be two people's:
 * an outside CD's "0" or "ANON", another organisation's numbering). */
bool sh_study_prior_fits(const sh_study *st, const sh_study *p);

/* Packs the plain form of st (one map) into p. */
void sh_study_pack(const sh_study *st, ss_pack *p);

/* Reads a plain form back; SS_EINTERNAL when the bytes are not one. */
int sh_study_unpack(const char *plain, size_t len, sh_study *st);

/* Seals the plain form of st into out (room for SH_BLOB_MAX bytes). */
int sh_study_seal(const ss_seal_key *key, const sh_study *st,
                  unsigned char out[SH_BLOB_MAX], size_t *outlen);
/*
 * Opens the blob of the study uid (uidlen bytes) into plain (room for
 * SH_PLAIN_MAX bytes); SS_EINTERNAL when it does not open (another key,
 * another study's blob, altered) or is too large.
 */
int sh_blob_open(const ss_seal_key *key, const char *uid, size_t uidlen,
                 const char *blob, size_t len, char plain[SH_PLAIN_MAX],
                 size_t *plainlen);
/* sh_blob_open, then sh_study_unpack; also SS_EINTERNAL when the study
 * inside is not uid. */
int sh_study_open(const ss_seal_key *key, const char *uid, const char *blob,
                  size_t len, sh_study *st);

/* Fields in which two studies differ, comma-separated names into out
 * (room for 160 bytes); returns how many. */
int sh_study_diff(const sh_study *a, const sh_study *b, char out[160]);

/* The patient-id hash key, derived from the seal key. */
void sh_patient_key(const ss_seal_key *key, unsigned char out[SH_PKEY_LEN]);

/* The listing member of st added at added_ms; returns its length. */
size_t sh_index_member(const sh_study *st, int64_t added_ms,
                       char out[SH_INDEX_MAX + 1]);
/*
 * The priors set of st's patient in the worklist wl under the patient-id
 * hash key, "share:{wl:<wl>}:pri:<32 hex>"; returns its length, or 0
 * (out "") when st has no patient id or no date: such a study has no
 * priors and is no one's prior.
 */
size_t sh_priors_key(const char *wl, const sh_study *st,
                     const unsigned char pkey[SH_PKEY_LEN],
                     char out[SH_KEY_MAX]);
/* The added time of a listing member, in ms; -1 if it is not one. */
int64_t sh_index_added(const char *m, size_t n);

/* Key names (see share.h).  Each returns 0, or SS_EINTERNAL when the
 * name would not fit (callers pass validated ids, so never). */
int sh_key_wl(char out[SH_KEY_MAX], const char *wl, const char *suffix);
int sh_key_study(char out[SH_KEY_MAX], const char *uid, const char *suffix);
/* Invitations are keyed by a keyed hash (pkey, as the priors sets) of the
 * lower-cased address: no address appears in a key name, and nobody with
 * a copy of Redis but not the key can test whether one was invited. */
int sh_key_mail(char out[SH_KEY_MAX], const unsigned char pkey[SH_PKEY_LEN],
                const char *email, const char *suffix);
int sh_key_token(char out[SH_KEY_MAX], const char *token_hash);

/* Wall clock in ms; RFC 3339 UTC with seconds ("...T09:15:00Z"). */
int64_t sh_now_ms(void);
void sh_time_fmt(int64_t ms, char out[SH_TIME_LEN + 1]);

/* Lower-cases an address into out (size SH_KEY_MAX); SS_EBADREQ when it
 * is empty, too long, or has no '@'. */
int sh_email_key(const char *email, size_t n, char *out, size_t outlen);

#endif
