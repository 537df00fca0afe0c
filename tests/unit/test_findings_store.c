/* findings-api read queries (fa_store) and their JSON views against a real PostgreSQL:
 * CASB_TEST_DATABASE_URL (tests/run exports it). Keyset pagination must visit every finding
 * once in the documented order, filters must filter, and accounts must not see each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/json.h"
#include "casb/migrate.h"
#include "fa_catalogue.h"
#include "fa_store.h"
#include "fa_views.h"

static casb_db *db;
static fa_catalogue *cat;
static char account[37], other_account[37], integration[37], other_integration[37];
static char public_finding[37];

static void exec_ok(const char *sql, int n, const char *const *params)
{
    char err[256] = "";

    if (casb_db_exec(db, sql, n, params, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", sql, err);
}

static void add_finding(const char *acct, const char *integ, const char *type,
                        const char *severity, int count, char id_out[37])
{
    char count_s[16];

    casb_uuid_v4(id_out);
    snprintf(count_s, sizeof(count_s), "%d", count);
    const char *params[] = {id_out, acct, integ, type, severity, count_s};
    exec_ok("INSERT INTO findings (id, account_id, integration_id, finding_type, severity,"
            " instance_count, first_seen_at, last_seen_at)"
            " VALUES ($1, $2, $3, $4, $5, $6::int, now(), now())",
            6, params);
}

static void add_instance(const char *finding_id, const char *integ, const char *asset,
                         const char *state)
{
    char id[37], scan[37];

    casb_uuid_v4(id);
    casb_uuid_v4(scan);
    const char *params[] = {id, finding_id, integ, asset, state, scan};
    exec_ok("INSERT INTO finding_instances (id, finding_id, integration_id, asset_kind, asset_id,"
            " asset_name, state, first_seen_at, last_seen_at, last_scan_id, last_scan_started_at)"
            " VALUES ($1, $2, $3, 'member', $4, $4, $5, now(), now(), $6, now())",
            6, params);
}

static int setup(void **state)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    char err[256] = "", fid[37];

    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL "
                 "(tests/run exports it)");
    if (casb_db_open(&db, url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    if (casb_migrate(db, casb_migrations, casb_migrations_count, NULL, err, sizeof(err)) != 0)
        fail_msg("casb_migrate: %s", err);
    if (fa_catalogue_load_dir(&cat, CASB_SOURCE_DIR "/proto/findings", err, sizeof(err)) != 0)
        fail_msg("catalogue: %s", err);

    casb_uuid_v4(account);
    casb_uuid_v4(other_account);
    casb_uuid_v4(integration);
    casb_uuid_v4(other_integration);
    const char *pa[] = {account, other_account};
    exec_ok("INSERT INTO accounts (id, name) VALUES ($1, 'store-a'), ($2, 'store-b')", 2, pa);
    const char *pi[] = {integration, account, other_integration, other_account};
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, credentials_sealed,"
            " credentials_key_id, scan_interval_s, health)"
            " VALUES ($1, $2, 'github', 'acme', 'v1.x.y', 'x', 3600, 'healthy'),"
            "        ($3, $4, 'github', 'other', 'v1.x.y', 'x', 3600, 'unhealthy')",
            4, pi);

    /* Ties on severity and on count, so that the id decides the order within them. */
    add_finding(account, integration, "github.org.member_2fa_disabled", "high", 5, fid);
    add_instance(fid, integration, "alice", "active");
    add_instance(fid, integration, "bob", "active");
    add_instance(fid, integration, "carol", "resolved");
    add_instance(fid, integration, "dave", "hidden");
    add_instance(fid, integration, "erin", "active");
    add_finding(account, integration, "github.org.two_factor_requirement_disabled", "high", 1, fid);
    add_finding(account, integration, "github.repo.outside_collaborator_admin", "high", 1, fid);
    add_finding(account, integration, "github.webhook.insecure_ssl", "high", 5, fid);
    add_finding(account, integration, "github.repo.public", "low", 3, fid);
    snprintf(public_finding, sizeof(public_finding), "%s", fid);
    /* Every character a view must escape, and some it must not. */
    add_instance(fid, integration, "zo\xc3\xab \"q\" back\\slash/\nline\ttab\x01", "active");
    const char *pd[] = {fid};
    exec_ok("UPDATE finding_instances SET asset_url = 'https://x.example/?a=\"1\"',"
            " details = '{\"note\": \"a\\\"b\\\\c\\n\", \"n\": [1, {\"x\": null}]}'"
            " WHERE finding_id = $1", 1, pd);
    add_finding(account, integration, "github.repo.stale", "medium", 2, fid);
    add_finding(account, integration, "github.repo.deploy_key_write", "medium", 2, fid);
    add_finding(account, integration, "github.webhook.no_secret", "medium", 0, fid);
    add_finding(account, integration, "github.org.app_broad_permissions", "medium", 4, fid);
    exec_ok("UPDATE findings SET status = 'ignored' WHERE finding_type = 'github.repo.stale'"
            " AND account_id = $1", 1, pa);
    add_finding(other_account, other_integration, "github.repo.public", "low", 9, fid);
    return 0;
}

static int teardown(void **state)
{
    const char *pa[] = {account, other_account};

    exec_ok("DELETE FROM integrations WHERE account_id IN ($1, $2)", 2, pa);
    exec_ok("DELETE FROM accounts WHERE id IN ($1, $2)", 2, pa);
    fa_catalogue_free(cat);
    casb_db_close(db);
    return 0;
}

/* Pages through the list with the given page size; returns the finding types in order as
 * one comma-separated string. */
static char *page_through(fa_findings_query q, int page_size)
{
    static char out[4096];
    char err[256] = "";
    int pages = 0;

    out[0] = '\0';
    q.limit = page_size; /* the store fetches one row more */
    for (;;) {
        PGresult *res = fa_store_list_findings(db, &q, err, sizeof(err));
        int n;

        if (!res)
            fail_msg("list: %s", err);
        n = PQntuples(res);
        for (int i = 0; i < n && i < page_size; i++) {
            json_t *f = fa_view_finding(res, i, cat, 0);
            strcat(out, casb_json_path_str(f, "finding_type.id"));
            strcat(out, ",");
            json_decref(f);
        }
        if (n <= page_size) {
            PQclear(res);
            break;
        }
        fa_findings_cursor last = {q.sort, casb_db_get_int(res, page_size - 1, "k1", -1),
                                   casb_db_get_int(res, page_size - 1, "k2", -1), ""};

        assert_non_null(casb_db_get_uuid(res, page_size - 1, "id", last.id));
        char *cursor = fa_cursor_findings_encode(&last);
        PQclear(res);
        assert_int_equal(fa_cursor_findings_decode(cursor, &q.cursor), 0);
        free(cursor);
        q.has_cursor = 1;
        assert_true(++pages < 50);
    }
    return out;
}

/* The list page a page view writes for the first n findings or instances of res, parsed: an
 * array. */
static json_t *page_of(const PGresult *res, int n, int findings)
{
    casb_text t = {0};
    char err[128] = "";
    json_t *v;

    casb_text_append_str(&t, "[");
    if (findings)
        assert_int_equal(fa_view_findings_append(&t, res, n, cat), 0);
    else
        assert_int_equal(fa_view_instances_append(&t, res, n), 0);
    casb_text_append_str(&t, "]");
    v = casb_json_parse(t.data, t.len, 0, err, sizeof(err));
    if (!v)
        fail_msg("%s: %s", err, t.data);
    assert_int_equal(json_array_size(v), (size_t)n);
    casb_text_free(&t);
    return v;
}

/* The column's value as text: a uuid's (the store's rows are binary), else as it came. */
static const char *column_text(const PGresult *res, int row, const char *column, char uuid[37])
{
    int col = PQfnumber(res, column);

    if (col >= 0 && PQfformat(res, col) == 1 && PQftype(res, col) == 2950 /* uuid */)
        return casb_db_get_uuid(res, row, column, uuid);
    return casb_db_get(res, row, column);
}

/* The member at path of v is the column's text, or null for SQL NULL. */
static void assert_member(const json_t *v, const char *path, const PGresult *res, int row,
                          const char *column)
{
    char uuid[37];
    const char *want = column_text(res, row, column, uuid);
    const json_t *m = casb_json_path(v, path);

    if (!want) {
        assert_true(json_is_null(m));
        return;
    }
    if (!json_is_string(m))
        fail_msg("%s: not a string", path);
    assert_string_equal(json_string_value(m), want);
}

/* The member at path of v is the column's time (a timestamptz, binary) in RFC 3339 UTC (as
 * strftime writes it), or null for SQL NULL. */
static void assert_time_member(const json_t *v, const char *path, const PGresult *res, int row,
                               const char *column)
{
    const json_t *m = casb_json_path(v, path);
    long long secs;
    char want[32];
    struct tm tm;
    time_t t;

    assert_true(PQfnumber(res, column) >= 0);
    if (!casb_db_get(res, row, column)) {
        assert_true(json_is_null(m));
        return;
    }
    assert_int_equal(casb_db_get_time(res, row, column, &secs), 0);
    t = (time_t)secs;
    assert_non_null(gmtime_r(&t, &tm));
    strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!json_is_string(m))
        fail_msg("%s: not a string", path);
    assert_string_equal(json_string_value(m), want);
}

/* The instance view holds each column of the row, member by member: an oracle apart from
 * the view's own code, and from its escaping (jansson decodes what the view wrote). */
/* The instance view of row: its columns, and its finding's ids from header (a page of
 * fa_store_list_instances: row 0), or from the row itself when header is -1. */
static void assert_instance_view(const json_t *v, const PGresult *res, int row, int header)
{
    static const char *const members[][2] = {
        {"id", "id"}, {"asset.kind", "asset_kind"}, {"asset.id", "asset_id"},
        {"asset.name", "asset_name"}, {"asset.url", "asset_url"}, {"state", "state"},
        {"last_scan_id", "last_scan_id"},
    };
    json_t *details = json_loads(casb_db_get(res, row, "details"), 0, NULL);

    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
        assert_member(v, members[i][0], res, row, members[i][1]);
    assert_member(v, "finding_id", res, header >= 0 ? header : row, "finding_id");
    assert_member(v, "integration_id", res, header >= 0 ? header : row, "integration_id");
    assert_non_null(casb_json_str(v, "finding_id"));
    assert_non_null(casb_json_str(v, "integration_id"));
    assert_time_member(v, "first_seen_at", res, row, "first_seen_at");
    assert_time_member(v, "last_seen_at", res, row, "last_seen_at");
    assert_time_member(v, "resolved_at", res, row, "resolved_at");
    assert_non_null(details);
    assert_true(json_equal(json_object_get(v, "details"), details));
    assert_int_equal(json_object_size(v), 10);
    assert_int_equal(json_object_size(json_object_get(v, "asset")), 4);
    json_decref(details);
}

/* The finding view: its columns, its type from the catalogue and, detailed, the catalogue's
 * description and the rest. */
static void assert_finding_view(const json_t *f, const PGresult *res, int row, int detailed)
{
    const fa_finding_type *t = fa_catalogue_find(cat, casb_db_get(res, row, "finding_type"));
    size_t details = 0;

    assert_non_null(t);
    assert_member(f, "id", res, row, "id");
    assert_member(f, "integration_id", res, row, "integration_id");
    assert_member(f, "provider", res, row, "provider");
    assert_member(f, "integration_name", res, row, "integration_name");
    assert_member(f, "finding_type.id", res, row, "finding_type");
    assert_string_equal(casb_json_path_str(f, "finding_type.title"), t->title);
    assert_string_equal(casb_json_path_str(f, "finding_type.severity"), t->severity);
    assert_string_equal(casb_json_path_str(f, "finding_type.category"), t->category);
    assert_member(f, "severity", res, row, "severity");
    assert_member(f, "status", res, row, "status");
    assert_int_equal(casb_json_int(f, "instance_count", -1),
                     casb_db_get_int(res, row, "instance_count", -2));
    assert_time_member(f, "first_seen_at", res, row, "first_seen_at");
    assert_time_member(f, "last_seen_at", res, row, "last_seen_at");
    assert_true(json_is_boolean(json_object_get(f, "severity_tuned")));
    assert_int_equal(json_is_true(json_object_get(f, "severity_tuned")),
                     casb_db_get_bool(res, row, "severity_tuned"));
    assert_string_equal(casb_json_str(f, "default_severity"), t->severity);
    for (int i = 0; FA_DETAIL_MEMBERS[i]; i++) {
        json_t *want = json_object_get(t->doc, FA_DETAIL_MEMBERS[i]);
        if (!want || !detailed) {
            assert_null(json_object_get(f, FA_DETAIL_MEMBERS[i]));
            continue;
        }
        assert_true(json_equal(json_object_get(f, FA_DETAIL_MEMBERS[i]), want));
        details++;
    }
    assert_int_equal(json_object_size(f), 12 + details);
}

static void test_order_and_keyset_pagination(void **state)
{
    fa_findings_query q = {.account_id = account};
    char all[4096];

    /* One page: the reference order. */
    snprintf(all, sizeof(all), "%s", page_through(q, 500));
    /* Critical none; high by count desc then id; medium; low. Zero-instance findings hidden. */
    assert_non_null(strstr(all, "github.org.app_broad_permissions,github.repo."));
    assert_null(strstr(all, "github.webhook.no_secret"));
    assert_true(strstr(all, "github.repo.public") > strstr(all, "github.repo.deploy_key_write"));
    char *first_high_1 = strstr(all, "github.org.two_factor_requirement_disabled");
    char *high_5 = strstr(all, "github.webhook.insecure_ssl");
    assert_true(high_5 < first_high_1);
    assert_true(strstr(all, "github.org.member_2fa_disabled") < first_high_1);
    int commas = 0;
    for (char *p = all; *p; p++)
        commas += *p == ',';
    assert_int_equal(commas, 8);

    /* Every page size visits the same rows in the same order. */
    for (int size = 1; size <= 9; size++) {
        if (strcmp(page_through(q, size), all) != 0)
            fail_msg("page size %d: %s != %s", size, page_through(q, size), all);
    }
    q.include_resolved = 1;
    assert_non_null(strstr(page_through(q, 2), "github.webhook.no_secret"));
    q.include_resolved = 0;

    /* The other orders: the same rows, each page size visiting them in the same order. */
    for (int sort = FA_SORT_INSTANCE_COUNT; sort <= FA_SORT_LAST_SEEN; sort++) {
        char sorted[4096];

        q.sort = sort;
        snprintf(sorted, sizeof(sorted), "%s", page_through(q, 500));
        assert_int_equal(strlen(sorted), strlen(all));
        for (int size = 1; size <= 9; size++) {
            if (strcmp(page_through(q, size), sorted) != 0)
                fail_msg("sort %d, page size %d: %s != %s", sort, size, page_through(q, size),
                         sorted);
        }
        if (sort == FA_SORT_INSTANCE_COUNT) {
            /* Most instances first, whatever the severity: the two 5s, then the medium 4,
             * before the high 1. */
            char *broad = strstr(sorted, "github.org.app_broad_permissions");

            assert_true(strstr(sorted, "github.org.member_2fa_disabled") < broad);
            assert_true(strstr(sorted, "github.webhook.insecure_ssl") < broad);
            assert_true(broad < strstr(sorted, "github.org.two_factor_requirement_disabled"));
        }
    }
}

/* One severity, in each order and paged: the filter compares the rank too, which lets the
 * scan read the severity's part of an order's index; the pages must be the same rows. */
static void test_one_severity_in_each_order(void **state)
{
    fa_findings_query q = {.account_id = account, .severity = "high"};

    (void)state;
    for (int sort = FA_SORT_SEVERITY; sort <= FA_SORT_LAST_SEEN; sort++) {
        char all[4096];
        const char *fives[] = {"github.org.member_2fa_disabled,", "github.webhook.insecure_ssl,"};
        const char *ones[] = {"github.org.two_factor_requirement_disabled,",
                              "github.repo.outside_collaborator_admin,"};

        q.sort = sort;
        snprintf(all, sizeof(all), "%s", page_through(q, 500));
        assert_int_equal(strlen(all), strlen(fives[0]) + strlen(fives[1]) + strlen(ones[0]) +
                                          strlen(ones[1]));
        for (int i = 0; i < 4; i++)
            assert_non_null(strstr(all, i < 2 ? fives[i] : ones[i - 2]));
        /* Within one severity both orders are by instances: the 5s before the 1s. */
        if (sort != FA_SORT_LAST_SEEN)
            assert_true(strstr(all, ones[0]) >= all + strlen(fives[0]) + strlen(fives[1]) &&
                        strstr(all, ones[1]) >= all + strlen(fives[0]) + strlen(fives[1]));
        for (int size = 1; size <= 4; size++) {
            if (strcmp(page_through(q, size), all) != 0)
                fail_msg("sort %d, page size %d: %s != %s", sort, size, page_through(q, size),
                         all);
        }
    }
}

static void test_filters_and_account_scope(void **state)
{
    fa_findings_query q = {.account_id = account};

    q.severity = "low";
    assert_string_equal(page_through(q, 10), "github.repo.public,");
    q.severity = NULL;
    q.status = "ignored";
    assert_string_equal(page_through(q, 10), "github.repo.stale,");
    q.status = NULL;
    q.finding_type = "github.org.two_factor_requirement_disabled";
    assert_string_equal(page_through(q, 10), "github.org.two_factor_requirement_disabled,");
    q.finding_type = NULL;
    json_t *ids = fa_catalogue_ids_in_category(cat, "shadow_it");
    char *ids_s = json_dumps(ids, JSON_COMPACT);
    q.types_json = ids_s;
    assert_string_equal(page_through(q, 10), "github.org.app_broad_permissions,");
    q.types_json = NULL;
    free(ids_s);
    json_decref(ids);
    q.provider = "slack";
    assert_string_equal(page_through(q, 10), "");
    q.provider = "github";
    q.integration_id = other_integration; /* another account's: invisible */
    assert_string_equal(page_through(q, 10), "");

    fa_findings_query other = {.account_id = other_account};
    assert_string_equal(page_through(other, 10), "github.repo.public,");
}

static void test_get_finding_and_instances(void **state)
{
    fa_findings_query q = {.account_id = account, .finding_type = "github.org.member_2fa_disabled",
                           .limit = 2};
    char err[256] = "", id[37];
    PGresult *res = fa_store_list_findings(db, &q, err, sizeof(err));

    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    assert_non_null(casb_db_get_uuid(res, 0, "id", id));
    PQclear(res);

    res = fa_store_get_finding(db, account, id, err, sizeof(err));
    assert_int_equal(PQntuples(res), 1);
    json_t *f = fa_view_finding(res, 0, cat, 1);
    assert_string_equal(casb_json_str(f, "integration_name"), "acme");
    assert_string_equal(casb_json_path_str(f, "finding_type.title"),
                        "GitHub: Organization user two-factor authentication disabled");
    assert_string_equal(casb_json_path_str(f, "finding_type.category"), "user_activity");
    assert_non_null(casb_json_str(f, "description"));
    assert_true(json_is_array(json_object_get(f, "remediation")));
    assert_int_equal(casb_json_int(f, "instance_count", -1), 5);
    assert_finding_view(f, res, 0, 1);
    json_decref(f);
    /* A list's page carries the same document, written as text. */
    f = page_of(res, 1, 1);
    assert_finding_view(json_array_get(f, 0), res, 0, 1);
    json_decref(f);
    f = fa_view_finding(res, 0, cat, 0);
    assert_finding_view(f, res, 0, 0);
    json_decref(f);
    PQclear(res);
    /* Not visible from another account. */
    res = fa_store_get_finding(db, other_account, id, err, sizeof(err));
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);

    /* Instances in asset order, by state, with a keyset cursor, after the finding's row. */
    /* A page of 2 brings a third instance: the sign that another page exists. */
    res = fa_store_list_instances(db, account, id, "active", NULL, 2, err, sizeof(err));
    assert_int_equal(PQntuples(res), 1 + 3);
    char uuid[37];
    assert_string_equal(casb_db_get_uuid(res, 0, "finding_id", uuid), id);
    assert_string_equal(casb_db_get_uuid(res, 0, "integration_id", uuid), integration);
    assert_null(casb_db_get(res, 0, "asset_id"));
    assert_null(casb_db_get(res, 1, "finding_id"));
    assert_string_equal(casb_db_get(res, 3, "asset_id"), "erin");
    json_t *inst = page_of(res, 3, 0);
    for (int i = 0; i < 3; i++)
        assert_instance_view(json_array_get(inst, i), res, 1 + i, 0);
    assert_string_equal(casb_json_path_str(json_array_get(inst, 0), "asset.id"), "alice");
    json_decref(inst);
    /* One instance on its own (fa_store_get_instance): the same document. */
    PGresult *one = fa_store_get_instance(db, account, casb_db_get_uuid(res, 1, "id", uuid), err,
                                          sizeof(err));
    assert_int_equal(PQntuples(one), 1);
    inst = fa_view_instance(one, 0);
    assert_string_equal(casb_json_path_str(inst, "asset.id"), "alice");
    assert_string_equal(casb_json_str(inst, "state"), "active");
    assert_true(json_is_object(json_object_get(inst, "details")));
    assert_instance_view(inst, one, 0, -1);
    json_decref(inst);
    PQclear(one);
    PQclear(res);
    res = fa_store_list_instances(db, account, public_finding, NULL, NULL, 10, err, sizeof(err));
    assert_int_equal(PQntuples(res), 1 + 1);
    inst = page_of(res, 1, 0);
    assert_instance_view(json_array_get(inst, 0), res, 1, 0);
    assert_string_equal(casb_json_path_str(json_array_get(inst, 0), "asset.name"),
                        "zo\xc3\xab \"q\" back\\slash/\nline\ttab\x01");
    assert_string_equal(casb_json_path_str(json_array_get(inst, 0), "details.note"),
                        "a\"b\\c\n");
    json_decref(inst);
    PQclear(res);
    res = fa_store_list_instances(db, account, id, NULL, "bob", 10, err, sizeof(err));
    assert_int_equal(PQntuples(res), 1 + 3);
    assert_string_equal(casb_db_get(res, 1, "asset_id"), "carol");
    PQclear(res);
    res = fa_store_list_instances(db, account, id, "resolved", NULL, 10, err, sizeof(err));
    assert_int_equal(PQntuples(res), 1 + 1);
    PQclear(res);
    /* A finding without instances in the state asked for: its row alone. */
    res = fa_store_list_instances(db, account, id, "active", "zz", 10, err, sizeof(err));
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(casb_db_get_uuid(res, 0, "finding_id", uuid), id);
    PQclear(res);
    res = fa_store_list_instances(db, other_account, id, NULL, NULL, 10, err, sizeof(err));
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);
}

static void test_summary(void **state)
{
    char err[256] = "", quiet[37];

    /* A later integration without findings is listed too, with nothing counted. */
    casb_uuid_v4(quiet);
    const char *pq[] = {quiet, account};
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, credentials_sealed,"
            " credentials_key_id, scan_interval_s, health, created_at)"
            " VALUES ($1, $2, 'slack', 'quiet', 'v1.x.y', 'x', 3600, 'paused',"
            "         now() + interval '1 second')",
            2, pq);
    PGresult *counts = fa_store_summary_counts(db, account, err, sizeof(err));
    PGresult *integrations_res = fa_store_summary_integrations(db, account, err, sizeof(err));

    assert_non_null(counts);
    assert_non_null(integrations_res);
    json_t *s = fa_view_summary(counts, integrations_res, cat);
    /* Active findings only: the ignored and the zero-instance ones are left out. */
    assert_int_equal(casb_json_int(s, "total_findings", -1), 7);
    assert_int_equal(casb_json_int(s, "total_instances", -1), 5 + 1 + 1 + 5 + 3 + 2 + 4);
    assert_int_equal(casb_json_int(casb_json_path(s, "by_severity.high"), "findings", -1), 4);
    assert_int_equal(casb_json_int(casb_json_path(s, "by_severity.high"), "instances", -1), 12);
    assert_int_equal(casb_json_int(casb_json_path(s, "by_severity.critical"), "findings", -1), 0);
    assert_int_equal(casb_json_int(casb_json_path(s, "by_category.shadow_it"), "instances", -1), 4);
    assert_int_equal(casb_json_int(json_object_get(s, "integrations_by_health"), "healthy", -1), 1);
    assert_int_equal(casb_json_int(json_object_get(s, "integrations_by_health"), "unhealthy", -1), 0);
    assert_int_equal(casb_json_int(json_object_get(s, "integrations_by_health"), "paused", -1), 1);
    json_t *integrations = json_object_get(s, "by_integration");
    assert_int_equal(json_array_size(integrations), 2);
    assert_string_equal(casb_json_str(json_array_get(integrations, 0), "integration_id"),
                        integration);
    assert_int_equal(casb_json_int(json_array_get(integrations, 0), "findings", -1), 7);
    assert_int_equal(casb_json_int(json_array_get(integrations, 0), "instances", -1), 21);
    assert_string_equal(casb_json_str(json_array_get(integrations, 1), "name"), "quiet");
    assert_int_equal(casb_json_int(json_array_get(integrations, 1), "findings", -1), 0);
    assert_int_equal(casb_json_int(json_array_get(integrations, 1), "instances", -1), 0);
    json_decref(s);
    PQclear(counts);
    PQclear(integrations_res);
    exec_ok("DELETE FROM integrations WHERE id = $1", 1, pq);
}

/* The account's summary version as text ("" without a row). */
static const char *summary_version(void)
{
    static char out[64];
    char err[256] = "";
    PGresult *res = fa_store_summary_version(db, account, err, sizeof(err));

    if (!res)
        fail_msg("fa_store_summary_version: %s", err);
    snprintf(out, sizeof(out), "%s", PQntuples(res) ? casb_db_get(res, 0, "version") : "");
    PQclear(res);
    return out;
}

/* Runs sql and says whether the account's summary version changed. */
static int changes_version(const char *sql, int n, const char *const *params)
{
    char before[64];

    snprintf(before, sizeof(before), "%s", summary_version());
    exec_ok(sql, n, params);
    return strcmp(before, summary_version()) != 0;
}

/* The version changes with what the summary shows, and only with that. */
static void test_summary_version_follows_what_it_shows(void **state)
{
    const char *pa[] = {account};
    const char *pi[] = {integration};
    const char *pf[] = {public_finding};
    char quiet[37];

    (void)state;
    assert_true(summary_version()[0] != '\0');
    assert_true(changes_version("UPDATE findings SET instance_count = instance_count + 1"
                                " WHERE id = $1", 1, pf));
    assert_true(changes_version("UPDATE findings SET status = 'ignored' WHERE id = $1", 1, pf));
    assert_true(changes_version("UPDATE findings SET status = 'active' WHERE id = $1", 1, pf));
    assert_true(changes_version("UPDATE findings SET severity = 'critical', severity_tuned = true"
                                " WHERE id = $1", 1, pf));
    assert_true(changes_version("UPDATE findings SET severity = 'low', severity_tuned = false"
                                " WHERE id = $1", 1, pf));
    assert_true(changes_version("UPDATE integrations SET name = 'acme-renamed' WHERE id = $1",
                                1, pi));
    assert_true(changes_version("UPDATE integrations SET health = 'unhealthy' WHERE id = $1",
                                1, pi));
    assert_true(changes_version("UPDATE integrations SET health = 'healthy',"
                                " last_scan_at = now(), last_scan_status = 'succeeded'"
                                " WHERE id = $1", 1, pi));
    casb_uuid_v4(quiet);
    const char *pq[] = {quiet, account};
    assert_true(changes_version("INSERT INTO integrations (id, account_id, provider, name,"
                                " credentials_sealed, credentials_key_id, scan_interval_s)"
                                " VALUES ($1, $2, 'slack', 'quiet', 'v1.x.y', 'x', 3600)",
                                2, pq));
    assert_true(changes_version("DELETE FROM integrations WHERE id = $1", 1, pq));
    /* What the summary does not show: a finding seen again, the next scan's time, a value
     * written unchanged. */
    assert_false(changes_version("UPDATE findings SET last_seen_at = now() WHERE account_id = $1",
                                 1, pa));
    assert_false(changes_version("UPDATE integrations SET next_scan_at = now() + interval '1 h',"
                                 " updated_at = now() WHERE id = $1", 1, pi));
    assert_false(changes_version("UPDATE findings SET status = status, severity = severity"
                                 " WHERE account_id = $1", 1, pa));
    /* Another account's change is not this account's. */
    const char *po[] = {other_integration};
    assert_false(changes_version("UPDATE integrations SET name = 'other-renamed' WHERE id = $1",
                                 1, po));
    exec_ok("UPDATE integrations SET name = 'acme' WHERE id = $1", 1, pi);
}

/* Runs sql on conn without waiting for it; fails the test if it cannot be sent. */
static void send_async(PGconn *conn, const char *sql)
{
    if (!PQsendQuery(conn, sql))
        fail_msg("%s: %s", sql, PQerrorMessage(conn));
}

/* Waits for what conn was sent and says whether it succeeded. */
static int finish_async(PGconn *conn, char *err, size_t errlen)
{
    int ok = 1;
    PGresult *res;

    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            snprintf(err, errlen, "%s", PQresultErrorMessage(res));
            ok = 0;
        }
        PQclear(res);
    }
    return ok;
}

/* The version row is locked as each transaction commits, not at the statement that changed
 * a finding. Two transactions of one account change a finding each, then the first the
 * second's: it waits for the second to commit, which then writes the version. Were the
 * version locked at the statement, the second would wait for the first's version lock
 * from its own update on, and the first for the second's finding: a deadlock, here the
 * second's 5 s statement timeout. */
static void test_summary_version_locked_at_commit(void **state)
{
    char ids[2][37], sql[2][256], err[256] = "";
    const char *pa[] = {account};
    casb_db *other = NULL;
    PGconn *a, *b;
    PGresult *res;

    (void)state;
    res = casb_db_query(db, "SELECT id::text FROM findings WHERE account_id = $1"
                            " ORDER BY id LIMIT 2", 1, pa, err, sizeof(err));
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 2);
    for (int i = 0; i < 2; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s", PQgetvalue(res, i, 0));
        snprintf(sql[i], sizeof(sql[i]),
                 "UPDATE findings SET instance_count = instance_count + 1 WHERE id = '%s'",
                 ids[i]);
    }
    PQclear(res);
    if (casb_db_open(&other, getenv("CASB_TEST_DATABASE_URL"), 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    a = casb_db_conn(db);
    b = casb_db_conn(other);

    send_async(a, "BEGIN");
    assert_true(finish_async(a, err, sizeof(err)));
    send_async(a, sql[0]);
    assert_true(finish_async(a, err, sizeof(err)));
    send_async(b, "BEGIN; SET LOCAL statement_timeout = '5s'");
    assert_true(finish_async(b, err, sizeof(err)));
    send_async(b, sql[1]);
    if (!finish_async(b, err, sizeof(err)))
        fail_msg("the second transaction's update: %s", err);
    send_async(a, sql[1]); /* waits for b's row */
    send_async(b, "COMMIT");
    int b_ok = finish_async(b, err, sizeof(err));
    assert_true(finish_async(a, err, sizeof(err)));
    send_async(a, "COMMIT");
    assert_true(finish_async(a, err, sizeof(err)));
    casb_db_close(other);
    if (!b_ok)
        fail_msg("the second transaction failed: %s", err);
}

/* Most recently seen first, to the microsecond, ties broken by id, whatever the page size:
 * the cursor's time is rebuilt from its microseconds and bounds the index scan. The
 * account's findings get times a microsecond apart, three findings to a time. */
static void test_last_seen_order_to_the_microsecond(void **state)
{
    const char *pa[] = {account};
    fa_findings_query q = {.account_id = account, .sort = FA_SORT_LAST_SEEN};
    char want[4096] = "", err[256] = "";
    PGresult *res;

    (void)state;
    exec_ok("UPDATE findings f SET last_seen_at = timestamptz '2026-11-01 00:00:00.000001+00'"
            "        + (x.n / 3) * interval '1 microsecond'"
            "  FROM (SELECT id, row_number() OVER (ORDER BY finding_type) AS n FROM findings"
            "         WHERE account_id = $1) x"
            " WHERE f.id = x.id",
            1, pa);
    res = casb_db_query(db,
                        "SELECT finding_type FROM findings WHERE account_id = $1"
                        " AND instance_count > 0 ORDER BY last_seen_at DESC, id",
                        1, pa, err, sizeof(err));
    assert_non_null(res);
    assert_true(PQntuples(res) >= 6);
    for (int i = 0; i < PQntuples(res); i++) {
        strcat(want, PQgetvalue(res, i, 0));
        strcat(want, ",");
    }
    PQclear(res);
    for (int size = 1; size <= 9; size++) {
        if (strcmp(page_through(q, size), want) != 0)
            fail_msg("page size %d: %s != %s", size, page_through(q, size), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_keyset_pagination),
        cmocka_unit_test(test_one_severity_in_each_order),
        cmocka_unit_test(test_filters_and_account_scope),
        cmocka_unit_test(test_get_finding_and_instances),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_last_seen_order_to_the_microsecond),
        cmocka_unit_test(test_summary_version_follows_what_it_shows),
        cmocka_unit_test(test_summary_version_locked_at_commit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
