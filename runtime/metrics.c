/*
 * runtime/metrics.c - Prometheus metrics.
 *
 * Contract: a process-wide registry of counters, gauges and histograms,
 * each a (name, labels) pair; the same pair registered twice is the same
 * metric.  Values are C11 atomics, so any thread may update them; the
 * registry itself is guarded by a mutex so registration and rendering may
 * also happen off the loop.  Metrics live as long as the process.
 *
 * ss_metrics_render() writes the text exposition format 0.0.4: one
 * "# HELP" and "# TYPE" per family (all label sets of a name together),
 * histograms as cumulative _bucket{le=...} lines, _sum and _count, and the
 * process metrics studyshare_process_resident_memory_bytes and
 * studyshare_process_start_time_seconds read from /proc.
 *
 * A name without the "studyshare_" prefix gets it.  A counter whose name
 * does not end in "_total", a bad name, or a name reused with another type
 * is a bug: it is logged and NULL is returned; every update function
 * accepts NULL and does nothing.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "runtime/log.h"
#include "runtime/metrics.h"

#define PREFIX   "studyshare_"
#define NBUCKETS 16

typedef enum kind { M_COUNTER, M_GAUGE, M_HISTOGRAM } kind;

static const double bucket_le[NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
};
static const char *const bucket_str[NBUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10",
};

struct ss_metric {
	struct ss_metric *next;
	kind kind;
	char *name; /* with the prefix */
	char *help;
	char *labels;           /* NULL or `a="b",c="d"` */
	_Atomic uint64_t count; /* counter value; histogram observations */
	_Atomic int64_t gauge;
	/* Per-bucket (not cumulative) counts; the last is above 10 s. */
	_Atomic uint64_t buckets[NBUCKETS + 1];
	_Atomic double sum;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static ss_metric *reg_head, *reg_tail;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

static bool
name_ok(const char *n)
{
	if (*n == '\0' || (*n >= '0' && *n <= '9'))
		return false;
	for (; *n != '\0'; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
		      (*n >= '0' && *n <= '9') || *n == '_' || *n == ':'))
			return false;
	return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool
same_labels(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static char *
full_name(const char *name)
{
	size_t n = strlen(name);
	char *s;

	if (strncmp(name, PREFIX, strlen(PREFIX)) == 0)
		return strdup(name);
	s = malloc(strlen(PREFIX) + n + 1);
	if (s != NULL) {
		memcpy(s, PREFIX, strlen(PREFIX));
		memcpy(s + strlen(PREFIX), name, n + 1);
	}
	return s;
}

static ss_metric *
metric_register(kind k, const char *name, const char *help, const char *labels)
{
	ss_metric *m = NULL, *it;
	char *full;
	const char *why = NULL;

	if (name == NULL || (full = full_name(name)) == NULL)
		return NULL;
	if (labels != NULL && *labels == '\0')
		labels = NULL;

	pthread_mutex_lock(&reg_lock);
	if (!name_ok(full))
		why = "bad metric name";
	else if (k == M_COUNTER && !ends_with(full, "_total"))
		why = "a counter's name must end in _total";
	else if (k != M_COUNTER && ends_with(full, "_total"))
		why = "only a counter's name may end in _total";
	for (it = reg_head; why == NULL && it != NULL; it = it->next) {
		if (strcmp(it->name, full) != 0)
			continue;
		if (it->kind != k) {
			why = "name registered with another type";
			break;
		}
		if (same_labels(it->labels, labels)) {
			m = it;
			goto done;
		}
	}
	if (why != NULL)
		goto done;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto done;
	m->kind = k;
	m->name = full;
	m->help = strdup(help != NULL ? help : "");
	m->labels = labels != NULL ? strdup(labels) : NULL;
	if (m->help == NULL || (labels != NULL && m->labels == NULL)) {
		free(m->help);
		free(m->labels);
		free(m);
		m = NULL;
		goto done;
	}
	full = NULL; /* owned by m now */
	if (reg_tail != NULL)
		reg_tail->next = m;
	else
		reg_head = m;
	reg_tail = m;
done:
	pthread_mutex_unlock(&reg_lock);
	if (why != NULL)
		ss_error("metrics.register_failed", NULL, "name", full, "error",
		         why, NULL);
	free(full);
	return m;
}

ss_metric *
ss_counter(const char *name, const char *help, const char *labels)
{
	return metric_register(M_COUNTER, name, help, labels);
}

ss_metric *
ss_gauge(const char *name, const char *help, const char *labels)
{
	return metric_register(M_GAUGE, name, help, labels);
}

ss_metric *
ss_histogram(const char *name, const char *help, const char *labels)
{
	return metric_register(M_HISTOGRAM, name, help, labels);
}

/* Gauges take two's complement: ss_metric_add(g, (uint64_t)-1) is -1. */
void
ss_metric_add(ss_metric *m, uint64_t n)
{
	if (m == NULL)
		return;
	if (m->kind == M_COUNTER)
		atomic_fetch_add_explicit(&m->count, n, memory_order_relaxed);
	else if (m->kind == M_GAUGE)
		atomic_fetch_add_explicit(&m->gauge, (int64_t)n,
		                          memory_order_relaxed);
}

void
ss_metric_set(ss_metric *m, int64_t v)
{
	if (m != NULL && m->kind == M_GAUGE)
		atomic_store_explicit(&m->gauge, v, memory_order_relaxed);
}

void
ss_metric_observe(ss_metric *m, double s)
{
	double old;
	int i;

	if (m == NULL || m->kind != M_HISTOGRAM || !isfinite(s))
		return;
	for (i = 0; i < NBUCKETS && s > bucket_le[i]; i++)
		;
	atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
	old = atomic_load_explicit(&m->sum, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
	    &m->sum, &old, old + s, memory_order_relaxed, memory_order_relaxed))
		;
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

/* HELP text escapes backslash and newline (exposition format 0.0.4). */
static void
render_help(struct evbuffer *out, const char *name, const char *help,
            const char *type)
{
	evbuffer_add_printf(out, "# HELP %s ", name);
	for (const char *p = help; *p != '\0'; p++) {
		if (*p == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, p, 1);
	}
	evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void
render_histogram(struct evbuffer *out, const ss_metric *m)
{
	const char *l = m->labels != NULL ? m->labels : "";
	const char *sep = m->labels != NULL ? "," : "";
	uint64_t cum = 0;
	double sum;

	for (int i = 0; i < NBUCKETS; i++) {
		cum +=
		    atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
		evbuffer_add_printf(out,
		                    "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n",
		                    m->name, l, sep, bucket_str[i], cum);
	}
	/* +Inf and _count come from the same snapshot so they agree. */
	cum +=
	    atomic_load_explicit(&m->buckets[NBUCKETS], memory_order_relaxed);
	evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n",
	                    m->name, l, sep, cum);
	sum = atomic_load_explicit(&m->sum, memory_order_relaxed);
	if (m->labels != NULL) {
		evbuffer_add_printf(out, "%s_sum{%s} %.17g\n", m->name, l, sum);
		evbuffer_add_printf(out, "%s_count{%s} %" PRIu64 "\n", m->name,
		                    l, cum);
	} else {
		evbuffer_add_printf(out, "%s_sum %.17g\n", m->name, sum);
		evbuffer_add_printf(out, "%s_count %" PRIu64 "\n", m->name,
		                    cum);
	}
}

static void
render_one(struct evbuffer *out, const ss_metric *m)
{
	const char *lo = m->labels != NULL ? "{" : "";
	const char *l = m->labels != NULL ? m->labels : "";
	const char *lc = m->labels != NULL ? "}" : "";

	switch (m->kind) {
	case M_COUNTER:
		evbuffer_add_printf(
		    out, "%s%s%s%s %" PRIu64 "\n", m->name, lo, l, lc,
		    atomic_load_explicit(&m->count, memory_order_relaxed));
		break;
	case M_GAUGE:
		evbuffer_add_printf(
		    out, "%s%s%s%s %" PRId64 "\n", m->name, lo, l, lc,
		    atomic_load_explicit(&m->gauge, memory_order_relaxed));
		break;
	case M_HISTOGRAM:
		render_histogram(out, m);
		break;
	}
}

/* Resident set size in bytes, from the second field of /proc/self/statm. */
static int
process_rss(double *out)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size, resident;
	int rv = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%lu %lu", &size, &resident) == 2) {
		*out = (double)resident * (double)sysconf(_SC_PAGESIZE);
		rv = 0;
	}
	fclose(f);
	return rv;
}

/* Boot time (btime of /proc/stat) plus our start in ticks since boot. */
static int
process_start(double *out)
{
	char buf[1024], *p;
	unsigned long long ticks, btime = 0;
	size_t n;
	FILE *f;

	if ((f = fopen("/proc/stat", "r")) == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f) != NULL)
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	if (btime == 0 || (f = fopen("/proc/self/stat", "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields count from its ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* p is at the space before field 3; starttime is field 22. */
	p++;
	for (int field = 3; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu", &ticks) != 1)
		return -1;
	*out = (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static void
render_process(struct evbuffer *out)
{
	double v;

	if (process_rss(&v) == 0) {
		render_help(out, PREFIX "process_resident_memory_bytes",
		            "Resident memory size in bytes.", "gauge");
		evbuffer_add_printf(
		    out, PREFIX "process_resident_memory_bytes %.0f\n", v);
	}
	if (process_start(&v) == 0) {
		render_help(out, PREFIX "process_start_time_seconds",
		            "Start time of the process since the Unix epoch in "
		            "seconds.",
		            "gauge");
		evbuffer_add_printf(
		    out, PREFIX "process_start_time_seconds %.2f\n", v);
	}
}

void
ss_metrics_render(struct evbuffer *out)
{
	const ss_metric *m, *it;
	bool seen;

	pthread_mutex_lock(&reg_lock);
	for (m = reg_head; m != NULL; m = m->next) {
		/* A family is written where its first member was registered. */
		seen = false;
		for (it = reg_head; it != m && !seen; it = it->next)
			seen = strcmp(it->name, m->name) == 0;
		if (seen)
			continue;
		render_help(out, m->name, m->help, kind_names[m->kind]);
		for (it = m; it != NULL; it = it->next)
			if (strcmp(it->name, m->name) == 0)
				render_one(out, it);
	}
	pthread_mutex_unlock(&reg_lock);
	render_process(out);
}

double
ss_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
