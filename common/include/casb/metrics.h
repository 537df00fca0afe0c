#ifndef CASB_METRICS_H
#define CASB_METRICS_H

#include <stddef.h>

/* A process-wide registry of Prometheus counters, gauges and histograms, rendered in text
 * exposition format by /metrics. Registration returns a handle that lives for the process;
 * updates are lock-free atomics. labels is a fixed label set in exposition syntax
 * ("topic=\"x\"") or NULL; registering the same name+labels twice returns the same handle, so
 * callers with a bounded set of label values (routes, providers, status classes) may register
 * lazily on first use from any thread. */
typedef struct casb_metric casb_metric;

casb_metric *casb_metrics_counter(const char *name, const char *help, const char *labels);
casb_metric *casb_metrics_gauge(const char *name, const char *help, const char *labels);
void casb_metric_add(casb_metric *m, double v);
void casb_metric_set(casb_metric *m, double v); /* gauges */

/* The most buckets a histogram may have, +Inf not counted. */
#define CASB_METRICS_MAX_BUCKETS 32

/* A histogram with the given upper bounds (strictly increasing, finite, 1 to
 * CASB_METRICS_MAX_BUCKETS of them; +Inf is implied), rendered as name_bucket{...,le="b"},
 * name_sum and name_count. A second registration of the same name+labels returns the first
 * handle whatever bounds it passes. NULL for a bad name or bounds, or a name used by another
 * type. */
casb_metric *casb_metrics_histogram(const char *name, const char *help, const char *labels,
                                    const double *bounds, size_t nbounds);
void casb_metric_observe(casb_metric *m, double v); /* histograms */

/* Bucket bounds in seconds for request latencies (5 ms to 10 s) and for scans (1 s to 2 h). */
extern const double casb_metrics_latency_buckets[];
extern const size_t casb_metrics_latency_nbuckets;
extern const double casb_metrics_scan_buckets[];
extern const size_t casb_metrics_scan_nbuckets;

/* Renders every metric; *out is malloc'ed, caller frees. */
int casb_metrics_render(char **out, size_t *len);

#endif
