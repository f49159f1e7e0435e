/*
 * proto/mpcheck.c - walks untrusted msgpack bytes before msgpack-c does.
 *
 * ss_mpcheck() reads every header once, front to back, never allocates and
 * never recurses: O(len) time and a fixed stack.  It keeps one count of the
 * items still owed by every open container; since each item takes at least
 * one byte, that count may never exceed the bytes left.  This bounds what
 * msgpack-c will allocate (one msgpack_object per declared item) by the
 * size of the input, whatever the counts in the headers say.
 *
 * Depth counts open containers: the top-level map is depth 1.  max_depth
 * above SS_MPCHECK_DEPTH_MAX is lowered to it, as msgpack-c itself refuses
 * anything deeper; so whatever ss_mpcheck() accepts, msgpack_unpack_next()
 * decodes in full.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/errors.h"
#include "proto/mpcheck.h"

/* msgpack-c's own limit on nesting (MSGPACK_EMBED_STACK_SIZE). */
#define SS_MPCHECK_DEPTH_MAX 32

/* What one header declares. */
struct mp_head {
	size_t hlen;    /* bytes of the header itself, first byte included */
	uint64_t blob;  /* str/bin/ext: bytes of data after the header */
	uint64_t items; /* containers: items that follow (a map: 2 per entry) */
	bool is_blob;
	bool is_container;
};

static const char ss_why_empty[] = "empty message";
static const char ss_why_trunc[] = "truncated message";
static const char ss_why_count[] = "container count exceeds the bytes left";
static const char ss_why_depth[] = "nesting too deep";
static const char ss_why_long[] = "string, bin or ext too long";
static const char ss_why_notmap[] = "top level is not a map";
static const char ss_why_trail[] = "trailing bytes after the message";
static const char ss_why_c1[] = "reserved byte 0xc1";

static uint64_t
mp_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
mp_blob(struct mp_head *h, size_t lenbytes, size_t extra)
{
	h->hlen = 1 + lenbytes + extra;
	h->is_blob = true;
}

/*
 * Sizes the header at p[0..avail).  The length or count field is read only
 * once the whole header is known to be there.
 */
static int
mp_head(const uint8_t *p, size_t avail, struct mp_head *h, const char **why)
{
	uint8_t b = p[0];
	size_t nlen = 0; /* width of a length/count field */

	h->hlen = 1;
	h->blob = 0;
	h->items = 0;
	h->is_blob = false;
	h->is_container = false;

	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return 0; /* fixints, nil, false, true */
	if (b <= 0x8f) {  /* fixmap */
		h->is_container = true;
		h->items = 2 * (uint64_t)(b & 0x0f);
		return 0;
	}
	if (b <= 0x9f) { /* fixarray */
		h->is_container = true;
		h->items = b & 0x0f;
		return 0;
	}
	if (b <= 0xbf) { /* fixstr */
		h->is_blob = true;
		h->blob = b & 0x1f;
		return 0;
	}

	switch (b) {
	case 0xc1:
		*why = ss_why_c1;
		return SS_EBADREQ;
	case 0xc4: /* bin 8/16/32 */
	case 0xc5:
	case 0xc6:
		nlen = (size_t)1 << (b - 0xc4);
		mp_blob(h, nlen, 0);
		break;
	case 0xc7: /* ext 8/16/32: length, then the type byte */
	case 0xc8:
	case 0xc9:
		nlen = (size_t)1 << (b - 0xc7);
		mp_blob(h, nlen, 1);
		break;
	case 0xca: /* float32 */
		h->hlen = 5;
		break;
	case 0xcb: /* float64 */
		h->hlen = 9;
		break;
	case 0xcc: /* uint 8/16/32/64 */
	case 0xcd:
	case 0xce:
	case 0xcf:
		h->hlen = 1 + ((size_t)1 << (b - 0xcc));
		break;
	case 0xd0: /* int 8/16/32/64 */
	case 0xd1:
	case 0xd2:
	case 0xd3:
		h->hlen = 1 + ((size_t)1 << (b - 0xd0));
		break;
	case 0xd4: /* fixext 1/2/4/8/16: the type byte, then the data */
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		mp_blob(h, 0, 1);
		h->blob = (uint64_t)1 << (b - 0xd4);
		break;
	case 0xd9: /* str 8/16/32 */
	case 0xda:
	case 0xdb:
		nlen = (size_t)1 << (b - 0xd9);
		mp_blob(h, nlen, 0);
		break;
	case 0xdc: /* array 16/32 */
	case 0xdd:
		nlen = b == 0xdc ? 2 : 4;
		h->hlen = 1 + nlen;
		h->is_container = true;
		break;
	default: /* 0xde, 0xdf: map 16/32 */
		nlen = b == 0xde ? 2 : 4;
		h->hlen = 1 + nlen;
		h->is_container = true;
		break;
	}

	if (h->hlen > avail) {
		*why = ss_why_trunc;
		return SS_EBADREQ;
	}
	if (nlen > 0) {
		uint64_t n = mp_be(p + 1, nlen);

		if (h->is_blob)
			h->blob = n;
		else
			h->items = (b == 0xde || b == 0xdf) ? 2 * n : n;
	}
	return 0;
}

static bool
mp_is_map(uint8_t b)
{
	return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

int
ss_mpcheck(const uint8_t *buf, size_t len, unsigned max_depth, size_t max_str,
           const char **why)
{
	uint64_t left[SS_MPCHECK_DEPTH_MAX]; /* items left per open container */
	unsigned depth = 0;
	uint64_t owed = 1; /* items not yet read, the top object included */
	size_t off = 0;
	struct mp_head h;
	const char *w;

	if (max_depth > SS_MPCHECK_DEPTH_MAX)
		max_depth = SS_MPCHECK_DEPTH_MAX;
	if (len == 0) {
		w = ss_why_empty;
		goto fail;
	}
	if (!mp_is_map(buf[0])) {
		w = buf[0] == 0xc1 ? ss_why_c1 : ss_why_notmap;
		goto fail;
	}

	/* owed <= len - off holds at the top of the loop: a byte is there. */
	while (owed > 0) {
		if (mp_head(buf + off, len - off, &h, &w) != 0)
			goto fail;
		off += h.hlen;
		owed--;
		if (depth > 0)
			left[depth - 1]--;

		if (h.is_blob) {
			if (h.blob > max_str) {
				w = ss_why_long;
				goto fail;
			}
			if (h.blob > len - off) {
				w = ss_why_trunc;
				goto fail;
			}
			off += (size_t)h.blob;
		}
		/* What is still owed must fit in what is left. */
		if (owed > len - off) {
			w = ss_why_trunc;
			goto fail;
		}
		if (h.is_container) {
			if (depth >= max_depth) {
				w = ss_why_depth;
				goto fail;
			}
			if (h.items > (len - off) - owed) {
				w = ss_why_count;
				goto fail;
			}
			left[depth++] = h.items;
			owed += h.items;
		}
		/* This item may have completed its container, and that one its
		 * parent: close them all. */
		while (depth > 0 && left[depth - 1] == 0)
			depth--;
	}

	if (off != len) {
		w = ss_why_trail;
		goto fail;
	}
	return 0;

fail:
	if (why != NULL)
		*why = w;
	return SS_EBADREQ;
}
