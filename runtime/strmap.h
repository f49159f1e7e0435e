/*
 * runtime/strmap.h - a string-keyed hash map.
 *
 * Open addressing with linear probing, keyed by SipHash (libsodium's
 * crypto_shorthash) under a per-map random key, so lookups of names chosen
 * by clients cannot be steered into long probe chains.  Keys are copied;
 * values are opaque pointers the caller owns.  Not thread-safe.
 */
#ifndef SS_RUNTIME_STRMAP_H
#define SS_RUNTIME_STRMAP_H

#include <stddef.h>

typedef struct ss_strmap ss_strmap;

ss_strmap *ss_strmap_new(void);
void ss_strmap_free(ss_strmap *m);
size_t ss_strmap_len(const ss_strmap *m);

/* Inserts or replaces; 0 or SS_ENOMEM. */
int ss_strmap_put(ss_strmap *m, const char *key, size_t klen, void *val);
void *ss_strmap_get(const ss_strmap *m, const char *key, size_t klen);
void *ss_strmap_gets(const ss_strmap *m, const char *key); /* C string */

/* Visits every entry in no particular order. */
typedef void (*ss_strmap_fn)(const char *key, void *val, void *arg);
void ss_strmap_each(const ss_strmap *m, ss_strmap_fn fn, void *arg);

#endif
