/* The HTTP client against a real in-process server (casb_http_server on 127.0.0.1) that
 * answers with rate limits, 5xx and large bodies on demand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/http_client.h"
#include "casb/http_server.h"
#include "casb/log.h"
#include "casb/timeutil.h"

#define ADDR "127.0.0.1:18182"
#define BASE "http://127.0.0.1:18182"

static casb_http_server *server;

/* ---- the scripted server ---- */

static pthread_mutex_t counters_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char id[64];
    int count;
} counters[64];

/* Counts calls per ?id= so that each test has its own script. */
static int next_attempt(casb_http_req *r)
{
    char id[64] = "";
    int n = 0;

    casb_http_query(r, "id", id, sizeof(id));
    pthread_mutex_lock(&counters_mu);
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        if (counters[i].id[0] == '\0') {
            snprintf(counters[i].id, sizeof(counters[i].id), "%s", id);
        }
        if (strcmp(counters[i].id, id) == 0) {
            n = ++counters[i].count;
            break;
        }
    }
    pthread_mutex_unlock(&counters_mu);
    return n;
}

static int query_int(casb_http_req *r, const char *name, int def)
{
    char v[32];

    return casb_http_query(r, name, v, sizeof(v)) == 1 ? atoi(v) : def;
}

static void add_attempt_header(casb_http_req *r, int attempt)
{
    char v[16];

    snprintf(v, sizeof(v), "%d", attempt);
    casb_http_add_header(r, "X-Attempt", v);
}

static int reply_ok(casb_http_req *r, int attempt)
{
    add_attempt_header(r, attempt);
    return casb_http_reply_json(r, 200, json_pack("{s:b,s:i}", "ok", 1, "attempts", attempt));
}

/* 429 with Retry-After: 1 for the first n calls. */
static int h_r429(casb_http_req *r)
{
    int attempt = next_attempt(r);

    if (attempt > query_int(r, "n", 0))
        return reply_ok(r, attempt);
    add_attempt_header(r, attempt);
    casb_http_add_header(r, "Retry-After", "1");
    return casb_http_reply_problem(r, 429, "slow down", NULL);
}

/* 503 without any hint, for the first n calls. */
static int h_r503(casb_http_req *r)
{
    int attempt = next_attempt(r);

    if (attempt > query_int(r, "n", 0))
        return reply_ok(r, attempt);
    return casb_http_reply_problem(r, 503, "try later", NULL);
}

/* GitHub's primary limit: 403, remaining 0, reset one second from now. */
static int h_r403reset(casb_http_req *r)
{
    int attempt = next_attempt(r);
    char reset[32];

    if (attempt > query_int(r, "n", 0))
        return reply_ok(r, attempt);
    snprintf(reset, sizeof(reset), "%ld", (long)time(NULL) + 1);
    casb_http_add_header(r, "x-ratelimit-limit", "5000");
    casb_http_add_header(r, "x-ratelimit-remaining", "0");
    casb_http_add_header(r, "x-ratelimit-reset", reset);
    return casb_http_reply_problem(r, 403, "API rate limit exceeded", NULL);
}

/* GitHub's secondary limit: 403 with retry-after while remaining is positive. */
static int h_r403secondary(casb_http_req *r)
{
    int attempt = next_attempt(r);

    if (attempt > query_int(r, "n", 0))
        return reply_ok(r, attempt);
    casb_http_add_header(r, "x-ratelimit-remaining", "4000");
    casb_http_add_header(r, "retry-after", "1");
    return casb_http_reply_problem(r, 403, "You have exceeded a secondary rate limit", NULL);
}

/* A 403 that is a permission problem: never retried. */
static int h_r403perm(casb_http_req *r)
{
    next_attempt(r);
    casb_http_add_header(r, "x-ratelimit-remaining", "4999");
    return casb_http_reply_problem(r, 403, "Resource not accessible by integration", NULL);
}

static int h_r500(casb_http_req *r)
{
    next_attempt(r);
    return casb_http_reply_problem(r, 500, "boom", NULL);
}

static int h_r429long(casb_http_req *r)
{
    next_attempt(r);
    casb_http_add_header(r, "Retry-After", "30");
    return casb_http_reply_problem(r, 429, "slow down", NULL);
}

static int h_big(casb_http_req *r)
{
    int size = query_int(r, "size", 0);
    char *buf = malloc((size_t)size + 1);
    int rc;

    memset(buf, 'x', (size_t)size);
    rc = casb_http_reply_text(r, 200, "text/plain", buf, (size_t)size);
    free(buf);
    return rc;
}

/* Same size, but chunked: no Content-Length announces it. */
static int h_bigstream(casb_http_req *r)
{
    int size = query_int(r, "size", 0);
    char chunk[1024];

    memset(chunk, 'y', sizeof(chunk));
    casb_http_stream_begin(r, 200, "text/plain");
    while (size > 0) {
        int n = size > (int)sizeof(chunk) ? (int)sizeof(chunk) : size;

        if (casb_http_stream_write(r, chunk, (size_t)n) != 0)
            break;
        size -= n;
    }
    casb_http_stream_end(r);
    return 200;
}

static int h_echo(casb_http_req *r)
{
    size_t len;
    const char *body = casb_http_body(r, &len);
    const char *ua = casb_http_header(r, "User-Agent");
    const char *ae = casb_http_header(r, "Accept-Encoding");
    const char *ct = casb_http_header(r, "Content-Type");
    const char *expect = casb_http_header(r, "Expect");

    return casb_http_reply_json(
        r, 200,
        json_pack("{s:s,s:s#,s:s,s:s,s:s?,s:b,s:b}", "method", casb_http_method(r), "body", body,
                  len, "ua", ua ? ua : "", "ae", ae ? ae : "", "ct", ct,
                  "auth", casb_http_header(r, "Authorization") != NULL, "expect", expect != NULL));
}

static int setup(void **state)
{
    char err[256];
    casb_http_server_opts opts = {.addr = ADDR, .num_threads = 4};
    static const char *methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

    casb_log_init("test_http_client", CASB_LOG_ERROR);
    if (casb_http_server_new(&server, &opts, err, sizeof(err)) != 0)
        return -1;
    if (casb_http_route(server, "GET", "/r429", h_r429, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/r503", h_r503, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/r403reset", h_r403reset, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/r403secondary", h_r403secondary, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/r403perm", h_r403perm, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/r500", h_r500, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/r429long", h_r429long, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/big", h_big, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/bigstream", h_bigstream, CASB_ROUTE_PUBLIC))
        return -1;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (casb_http_route(server, methods[i], "/echo", h_echo, CASB_ROUTE_PUBLIC))
            return -1;
    }
    if (casb_http_server_start(server, err, sizeof(err)) != 0) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    casb_http_server_free(server);
    return 0;
}

static casb_http_client *new_client_budget(int max_retries, long max_wait_s, size_t max_body,
                                           long rate_limit_budget_s)
{
    casb_http_client *c = NULL;
    casb_http_client_opts o = {.max_retries = max_retries, .max_wait_s = max_wait_s,
                               .max_body_bytes = max_body, .timeout_ms = 10000,
                               .rate_limit_budget_s = rate_limit_budget_s};
    char err[128];

    assert_int_equal(casb_http_client_new(&c, &o, err, sizeof(err)), 0);
    return c;
}

static casb_http_client *new_client(int max_retries, long max_wait_s, size_t max_body)
{
    return new_client_budget(max_retries, max_wait_s, max_body, 0);
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = strcasestr(hay, needle); p; p = strcasestr(p + 1, needle))
        n++;
    return n;
}

/* ---- retries ---- */

static void test_retry_429_honours_retry_after(void **state)
{
    casb_http_client *c = new_client(3, 10, 0);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];
    char v[16];
    int64_t start = casb_monotonic_ms();

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r429?id=t429&n=2", NULL, NULL, 0,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(r->status, 200);
    assert_true(casb_monotonic_ms() - start >= 1900); /* two Retry-After: 1 waits */
    assert_int_equal(st->requests, 3);
    assert_int_equal(st->retries, 2);
    assert_int_equal(st->rate_limit_waits, 2);
    assert_true(st->wait_ms >= 1900);
    /* Every attempt counted by its status class. */
    assert_int_equal(st->status_class[4], 2);
    assert_int_equal(st->status_class[2], 1);
    assert_int_equal(st->status_class[0] + st->status_class[3] + st->status_class[5], 0);
    assert_int_equal(r->retry_waits, 2);
    /* Only the final attempt's headers are kept. */
    assert_int_equal(casb_http_response_header(r, "x-attempt", v, sizeof(v)), 1);
    assert_string_equal(v, "3");
    assert_int_equal(occurrences(r->headers, "X-Attempt:"), 1);
    assert_int_equal(occurrences(r->headers, "HTTP/1.1"), 1);
    assert_int_equal(occurrences(r->headers, "Retry-After"), 0);
    assert_non_null(strstr(r->body, "\"attempts\":3"));
    casb_http_response_free(r);
    casb_http_client_free(c);
}

/* Rate limits are the provider pacing us: they are waited out within the time budget and
 * do not use up the retries meant for failures. */
static void test_rate_limits_do_not_use_up_retries(void **state)
{
    casb_http_client *c = new_client_budget(1, 10, 0, 10);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r429?id=tbudget&n=3", NULL, NULL, 0,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(r->status, 200);
    assert_int_equal(st->requests, 4);
    assert_int_equal(st->rate_limit_waits, 3);
    casb_http_response_free(r);
    casb_http_client_free(c);
}

static void test_retry_503_backoff(void **state)
{
    casb_http_client *c = new_client(3, 10, 0);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r503?id=t503&n=1", NULL, NULL, 0,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(r->status, 200);
    assert_int_equal(st->requests, 2);
    assert_int_equal(st->retries, 1);
    assert_int_equal(st->rate_limit_waits, 0);
    /* First backoff: full jitter within 500 ms. */
    assert_true(st->wait_ms < 1000);
    casb_http_response_free(r);
    casb_http_client_free(c);
}

static void test_retry_403_rate_limit_reset(void **state)
{
    casb_http_client *c = new_client(3, 10, 0);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];
    int64_t start = casb_monotonic_ms();
    int64_t took;

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r403reset?id=t403&n=1", NULL, NULL,
                                       0, err, sizeof(err)),
                     0);
    took = casb_monotonic_ms() - start;
    assert_int_equal(r->status, 200);
    assert_int_equal(st->requests, 2);
    assert_int_equal(st->rate_limit_waits, 1);
    /* reset - now (0 or 1 s at one-second resolution) plus the one-second margin. */
    assert_true(took >= 1000);
    assert_true(took < 3500);
    casb_http_response_free(r);
    casb_http_client_free(c);
}

static void test_retry_403_secondary_limit(void **state)
{
    casb_http_client *c = new_client(3, 10, 0);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];
    int64_t start = casb_monotonic_ms();

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r403secondary?id=t403s&n=1", NULL,
                                       NULL, 0, err, sizeof(err)),
                     0);
    assert_int_equal(r->status, 200);
    assert_int_equal(st->rate_limit_waits, 1);
    assert_true(casb_monotonic_ms() - start >= 950);
    casb_http_response_free(r);
    casb_http_client_free(c);
}

static void test_403_permission_is_final(void **state)
{
    casb_http_client *c = new_client(3, 10, 0);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r403perm?id=t403p", NULL, NULL, 0,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(r->status, 403);
    assert_int_equal(st->requests, 1);
    assert_int_equal(st->retries, 0);
    assert_non_null(strstr(r->body, "not accessible"));
    casb_http_response_free(r);
    casb_http_client_free(c);
}

static void test_persistent_500_returns_last_response(void **state)
{
    casb_http_client *c = new_client(2, 1, 0);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r500?id=t500", NULL, NULL, 0, err,
                                       sizeof(err)),
                     0);
    assert_int_equal(r->status, 500);
    assert_int_equal(st->requests, 3); /* max_retries + 1 */
    assert_int_equal(st->retries, 2);
    assert_int_equal(r->retry_waits, 2);
    assert_non_null(strstr(r->body, "boom"));
    casb_http_response_free(r);
    casb_http_client_free(c);
}

static void test_wait_is_capped_by_max_wait(void **state)
{
    casb_http_client *c = new_client_budget(1, 1, 0, 1);
    casb_http_response *r = NULL;
    const casb_http_stats *st = casb_http_client_stats(c);
    char err[256];
    int64_t start = casb_monotonic_ms();

    /* Retry-After: 30, but one wait never exceeds max_wait_s = 1, and a second wait would
     * pass the rate-limit budget of 1 s: the 429 is returned. */
    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/r429long?id=tcap", NULL, NULL, 0,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(r->status, 429);
    assert_int_equal(st->requests, 2);
    assert_true(casb_monotonic_ms() - start < 3000);
    assert_true(st->wait_ms >= 950 && st->wait_ms < 2500);
    casb_http_response_free(r);
    casb_http_client_free(c);
}

static volatile int cancel_flag;

static void *cancel_later(void *arg)
{
    casb_sleep_ms(300);
    cancel_flag = 1;
    return NULL;
}

static void test_cancel_stops_waiting(void **state)
{
    casb_http_client *c = NULL;
    casb_http_client_opts o = {.max_retries = 5, .max_wait_s = 60, .cancel = &cancel_flag};
    casb_http_response *r = NULL;
    pthread_t th;
    char err[256] = "";
    int64_t start;

    assert_int_equal(casb_http_client_new(&c, &o, err, sizeof(err)), 0);
    cancel_flag = 0;
    start = casb_monotonic_ms();
    pthread_create(&th, NULL, cancel_later, NULL);
    assert_true(casb_http_request(c, &r, "GET", BASE "/r429long?id=tcancel", NULL, NULL, 0, err,
                                  sizeof(err)) < 0);
    pthread_join(th, NULL);
    assert_null(r);
    assert_true(casb_monotonic_ms() - start < 2000);
    assert_non_null(strstr(err, "cancelled"));
    /* Already cancelled: nothing is sent. */
    assert_true(casb_http_request(c, &r, "GET", BASE "/r429long?id=tcancel", NULL, NULL, 0, err,
                                  sizeof(err)) < 0);
    assert_int_equal(casb_http_client_stats(c)->requests, 1);
    casb_http_client_free(c);
}

/* A long wait asks wait_check about once a second, and ends when it says stop: the scan's
 * lease is renewed meanwhile, and a deleted integration stops its scan within a second. */
static int checks;

static int stop_on_third_check(void *ud)
{
    (void)ud;
    return ++checks >= 3;
}

static void test_wait_check_renews_and_stops(void **state)
{
    casb_http_client *c = NULL;
    casb_http_client_opts o = {.max_retries = 5, .max_wait_s = 60,
                               .wait_check = stop_on_third_check};
    casb_http_response *r = NULL;
    char err[256] = "";
    int64_t took;

    (void)state;
    checks = 0;
    assert_int_equal(casb_http_client_new(&c, &o, err, sizeof(err)), 0);
    took = casb_monotonic_ms();
    assert_true(casb_http_request(c, &r, "GET", BASE "/r429long?id=twaitcheck", NULL, NULL, 0,
                                  err, sizeof(err)) < 0);
    took = casb_monotonic_ms() - took;
    assert_null(r);
    assert_int_equal(checks, 3);
    /* Three checks a second apart, not the 30 s the server asked for. */
    assert_true(took >= 2900 && took < 10000);
    assert_non_null(strstr(err, "cancelled"));
    assert_int_equal(casb_http_client_stats(c)->requests, 1);
    casb_http_client_free(c);
}

static void test_network_error_retries_then_fails(void **state)
{
    casb_http_client *c = new_client(2, 1, 0);
    casb_http_response *r = NULL;
    char err[256] = "";

    /* Nothing listens on port 1. */
    assert_true(casb_http_request(c, &r, "GET", "http://127.0.0.1:1/x?secret=zzz", NULL, NULL, 0,
                                  err, sizeof(err)) < 0);
    assert_null(r);
    assert_int_equal(casb_http_client_stats(c)->requests, 3);
    assert_int_equal(casb_http_client_stats(c)->retries, 2);
    assert_int_equal(casb_http_client_stats(c)->rate_limit_waits, 0);
    assert_int_equal(casb_http_client_stats(c)->status_class[0], 3); /* no answer: "error" */
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "secret=zzz")); /* the query is not repeated in messages */
    casb_http_client_free(c);
}

static void test_body_cap(void **state)
{
    casb_http_client *c = new_client(2, 1, 10000);
    casb_http_response *r = NULL;
    char err[256] = "";

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/big?size=10000", NULL, NULL, 0, err,
                                       sizeof(err)),
                     0);
    assert_int_equal(r->body_len, 10000);
    assert_int_equal(strlen(r->body), 10000);
    casb_http_response_free(r);
    r = NULL;

    /* Announced by Content-Length. */
    assert_true(casb_http_request(c, &r, "GET", BASE "/big?size=10001", NULL, NULL, 0, err,
                                  sizeof(err)) < 0);
    assert_null(r);
    assert_non_null(strstr(err, "larger than 10000"));

    /* Chunked: stopped by the write callback. Not retried either. */
    err[0] = '\0';
    assert_true(casb_http_request(c, &r, "GET", BASE "/bigstream?size=50000", NULL, NULL, 0,
                                  err, sizeof(err)) < 0);
    assert_null(r);
    assert_non_null(strstr(err, "larger than 10000"));
    assert_int_equal(casb_http_client_stats(c)->retries, 0);
    casb_http_client_free(c);
}

static void test_methods_and_headers(void **state)
{
    static const char *const hdrs[] = {"Content-Type: application/json",
                                       "Authorization: Bearer secret-token", NULL};
    static const char *methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    casb_http_client *c = new_client(0, 1, 0);
    casb_http_response *r = NULL;
    json_t *o;
    char err[256];

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        assert_int_equal(casb_http_request(c, &r, methods[i], BASE "/echo", hdrs, "{\"a\":1}", 7,
                                           err, sizeof(err)),
                         0);
        assert_int_equal(r->status, 200);
        o = json_loads(r->body, 0, NULL);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "method")), methods[i]);
        assert_string_equal(json_string_value(json_object_get(o, "body")), "{\"a\":1}");
        assert_string_equal(json_string_value(json_object_get(o, "ct")), "application/json");
        assert_true(json_is_true(json_object_get(o, "auth")));
        assert_true(json_is_false(json_object_get(o, "expect")));
        json_decref(o);
        casb_http_response_free(r);
        r = NULL;
    }

    assert_int_equal(casb_http_request(c, &r, "GET", BASE "/echo", NULL, NULL, 0, err,
                                       sizeof(err)),
                     0);
    o = json_loads(r->body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(o, "body")), "");
    assert_int_equal(strncmp(json_string_value(json_object_get(o, "ua")), "casb/", 5), 0);
    assert_non_null(strstr(json_string_value(json_object_get(o, "ae")), "gzip"));
    assert_true(json_is_false(json_object_get(o, "auth")));
    json_decref(o);
    casb_http_response_free(r);
    casb_http_client_free(c);
}

/* ---- header helpers ---- */

/* The exact Link headers GitHub sent for the five pages of octokit's paginate-issues
 * recording (fixtures/github/paginate-issues.json, per_page=3). */
static const char *const gh_links[5] = {
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=2>; rel=\"next\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\"",
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"prev\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=3>; rel=\"next\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"",
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=2>; rel=\"prev\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=4>; rel=\"next\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"",
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=3>; rel=\"prev\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"next\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"",
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=4>; rel=\"prev\", "
    "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"",
};

static void test_link_rel_github_pages(void **state)
{
    char buf[256];
    char want[256];

    for (int page = 1; page <= 5; page++) {
        const char *h = gh_links[page - 1];

        if (page < 5) {
            snprintf(want, sizeof(want),
                     "https://api.github.com/repositories/1000/issues?per_page=3&page=%d",
                     page + 1);
            assert_int_equal(casb_http_link_rel(h, "next", buf, sizeof(buf)), 1);
            assert_string_equal(buf, want);
            assert_int_equal(casb_http_link_rel(h, "last", buf, sizeof(buf)), 1);
            assert_string_equal(buf,
                                "https://api.github.com/repositories/1000/issues?per_page=3&page=5");
        } else {
            assert_int_equal(casb_http_link_rel(h, "next", buf, sizeof(buf)), 0);
            assert_int_equal(casb_http_link_rel(h, "last", buf, sizeof(buf)), 0);
        }
        if (page > 1) {
            snprintf(want, sizeof(want),
                     "https://api.github.com/repositories/1000/issues?per_page=3&page=%d",
                     page - 1);
            assert_int_equal(casb_http_link_rel(h, "prev", buf, sizeof(buf)), 1);
            assert_string_equal(buf, want);
            assert_int_equal(casb_http_link_rel(h, "first", buf, sizeof(buf)), 1);
        } else {
            assert_int_equal(casb_http_link_rel(h, "prev", buf, sizeof(buf)), 0);
        }
    }
}

static void test_link_rel_variants(void **state)
{
    static const struct {
        const char *header;
        const char *rel;
        int rc;
        const char *url;
    } cases[] = {
        {"<https://x/2>; REL=\"Next\"", "next", 1, "https://x/2"},
        {"<https://x/2>; rel=next", "next", 1, "https://x/2"},
        {"<https://x/2>;rel=next,<https://x/9>;rel=last", "last", 1, "https://x/9"},
        {"  <https://x/2>  ;  rel = \"next\"  ,  <https://x/9> ; rel=\"last\"  ", "next", 1,
         "https://x/2"},
        {"<https://x/9>; rel=\"last next\"", "next", 1, "https://x/9"},
        {"<https://x/9>; rel=\"last  next\"", "last", 1, "https://x/9"},
        {"<https://x/9>; rel=\"nextpage\"", "next", 0, NULL},
        {"<https://x/9>; rel=\"last\"", "next", 0, NULL},
        /* Quoted params before rel may hold commas and semicolons. */
        {"<https://x/1>; title=\"a, b; rel=next\"; rel=\"prev\", <https://x/3>; rel=\"next\"",
         "next", 1, "https://x/3"},
        /* Commas and semicolons inside the URL. */
        {"<https://x/a,b;c?q=1,2>; rel=\"next\"", "next", 1, "https://x/a,b;c?q=1,2"},
        /* Only the first rel counts (RFC 8288 3.3). */
        {"<https://x/1>; rel=\"prev\"; rel=\"next\"", "next", 0, NULL},
        {"<https://x/1>; anchor=\"#x\"; rel=\"next\"; type=\"text/html\"", "next", 1,
         "https://x/1"},
        {"garbage, <https://x/2>; rel=\"next\"", "next", 1, "https://x/2"},
        {"<https://x/2; rel=\"next\"", "next", 0, NULL},
        {"", "next", 0, NULL},
        {"<https://x/2>", "next", 0, NULL},
    };
    char buf[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = casb_http_link_rel(cases[i].header, cases[i].rel, buf, sizeof(buf));

        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d", i, cases[i].header, rc, cases[i].rc);
        if (cases[i].url)
            assert_string_equal(buf, cases[i].url);
    }
    assert_int_equal(casb_http_link_rel(NULL, "next", buf, sizeof(buf)), 0);
    /* Does not fit. */
    assert_int_equal(casb_http_link_rel(gh_links[0], "next", buf, 20), -1);
}

static casb_http_response fake(char *headers)
{
    casb_http_response r = {.status = 429, .body = "", .headers = headers};

    return r;
}

static void test_retry_after_s(void **state)
{
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    const long date = 1445412480L;
    casb_http_response r;

    r = fake("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, date), 120);
    r = fake("HTTP/1.1 503 Service Unavailable\r\nretry-after:   7  \r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, date), 7);
    r = fake("HTTP/1.1 429 Too Many Requests\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, date - 30), 30);
    assert_int_equal(casb_http_retry_after_s(&r, date + 30), 0); /* in the past */
    /* The obsolete RFC 850 form is still an HTTP-date. */
    r = fake("HTTP/1.1 429 Too Many Requests\r\nRetry-After: Wednesday, 21-Oct-15 07:28:00 GMT\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, date - 5), 5);
    r = fake("HTTP/1.1 403 Forbidden\r\nx-ratelimit-remaining: 0\r\nx-ratelimit-reset: 1000\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, 990), 10);
    assert_int_equal(casb_http_retry_after_s(&r, 1010), 0);
    r = fake("HTTP/1.1 403 Forbidden\r\nx-ratelimit-remaining: 12\r\nx-ratelimit-reset: 1000\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, 990), -1);
    /* Retry-After wins over the reset time. */
    r = fake("HTTP/1.1 403 Forbidden\r\nx-ratelimit-remaining: 0\r\nx-ratelimit-reset: 5000\r\n"
             "Retry-After: 60\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, 990), 60);
    r = fake("HTTP/1.1 429 Too Many Requests\r\nRetry-After: soon\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, 990), -1);
    r = fake("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(casb_http_retry_after_s(&r, 990), -1);
}

static void test_response_header(void **state)
{
    casb_http_response r = fake("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "X-Empty:\r\nLINK:   <a>; rel=\"next\"  \r\n\r\n");
    char buf[64];

    assert_int_equal(casb_http_response_header(&r, "content-type", buf, sizeof(buf)), 1);
    assert_string_equal(buf, "application/json");
    assert_int_equal(casb_http_response_header(&r, "Link", buf, sizeof(buf)), 1);
    assert_string_equal(buf, "<a>; rel=\"next\"");
    assert_int_equal(casb_http_response_header(&r, "x-empty", buf, sizeof(buf)), 1);
    assert_string_equal(buf, "");
    assert_int_equal(casb_http_response_header(&r, "Content", buf, sizeof(buf)), 0);
    assert_int_equal(casb_http_response_header(&r, "X-Missing", buf, sizeof(buf)), 0);
    assert_int_equal(casb_http_response_header(&r, "Content-Type", buf, 8), -1);
}

static void test_escape(void **state)
{
    char *e = casb_http_escape("acme demo/repo?x=1&y=ü");

    assert_non_null(e);
    assert_string_equal(e, "acme%20demo%2Frepo%3Fx%3D1%26y%3D%C3%BC");
    free(e);
    e = casb_http_escape("plain-name_1.2~");
    assert_string_equal(e, "plain-name_1.2~");
    free(e);
    assert_null(casb_http_escape(NULL));
}

static void test_stats_add(void **state)
{
    casb_http_stats a = {.requests = 2, .rate_limit_waits = 1, .retries = 1, .wait_ms = 5,
                         .status_class = {1, 0, 1, 0, 0, 0}};
    casb_http_stats b = {.requests = 3, .retries = 2, .wait_ms = 7,
                         .status_class = {0, 0, 1, 0, 1, 1}};

    (void)state;
    casb_http_stats_add(&a, &b);
    assert_int_equal(a.requests, 5);
    assert_int_equal(a.rate_limit_waits, 1);
    assert_int_equal(a.retries, 3);
    assert_int_equal(a.wait_ms, 12);
    assert_int_equal(a.status_class[0], 1);
    assert_int_equal(a.status_class[2], 2);
    assert_int_equal(a.status_class[4], 1);
    assert_int_equal(a.status_class[5], 1);
    casb_http_stats_add(&a, NULL); /* no-op */
    assert_int_equal(a.requests, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_429_honours_retry_after),
        cmocka_unit_test(test_rate_limits_do_not_use_up_retries),
        cmocka_unit_test(test_retry_503_backoff),
        cmocka_unit_test(test_retry_403_rate_limit_reset),
        cmocka_unit_test(test_retry_403_secondary_limit),
        cmocka_unit_test(test_403_permission_is_final),
        cmocka_unit_test(test_persistent_500_returns_last_response),
        cmocka_unit_test(test_wait_is_capped_by_max_wait),
        cmocka_unit_test(test_cancel_stops_waiting),
        cmocka_unit_test(test_wait_check_renews_and_stops),
        cmocka_unit_test(test_network_error_retries_then_fails),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_methods_and_headers),
        cmocka_unit_test(test_link_rel_github_pages),
        cmocka_unit_test(test_link_rel_variants),
        cmocka_unit_test(test_retry_after_s),
        cmocka_unit_test(test_response_header),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_stats_add),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
