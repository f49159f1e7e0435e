/*
 * tests/fuzz/fuzz_mpcheck.c - ss_mpcheck() against msgpack-c.
 *
 * The promise of ss_mpcheck() is that msgpack-c can decode whatever it
 * accepts: one whole object, exactly the bytes given, nothing after.  Any
 * input where that fails aborts.  The same bytes are also checked with
 * small limits, and with a depth beyond msgpack-c's own, which must still
 * keep the promise.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <msgpack.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/mpcheck.h"

static void
must_unpack(const uint8_t *data, size_t size)
{
	msgpack_unpacked up;
	size_t off = 0;

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)data, size, &off) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    off != size || up.data.type != MSGPACK_OBJECT_MAP)
		abort();
	msgpack_unpacked_destroy(&up);
}

static void
check(const uint8_t *data, size_t size, unsigned depth, size_t max_str)
{
	const char *why = NULL;
	int rv = ss_mpcheck(data, size, depth, max_str, &why);

	if (rv == 0)
		must_unpack(data, size);
	else if (rv != SS_EBADREQ || why == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, SS_MAX_DEPTH, SS_MAX_STR_LEN);
	check(data, size, 2, 4);
	check(data, size, 1000, (size_t)-1);
	return 0;
}
