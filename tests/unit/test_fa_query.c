/* Unit tests for findings-api's query values (fa_query.c): every filter and paging value of
 * GET /v1/findings, /v1/findings/{id}/instances and /v1/finding-types is either turned into
 * the store's query or refused with the parameter it names, before any SQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/query.h"
#include "fa_query.h"
#include "fa_views.h"

#define ACCOUNT "00000000-0000-0000-0000-000000000001"
#define UUID "0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b"

static const char *param;
static char err[256];

static void findings_refused(const fa_findings_params *in, const char *want_param,
                             const char *want_detail)
{
    fa_findings_query q = {.account_id = ACCOUNT};

    param = NULL;
    err[0] = '\0';
    assert_int_equal(fa_query_findings(&q, in, &param, err, sizeof(err)), CASB_EINVALID);
    if (!param || strcmp(param, want_param) != 0)
        fail_msg("refusal names %s, not %s (%s)", param ? param : "(null)", want_param, err);
    if (strcmp(err, want_detail) != 0)
        fail_msg("detail \"%s\", not \"%s\"", err, want_detail);
}

static void test_findings_defaults(void **state)
{
    fa_findings_params in = {0};
    fa_findings_query q = {.account_id = ACCOUNT, .severity = "stale", .has_cursor = 1};

    (void)state;
    assert_int_equal(fa_query_findings(&q, &in, &param, err, sizeof(err)), 0);
    assert_null(param);
    assert_string_equal(q.account_id, ACCOUNT);
    assert_null(q.integration_id);
    assert_null(q.severity);
    assert_null(q.types_json);
    assert_int_equal(q.include_resolved, 0);
    assert_int_equal(q.has_cursor, 0);
    assert_int_equal(q.limit, CASB_QUERY_LIMIT_DEFAULT);
}

static void test_findings_every_filter(void **state)
{
    fa_findings_cursor c = {FA_SORT_INSTANCE_COUNT, -7, 1, UUID};
    char *cursor = fa_cursor_findings_encode(&c);
    fa_findings_params in = {
        .integration_id = UUID,
        .provider = "github",
        .severity = "high",
        .status = "ignored",
        .category = "user_activity",
        .finding_type = "github.org.member_2fa_disabled",
        .include_resolved = "true",
        .sort = "instance_count",
        .limit = "200",
        .cursor = cursor,
    };
    fa_findings_query q = {.account_id = ACCOUNT};

    (void)state;
    assert_int_equal(fa_query_findings(&q, &in, &param, err, sizeof(err)), 0);
    assert_string_equal(q.integration_id, UUID);
    assert_string_equal(q.provider, "github");
    assert_string_equal(q.severity, "high");
    assert_string_equal(q.status, "ignored");
    assert_string_equal(q.finding_type, "github.org.member_2fa_disabled");
    assert_null(q.types_json); /* the caller resolves the category */
    assert_int_equal(q.include_resolved, 1);
    assert_int_equal(q.limit, 200);
    assert_int_equal(q.has_cursor, 1);
    assert_int_equal(q.sort, FA_SORT_INSTANCE_COUNT);
    assert_int_equal(q.cursor.k1, -7);
    assert_int_equal(q.cursor.k2, 1);
    assert_string_equal(q.cursor.id, UUID);

    in.include_resolved = "false";
    assert_int_equal(fa_query_findings(&q, &in, &param, err, sizeof(err)), 0);
    assert_int_equal(q.include_resolved, 0);
    /* A cursor belongs to its order: another sort's is refused. */
    in.sort = "last_seen";
    findings_refused(&in, "cursor", "cursor: not a next_cursor of this list");
    in.sort = "newest";
    in.cursor = NULL;
    findings_refused(&in, "sort", "sort: expected severity, instance_count or last_seen");
    free(cursor);
}

static void test_findings_refusals(void **state)
{
    (void)state;
    findings_refused(&(fa_findings_params){.integration_id = "acme"}, "integration_id",
                     "integration_id: expected an integration's UUID");
    findings_refused(&(fa_findings_params){.integration_id = UUID "0"}, "integration_id",
                     "integration_id: expected an integration's UUID");
    findings_refused(&(fa_findings_params){.provider = "GitHub"}, "provider",
                     "provider: expected a provider id such as github");
    findings_refused(&(fa_findings_params){.provider = "git hub"}, "provider",
                     "provider: expected a provider id such as github");
    findings_refused(&(fa_findings_params){.severity = "urgent"}, "severity",
                     "severity: expected critical, high, medium or low");
    findings_refused(&(fa_findings_params){.severity = "HIGH"}, "severity",
                     "severity: expected critical, high, medium or low");
    findings_refused(&(fa_findings_params){.status = "resolved"}, "status",
                     "status: expected active or ignored");
    findings_refused(&(fa_findings_params){.category = "malware"}, "category",
                     "category: expected misconfiguration, user_activity, data_exposure or "
                     "shadow_it");
    findings_refused(&(fa_findings_params){.finding_type = "github.org'--"}, "finding_type",
                     "finding_type: expected a finding type id such as "
                     "github.org.member_2fa_disabled");
    findings_refused(&(fa_findings_params){.include_resolved = "1"}, "include_resolved",
                     "include_resolved: expected true or false");
    findings_refused(&(fa_findings_params){.include_resolved = "yes"}, "include_resolved",
                     "include_resolved: expected true or false");
    findings_refused(&(fa_findings_params){.limit = "0"}, "limit",
                     "limit: expected an integer from 1 to 200");
    findings_refused(&(fa_findings_params){.limit = "500"}, "limit",
                     "limit: expected an integer from 1 to 200");
    findings_refused(&(fa_findings_params){.cursor = "not-a-cursor"}, "cursor",
                     "cursor: not a next_cursor of this list");
}

static void test_findings_foreign_cursor(void **state)
{
    /* An instances cursor is not a findings cursor, and vice versa. */
    char *instances = fa_cursor_instances_encode("alice");
    fa_findings_cursor c = {FA_SORT_SEVERITY, 0, -3, UUID};
    char *findings = fa_cursor_findings_encode(&c);
    fa_instances_page page;

    (void)state;
    findings_refused(&(fa_findings_params){.cursor = instances}, "cursor",
                     "cursor: not a next_cursor of this list");
    param = NULL;
    assert_int_equal(fa_query_instances(&page, &(fa_instances_params){.cursor = findings},
                                        &param, err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(param, "cursor");
    free(instances);
    free(findings);
}

static void test_instances(void **state)
{
    char *cursor = fa_cursor_instances_encode("acme/api#key:3");
    fa_instances_page page;

    (void)state;
    assert_int_equal(fa_query_instances(&page, &(fa_instances_params){0}, &param, err,
                                        sizeof(err)),
                     0);
    assert_string_equal(page.state, "active"); /* the default view */
    assert_int_equal(page.limit, CASB_QUERY_LIMIT_DEFAULT);
    assert_string_equal(page.after_asset_id, "");

    assert_int_equal(fa_query_instances(&page,
                                        &(fa_instances_params){.state = "all", .limit = "3",
                                                               .cursor = cursor},
                                        &param, err, sizeof(err)),
                     0);
    assert_null(page.state); /* every state */
    assert_int_equal(page.limit, 3);
    assert_string_equal(page.after_asset_id, "acme/api#key:3");
    for (int i = 0; i < 2; i++) {
        const char *state_value = i == 0 ? "hidden" : "resolved";

        assert_int_equal(fa_query_instances(&page, &(fa_instances_params){.state = state_value},
                                            &param, err, sizeof(err)),
                         0);
        assert_string_equal(page.state, state_value);
    }

    param = NULL;
    assert_int_equal(fa_query_instances(&page, &(fa_instances_params){.state = "open"}, &param,
                                        err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(param, "state");
    assert_string_equal(err, "state: expected active, hidden, resolved or all");
    param = NULL;
    assert_int_equal(fa_query_instances(&page, &(fa_instances_params){.limit = "201"}, &param,
                                        err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(param, "limit");
    free(cursor);
}

static void test_provider(void **state)
{
    (void)state;
    assert_int_equal(fa_query_provider(NULL, &param, err, sizeof(err)), 0);
    assert_int_equal(fa_query_provider("github", &param, err, sizeof(err)), 0);
    /* Well-formed but unknown: matches nothing, like an unknown integration id. */
    assert_int_equal(fa_query_provider("google_workspace", &param, err, sizeof(err)), 0);
    assert_int_equal(fa_query_provider("9lives", &param, err, sizeof(err)), CASB_EINVALID);
    assert_string_equal(param, "provider");
    assert_int_equal(fa_query_provider("a23456789012345678901234567890123", &param, err,
                                       sizeof(err)),
                     CASB_EINVALID);
}

static void test_history_and_trend(void **state)
{
    fa_history_page h;
    fa_trend_params t;
    char *cursor = fa_cursor_events_encode(42);

    (void)state;
    assert_int_equal(fa_query_history(&h, NULL, NULL, &param, err, sizeof(err)), 0);
    assert_int_equal(h.before_id, 0);
    assert_int_equal(fa_query_history(&h, "10", cursor, &param, err, sizeof(err)), 0);
    assert_int_equal(h.limit, 10);
    assert_int_equal(h.before_id, 42);
    free(cursor);
    /* Another list's cursor is not this one's. */
    cursor = fa_cursor_instances_encode("acme/api");
    assert_int_equal(fa_query_history(&h, NULL, cursor, &param, err, sizeof(err)), CASB_EINVALID);
    assert_string_equal(param, "cursor");
    free(cursor);
    assert_int_equal(fa_query_history(&h, "0", NULL, &param, err, sizeof(err)), CASB_EINVALID);
    assert_string_equal(param, "limit");

    assert_int_equal(fa_query_trend(&t, NULL, NULL, &param, err, sizeof(err)), 0);
    assert_int_equal(t.days, FA_TREND_DAYS_DEFAULT);
    assert_null(t.integration_id);
    assert_int_equal(fa_query_trend(&t, "00000000-0000-0000-0000-000000000001", "365", &param,
                                    err, sizeof(err)),
                     0);
    assert_int_equal(t.days, 365);
    static const char *const bad_days[] = {"0", "366", "-1", "7d", "", NULL};
    for (int i = 0; bad_days[i]; i++) {
        assert_int_equal(fa_query_trend(&t, NULL, bad_days[i], &param, err, sizeof(err)),
                         CASB_EINVALID);
        assert_string_equal(param, "days");
    }
    assert_int_equal(fa_query_trend(&t, "nope", NULL, &param, err, sizeof(err)), CASB_EINVALID);
    assert_string_equal(param, "integration_id");
}

static void test_bulk_ids(void **state)
{
    static const char *const refused[] = {
        "{}", "{\"ids\":[]}", "{\"ids\":\"x\"}", "{\"ids\":[1]}", "{\"ids\":[\"not-a-uuid\"]}",
        "{\"ids\":[\"00000000-0000-0000-0000-000000000001\"],\"x\":1}", NULL};
    json_t *body, *many;
    long distinct = 0;
    char *ids;

    (void)state;
    /* A repeated id counts once. */
    body = json_loads("{\"ids\":[\"00000000-0000-0000-0000-000000000001\","
                      "\"00000000-0000-0000-0000-0000000000ff\","
                      "\"00000000-0000-0000-0000-000000000001\"]}",
                      0, NULL);
    ids = fa_query_ids(body, &distinct, err, sizeof(err));
    assert_int_equal(distinct, 2);
    assert_string_equal(ids, "{00000000-0000-0000-0000-000000000001,"
                             "00000000-0000-0000-0000-0000000000ff}");
    free(ids);
    json_decref(body);
    for (int i = 0; refused[i]; i++) {
        body = json_loads(refused[i], 0, NULL);
        assert_non_null(body);
        assert_null(fa_query_ids(body, &distinct, err, sizeof(err)));
        json_decref(body);
    }
    /* One more than the bulk limit. */
    many = json_array();
    for (int i = 0; i <= FA_BULK_IDS_MAX; i++)
        json_array_append_new(many, json_string("00000000-0000-0000-0000-000000000001"));
    body = json_pack("{s:o}", "ids", many);
    assert_null(fa_query_ids(body, &distinct, err, sizeof(err)));
    json_decref(body);
}

static void test_search(void **state)
{
    fa_findings_params in;
    fa_findings_query q = {.account_id = ACCOUNT};
    char long_text[FA_SEARCH_MAX_BYTES + 2];

    (void)state;
    memset(&in, 0, sizeof(in));
    in.q = "50%_off\\";
    assert_int_equal(fa_query_findings(&q, &in, &param, err, sizeof(err)), 0);
    assert_string_equal(q.search_like, "%50\\%\\_off\\\\%");
    in.q = NULL;
    assert_int_equal(fa_query_findings(&q, &in, &param, err, sizeof(err)), 0);
    assert_null(q.search_like);
    memset(long_text, 'a', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    in.q = long_text;
    findings_refused(&in, "q", "q: expected 1 to 100 bytes of text without control characters");
    in.q = "tab\there";
    findings_refused(&in, "q", "q: expected 1 to 100 bytes of text without control characters");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_findings_defaults),  cmocka_unit_test(test_findings_every_filter),
        cmocka_unit_test(test_findings_refusals),  cmocka_unit_test(test_findings_foreign_cursor),
        cmocka_unit_test(test_instances),          cmocka_unit_test(test_provider),
        cmocka_unit_test(test_history_and_trend),  cmocka_unit_test(test_bulk_ids),
        cmocka_unit_test(test_search),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
