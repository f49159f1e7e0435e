/*
 * runtime/dicom.c - the study of a DICOM Part 10 file, from its header.
 *
 * Contract in dicom.h.  Every read goes through need(), which compares the
 * bytes wanted with the bytes left (never pos + n, which could wrap), so
 * no length in the file can move the reader outside the buffer.  Nesting
 * is bounded by SS_DICOM_DEPTH_MAX, so recursion is too.
 */
#include "runtime/dicom.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/utf8.h"

#define PREAMBLE  128
#define UNDEFINED 0xFFFFFFFFu
#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))
#define ITEM      TAG(0xFFFE, 0xE000)
#define ITEM_END  TAG(0xFFFE, 0xE00D)
#define SEQ_END   TAG(0xFFFE, 0xE0DD)

typedef enum { CS_ASCII, CS_LATIN1, CS_UTF8 } charset;

typedef struct reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	charset cs;
	ss_dicom_info *out;
	const char *why; /* first reason found */
} reader;

/* One element's header. */
typedef struct elem {
	uint32_t tag;
	char vr[3]; /* "" in implicit VR */
	uint32_t len;
} elem;

static int
fail(reader *r, int err, const char *why)
{
	if (r->why == NULL)
		r->why = why;
	return err;
}

static int
need(reader *r, size_t n)
{
	if (r->len - r->pos < n)
		return fail(r, SS_EUNPROC, "truncated");
	return 0;
}

static uint16_t
u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* VRs whose explicit form has two reserved bytes and a 32-bit length. */
static bool
vr_long(const char *vr)
{
	static const char *const l[] = {"OB", "OD", "OF", "OL", "OV",
	                                "OW", "SQ", "SV", "UC", "UN",
	                                "UR", "UT", "UV"};
	for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
		if (memcmp(vr, l[i], 2) == 0)
			return true;
	return false;
}

static bool
vr_known(const char *vr)
{
	static const char *const s[] = {
	    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
	    "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"};
	if (vr_long(vr))
		return true;
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		if (memcmp(vr, s[i], 2) == 0)
			return true;
	return false;
}

/* Reads a tag, then (unless it is an item or delimiter, which never have
 * a VR) the VR in explicit syntax, then the length. */
static int
read_elem(reader *r, bool explicit_vr, elem *e)
{
	int rv;

	if ((rv = need(r, 8)) != 0)
		return rv;
	const uint8_t *p = r->buf + r->pos;
	e->tag = TAG(u16(p), u16(p + 2));
	e->vr[0] = '\0';
	if ((e->tag >> 16) == 0xFFFE || !explicit_vr) {
		e->len = u32(p + 4);
		r->pos += 8;
		return 0;
	}
	e->vr[0] = (char)p[4];
	e->vr[1] = (char)p[5];
	e->vr[2] = '\0';
	if (!vr_known(e->vr))
		return fail(r, SS_EUNPROC,
		            "malformed: unknown value representation");
	if (!vr_long(e->vr)) {
		e->len = u16(p + 6);
		r->pos += 8;
		return 0;
	}
	if ((rv = need(r, 12)) != 0)
		return rv;
	e->len = u32(p + 8);
	r->pos += 12;
	return 0;
}

/* --- values --------------------------------------------------------- */

/* Copies [v, v+n) trimmed of spaces and NULs at both ends into dst as
 * UTF-8.  Returns false when it does not fit (dst is then ""). */
static bool
put_text(reader *r, char *dst, size_t cap, const uint8_t *v, size_t n)
{
	size_t o = 0;

	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
		n--;
	while (n > 0 && (v[0] == ' ' || v[0] == '\0')) {
		v++;
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t c = v[i];
		uint8_t u[4];
		size_t k = 1;

		if (c >= 0x20 && c < 0x7F) {
			u[0] = c;
		} else if (c >= 0xA0 && r->cs == CS_LATIN1) {
			u[0] = (uint8_t)(0xC0 | (c >> 6));
			u[1] = (uint8_t)(0x80 | (c & 0x3F));
			k = 2;
		} else if (c >= 0xC2 && c <= 0xF4 && r->cs == CS_UTF8) {
			uint32_t cp;
			size_t m = ss_utf8_next(v + i, n - i, &cp);

			/* A code point that is no text people read (C1,
			 * direction overrides: proto/utf8.h) is one '?'. */
			if (m > 0 && ss_text_cp_ok(cp, 0)) {
				memcpy(u, v + i, m);
				k = m;
			} else {
				u[0] = '?';
			}
			if (m > 0)
				i += m - 1;
		} else {
			u[0] = '?';
		}
		if (o + k > cap) {
			dst[0] = '\0';
			return false;
		}
		memcpy(dst + o, u, k);
		o += k;
	}
	dst[o] = '\0';
	return true;
}

/* Like put_text, but a value too long for dst is cut at a character
 * boundary instead of dropped (names and descriptions are for people). */
static void
put_text_cut(reader *r, char *dst, size_t cap, const uint8_t *v, size_t n)
{
	while (!put_text(r, dst, cap, v, n) && n > 0) {
		n = n > cap ? cap : n - 1;
		/* Not inside a UTF-8 character: its first bytes alone would
		 * become a '?'. */
		while (r->cs == CS_UTF8 && n > 0 && (v[n] & 0xC0) == 0x80)
			n--;
	}
}

static bool
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static void
put_date(reader *r, char *dst, const uint8_t *v, size_t n)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	char d[9];

	if (!put_text(r, d, 8, v, n) || strlen(d) != 8)
		return;
	for (int i = 0; i < 8; i++)
		if (d[i] < '0' || d[i] > '9')
			return;
	int y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 +
	        (d[3] - '0');
	int m = (d[4] - '0') * 10 + (d[5] - '0');
	int dd = (d[6] - '0') * 10 + (d[7] - '0');
	/* Years before 1000 are typing errors, not studies (share agrees). */
	if (y < 1000 || m < 1 || m > 12 || dd < 1 || dd > mdays[m - 1] ||
	    (m == 2 && dd == 29 && !leap(y)))
		return;
	memcpy(dst, d, 9);
}

int
ss_dicom_uid_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SS_DICOM_UID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		bool start = i == 0 || s[i - 1] == '.';
		if (s[i] == '.') {
			if (start || i + 1 == n)
				return 0;
		} else if (s[i] < '0' || s[i] > '9') {
			return 0;
		} else if (start && s[i] == '0' && i + 1 < n &&
		           s[i + 1] != '.') {
			return 0;
		}
	}
	return 1;
}

static void
put_uid(reader *r, char *dst, const uint8_t *v, size_t n)
{
	if (put_text(r, dst, SS_DICOM_UID_MAX, v, n) && !ss_dicom_uid_ok(dst))
		dst[0] = '\0';
}

/* (0008,0005): only the first value counts (code extensions switch sets
 * inside a value; their bytes become '?'). */
static void
set_charset(reader *r, const uint8_t *v, size_t n)
{
	char cs[65];
	r->cs = CS_ASCII;
	if (!put_text(r, cs, 64, v, n))
		return;
	char *bs = strchr(cs, '\\');
	if (bs != NULL)
		*bs = '\0';
	if (strcmp(cs, "ISO_IR 100") == 0)
		r->cs = CS_LATIN1;
	else if (strcmp(cs, "ISO_IR 192") == 0)
		r->cs = CS_UTF8;
}

/* A top-level element with a defined length, its value at r->pos. */
static void
take(reader *r, uint32_t tag, const uint8_t *v, size_t n)
{
	ss_dicom_info *o = r->out;

	switch (tag) {
	case TAG(0x0008, 0x0005):
		set_charset(r, v, n);
		break;
	case TAG(0x0008, 0x0016):
		put_uid(r, o->sop_class_uid, v, n);
		break;
	case TAG(0x0008, 0x0018):
		put_uid(r, o->sop_instance_uid, v, n);
		break;
	case TAG(0x0008, 0x0020):
		put_date(r, o->study_date, v, n);
		break;
	case TAG(0x0008, 0x0050):
		put_text(r, o->accession, SS_DICOM_UID_MAX, v, n);
		break;
	case TAG(0x0008, 0x0060):
		put_text(r, o->modality, sizeof o->modality - 1, v, n);
		break;
	case TAG(0x0008, 0x1030):
		put_text_cut(r, o->description, SS_DICOM_TEXT_MAX, v, n);
		break;
	case TAG(0x0010, 0x0010):
		put_text_cut(r, o->patient_name, SS_DICOM_TEXT_MAX, v, n);
		break;
	case TAG(0x0010, 0x0020):
		put_text(r, o->patient_id, SS_DICOM_UID_MAX, v, n);
		break;
	case TAG(0x0010, 0x0030):
		put_date(r, o->birth_date, v, n);
		break;
	case TAG(0x0020, 0x000D):
		put_uid(r, o->study_uid, v, n);
		break;
	}
}

/* --- structure ------------------------------------------------------ */

static int walk_dataset(reader *r, int depth, bool explicit_vr, bool in_item);

/*
 * The items of a sequence (or the fragments of encapsulated pixel data)
 * of undefined length, up to and including its delimiter.  Items of
 * defined length are skipped whole; those of undefined length are walked
 * to their item delimiter.
 */
static int
walk_items(reader *r, int depth, bool explicit_vr, bool fragments)
{
	elem e;
	int rv;

	if (depth > SS_DICOM_DEPTH_MAX)
		return fail(r, SS_EUNPROC,
		            "malformed: sequences nested too deep");
	for (;;) {
		if ((rv = read_elem(r, explicit_vr, &e)) != 0)
			return rv;
		if (e.tag == SEQ_END)
			return 0;
		if (e.tag != ITEM)
			return fail(r, SS_EUNPROC,
			            "malformed: expected an item");
		if (e.len == UNDEFINED) {
			if (fragments)
				return fail(r, SS_EUNPROC,
				            "malformed: pixel data fragment of "
				            "undefined length");
			if ((rv = walk_dataset(r, depth + 1, explicit_vr,
			                       true)) != 0)
				return rv;
			continue;
		}
		if ((rv = need(r, e.len)) != 0)
			return rv;
		r->pos += e.len;
	}
}

/*
 * Elements until the end of the buffer (top level) or, in an item of
 * undefined length, until its item delimiter.
 */
static int
walk_dataset(reader *r, int depth, bool explicit_vr, bool in_item)
{
	elem e;
	int rv;

	if (depth > SS_DICOM_DEPTH_MAX)
		return fail(r, SS_EUNPROC,
		            "malformed: sequences nested too deep");
	while (r->pos < r->len) {
		if ((rv = read_elem(r, explicit_vr, &e)) != 0)
			return rv;
		if (e.tag == ITEM_END && in_item)
			return 0;
		if ((e.tag >> 16) == 0xFFFE)
			return fail(r, SS_EUNPROC,
			            "malformed: misplaced delimiter");
		if (e.len == UNDEFINED) {
			bool sq = !explicit_vr || strcmp(e.vr, "SQ") == 0;
			bool un =
			    strcmp(e.vr, "UN") == 0; /* implicit VR inside */
			bool px =
			    strcmp(e.vr, "OB") == 0 || strcmp(e.vr, "OW") == 0;
			if (!sq && !un && !px)
				return fail(r, SS_EUNPROC,
				            "malformed: undefined length on a "
				            "plain value");
			rv = walk_items(r, depth + 1, explicit_vr && !un, px);
			if (rv != 0)
				return rv;
			continue;
		}
		if ((rv = need(r, e.len)) != 0)
			return rv;
		if (depth == 0)
			take(r, e.tag, r->buf + r->pos, e.len);
		r->pos += e.len;
	}
	if (in_item)
		return fail(r, SS_EUNPROC, "truncated");
	return 0;
}

/* The file meta group: explicit VR little endian, group 0x0002. */
static int
walk_meta(reader *r)
{
	elem e;
	int rv;

	while (r->len - r->pos >= 2 && u16(r->buf + r->pos) == 0x0002) {
		if ((rv = read_elem(r, true, &e)) != 0)
			return rv;
		if (e.len == UNDEFINED)
			return fail(r, SS_EUNPROC,
			            "malformed: file meta information");
		if ((rv = need(r, e.len)) != 0)
			return rv;
		if (e.tag == TAG(0x0002, 0x0010))
			put_uid(r, r->out->transfer_syntax, r->buf + r->pos,
			        e.len);
		r->pos += e.len;
	}
	if (r->out->transfer_syntax[0] == '\0')
		return fail(r, SS_EUNPROC, "malformed: no transfer syntax");
	return 0;
}

/*
 * Implicit VR LE, explicit VR LE, and every encapsulated (compressed)
 * syntax, whose data set is explicit VR LE.  Big endian and deflate are
 * not read.
 */
static int
syntax(reader *r, bool *explicit_vr)
{
	const char *ts = r->out->transfer_syntax;

	if (strcmp(ts, "1.2.840.10008.1.2") == 0) {
		*explicit_vr = false;
		return 0;
	}
	if (strcmp(ts, "1.2.840.10008.1.2.2") == 0 ||
	    strcmp(ts, "1.2.840.10008.1.2.1.99") == 0)
		return fail(r, SS_EUNSUPPORTED, "unsupported transfer syntax");
	if (strncmp(ts, "1.2.840.10008.1.2.", 18) != 0)
		return fail(r, SS_EUNSUPPORTED, "unknown transfer syntax");
	*explicit_vr = true;
	return 0;
}

int
ss_dicom_read(const uint8_t *buf, size_t len, ss_dicom_info *out, char *why,
              size_t why_len)
{
	reader r = {.buf = buf, .len = len, .out = out};
	bool explicit_vr = true;
	int rv;

	memset(out, 0, sizeof *out);
	if (buf == NULL || len < PREAMBLE + 4 ||
	    memcmp(buf + PREAMBLE, "DICM", 4) != 0) {
		rv = fail(&r, SS_EUNSUPPORTED, "not a DICOM Part 10 file");
		goto fail;
	}
	r.pos = PREAMBLE + 4;
	if ((rv = walk_meta(&r)) != 0 || (rv = syntax(&r, &explicit_vr)) != 0 ||
	    (rv = walk_dataset(&r, 0, explicit_vr, false)) != 0)
		goto fail;
	if (out->study_uid[0] == '\0') {
		rv = fail(&r, SS_EUNPROC, "no Study Instance UID");
		goto fail;
	}
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	return 0;

fail:
	memset(out, 0, sizeof *out);
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s", r.why);
	return rv;
}
