/*
 * proto/mpcheck.h - pre-validation of untrusted msgpack bytes.
 *
 * msgpack-c allocates from the counts a message declares, so a 5-byte
 * header can ask it for gigabytes.  ss_mpcheck() walks the bytes first,
 * without allocating, and refuses: truncation, a container whose declared
 * count exceeds the bytes left (every element needs at least one byte),
 * nesting deeper than max_depth, any str/bin/ext longer than max_str,
 * a top level that is not a map, trailing bytes after the top object, and
 * the reserved byte 0xc1.
 */
#ifndef SS_PROTO_MPCHECK_H
#define SS_PROTO_MPCHECK_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0, or SS_EBADREQ with *why set to a static description. */
int ss_mpcheck(const uint8_t *buf, size_t len, unsigned max_depth,
               size_t max_str, const char **why);

#endif
