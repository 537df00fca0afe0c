/* The webhook delivery queue (fa_webhook_store.c) against a real PostgreSQL
 * (CASB_TEST_DATABASE_URL): claiming leases a delivery, a lease that runs out makes it due
 * again (a sender that died), a row locked by another sender is skipped, outcomes are
 * recorded, disabled webhooks hold their deliveries, redelivery requeues. Other tests share
 * the database, so only this test's own deliveries are looked at. */
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
#include "casb/migrate.h"
#include "fa_webhook_store.h"

static casb_db *db, *other;
static char hook[37], err[256];

static void exec_ok(casb_db *c, const char *sql, int n, const char *const *params)
{
    if (casb_db_exec(c, sql, n, params, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", sql, err);
}

static int group_setup(void **state)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");

    (void)state;
    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL");
    if (casb_db_open(&db, url, 5000, err, sizeof(err)) != 0 ||
        casb_db_open(&other, url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    if (casb_migrate(db, casb_migrations, casb_migrations_count, NULL, err, sizeof(err)) != 0)
        fail_msg("casb_migrate: %s", err);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    casb_db_close(other);
    casb_db_close(db);
    return 0;
}

/* The webhook filters on an integration that does not exist, so that the ingest tests
 * running beside this one never queue deliveries for it. */
static int setup(void **state)
{
    char nowhere[37];

    (void)state;
    casb_uuid_v4(hook);
    casb_uuid_v4(nowhere);
    const char *params[] = {hook, CASB_DEFAULT_ACCOUNT_ID, nowhere};
    exec_ok(db,
            "INSERT INTO webhooks (id, account_id, name, url, auth_type, created_by,"
            "                      integration_ids)"
            " VALUES ($1, $2, 'test_fa_webhook_store', 'https://example.com/', 'none', 't',"
            "         ARRAY[$3::uuid])",
            3, params);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *params[] = {hook};
    exec_ok(db, "DELETE FROM webhooks WHERE id = $1", 1, params);
    return 0;
}

static void add_delivery(char id[37])
{
    casb_uuid_v4(id);
    const char *params[] = {id, hook, CASB_DEFAULT_ACCOUNT_ID};
    exec_ok(db,
            "INSERT INTO webhook_deliveries (id, webhook_id, account_id, event_type)"
            " VALUES ($1, $2, $3, 'instance.detected')",
            3, params);
}

/* Claims with c and returns how many of this test's deliveries it got; *attempts is the
 * attempts count of the last of them. */
static int claim_mine(casb_db *c, long lease_s, long *attempts)
{
    PGresult *res = fa_webhook_store_claim(c, 50, lease_s, err, sizeof(err));
    int mine = 0;

    if (!res)
        fail_msg("claim: %s", err);
    for (int i = 0; i < PQntuples(res); i++) {
        if (strcmp(casb_db_get(res, i, "webhook_id"), hook) != 0)
            continue;
        mine++;
        if (attempts)
            *attempts = (long)casb_db_get_int(res, i, "attempts", -1);
        assert_string_equal(casb_db_get(res, i, "auth_type"), "none");
        assert_string_equal(casb_db_get(res, i, "url"), "https://example.com/");
    }
    PQclear(res);
    return mine;
}

static const char *status_of(const char *id, char *buf, size_t len)
{
    const char *params[] = {id};
    PGresult *res = casb_db_query(db,
                                  "SELECT status || ',' || attempts || ','"
                                  " || coalesce(last_status_code::text, '-') || ','"
                                  " || coalesce(last_error, '-')"
                                  " FROM webhook_deliveries WHERE id = $1",
                                  1, params, err, sizeof(err));

    if (!res || PQntuples(res) != 1)
        fail_msg("status of %s: %s", id, err);
    snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

static void record(const char *id, int ok, long code, const char *error, long long retry_ms)
{
    fa_webhook_outcome o = {ok, code, error, retry_ms};

    if (fa_webhook_store_record(db, id, &o, err, sizeof(err)) != 0)
        fail_msg("record: %s", err);
}

static void test_lease_retry_and_outcomes(void **state)
{
    char id[37], buf[256];
    long attempts = 0;

    (void)state;
    add_delivery(id);
    assert_int_equal(claim_mine(db, 60, &attempts), 1);
    assert_int_equal(attempts, 1);
    /* Leased: nobody else takes it while the attempt runs. */
    assert_int_equal(claim_mine(other, 60, NULL), 0);

    /* The destination failed; due again at once (retry in 0 ms). */
    record(id, 0, 503, "the destination answered 503", 0);
    assert_string_equal(status_of(id, buf, sizeof(buf)),
                        "pending,1,503,the destination answered 503");
    assert_int_equal(claim_mine(other, 0, &attempts), 1);
    assert_int_equal(attempts, 2);

    /* That sender died mid-attempt: its lease (0 s here) has run out, so the delivery is
     * attempted again: at least once. */
    assert_int_equal(claim_mine(db, 60, &attempts), 1);
    assert_int_equal(attempts, 3);
    record(id, 1, 204, NULL, 0);
    assert_string_equal(status_of(id, buf, sizeof(buf)), "succeeded,3,204,-");
    assert_int_equal(claim_mine(db, 60, NULL), 0);

    /* Redelivery: a fresh set of attempts, same id. */
    PGresult *res = fa_webhook_store_redeliver(db, CASB_DEFAULT_ACCOUNT_ID, hook, id, err,
                                               sizeof(err));
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);
    assert_string_equal(status_of(id, buf, sizeof(buf)), "pending,0,204,-");
    /* Pending already: not again. */
    res = fa_webhook_store_redeliver(db, CASB_DEFAULT_ACCOUNT_ID, hook, id, err, sizeof(err));
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);
    assert_int_equal(claim_mine(db, 60, &attempts), 1);
    assert_int_equal(attempts, 1);

    /* Given up: failed, and never claimed again. */
    record(id, 0, 0, "connection refused", -1);
    assert_string_equal(status_of(id, buf, sizeof(buf)), "failed,1,-,connection refused");
    assert_int_equal(claim_mine(db, 0, NULL), 0);
}

/* A delivery another sender holds (its row locked mid-claim) is skipped, not waited for. */
static void test_locked_rows_are_skipped(void **state)
{
    char a[37], b[37];

    (void)state;
    add_delivery(a);
    add_delivery(b);
    exec_ok(other, "BEGIN", 0, NULL);
    const char *params[] = {a};
    exec_ok(other, "SELECT 1 FROM webhook_deliveries WHERE id = $1 FOR UPDATE", 1, params);
    assert_int_equal(claim_mine(db, 60, NULL), 1);
    exec_ok(other, "ROLLBACK", 0, NULL);
    assert_int_equal(claim_mine(db, 60, NULL), 1);
    assert_int_equal(claim_mine(db, 60, NULL), 0);
}

/* A disabled webhook's deliveries wait; enabled again, they go. */
static void test_disabled_webhook_holds_deliveries(void **state)
{
    char id[37];
    const char *params[] = {hook};

    (void)state;
    add_delivery(id);
    exec_ok(db, "UPDATE webhooks SET enabled = false WHERE id = $1", 1, params);
    assert_int_equal(claim_mine(db, 60, NULL), 0);
    exec_ok(db, "UPDATE webhooks SET enabled = true WHERE id = $1", 1, params);
    assert_int_equal(claim_mine(db, 60, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lease_retry_and_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_rows_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_webhook_holds_deliveries, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
