/*
 * tests/fuzz/fuzz_gateway_multipart.c - the multipart splitter of guest
 * uploads (services/gateway/upload_multipart.c) on arbitrary bytes.
 *
 * The input's first line is the Content-Type, the rest the body.  Every
 * part found must lie inside the body (ASan catches reads outside it);
 * a refusal must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "services/gateway/upload.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char ct[512], why[128] = "";
	gw_part parts[16];
	size_t n = 0;

	if (nl == NULL || (size_t)(nl - data) >= sizeof ct)
		return 0;
	memcpy(ct, data, (size_t)(nl - data));
	ct[nl - data] = '\0';
	if (strlen(ct) != (size_t)(nl - data))
		return 0;
	const uint8_t *body = nl + 1;
	size_t len = size - (size_t)(body - data);
	int rv =
	    gw_multipart_split(ct, body, len, parts, 16, &n, why, sizeof why);
	if (rv != 0) {
		if (rv != SS_EBADREQ || why[0] == '\0' || n != 0)
			abort();
		return 0;
	}
	if (n > 16)
		abort();
	for (size_t i = 0; i < n; i++)
		if (parts[i].data < body || parts[i].len > len ||
		    parts[i].data + parts[i].len > body + len)
			abort();
	return 0;
}
