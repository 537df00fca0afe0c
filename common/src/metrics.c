#include "casb/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { METRIC_COUNTER, METRIC_GAUGE } metric_type;

/* The value is a double kept as its bit pattern in an atomic 64-bit word, so that updates
 * from any thread need no lock: add is a compare-exchange loop, set a plain store. */
struct casb_metric {
    char *name;
    char *help;
    char *labels; /* NULL when the series has no labels */
    metric_type type;
    _Atomic uint64_t bits;
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
static casb_metric *register_metric(metric_type type, const char *name, const char *help,
                                    const char *labels)
{
    casb_metric *m = NULL;

    if (!valid_name(name))
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
    m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->labels = labels && labels[0] ? strdup(labels) : NULL;
    if (!m->name || !m->help || (labels && labels[0] && !m->labels)) {
        free(m->name);
        free(m->help);
        free(m->labels);
        free(m);
        m = NULL;
        goto out;
    }
    m->type = type;
    atomic_init(&m->bits, to_bits(0.0));
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
    return register_metric(METRIC_COUNTER, name, help, labels);
}

casb_metric *casb_metrics_gauge(const char *name, const char *help, const char *labels)
{
    return register_metric(METRIC_GAUGE, name, help, labels);
}

void casb_metric_add(casb_metric *m, double v)
{
    uint64_t old, want;

    if (!m)
        return;
    /* A counter only goes up; a negative increment is a caller bug we refuse to render. */
    if (m->type == METRIC_COUNTER && !(v >= 0))
        return;
    old = atomic_load(&m->bits);
    do {
        want = to_bits(from_bits(old) + v);
    } while (!atomic_compare_exchange_weak(&m->bits, &old, want));
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
        out_printf(&b, "\n# TYPE %s %s\n", first->name,
                   first->type == METRIC_COUNTER ? "counter" : "gauge");
        for (casb_metric *m = first; m; m = m->next) {
            if (strcmp(m->name, first->name) != 0)
                continue;
            if (m->labels)
                out_printf(&b, "%s{%s} ", m->name, m->labels);
            else
                out_printf(&b, "%s ", m->name);
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
