/* The HTTP server's access control on a real server: roles by route flag (403), the
 * per-token rate (429 with Retry-After), the header size limit, and the rate limiter's
 * arithmetic. The tokens are the bootstrap token of a database-less casb_auth (admin) and,
 * when CASB_TEST_DATABASE_URL is set, stored tokens of each role (see test_auth.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "casb/auth.h"
#include "casb/http_server.h"
#include "casb/log.h"
#include "casb/rate_limit.h"
#include "casb/service.h"
#include "test_http_util.h"

#define ADDR "127.0.0.1:18193"
#define BASE "http://" ADDR
#define TOKEN "access-test-bootstrap-token-0123"
#define BURST 5

static casb_http_server *server;
static casb_auth *auth;

static int h_ok(casb_http_req *r)
{
    const casb_principal *who = casb_http_principal(r); /* NULL on the public route */

    return casb_http_reply_json(r, 200, json_pack("{ss}", "role",
                                                  who ? casb_role_name(who->role) : "none"));
}

static int setup(void **state)
{
    char err[256];
    casb_http_server_opts opts = {0};

    (void)state;
    casb_log_init("test_http_access", CASB_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (casb_auth_new(&auth, TOKEN, err, sizeof(err)) != 0)
        return -1;
    opts.addr = ADDR;
    opts.num_threads = 4;
    opts.auth = auth;
    opts.max_header_bytes = 4096;
    opts.rate_per_second = 2;
    opts.rate_burst = BURST;
    if (casb_http_server_new(&server, &opts, err, sizeof(err)) != 0 ||
        casb_http_route(server, "GET", "/v1/read", h_ok, 0) ||
        casb_http_route(server, "POST", "/v1/triage", h_ok, CASB_ROUTE_ANALYST) ||
        casb_http_route(server, "POST", "/v1/admin", h_ok, CASB_ROUTE_ADMIN) ||
        casb_http_route(server, "GET", "/v1/public", h_ok, CASB_ROUTE_PUBLIC) ||
        casb_http_server_start(server, err, sizeof(err)) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    casb_http_server_free(server);
    casb_auth_free(auth);
    curl_global_cleanup();
    return 0;
}

static long status_of(const char *method, const char *path, const char *token, response *keep)
{
    char authz[256];
    const char *hdrs[] = {authz, NULL};
    char url[128];
    response r;
    long status;

    snprintf(authz, sizeof(authz), "Authorization: Bearer %s", token ? token : "");
    snprintf(url, sizeof(url), "%s%s", BASE, path);
    r = http_request(method, url, token ? hdrs : NULL, NULL);
    status = r.status;
    if (keep)
        *keep = r;
    else
        response_free(&r);
    return status;
}

static void test_the_limiter_spends_a_burst_then_paces(void **state)
{
    casb_rate_limiter *rl = casb_rate_limiter_new(2.0, 3);
    int retry = -1;

    (void)state;
    assert_non_null(rl);
    for (int i = 0; i < 3; i++)
        assert_int_equal(casb_rate_limiter_take(rl, "a", 1000, &retry), 1);
    assert_int_equal(casb_rate_limiter_take(rl, "a", 1000, &retry), 0);
    assert_int_equal(retry, 1);
    /* Another key has its own bucket. */
    assert_int_equal(casb_rate_limiter_take(rl, "b", 1000, &retry), 1);
    /* Half a second later one request is back (2 per second), not two. */
    assert_int_equal(casb_rate_limiter_take(rl, "a", 1500, &retry), 1);
    assert_int_equal(casb_rate_limiter_take(rl, "a", 1500, &retry), 0);
    /* A long pause refills the burst, never beyond it. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(casb_rate_limiter_take(rl, "a", 60000, &retry), 1);
    assert_int_equal(casb_rate_limiter_take(rl, "a", 60000, &retry), 0);
    casb_rate_limiter_free(rl);
    assert_null(casb_rate_limiter_new(0, 3));
    assert_null(casb_rate_limiter_new(1, 0));
}

static void test_slow_refill_gives_a_longer_retry_after(void **state)
{
    casb_rate_limiter *rl = casb_rate_limiter_new(0.1, 1); /* one request per 10 s */
    int retry = 0;

    (void)state;
    assert_int_equal(casb_rate_limiter_take(rl, "k", 0, &retry), 1);
    assert_int_equal(casb_rate_limiter_take(rl, "k", 0, &retry), 0);
    assert_int_equal(retry, 10);
    assert_int_equal(casb_rate_limiter_take(rl, "k", 4000, &retry), 0);
    assert_int_equal(retry, 6);
    casb_rate_limiter_free(rl);
}

static void test_over_the_rate_a_token_gets_429_with_retry_after(void **state)
{
    response r;
    int limited = 0;

    (void)state;
    /* The burst, then refusals; the public route is never limited. */
    for (int i = 0; i < BURST + 3; i++) {
        long status = status_of("GET", "/v1/read", TOKEN, &r);

        if (status == 429) {
            limited++;
            assert_non_null(strcasestr(r.headers, "Retry-After: 1"));
            assert_non_null(strstr(r.body, "rate"));
        } else {
            assert_int_equal(status, 200);
        }
        response_free(&r);
    }
    assert_true(limited >= 3);
    assert_int_equal(status_of("GET", "/v1/public", NULL, NULL), 200);
    /* A bad token is refused for what it is (401), not counted against the real one. */
    assert_int_equal(status_of("GET", "/v1/read", "not-the-token-at-all", NULL), 401);
    usleep(1600 * 1000); /* 2 per second: three are back */
    assert_int_equal(status_of("GET", "/v1/read", TOKEN, NULL), 200);
}

/* The status of a GET with an n-byte header, or 0 when the server closed the connection
 * without an answer (it may reset it while a large request is still being sent). */
static long status_with_filler(size_t n)
{
    char *line = malloc(n + 16);
    struct curl_slist *hdrs = NULL;
    CURL *c = curl_easy_init();
    struct {
        char *buf;
        size_t len;
    } body = {0};
    long status = 0;

    assert_non_null(line);
    assert_non_null(c);
    memcpy(line, "X-Filler: ", 10);
    memset(line + 10, 'x', n);
    line[10 + n] = '\0';
    hdrs = curl_slist_append(hdrs, line);
    curl_easy_setopt(c, CURLOPT_URL, BASE "/v1/public");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(body.buf);
    free(line);
    return status;
}

/* civetweb refuses a request whose line and headers outgrow max_header_bytes (here 4 KiB)
 * with 400, or by closing the connection, before any route runs. */
static void test_request_headers_beyond_the_limit_are_refused(void **state)
{
    long big;

    (void)state;
    assert_int_equal(status_with_filler(3000), 200);
    big = status_with_filler(6000);
    assert_true(big == 400 || big == 0);
    big = status_with_filler(64 * 1024);
    assert_true(big == 400 || big == 0);
    /* The server is still there for ordinary requests. */
    assert_int_equal(status_of("GET", "/v1/public", NULL, NULL), 200);
}

/* With a database: a token of each role against routes of each level. */
static void test_each_role_reaches_its_routes_only(void **state)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    casb_db_pool *pool = NULL;
    casb_db *db;
    casb_auth *dbauth = NULL;
    casb_http_server *s = NULL;
    casb_http_server_opts opts = {0};
    char tokens[3][CASB_TOKEN_SIZE], id[37], err[512];
    static const char *const paths[] = {"/v1/read", "/v1/triage", "/v1/admin"};
    static const char *const methods[] = {"GET", "POST", "POST"};

    (void)state;
    if (!url || !*url)
        skip();
    assert_int_equal(casb_service_migrate(url, err, sizeof(err)), 0);
    assert_int_equal(casb_db_pool_new(&pool, url, 2, 10000, err, sizeof(err)), 0);
    db = casb_db_pool_acquire(pool, 1000);
    assert_non_null(db);
    for (int role = CASB_ROLE_READ_ONLY; role <= CASB_ROLE_ADMIN; role++) {
        casb_token_spec spec = {CASB_DEFAULT_ACCOUNT_ID, "http-access", (casb_role)role, NULL,
                                "test"};

        assert_int_equal(casb_auth_issue(db, &spec, tokens[role], id, err, sizeof(err)), 0);
    }
    casb_db_pool_release(pool, db);
    assert_int_equal(casb_auth_new(&dbauth, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_connect(dbauth, pool, err, sizeof(err)), 0);
    opts.addr = "127.0.0.1:18194";
    opts.auth = dbauth;
    assert_int_equal(casb_http_server_new(&s, &opts, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(casb_http_route(s, methods[i], paths[i], h_ok,
                                         i == 0 ? 0 : i == 1 ? CASB_ROUTE_ANALYST
                                                             : CASB_ROUTE_ADMIN),
                         0);
    assert_int_equal(casb_http_server_start(s, err, sizeof(err)), 0);
    for (int role = 0; role < 3; role++) {
        for (int level = 0; level < 3; level++) {
            char u[128], authz[200];
            const char *hdrs[] = {authz, NULL};
            response r;

            snprintf(u, sizeof(u), "http://127.0.0.1:18194%s", paths[level]);
            snprintf(authz, sizeof(authz), "Authorization: Bearer %s", tokens[role]);
            r = http_request(methods[level], u, hdrs, NULL);
            assert_int_equal(r.status, role >= level ? 200 : 403);
            if (r.status == 403)
                assert_non_null(strstr(r.body, casb_role_name((casb_role)level)));
            response_free(&r);
        }
    }
    casb_http_server_free(s);
    casb_auth_free(dbauth);
    casb_db_pool_free(pool);
}

/* share_auth_db: a GET handler runs on the connection its token was checked on; a POST
 * handler does not get one (its body is still to be read) and takes one from the pool; a
 * request refused after the check (403) or whose handler left the connection gives it
 * back. With a pool of one connection, any of these going wrong leaves none for the next. */
static casb_db_pool *share_pool;

static int h_with_db(casb_http_req *r)
{
    casb_db *db = casb_http_take_db(r);
    int kept = db != NULL;

    if (!db)
        db = casb_db_pool_acquire(share_pool, 0);
    if (!db)
        return casb_http_reply_problem(r, 503, "no connection", NULL);
    casb_db_pool_release(share_pool, db);
    return casb_http_reply_json(r, 200, json_pack("{sb}", "kept", kept));
}

static void test_the_token_check_connection_serves_the_handler(void **state)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    casb_auth *dbauth = NULL;
    casb_http_server *s = NULL;
    casb_http_server_opts opts = {0};
    char token[CASB_TOKEN_SIZE], id[37], err[512];
    casb_db *db;
    static const struct {
        const char *method, *path;
        long status;
        const char *body;
    } calls[] = {
        {"GET", "/v1/with-db", 200, "\"kept\":true"},
        {"GET", "/v1/without-db", 200, "\"role\""},
        {"GET", "/v1/admin-read", 403, NULL},
        {"POST", "/v1/with-db", 200, "\"kept\":false"},
        {"GET", "/v1/with-db", 200, "\"kept\":true"},
    };

    (void)state;
    if (!url || !*url)
        skip();
    assert_int_equal(casb_service_migrate(url, err, sizeof(err)), 0);
    assert_int_equal(casb_db_pool_new(&share_pool, url, 1, 10000, err, sizeof(err)), 0);
    db = casb_db_pool_acquire(share_pool, 1000);
    casb_token_spec spec = {CASB_DEFAULT_ACCOUNT_ID, "http-share", CASB_ROLE_ANALYST, NULL, "t"};
    assert_int_equal(casb_auth_issue(db, &spec, token, id, err, sizeof(err)), 0);
    casb_db_pool_release(share_pool, db);
    assert_int_equal(casb_auth_new(&dbauth, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_connect(dbauth, share_pool, err, sizeof(err)), 0);
    opts.addr = "127.0.0.1:18195";
    opts.auth = dbauth;
    opts.share_auth_db = 1;
    assert_int_equal(casb_http_server_new(&s, &opts, err, sizeof(err)), 0);
    assert_int_equal(casb_http_route(s, "GET", "/v1/with-db", h_with_db, 0), 0);
    assert_int_equal(casb_http_route(s, "POST", "/v1/with-db", h_with_db, 0), 0);
    assert_int_equal(casb_http_route(s, "GET", "/v1/without-db", h_ok, 0), 0);
    assert_int_equal(casb_http_route(s, "GET", "/v1/admin-read", h_ok, CASB_ROUTE_ADMIN), 0);
    assert_int_equal(casb_http_server_start(s, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        char u[128], authz[200];
        const char *hdrs[] = {authz, NULL};
        response r;

        snprintf(u, sizeof(u), "http://127.0.0.1:18195%s", calls[i].path);
        snprintf(authz, sizeof(authz), "Authorization: Bearer %s", token);
        r = http_request(calls[i].method, u, hdrs, NULL);
        assert_int_equal(r.status, calls[i].status);
        if (calls[i].body && !strstr(r.body, calls[i].body))
            fail_msg("%s %s: %s", calls[i].method, calls[i].path, r.body);
        response_free(&r);
        /* The one connection is back in the pool after every request. */
        db = casb_db_pool_acquire(share_pool, 0);
        assert_non_null(db);
        casb_db_pool_release(share_pool, db);
    }
    casb_http_server_free(s);
    casb_auth_free(dbauth);
    casb_db_pool_free(share_pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_limiter_spends_a_burst_then_paces),
        cmocka_unit_test(test_slow_refill_gives_a_longer_retry_after),
        cmocka_unit_test(test_over_the_rate_a_token_gets_429_with_retry_after),
        cmocka_unit_test(test_request_headers_beyond_the_limit_are_refused),
        cmocka_unit_test(test_each_role_reaches_its_routes_only),
        cmocka_unit_test(test_the_token_check_connection_serves_the_handler),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
