/*
 * services/gateway/upload_limit.c - what one client address may have of
 * guest uploads: in progress, and refused as another patient's.
 *
 * A Study UID that is printed on reports, sent with one patient after
 * another, would tell by its one 201 whose study it is (share refuses
 * the others with 409).  So an address may have --upload-refusal-limit
 * different files refused as another patient's per
 * --upload-refusal-window, and at most --upload-inflight-max requests to
 * /u/{token}/files in progress.  Each request takes a slot before its
 * files are looked at (upload.c, UP_LIMIT) and gives it back once
 * answered, turning it into a refusal when share refused the file: so
 * requests sent side by side cannot pass the check together, and an
 * address gets at most limit + inflight-max tries per window.
 *
 * One sorted set per address, gateway:{rl:upref:<client>} (the IPv6 /64,
 * as every rate limit): refusals "r:<name>" with score 0, where the name
 * is a keyed hash of the file's Study UID and patient (upload.c: the same
 * file sent again is not another try, so a guest may send every file of
 * a series that clashes with a stored study); requests in progress
 * "p:<request id>" with their lease end (ms) as score, dropped once
 * past it (a gateway that died holding them).  The key expires a window
 * after it was made.  Redis full or away: taking a slot fails, and the
 * upload is 503, never let through uncounted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "services/gateway/gateway.h"

/* KEYS: the set  ARGV: "take" | "put", now ms, "p:<request id>", window
 * ms, refusal limit, in-progress limit, then the lease end ms (take) or
 * the refusal's name ("" none; put).
 * -> {0, 0} done; take: {1, ms left} refusals at the limit, {2, 0} too
 * many in progress. */
ss_script gw_script_upload_slot = {
    "gateway_upload_slot",
    "local k, now = KEYS[1], tonumber(ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', k, '(0', now)\n"
    "local refused = redis.call('ZCOUNT', k, 0, 0)\n"
    "if ARGV[1] == 'take' then\n"
    "  if refused >= tonumber(ARGV[5]) then\n"
    "    return {1, redis.call('PTTL', k)}\n"
    "  end\n"
    "  if redis.call('ZCARD', k) - refused >= tonumber(ARGV[6]) then\n"
    "    return {2, 0}\n"
    "  end\n"
    "  redis.call('ZADD', k, ARGV[7], ARGV[3])\n"
    "else\n"
    "  redis.call('ZREM', k, ARGV[3])\n"
    "  if ARGV[7] == '' or refused >= tonumber(ARGV[5]) then\n"
    "    return {0, 0}\n"
    "  end\n"
    "  redis.call('ZADD', k, 0, 'r:' .. ARGV[7])\n"
    "end\n"
    "if redis.call('PTTL', k) < 0 then\n"
    "  redis.call('PEXPIRE', k, ARGV[4])\n"
    "end\n"
    "return {0, 0}\n",
    "",
};

/* A slot is held at most this long past the request's own timeouts. */
#define SLOT_LEASE_EXTRA_MS 60000

static int
slot_send(gw_req *r, const char *op, const char *last, ss_redis_fn fn)
{
	const gw_settings *cfg = r->s->cfg;
	char key[GW_LIMIT_KEY_MAX], member[SS_MAX_ID_LEN + 3];
	char now[24], win[24], lim[24], inflight[24];
	const char *argv[8];
	size_t lens[8];

	if (r->s->redis == NULL)
		return SS_EUNAVAIL;
	gw_limit_key(r, "upref", key);
	snprintf(member, sizeof member, "p:%s", r->id);
	snprintf(now, sizeof now, "%" PRId64, (int64_t)(ss_now() * 1000.0));
	snprintf(win, sizeof win, "%" PRId64, cfg->upload_refusal_window_ms);
	snprintf(lim, sizeof lim, "%" PRId64, cfg->upload_refusal_limit);
	snprintf(inflight, sizeof inflight, "%" PRId64,
	         cfg->upload_inflight_max);
	argv[0] = key;
	argv[1] = op;
	argv[2] = now;
	argv[3] = member;
	argv[4] = win;
	argv[5] = lim;
	argv[6] = inflight;
	argv[7] = last;
	for (int i = 0; i < 8; i++)
		lens[i] = strlen(argv[i]);
	return ss_redis_eval(r->s->redis, &gw_script_upload_slot, fn, r, 1, 8,
	                     argv, lens);
}

static void
on_take(int err, redisReply *rep, void *arg)
{
	gw_req *r = arg;

	if (!gw_limit_answered(r, err, rep))
		return;
	switch (rep->element[0]->integer) {
	case 0:
		r->up_slot = true;
		r->next(r);
		return;
	case 1:
		gw_limited(r, rep->element[1]->integer,
		           "studies refused as another patient's");
		return;
	default:
		gw_limited(r, 0, "uploads in progress from this address");
		return;
	}
}

void
gw_upload_slot_take(gw_req *r, size_t nfiles, gw_handler next)
{
	const gw_settings *cfg = r->s->cfg;
	char lease[24];
	int64_t per_file = cfg->stow_timeout_ms + 2 * cfg->ingest_timeout_ms;

	snprintf(lease, sizeof lease, "%" PRId64,
	         (int64_t)(ss_now() * 1000.0) + per_file * (int64_t)nfiles +
	             SLOT_LEASE_EXTRA_MS);
	r->next = next;
	r->step = GW_STEP_LIMIT;
	if (slot_send(r, "take", lease, on_take) != 0)
		gw_limit_unavailable(r);
}

void
gw_upload_slot_put(gw_req *r, const char *refusal)
{
	if (!r->up_slot)
		return;
	r->up_slot = false;
	/* Not awaited: the answer went out; a slot that cannot be given back
	 * is dropped at its lease end. */
	if (slot_send(r, "put", refusal != NULL ? refusal : "", NULL) != 0)
		ss_warn("http.limit_failed", r->id, "error", "unavailable",
		        NULL);
}
