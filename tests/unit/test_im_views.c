/* Unit tests for the integration-manager's JSON shapes (im_views.c) and integration events
 * (im_events.c): the documented members, RFC 3339 times, nulls where SQL has NULL, and no
 * secret in either. Result rows are built in memory with libpq's result constructors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "im_events.h"
#include "im_views.h"

/* A one-row text result with the given columns; a NULL value is SQL NULL. */
static PGresult *make_row(const char *const *names, const char *const *values, int n)
{
    PGresAttDesc attrs[32];
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

    assert_non_null(res);
    assert_true(n <= 32);
    memset(attrs, 0, sizeof(attrs));
    for (int i = 0; i < n; i++) {
        attrs[i].name = (char *)names[i];
        attrs[i].typlen = -1;
        attrs[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, n, attrs), 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(PQsetvalue(res, 0, i, (char *)values[i],
                                    values[i] ? (int)strlen(values[i]) : -1),
                         1);
    }
    return res;
}

static void assert_keys(const json_t *o, const char *const *keys)
{
    size_t n = 0;

    for (; keys[n]; n++) {
        if (!json_object_get(o, keys[n]))
            fail_msg("member %s missing", keys[n]);
    }
    assert_int_equal(json_object_size(o), n);
}

static void test_integration(void **state)
{
    static const char *const names[] = {
        "id", "provider", "name", "config", "health", "health_reason", "paused",
        "scan_interval_s", "last_scan_at", "last_scan_status", "next_scan_at", "created_at",
        "updated_at", "cursor_at"};
    static const char *const values[] = {
        "0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b", "github", "Acme",
        "{\"organization\": \"acme\"}", "paused", NULL, "t", "3600", NULL, NULL,
        "2026-11-28T21:25:55Z", "2026-11-28T20:25:55Z", "2026-11-28T20:30:00Z",
        "2026-11-28T20:25:55.123456Z"};
    static const char *const keys[] = {
        "id", "provider", "name", "config", "health", "health_reason", "paused",
        "scan_interval_s", "last_scan_at", "last_scan_status", "last_scan", "next_scan_at",
        "created_at", "updated_at", NULL};
    PGresult *res = make_row(names, values, 14);
    json_t *o = im_view_integration(res, 0);

    (void)state;
    assert_keys(o, keys);
    assert_string_equal(json_string_value(json_object_get(o, "id")), values[0]);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "config"), "organization")), "acme");
    assert_true(json_is_true(json_object_get(o, "paused")));
    assert_int_equal(json_integer_value(json_object_get(o, "scan_interval_s")), 3600);
    assert_true(json_is_null(json_object_get(o, "last_scan_at")));
    assert_true(json_is_null(json_object_get(o, "health_reason")));
    assert_string_equal(json_string_value(json_object_get(o, "next_scan_at")),
                        "2026-11-28T21:25:55Z");
    /* No finished scan yet. */
    assert_true(json_is_null(json_object_get(o, "last_scan")));
    json_decref(o);
    PQclear(res);
}

/* last_scan: exactly its documented members, whatever else the column carries. */
static void test_integration_last_scan(void **state)
{
    static const char *const names[] = {"id", "provider", "name", "config", "health", "paused",
                                        "scan_interval_s", "last_scan_at", "last_scan_status",
                                        "last_scan"};
    static const char *const values[] = {
        "0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b", "github", "Acme", "{}", "unhealthy", "f",
        "3600", "2026-11-28T21:00:00Z", "failed",
        "{\"id\": \"1b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b\", \"status\": \"failed\", "
        "\"reason\": \"scheduled\", \"finished_at\": \"2026-11-28T21:00:00Z\", "
        "\"error\": \"GitHub answered 503\", \"extra\": 1}"};
    static const char *const keys[] = {"id", "status", "reason", "finished_at", "error", NULL};
    PGresult *res = make_row(names, values, 10);
    json_t *o = im_view_integration(res, 0);
    json_t *last = json_object_get(o, "last_scan");

    (void)state;
    assert_true(json_is_object(last));
    assert_keys(last, keys);
    assert_string_equal(json_string_value(json_object_get(last, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(last, "error")), "GitHub answered 503");
    assert_string_equal(json_string_value(json_object_get(o, "last_scan_status")), "failed");
    json_decref(o);
    PQclear(res);
}

static void test_audit_entry(void **state)
{
    static const char *const names[] = {"id", "at", "actor", "action", "integration_id",
                                        "outcome", "status_code", "details"};
    static const char *const values[] = {"42", "2026-11-28T21:00:00Z", "bootstrap", "update",
                                         NULL, "failure", "422",
                                         "{\"error\": \"name: must have 1 to 200 characters\"}"};
    static const char *const keys[] = {"id", "at", "actor", "action", "integration_id",
                                       "outcome", "status_code", "details", NULL};
    PGresult *res = make_row(names, values, 8);
    json_t *o = im_view_audit_entry(res, 0);

    (void)state;
    assert_keys(o, keys);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 42);
    assert_int_equal(json_integer_value(json_object_get(o, "status_code")), 422);
    assert_true(json_is_null(json_object_get(o, "integration_id")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "details"),
                                                          "error")),
                        "name: must have 1 to 200 characters");
    json_decref(o);
    PQclear(res);
}

static void test_scan(void **state)
{
    static const char *const names[] = {
        "id", "integration_id", "status", "reason", "queued_at", "started_at", "finished_at",
        "duration_ms", "stats", "coverage", "error", "cursor_at"};
    static const char *const values[] = {
        "1b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b", "0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b",
        "succeeded", "first", "2026-11-28T20:25:55Z", "2026-11-28T20:25:56Z",
        "2026-11-28T20:26:01Z", "5012", "{\"api_calls\": 12}",
        "{\"ran\": [\"github.repo.public\"], \"skipped\": []}", NULL,
        "2026-11-28T20:25:55.000001Z"};
    static const char *const keys[] = {
        "id", "integration_id", "status", "reason", "queued_at", "started_at", "finished_at",
        "duration_ms", "stats", "coverage", "error", NULL};
    PGresult *res = make_row(names, values, 12);
    json_t *o = im_view_scan(res, 0);

    (void)state;
    assert_keys(o, keys);
    assert_int_equal(json_integer_value(json_object_get(o, "duration_ms")), 5012);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "stats"), "api_calls")),
                     12);
    assert_true(json_is_array(json_object_get(json_object_get(o, "coverage"), "ran")));
    assert_true(json_is_null(json_object_get(o, "error")));
    json_decref(o);
    PQclear(res);
}

static void test_queued_scan_nulls(void **state)
{
    static const char *const names[] = {"id", "integration_id", "status", "reason", "queued_at",
                                        "started_at", "finished_at", "duration_ms", "stats",
                                        "coverage", "error"};
    static const char *const values[] = {"1b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b",
                                         "0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b",
                                         "queued", "manual", "2026-11-28T20:25:55Z",
                                         NULL, NULL, NULL, NULL, NULL, NULL};
    PGresult *res = make_row(names, values, 11);
    json_t *o = im_view_scan(res, 0);

    (void)state;
    assert_true(json_is_null(json_object_get(o, "started_at")));
    assert_true(json_is_null(json_object_get(o, "duration_ms")));
    assert_true(json_is_null(json_object_get(o, "stats")));
    assert_true(json_is_null(json_object_get(o, "coverage")));
    json_decref(o);
    PQclear(res);
}

static const char *const fake_methods[] = {"github_app", "token", NULL};
static const casb_provider_field fake_config_fields[] = {
    {"organization", "string", 0, 1, NULL, "Organization login."},
    {NULL, NULL, 0, 0, NULL, NULL},
};
static const casb_provider_field fake_credential_fields[] = {
    {"token", "string", 1, 1, "token", "A token."},
    {"app_id", "integer", 0, 1, "github_app", "The App's id."},
    {NULL, NULL, 0, 0, NULL, NULL},
};
static const casb_provider_permission fake_permissions[] = {
    {"Members: read", "2FA status of members"},
    {NULL, NULL},
};
static const char *const fake_types[] = {"fake.a", "fake.b", "fake.c", NULL};
static const casb_provider fake = {
    .id = "fakehub",
    .display_name = "FakeHub",
    .default_api_base_url = "https://api.fakehub.example",
    .default_scan_interval_s = 86400,
    .auth_methods = fake_methods,
    .config_fields = fake_config_fields,
    .credential_fields = fake_credential_fields,
    .permissions = fake_permissions,
    .finding_types = fake_types,
};

static void test_providers(void **state)
{
    const casb_provider *const all[] = {&fake, NULL};
    json_t *body = im_view_providers(all);
    json_t *p = json_array_get(json_object_get(body, "providers"), 0);
    json_t *creds = json_object_get(p, "credential_fields");

    (void)state;
    assert_true(json_is_null(json_object_get(body, "next_cursor")));
    assert_int_equal(json_array_size(json_object_get(body, "providers")), 1);
    assert_string_equal(json_string_value(json_object_get(p, "id")), "fakehub");
    assert_string_equal(json_string_value(json_object_get(p, "name")), "FakeHub");
    assert_int_equal(json_array_size(json_object_get(p, "auth_methods")), 2);
    assert_int_equal(json_integer_value(json_object_get(p, "finding_types_count")), 3);
    assert_int_equal(json_integer_value(json_object_get(p, "default_scan_interval_s")), 86400);
    assert_int_equal(json_array_size(json_object_get(p, "config_fields")), 1);
    assert_int_equal(json_array_size(creds), 2);
    /* Whatever a credential field says, it is sealed. */
    assert_true(json_is_true(json_object_get(json_array_get(creds, 1), "secret")));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(creds, 1), "auth_method")),
        "github_app");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(p, "permissions"), 0), "reason")),
                        "2FA status of members");
    json_decref(body);
}

static void test_event(void **state)
{
    static const char *const keys[] = {"schema", "event", "integration_id", "account_id",
                                       "provider", "at", NULL};
    char *msg = im_event_build("created", "0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b",
                               "00000000-0000-0000-0000-000000000001", "github", 1795897555);
    json_t *o = json_loads(msg, 0, NULL);

    (void)state;
    assert_non_null(o);
    assert_keys(o, keys);
    assert_string_equal(json_string_value(json_object_get(o, "schema")),
                        "casb.integration.event/v1");
    assert_string_equal(json_string_value(json_object_get(o, "event")), "created");
    assert_string_equal(json_string_value(json_object_get(o, "at")), "2026-11-28T20:25:55Z");
    json_decref(o);
    free(msg);

    assert_null(im_event_build("exploded", "a", "b", "c", 0));
    assert_null(im_event_build("deleted", NULL, "b", "c", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integration), cmocka_unit_test(test_integration_last_scan),
        cmocka_unit_test(test_audit_entry), cmocka_unit_test(test_scan),
        cmocka_unit_test(test_queued_scan_nulls), cmocka_unit_test(test_providers),
        cmocka_unit_test(test_event),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
