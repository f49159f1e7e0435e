/*
 * services/share/study.c - validation and stored form of studies; key
 * names (the priors keys with their keyed patient hash) and listing
 * members.
 *
 * Contract in study.h.  Every check here runs before anything is stored;
 * the plain form is written in one fixed order and stored only sealed.
 * Ingest tells "the same study" from "a study whose fields differ" by
 * comparing the fields of the opened stored study (sh_study_diff), since
 * two seals of the same bytes never look alike.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpcheck.h"
#include "proto/utf8.h"
#include "services/share/study.h"

bool
sh_valid_uid(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > SH_UID_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t len = i - start;
			/* No empty component, no leading zero but "0". */
			if (len == 0 || (len > 1 && s[start] == '0'))
				return false;
			start = i + 1;
		} else if (s[i] < '0' || s[i] > '9') {
			return false;
		}
	}
	return true;
}

static int
days_in(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : d[m - 1];
}

bool
sh_valid_date(const char *s, size_t n)
{
	int y, m, d;

	if (n != SH_DATE_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[4] - '0') * 10 + (s[5] - '0');
	d = (s[6] - '0') * 10 + (s[7] - '0');
	return y >= 1000 && m >= 1 && m <= 12 && d >= 1 && d <= days_in(y, m);
}

static bool
id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
sh_valid_worklist(const char *s, size_t n)
{
	static const char *const kinds[] = {
	    "organisation:", "location:", "group:", "user:"};

	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		size_t kl = strlen(kinds[k]);

		if (n <= kl || n - kl > SH_ID_MAX ||
		    memcmp(s, kinds[k], kl) != 0)
			continue;
		for (size_t i = kl; i < n; i++)
			if (!id_char(s[i]))
				return false;
		return true;
	}
	return false;
}

bool
sh_valid_text(const char *s, size_t n)
{
	return ss_text_valid(s, n, 0);
}

bool
sh_valid_message(const char *s, size_t n)
{
	return ss_text_valid(s, n, SS_TEXT_LINES);
}

bool
sh_valid_cursor(const char *s, size_t n)
{
	if (n <= SH_INDEX_UID_AT || n > SH_INDEX_MAX)
		return false;
	for (size_t i = 0; i < SH_INDEX_UID_AT; i++) {
		bool colon = i == SH_DATE_LEN || i == SH_INDEX_UID_AT - 1;
		if (colon ? s[i] != ':' : (s[i] < '0' || s[i] > '9'))
			return false;
	}
	return sh_valid_uid(s + SH_INDEX_UID_AT, n - SH_INDEX_UID_AT);
}

/* --- parsing a study.arrived body ----------------------------------- */

typedef bool (*check_fn)(const char *s, size_t n);

/* Copies an optional string field that passed ss_fields_parse, after
 * check; "" when absent. */
static int
take(const msgpack_object *o, char *dst, size_t dstlen, check_fn check,
     const char *name, const char *rule, char *why, size_t whylen)
{
	ss_str v;

	dst[0] = '\0';
	if (o == NULL)
		return 0;
	v = ss_obj_str(o);
	if (!check(v.p, v.n) || ss_obj_strcpy(o, dst, dstlen) != 0) {
		snprintf(why, whylen, "field '%s': %s", name, rule);
		dst[0] = '\0';
		return SS_EBADREQ;
	}
	return 0;
}

#define UID_RULE                                                               \
	"expected a DICOM UID (1..64 digits and dots, no empty or "            \
	"zero-led component)"
#define DATE_RULE "expected a YYYYMMDD date"
/* Dates are read longer than they may be, so that 2026-11-01 is answered
 * with the rule rather than with its length. */
#define DATE_READ_MAX 32
#define TEXT_RULE     "expected UTF-8 text without control or direction characters"
#define WL_RULE                                                                \
	"expected <organisation|location|group|user>:<id> (id: 1..64 "         \
	"characters of A-Z a-z 0-9 . _ -)"

static int
parse_patient(const msgpack_object *o, sh_study *st, char *why, size_t whylen)
{
	static const ss_field_spec spec[] = {
	    {"id", SS_F_STR, false, 1, SH_PID_MAX},
	    {"name", SS_F_STR, false, 1, SH_PNAME_MAX},
	    {"birth_date", SS_F_STR, false, 1, DATE_READ_MAX},
	};
	const msgpack_object *f[3];
	char inner[200];
	int rv;

	if (o == NULL)
		return 0;
	if (ss_fields_parse(o, spec, 3, f, inner, sizeof inner) != 0) {
		/* "field 'id': ..." -> "field 'patient.id': ..." */
		if (strncmp(inner, "field '", 7) == 0)
			snprintf(why, whylen, "field 'patient.%s", inner + 7);
		else
			snprintf(why, whylen, "field 'patient': %s", inner);
		return SS_EBADREQ;
	}
	if ((rv = take(f[0], st->patient_id, sizeof st->patient_id,
	               sh_valid_text, "patient.id", TEXT_RULE, why, whylen)) ||
	    (rv =
	         take(f[1], st->patient_name, sizeof st->patient_name,
	              sh_valid_text, "patient.name", TEXT_RULE, why, whylen)) ||
	    (rv = take(f[2], st->birth_date, sizeof st->birth_date,
	               sh_valid_date, "patient.birth_date", DATE_RULE, why,
	               whylen)))
		return rv;
	return 0;
}

int
sh_study_parse(const msgpack_object *body, sh_study *st, char *wl, bool *match,
               bool *check, char *why, size_t whylen)
{
	static const ss_field_spec spec[] = {
	    {"study_uid", SS_F_STR, true, 1, SH_UID_MAX},
	    {"worklist", SS_F_STR, true, 1, SH_WL_MAX},
	    {"patient", SS_F_MAP, false, 0, 3},
	    {"study_date", SS_F_STR, false, 1, DATE_READ_MAX},
	    {"accession", SS_F_STR, false, 1, SH_ACC_MAX},
	    {"modality", SS_F_STR, false, 1, SH_MOD_MAX},
	    {"description", SS_F_STR, false, 1, SH_DESC_MAX},
	    {"match_patient", SS_F_BOOL, false, 0, 0},
	    {"check_only", SS_F_BOOL, false, 0, 0},
	};
	const msgpack_object *f[9];
	bool m, k;
	int rv;

	memset(st, 0, sizeof *st);
	wl[0] = '\0';
	if ((rv = ss_fields_parse(body, spec, 9, f, why, whylen)) != 0)
		return rv;
	m = f[7] != NULL && ss_obj_bool(f[7]);
	k = f[8] != NULL && ss_obj_bool(f[8]);
	if (k && !m) {
		snprintf(why, whylen,
		         "field 'check_only': only with match_patient");
		return SS_EBADREQ;
	}
	if (match != NULL)
		*match = m;
	if (check != NULL)
		*check = k;
	if ((rv = take(f[0], st->uid, sizeof st->uid, sh_valid_uid, "study_uid",
	               UID_RULE, why, whylen)) ||
	    (rv = take(f[1], wl, SH_WL_MAX + 1, sh_valid_worklist, "worklist",
	               WL_RULE, why, whylen)) ||
	    (rv = parse_patient(f[2], st, why, whylen)) ||
	    (rv = take(f[3], st->study_date, sizeof st->study_date,
	               sh_valid_date, "study_date", DATE_RULE, why, whylen)) ||
	    (rv = take(f[4], st->accession, sizeof st->accession, sh_valid_text,
	               "accession", TEXT_RULE, why, whylen)) ||
	    (rv = take(f[5], st->modality, sizeof st->modality, sh_valid_text,
	               "modality", TEXT_RULE, why, whylen)) ||
	    (rv = take(f[6], st->description, sizeof st->description,
	               sh_valid_text, "description", TEXT_RULE, why, whylen))) {
		wl[0] = '\0';
		return rv;
	}
	return 0;
}

/* --- the stored form ------------------------------------------------ */

static void
kv_opt(ss_pack *p, const char *k, const char *v)
{
	ss_pack_kv_cstr(p, k, v[0] != '\0' ? v : NULL);
}

void
sh_study_pack(const sh_study *st, ss_pack *p)
{
	msgpack_pack_map(&p->pk, 6);
	ss_pack_kv_cstr(p, "study_uid", st->uid);
	ss_pack_key(p, "patient");
	msgpack_pack_map(&p->pk, 3);
	kv_opt(p, "id", st->patient_id);
	kv_opt(p, "name", st->patient_name);
	kv_opt(p, "birth_date", st->birth_date);
	kv_opt(p, "study_date", st->study_date);
	kv_opt(p, "modality", st->modality);
	kv_opt(p, "description", st->description);
	kv_opt(p, "accession", st->accession);
}

/* A stored string field or nil; anything else is corruption. */
static int
untake(const msgpack_object *o, char *dst, size_t dstlen)
{
	dst[0] = '\0';
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	return ss_obj_strcpy(o, dst, dstlen) == 0 ? 0 : SS_EINTERNAL;
}

int
sh_study_unpack(const char *plain, size_t len, sh_study *st)
{
	const msgpack_object *pat;
	msgpack_unpacked up;
	const char *why;
	int rv = SS_EINTERNAL;

	memset(st, 0, sizeof *st);
	if (plain == NULL ||
	    ss_mpcheck((const uint8_t *)plain, len, 4, 4096, &why) != 0)
		return SS_EINTERNAL;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, plain, len, NULL) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP)
		goto fail;
	pat = ss_map_get(&up.data, "patient");
	if (pat != NULL && pat->type != MSGPACK_OBJECT_MAP)
		goto fail;
	if (untake(ss_map_get(&up.data, "study_uid"), st->uid,
	           sizeof st->uid) != 0 ||
	    !sh_valid_uid(st->uid, strlen(st->uid)) ||
	    untake(ss_map_get(&up.data, "study_date"), st->study_date,
	           sizeof st->study_date) != 0 ||
	    untake(ss_map_get(&up.data, "modality"), st->modality,
	           sizeof st->modality) != 0 ||
	    untake(ss_map_get(&up.data, "description"), st->description,
	           sizeof st->description) != 0 ||
	    untake(ss_map_get(&up.data, "accession"), st->accession,
	           sizeof st->accession) != 0)
		goto fail;
	if (pat != NULL && (untake(ss_map_get(pat, "id"), st->patient_id,
	                           sizeof st->patient_id) != 0 ||
	                    untake(ss_map_get(pat, "name"), st->patient_name,
	                           sizeof st->patient_name) != 0 ||
	                    untake(ss_map_get(pat, "birth_date"),
	                           st->birth_date, sizeof st->birth_date) != 0))
		goto fail;
	rv = 0;
fail:
	msgpack_unpacked_destroy(&up);
	if (rv != 0)
		memset(st, 0, sizeof *st);
	return rv;
}

/* --- the sealed form ------------------------------------------------ */

#define CTX_MAX (sizeof "study:" + SH_UID_MAX)

static int
blob_ctx(char out[CTX_MAX], const char *uid, size_t uidlen)
{
	if (uidlen > SH_UID_MAX)
		return SS_EINTERNAL;
	snprintf(out, CTX_MAX, "study:%.*s", (int)uidlen, uid);
	return 0;
}

int
sh_study_seal(const ss_seal_key *key, const sh_study *st,
              unsigned char out[SH_BLOB_MAX], size_t *outlen)
{
	char ctx[CTX_MAX];
	ss_pack p;
	int rv = SS_EINTERNAL;

	*outlen = 0;
	ss_pack_init(&p);
	sh_study_pack(st, &p);
	if (p.sb.size <= SH_PLAIN_MAX &&
	    blob_ctx(ctx, st->uid, strlen(st->uid)) == 0)
		rv = ss_seal(key, ctx, p.sb.data, p.sb.size, out, SH_BLOB_MAX,
		             outlen) == 0
		         ? 0
		         : SS_EINTERNAL;
	/* Personal data: leave no clear copy on the heap. */
	sodium_memzero(p.sb.data, p.sb.size);
	ss_pack_free(&p);
	return rv;
}

int
sh_blob_open(const ss_seal_key *key, const char *uid, size_t uidlen,
             const char *blob, size_t len, char plain[SH_PLAIN_MAX],
             size_t *plainlen)
{
	char ctx[CTX_MAX];

	*plainlen = 0;
	if (blob == NULL || len > SH_BLOB_MAX ||
	    blob_ctx(ctx, uid, uidlen) != 0)
		return SS_EINTERNAL;
	return ss_unseal(key, ctx, (const unsigned char *)blob, len,
	                 (unsigned char *)plain, SH_PLAIN_MAX, plainlen) == 0
	           ? 0
	           : SS_EINTERNAL;
}

int
sh_study_open(const ss_seal_key *key, const char *uid, const char *blob,
              size_t len, sh_study *st)
{
	char plain[SH_PLAIN_MAX];
	size_t n;
	int rv;

	memset(st, 0, sizeof *st);
	if ((rv = sh_blob_open(key, uid, strlen(uid), blob, len, plain, &n)) ==
	        0 &&
	    (rv = sh_study_unpack(plain, n, st)) == 0 &&
	    strcmp(st->uid, uid) != 0) {
		memset(st, 0, sizeof *st);
		rv = SS_EINTERNAL;
	}
	sodium_memzero(plain, sizeof plain);
	return rv;
}

bool
sh_study_prior_fits(const sh_study *st, const sh_study *p)
{
	return st->birth_date[0] == '\0' || p->birth_date[0] == '\0' ||
	       strcmp(st->birth_date, p->birth_date) == 0;
}

bool
sh_study_same_patient(const sh_study *a, const sh_study *b)
{
	return strcmp(a->patient_id, b->patient_id) == 0 &&
	       strcmp(a->patient_name, b->patient_name) == 0 &&
	       strcmp(a->birth_date, b->birth_date) == 0;
}

int
sh_study_diff(const sh_study *a, const sh_study *b, char out[160])
{
	int n = 0;

	out[0] = '\0';
#define DIFF(f, name)                                                          \
	if (strcmp(a->f, b->f) != 0) {                                         \
		strcat(out, n++ ? "," name : name);                            \
	}
	DIFF(uid, "study_uid")
	DIFF(patient_id, "patient.id")
	DIFF(patient_name, "patient.name")
	DIFF(birth_date, "patient.birth_date")
	DIFF(study_date, "study_date")
	DIFF(accession, "accession")
	DIFF(modality, "modality")
	DIFF(description, "description")
#undef DIFF
	return n;
}

/* --- sorted-set members and keys ------------------------------------ */

size_t
sh_index_member(const sh_study *st, int64_t added_ms,
                char out[SH_INDEX_MAX + 1])
{
	int n;

	if (added_ms < 0)
		added_ms = 0;
	if (added_ms > INT64_C(9999999999999))
		added_ms = INT64_C(9999999999999);
	n = snprintf(out, SH_INDEX_MAX + 1, "%s:%013" PRId64 ":%s",
	             st->study_date[0] ? st->study_date : "00000000", added_ms,
	             st->uid);
	return n > 0 ? (size_t)n : 0;
}

#define PKEY_DOMAIN "studyshare.share.patient-id"

void
sh_patient_key(const ss_seal_key *key, unsigned char out[SH_PKEY_LEN])
{
	/* BLAKE2b keyed by the master key over a name of its own: not any
	 * seal subkey (those hash "studyshare.seal" 0x00 ctx). */
	crypto_generichash(out, SH_PKEY_LEN, (const unsigned char *)PKEY_DOMAIN,
	                   sizeof PKEY_DOMAIN - 1, key->k, sizeof key->k);
}

/* Hex of HMAC-SHA256(pkey, id) cut to 128 bits: patient ids are a small
 * space, so only a keyed hash keeps them out of the priors keys. */
static void
patient_hash(const unsigned char pkey[SH_PKEY_LEN], const char *id,
             char out[SH_PHASH_LEN + 1])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256(mac, (const unsigned char *)id, strlen(id),
	                       pkey);
	sodium_bin2hex(out, SH_PHASH_LEN + 1, mac, SH_PHASH_LEN / 2);
	sodium_memzero(mac, sizeof mac);
}

size_t
sh_priors_key(const char *wl, const sh_study *st,
              const unsigned char pkey[SH_PKEY_LEN], char out[SH_KEY_MAX])
{
	char suffix[sizeof "pri:" + SH_PHASH_LEN];

	out[0] = '\0';
	if (st->patient_id[0] == '\0' || st->study_date[0] == '\0')
		return 0;
	memcpy(suffix, "pri:", 4);
	patient_hash(pkey, st->patient_id, suffix + 4);
	if (sh_key_wl(out, wl, suffix) != 0) {
		out[0] = '\0';
		return 0;
	}
	return strlen(out);
}

int64_t
sh_index_added(const char *m, size_t n)
{
	int64_t v = 0;

	if (!sh_valid_cursor(m, n))
		return -1;
	for (size_t i = SH_DATE_LEN + 1; i < SH_INDEX_UID_AT - 1; i++)
		v = v * 10 + (m[i] - '0');
	return v;
}

static int
key(char out[SH_KEY_MAX], const char *tag, const char *id, const char *suffix)
{
	int n;

	if (suffix != NULL && suffix[0] != '\0')
		n = snprintf(out, SH_KEY_MAX, "share:{%s:%s}:%s", tag, id,
		             suffix);
	else
		n = snprintf(out, SH_KEY_MAX, "share:{%s:%s}", tag, id);
	return n > 0 && n < SH_KEY_MAX ? 0 : SS_EINTERNAL;
}

int
sh_key_wl(char out[SH_KEY_MAX], const char *wl, const char *suffix)
{
	return key(out, "wl", wl, suffix);
}

int
sh_key_study(char out[SH_KEY_MAX], const char *uid, const char *suffix)
{
	return key(out, "study", uid, suffix);
}

int
sh_key_mail(char out[SH_KEY_MAX], const unsigned char pkey[SH_PKEY_LEN],
            const char *email, const char *suffix)
{
	char lower[sizeof "mail:" + SH_EMAIL_KEY_MAX], h[SH_PHASH_LEN + 1];

	/* "mail:" keeps the address's hash apart from a patient id's under
	 * the same key (their keys differ anyway: {mail:} and :pri:). */
	memcpy(lower, "mail:", 5);
	if (sh_email_key(email, strlen(email), lower + 5, sizeof lower - 5) !=
	    0)
		return SS_EINTERNAL;
	patient_hash(pkey, lower, h);
	sodium_memzero(lower, sizeof lower);
	return key(out, "mail", h, suffix);
}

int
sh_key_token(char out[SH_KEY_MAX], const char *token_hash)
{
	return key(out, "tok", token_hash, NULL);
}

int
sh_email_key(const char *email, size_t n, char *out, size_t outlen)
{
	if (n == 0 || n >= outlen || memchr(email, '@', n) == NULL ||
	    memchr(email, '\0', n) != NULL)
		return SS_EBADREQ;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)email[i]);
	out[n] = '\0';
	return 0;
}

int64_t
sh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sh_time_fmt(int64_t ms, char out[SH_TIME_LEN + 1])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, SH_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
