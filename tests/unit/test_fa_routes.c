/* findings-api's HTTP routes (fa_routes.c) through a real server and a real PostgreSQL
 * (CASB_TEST_DATABASE_URL, as tests/run exports it): the query strictness seen by a client.
 * An unknown or repeated query parameter and an invalid value answer 400 problem+json naming
 * the parameter; a path id that is not a UUID answers 404 like an unknown one; valid filters
 * and cursors work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/http_client.h"
#include "casb/http_server.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/migrate.h"
#include "fa_catalogue.h"
#include "fa_routes.h"

#define ADDR "127.0.0.1:18186"
#define TOKEN "test-fa-routes-token-0123456789"

static casb_db *db;
static casb_db_pool *pool;
static fa_catalogue *cat;
static casb_auth *auth;
static casb_http_server *server;
static casb_http_client *client;
static fa_app app;
static char integration[37];
static char finding[37];

typedef struct {
    long status;
    json_t *body;
    char content_type[64];
} reply;

static void exec_ok(const char *sql, int n, const char *const *params)
{
    char err[256] = "";
    PGresult *res = casb_db_query(db, sql, n, params, err, sizeof(err));

    if (!res)
        fail_msg("%s: %s", sql, err);
    PQclear(res);
}

/* One integration of the default account (the admin token's) with three findings; the
 * high one has three active instances. */
static void add_fixture(void)
{
    char err[256] = "";
    const char *params[] = {integration, CASB_DEFAULT_ACCOUNT_ID};
    PGresult *res = NULL;

    exec_ok("INSERT INTO integrations (id, account_id, provider, name, credentials_sealed,"
            " credentials_key_id, scan_interval_s, health)"
            " VALUES ($1, $2, 'github', 'routes', 'v1.x.y', 'x', 3600, 'healthy')",
            2, params);
    res = casb_db_query(db,
                        "INSERT INTO findings (id, account_id, integration_id, finding_type,"
                        " severity, instance_count, first_seen_at, last_seen_at)"
                        " SELECT gen_random_uuid(), $2, $1, t.type, t.severity, t.n, now(), now()"
                        " FROM (VALUES ('github.org.member_2fa_disabled', 'high', 3),"
                        "              ('github.repo.stale', 'medium', 2),"
                        "              ('github.repo.public', 'low', 1)) AS t (type, severity, n)"
                        " RETURNING id::text, finding_type",
                        2, params, err, sizeof(err));
    if (!res)
        fail_msg("findings: %s", err);
    for (int i = 0; i < PQntuples(res); i++) {
        if (strcmp(casb_db_get(res, i, "finding_type"), "github.org.member_2fa_disabled") == 0)
            snprintf(finding, sizeof(finding), "%s", casb_db_get(res, i, "id"));
    }
    PQclear(res);
    const char *instance_params[] = {finding, integration};
    exec_ok("INSERT INTO finding_instances (id, finding_id, integration_id, asset_kind, asset_id,"
            " asset_name, state, first_seen_at, last_seen_at, last_scan_id, last_scan_started_at)"
            " SELECT gen_random_uuid(), $1, $2, 'member', a, a, 'active', now(), now(),"
            "        gen_random_uuid(), now()"
            " FROM unnest(ARRAY['alice', 'bob', 'carol']) AS a",
            2, instance_params);
}

static int setup(void **state)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    casb_http_server_opts opts = {0};
    casb_http_client_opts copts = {0};
    char err[256] = "";

    casb_log_init("test_fa_routes", CASB_LOG_ERROR);
    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL "
                 "(tests/run exports it)");
    if (casb_db_open(&db, url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    if (casb_migrate(db, casb_migrations, casb_migrations_count, NULL, err, sizeof(err)) != 0)
        fail_msg("casb_migrate: %s", err);
    if (casb_db_pool_new(&pool, url, 2, 5000, err, sizeof(err)) != 0)
        fail_msg("pool: %s", err);
    if (fa_catalogue_load_dir(&cat, CASB_SOURCE_DIR "/proto/findings", err, sizeof(err)) != 0)
        fail_msg("catalogue: %s", err);

    casb_uuid_v4(integration);
    add_fixture();

    app.pool = pool;
    app.catalogue = cat;
    if (casb_auth_new(&auth, TOKEN, err, sizeof(err)) != 0)
        fail_msg("auth: %s", err);
    opts.addr = ADDR;
    opts.num_threads = 2;
    opts.auth = auth;
    opts.app = &app;
    if (casb_http_server_new(&server, &opts, err, sizeof(err)) != 0 ||
        fa_routes_register(server) != 0 || casb_http_server_start(server, err, sizeof(err)) != 0)
        fail_msg("server: %s", err);
    if (casb_http_client_new(&client, &copts, err, sizeof(err)) != 0)
        fail_msg("client: %s", err);
    return 0;
}

static int teardown(void **state)
{
    const char *pi[] = {integration};

    casb_http_client_free(client);
    casb_http_server_free(server);
    casb_auth_free(auth);
    exec_ok("DELETE FROM integrations WHERE id = $1", 1, pi);
    fa_catalogue_free(cat);
    casb_db_pool_free(pool);
    casb_db_close(db);
    return 0;
}

static reply get(const char *path_and_query)
{
    const char *headers[] = {"Authorization: Bearer " TOKEN, NULL};
    casb_http_response *res = NULL;
    char url[4096];
    char err[256] = "";
    reply r = {0};

    snprintf(url, sizeof(url), "http://" ADDR "%s", path_and_query);
    if (casb_http_request(client, &res, "GET", url, headers, NULL, 0, err, sizeof(err)) != 0)
        fail_msg("GET %s: %s", path_and_query, err);
    r.status = res->status;
    r.body = json_loads(res->body, 0, NULL);
    casb_http_response_header(res, "Content-Type", r.content_type, sizeof(r.content_type));
    casb_http_response_free(res);
    return r;
}

/* The answer is a 400 problem naming want_parameter. */
static void expect_400(const char *path_and_query, const char *want_parameter)
{
    reply r = get(path_and_query);

    if (r.status != 400)
        fail_msg("GET %s answered %ld, not 400", path_and_query, r.status);
    assert_string_equal(r.content_type, "application/problem+json");
    assert_int_equal(casb_json_int(r.body, "status", 0), 400);
    if (!casb_json_str(r.body, "parameter") ||
        strcmp(casb_json_str(r.body, "parameter"), want_parameter) != 0)
        fail_msg("GET %s named %s, not %s", path_and_query,
                 casb_json_str(r.body, "parameter") ? casb_json_str(r.body, "parameter")
                                                      : "nothing",
                 want_parameter);
    assert_non_null(casb_json_str(r.body, "detail"));
    json_decref(r.body);
}

static void expect_status(const char *path_and_query, long want)
{
    reply r = get(path_and_query);

    if (r.status != want)
        fail_msg("GET %s answered %ld, not %ld", path_and_query, r.status, want);
    json_decref(r.body);
}

/* The answer is 200 with n items under key and no next page. */
static void expect_last_page(const char *path_and_query, const char *key, size_t n)
{
    reply r = get(path_and_query);

    if (r.status != 200)
        fail_msg("GET %s answered %ld, not 200", path_and_query, r.status);
    assert_int_equal(json_array_size(json_object_get(r.body, key)), n);
    assert_true(json_is_null(json_object_get(r.body, "next_cursor")));
    json_decref(r.body);
}

static void test_unknown_parameters(void **state)
{
    char path[256];

    (void)state;
    /* The typo of the findings filter must not list every finding. */
    snprintf(path, sizeof(path), "/v1/findings?integration=%s", integration);
    expect_400(path, "integration");
    snprintf(path, sizeof(path), "/v1/findings?integration_id=%s&integration_id=%s",
             integration, integration);
    expect_400(path, "integration_id");
    expect_400("/v1/findings?severity", "severity");
    expect_400("/v1/findings?severity=", "severity");
    expect_400("/v1/finding-types?category=user_activity", "category");
    expect_400("/v1/summary?integration_id=x", "integration_id");
    snprintf(path, sizeof(path), "/v1/findings/%s?detailed=true", finding);
    expect_400(path, "detailed");
    snprintf(path, sizeof(path), "/v1/findings/%s/instances?integration_id=%s", finding,
             integration);
    expect_400(path, "integration_id");
}

static void test_invalid_values(void **state)
{
    char path[256];

    (void)state;
    expect_400("/v1/findings?integration_id=acme", "integration_id");
    expect_400("/v1/findings?severity=urgent", "severity");
    expect_400("/v1/findings?status=resolved", "status");
    expect_400("/v1/findings?category=malware", "category");
    expect_400("/v1/findings?include_resolved=yes", "include_resolved");
    expect_400("/v1/findings?limit=0", "limit");
    expect_400("/v1/findings?limit=201", "limit");
    expect_400("/v1/findings?cursor=bm9wZQ", "cursor");
    expect_400("/v1/finding-types?provider=Git%20Hub", "provider");
    snprintf(path, sizeof(path), "/v1/findings/%s/instances?state=open", finding);
    expect_400(path, "state");
    snprintf(path, sizeof(path), "/v1/findings/%s/instances?limit=abc", finding);
    expect_400(path, "limit");
    snprintf(path, sizeof(path), "/v1/findings/%s/instances?cursor=%%2A%%2A%%2A", finding);
    expect_400(path, "cursor");
}

static void test_path_ids(void **state)
{
    char path[256];
    reply r;

    (void)state;
    /* Not a UUID: 404 like an unknown finding, never a database error. */
    expect_status("/v1/findings/not-a-uuid", 404);
    expect_status("/v1/findings/1%27%20OR%201=1", 404);
    expect_status("/v1/findings/00000000-0000-4000-8000-00000000000g/instances", 404);
    expect_status("/v1/findings/00000000-0000-4000-8000-000000000000", 404);
    expect_status("/v1/findings/00000000-0000-4000-8000-000000000000/instances", 404);

    snprintf(path, sizeof(path), "/v1/findings/%s", finding);
    r = get(path);
    assert_int_equal(r.status, 200);
    assert_string_equal(casb_json_str(r.body, "id"), finding);
    json_decref(r.body);
}

static void test_filters_and_pages(void **state)
{
    char path[512];
    char cursor[256];
    reply r;

    (void)state;
    snprintf(path, sizeof(path), "/v1/findings?integration_id=%s&severity=high", integration);
    expect_last_page(path, "findings", 1);

    /* Three findings of the integration, one a page: two cursors, then the end. */
    snprintf(path, sizeof(path), "/v1/findings?integration_id=%s&limit=1", integration);
    for (int page = 0; page < 3; page++) {
        r = get(path);
        assert_int_equal(r.status, 200);
        assert_int_equal(json_array_size(json_object_get(r.body, "findings")), 1);
        if (page < 2) {
            assert_non_null(casb_json_str(r.body, "next_cursor"));
            snprintf(cursor, sizeof(cursor), "%s", casb_json_str(r.body, "next_cursor"));
            snprintf(path, sizeof(path), "/v1/findings?integration_id=%s&limit=1&cursor=%s",
                     integration, cursor);
        } else {
            assert_true(json_is_null(json_object_get(r.body, "next_cursor")));
        }
        json_decref(r.body);
    }

    snprintf(path, sizeof(path), "/v1/findings/%s/instances?limit=2&state=all", finding);
    r = get(path);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "instances")), 2);
    assert_non_null(casb_json_str(r.body, "next_cursor"));
    snprintf(path, sizeof(path), "/v1/findings/%s/instances?limit=2&cursor=%s", finding,
             casb_json_str(r.body, "next_cursor"));
    json_decref(r.body);
    r = get(path);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "instances")), 1);
    assert_string_equal(casb_json_path_str(json_array_get(json_object_get(r.body, "instances"), 0),
                                           "asset.id"),
                        "carol");
    json_decref(r.body);
    /* Each instance names its finding and integration as stored (lower case), whatever the
     * case of the path's id; a finding with no instance in the state asked for has an
     * empty page, not a 404. */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)toupper((unsigned char)finding[i]);
    snprintf(path, sizeof(path), "/v1/findings/%s/instances?limit=5", upper);
    r = get(path);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "instances")), 3);
    for (size_t i = 0; i < 3; i++) {
        const json_t *inst = json_array_get(json_object_get(r.body, "instances"), i);
        assert_string_equal(casb_json_str(inst, "finding_id"), finding);
        assert_string_equal(casb_json_str(inst, "integration_id"), integration);
    }
    json_decref(r.body);
    snprintf(path, sizeof(path), "/v1/findings/%s/instances?state=resolved", finding);
    expect_last_page(path, "instances", 0);

    r = get("/v1/finding-types?provider=github");
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.body, "finding_types")) > 10);
    json_decref(r.body);
    r = get("/v1/finding-types?provider=slack");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "finding_types")), 0);
    json_decref(r.body);
    expect_status("/v1/summary", 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_parameters),
        cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_path_ids),
        cmocka_unit_test(test_filters_and_pages),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
