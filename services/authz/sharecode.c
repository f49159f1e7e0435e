/*
 * services/authz/sharecode.c - see sharecode.h.
 */
#include <sodium.h>

#include "proto/errors.h"
#include "services/authz/sharecode.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void
az_code_new(char out[AZ_CODE_LEN + 1])
{
	unsigned char r[5];
	uint64_t bits = 0;

	randombytes_buf(r, sizeof r);
	for (size_t i = 0; i < sizeof r; i++)
		bits = bits << 8 | r[i];
	for (int i = AZ_CODE_LEN - 1; i >= 0; i--) {
		out[i] = alphabet[bits & 31];
		bits >>= 5;
	}
	out[AZ_CODE_LEN] = '\0';
}

/* The canonical symbol for c, or 0 when c is not a Crockford symbol. */
static char
canon(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	switch (c) {
	case 'I':
	case 'L':
		return '1';
	case 'O':
		return '0';
	case 'U':
		return 0;
	}
	if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))
		return c;
	return 0;
}

int
az_code_norm(const char *in, size_t len, char out[AZ_CODE_LEN + 1])
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c;

		if (in[i] == '-' || in[i] == ' ')
			continue;
		if (n == AZ_CODE_LEN || (c = canon(in[i])) == 0)
			return SS_EBADREQ;
		out[n++] = c;
	}
	if (n != AZ_CODE_LEN)
		return SS_EBADREQ;
	out[n] = '\0';
	return 0;
}
