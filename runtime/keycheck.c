/*
 * runtime/keycheck.c - a daemon's keys against Redis's record of them
 * (keycheck.h).
 *
 *   KC_UNKNOWN   not asked yet, or Redis was not ready: the timer asks
 *                every second
 *   KC_SAME      every key is the recorded one: asked again every 10 s
 *   KC_DIFFERS   one is not (kc->why names it): asked again every 10 s
 *
 * One script asks for every key at once: a record that is missing is
 * written (the first daemon with the key defines it), and each answer is
 * 1 (the same) or 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/keycheck.h"
#include "runtime/log.h"

#define KC_FP_HEX  32 /* 16 bytes */
#define KC_KEY_MAX 80

#define KC_SOON_MS  1000
#define KC_AGAIN_MS 10000

enum kc_state { KC_UNKNOWN, KC_SAME, KC_DIFFERS };

struct kc_key {
	char setting[32];
	char record[KC_KEY_MAX]; /* keycheck:{k}:<purpose> */
	char fp[KC_FP_HEX + 1];
};

struct ss_keycheck {
	ss_daemon *d;
	ss_redis *r;
	struct event *timer;
	struct kc_key keys[SS_KEYCHECK_MAX];
	int n;
	enum kc_state state;
	bool asking;
	bool closing; /* closed while a question was out: freed by its answer */
	char why[160];
};

static ss_script kc_script = {
    .name = "keycheck",
    .src = "local out = {}\n"
           "for i = 1, #KEYS do\n"
           "  local v = redis.call('GET', KEYS[i])\n"
           "  if not v then\n"
           "    redis.call('SET', KEYS[i], ARGV[i])\n"
           "    v = ARGV[i]\n"
           "  end\n"
           "  out[i] = v == ARGV[i] and 1 or 0\n"
           "end\n"
           "return out\n",
};

static void
kc_arm(ss_keycheck *kc, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(kc->timer, &tv);
}

static void
kc_free(ss_keycheck *kc)
{
	if (kc->timer != NULL)
		event_free(kc->timer);
	free(kc);
}

static void
kc_answer(int err, redisReply *rep, void *arg)
{
	ss_keycheck *kc = arg;
	int bad = -1;

	kc->asking = false;
	if (kc->closing) {
		kc_free(kc);
		return;
	}
	if (err != 0 || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements != (size_t)kc->n) {
		/* Redis could not say: what was known stands. */
		kc_arm(kc, kc->state == KC_UNKNOWN ? KC_SOON_MS : KC_AGAIN_MS);
		return;
	}
	for (int i = 0; i < kc->n && bad < 0; i++)
		if (rep->element[i]->type != REDIS_REPLY_INTEGER ||
		    rep->element[i]->integer != 1)
			bad = i;
	if (bad >= 0) {
		if (kc->state != KC_DIFFERS)
			ss_error("key.mismatch", NULL, "setting",
			         kc->keys[bad].setting, "record",
			         kc->keys[bad].record, NULL);
		snprintf(kc->why, sizeof kc->why,
		         "--%s is not the key Redis's data was made with",
		         kc->keys[bad].setting);
		kc->state = KC_DIFFERS;
	} else {
		if (kc->state == KC_DIFFERS)
			ss_info("key.matches", NULL, NULL);
		kc->state = KC_SAME;
	}
	kc_arm(kc, KC_AGAIN_MS);
}

static void
kc_tick(evutil_socket_t fd, short what, void *arg)
{
	ss_keycheck *kc = arg;
	const char *argv[2 * SS_KEYCHECK_MAX];
	size_t lens[2 * SS_KEYCHECK_MAX];

	(void)fd;
	(void)what;
	if (kc->asking)
		return;
	if (!ss_redis_ready(kc->r)) {
		kc_arm(kc, KC_SOON_MS);
		return;
	}
	for (int i = 0; i < kc->n; i++) {
		argv[i] = kc->keys[i].record;
		lens[i] = strlen(argv[i]);
		argv[kc->n + i] = kc->keys[i].fp;
		lens[kc->n + i] = KC_FP_HEX;
	}
	if (ss_redis_eval(kc->r, &kc_script, kc_answer, kc, kc->n, 2 * kc->n,
	                  argv, lens) != 0) {
		kc_arm(kc, KC_SOON_MS);
		return;
	}
	kc->asking = true;
}

static bool
kc_probe(void *arg, const char **why)
{
	ss_keycheck *kc = arg;

	switch (kc->state) {
	case KC_SAME:
		return true;
	case KC_DIFFERS:
		*why = kc->why;
		return false;
	default:
		*why = "not checked yet";
		return false;
	}
}

/* Keeps key's fingerprint for purpose in k. */
static void
kc_key(struct kc_key *k, const char *setting, const char *purpose,
       const char *key)
{
	static const char text[] = "studyshare key check";
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	snprintf(k->setting, sizeof k->setting, "%s", setting);
	snprintf(k->record, sizeof k->record, "keycheck:{k}:%s", purpose);
	/* The purpose is in the text as well: one secret used for two
	 * purposes leaves two unrelated fingerprints. */
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
	                            strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)text,
	                              sizeof text);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)purpose,
	                              strlen(purpose));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(k->fp, sizeof k->fp, mac, KC_FP_HEX / 2);
	sodium_memzero(&st, sizeof st);
	sodium_memzero(mac, sizeof mac);
}

int
ss_keycheck_start(ss_keycheck **out, ss_daemon *d, ss_redis *r,
                  const char *const *keys)
{
	ss_keycheck *kc;

	*out = NULL;
	if ((kc = calloc(1, sizeof *kc)) == NULL)
		return SS_ENOMEM;
	kc->d = d;
	kc->r = r;
	for (; keys[0] != NULL; keys += 3) {
		if (kc->n >= SS_KEYCHECK_MAX) {
			kc_free(kc);
			return SS_EBADREQ;
		}
		kc_key(&kc->keys[kc->n++], keys[0], keys[1], keys[2]);
	}
	if ((kc->timer = evtimer_new(d->base, kc_tick, kc)) == NULL ||
	    ss_daemon_add_probe(d, "keys", kc_probe, kc) != 0) {
		kc_free(kc);
		return SS_ENOMEM;
	}
	if (kc->n == 0)
		kc->state = KC_SAME; /* nothing to check */
	else
		kc_arm(kc, 0);
	*out = kc;
	return 0;
}

bool
ss_keycheck_ok(const ss_keycheck *kc)
{
	return kc != NULL && kc->state == KC_SAME;
}

void
ss_keycheck_close(ss_keycheck *kc)
{
	if (kc == NULL)
		return;
	ss_daemon_remove_probes(kc->d, kc);
	evtimer_del(kc->timer);
	if (kc->asking)
		kc->closing = true; /* its answer frees it */
	else
		kc_free(kc);
}
