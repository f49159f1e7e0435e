/*
 * tests/fuzz/fuzz_guestlink_input.c - guestlink's parsers of untrusted
 * strings on arbitrary bytes: expires_at (gl_time_parse), the user agent
 * that goes into the audit (gl_clean_ua) and its name from a table that
 * goes into emails (gl_ua_summary), the text, worklist,
 * uid and address checks, presented tokens and sessions, and sealed
 * values read back from Redis.
 *
 * Beyond not crashing: an accepted time formats and parses back to the
 * same second; a cleaned user agent is valid UTF-8 without control
 * characters and at most GL_UA_KEEP bytes; an accepted worklist can
 * never break a key's hash tag; random bytes never open as a sealed
 * value.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/mailq.h"
#include "services/guestlink/guestlink.h"

static gl_settings cfg = {
    .token_key = "fuzz-token-key-0123456789abcdef0123456789",
    .public_url = "https://fuzz.example",
};
static gl_server srv = {.cfg = &cfg};

static void
check_time(const char *s, size_t n)
{
	char out[GL_TIME_LEN + 1];
	int64_t ms, back;

	if (gl_time_parse(s, n, &ms) != 0)
		return;
	/* Years 1970..9999 with any offset stay within these bounds. */
	if (ms < -86400000LL || ms > 253402387200000LL)
		abort();
	if (ms < 0)
		return;
	gl_time_fmt(ms, out);
	if (gl_time_parse(out, strlen(out), &back) != 0 ||
	    back != ms - ms % 1000)
		abort();
}

static void
check_ua(const char *s, size_t n)
{
	char out[GL_UA_KEEP + 1];
	size_t k;

	gl_clean_ua(s, n, out);
	k = strlen(out);
	if (k > GL_UA_KEEP || k > n || !ss_mail_utf8_ok(out, k))
		abort();
	for (size_t i = 0; i < k; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			abort();
	/* the mail's name of it: letters, spaces and "on" from the table */
	char sum[GL_UA_SUMMARY_MAX + 1];
	gl_ua_summary(out, sum);
	for (size_t i = 0; sum[i] != '\0'; i++)
		if (!(isalpha((unsigned char)sum[i]) || sum[i] == ' '))
			abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (gl_hashers_init(&srv) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char th[SS_TOKEN_HASH_LEN + 1], id[GL_ID_LEN + 1], key[GL_KEY_MAX];
	unsigned char *plain;
	size_t n;

	static const char sk[] = "fuzz-seal-key-0123456789abcdef012345";
	static bool keyed;

	if (!keyed)
		keyed = ss_seal_key_init(&srv.seal, sk, sizeof sk - 1) == 0;
	check_time(s, size);
	check_ua(s, size);
	(void)gl_valid_text(s, size, true);
	(void)gl_valid_uid(s, size);
	(void)gl_valid_addr(s, size);
	if (gl_valid_worklist(s, size) &&
	    (memchr(s, '{', size) != NULL || memchr(s, '}', size) != NULL))
		abort();
	if (gl_token_ids(&srv, s, size, th, id) == 0 &&
	    (size != SS_TOKEN_LEN || !gl_valid_id(id, strlen(id))))
		abort();
	if (gl_session_key(&srv, s, size, id, key) == 0 &&
	    (size != GL_SESSION_LEN || memcmp(id, s, GL_ID_LEN) != 0))
		abort();
	if (gl_open_view(&srv, "0123456789abcdef0123", s, size, &plain, &n) ==
	    0)
		abort();
	return 0;
}
