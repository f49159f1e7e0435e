/*
 * proto/fields.h - typed, bounded access to the fields of a body map.
 *
 * A handler declares its fields once:
 *
 *   static const ss_field_spec spec[] = {
 *       {"user", SS_F_STR, true, 1, 64},
 *       {"limit", SS_F_INT, false, 1, 500},
 *   };
 *   const msgpack_object *f[2];
 *   if (ss_fields_parse(body, spec, 2, f, why, sizeof why) != 0) ...
 *
 * and gets the objects in spec order (NULL when an optional field is
 * absent).  Unknown fields, missing required ones, wrong types and values
 * out of bounds are refused with SS_EBADREQ and a message naming the field.
 * Bounds: byte length for strings, element count for arrays and maps,
 * value for integers; max 0 means "no bound but the envelope's".
 * Strings containing a NUL byte are refused.
 */
#ifndef SS_PROTO_FIELDS_H
#define SS_PROTO_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "proto/envelope.h"

typedef enum ss_ftype {
	SS_F_STR,
	SS_F_INT,
	SS_F_BOOL,
	SS_F_MAP,
	SS_F_ARRAY,
	SS_F_ANY, /* any type, nil included */
} ss_ftype;

typedef struct ss_field_spec {
	const char *name;
	ss_ftype type;
	bool required;
	int64_t min;
	int64_t max;
} ss_field_spec;

int ss_fields_parse(const msgpack_object *map, const ss_field_spec *spec,
                    size_t n, const msgpack_object **out, char *why,
                    size_t whylen);

/* The bound v breaks of [min, max] (max 0: none), for a client to fix the
 * value without reading the docs: "at most 2000 bytes", "at least 1
 * item"; unit is " byte", " item"... (pluralised) or "".  Returns buf. */
const char *ss_bound_text(int64_t v, int64_t min, int64_t max, const char *unit,
                          char *buf, size_t cap);

/* The value of a key in a map, or NULL. */
const msgpack_object *ss_map_get(const msgpack_object *map, const char *key);

/* Views; the caller has checked the type (ss_fields_parse does). */
ss_str ss_obj_str(const msgpack_object *o);
int64_t ss_obj_int(const msgpack_object *o);
bool ss_obj_bool(const msgpack_object *o);

/* Copies a string object into dst (NUL-terminated); SS_EBADREQ if it does
 * not fit or o is not a string. */
int ss_obj_strcpy(const msgpack_object *o, char *dst, size_t dstlen);

/* True when o is a string equal to s. */
bool ss_obj_streq(const msgpack_object *o, const char *s);

#endif
