/*
 * services/gateway/limit.c - per-address rate limits.
 *
 * Contract (gateway.h): a fixed window per (kind, client address), counted
 * in Redis so that every gateway replica behind a balancer shares one
 * count: an address cannot multiply its allowance by the number of
 * replicas.  One script increments the counter and sets its TTL (the
 * window) when it has none, so every key expires; the answer is the count
 * and the milliseconds left.  Over the limit: 429 too_many_requests with
 * Retry-After (the seconds until the window ends, rounded up).  Redis down:
 * 503, like every other dependency.
 *
 * An IPv6 client is counted by its /64 (runtime/addr.h), as authz counts
 * failed logins per address.
 *
 * Keys: gateway:{rl:<kind>:<client>}, each its own slot (Redis Cluster).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/addr.h"
#include "runtime/log.h"
#include "services/gateway/gateway.h"

ss_script gw_script_limit = {
    "gateway_limit",
    "local n = redis.call('INCR', KEYS[1])\n"
    "local ttl = redis.call('PTTL', KEYS[1])\n"
    "if ttl < 0 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
    "  ttl = tonumber(ARGV[1])\n"
    "end\n"
    "return {n, ttl}\n",
    "",
};

void
gw_limited(gw_req *r, int64_t ttl, const char *what)
{
	char msg[96];
	int secs = (int)((ttl + 999) / 1000);

	ss_metric_add(r->s->m_limited, 1);
	ss_info("http.rate_limited", r->id, "route", r->route->name, NULL);
	secs = secs > 0 ? secs : 1;
	if (r->link != NULL && !r->want_json) {
		gw_link_limited(r, secs);
		return;
	}
	snprintf(msg, sizeof msg, "too many %s; retry in %d seconds", what,
	         secs);
	gw_fail_retry(r, SS_ETOOMANY, msg, secs);
}

void
gw_limit_unavailable(gw_req *r)
{
	r->step = GW_STEP_ROUTE;
	gw_fail(r, SS_EUNAVAIL, "the rate limiter is unavailable; retry later");
}

void
gw_limit_key(const gw_req *r, const char *kind, char key[GW_LIMIT_KEY_MAX])
{
	char client[SS_ADDR_CLIENT_MAX];

	ss_addr_client(r->addr, client, sizeof client);
	snprintf(key, GW_LIMIT_KEY_MAX, "gateway:{rl:%s:%s}", kind, client);
}

bool
gw_limit_answered(gw_req *r, int err, const redisReply *rep)
{
	const char *why = ss_redis_refused(err, rep);

	if (why == NULL &&
	    (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	     rep->element[0]->type != REDIS_REPLY_INTEGER ||
	     rep->element[1]->type != REDIS_REPLY_INTEGER))
		why = "bad reply";
	if (why != NULL) {
		ss_warn("http.limit_failed", r->id, "error", why, NULL);
		gw_limit_unavailable(r);
		return false;
	}
	r->step = GW_STEP_ROUTE;
	return true;
}

/* {count, ms left}; the count includes this request, so the limit-th is
 * still let through. */
static void
on_count(int err, redisReply *rep, void *arg)
{
	gw_req *r = arg;

	if (!gw_limit_answered(r, err, rep))
		return;
	if (rep->element[0]->integer > r->limit) {
		gw_limited(r, rep->element[1]->integer, "requests");
		return;
	}
	r->next(r);
}

void
gw_limit(gw_req *r, const char *kind, int64_t limit, gw_handler next)
{
	char key[GW_LIMIT_KEY_MAX], win[24];
	const char *argv[2];
	size_t lens[2];

	gw_limit_key(r, kind, key);
	snprintf(win, sizeof win, "%" PRId64, r->s->cfg->rate_window_ms);
	argv[0] = key;
	argv[1] = win;
	lens[0] = strlen(key);
	lens[1] = strlen(win);
	r->limit = limit;
	r->next = next;
	r->step = GW_STEP_LIMIT;
	if (r->s->redis == NULL ||
	    ss_redis_eval(r->s->redis, &gw_script_limit, on_count, r, 1, 2,
	                  argv, lens) != 0)
		gw_limit_unavailable(r);
}
