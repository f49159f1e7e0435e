/*
 * proto/utf8.h - strict UTF-8, the one check every text we take or give
 * goes through (JSON on both edges, log lines, mail values, stored study
 * text, decoded form fields).
 *
 * Strict: no overlong forms, no UTF-16 surrogates (U+D800..U+DFFF), no
 * code point past U+10FFFF, no truncated sequence; what jansson and
 * browsers accept.  Which ASCII bytes are allowed (NUL, controls) is each
 * caller's own rule.
 */
#ifndef SS_PROTO_UTF8_H
#define SS_PROTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid sequence at s, which has left > 0 bytes;
 * 0 when the bytes there are not one. */
size_t ss_utf8_seq(const unsigned char *s, size_t left);

/* True when all n bytes of s are valid sequences. */
bool ss_utf8_valid(const char *s, size_t n);

/* Replaces, in place, each byte of the n at s that does not begin a valid
 * sequence with '?', so that text cut at a byte limit or taken from a
 * client can still be put in JSON.  Returns how many were replaced. */
size_t ss_utf8_scrub(char *s, size_t n);

#endif
