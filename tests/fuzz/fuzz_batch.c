/*
 * tests/fuzz/fuzz_batch.c - a bus.batch as a server and a client read it.
 *
 * The input is decoded as a request; when it is a batch, its calls are read
 * with ss_batch_items() and each is decoded as a request, as runtime/rep.c
 * does.  It is also decoded as a reply and its "replies" read and decoded,
 * as runtime/req.c does.  Every item must lie inside the input's decoded
 * message, and a refusal must come with a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/batch.h"
#include "proto/errors.h"

static volatile uint32_t sink;

static void
items(const ss_msg *m, const char *key, bool reply)
{
	ss_str it[SS_BATCH_MAX];
	const char *why = NULL;
	size_t i, n;
	ss_msg sub;

	if (ss_batch_items(m->body, key, it, SS_BATCH_MAX, &n, &why) != 0) {
		if (why == NULL || n != 0)
			abort();
		return;
	}
	if (n == 0 || n > SS_BATCH_MAX)
		abort();
	for (i = 0; i < n; i++) {
		if (it[i].p == NULL || it[i].n == 0)
			abort();
		why = NULL;
		if (ss_msg_decode(&sub, it[i].p, it[i].n, reply, &why) != 0) {
			if (why == NULL)
				abort();
			continue;
		}
		sink += (uint32_t)strlen(sub.id) + (uint32_t)sub.ok;
		ss_msg_free(&sub);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	ss_msg m;

	if (ss_msg_decode(&m, data, size, false, &why) == 0) {
		if (strcmp(m.type, SS_BATCH_TYPE) == 0)
			items(&m, "calls", false);
		ss_msg_free(&m);
	}
	if (ss_msg_decode(&m, data, size, true, &why) == 0) {
		if (m.ok)
			items(&m, "replies", true);
		ss_msg_free(&m);
	}
	return 0;
}
