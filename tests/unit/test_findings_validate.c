/* findings-api: the finding catalogue, validation of casb.scan.result/v1 messages, the rows
 * the ingest SQL reads, and the pagination cursors. Pure: no database, no Kafka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "fa_catalogue.h"
#include "fa_message.h"
#include "fa_views.h"

#define SCAN_ID "7a1c1f2e-59e4-4d0e-9a57-7d1f3f0c2b11"
#define INTEGRATION_ID "0b7e4c5d-1111-4a2b-8c3d-222233334444"
#define ACCOUNT_ID "00000000-0000-0000-0000-000000000001"

static const char CATALOGUE[] =
    "{\"provider\":\"github\",\"finding_types\":["
    " {\"id\":\"github.repo.public\",\"title\":\"Public\",\"severity\":\"low\","
    "  \"category\":\"data_exposure\"},"
    " {\"id\":\"github.org.member_2fa_disabled\",\"title\":\"No 2FA\",\"severity\":\"high\","
    "  \"category\":\"user_activity\"}]}";
static const char OTHER_CATALOGUE[] =
    "{\"provider\":\"slack\",\"finding_types\":["
    " {\"id\":\"slack.workspace.sso_off\",\"title\":\"SSO off\",\"severity\":\"critical\","
    "  \"category\":\"misconfiguration\"}]}";

static fa_catalogue *cat;

static int setup(void **state)
{
    char err[256] = "";
    json_t *doc;

    assert_int_equal(fa_catalogue_new(&cat, err, sizeof(err)), 0);
    doc = json_loads(CATALOGUE, 0, NULL);
    assert_int_equal(fa_catalogue_add(cat, doc, "github.json", err, sizeof(err)), 0);
    json_decref(doc);
    doc = json_loads(OTHER_CATALOGUE, 0, NULL);
    assert_int_equal(fa_catalogue_add(cat, doc, "slack.json", err, sizeof(err)), 0);
    json_decref(doc);
    return 0;
}

static int teardown(void **state)
{
    fa_catalogue_free(cat);
    cat = NULL;
    return 0;
}

/* A valid message of the given kind (of the scan's second attempt) as a JSON object, for
 * tests to break. */
static json_t *base_message(const char *kind, int seq)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s}", "schema",
                     "casb.scan.result/v1", "scan_id", SCAN_ID, "integration_id",
                     INTEGRATION_ID, "account_id", ACCOUNT_ID, "provider", "github", "attempt",
                     2, "seq", seq, "kind", kind, "scan_started_at",
                     "2026-11-28T20:25:55.123456Z");
}

static json_t *finding(const char *type, const char *asset_id)
{
    return json_pack("{s:s, s:{s:s, s:s, s:s, s:n}, s:{s:b}}", "finding_type", type, "asset",
                     "kind", "repository", "id", asset_id, "name", asset_id, "url", "details",
                     "public", 1);
}

static json_t *findings_message(int n)
{
    json_t *m = base_message("findings", 1);
    json_t *list = json_array();
    char id[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "acme/r%d", i);
        json_array_append_new(list, finding("github.repo.public", id));
    }
    json_object_set_new(m, "findings", list);
    return m;
}

static json_t *completed_message(int seq)
{
    json_t *m = base_message("completed", seq);

    json_object_set_new(m, "total_messages", json_integer(seq));
    json_object_set_new(m, "stats", json_pack("{s:i}", "api_calls", 3));
    json_object_set_new(m, "coverage",
                        json_pack("{s:[s], s:[{s:s, s:s}]}", "ran", "github.repo.public",
                                  "skipped", "finding_type", "github.org.member_2fa_disabled",
                                  "reason", "needs owner"));
    return m;
}

/* Validates m (stolen); returns the result and leaves the reason. */
static int check(json_t *m, fa_result_msg *out, char *reason, size_t reasonlen)
{
    char *text = json_dumps(m, JSON_COMPACT);
    int rc;

    json_decref(m);
    rc = fa_message_parse(out, text, strlen(text), cat, reason, reasonlen);
    free(text);
    return rc;
}

static void expect_invalid(json_t *m, const char *reason_part)
{
    fa_result_msg out;
    char reason[256] = "";

    assert_int_equal(check(m, &out, reason, sizeof(reason)), CASB_EINVALID);
    if (!strstr(reason, reason_part))
        fail_msg("reason \"%s\" does not mention \"%s\"", reason, reason_part);
    assert_null(out.root);
}

static void test_catalogue(void **state)
{
    const fa_finding_type *t = fa_catalogue_find(cat, "github.org.member_2fa_disabled");

    assert_non_null(t);
    assert_string_equal(t->provider, "github");
    assert_string_equal(t->severity, "high");
    assert_int_equal(t->severity_rank, 1);
    assert_string_equal(t->category, "user_activity");
    assert_string_equal(casb_json_str(t->doc, "provider"), "github");
    assert_null(fa_catalogue_find(cat, "github.nope"));
    assert_int_equal(fa_catalogue_count(cat), 3);
    /* Ordered by id. */
    assert_string_equal(fa_catalogue_at(cat, 0)->id, "github.org.member_2fa_disabled");
    assert_string_equal(fa_catalogue_at(cat, 2)->id, "slack.workspace.sso_off");
    json_t *ids = fa_catalogue_ids_in_category(cat, "data_exposure");
    assert_int_equal(json_array_size(ids), 1);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "github.repo.public");
    json_decref(ids);
    assert_int_equal(fa_severity_rank("critical"), 0);
    assert_int_equal(fa_severity_rank("low"), 3);
    assert_int_equal(fa_severity_rank("urgent"), -1);
}

static void test_catalogue_rejects_bad_documents(void **state)
{
    static const char *const bad[] = {
        "{\"provider\":\"github\",\"finding_types\":[]}",
        "{\"provider\":\"github\",\"finding_types\":[{\"id\":\"github.x\",\"title\":\"X\","
        "\"severity\":\"urgent\",\"category\":\"misconfiguration\"}]}",
        "{\"provider\":\"github\",\"finding_types\":[{\"id\":\"github.x\",\"title\":\"X\","
        "\"severity\":\"low\",\"category\":\"gossip\"}]}",
        "{\"provider\":\"github\",\"finding_types\":[{\"id\":\"slack.x\",\"title\":\"X\","
        "\"severity\":\"low\",\"category\":\"misconfiguration\"}]}",
        "{\"provider\":\"github\",\"finding_types\":[{\"id\":\"github.X Y\",\"title\":\"X\","
        "\"severity\":\"low\",\"category\":\"misconfiguration\"}]}",
        "{\"provider\":\"github\",\"finding_types\":[{\"id\":\"github.x\","
        "\"severity\":\"low\",\"category\":\"misconfiguration\"}]}",
        /* A duplicate of a type already loaded. */
        "{\"provider\":\"github\",\"finding_types\":[{\"id\":\"github.repo.public\",\"title\":\"X\","
        "\"severity\":\"low\",\"category\":\"misconfiguration\"}]}",
        NULL,
    };
    char err[256];

    for (int i = 0; bad[i]; i++) {
        json_t *doc = json_loads(bad[i], 0, NULL);
        assert_non_null(doc);
        err[0] = '\0';
        if (fa_catalogue_add(cat, doc, "bad.json", err, sizeof(err)) != CASB_EINVALID)
            fail_msg("document %d accepted", i);
        assert_non_null(strstr(err, "bad.json"));
        json_decref(doc);
    }
    assert_int_equal(fa_catalogue_count(cat), 3);
}

static void test_catalogue_directory(void **state)
{
    fa_catalogue *real = NULL;
    char err[512] = "";

    /* The shipped catalogue loads and carries what the API shows. */
    if (fa_catalogue_load_dir(&real, CASB_SOURCE_DIR "/proto/findings", err, sizeof(err)) != 0)
        fail_msg("proto/findings: %s", err);
    assert_true(fa_catalogue_count(real) >= 10);
    const fa_finding_type *t = fa_catalogue_find(real, "github.org.member_2fa_disabled");
    assert_non_null(t);
    assert_string_equal(t->severity, "high");
    assert_non_null(casb_json_str(t->doc, "title"));
    fa_catalogue_free(real);

    /* A missing directory and one without catalogues are refused. */
    assert_int_equal(fa_catalogue_load_dir(&real, "/nonexistent/casb", err, sizeof(err)),
                     CASB_EINVALID);
    assert_null(real);
    assert_int_equal(fa_catalogue_load_dir(&real, CASB_SOURCE_DIR "/proto/migrations", err,
                                           sizeof(err)),
                     CASB_EINVALID);
    assert_non_null(strstr(err, "no finding catalogue"));
}

/* The JSON text rows(ms, n) makes, parsed. */
static json_t *rows_of(int (*rows)(const fa_result_msg *const *, size_t, casb_text *),
                       const fa_result_msg *const *ms, size_t n)
{
    casb_text t = {0};
    char err[128];
    json_t *v;

    assert_int_equal(rows(ms, n, &t), 0);
    v = casb_json_parse(t.data, t.len, 0, err, sizeof(err));
    if (!v)
        fail_msg("rows are not JSON: %s", err);
    casb_text_free(&t);
    return v;
}

static void test_valid_findings_message(void **state)
{
    fa_result_msg m;
    char reason[256] = "";
    json_t *msg = findings_message(2);

    /* A second sighting of acme/r0 in the same message, and a type of another table. */
    json_array_append_new(json_object_get(msg, "findings"), finding("github.repo.public", "acme/r0"));
    json_t *member = json_pack("{s:s, s:{s:s, s:s}}", "finding_type",
                               "github.org.member_2fa_disabled", "asset", "kind", "member", "id",
                               "alice");
    json_array_append_new(json_object_get(msg, "findings"), member);
    assert_int_equal(check(msg, &m, reason, sizeof(reason)), 0);
    assert_int_equal(m.kind, FA_KIND_FINDINGS);
    assert_int_equal(m.seq, 1);
    assert_int_equal(m.attempt, 2);
    assert_string_equal(m.scan_id, SCAN_ID);
    assert_int_equal(json_array_size(m.findings), 4);

    const fa_result_msg *one[] = {&m};
    json_t *types = rows_of(fa_message_type_rows, one, 1);
    assert_int_equal(json_array_size(types), 2);
    assert_string_equal(casb_json_str(json_array_get(types, 0), "finding_type"), "github.repo.public");
    assert_string_equal(casb_json_str(json_array_get(types, 0), "severity"), "low");
    assert_string_equal(casb_json_str(json_array_get(types, 1), "severity"), "high");
    json_decref(types);

    json_t *rows = rows_of(fa_message_instance_rows, one, 1);
    assert_int_equal(json_array_size(rows), 4);
    json_t *r3 = json_array_get(rows, 3);
    assert_int_equal(casb_json_int(r3, "seq", -1), 1);
    assert_int_equal(casb_json_int(r3, "ord", -1), 3);
    assert_string_equal(casb_json_str(r3, "finding_type"), "github.org.member_2fa_disabled");
    assert_string_equal(casb_json_str(r3, "asset_kind"), "member");
    assert_string_equal(casb_json_str(r3, "asset_id"), "alice");
    assert_string_equal(casb_json_str(r3, "asset_name"), "alice"); /* no name: the id */
    assert_true(json_is_null(json_object_get(r3, "asset_url")));
    assert_true(json_is_object(json_object_get(r3, "details")));
    assert_true(casb_json_bool(json_object_get(json_array_get(rows, 0), "details"), "public", 0));
    json_decref(rows);

    /* Two messages of a batch: the types once, each sighting numbered by its message and
     * place in it, so the second message's sighting of an asset wins over the first's. */
    fa_result_msg m2;
    json_t *msg2 = findings_message(1);
    json_object_set_new(msg2, "seq", json_integer(2));
    json_array_append_new(json_object_get(msg2, "findings"), json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:{s:s}}", "finding_type", "github.org.member_2fa_disabled",
        "asset", "kind", "member", "id", "alice", "name", "Alice \"A\" \u00e9",
        "details", "note", "line\nbreak"));
    assert_int_equal(check(msg2, &m2, reason, sizeof(reason)), 0);
    const fa_result_msg *two[] = {&m, &m2};
    types = rows_of(fa_message_type_rows, two, 2);
    assert_int_equal(json_array_size(types), 2);
    json_decref(types);
    rows = rows_of(fa_message_instance_rows, two, 2);
    size_t n1 = json_array_size(m.findings), n2 = json_array_size(m2.findings);
    assert_int_equal(json_array_size(rows), n1 + n2);
    json_t *last = json_array_get(rows, n1 + n2 - 1);
    assert_int_equal(casb_json_int(last, "seq", -1), 2);
    assert_int_equal(casb_json_int(last, "ord", -1), (long long)n2 - 1);
    assert_string_equal(casb_json_str(last, "asset_id"), "alice");
    assert_string_equal(casb_json_str(last, "asset_name"), "Alice \"A\" \u00e9");
    assert_string_equal(casb_json_str(json_object_get(last, "details"), "note"), "line\nbreak");
    json_decref(rows);
    fa_message_clear(&m2);
    fa_message_clear(&m);
    assert_null(m.root);
}

static void test_valid_end_messages(void **state)
{
    fa_result_msg m;
    char reason[256] = "";

    assert_int_equal(check(completed_message(3), &m, reason, sizeof(reason)), 0);
    assert_int_equal(m.kind, FA_KIND_COMPLETED);
    assert_int_equal(m.total_messages, 3);
    assert_int_equal(m.attempt, 2);
    assert_int_equal(json_array_size(json_object_get(m.coverage, "ran")), 1);
    assert_int_equal(casb_json_int(m.stats, "api_calls", -1), 3);
    fa_message_clear(&m);

    json_t *f = base_message("failed", 2);
    json_object_set_new(f, "total_messages", json_integer(2));
    json_object_set_new(f, "error", json_string("GitHub answered 401"));
    json_object_set_new(f, "error_kind", json_string("auth"));
    assert_int_equal(check(f, &m, reason, sizeof(reason)), 0);
    assert_int_equal(m.kind, FA_KIND_FAILED);
    assert_string_equal(m.error, "GitHub answered 401");
    assert_string_equal(m.error_kind, "auth");
    fa_message_clear(&m);

    /* Without error_kind a failure is internal. */
    f = base_message("failed", 1);
    json_object_set_new(f, "total_messages", json_integer(1));
    json_object_set_new(f, "error", json_string("boom"));
    assert_int_equal(check(f, &m, reason, sizeof(reason)), 0);
    assert_string_equal(m.error_kind, "internal");
    fa_message_clear(&m);

    json_t *p = base_message("progress", 4);
    json_object_set_new(p, "stats", json_pack("{s:i}", "assets_seen", 10));
    assert_int_equal(check(p, &m, reason, sizeof(reason)), 0);
    assert_int_equal(m.kind, FA_KIND_PROGRESS);
    fa_message_clear(&m);

    /* 500 findings is the limit, included. */
    assert_int_equal(check(findings_message(500), &m, reason, sizeof(reason)), 0);
    fa_message_clear(&m);
}

static void test_envelope_errors(void **state)
{
    json_t *m;

    m = findings_message(1);
    json_object_set_new(m, "schema", json_string("casb.scan.result/v2"));
    expect_invalid(m, "schema");
    m = findings_message(1);
    json_object_del(m, "schema");
    expect_invalid(m, "schema");
    m = findings_message(1);
    json_object_set_new(m, "scan_id", json_string("7a1c1f2e"));
    expect_invalid(m, "scan_id");
    m = findings_message(1);
    json_object_set_new(m, "integration_id", json_integer(7));
    expect_invalid(m, "integration_id");
    m = findings_message(1);
    json_object_del(m, "account_id");
    expect_invalid(m, "account_id");
    m = findings_message(1);
    json_object_set_new(m, "provider", json_string(""));
    expect_invalid(m, "provider");
    m = findings_message(1);
    json_object_set_new(m, "seq", json_integer(0));
    expect_invalid(m, "seq");
    m = findings_message(1);
    json_object_set_new(m, "seq", json_string("1"));
    expect_invalid(m, "seq");
    /* Every message names its attempt (>= 1), whatever its kind. */
    m = findings_message(1);
    json_object_del(m, "attempt");
    expect_invalid(m, "attempt");
    m = completed_message(2);
    json_object_del(m, "attempt");
    expect_invalid(m, "attempt");
    m = findings_message(1);
    json_object_set_new(m, "attempt", json_integer(0));
    expect_invalid(m, "attempt");
    m = findings_message(1);
    json_object_set_new(m, "attempt", json_integer(-3));
    expect_invalid(m, "attempt");
    m = findings_message(1);
    json_object_set_new(m, "attempt", json_string("1"));
    expect_invalid(m, "attempt");
    m = findings_message(1);
    json_object_set_new(m, "attempt", json_real(1.0));
    expect_invalid(m, "attempt");
    m = findings_message(1);
    json_object_set_new(m, "attempt", json_null());
    expect_invalid(m, "attempt");
    m = findings_message(1);
    json_object_set_new(m, "attempt", json_integer(2147483649LL));
    expect_invalid(m, "attempt");
    m = findings_message(1);
    json_object_set_new(m, "kind", json_string("partial"));
    expect_invalid(m, "kind");
    m = findings_message(1);
    json_object_set_new(m, "scan_started_at", json_string("yesterday"));
    expect_invalid(m, "scan_started_at");
    m = findings_message(1);
    json_object_set_new(m, "stats", json_integer(3));
    expect_invalid(m, "stats");

    fa_result_msg out;
    char reason[256] = "";
    assert_int_equal(fa_message_parse(&out, "{\"schema\":", 10, cat, reason, sizeof(reason)),
                     CASB_EINVALID);
    assert_non_null(strstr(reason, "not JSON"));
    assert_int_equal(fa_message_parse(&out, "[]", 2, cat, reason, sizeof(reason)), CASB_EINVALID);
}

static void test_findings_shape_errors(void **state)
{
    json_t *m, *f;

    m = base_message("findings", 1);
    expect_invalid(m, "findings");
    m = base_message("findings", 1);
    json_object_set_new(m, "findings", json_object());
    expect_invalid(m, "findings");
    expect_invalid(findings_message(501), "more than 500");

    m = findings_message(2);
    f = json_array_get(json_object_get(m, "findings"), 1);
    json_object_set_new(f, "finding_type", json_string("github.repo.secret_sauce"));
    expect_invalid(m, "findings[1].finding_type: unknown finding type");

    /* A type of another provider is refused: it would file a Slack finding under GitHub. */
    m = findings_message(1);
    f = json_array_get(json_object_get(m, "findings"), 0);
    json_object_set_new(f, "finding_type", json_string("slack.workspace.sso_off"));
    expect_invalid(m, "another provider");

    m = findings_message(1);
    f = json_array_get(json_object_get(m, "findings"), 0);
    json_object_del(f, "asset");
    expect_invalid(m, "findings[0].asset");

    m = findings_message(1);
    json_object_del(json_object_get(json_array_get(json_object_get(m, "findings"), 0), "asset"),
                    "id");
    expect_invalid(m, "asset.id");

    m = findings_message(1);
    json_object_set_new(json_object_get(json_array_get(json_object_get(m, "findings"), 0), "asset"),
                        "kind", json_string(""));
    expect_invalid(m, "asset.kind");

    char *long_id = malloc(2000);
    memset(long_id, 'a', 1999);
    long_id[1999] = '\0';
    m = findings_message(1);
    json_object_set_new(json_object_get(json_array_get(json_object_get(m, "findings"), 0), "asset"),
                        "id", json_string(long_id));
    free(long_id);
    expect_invalid(m, "asset.id");

    /* PostgreSQL's text and jsonb refuse NUL characters: the parser refuses them first,
     * in assets and details alike. */
    m = findings_message(1);
    json_object_set_new(json_object_get(json_array_get(json_object_get(m, "findings"), 0), "asset"),
                        "name", json_stringn("a\0b", 3));
    expect_invalid(m, "not JSON");
    m = findings_message(1);
    json_object_set_new(json_array_get(json_object_get(m, "findings"), 0), "details",
                        json_pack("{s:o}", "x", json_stringn("a\0b", 3)));
    expect_invalid(m, "not JSON");

    m = findings_message(1);
    json_object_set_new(json_array_get(json_object_get(m, "findings"), 0), "details",
                        json_string("x"));
    expect_invalid(m, "details");
}

static void test_end_message_errors(void **state)
{
    json_t *m;

    m = completed_message(3);
    json_object_set_new(m, "total_messages", json_integer(4));
    expect_invalid(m, "total_messages");
    m = completed_message(3);
    json_object_del(m, "total_messages");
    expect_invalid(m, "total_messages");
    m = completed_message(3);
    json_object_del(m, "coverage");
    expect_invalid(m, "coverage");
    m = completed_message(3);
    json_object_del(json_object_get(m, "coverage"), "ran");
    expect_invalid(m, "coverage.ran");
    m = completed_message(3);
    json_array_append_new(casb_json_path(m, "coverage.ran"), json_string("github.unknown"));
    expect_invalid(m, "coverage.ran[1]");
    m = completed_message(3);
    json_array_append_new(casb_json_path(m, "coverage.ran"), json_integer(5));
    expect_invalid(m, "coverage.ran[1]");
    m = completed_message(3);
    json_array_append_new(casb_json_path(m, "coverage.skipped"), json_string("x"));
    expect_invalid(m, "coverage.skipped[1]");

    m = base_message("failed", 1);
    json_object_set_new(m, "total_messages", json_integer(1));
    expect_invalid(m, "error");
    m = base_message("failed", 1);
    json_object_set_new(m, "total_messages", json_integer(1));
    json_object_set_new(m, "error", json_string("x"));
    json_object_set_new(m, "error_kind", json_string("cosmic rays"));
    expect_invalid(m, "error_kind");
}

static void test_rfc3339(void **state)
{
    assert_true(fa_rfc3339_valid("2026-11-28T20:25:55Z"));
    assert_true(fa_rfc3339_valid("2026-11-28T20:25:55.123456Z"));
    assert_true(fa_rfc3339_valid("2026-11-28T20:25:55.1+02:00"));
    assert_true(fa_rfc3339_valid("2026-11-28T20:25:55-07:00"));
    assert_false(fa_rfc3339_valid("2026-11-28 20:25:55Z"));
    assert_false(fa_rfc3339_valid("2026-13-28T20:25:55Z"));
    assert_false(fa_rfc3339_valid("2026-11-28T24:25:55Z"));
    assert_false(fa_rfc3339_valid("2026-11-28T20:25:55"));
    assert_false(fa_rfc3339_valid("2026-11-28T20:25:55.Z"));
    assert_false(fa_rfc3339_valid("2026-11-28T20:25:55Z; DROP TABLE"));
    assert_false(fa_rfc3339_valid(NULL));
}

static void test_cursors(void **state)
{
    fa_findings_cursor in = {FA_SORT_LAST_SEEN, -1795824000000000LL, 0, SCAN_ID}, out;
    char *c = fa_cursor_findings_encode(&in);

    (void)state;
    assert_non_null(c);
    assert_int_equal(fa_cursor_findings_decode(c, &out), 0);
    assert_int_equal(out.sort, FA_SORT_LAST_SEEN);
    assert_true(out.k1 == in.k1 && out.k2 == 0);
    assert_string_equal(out.id, SCAN_ID);
    free(c);
    assert_int_equal(fa_cursor_findings_decode("bm9wZQ", &out), -1);
    assert_int_equal(fa_cursor_findings_decode("!!", &out), -1);
    /* A syntactically fine cursor with an unknown sort or a bad id is refused. */
    in.sort = 9;
    c = fa_cursor_findings_encode(&in);
    assert_int_equal(fa_cursor_findings_decode(c, &out), -1);
    free(c);
    in.sort = FA_SORT_SEVERITY;
    snprintf(in.id, sizeof(in.id), "zzz");
    c = fa_cursor_findings_encode(&in);
    assert_int_equal(fa_cursor_findings_decode(c, &out), -1);
    free(c);

    c = fa_cursor_instances_encode("acme/api#hook:42");
    char *asset = fa_cursor_instances_decode(c);
    assert_non_null(asset);
    assert_string_equal(asset, "acme/api#hook:42");
    free(asset);
    free(c);
    assert_null(fa_cursor_instances_decode("bm9wZQ"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_catalogue_rejects_bad_documents),
        cmocka_unit_test(test_catalogue_directory),
        cmocka_unit_test(test_valid_findings_message),
        cmocka_unit_test(test_valid_end_messages),
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_findings_shape_errors),
        cmocka_unit_test(test_end_message_errors),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_cursors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
