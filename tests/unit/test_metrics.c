/* Unit tests for metrics.c: registration, updates from many threads, and the Prometheus
 * text exposition. The registry is process-wide, so each test uses its own names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/metrics.h"

static char *render(void)
{
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(casb_metrics_render(&out, &len), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

static int count_occurrences(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_empty_registry_renders(void **state)
{
    char *out;

    (void)state;
    /* Runs first: nothing registered yet. */
    out = render();
    assert_string_equal(out, "");
    free(out);
}

static void test_counter_and_gauge(void **state)
{
    casb_metric *c = casb_metrics_counter("t1_requests_total", "Requests served.", NULL);
    casb_metric *g = casb_metrics_gauge("t1_inflight", "Requests in flight.", NULL);
    char *out;

    (void)state;
    assert_non_null(c);
    assert_non_null(g);
    casb_metric_add(c, 1);
    casb_metric_add(c, 2);
    casb_metric_add(c, -5);  /* counters never go down */
    casb_metric_set(c, 100); /* set is for gauges */
    casb_metric_set(g, 7);
    casb_metric_add(g, -2.5);
    out = render();
    assert_non_null(strstr(out, "# HELP t1_requests_total Requests served.\n"
                                "# TYPE t1_requests_total counter\n"
                                "t1_requests_total 3\n"));
    assert_non_null(strstr(out, "# HELP t1_inflight Requests in flight.\n"
                                "# TYPE t1_inflight gauge\n"
                                "t1_inflight 4.5\n"));
    free(out);
    /* NULL handles are ignored (a failed registration must not crash updates). */
    casb_metric_add(NULL, 1);
    casb_metric_set(NULL, 1);
}

static void test_labels_grouped_under_one_header(void **state)
{
    casb_metric *a = casb_metrics_counter("t2_messages_total", "Messages.", "topic=\"a\"");
    casb_metric *other = casb_metrics_gauge("t2_other", "Interleaved.", NULL);
    casb_metric *b = casb_metrics_counter("t2_messages_total", "Messages.", "topic=\"b\"");
    casb_metric *a_again = casb_metrics_counter("t2_messages_total", "Messages.", "topic=\"a\"");
    char *out;
    const char *hdr;

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(other);
    assert_ptr_equal(a, a_again);
    assert_ptr_not_equal(a, b);
    casb_metric_add(a, 2);
    casb_metric_add(b, 3);
    out = render();
    assert_int_equal(count_occurrences(out, "# HELP t2_messages_total "), 1);
    assert_int_equal(count_occurrences(out, "# TYPE t2_messages_total counter"), 1);
    hdr = strstr(out, "# TYPE t2_messages_total counter\n");
    assert_non_null(hdr);
    /* Both series follow their header directly, before the next metric's header. */
    assert_non_null(strstr(hdr, "# TYPE t2_messages_total counter\n"
                                "t2_messages_total{topic=\"a\"} 2\n"
                                "t2_messages_total{topic=\"b\"} 3\n"));
    free(out);
}

static void test_registration_errors(void **state)
{
    (void)state;
    assert_null(casb_metrics_counter("", "x", NULL));
    assert_null(casb_metrics_counter(NULL, "x", NULL));
    assert_null(casb_metrics_counter("9starts_with_digit", "x", NULL));
    assert_null(casb_metrics_counter("has-dash", "x", NULL));
    assert_null(casb_metrics_counter("has space", "x", NULL));
    assert_non_null(casb_metrics_counter("ns:sub_name_1", "colons are allowed", NULL));
    /* One name cannot be both a counter and a gauge. */
    assert_non_null(casb_metrics_counter("t3_kind", "x", NULL));
    assert_null(casb_metrics_gauge("t3_kind", "x", NULL));
    assert_null(casb_metrics_gauge("t3_kind", "x", "a=\"1\""));
}

static void test_help_escaped_and_values(void **state)
{
    casb_metric *g = casb_metrics_gauge("t4_gauge", "Line one\nback\\slash", NULL);
    char *out;

    (void)state;
    casb_metric_set(g, 0.1);
    out = render();
    assert_non_null(strstr(out, "# HELP t4_gauge Line one\\nback\\\\slash\n"));
    assert_non_null(strstr(out, "t4_gauge 0.10000000000000001\n"));
    free(out);
    casb_metric_set(g, NAN);
    out = render();
    assert_non_null(strstr(out, "t4_gauge NaN\n"));
    free(out);
    casb_metric_set(g, -INFINITY);
    out = render();
    assert_non_null(strstr(out, "t4_gauge -Inf\n"));
    free(out);
    casb_metric_set(g, 1e20);
    out = render();
    assert_non_null(strstr(out, "t4_gauge 1e+20\n"));
    free(out);
}

#define THREADS 4
#define ADDS 100000

static void *hammer(void *arg)
{
    casb_metric *m = arg;

    for (int i = 0; i < ADDS; i++)
        casb_metric_add(m, 0.5);
    return NULL;
}

static void *register_same(void *arg)
{
    casb_metric **slot = arg;

    *slot = casb_metrics_counter("t5_registered_concurrently", "x", "k=\"v\"");
    return NULL;
}

static void test_concurrent_updates_are_exact(void **state)
{
    casb_metric *m = casb_metrics_counter("t5_hammered_total", "Concurrent adds.", NULL);
    casb_metric *slots[THREADS];
    pthread_t th[THREADS];
    char *out;
    char expect[64];

    (void)state;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    snprintf(expect, sizeof(expect), "t5_hammered_total %d\n", THREADS * ADDS / 2);
    out = render();
    assert_non_null(strstr(out, expect));
    free(out);

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, register_same, &slots[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 1; i < THREADS; i++)
        assert_ptr_equal(slots[0], slots[i]);
    out = render();
    assert_int_equal(count_occurrences(out, "t5_registered_concurrently{k=\"v\"} "), 1);
    free(out);
}

static void test_histogram_rendering(void **state)
{
    static const double bounds[] = {0.005, 0.1, 1};
    casb_metric *h = casb_metrics_histogram("t6_latency_seconds", "Latency.",
                                            "route=\"GET /v1/x/{id}\"", bounds, 3);
    casb_metric *bare = casb_metrics_histogram("t6_bare_seconds", "Bare.", NULL, bounds, 3);
    char *out;

    (void)state;
    assert_non_null(h);
    assert_non_null(bare);
    /* Same name+labels: the first handle, whatever the bounds. */
    assert_ptr_equal(casb_metrics_histogram("t6_latency_seconds", "Latency.",
                                            "route=\"GET /v1/x/{id}\"", bounds, 2),
                     h);
    casb_metric_observe(h, 0.005); /* le is inclusive */
    casb_metric_observe(h, 0.05);
    casb_metric_observe(h, 0.5);
    casb_metric_observe(h, 7);
    casb_metric_observe(h, NAN); /* ignored */
    casb_metric_add(h, 3);       /* not a counter: ignored */
    casb_metric_set(h, 3);
    out = render();
    assert_non_null(strstr(out, "# HELP t6_latency_seconds Latency.\n"
                                "# TYPE t6_latency_seconds histogram\n"
                                "t6_latency_seconds_bucket{route=\"GET /v1/x/{id}\",le=\"0.005\"} 1\n"
                                "t6_latency_seconds_bucket{route=\"GET /v1/x/{id}\",le=\"0.1\"} 2\n"
                                "t6_latency_seconds_bucket{route=\"GET /v1/x/{id}\",le=\"1\"} 3\n"
                                "t6_latency_seconds_bucket{route=\"GET /v1/x/{id}\",le=\"+Inf\"} 4\n"
                                "t6_latency_seconds_sum{route=\"GET /v1/x/{id}\"} 7.5549999999999997\n"
                                "t6_latency_seconds_count{route=\"GET /v1/x/{id}\"} 4\n"));
    assert_non_null(strstr(out, "t6_bare_seconds_bucket{le=\"0.005\"} 0\n"));
    assert_non_null(strstr(out, "t6_bare_seconds_bucket{le=\"+Inf\"} 0\n"
                                "t6_bare_seconds_sum 0\n"
                                "t6_bare_seconds_count 0\n"));
    free(out);
}

static void test_histogram_registration_errors(void **state)
{
    static const double unordered[] = {1, 0.5};
    static const double repeated[] = {1, 1};
    const double infinite[] = {1, INFINITY};
    double many[CASB_METRICS_MAX_BUCKETS + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
        many[i] = (double)i;
    assert_null(casb_metrics_histogram("t7_h", "h", NULL, unordered, 2));
    assert_null(casb_metrics_histogram("t7_h", "h", NULL, repeated, 2));
    assert_null(casb_metrics_histogram("t7_h", "h", NULL, infinite, 2));
    assert_null(casb_metrics_histogram("t7_h", "h", NULL, many, 0));
    assert_null(casb_metrics_histogram("t7_h", "h", NULL, NULL, 1));
    assert_null(casb_metrics_histogram("t7_h", "h", NULL, many, CASB_METRICS_MAX_BUCKETS + 1));
    assert_non_null(casb_metrics_histogram("t7_h", "h", NULL, many, CASB_METRICS_MAX_BUCKETS));
    /* A name is one type. */
    assert_null(casb_metrics_counter("t7_h", "h", NULL));
    assert_non_null(casb_metrics_counter("t7_c_total", "c", NULL));
    assert_null(casb_metrics_histogram("t7_c_total", "c", NULL, many, 2));
    assert_null(casb_metrics_histogram("7bad", "h", NULL, many, 2));
    casb_metric_observe(NULL, 1); /* no-op */
}

#define HTHREADS 8
#define OBSERVES 5000

static void *observe_many(void *arg)
{
    for (int i = 0; i < OBSERVES; i++)
        casb_metric_observe(arg, (i % 2) ? 0.25 : 2);
    return NULL;
}

static void test_histogram_concurrent_observations(void **state)
{
    static const double bounds[] = {1};
    casb_metric *h = casb_metrics_histogram("t8_seconds", "h", "k=\"v\"", bounds, 1);
    pthread_t th[HTHREADS];
    char expect[256];
    char *out;

    (void)state;
    for (int i = 0; i < HTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, observe_many, h), 0);
    for (int i = 0; i < HTHREADS; i++)
        pthread_join(th[i], NULL);
    snprintf(expect, sizeof(expect),
             "t8_seconds_bucket{k=\"v\",le=\"1\"} %d\n"
             "t8_seconds_bucket{k=\"v\",le=\"+Inf\"} %d\n"
             "t8_seconds_sum{k=\"v\"} %d\n"
             "t8_seconds_count{k=\"v\"} %d\n",
             HTHREADS * OBSERVES / 2, HTHREADS * OBSERVES,
             HTHREADS * OBSERVES / 2 * 2 + HTHREADS * OBSERVES / 8, HTHREADS * OBSERVES);
    out = render();
    assert_non_null(strstr(out, expect));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry_renders),
        cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_labels_grouped_under_one_header),
        cmocka_unit_test(test_registration_errors),
        cmocka_unit_test(test_help_escaped_and_values),
        cmocka_unit_test(test_concurrent_updates_are_exact),
        cmocka_unit_test(test_histogram_rendering),
        cmocka_unit_test(test_histogram_registration_errors),
        cmocka_unit_test(test_histogram_concurrent_observations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
