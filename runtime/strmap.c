/*
 * runtime/strmap.c - see strmap.h.
 *
 * The table keeps its load factor under 1/2; there is no delete, because
 * every map here is built once (a directory snapshot) and then only read.
 */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/strmap.h"

typedef struct slot {
	char *key;
	size_t klen;
	void *val;
	uint64_t hash;
} slot;

struct ss_strmap {
	slot *slots;
	size_t cap; /* a power of two */
	size_t len;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
};

static uint64_t
hash(const ss_strmap *m, const char *key, size_t klen)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)key, klen, m->hkey);
	memcpy(&h, out, sizeof h);
	return h;
}

ss_strmap *
ss_strmap_new(void)
{
	ss_strmap *m;

	if (sodium_init() < 0)
		return NULL;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->cap = 16;
	if ((m->slots = calloc(m->cap, sizeof *m->slots)) == NULL) {
		free(m);
		return NULL;
	}
	randombytes_buf(m->hkey, sizeof m->hkey);
	return m;
}

void
ss_strmap_free(ss_strmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	free(m);
}

size_t
ss_strmap_len(const ss_strmap *m)
{
	return m->len;
}

static slot *
find(const ss_strmap *m, const char *key, size_t klen, uint64_t h)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		slot *s = &m->slots[i];
		if (s->key == NULL)
			return s;
		if (s->hash == h && s->klen == klen &&
		    memcmp(s->key, key, klen) == 0)
			return s;
	}
}

static int
grow(ss_strmap *m)
{
	slot *old = m->slots;
	size_t oldcap = m->cap;

	m->slots = calloc(oldcap * 2, sizeof *m->slots);
	if (m->slots == NULL) {
		m->slots = old;
		return SS_ENOMEM;
	}
	m->cap = oldcap * 2;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key != NULL)
			*find(m, old[i].key, old[i].klen, old[i].hash) = old[i];
	}
	free(old);
	return 0;
}

int
ss_strmap_put(ss_strmap *m, const char *key, size_t klen, void *val)
{
	uint64_t h = hash(m, key, klen);
	slot *s;

	if ((m->len + 1) * 2 > m->cap && grow(m) != 0)
		return SS_ENOMEM;
	s = find(m, key, klen, h);
	if (s->key == NULL) {
		if ((s->key = malloc(klen + 1)) == NULL)
			return SS_ENOMEM;
		memcpy(s->key, key, klen);
		s->key[klen] = '\0';
		s->klen = klen;
		s->hash = h;
		m->len++;
	}
	s->val = val;
	return 0;
}

void *
ss_strmap_get(const ss_strmap *m, const char *key, size_t klen)
{
	slot *s = find(m, key, klen, hash(m, key, klen));

	return s->key != NULL ? s->val : NULL;
}

void *
ss_strmap_gets(const ss_strmap *m, const char *key)
{
	return ss_strmap_get(m, key, strlen(key));
}

void
ss_strmap_each(const ss_strmap *m, ss_strmap_fn fn, void *arg)
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key != NULL)
			fn(m->slots[i].key, m->slots[i].val, arg);
	}
}
