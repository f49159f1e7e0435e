/*
 * tests/fuzz/fuzz_share_study.c - share's study parsers on arbitrary bytes.
 *
 * The input is taken two ways:
 *   - as a study.arrived request: ss_msg_decode(), then sh_study_parse()
 *     on its body, as the ingest endpoint does; an accepted event must
 *     obey every rule (valid uid, worklist and dates), pack to a stored
 *     form that reads back to the same study, and give a well-formed
 *     listing member and priors key;
 *   - as a stored form read back from Redis: sh_study_unpack(), which
 *     must refuse what is not one and never read out of bounds.
 * A refusal of an event must come with a message about a field.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "services/share/study.h"

#define SECRET "fuzz-share-seal-key-0123456789abcdef0123"

static ss_seal_key key;
static unsigned char pkey[SH_PKEY_LEN];
static int ready;

static void
check_accepted(const sh_study *st, const char *wl)
{
	char im[SH_INDEX_MAX + 1], pk[SH_KEY_MAX], pre[SH_KEY_MAX];
	unsigned char blob[SH_BLOB_MAX];
	sh_study back;
	ss_pack p;
	size_t n;

	if (!sh_valid_uid(st->uid, strlen(st->uid)) ||
	    !sh_valid_worklist(wl, strlen(wl)) ||
	    (st->study_date[0] && !sh_valid_date(st->study_date, 8)) ||
	    (st->birth_date[0] && !sh_valid_date(st->birth_date, 8)))
		abort();
	ss_pack_init(&p);
	sh_study_pack(st, &p);
	if (sh_study_unpack(p.sb.data, p.sb.size, &back) != 0 ||
	    memcmp(&back, st, sizeof back) != 0)
		abort();
	ss_pack_free(&p);
	if (sh_study_seal(&key, st, blob, &n) != 0 ||
	    sh_study_open(&key, st->uid, (const char *)blob, n, &back) != 0 ||
	    memcmp(&back, st, sizeof back) != 0 ||
	    sh_study_open(&key, "01" /* no valid uid */, (const char *)blob, n,
	                  &back) == 0)
		abort();
	n = sh_index_member(st, 1700000000000, im);
	if (!sh_valid_cursor(im, n) || sh_index_added(im, n) != 1700000000000)
		abort();
	/* A study with a patient id and a date has a priors set under the
	 * worklist's tag, named by 32 hex digits and never by the id. */
	n = sh_priors_key(wl, st, pkey, pk);
	if ((n != 0) !=
	    (st->patient_id[0] != '\0' && st->study_date[0] != '\0'))
		abort();
	if (n != 0 &&
	    (sh_key_wl(pre, wl, "pri:") != 0 || n != strlen(pre) + 32 ||
	     strlen(pk) != n || strncmp(pk, pre, strlen(pre)) != 0 ||
	     strspn(pk + strlen(pre), "0123456789abcdef") != 32))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char wl[SH_WL_MAX + 1], why[256];
	const char *reason;
	sh_study st;
	ss_msg m;

	if (!ready) {
		if (ss_seal_key_init(&key, SECRET, strlen(SECRET)) != 0)
			abort();
		sh_patient_key(&key, pkey);
		ready = 1;
	}
	if (ss_msg_decode(&m, data, size, false, &reason) == 0) {
		if (sh_study_parse(m.body, &st, wl, NULL, NULL, why,
		                   sizeof why) == 0)
			check_accepted(&st, wl);
		else if (strstr(why, "field") == NULL)
			abort();
		ss_msg_free(&m);
	}
	(void)sh_study_unpack((const char *)data, size, &st);
	if (sh_study_open(&key, "1.2.3", (const char *)data, size, &st) == 0)
		abort(); /* a forgery */
	return 0;
}
