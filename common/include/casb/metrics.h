#ifndef CASB_METRICS_H
#define CASB_METRICS_H

#include <stddef.h>

/* A process-wide registry of Prometheus counters and gauges, rendered in text exposition
 * format by /metrics. Registration returns a handle that lives for the process; updates are
 * lock-free atomics. labels is a fixed label set in exposition syntax ("topic=\"x\"") or NULL;
 * registering the same name+labels twice returns the same handle. */
typedef struct casb_metric casb_metric;

casb_metric *casb_metrics_counter(const char *name, const char *help, const char *labels);
casb_metric *casb_metrics_gauge(const char *name, const char *help, const char *labels);
void casb_metric_add(casb_metric *m, double v);
void casb_metric_set(casb_metric *m, double v); /* gauges */

/* Renders every metric; *out is malloc'ed, caller frees. */
int casb_metrics_render(char **out, size_t *len);

#endif
