/*
 * runtime/metrics.h - Prometheus metrics.
 *
 * Counters, gauges and histograms registered by name and a fixed label set
 * (a literal like "type=\"authz.check\"", or NULL).  Never put a user id,
 * a token or anything unbounded in a label.  Registering the same name and
 * labels twice returns the same metric.  Updates are atomic, so worker
 * threads may update; registration happens on the loop thread.
 * Names get the "studyshare_" prefix; counters must end in "_total" and use
 * base units (seconds, bytes).
 */
#ifndef SS_RUNTIME_METRICS_H
#define SS_RUNTIME_METRICS_H

#include <stdint.h>

struct evbuffer;

typedef struct ss_metric ss_metric;

ss_metric *ss_counter(const char *name, const char *help, const char *labels);
ss_metric *ss_gauge(const char *name, const char *help, const char *labels);
/* Latency histogram in seconds with fixed buckets 0.0001 .. 10 s. */
ss_metric *ss_histogram(const char *name, const char *help, const char *labels);

void ss_metric_add(ss_metric *m, uint64_t n);   /* counters, gauges */
void ss_metric_set(ss_metric *m, int64_t v);    /* gauges */
void ss_metric_observe(ss_metric *m, double s); /* histograms */

/* Appends the Prometheus text exposition of every metric. */
void ss_metrics_render(struct evbuffer *out);

/* Monotonic clock in seconds, for latencies. */
double ss_now(void);

#endif
