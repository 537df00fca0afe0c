/* casb_migrate against a real PostgreSQL (CASB_TEST_DATABASE_URL). Each test works in a
 * schema of its own, selected through PGOPTIONS (which libpq applies to every connection,
 * reconnects included), so the database's real tables are never touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casb/db.h"
#include "casb/error.h"
#include "casb/log.h"
#include "casb/migrate.h"

/* Must match MIGRATE_LOCK_KEY in common/src/migrate.c. */
#define MIGRATE_LOCK_KEY "7161131749075412850"

static char schema[64];

static const char *test_url(void)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");

    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL "
                 "(tests/run exports it, e.g. postgresql://casb:casb@127.0.0.1:55432/casb)");
    return url;
}

static casb_db *open_db(void)
{
    casb_db *db = NULL;
    char err[256] = "";

    if (casb_db_open(&db, test_url(), 5000, err, sizeof err) != 0)
        fail_msg("casb_db_open: %s", err);
    return db;
}

static long long scalar(casb_db *db, const char *sql)
{
    char err[256] = "";
    PGresult *res = casb_db_query(db, sql, 0, NULL, err, sizeof err);
    long long v;

    if (!res)
        fail_msg("%s: %s", sql, err);
    assert_int_equal(PQntuples(res), 1);
    v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* Creates a fresh schema and points every later connection at it. */
static int setup_schema(void **state)
{
    static int seq;
    casb_db *db;
    char sql[160];
    char opts[128];
    char err[256] = "";

    (void)state;
    unsetenv("PGOPTIONS");
    db = open_db();
    snprintf(schema, sizeof schema, "casb_test_migrate_%d_%d", (int)getpid(), ++seq);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    if (casb_db_exec(db, sql, 0, NULL, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    if (casb_db_exec(db, sql, 0, NULL, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    casb_db_close(db);
    snprintf(opts, sizeof opts, "-c search_path=%s", schema);
    setenv("PGOPTIONS", opts, 1);
    return 0;
}

static int teardown_schema(void **state)
{
    casb_db *db;
    char sql[160];
    char err[256] = "";

    (void)state;
    unsetenv("PGOPTIONS");
    db = open_db();
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    if (casb_db_exec(db, sql, 0, NULL, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    casb_db_close(db);
    return 0;
}

/* 1 when nobody holds the migration lock (we can take it and give it back). */
static int migration_lock_free(void)
{
    casb_db *other = open_db();
    const char *params[1] = {MIGRATE_LOCK_KEY};
    char err[256] = "";
    PGresult *res = casb_db_query(other, "SELECT pg_try_advisory_lock($1::bigint) AS got", 1,
                                  params, err, sizeof err);
    int got;

    assert_non_null(res);
    got = casb_db_get_bool(res, 0, "got");
    PQclear(res);
    if (got)
        PQclear(casb_db_query(other, "SELECT pg_advisory_unlock($1::bigint)", 1, params, err,
                              sizeof err));
    casb_db_close(other);
    return got;
}

static void test_embedded_migrations_apply_once(void **state)
{
    casb_db *db = open_db();
    char err[512] = "";
    int applied = -1;
    int rc;

    (void)state;
    assert_true(casb_migrations_count >= 1);
    assert_int_equal(casb_migrations[0].version, 1);
    assert_string_equal(casb_migrations[0].name, "0001_init");
    /* The embedded text is the file, byte for byte (quotes, $$ bodies, comments). */
    assert_non_null(strstr(casb_migrations[0].sql, "LANGUAGE plpgsql AS $$"));
    assert_non_null(strstr(casb_migrations[0].sql, "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"));

    rc = casb_migrate(db, casb_migrations, casb_migrations_count, &applied, err, sizeof err);
    if (rc != 0)
        fail_msg("casb_migrate: %s", err);
    assert_int_equal(applied, (int)casb_migrations_count);
    assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations"),
                     (long long)casb_migrations_count);
    /* The schema is really there: the default account and the plpgsql function. */
    assert_int_equal(scalar(db, "SELECT count(*) FROM accounts "
                                "WHERE id = '00000000-0000-0000-0000-000000000001'"), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
                                "ON n.oid = p.pronamespace WHERE p.proname = 'casb_enqueue_scan' "
                                "AND n.nspname = current_schema()"), 1);

    /* Second run: nothing to do, nothing duplicated. */
    rc = casb_migrate(db, casb_migrations, casb_migrations_count, &applied, err, sizeof err);
    if (rc != 0)
        fail_msg("casb_migrate (second run): %s", err);
    assert_int_equal(applied, 0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM accounts"), 1);
    assert_true(migration_lock_free());
    casb_db_close(db);
}

/* Every foreign key has a (whole, not partial) index whose leading columns are its own: a
 * delete that cascades
 * (an integration to its findings, instances, events and deliveries) finds the
 * referencing rows by index. Without one, each deleted row scans the referencing table and
 * deleting a large integration takes minutes. */
static void test_every_foreign_key_is_indexed(void **state)
{
    casb_db *db = open_db();
    char err[512] = "";
    PGresult *res;

    (void)state;
    if (casb_migrate(db, casb_migrations, casb_migrations_count, NULL, err, sizeof err) != 0)
        fail_msg("casb_migrate: %s", err);
    res = casb_db_query(db,
                        "SELECT c.conrelid::regclass::text AS tbl, c.conname"
                        "  FROM pg_constraint c"
                        " WHERE c.contype = 'f'"
                        "   AND c.connamespace = current_schema()::regnamespace"
                        "   AND NOT EXISTS ("
                        "       SELECT 1 FROM pg_index i"
                        "        WHERE i.indrelid = c.conrelid AND i.indpred IS NULL"
                        "          AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1]"
                        "              = c.conkey)",
                        0, NULL, err, sizeof err);
    if (!res)
        fail_msg("%s", err);
    for (int i = 0; i < PQntuples(res); i++)
        print_error("foreign key %s of %s has no index leading with its columns\n",
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);
    casb_db_close(db);
}

static void test_failed_migration_rolls_back_and_unlocks(void **state)
{
    const casb_migration list[] = {
        /* Out of order on purpose: applied by version, not by position. */
        {2, "0002_second", "CREATE TABLE second (x int REFERENCES first (x));"},
        {1, "0001_first", "CREATE TABLE first (x int PRIMARY KEY);\n"
                          "INSERT INTO first VALUES (1), (2);\n"
                          "CREATE FUNCTION first_count() RETURNS bigint LANGUAGE plpgsql AS $$\n"
                          "BEGIN RETURN (SELECT count(*) FROM first WHERE 'it''s' <> ''); END $$;"},
        {3, "0003_broken", "CREATE TABLE third (x int);\nSELECT * FROM no_such_table;"},
        {4, "0004_after", "CREATE TABLE fourth (x int);"},
    };
    casb_db *db = open_db();
    char err[512] = "";
    int applied = -1;
    int rc;

    (void)state;
    rc = casb_migrate(db, list, 4, &applied, err, sizeof err);
    assert_int_equal(rc, CASB_ERROR);
    assert_int_equal(applied, 2);
    assert_non_null(strstr(err, "0003_broken"));
    assert_non_null(strstr(err, "42P01")); /* undefined_table */
    assert_int_equal(scalar(db, "SELECT first_count()"), 2);
    assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations"), 2);
    assert_int_equal(scalar(db, "SELECT max(version) FROM schema_migrations"), 2);
    /* 0003 left nothing behind (its CREATE TABLE was rolled back), 0004 never ran. */
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                "current_schema() AND tablename IN ('third', 'fourth')"), 0);
    assert_true(migration_lock_free());
    assert_int_equal(PQtransactionStatus(casb_db_conn(db)), PQTRANS_IDLE);

    /* Fixed migration: the run resumes where it stopped. */
    {
        casb_migration fixed[4];

        memcpy(fixed, list, sizeof fixed);
        fixed[2].sql = "CREATE TABLE third (x int);";
        rc = casb_migrate(db, fixed, 4, &applied, err, sizeof err);
        if (rc != 0)
            fail_msg("casb_migrate: %s", err);
        assert_int_equal(applied, 2);
        assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations"), 4);
    }

    /* Duplicate versions are refused before anything runs. */
    {
        const casb_migration dup[] = {{5, "0005_a", "SELECT 1"}, {5, "0005_b", "SELECT 1"}};

        rc = casb_migrate(db, dup, 2, &applied, err, sizeof err);
        assert_int_equal(rc, CASB_EINVALID);
        assert_int_equal(applied, 0);
    }
    /* A migration may not end the transaction it runs in. */
    {
        const casb_migration sneaky[] = {{6, "0006_commit", "CREATE TABLE six (x int); COMMIT;"}};

        rc = casb_migrate(db, sneaky, 1, &applied, err, sizeof err);
        assert_int_equal(rc, CASB_ERROR);
        assert_non_null(strstr(err, "0006_commit"));
        assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations WHERE version = 6"), 0);
    }
    casb_db_close(db);
}

/* Two replicas starting at once: one applies, the other waits on the lock and then finds
 * nothing to do. The migration is slow and not idempotent, so running it twice shows. */
static const casb_migration race_list[] = {
    {1, "0001_race", "CREATE TABLE hits (n int);\n"
                     "SELECT pg_sleep(0.5);\n"
                     "INSERT INTO hits VALUES (1);"},
    {2, "0002_race", "INSERT INTO hits VALUES (2);"},
};

struct race_arg {
    int rc;
    int applied;
    char err[512];
};

static void *race_worker(void *p)
{
    struct race_arg *a = p;
    casb_db *db = NULL;

    a->rc = casb_db_open(&db, test_url(), 5000, a->err, sizeof a->err);
    if (a->rc != 0)
        return NULL;
    a->rc = casb_migrate(db, race_list, 2, &a->applied, a->err, sizeof a->err);
    casb_db_close(db);
    return NULL;
}

static void test_concurrent_migrations_apply_once(void **state)
{
    struct race_arg args[2];
    pthread_t threads[2];
    casb_db *db;
    int i;

    (void)state;
    memset(args, 0, sizeof args);
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, race_worker, &args[i]), 0);
    for (i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    for (i = 0; i < 2; i++) {
        if (args[i].rc != 0)
            fail_msg("thread %d: %s", i, args[i].err);
    }
    assert_int_equal(args[0].applied + args[1].applied, 2);
    db = open_db();
    assert_int_equal(scalar(db, "SELECT count(*) FROM hits"), 2);
    assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations"), 2);
    casb_db_close(db);
    assert_true(migration_lock_free());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_embedded_migrations_apply_once, setup_schema,
                                        teardown_schema),
        cmocka_unit_test_setup_teardown(test_every_foreign_key_is_indexed, setup_schema,
                                        teardown_schema),
        cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back_and_unlocks, setup_schema,
                                        teardown_schema),
        cmocka_unit_test_setup_teardown(test_concurrent_migrations_apply_once, setup_schema,
                                        teardown_schema),
    };

    casb_log_init("test_migrate", CASB_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
