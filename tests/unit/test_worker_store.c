/* The scanner-worker's SQL (sw_store) against a real PostgreSQL: CASB_TEST_DATABASE_URL
 * (tests/run exports it). Scan leases: taken once, renewed by their holder (and attempt) only,
 * taken over as a new attempt after they expire or are released, never on a finished scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/error.h"
#include "casb/migrate.h"
#include "casb/integration.h"
#include "casb/json.h"
#include "sw_store.h"

static casb_db *db;
static char integration_id[37];

static void exec_ok(const char *sql, int n, const char *const *params)
{
    char err[256] = "";

    if (casb_db_exec(db, sql, n, params, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", sql, err);
}

static const char *scan_value(const char *scan_id, const char *column, char *buf, size_t len)
{
    char sql[160], err[256] = "";
    const char *params[] = {scan_id};
    PGresult *res;

    snprintf(sql, sizeof(sql), "SELECT %s::text AS v FROM scans WHERE id = $1", column);
    res = casb_db_query(db, sql, 1, params, err, sizeof(err));
    if (!res || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, err);
    snprintf(buf, len, "%s", casb_db_get(res, 0, "v") ? casb_db_get(res, 0, "v") : "(null)");
    PQclear(res);
    return buf;
}

static int setup(void **state)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    char err[256] = "";

    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL "
                 "(tests/run exports it)");
    if (casb_db_open(&db, url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    if (casb_migrate(db, casb_migrations, casb_migrations_count, NULL, err, sizeof(err)) != 0)
        fail_msg("casb_migrate: %s", err);
    casb_uuid_v4(integration_id);
    const char *params[] = {integration_id, CASB_DEFAULT_ACCOUNT_ID};
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, config, credentials_sealed,"
            " credentials_key_id, scan_interval_s)"
            " VALUES ($1, $2, 'github', 'test_worker_store', '{\"organization\":\"acme\"}',"
            " 'v1.abcd1234.sealed', 'abcd1234', 3600)",
            2, params);
    return 0;
}

static int teardown(void **state)
{
    const char *params[] = {integration_id};

    exec_ok("DELETE FROM integrations WHERE id = $1", 1, params);
    casb_db_close(db);
    return 0;
}

static void new_scan(char scan_id[37])
{
    casb_uuid_v4(scan_id);
    const char *params[] = {scan_id, CASB_DEFAULT_ACCOUNT_ID, integration_id};
    exec_ok("INSERT INTO scans (id, account_id, integration_id, reason) VALUES ($1, $2, $3, 'manual')",
            3, params);
}

static void test_lease_lifecycle(void **state)
{
    char scan[37], started_a[48] = "", started_b[48] = "", buf[64], err[256] = "";
    int attempt_a = -1, attempt_b = -1, attempt_c = -1;

    new_scan(scan);
    assert_string_equal(scan_value(scan, "attempt", buf, sizeof(buf)), "0");
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-a", 120, &attempt_a,
                                         started_a, sizeof(started_a), err, sizeof(err)),
                     1);
    /* The first lease is the first attempt; its start is what the result messages carry. */
    assert_int_equal(attempt_a, 1);
    assert_string_equal(scan_value(scan, "attempt", buf, sizeof(buf)), "1");
    /* RFC 3339 UTC with microseconds. */
    assert_int_equal(strlen(started_a), 27);
    assert_int_equal(started_a[10], 'T');
    assert_int_equal(started_a[26], 'Z');
    assert_string_equal(scan_value(scan, "status", buf, sizeof(buf)), "running");
    assert_string_equal(scan_value(scan, "worker_id", buf, sizeof(buf)), "worker-a");
    assert_string_equal(scan_value(scan, "(attempt_started_at = started_at)", buf, sizeof(buf)),
                        "true");

    /* Held: nobody else takes it, only the holder renews it. */
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-b", 120, &attempt_b,
                                         started_b, sizeof(started_b), err, sizeof(err)),
                     0);
    assert_int_equal(attempt_b, 0);
    assert_string_equal(scan_value(scan, "attempt", buf, sizeof(buf)), "1");
    assert_int_equal(sw_store_renew_lease(db, scan, "worker-a", attempt_a, 120, err, sizeof(err)),
                     1);
    assert_int_equal(sw_store_renew_lease(db, scan, "worker-b", attempt_a, 120, err, sizeof(err)),
                     0);

    /* Released (shutdown): another worker takes it at once, as a new attempt with its own
     * start; the scan's start stays the first attempt's. */
    assert_int_equal(sw_store_release_lease(db, scan, "worker-a", attempt_a, err, sizeof(err)), 0);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-b", 120, &attempt_b,
                                         started_b, sizeof(started_b), err, sizeof(err)),
                     1);
    assert_int_equal(attempt_b, 2);
    assert_true(strcmp(started_b, started_a) > 0);
    assert_string_equal(scan_value(scan, "attempt", buf, sizeof(buf)), "2");
    assert_string_equal(scan_value(scan, "(attempt_started_at > started_at)", buf, sizeof(buf)),
                        "true");
    assert_int_equal(sw_store_renew_lease(db, scan, "worker-a", attempt_a, 120, err, sizeof(err)),
                     0);
    /* A release by the former holder does not touch the new holder's lease. */
    assert_int_equal(sw_store_release_lease(db, scan, "worker-a", attempt_a, err, sizeof(err)), 0);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-c", 120, &attempt_c,
                                         started_b, sizeof(started_b), err, sizeof(err)),
                     0);
    assert_string_equal(scan_value(scan, "attempt", buf, sizeof(buf)), "2");
}

static void test_expired_lease_is_taken_over(void **state)
{
    char scan[37], started[48], buf[64], err[256] = "";
    int attempt_a = -1, attempt_b = -1;

    new_scan(scan);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-a", 120, &attempt_a,
                                         started, sizeof(started), err, sizeof(err)),
                     1);
    const char *params[] = {scan};
    exec_ok("UPDATE scans SET lease_until = now() - interval '1 minute' WHERE id = $1", 1, params);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-b", 120, &attempt_b,
                                         started, sizeof(started), err, sizeof(err)),
                     1);
    assert_int_equal(attempt_b, attempt_a + 1);
    assert_string_equal(scan_value(scan, "worker_id", buf, sizeof(buf)), "worker-b");
    assert_int_equal(sw_store_renew_lease(db, scan, "worker-a", attempt_a, 120, err, sizeof(err)),
                     0);
}

/* What a redelivered job of a scan leased elsewhere waits for: held while the lease runs
 * (with its remaining time), not held once it lapsed or the scan finished. */
static void test_lease_held_until_it_lapses_or_the_scan_ends(void **state)
{
    char scan[37], started[48], err[256] = "";
    int attempt = -1;
    long left_ms = -1;

    new_scan(scan);
    assert_int_equal(sw_store_lease_held(db, scan, &left_ms, err, sizeof(err)), 0);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-a", 120, &attempt,
                                         started, sizeof(started), err, sizeof(err)),
                     1);
    assert_int_equal(sw_store_lease_held(db, scan, &left_ms, err, sizeof(err)), 1);
    assert_true(left_ms > 110000 && left_ms <= 120000);
    const char *params[] = {scan};
    exec_ok("UPDATE scans SET lease_until = now() - interval '1 second' WHERE id = $1", 1, params);
    assert_int_equal(sw_store_lease_held(db, scan, &left_ms, err, sizeof(err)), 0);
    exec_ok("UPDATE scans SET lease_until = now() + interval '1 minute', status = 'succeeded'"
            " WHERE id = $1", 1, params);
    assert_int_equal(sw_store_lease_held(db, scan, &left_ms, err, sizeof(err)), 0);
    (void)state;
}

/* A worker restarted under the same worker id that took its own dead lease back: the old
 * process (still running, its lease lost) must not renew or release the new attempt's
 * lease. Only the attempt tells the two apart. */
static void test_stale_attempt_cannot_renew_or_release(void **state)
{
    char scan[37], started[48], buf[64], err[256] = "";
    int first = -1, second = -1;

    new_scan(scan);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-a", 120, &first,
                                         started, sizeof(started), err, sizeof(err)),
                     1);
    const char *params[] = {scan};
    exec_ok("UPDATE scans SET lease_until = now() - interval '1 minute' WHERE id = $1", 1, params);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-a", 120, &second,
                                         started, sizeof(started), err, sizeof(err)),
                     1);
    assert_int_equal(second, first + 1);
    assert_string_equal(scan_value(scan, "(lease_until > now())", buf, sizeof(buf)), "true");

    assert_int_equal(sw_store_renew_lease(db, scan, "worker-a", first, 120, err, sizeof(err)), 0);
    assert_int_equal(sw_store_release_lease(db, scan, "worker-a", first, err, sizeof(err)), 0);
    assert_string_equal(scan_value(scan, "(lease_until > now())", buf, sizeof(buf)), "true");
    /* The current attempt still renews and releases its own lease. */
    assert_int_equal(sw_store_renew_lease(db, scan, "worker-a", second, 120, err, sizeof(err)), 1);
    assert_int_equal(sw_store_release_lease(db, scan, "worker-a", second, err, sizeof(err)), 0);
    assert_string_equal(scan_value(scan, "(lease_until > now())", buf, sizeof(buf)), "false");
}

static void test_finished_or_foreign_scans_are_not_taken(void **state)
{
    char scan[37], started[48], other[37], buf[64], err[256] = "";
    int attempt = -1;

    new_scan(scan);
    const char *params[] = {scan};
    exec_ok("UPDATE scans SET status = 'succeeded', finished_at = now() WHERE id = $1", 1, params);
    assert_int_equal(sw_store_take_lease(db, scan, integration_id, "worker-a", 120, &attempt,
                                         started, sizeof(started), err, sizeof(err)),
                     0);
    assert_string_equal(scan_value(scan, "attempt", buf, sizeof(buf)), "0");
    /* A job whose integration id does not match its scan takes nothing. */
    new_scan(scan);
    casb_uuid_v4(other);
    assert_int_equal(sw_store_take_lease(db, scan, other, "worker-a", 120, &attempt, started,
                                         sizeof(started), err, sizeof(err)),
                     0);
    /* A scan that does not exist (deleted with its integration). */
    assert_int_equal(sw_store_take_lease(db, other, integration_id, "worker-a", 120, &attempt,
                                         started, sizeof(started), err, sizeof(err)),
                     0);
}

/* The integration is deleted while its scan runs (the scans go with it in one transaction):
 * the next renewal finds no row, which is how the worker learns it must stop, and the scan
 * is reported gone rather than taken over. */
static void test_renewal_after_delete_loses_the_lease(void **state)
{
    char other_integration[37], scan[37], started[48], err[256] = "";
    int attempt = -1;

    casb_uuid_v4(other_integration);
    const char *pi[] = {other_integration, CASB_DEFAULT_ACCOUNT_ID};
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, config, credentials_sealed,"
            " credentials_key_id, scan_interval_s)"
            " VALUES ($1, $2, 'github', 'test_worker_store_deleted', '{\"organization\":\"x\"}',"
            " 'v1.abcd1234.sealed', 'abcd1234', 3600)",
            2, pi);
    casb_uuid_v4(scan);
    const char *ps[] = {scan, CASB_DEFAULT_ACCOUNT_ID, other_integration};
    exec_ok("INSERT INTO scans (id, account_id, integration_id, reason) VALUES ($1, $2, $3, 'manual')",
            3, ps);
    assert_int_equal(sw_store_take_lease(db, scan, other_integration, "worker-a", 120, &attempt,
                                         started, sizeof(started), err, sizeof(err)),
                     1);
    assert_int_equal(sw_store_renew_lease(db, scan, "worker-a", attempt, 120, err, sizeof(err)),
                     1);
    assert_int_equal(sw_store_scan_exists(db, scan, err, sizeof(err)), 1);

    exec_ok("DELETE FROM integrations WHERE id = $1", 1, pi);
    assert_int_equal(sw_store_renew_lease(db, scan, "worker-a", attempt, 120, err, sizeof(err)),
                     0);
    assert_int_equal(sw_store_scan_exists(db, scan, err, sizeof(err)), 0);
    /* Releasing a lease on a scan that is gone is harmless. */
    assert_int_equal(sw_store_release_lease(db, scan, "worker-a", attempt, err, sizeof(err)), 0);
}

static void test_load_integration(void **state)
{
    casb_integration_stored it;
    char other[37], err[256] = "";

    assert_int_equal(casb_integration_load(&it, db, CASB_DEFAULT_ACCOUNT_ID, integration_id,
                                           err, sizeof(err)),
                     0);
    assert_string_equal(it.provider, "github");
    assert_string_equal(it.credentials_sealed, "v1.abcd1234.sealed");
    assert_non_null(casb_json_str(it.config, "organization"));
    assert_int_equal(it.paused, 0);
    casb_integration_stored_clear(&it);

    casb_uuid_v4(other);
    assert_int_equal(casb_integration_load(&it, db, CASB_DEFAULT_ACCOUNT_ID, other, err,
                                           sizeof(err)),
                     CASB_ENOTFOUND);
    /* Scoped to the job's account. */
    assert_int_equal(casb_integration_load(&it, db, other, integration_id, err, sizeof(err)),
                     CASB_ENOTFOUND);
}

/* The page cache of conditional requests: a miss, a stored page, its replacement. */
static void test_page_cache_roundtrip(void **state)
{
    const char *url = "http://127.0.0.1:8090/orgs/acme/repos?type=all&per_page=100";
    char *etag = NULL, *body = NULL, *next = NULL, err[256] = "";
    size_t len = 0;

    (void)state;
    assert_int_equal(sw_store_page_get(db, integration_id, url, &etag, &body, &len, &next, err,
                                       sizeof(err)),
                     0);
    assert_null(etag);
    assert_int_equal(sw_store_page_put(db, integration_id, url, "W/\"1\"", "[{\"id\":1}]", NULL,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(sw_store_page_get(db, integration_id, url, &etag, &body, &len, &next, err,
                                       sizeof(err)),
                     1);
    assert_string_equal(etag, "W/\"1\"");
    assert_string_equal(body, "[{\"id\":1}]");
    assert_int_equal(len, strlen("[{\"id\":1}]"));
    assert_null(next);
    free(etag);
    free(body);
    assert_int_equal(sw_store_page_put(db, integration_id, url, "W/\"2\"", "[]",
                                       "http://127.0.0.1:8090/orgs/acme/repos?page=2", err,
                                       sizeof(err)),
                     0);
    assert_int_equal(sw_store_page_get(db, integration_id, url, &etag, &body, &len, &next, err,
                                       sizeof(err)),
                     1);
    assert_string_equal(etag, "W/\"2\"");
    assert_string_equal(body, "[]");
    assert_string_equal(next, "http://127.0.0.1:8090/orgs/acme/repos?page=2");
    free(etag);
    free(body);
    free(next);
}

static long cache_rows(const char *id)
{
    const char *params[] = {id};
    char err[256] = "";
    PGresult *res = casb_db_query(db,
                                  "SELECT count(*) AS n FROM provider_page_cache"
                                  " WHERE integration_id = $1",
                                  1, params, err, sizeof(err));
    long n;

    if (!res)
        fail_msg("count: %s", err);
    n = (long)casb_db_get_int(res, 0, "n", -1);
    PQclear(res);
    return n;
}

/* A completed scan prunes what it did not use; a URL too long for the index is not stored;
 * the entries go with their integration. */
static void test_page_cache_prune_and_delete(void **state)
{
    char other[37], since[64], *etag = NULL, *body = NULL, *next = NULL, err[256] = "";
    char long_url[SW_PAGE_CACHE_MAX_URL + 64];
    size_t len = 0;
    long deleted = -1;
    PGresult *res;

    (void)state;
    casb_uuid_v4(other);
    const char *params[] = {other, CASB_DEFAULT_ACCOUNT_ID};
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, config, credentials_sealed,"
            " credentials_key_id, scan_interval_s)"
            " VALUES ($1, $2, 'github', 'test_page_cache', '{\"organization\":\"acme\"}',"
            " 'v1.abcd1234.sealed', 'abcd1234', 3600)",
            2, params);
    assert_int_equal(sw_store_page_put(db, other, "http://x/a", "e1", "{}", NULL, err,
                                       sizeof(err)),
                     0);
    assert_int_equal(sw_store_page_put(db, other, "http://x/b", "e2", "{}", NULL, err,
                                       sizeof(err)),
                     0);
    res = casb_db_query(db, "SELECT clock_timestamp()::text AS t", 0, NULL, err, sizeof(err));
    assert_non_null(res);
    snprintf(since, sizeof(since), "%s", casb_db_get(res, 0, "t"));
    PQclear(res);
    /* The next scan asks for a only. */
    assert_int_equal(sw_store_page_get(db, other, "http://x/a", &etag, &body, &len, &next, err,
                                       sizeof(err)),
                     1);
    free(etag);
    free(body);
    assert_int_equal(sw_store_page_prune(db, other, since, &deleted, err, sizeof(err)), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(sw_store_page_get(db, other, "http://x/b", &etag, &body, &len, &next, err,
                                       sizeof(err)),
                     0);
    assert_int_equal(cache_rows(other), 1);

    memset(long_url, 'a', sizeof(long_url) - 1);
    long_url[sizeof(long_url) - 1] = '\0';
    assert_int_equal(sw_store_page_put(db, other, long_url, "e3", "{}", NULL, err, sizeof(err)),
                     0);
    assert_int_equal(sw_store_page_get(db, other, long_url, &etag, &body, &len, &next, err,
                                       sizeof(err)),
                     0);
    assert_int_equal(cache_rows(other), 1);

    exec_ok("DELETE FROM integrations WHERE id = $1", 1, params);
    assert_int_equal(cache_rows(other), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_lifecycle),
        cmocka_unit_test(test_expired_lease_is_taken_over),
        cmocka_unit_test(test_lease_held_until_it_lapses_or_the_scan_ends),
        cmocka_unit_test(test_stale_attempt_cannot_renew_or_release),
        cmocka_unit_test(test_finished_or_foreign_scans_are_not_taken),
        cmocka_unit_test(test_renewal_after_delete_loses_the_lease),
        cmocka_unit_test(test_load_integration),
        cmocka_unit_test(test_page_cache_roundtrip),
        cmocka_unit_test(test_page_cache_prune_and_delete),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
