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
#include <stdint.h>

/* Length (1..4) of the valid sequence at s, which has left > 0 bytes;
 * 0 when the bytes there are not one. */
size_t ss_utf8_seq(const unsigned char *s, size_t left);

/* The same, and the code point it encodes in *cp. */
size_t ss_utf8_next(const unsigned char *s, size_t left, uint32_t *cp);

/*
 * Text people typed or a system sent, that others will read (names,
 * messages, study descriptions): strict UTF-8 without the code points
 * that are not text but change how text is shown.  Refused: C0 controls
 * and DEL (NUL included), C1 controls (U+0080..U+009F), the line and
 * paragraph separators (U+2028, U+2029), and the bidirectional
 * embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069),
 * which reorder what a reader sees ("Trojan Source").  The marks U+200E
 * and U+200F stay: right-to-left names need them.  With SS_TEXT_LINES,
 * tab, CR and LF are allowed (a message); without, none is (a name).
 */
#define SS_TEXT_LINES 1

/* True when code point cp may appear in such text. */
bool ss_text_cp_ok(uint32_t cp, int flags);

/* True when all n bytes of s are such text. */
bool ss_text_valid(const char *s, size_t n, int flags);

/* True when all n bytes of s are valid sequences. */
bool ss_utf8_valid(const char *s, size_t n);

/* Replaces, in place, each byte of the n at s that does not begin a valid
 * sequence with '?', so that text cut at a byte limit or taken from a
 * client can still be put in JSON.  Returns how many were replaced. */
size_t ss_utf8_scrub(char *s, size_t n);

#endif
