#include "casb/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

const double casb_metrics_latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1,    2.5,   5,    10};
const size_t casb_metrics_latency_nbuckets =
    sizeof(casb_metrics_latency_buckets) / sizeof(casb_metrics_latency_buckets[0]);
const double casb_metrics_scan_buckets[] = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200};
const size_t casb_metrics_scan_nbuckets =
    sizeof(casb_metrics_scan_buckets) / sizeof(casb_metrics_scan_buckets[0]);

/* The value is a double kept as its bit pattern in an atomic 64-bit word, so that updates
 * from any thread need no lock: add is a compare-exchange loop, set a plain store. A
 * histogram keeps its sum there and one atomic count per bucket (not cumulative: an
 * observation touches one bucket; rendering accumulates). */
struct casb_metric {
    char *name;
    char *help;
    char *labels; /* NULL when the series has no labels */
    metric_type type;
    _Atomic uint64_t bits;
    size_t nbounds;            /* histograms: bounds[nbounds], counts[nbounds + 1] (+Inf) */
    double *bounds;
    _Atomic uint64_t *counts;
    struct casb_metric *next;
};

/* Metrics live for the process; the mutex guards the list (registration and rendering). */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct casb_metric *registry_head;
static struct casb_metric *registry_tail;

static uint64_t to_bits(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

static double from_bits(uint64_t b)
{
    double v;

    memcpy(&v, &b, sizeof(v));
    return v;
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int valid_name(const char *name)
{
    if (!name || !name[0])
        return 0;
    for (const char *p = name; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                    *p == ':';
        int digit = *p >= '0' && *p <= '9';

        if (!alpha && !(digit && p != name))
            return 0;
    }
    return 1;
}

static int same_labels(const char *a, const char *b)
{
    if (!a || !a[0])
        return !b || !b[0];
    return b && strcmp(a, b) == 0;
}

/* Returns the existing series for name+labels, a new one, or NULL when the name is invalid
 * or already used by a metric of the other type (the exposition would be contradictory). */
static void metric_free(casb_metric *m)
{
    free(m->name);
    free(m->help);
    free(m->labels);
    free(m->bounds);
    free(m->counts);
    free(m);
}

/* Bounds must be finite and strictly increasing: le labels are then distinct and ordered. */
static int valid_bounds(const double *bounds, size_t n)
{
    if (!bounds || n < 1 || n > CASB_METRICS_MAX_BUCKETS)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return 0;
    }
    return 1;
}

static casb_metric *new_metric(metric_type type, const char *name, const char *help,
                               const char *labels, const double *bounds, size_t nbounds)
{
    casb_metric *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->labels = labels && labels[0] ? strdup(labels) : NULL;
    if (!m->name || !m->help || (labels && labels[0] && !m->labels))
        goto fail;
    if (type == METRIC_HISTOGRAM) {
        m->bounds = malloc(nbounds * sizeof(*m->bounds));
        m->counts = calloc(nbounds + 1, sizeof(*m->counts));
        if (!m->bounds || !m->counts)
            goto fail;
        memcpy(m->bounds, bounds, nbounds * sizeof(*m->bounds));
        m->nbounds = nbounds;
        for (size_t i = 0; i <= nbounds; i++)
            atomic_init(&m->counts[i], 0);
    }
    m->type = type;
    atomic_init(&m->bits, to_bits(0.0));
    return m;
fail:
    metric_free(m);
    return NULL;
}

static casb_metric *register_metric(metric_type type, const char *name, const char *help,
                                    const char *labels, const double *bounds, size_t nbounds)
{
    casb_metric *m = NULL;

    if (!valid_name(name))
        return NULL;
    if (type == METRIC_HISTOGRAM && !valid_bounds(bounds, nbounds))
        return NULL;
    pthread_mutex_lock(&registry_mu);
    for (casb_metric *it = registry_head; it; it = it->next) {
        if (strcmp(it->name, name) != 0)
            continue;
        if (it->type != type)
            goto out;
        if (same_labels(it->labels, labels)) {
            m = it;
            goto out;
        }
    }
    m = new_metric(type, name, help, labels, bounds, nbounds);
    if (!m)
        goto out;
    if (registry_tail)
        registry_tail->next = m;
    else
        registry_head = m;
    registry_tail = m;
out:
    pthread_mutex_unlock(&registry_mu);
    return m;
}

casb_metric *casb_metrics_counter(const char *name, const char *help, const char *labels)
{
    return register_metric(METRIC_COUNTER, name, help, labels, NULL, 0);
}

casb_metric *casb_metrics_gauge(const char *name, const char *help, const char *labels)
{
    return register_metric(METRIC_GAUGE, name, help, labels, NULL, 0);
}

casb_metric *casb_metrics_histogram(const char *name, const char *help, const char *labels,
                                    const double *bounds, size_t nbounds)
{
    return register_metric(METRIC_HISTOGRAM, name, help, labels, bounds, nbounds);
}

static void add_bits(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load(bits), want;

    do {
        want = to_bits(from_bits(old) + v);
    } while (!atomic_compare_exchange_weak(bits, &old, want));
}

void casb_metric_add(casb_metric *m, double v)
{
    if (!m || m->type == METRIC_HISTOGRAM)
        return;
    /* A counter only goes up; a negative increment is a caller bug we refuse to render. */
    if (m->type == METRIC_COUNTER && !(v >= 0))
        return;
    add_bits(&m->bits, v);
}

void casb_metric_observe(casb_metric *m, double v)
{
    size_t i = 0;

    if (!m || m->type != METRIC_HISTOGRAM || isnan(v))
        return;
    /* le is inclusive: v == bound falls in that bound's bucket. */
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    atomic_fetch_add(&m->counts[i], 1);
    add_bits(&m->bits, v);
}

void casb_metric_set(casb_metric *m, double v)
{
    if (!m || m->type != METRIC_GAUGE)
        return;
    atomic_store(&m->bits, to_bits(v));
}

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} outbuf;

static void out_printf(outbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(outbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* HELP text escapes backslash and newline (text exposition format 0.0.4). */
static void out_help(outbuf *b, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            out_printf(b, "\\\\");
        else if (*p == '\n')
            out_printf(b, "\\n");
        else
            out_printf(b, "%c", *p);
    }
}

static void out_value(outbuf *b, double v)
{
    if (isnan(v))
        out_printf(b, "NaN");
    else if (isinf(v))
        out_printf(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        out_printf(b, "%.0f", v);
    else
        out_printf(b, "%.17g", v);
}

/* The shortest %g form that reads back as the same double ("0.005", not
 * "0.0050000000000000001"), as Prometheus clients print le values. */
static void out_bound(outbuf *b, double v)
{
    char buf[40];

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    out_printf(b, "%s", buf);
}

static void out_series_name(outbuf *b, const casb_metric *m, const char *suffix)
{
    if (m->labels)
        out_printf(b, "%s%s{%s} ", m->name, suffix, m->labels);
    else
        out_printf(b, "%s%s ", m->name, suffix);
}

/* Buckets are read one by one without a lock, so a concurrent observation may show in a
 * bucket and not yet in the sum; _count is the +Inf bucket, so the two always agree. */
static void out_histogram(outbuf *b, const casb_metric *m)
{
    uint64_t cumulative = 0;

    for (size_t i = 0; i <= m->nbounds; i++) {
        cumulative += atomic_load(&m->counts[i]);
        out_printf(b, "%s_bucket{%s%sle=\"", m->name, m->labels ? m->labels : "",
                   m->labels ? "," : "");
        if (i < m->nbounds)
            out_bound(b, m->bounds[i]);
        else
            out_printf(b, "+Inf");
        out_printf(b, "\"} %llu\n", (unsigned long long)cumulative);
    }
    out_series_name(b, m, "_sum");
    out_value(b, from_bits(atomic_load(&m->bits)));
    out_printf(b, "\n");
    out_series_name(b, m, "_count");
    out_printf(b, "%llu\n", (unsigned long long)cumulative);
}

static const char *type_name(metric_type t)
{
    switch (t) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    default:
        return "histogram";
    }
}

int casb_metrics_render(char **out, size_t *len)
{
    outbuf b = {0};

    *out = NULL;
    if (len)
        *len = 0;
    pthread_mutex_lock(&registry_mu);
    /* Series are grouped under their name, with HELP and TYPE once per name, in the order
     * names were first registered. */
    for (casb_metric *first = registry_head; first; first = first->next) {
        int seen = 0;

        for (casb_metric *prev = registry_head; prev != first; prev = prev->next) {
            if (strcmp(prev->name, first->name) == 0) {
                seen = 1;
                break;
            }
        }
        if (seen)
            continue;
        out_printf(&b, "# HELP %s ", first->name);
        out_help(&b, first->help);
        out_printf(&b, "\n# TYPE %s %s\n", first->name, type_name(first->type));
        for (casb_metric *m = first; m; m = m->next) {
            if (strcmp(m->name, first->name) != 0)
                continue;
            if (m->type == METRIC_HISTOGRAM) {
                out_histogram(&b, m);
                continue;
            }
            out_series_name(&b, m, "");
            out_value(&b, from_bits(atomic_load(&m->bits)));
            out_printf(&b, "\n");
        }
    }
    pthread_mutex_unlock(&registry_mu);

    if (!b.oom && !b.p)
        out_printf(&b, "%s", ""); /* an empty registry still renders an empty string */
    if (b.oom) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}
