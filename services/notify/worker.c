/*
 * services/notify/worker.c - the queue: from a stream entry to an ack.
 *
 * The stream notify:jobs is read by the consumer group "notify"; this
 * process is one consumer (hostname-pid-random).  Two connections: rb
 * carries the reader's XREADGROUP BLOCK and XAUTOCLAIM, one at a time;
 * r carries everything else.
 *
 * The reader keeps up to NT_TASKS_PER_SLOT entries per SMTP slot
 * (concurrency) in hand that are not yet sent, so that a slot always has
 * its next mail while Redis reads and checks the others.  A slot takes
 * two mails (smtp.c: the next one's commands go out with the message
 * before it); a task that is ready to send while every slot holds two
 * waits in sendq, first in first out, so a task waits for at most two
 * transfers before its own starts.  Tasks whose mail went out (or that
 * need no sending) and wait only for their finish do not count: they
 * make room for new entries at once, so the reads keep up while the
 * finishes are under way; as many of those again stop the reads (a Redis
 * slow to finish).  A task whose transfer could no longer end within
 * claim-idle of its delivery is not sent but left pending (NT_LATE; a
 * claim brings it back), so no other worker can take over an entry that
 * is still being sent.  Every claim-idle/2 (at most every second) and at
 * start the reader runs XAUTOCLAIM to take over entries idle for
 * claim-idle, which is more than the SMTP timeout: those of a dead
 * worker, and those parked for a retry whose time has come.
 *
 * One task per entry, each step one callback:
 *
 *   decode (open the box) --bad, or does not open--> DEAD
 *     | ok
 *   CHECK (script: sent? held by another delivery? due?)
 *     | sent already -------------------------------------> DUP
 *     | held by another delivery, or not due yet: parked
 *     |   by the script itself (XCLAIM ... IDLE) ---------> end
 *     | go (the job key holds this delivery: the lock)
 *   render --missing var, CR/LF in a header--------------> DEAD
 *     |
 *   SEND (smtp.c)
 *     | 250 ---------------------------------------------> DONE
 *     | 5xx, or a temporary failure on the last try -----> DEAD
 *     | temporary: RETRY (script: tries+1, due, error,
 *     |            lock released, entry parked) ----------> end
 *
 *   DONE  finish script: the job key becomes "sent" for sent-ttl (the
 *         lock is the marker now), DEL tries if any, XACK, XDEL
 *   DUP   finish script: XACK, XDEL
 *   DEAD  XADD notify:dead (job, error, tries); for a job that names a
 *         bounce_to, the mail.undelivered notice to it (bounce.c); then
 *         the finish script: DEL job key and tries, XACK, XDEL
 *   park  XCLAIM ... IDLE: the entry stays pending with us, its idle time
 *         set so that it becomes claimable when the retry is due (or after
 *         claim-idle, whichever is first; a job claimed before its time is
 *         parked again by CHECK).
 *
 * A job's two keys carry the hash tag {notify:jobs} (notify.h), the slot
 * of the stream itself, so each step is one script even on Redis Cluster,
 * acks included, and one script serves many tasks: CHECK runs once for
 * all the entries of a read, the finish script once for all the tasks
 * that finished in one turn of the loop.  Per mail that is a share of a
 * read, a share of a CHECK and at most one finish, about 1.2 round trips
 * where a script per step on per-job slots (CHECK, DONE, then XACK and
 * XDEL apart) took 3.2.  Only the dead letter goes to another slot, as its
 * own command before the ack.
 *
 * Retries are thus never held in memory and never leave the stream: a
 * job is in the pending list of some consumer from its first delivery to
 * its ack, and whoever claims it next reads its tries and due time from
 * its tries hash.  The finishing commands of DONE and DEAD are retried
 * every second while Redis is away (the mail is sent; acking it is what
 * keeps it from being sent again); other steps that meet an unavailable
 * Redis just let go of the entry, which XAUTOCLAIM brings back later.
 *
 * Acked entries are deleted (XDEL): the stream then holds only jobs not
 * yet sent, so its length is the backlog and it does not grow forever.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "proto/errors.h"
#include "runtime/keycheck.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "services/notify/notify.h"

#define NT_FIN_RETRY_MS 1000
#define NT_FIN_ATTEMPTS 30
#define NT_PAUSE_MS     500
#define NT_GC_EVERY_MS  (10 * 60 * 1000) /* at most; --consumer-idle/2 */
#define NT_STATS_MS     1000
#define NT_ENTRY_MAX    48
#define NT_KEY_MAX      (sizeof NT_TRIES_PREFIX + SS_MAIL_ID_LEN + 4)
/* Entries not yet sent in hand per SMTP slot: one sending, one behind it
 * in the slot (smtp.c), one read and checked meanwhile (measured: see
 * bench/README.md, notify). */
#define NT_TASKS_PER_SLOT 3
/* Tasks per CHECK or finish script: every task a worker holds. */
#define NT_BATCH_MAX (64 * NT_TASKS_PER_SLOT)

/*
 * KEYS: the stream, then per job its job key and tries hash.
 * ARGV: group, consumer, claim-idle ms, then per job its entry.
 * -> per job {state, tries, ms}: state 0 go (the job key holds this
 * delivery, consumer/entry, for claim-idle: the lock), 1 sent already (it
 * holds "sent"), 2 another delivery holds it (ms: until that expires), 3
 * not due yet (ms: until it is).  States 2 and 3 park the entry here: its
 * idle time is set so that XAUTOCLAIM finds it when the wait is over (at
 * most claim-idle).  The lock keeps two deliveries of one id (a producer
 * that pushed a job twice, even in one read) from being sent side by
 * side; it expires after claim-idle, when a dead holder's job may be
 * claimed.  A fresh job costs two commands: SET NX GET and HMGET.
 */
static ss_script check_script = {
    "notify.check",
    "local out, now = {}, nil\n"
    "local idle_max = tonumber(ARGV[3])\n"
    "for i = 4, #ARGV do\n"
    "  local job, tk = KEYS[2 * i - 6], KEYS[2 * i - 5]\n"
    "  local owner = ARGV[2] .. '/' .. ARGV[i]\n"
    "  local state, tries, ms = 0, 0, 0\n"
    "  local was = redis.call('SET', job, owner, 'NX', 'PX', ARGV[3], "
    "'GET')\n"
    "  if was == '" NT_SENT_VALUE "' then\n"
    "    state = 1\n"
    "  elseif was and was ~= owner then\n"
    "    state, ms = 2, math.max(redis.call('PTTL', job), 1)\n"
    "  else\n"
    "    if was then redis.call('PEXPIRE', job, ARGV[3]) end\n"
    "    local t = redis.call('HMGET', tk, 'n', 'due')\n"
    "    tries = tonumber(t[1] or '0')\n"
    "    if t[2] then\n"
    "      if not now then\n"
    "        local tm = redis.call('TIME')\n"
    "        now = tonumber(tm[1]) * 1000 + "
    "math.floor(tonumber(tm[2]) / 1000)\n"
    "      end\n"
    "      local wait = tonumber(t[2]) - now\n"
    "      if wait > 0 then\n"
    "        state, ms = 3, wait\n"
    "        redis.call('DEL', job)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if state >= 2 then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], "
    "'IDLE', idle_max - math.min(ms, idle_max), 'JUSTID')\n"
    "  end\n"
    "  out[#out + 1] = state\n"
    "  out[#out + 1] = tries\n"
    "  out[#out + 1] = ms\n"
    "end\n"
    "return out\n",
    ""};

/*
 * KEYS: the stream, then the keys of each task that has them.
 * ARGV: group, sent-ttl ms, then per task a kind and its entry.  Kinds:
 * 's' sent (keys: job key), 'S' sent after failed tries (keys: job key,
 * tries hash): the job key becomes "sent" for sent-ttl, the tries hash
 * goes; 'x' dead letter stored (keys: job key, tries hash): both go; 'd' a
 * duplicate and 'y' a dead letter without a job id: no keys.  Every entry
 * is then acked and leaves the stream: it holds only jobs not yet done.
 * Each command is idempotent, so a finish that failed halfway is simply
 * run again.
 */
static ss_script fin_script = {
    "notify.finish",
    "local k, ids = 2, {}\n"
    "for i = 3, #ARGV, 2 do\n"
    "  local kind = ARGV[i]\n"
    "  if kind == 's' or kind == 'S' then\n"
    "    redis.call('SET', KEYS[k], '" NT_SENT_VALUE "', 'PX', ARGV[2])\n"
    "    k = k + 1\n"
    "  end\n"
    "  if kind == 'S' then\n"
    "    redis.call('DEL', KEYS[k])\n"
    "    k = k + 1\n"
    "  elseif kind == 'x' then\n"
    "    redis.call('DEL', KEYS[k], KEYS[k + 1])\n"
    "    k = k + 2\n"
    "  end\n"
    "  ids[#ids + 1] = ARGV[i + 1]\n"
    "end\n"
    "redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))\n"
    "redis.call('XDEL', KEYS[1], unpack(ids))\n"
    "return #ids\n",
    ""};

/* KEYS: the stream, tries hash, job key.  ARGV: group, consumer, entry,
 * tries, backoff ms, error, sent-ttl ms, claim-idle ms.  The due time is
 * Redis's clock, so workers on other hosts agree on it; the entry is
 * parked until then (or claim-idle, whichever is first).  -> 1 parked; 0
 * when another delivery holds the job key now (its lock, or "sent"): ours
 * outlived its lock, the job is that delivery's, and nothing is touched
 * (deleting its lock would let a third delivery send beside it). */
ss_script nt_retry_script = {
    "notify.retry",
    "local cur = redis.call('GET', KEYS[3])\n"
    "if cur and cur ~= ARGV[2] .. '/' .. ARGV[3] then return 0 end\n"
    "local now = redis.call('TIME')\n"
    "local ms = tonumber(now[1]) * 1000 + "
    "math.floor(tonumber(now[2]) / 1000)\n"
    "redis.call('HSET', KEYS[2], 'n', ARGV[4], 'due', "
    "string.format('%d', ms + tonumber(ARGV[5])), 'error', ARGV[6])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[7])\n"
    "redis.call('DEL', KEYS[3])\n"
    "local idle_max = tonumber(ARGV[8])\n"
    "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', "
    "idle_max - math.min(tonumber(ARGV[5]), idle_max), 'JUSTID')\n"
    "return 1\n",
    ""};

/* KEYS: the stream.  ARGV: group, min idle ms, "self" or "others", our
 * name.  Deletes consumers that hold nothing and were idle that long:
 * "others" those of workers that were killed or restarted, "self" our own
 * on the way out.  A consumer that holds entries is never deleted: that
 * would drop its entries from the pending list. */
static ss_script gc_script = {
    "notify.gc",
    "local ok, cs = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], "
    "ARGV[1])\n"
    "if not ok then return 0 end\n"
    "local n = 0\n"
    "for _, c in ipairs(cs) do\n"
    "  local f = {}\n"
    "  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "  local mine = f['name'] == ARGV[4]\n"
    "  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) and "
    "mine == (ARGV[3] == 'self') then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n",
    ""};

static ss_script *scripts[] = {&check_script, &fin_script, &nt_retry_script,
                               &gc_script};

enum fin_kind { FIN_DONE, FIN_DUP, FIN_DEAD };
/* Why a job went DEAD: for our own reasons (it does not render: a dead
 * letter for operators only), or for the recipient's, when its sender
 * is told: the server refused it, or it ran out of --max-tries. */
enum given_up { GIVEN_UP_OURS, GIVEN_UP_REFUSED, GIVEN_UP_TRIES };

typedef struct nt_task nt_task;

struct nt_task {
	TAILQ_ENTRY(nt_task) link;
	/* In sendq while waiting for a slot, in finq while waiting for the
	 * next finish script: never both. */
	TAILQ_ENTRY(nt_task) qlink;
	int64_t read_ms; /* delivered to us (monotonic) */
	nt_worker *w;
	char entry[NT_ENTRY_MAX];
	char *raw; /* the job's bytes; NULL when the entry had none */
	size_t rawlen;
	nt_job job;
	bool decoded;
	bool unsent;   /* counted in w->unsent */
	int64_t tries; /* failed tries before this one */
	char why[NT_WHY_MAX];
	char job_key[NT_KEY_MAX];
	char tries_key[NT_KEY_MAX];
	nt_rendered r;
	nt_buf msg;
	double t_send;
	/* finishing */
	enum fin_kind fin;
	bool dead_stored; /* DEAD: the dead letter is in notify:dead */
	bool bounced;     /* DEAD: the sender's notice is queued, or none */
	/* DEAD: why, which says whether the sender is told (bounce.c) */
	enum given_up given_up;
	int attempts;
	struct event *again; /* made on the first failure */
};

/* The tasks of one script call, in the order of its keys and reply. */
struct nt_batch {
	nt_worker *w;
	int n;
	nt_task *t[];
};

enum rd_state { RD_IDLE, RD_GROUP, RD_READ, RD_CLAIM };

struct nt_worker {
	ss_daemon *d;
	const nt_settings *cfg;
	const ss_seal_key *key; /* opens the jobs' boxes */
	const nt_templates *tpl;
	const nt_from *from;
	nt_smtp *smtp;
	ss_redis *r;
	ss_redis *rb;
	ss_keycheck *kc; /* --mail-key against the producers' */
	char consumer[128];
	enum rd_state rd;
	bool group_ok;
	bool claim_due;
	bool backlog;            /* the last read got all it asked for */
	int64_t check_pause_ms;  /* after CHECKs that failed in a row; 0 */
	int64_t check_failed_at; /* monotonic ms of the last one */
	int rd_count;            /* what the outstanding read asked for */
	char cursor[NT_ENTRY_MAX];
	bool stopping;
	bool farewell;  /* the stop-time consumer cleanup is under way */
	bool fin_armed; /* fin_ev is active: finq is flushed this turn */
	int active;     /* tasks */
	int unsent;     /* tasks not yet sent nor finishing: what reads fill */
	int sending;    /* tasks in an SMTP slot */
	int64_t gc_due_ms;
	struct event *kick;
	struct event *pause;
	struct event *claim_t;
	struct event *stats_t;
	struct event *fin_ev;
	TAILQ_HEAD(, nt_task) tasks;
	TAILQ_HEAD(, nt_task) sendq; /* rendered, waiting for a free slot */
	TAILQ_HEAD(, nt_task) finq;  /* waiting for the next finish script */
	ss_metric *m_queue, *m_pending, *m_sent, *m_retried, *m_dead, *m_dup,
	    *m_latency, *m_inflight;
};

static void task_end(nt_task *t);
static void farewell(nt_worker *w);
static void fin_start(nt_task *t, enum fin_kind kind);
static void rd_step(nt_worker *w);
static void send_next(nt_worker *w);

/* ---- small helpers ------------------------------------------------------ */

static void
arm_ms(struct event *ev, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
	                     (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
kick(nt_worker *w)
{
	event_active(w->kick, EV_TIMEOUT, 0);
}

/* The job's id; "" when even that could not be read. */
static const char *
job_id(const nt_task *t)
{
	return t->job.id;
}

int64_t
nt_backoff_ms(const nt_settings *cfg, int64_t tries, uint32_t rnd)
{
	int64_t d = cfg->retry_min_ms;

	for (int64_t i = 1; i < tries && d < cfg->retry_max_ms; i++)
		d *= 2;
	if (d > cfg->retry_max_ms)
		d = cfg->retry_max_ms;
	/* Jitter: a uniform share of the upper half, so that jobs that
	 * failed together do not come back together. */
	return d / 2 + (int64_t)((double)(d - d / 2) * (rnd / 4294967296.0));
}

/* ---- tasks -------------------------------------------------------------- */

static void
task_free(nt_task *t)
{
	if (t->decoded)
		nt_job_free(&t->job);
	nt_rendered_free(&t->r);
	nt_buf_free(&t->msg);
	if (t->again != NULL)
		event_free(t->again);
	free(t->raw);
	free(t);
}

/* The task is over; whatever it did not ack stays pending for a claim. */
static void
task_end(nt_task *t)
{
	nt_worker *w = t->w;

	TAILQ_REMOVE(&w->tasks, t, link);
	w->active--;
	if (t->unsent)
		w->unsent--;
	task_free(t);
	ss_daemon_release(w->d);
	if (w->stopping && w->active == 0)
		farewell(w);
	else
		kick(w);
}

static void
task_log(int level, const char *event, const nt_task *t, const char *reason)
{
	char tries[24];

	snprintf(tries, sizeof tries, "%" PRId64, t->tries);
	ss_log(level, event, job_id(t), "entry", t->entry, "template",
	       t->decoded ? t->job.template : "", "tries", tries, "reason",
	       reason != NULL ? reason : "", NULL);
}

static void
to_dead(nt_task *t, const char *why)
{
	if (why != t->why)
		snprintf(t->why, sizeof t->why, "%s", why);
	fin_start(t, FIN_DEAD);
}

/* A task for a delivered entry; NULL when it needs no CHECK (it went to
 * DEAD, or it could not be made and stays pending for a claim). */
static nt_task *
task_start(nt_worker *w, const char *entry, size_t elen, const char *raw,
           size_t rawlen)
{
	nt_task *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		/* Left pending: a later claim brings it back. */
		ss_error("notify.oom", NULL, "entry", entry, NULL);
		return NULL;
	}
	t->w = w;
	t->read_ms = now_ms();
	snprintf(t->entry, sizeof t->entry, "%.*s", (int)elen, entry);
	TAILQ_INSERT_TAIL(&w->tasks, t, link);
	w->active++;
	w->unsent++;
	t->unsent = true;
	ss_daemon_hold(w->d);
	if (raw == NULL) {
		to_dead(t, "entry has no 'job' field");
		return NULL;
	}
	if ((t->raw = malloc(rawlen > 0 ? rawlen : 1)) == NULL)
		goto oom;
	memcpy(t->raw, raw, rawlen);
	t->rawlen = rawlen;
	switch (nt_job_decode(&t->job, w->key, t->raw, t->rawlen, t->why,
	                      sizeof t->why)) {
	case 0:
		t->decoded = true;
		break;
	case SS_ENOMEM:
		goto oom;
	default:
		to_dead(t, t->why);
		return NULL;
	}
	snprintf(t->job_key, sizeof t->job_key, NT_JOB_PREFIX "%s", t->job.id);
	snprintf(t->tries_key, sizeof t->tries_key, NT_TRIES_PREFIX "%s",
	         t->job.id);
	return t;
oom:
	ss_error("notify.oom", NULL, "entry", t->entry, NULL);
	task_end(t);
	return NULL;
}

/* A batch of n tasks with room for their script's arguments: argv holds
 * nargs pointers.  NULL when out of memory. */
static struct nt_batch *
batch_new(int n, int nargs, const char ***argv)
{
	struct nt_batch *b = malloc(sizeof(*b) + (size_t)n * sizeof(b->t[0]));

	*argv = malloc((size_t)nargs * sizeof(**argv));
	if (b == NULL || *argv == NULL) {
		free(b);
		free(*argv);
		return NULL;
	}
	b->w = NULL;
	b->n = n;
	return b;
}

/* ---- finishing: DONE, DUP, DEAD ----------------------------------------- */

static void fin_enqueue(nt_task *t);
static void dead_store(nt_task *t);
static void bounce(nt_task *t);

/* Runs when a failed finishing step is due again. */
static void
fin_again(evutil_socket_t fd, short what, void *arg)
{
	nt_task *t = arg;

	(void)fd;
	(void)what;
	if (t->fin == FIN_DEAD && !t->dead_stored)
		dead_store(t);
	else if (t->fin == FIN_DEAD && !t->bounced)
		bounce(t);
	else
		fin_enqueue(t);
}

/* A finishing step failed: again in a second, for up to 30 attempts. */
static void
fin_failed(nt_task *t, const char *reason)
{
	if (t->attempts == 1)
		task_log(SS_LOG_WARN, "notify.redis_failed", t, reason);
	if (t->attempts >= NT_FIN_ATTEMPTS ||
	    (t->again == NULL &&
	     (t->again = evtimer_new(t->w->d->base, fin_again, t)) == NULL)) {
		/* Pending still: a later claim retries. */
		task_log(SS_LOG_ERROR, "notify.finish_failed", t,
		         "giving up; left pending");
		task_end(t);
		return;
	}
	arm_ms(t->again, NT_FIN_RETRY_MS);
}

static void
fin_complete(nt_task *t)
{
	nt_worker *w = t->w;

	switch (t->fin) {
	case FIN_DONE:
		task_log(SS_LOG_DEBUG, "notify.sent", t, NULL);
		break;
	case FIN_DUP:
		ss_metric_add(w->m_dup, 1);
		task_log(SS_LOG_INFO, "notify.duplicate", t,
		         "already sent: acked without sending");
		break;
	case FIN_DEAD:
		break;
	}
	task_end(t);
}

static void
on_dead_stored(int err, redisReply *rep, void *arg)
{
	nt_task *t = arg;

	if (err != 0 || rep->type == REDIS_REPLY_ERROR) {
		fin_failed(t, err != 0 ? "redis unavailable" : rep->str);
		return;
	}
	t->dead_stored = true;
	ss_metric_add(t->w->m_dead, 1);
	task_log(SS_LOG_ERROR, "notify.dead", t, t->why);
	t->bounced = !t->decoded || t->given_up == GIVEN_UP_OURS ||
	             !nt_bounce_due(&t->job);
	if (t->bounced)
		fin_enqueue(t);
	else
		bounce(t);
}

static void
on_bounced(int err, redisReply *rep, void *arg)
{
	nt_task *t = arg;

	if (err != 0 || rep->type == REDIS_REPLY_ERROR) {
		fin_failed(t, err != 0 ? "redis unavailable" : rep->str);
		return;
	}
	t->bounced = true;
	task_log(SS_LOG_INFO, "notify.bounced", t,
	         "the sender is told (mail.undelivered)");
	fin_enqueue(t);
}

/* The sender's notice, before the ack: acked first, a crash would lose
 * it; queued twice (a retry, a claim), its derived id sends it once. */
static void
bounce(nt_task *t)
{
	int rv;

	t->attempts++;
	rv = nt_bounce_push(t->w->r, t->w->key, &t->job, t->why,
	                    t->given_up == GIVEN_UP_REFUSED,
	                    (int64_t)time(NULL), on_bounced, t);
	if (rv == SS_EBADREQ) {
		task_log(SS_LOG_WARN, "notify.bounce_failed", t,
		         "the notice cannot be made");
		t->bounced = true;
		fin_enqueue(t);
	} else if (rv != 0) {
		fin_failed(t, "redis unavailable");
	}
}

/* The dead letter first: acking before it is stored could lose the job. */
static void
dead_store(nt_task *t)
{
	nt_worker *w = t->w;
	char tries[24], maxlen[24];
	const char *argv[16];
	size_t lens[16];
	int n = 0;

	snprintf(tries, sizeof tries, "%" PRId64, t->tries);
	snprintf(maxlen, sizeof maxlen, "%" PRId64, w->cfg->dead_max);
#define ARG(s, l) (argv[n] = (s), lens[n++] = (l))
#define ARGS(s)   ARG(s, strlen(s))
	ARGS("XADD");
	ARGS(NT_DEAD_STREAM);
	ARGS("MAXLEN");
	ARGS("~");
	ARGS(maxlen);
	ARGS("*");
	ARGS("id");
	ARGS(job_id(t));
	ARGS("entry");
	ARGS(t->entry);
	ARGS("error");
	ARGS(t->why);
	ARGS("tries");
	ARGS(tries);
	ARGS("job");
	ARG(t->raw != NULL ? t->raw : "", t->rawlen);
#undef ARGS
#undef ARG
	t->attempts++;
	if (ss_redis_cmdargv(w->r, on_dead_stored, t, n, argv, lens) != 0)
		fin_failed(t, "redis unavailable");
}

static void
on_fin(int err, redisReply *rep, void *arg)
{
	struct nt_batch *b = arg;
	bool ok = err == 0 && rep->type != REDIS_REPLY_ERROR;

	for (int i = 0; i < b->n; i++) {
		if (ok)
			fin_complete(b->t[i]);
		else
			fin_failed(b->t[i],
			           err != 0 ? "redis unavailable" : rep->str);
	}
	free(b);
}

/* One finish script for up to NT_BATCH_MAX tasks of finq. */
static void
fin_flush_some(nt_worker *w)
{
	char ttl[24];
	const char **argv;
	struct nt_batch *b;
	nt_task *t;
	int n = 0, nkeys = 1, argc;

	TAILQ_FOREACH(t, &w->finq, qlink)
	{
		if (n == NT_BATCH_MAX)
			break;
		n++;
	}
	/* At most 2 keys and 2 arguments per task. */
	if ((b = batch_new(n, 1 + 4 * n + 2, &argv)) == NULL) {
		while (n-- > 0) {
			t = TAILQ_FIRST(&w->finq);
			TAILQ_REMOVE(&w->finq, t, qlink);
			t->attempts++;
			fin_failed(t, "out of memory");
		}
		return;
	}
	argv[0] = SS_MAILQ_STREAM;
	for (int i = 0; i < n; i++) {
		t = b->t[i] = TAILQ_FIRST(&w->finq);
		TAILQ_REMOVE(&w->finq, t, qlink);
		t->attempts++;
		/* Without an id there is no job key or tries hash. */
		if (t->decoded && t->fin != FIN_DUP)
			argv[nkeys++] = t->job_key;
		if (t->decoded && t->fin != FIN_DUP &&
		    (t->fin == FIN_DEAD || t->tries > 0))
			argv[nkeys++] = t->tries_key;
	}
	snprintf(ttl, sizeof ttl, "%" PRId64, w->cfg->sent_ttl_ms);
	argc = nkeys;
	argv[argc++] = NT_GROUP;
	argv[argc++] = ttl;
	for (int i = 0; i < n; i++) {
		t = b->t[i];
		if (t->fin == FIN_DONE)
			argv[argc++] = t->tries > 0 ? "S" : "s";
		else if (t->fin == FIN_DUP)
			argv[argc++] = "d";
		else
			argv[argc++] = t->decoded ? "x" : "y";
		argv[argc++] = t->entry;
	}
	if (ss_redis_eval(w->r, &fin_script, on_fin, b, nkeys, argc, argv,
	                  NULL) != 0)
		on_fin(SS_EUNAVAIL, NULL, b);
	free(argv);
}

/* Runs once per loop turn in which tasks finished: one script for all. */
static void
on_fin_flush(evutil_socket_t fd, short what, void *arg)
{
	nt_worker *w = arg;

	(void)fd;
	(void)what;
	w->fin_armed = false;
	while (!TAILQ_EMPTY(&w->finq))
		fin_flush_some(w);
}

static void
fin_enqueue(nt_task *t)
{
	nt_worker *w = t->w;

	TAILQ_INSERT_TAIL(&w->finq, t, qlink);
	if (!w->fin_armed) {
		w->fin_armed = true;
		event_active(w->fin_ev, EV_TIMEOUT, 0);
	}
}

static void
fin_start(nt_task *t, enum fin_kind kind)
{
	t->fin = kind;
	t->attempts = 0;
	/* Done with, but for Redis: its room goes to a new job. */
	if (t->unsent) {
		t->unsent = false;
		t->w->unsent--;
		kick(t->w);
	}
	if (kind == FIN_DEAD)
		dead_store(t);
	else
		fin_enqueue(t);
}

/* ---- SEND --------------------------------------------------------------- */

static void on_sent(void *arg, enum nt_outcome out, const char *why);

/* Hands a rendered task to a slot. */
static void
send_start(nt_task *t)
{
	nt_worker *w = t->w;
	int rv;

	t->t_send = ss_now();
	/* Its transfer must end before claim-idle, when another worker may
	 * claim the entry (and the lock expires): it must start by then less
	 * the SMTP timeout, else it is left pending (NT_LATE). */
	rv = nt_smtp_send(w->smtp, t->job.to, t->msg.p, t->msg.n,
	                  t->read_ms + w->cfg->claim_idle_ms -
	                      w->cfg->smtp_timeout_ms,
	                  on_sent, t);
	if (rv != 0) {
		/* Ours, not the job's: left pending for a later claim. */
		ss_error("notify.send_failed", t->job.id, "entry", t->entry,
		         "reason", ss_err_word(rv), NULL);
		task_end(t);
		return;
	}
	w->sending++;
	ss_metric_add(w->m_inflight, 1);
}

/* Fills the slots from sendq, oldest first: two mails each, one sending
 * and one next (smtp.c). */
static void
send_next(nt_worker *w)
{
	nt_task *t;

	while (w->sending < 2 * (int)w->cfg->concurrency &&
	       (t = TAILQ_FIRST(&w->sendq)) != NULL) {
		TAILQ_REMOVE(&w->sendq, t, qlink);
		send_start(t);
	}
}

static void
on_retried(int err, redisReply *rep, void *arg)
{
	nt_task *t = arg;

	/* Stored and parked, or not: either way a claim brings it back. */
	if (err == 0 && rep->type == REDIS_REPLY_ERROR)
		task_log(SS_LOG_WARN, "notify.redis_failed", t, rep->str);
	task_end(t);
}

static void
task_retry(nt_task *t)
{
	nt_worker *w = t->w;
	char n[24], ms[24], ttl[24], idle[24];
	int64_t backoff = nt_backoff_ms(w->cfg, t->tries, randombytes_random());
	const char *argv[11] = {
	    SS_MAILQ_STREAM, t->tries_key, t->job_key, NT_GROUP,
	    w->consumer,     t->entry,     n,          ms,
	    t->why,          ttl,          idle};

	snprintf(n, sizeof n, "%" PRId64, t->tries);
	snprintf(ms, sizeof ms, "%" PRId64, backoff);
	snprintf(ttl, sizeof ttl, "%" PRId64, w->cfg->sent_ttl_ms);
	snprintf(idle, sizeof idle, "%" PRId64, w->cfg->claim_idle_ms);
	ss_metric_add(w->m_retried, 1);
	task_log(SS_LOG_WARN, "notify.retry", t, t->why);
	if (ss_redis_eval(w->r, &nt_retry_script, on_retried, t, 3, 11, argv,
	                  NULL) != 0)
		task_end(t);
}

/* A slot's transfer is over (on the loop). */
static void
on_sent(void *arg, enum nt_outcome out, const char *why)
{
	nt_task *t = arg;
	nt_worker *w = t->w;

	ss_metric_add(w->m_inflight, (uint64_t)-1);
	w->sending--;
	/* The slot first: its next mail goes out while this one finishes. */
	send_next(w);
	if (out == NT_LATE) {
		task_log(SS_LOG_WARN, "notify.send_late", t,
		         "waited too long for a slot: left for a claim");
		task_end(t);
		return;
	}
	if (out == NT_SENT) {
		ss_metric_observe(w->m_latency, ss_now() - t->t_send);
		ss_metric_add(w->m_sent, 1);
		fin_start(t, FIN_DONE);
		return;
	}
	t->tries++;
	snprintf(t->why, sizeof t->why, "%s", why);
	if (out == NT_PERMFAIL) {
		t->given_up = GIVEN_UP_REFUSED;
		to_dead(t, t->why);
		return;
	}
	if (t->tries >= w->cfg->max_tries) {
		char last[NT_WHY_MAX];

		snprintf(last, sizeof last, "%s", t->why);
		snprintf(t->why, sizeof t->why,
		         "gave up after %" PRId64 " tries; last error: %.200s",
		         t->tries, last);
		t->given_up = GIVEN_UP_TRIES;
		to_dead(t, t->why);
		return;
	}
	task_retry(t);
}

static void
task_send(nt_task *t)
{
	nt_worker *w = t->w;
	const nt_mailtpl *m = nt_templates_get(w->tpl, t->job.template);
	nt_mail mail;
	int rv;

	if (m == NULL) {
		to_dead(t, "template not loaded");
		return;
	}
	rv = nt_mailtpl_render(m, t->job.vars, t->job.nvars, &t->r, t->why,
	                       sizeof t->why);
	if (rv == SS_ENOMEM)
		goto fail;
	if (rv != 0) {
		to_dead(t, t->why);
		return;
	}
	mail.from = w->from;
	mail.to = t->job.to;
	mail.id = t->job.id;
	mail.r = &t->r;
	mail.date = time(NULL);
	if ((rv = nt_mime_build(&t->msg, &mail)) != 0)
		goto fail;
	TAILQ_INSERT_TAIL(&w->sendq, t, qlink);
	send_next(w);
	return;
fail:
	/* Ours, not the job's: left pending for a later claim. */
	ss_error("notify.send_failed", t->job.id, "entry", t->entry, "reason",
	         ss_err_word(rv), NULL);
	task_end(t);
}

/* ---- CHECK -------------------------------------------------------------- */

static int64_t
elem_int(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	return r->element[i]->integer;
}

/* One task's answer from the CHECK script. */
static void
check_done(nt_task *t, int64_t state, int64_t tries, int64_t wait)
{
	if (state < 0 || state > 3 || tries < 0 || wait < 0) {
		task_log(SS_LOG_WARN, "notify.redis_failed", t, "bad reply");
		task_end(t);
		return;
	}
	t->tries = tries;
	if (state == 1) {
		fin_start(t, FIN_DUP);
	} else if (state == 2 || state == 3) {
		task_end(t); /* parked by the script */
	} else if (tries >= t->w->cfg->max_tries) {
		/* max-tries was lowered since, or a finish got lost. */
		t->given_up = GIVEN_UP_TRIES;
		to_dead(t, "too many tries");
	} else {
		task_send(t);
	}
}

static void
on_check(int err, redisReply *rep, void *arg)
{
	struct nt_batch *b = arg;

	if (err == 0 && (rep->type != REDIS_REPLY_ARRAY ||
	                 rep->elements != (size_t)b->n * 3)) {
		for (int i = 0; i < b->n; i++)
			task_log(SS_LOG_WARN, "notify.redis_failed", b->t[i],
			         rep->type == REDIS_REPLY_ERROR ? rep->str
			                                        : "bad reply");
		err = SS_EINTERNAL;
	}
	/* The entries stay pending under this consumer until --claim-idle:
	 * reading on while CHECK fails (Redis at maxmemory, say) would take
	 * the whole backlog from the other workers.  So the reader waits,
	 * longer after each failure in a row. */
	if (err != 0) {
		nt_worker *w = b->w;
		int64_t now = now_ms();
		/* Failures long apart start again at the shortest pause. */
		int64_t ms = now - w->check_failed_at > w->cfg->claim_idle_ms
		                 ? 0
		                 : w->check_pause_ms * 2;

		if (ms < NT_PAUSE_MS)
			ms = NT_PAUSE_MS;
		if (ms > w->cfg->claim_idle_ms)
			ms = w->cfg->claim_idle_ms;
		w->check_pause_ms = ms;
		w->check_failed_at = now;
		arm_ms(w->pause, ms);
	} else {
		b->w->check_pause_ms = 0;
	}
	for (int i = 0; i < b->n; i++) {
		size_t k = (size_t)i * 3;

		if (err != 0)
			task_end(b->t[i]);
		else
			check_done(b->t[i], elem_int(rep, k),
			           elem_int(rep, k + 1), elem_int(rep, k + 2));
	}
	free(b);
}

/* One CHECK script for the n tasks of one read. */
static void
check_batch(nt_worker *w, nt_task **ts, int n)
{
	char idle[24];
	const char **argv;
	struct nt_batch *b;
	int nkeys = 1 + 2 * n, argc = 0;

	if (n == 0)
		return;
	if ((b = batch_new(n, nkeys + 3 + n, &argv)) == NULL) {
		while (n-- > 0)
			task_end(ts[n]); /* left pending */
		return;
	}
	b->w = w;
	argv[argc++] = SS_MAILQ_STREAM;
	for (int i = 0; i < n; i++) {
		b->t[i] = ts[i];
		argv[argc++] = ts[i]->job_key;
		argv[argc++] = ts[i]->tries_key;
	}
	snprintf(idle, sizeof idle, "%" PRId64, w->cfg->claim_idle_ms);
	argv[argc++] = NT_GROUP;
	argv[argc++] = w->consumer;
	argv[argc++] = idle;
	for (int i = 0; i < n; i++)
		argv[argc++] = ts[i]->entry;
	if (ss_redis_eval(w->r, &check_script, on_check, b, nkeys, argc, argv,
	                  NULL) != 0)
		on_check(SS_EUNAVAIL, NULL, b);
	free(argv);
}

/* ---- the reader --------------------------------------------------------- */

/* Starts a task per entry [id, [field, value, ...]] of an array, and one
 * CHECK for all of them. */
static void
start_entries(nt_worker *w, const redisReply *list)
{
	nt_task *ts[NT_BATCH_MAX], *t;
	int n = 0;

	for (size_t i = 0; list != NULL && i < list->elements; i++) {
		const redisReply *e = list->element[i];
		const redisReply *id, *fields;
		const char *raw = NULL;
		size_t rawlen = 0;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
			continue; /* deleted meanwhile */
		id = e->element[0];
		fields = e->element[1];
		if (id->type != REDIS_REPLY_STRING || id->len >= NT_ENTRY_MAX)
			continue;
		for (size_t k = 0; fields->type == REDIS_REPLY_ARRAY &&
		                   k + 1 < fields->elements;
		     k += 2) {
			const redisReply *f = fields->element[k];
			const redisReply *v = fields->element[k + 1];

			if (f->type == REDIS_REPLY_STRING &&
			    v->type == REDIS_REPLY_STRING &&
			    f->len == sizeof SS_MAILQ_FIELD - 1 &&
			    memcmp(f->str, SS_MAILQ_FIELD, f->len) == 0) {
				raw = v->str;
				rawlen = v->len;
				break;
			}
		}
		t = task_start(w, id->str, id->len, raw, rawlen);
		if (t != NULL)
			ts[n++] = t;
		if (n == NT_BATCH_MAX) {
			check_batch(w, ts, n);
			n = 0;
		}
	}
	check_batch(w, ts, n);
}
/* A read that failed waits ms, or the pause of recent failed CHECKs if
 * that is longer (both say Redis is in trouble). */
static void
rd_pause(nt_worker *w, int64_t ms)
{
	bool recent = now_ms() - w->check_failed_at <= w->cfg->claim_idle_ms;

	w->rd = RD_IDLE;
	if (recent && w->check_pause_ms > ms)
		ms = w->check_pause_ms;
	arm_ms(w->pause, ms);
}

static bool
is_nogroup(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ERROR &&
	       strncmp(rep->str, "NOGROUP", 7) == 0;
}

static void
on_read(int err, redisReply *rep, void *arg)
{
	nt_worker *w = arg;

	if (w->stopping)
		return;
	if (err != 0) {
		rd_pause(w, NT_PAUSE_MS);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		ss_warn("notify.read_failed", NULL, "reason", rep->str, NULL);
		if (is_nogroup(rep))
			w->group_ok = false;
		rd_pause(w, NT_PAUSE_MS);
		return;
	}
	w->rd = RD_IDLE;
	w->backlog = false;
	/* [[stream, [entries]]], or nil when BLOCK ran out. */
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
	    rep->element[0]->type == REDIS_REPLY_ARRAY &&
	    rep->element[0]->elements == 2) {
		w->backlog = rep->element[0]->element[1]->elements ==
		             (size_t)w->rd_count;
		start_entries(w, rep->element[0]->element[1]);
	}
	rd_step(w);
}

static void
on_claim(int err, redisReply *rep, void *arg)
{
	nt_worker *w = arg;
	const redisReply *c;

	if (w->stopping)
		return;
	if (err != 0) {
		rd_pause(w, NT_PAUSE_MS);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING) {
		ss_warn("notify.claim_failed", NULL, "reason",
		        rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply",
		        NULL);
		if (is_nogroup(rep))
			w->group_ok = false;
		rd_pause(w, NT_PAUSE_MS);
		return;
	}
	w->rd = RD_IDLE;
	c = rep->element[0];
	snprintf(w->cursor, sizeof w->cursor, "%.*s", (int)c->len, c->str);
	if (strcmp(w->cursor, "0-0") == 0)
		w->claim_due = false;
	start_entries(w, rep->element[1]);
	rd_step(w);
}

static void
on_gc(int err, redisReply *rep, void *arg)
{
	(void)arg;
	if (err == 0 && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
		char n[24];

		snprintf(n, sizeof n, "%lld", rep->integer);
		ss_info("notify.consumers_removed", NULL, "count", n, NULL);
	}
}

static int
run_gc(nt_worker *w, int64_t idle_ms, const char *mode, ss_redis_fn fn)
{
	char idle[24];
	const char *argv[5] = {SS_MAILQ_STREAM, NT_GROUP, idle, mode,
	                       w->consumer};

	snprintf(idle, sizeof idle, "%" PRId64, idle_ms);
	return ss_redis_eval(w->r, &gc_script, fn, w, 1, 5, argv, NULL);
}

static void
on_group(int err, redisReply *rep, void *arg)
{
	nt_worker *w = arg;

	if (w->stopping)
		return;
	if (err != 0 || (rep->type == REDIS_REPLY_ERROR &&
	                 strncmp(rep->str, "BUSYGROUP", 9) != 0)) {
		if (err == 0)
			ss_warn("notify.group_failed", NULL, "reason", rep->str,
			        NULL);
		rd_pause(w, NT_PAUSE_MS);
		return;
	}
	w->rd = RD_IDLE;
	w->group_ok = true;
	/* A fresh start: take over what dead workers left behind. */
	w->claim_due = true;
	snprintf(w->cursor, sizeof w->cursor, "0-0");
	ss_info("notify.group_ready", NULL, "consumer", w->consumer, NULL);
	rd_step(w);
}

static void
rd_step(nt_worker *w)
{
	int cap = (int)w->cfg->concurrency * NT_TASKS_PER_SLOT;
	int room = cap - w->unsent;
	int rv;

	if (w->stopping || w->rd != RD_IDLE || evtimer_pending(w->pause, NULL))
		return;
	if (!w->group_ok) {
		/* From the start ("0"): jobs queued before any worker ran
		 * are sent too. */
		w->rd = RD_GROUP;
		rv = ss_redis_cmd(w->r, on_group, w,
		                  "XGROUP CREATE %s %s 0 MKSTREAM",
		                  SS_MAILQ_STREAM, NT_GROUP);
	} else if (!ss_redis_ready(w->r)) {
		/* Entries read now could not be checked (CHECK goes on this
		 * connection): they would wait out --claim-idle here. */
		arm_ms(w->pause, NT_PAUSE_MS);
		return;
	} else if (!ss_keycheck_ok(w->kc)) {
		/* A --mail-key that is not the producers' would open no job
		 * and dead-letter every one: leave them to workers whose key
		 * is (runtime/keycheck.h). */
		arm_ms(w->pause, NT_PAUSE_MS);
		return;
	} else if (room <= 0 || (w->backlog && room < (cap + 1) / 2) ||
	           w->active - w->unsent >= cap) {
		/* With a backlog, read for half the tasks at a time: fewer,
		 * larger reads (measured: +15% mails/s).  Without one, any
		 * free task reads, so a new job never waits for a read.  Sent
		 * jobs whose finish is under way make no room to fill, but
		 * as many again of them (Redis slow to finish) stop reads. */
		return;
	} else if (w->claim_due) {
		w->rd = RD_CLAIM;
		rv = ss_redis_cmd(
		    w->rb, on_claim, w, "XAUTOCLAIM %s %s %s %lld %s COUNT %d",
		    SS_MAILQ_STREAM, NT_GROUP, w->consumer,
		    (long long)w->cfg->claim_idle_ms, w->cursor, room);
	} else {
		w->rd = RD_READ;
		w->rd_count = room;
		rv = ss_redis_cmd(w->rb, on_read, w,
		                  "XREADGROUP GROUP %s %s COUNT %d BLOCK %lld "
		                  "STREAMS %s >",
		                  NT_GROUP, w->consumer, room,
		                  (long long)w->cfg->block_ms, SS_MAILQ_STREAM);
	}
	if (rv != 0)
		rd_pause(w, NT_PAUSE_MS);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rd_step(arg);
}

static void
on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
	nt_worker *w = arg;

	(void)fd;
	(void)what;
	w->claim_due = true;
	rd_step(w);
}

/* ---- stats -------------------------------------------------------------- */

static void
on_xlen(int err, redisReply *rep, void *arg)
{
	nt_worker *w = arg;

	if (err == 0 && rep->type == REDIS_REPLY_INTEGER)
		ss_metric_set(w->m_queue, rep->integer);
}

static void
on_xpending(int err, redisReply *rep, void *arg)
{
	nt_worker *w = arg;

	/* [count, min id, max id, [[consumer, count], ...]] */
	if (err == 0 && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER)
		ss_metric_set(w->m_pending, rep->element[0]->integer);
}

static void
on_stats_timer(evutil_socket_t fd, short what, void *arg)
{
	nt_worker *w = arg;

	(void)fd;
	(void)what;
	if (ss_redis_ready(w->r)) {
		ss_redis_cmd(w->r, on_xlen, w, "XLEN %s", SS_MAILQ_STREAM);
		if (w->group_ok)
			ss_redis_cmd(w->r, on_xpending, w, "XPENDING %s %s",
			             SS_MAILQ_STREAM, NT_GROUP);
		if (w->group_ok && now_ms() >= w->gc_due_ms) {
			int64_t every = w->cfg->consumer_idle_ms / 2;

			if (every > NT_GC_EVERY_MS)
				every = NT_GC_EVERY_MS;
			w->gc_due_ms = now_ms() + every;
			run_gc(w, w->cfg->consumer_idle_ms, "others", on_gc);
		}
	}
	arm_ms(w->stats_t, NT_STATS_MS);
}

/* ---- start and stop ----------------------------------------------------- */

static bool
probe(void *arg, const char **why)
{
	nt_worker *w = arg;

	if (!w->group_ok) {
		*why = "consumer group not created yet";
		return false;
	}
	return true;
}

static void
on_farewell(int err, redisReply *rep, void *arg)
{
	nt_worker *w = arg;

	(void)err;
	(void)rep;
	ss_daemon_release(w->d);
}

/* Stopping and nothing in flight: leave the group if we hold nothing
 * (entries parked for a retry keep the consumer; a claim takes them). */
static void
farewell(nt_worker *w)
{
	if (!w->farewell)
		return;
	w->farewell = false;
	if (run_gc(w, 0, "self", on_farewell) != 0)
		ss_daemon_release(w->d);
}

static void
on_stop(void *arg)
{
	nt_worker *w = arg;
	ss_redis *rb = w->rb;

	w->stopping = true;
	evtimer_del(w->claim_t);
	evtimer_del(w->stats_t);
	evtimer_del(w->pause);
	/* Ends a blocked XREADGROUP now: nothing new is claimed.  Entries
	 * Redis delivered at that very moment stay pending for a claim. */
	w->rb = NULL;
	ss_redis_close(rb);
	w->rd = RD_IDLE;
	ss_info("notify.stopping", NULL, "consumer", w->consumer, NULL);
	if (w->group_ok) {
		/* Held until the farewell has been answered. */
		ss_daemon_hold(w->d);
		w->farewell = true;
		if (w->active == 0)
			farewell(w);
	}
}

int
nt_worker_start(nt_worker **out, ss_daemon *d, const nt_settings *cfg,
                const ss_seal_key *key, const nt_templates *tpl,
                const nt_from *from, nt_smtp *smtp)
{
	const char *const keys[] = {"mail-key", "mail", cfg->mail_key, NULL};
	nt_worker *w;
	char host[64] = "notify";
	int rv = SS_ENOMEM;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SS_ENOMEM;
	TAILQ_INIT(&w->tasks);
	TAILQ_INIT(&w->sendq);
	TAILQ_INIT(&w->finq);
	w->d = d;
	w->cfg = cfg;
	w->key = key;
	w->tpl = tpl;
	w->from = from;
	w->smtp = smtp;
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	snprintf(w->consumer, sizeof w->consumer, "%s-%ld-%08" PRIx32, host,
	         (long)getpid(), randombytes_random());
	w->gc_due_ms = now_ms();
	w->m_queue = ss_gauge("notify_queue_length",
	                      "Jobs in notify:jobs not yet sent (XLEN; the "
	                      "same for every worker)",
	                      NULL);
	w->m_pending = ss_gauge("notify_pending",
	                        "Jobs delivered to a worker and not yet "
	                        "acknowledged, retries waiting included "
	                        "(XPENDING; the same for every worker)",
	                        NULL);
	w->m_sent = ss_counter("notify_sent_total",
	                       "Mails the SMTP server accepted", NULL);
	w->m_retried =
	    ss_counter("notify_retried_total",
	               "Temporary failures scheduled for a retry", NULL);
	w->m_dead = ss_counter("notify_dead_total",
	                       "Jobs moved to the dead-letter stream", NULL);
	w->m_dup = ss_counter("notify_duplicates_total",
	                      "Jobs acked without sending: already sent", NULL);
	w->m_latency = ss_histogram("notify_send_seconds",
	                            "Time from handing a mail to an SMTP slot "
	                            "to the server's acceptance",
	                            NULL);
	w->m_inflight = ss_gauge("notify_inflight",
	                         "Mails handed to SMTP slots, sent or next in "
	                         "line",
	                         NULL);
	if ((w->kick = event_new(d->base, -1, 0, on_kick, w)) == NULL ||
	    (w->pause = evtimer_new(d->base, on_kick, w)) == NULL ||
	    (w->claim_t = event_new(d->base, -1, EV_PERSIST, on_claim_timer,
	                            w)) == NULL ||
	    (w->stats_t = evtimer_new(d->base, on_stats_timer, w)) == NULL ||
	    (w->fin_ev = event_new(d->base, -1, 0, on_fin_flush, w)) == NULL)
		goto fail;
	if ((rv = ss_redis_open(&w->r, d, "redis", cfg->common.redis_addr,
	                        cfg->common.redis_user,
	                        cfg->common.redis_password,
	                        (int)cfg->common.redis_timeout_ms, scripts,
	                        sizeof scripts / sizeof scripts[0])) != 0 ||
	    (rv = ss_redis_open(
	         &w->rb, d, "redis-blocking", cfg->common.redis_addr,
	         cfg->common.redis_user, cfg->common.redis_password,
	         (int)(cfg->common.redis_timeout_ms + cfg->block_ms), NULL,
	         0)) != 0 ||
	    (rv = ss_keycheck_start(&w->kc, d, w->r, keys)) != 0 ||
	    (rv = ss_daemon_add_probe(d, "queue", probe, w)) != 0 ||
	    (rv = ss_daemon_on_stop(d, on_stop, w)) != 0)
		goto fail;
	/* XAUTOCLAIM every claim-idle/2, at most every second: a parked
	 * retry goes out at most that late. */
	arm_ms(w->claim_t,
	       cfg->claim_idle_ms / 2 < 1000 ? cfg->claim_idle_ms / 2 : 1000);
	arm_ms(w->stats_t, NT_STATS_MS);
	/* Redis is not connected yet: the reader starts when it is. */
	arm_ms(w->pause, 50);
	ss_info("notify.consumer", NULL, "consumer", w->consumer, NULL);
	*out = w;
	return 0;
fail:
	nt_worker_close(w);
	return rv;
}

void
nt_worker_close(nt_worker *w)
{
	nt_task *t;

	if (w == NULL)
		return;
	/* Tasks cut short by the drain deadline stay pending in Redis.  The
	 * SMTP side is closed first: no transfer still reads a message.  The
	 * connections next: closing answers their pending commands, whose
	 * callbacks still see their tasks (and start nothing new). */
	w->stopping = true;
	w->farewell = false;
	if (w->rb != NULL)
		ss_redis_close(w->rb);
	ss_keycheck_close(w->kc);
	if (w->r != NULL)
		ss_redis_close(w->r);
	while ((t = TAILQ_FIRST(&w->tasks)) != NULL) {
		TAILQ_REMOVE(&w->tasks, t, link);
		task_free(t);
	}
	if (w->kick != NULL)
		event_free(w->kick);
	if (w->pause != NULL)
		event_free(w->pause);
	if (w->claim_t != NULL)
		event_free(w->claim_t);
	if (w->stats_t != NULL)
		event_free(w->stats_t);
	if (w->fin_ev != NULL)
		event_free(w->fin_ev);
	free(w);
}
