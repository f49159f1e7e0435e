/*
 * services/authz/sharecode.h - worklist share codes.
 *
 * A share code is 8 characters of Crockford base32 (0-9, A-Z without
 * I, L, O, U): 40 random bits.  People read codes aloud and type them, so
 * input is normalised the Crockford way: case folded, I and L read as 1,
 * O as 0, hyphens and spaces ignored.
 */
#ifndef SS_AUTHZ_SHARECODE_H
#define SS_AUTHZ_SHARECODE_H

#include <stddef.h>

#define AZ_CODE_LEN 8

/* Writes a fresh random code (NUL-terminated) to out. */
void az_code_new(char out[AZ_CODE_LEN + 1]);

/* Normalises in into out; 0, or SS_EBADREQ when it is not a code. */
int az_code_norm(const char *in, size_t len, char out[AZ_CODE_LEN + 1]);

#endif
