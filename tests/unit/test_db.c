/* casb_db against a real PostgreSQL: CASB_TEST_DATABASE_URL (tests/run exports it). Without
 * it the tests fail: a database layer that was not exercised has not passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/db.h"
#include "casb/error.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/timeutil.h"

#define TABLE "casb_test_db_items"

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

static void exec_ok(casb_db *db, const char *sql, int n, const char *const *params)
{
    char err[256] = "";

    if (casb_db_exec(db, sql, n, params, NULL, err, sizeof err) != 0)
        fail_msg("%s: %s", sql, err);
}

typedef PGresult *(*query_fn)(casb_db *db, const char *sql, int nparams,
                              const char *const *params, char *err, size_t errlen);

/* The rows named where_name, counted by a statement that query runs (one-shot or generic). */
static long long count_with(casb_db *db, query_fn query, const char *where_name)
{
    const char *params[1] = {where_name};
    char err[256] = "";
    PGresult *res = query(db, "SELECT count(*) AS n FROM " TABLE " WHERE name = $1", 1, params,
                          err, sizeof err);
    long long n;

    if (!res)
        fail_msg("count: %s", err);
    n = casb_db_get_int(res, 0, "n", -1);
    PQclear(res);
    return n;
}

static long long count_rows(casb_db *db, const char *where_name)
{
    return count_with(db, casb_db_query, where_name);
}

static int backend_pid(casb_db *db)
{
    char err[256] = "";
    PGresult *res = casb_db_query(db, "SELECT pg_backend_pid() AS pid", 0, NULL, err, sizeof err);
    int pid;

    if (!res)
        fail_msg("pg_backend_pid: %s", err);
    pid = (int)casb_db_get_int(res, 0, "pid", -1);
    PQclear(res);
    return pid;
}

/* Kills the session pid from another connection and waits until it is gone, like a
 * server restart or an idle-session kill would. */
static void terminate_backend(int pid)
{
    casb_db *admin = open_db();
    char pid_s[16];
    const char *params[1] = {pid_s};
    char err[256] = "";
    int i;

    snprintf(pid_s, sizeof pid_s, "%d", pid);
    PQclear(casb_db_query(admin, "SELECT pg_terminate_backend($1::int)", 1, params, err,
                          sizeof err));
    for (i = 0; i < 100; i++) {
        PGresult *res = casb_db_query(admin, "SELECT count(*) AS n FROM pg_stat_activity "
                                             "WHERE pid = $1::int", 1, params, err, sizeof err);
        long long n = casb_db_get_int(res, 0, "n", -1);

        PQclear(res);
        if (n == 0)
            break;
        casb_sleep_ms(20);
    }
    casb_db_close(admin);
}

static int setup_table(void **state)
{
    casb_db *db = open_db();

    exec_ok(db, "DROP TABLE IF EXISTS " TABLE, 0, NULL);
    exec_ok(db,
            "CREATE TABLE " TABLE " (id serial PRIMARY KEY, name text UNIQUE, n bigint,"
            " flag boolean, note text)",
            0, NULL);
    *state = db;
    return 0;
}

static int teardown_table(void **state)
{
    casb_db *db = *state;

    casb_db_rollback(db);
    exec_ok(db, "DROP TABLE IF EXISTS " TABLE, 0, NULL);
    casb_db_close(db);
    return 0;
}

static void test_open_unreachable_fails_after_timeout(void **state)
{
    casb_db *db = NULL;
    char err[256] = "";
    int64_t t0;
    int64_t took_ms;
    int rc;

    (void)state;
    /* Port 1 on loopback refuses at once, so the time spent is the backoff. */
    t0 = casb_monotonic_ms();
    rc = casb_db_open(&db, "postgresql://nobody@127.0.0.1:1/none", 0, err, sizeof err);
    assert_int_equal(rc, CASB_EUNAVAILABLE);
    assert_null(db);
    assert_true(casb_monotonic_ms() - t0 < 1000);
    assert_non_null(strstr(err, "1 attempt"));

    t0 = casb_monotonic_ms();
    rc = casb_db_open(&db, "postgresql://nobody@127.0.0.1:1/none", 1200, err, sizeof err);
    took_ms = casb_monotonic_ms() - t0;
    assert_int_equal(rc, CASB_EUNAVAILABLE);
    /* 250 + 500 + 450 (capped at the deadline) ms of backoff: four attempts. */
    assert_true(took_ms >= 1150);
    assert_true(took_ms < 3000);
    assert_non_null(strstr(err, "4 attempt"));
    /* The password of a URL never reaches the message. */
    rc = casb_db_open(&db, "postgresql://u:s3cretpw@127.0.0.1:1/none", 0, err, sizeof err);
    assert_int_equal(rc, CASB_EUNAVAILABLE);
    assert_null(strstr(err, "s3cretpw"));
}

static void test_params_are_stored_verbatim(void **state)
{
    casb_db *db = *state;
    const char *evil[] = {
        "Robert'); DROP TABLE " TABLE "; --",
        "$1 $2 \\x00 \\' \" ; -- /* */",
        "line1\nline2\ttab \xc3\xa9\xe2\x82\xac",
        "",
    };
    char err[256] = "";
    size_t i;

    for (i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        char n_s[8];
        const char *params[2] = {evil[i], n_s};
        PGresult *res;

        snprintf(n_s, sizeof n_s, "%zu", i);
        exec_ok(db, "INSERT INTO " TABLE " (name, n) VALUES ($1, $2::bigint)", 2, params);
        res = casb_db_query(db, "SELECT name, n FROM " TABLE " WHERE name = $1", 1, params, err,
                            sizeof err);
        assert_non_null(res);
        assert_int_equal(PQntuples(res), 1);
        assert_string_equal(casb_db_get(res, 0, "name"), evil[i]);
        assert_int_equal(casb_db_get_int(res, 0, "n", -1), (long long)i);
        PQclear(res);
    }
    /* The table survived the would-be injection. */
    {
        PGresult *res = casb_db_query(db, "SELECT count(*) AS n FROM " TABLE, 0, NULL, err,
                                      sizeof err);

        assert_non_null(res);
        assert_int_equal(casb_db_get_int(res, 0, "n", -1), 4);
        PQclear(res);
    }
}

static void test_null_params_and_getters(void **state)
{
    casb_db *db = *state;
    const char *params[4] = {"with-nulls", NULL, "true", NULL};
    char err[256] = "";
    PGresult *res;

    exec_ok(db, "INSERT INTO " TABLE " (name, n, flag, note) VALUES ($1, $2::bigint, $3::boolean, $4)",
            4, params);
    res = casb_db_query(db, "SELECT name, n, flag, note, n IS NULL AS n_null FROM " TABLE
                            " WHERE name = $1",
                        1, params, err, sizeof err);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(casb_db_get(res, 0, "name"), "with-nulls");
    assert_null(casb_db_get(res, 0, "n"));           /* SQL NULL */
    assert_int_equal(casb_db_get_int(res, 0, "n", 42), 42);
    assert_int_equal(casb_db_get_bool(res, 0, "flag"), 1);
    assert_int_equal(casb_db_get_bool(res, 0, "n_null"), 1);
    assert_null(casb_db_get(res, 0, "note"));
    assert_int_equal(casb_db_get_bool(res, 0, "note"), 0); /* NULL -> false */
    /* Wrong column or row: NULL / default, never a crash. */
    assert_null(casb_db_get(res, 0, "no_such_column"));
    assert_null(casb_db_get(res, 1, "name"));
    assert_int_equal(casb_db_get_int(res, 5, "n", -7), -7);
    assert_int_equal(casb_db_get_int(res, 0, "name", -9), -9); /* not a number */
    PQclear(res);

    /* A big value round-trips through text format. */
    params[1] = "9007199254740993";
    params[0] = "big";
    exec_ok(db, "INSERT INTO " TABLE " (name, n) VALUES ($1, $2::bigint)", 2, params);
    res = casb_db_query(db, "SELECT n FROM " TABLE " WHERE name = 'big'", 0, NULL, err, sizeof err);
    assert_non_null(res);
    assert_int_equal(casb_db_get_int(res, 0, "n", 0), 9007199254740993LL);
    PQclear(res);
}

/* The accessors read a value the same from a text result and from a binary one. */
static void check_values(PGresult *res, int binary)
{
    char uuid[37];
    long long secs = 0;

    assert_non_null(res);
    assert_int_equal(PQfformat(res, 0), binary);
    assert_string_equal(casb_db_get_uuid(res, 0, "u", uuid),
                        "00112233-4455-6677-8899-aabbccddeeff");
    assert_null(casb_db_get_uuid(res, 0, "null_u", uuid));
    assert_int_equal(casb_db_get_int(res, 0, "i2", 0), -2);
    assert_int_equal(casb_db_get_int(res, 0, "i4", 0), -70000);
    assert_int_equal(casb_db_get_int(res, 0, "i8", 0), -9007199254740993LL);
    assert_int_equal(casb_db_get_int(res, 0, "null_i", 5), 5);
    assert_int_equal(casb_db_get_bool(res, 0, "t"), 1);
    assert_int_equal(casb_db_get_bool(res, 0, "f"), 0);
    assert_string_equal(casb_db_get(res, 0, "s"), "caf\xc3\xa9");
    assert_string_equal(casb_db_get(res, 0, "j"), "{\"b\": 1, \"a\": [2]}");
    /* Times: seconds since 1970, rounded down before it too; whole seconds also as numbers. */
    assert_int_equal(casb_db_get_time(res, 0, "epoch", &secs), 0);
    assert_int_equal(secs, 1700000000LL);
    if (!binary)
        return; /* a timestamptz in text is not read as a time */
    assert_int_equal(casb_db_get_time(res, 0, "t2000", &secs), 0);
    assert_int_equal(secs, 946684801LL);
    assert_int_equal(casb_db_get_time(res, 0, "before_1970", &secs), 0);
    assert_int_equal(secs, -1);
    assert_int_equal(casb_db_get_time(res, 0, "now_ish", &secs), 0);
    assert_int_equal(secs, 1796074799LL); /* 2026-11-30T21:39:59Z */
    assert_int_equal(casb_db_get_time(res, 0, "inf", &secs), -1);
    assert_int_equal(casb_db_get_time(res, 0, "null_u", &secs), -1);
    /* Another type is not taken for the one asked for. */
    assert_int_equal(casb_db_get_int(res, 0, "u", 3), 3);
    assert_null(casb_db_get_uuid(res, 0, "i8", uuid));
}

static void test_binary_results_and_getters(void **state)
{
    static const char sql[] =
        "SELECT '00112233-4455-6677-8899-aabbccddeeff'::uuid AS u, NULL::uuid AS null_u,"
        " (-2)::int2 AS i2, (-70000)::int4 AS i4, (-9007199254740993)::int8 AS i8,"
        " NULL::int4 AS null_i, true AS t, false AS f, $1::text AS s,"
        " '{\"b\": 1, \"a\": [2]}'::json AS j, 1700000000::bigint AS epoch,"
        " timestamptz '2000-01-01 00:00:01+00' AS t2000,"
        " timestamptz '1969-12-31 23:59:59.5+00' AS before_1970,"
        " timestamptz '2026-11-30 21:39:59.999999+00' AS now_ish,"
        " timestamptz 'infinity' AS inf";
    casb_db *db = *state;
    const char *params[1] = {"caf\xc3\xa9"};
    char err[256] = "";
    PGresult *res;

    check_values(res = casb_db_query(db, sql, 1, params, err, sizeof err), 0);
    PQclear(res);
    check_values(res = casb_db_query_binary(db, sql, 1, params, err, sizeof err), 1);
    PQclear(res);
    /* Prepared, and run in both formats: one statement serves both. */
    check_values(res = casb_db_query_generic_binary(db, sql, 1, params, err, sizeof err), 1);
    PQclear(res);
    check_values(res = casb_db_query_generic(db, sql, 1, params, err, sizeof err), 0);
    PQclear(res);
}

static void test_exec_affected_and_sqlstate(void **state)
{
    casb_db *db = *state;
    const char *a[1] = {"a"};
    const char *b[1] = {"b"};
    char err[256] = "";
    long affected = -1;
    int rc;

    exec_ok(db, "INSERT INTO " TABLE " (name, n) VALUES ($1, 1)", 1, a);
    exec_ok(db, "INSERT INTO " TABLE " (name, n) VALUES ($1, 1)", 1, b);
    rc = casb_db_exec(db, "UPDATE " TABLE " SET n = n + 1 WHERE n = 1", 0, NULL, &affected, err,
                      sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(affected, 2);
    assert_string_equal(casb_db_last_sqlstate(db), "");

    /* Unique violation. */
    rc = casb_db_exec(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, a, NULL, err, sizeof err);
    assert_int_equal(rc, CASB_ERROR);
    assert_string_equal(casb_db_last_sqlstate(db), "23505");
    assert_non_null(strstr(err, "23505"));
    /* Syntax error. */
    assert_null(casb_db_query(db, "SELEC 1", 0, NULL, err, sizeof err));
    assert_string_equal(casb_db_last_sqlstate(db), "42601");
    /* Success clears it. */
    exec_ok(db, "SELECT 1", 0, NULL);
    assert_string_equal(casb_db_last_sqlstate(db), "");
    /* affected is 0 for statements without a row count. */
    rc = casb_db_exec(db, "SET application_name = 'casb-test'", 0, NULL, &affected, err,
                      sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(affected, 0);
}

static void test_transactions(void **state)
{
    casb_db *db = *state;
    const char *rolled[1] = {"rolled-back"};
    const char *kept[1] = {"committed"};
    const char *failed[1] = {"in-failed-tx"};
    char err[256] = "";

    /* Rollback discards. */
    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    exec_ok(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, rolled);
    assert_int_equal(count_rows(db, "rolled-back"), 1); /* visible inside */
    casb_db_rollback(db);
    assert_int_equal(count_rows(db, "rolled-back"), 0);

    /* Commit keeps. */
    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    assert_int_equal(casb_db_begin(db, err, sizeof err), CASB_ECONFLICT); /* no nesting */
    exec_ok(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, kept);
    assert_int_equal(casb_db_commit(db, err, sizeof err), 0);
    assert_int_equal(count_rows(db, "committed"), 1);

    /* A failed statement poisons the transaction: COMMIT reports it, nothing is kept. */
    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    exec_ok(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, failed);
    assert_int_equal(casb_db_exec(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, kept, NULL,
                                  err, sizeof err),
                     CASB_ERROR);
    assert_string_equal(casb_db_last_sqlstate(db), "23505");
    assert_int_equal(casb_db_commit(db, err, sizeof err), CASB_ERROR);
    assert_non_null(strstr(err, "rolled back"));
    assert_int_equal(count_rows(db, "in-failed-tx"), 0);

    /* Rollback outside a transaction is harmless. */
    casb_db_rollback(db);
    casb_db_rollback(db);
    assert_true(casb_db_ping(db));
}

static void test_reconnect_after_terminate(void **state)
{
    casb_db *db = *state;
    char err[256] = "";
    PGresult *res;
    int pid = backend_pid(db);
    int new_pid;

    terminate_backend(pid);
    /* The next statement finds the connection dead, resets it and succeeds. */
    res = casb_db_query(db, "SELECT 41 + 1 AS answer", 0, NULL, err, sizeof err);
    if (!res)
        fail_msg("query after terminate: %s", err);
    assert_int_equal(casb_db_get_int(res, 0, "answer", 0), 42);
    PQclear(res);
    new_pid = backend_pid(db);
    assert_int_not_equal(new_pid, pid);

    /* Also when the statement is a write with parameters. */
    terminate_backend(new_pid);
    {
        const char *params[1] = {"after-reconnect"};

        exec_ok(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, params);
        assert_int_equal(count_rows(db, "after-reconnect"), 1);
    }
}

static void test_no_silent_retry_inside_transaction(void **state)
{
    casb_db *db = *state;
    const char *params[1] = {"lost-in-tx"};
    char err[256] = "";
    int pid;

    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    exec_ok(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, params);
    pid = backend_pid(db);
    terminate_backend(pid);
    /* Retrying here would run the rest of the transaction without its beginning. */
    assert_int_equal(casb_db_exec(db, "INSERT INTO " TABLE " (name) VALUES ('second')", 0, NULL,
                                  NULL, err, sizeof err),
                     CASB_ERROR);
    assert_int_equal(casb_db_commit(db, err, sizeof err), CASB_ERROR);
    casb_db_rollback(db);
    /* The connection works again and nothing of the lost transaction exists. */
    assert_int_equal(count_rows(db, "lost-in-tx"), 0);
    assert_int_equal(count_rows(db, "second"), 0);
    assert_true(casb_db_ping(db));
}

/* ---- pool ---- */

#define POOL_SIZE 2
#define POOL_THREADS 4
#define POOL_ROUNDS 25

struct pool_ctx {
    casb_db_pool *pool;
    atomic_int in_use;
    atomic_int max_in_use;
    atomic_int failures;
};

static void *pool_worker(void *arg)
{
    struct pool_ctx *ctx = arg;
    int i;

    for (i = 0; i < POOL_ROUNDS; i++) {
        casb_db *db = casb_db_pool_acquire(ctx->pool, 10000);
        char err[256];
        int now;
        int max;

        if (!db) {
            atomic_fetch_add(&ctx->failures, 1);
            continue;
        }
        now = atomic_fetch_add(&ctx->in_use, 1) + 1;
        max = atomic_load(&ctx->max_in_use);
        while (now > max && !atomic_compare_exchange_weak(&ctx->max_in_use, &max, now))
            ;
        if (casb_db_exec(db, "UPDATE " TABLE " SET n = n + 1 WHERE name = 'counter'", 0, NULL,
                         NULL, err, sizeof err) != 0)
            atomic_fetch_add(&ctx->failures, 1);
        atomic_fetch_sub(&ctx->in_use, 1);
        casb_db_pool_release(ctx->pool, db);
    }
    return NULL;
}

static void test_pool_across_threads(void **state)
{
    casb_db *db = *state;
    struct pool_ctx ctx = {0};
    pthread_t threads[POOL_THREADS];
    char err[256] = "";
    PGresult *res;
    int i;

    exec_ok(db, "INSERT INTO " TABLE " (name, n) VALUES ('counter', 0)", 0, NULL);
    assert_int_equal(casb_db_pool_new(&ctx.pool, test_url(), POOL_SIZE, 5000, err, sizeof err), 0);
    for (i = 0; i < POOL_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, pool_worker, &ctx), 0);
    for (i = 0; i < POOL_THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&ctx.failures), 0);
    assert_true(atomic_load(&ctx.max_in_use) <= POOL_SIZE);
    res = casb_db_query(db, "SELECT n FROM " TABLE " WHERE name = 'counter'", 0, NULL, err,
                        sizeof err);
    assert_non_null(res);
    assert_int_equal(casb_db_get_int(res, 0, "n", -1), POOL_THREADS * POOL_ROUNDS);
    PQclear(res);
    casb_db_pool_free(ctx.pool);
}

static void test_pool_timeout_and_repair(void **state)
{
    casb_db_pool *pool = NULL;
    casb_db *a, *b, *c;
    char err[256] = "";
    int64_t t0;
    int pid;

    (void)state;
    assert_int_equal(casb_db_pool_new(&pool, test_url(), 2, 5000, err, sizeof err), 0);
    a = casb_db_pool_acquire(pool, 1000);
    b = casb_db_pool_acquire(pool, 1000);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    /* Exhausted: waits about timeout_ms, then NULL. */
    t0 = casb_monotonic_ms();
    c = casb_db_pool_acquire(pool, 300);
    assert_null(c);
    assert_true(casb_monotonic_ms() - t0 >= 250);
    assert_null(casb_db_pool_acquire(pool, 0));

    /* A connection released with an open transaction comes back clean. */
    assert_int_equal(casb_db_begin(a, err, sizeof err), 0);
    pid = backend_pid(a);
    casb_db_pool_release(pool, a);
    c = casb_db_pool_acquire(pool, 1000);
    assert_ptr_equal(c, a);
    assert_int_equal(PQtransactionStatus(casb_db_conn(c)), PQTRANS_IDLE);
    assert_int_equal(casb_db_begin(c, err, sizeof err), 0); /* would be ECONFLICT if stale */
    casb_db_rollback(c);

    /* A connection killed while briefly idle in the pool is handed out unchecked (no ping
     * round trip per acquire) and repaired by its first statement, and so is one whose
     * transaction begins with the killed session. */
    casb_db_pool_release(pool, c);
    terminate_backend(pid);
    c = casb_db_pool_acquire(pool, 1000);
    assert_non_null(c);
    assert_int_not_equal(backend_pid(c), pid);
    assert_true(casb_db_ping(c));
    pid = backend_pid(c);
    casb_db_pool_release(pool, c);
    terminate_backend(pid);
    c = casb_db_pool_acquire(pool, 1000);
    assert_int_equal(casb_db_begin(c, err, sizeof err), 0);
    assert_int_not_equal(backend_pid(c), pid);
    assert_int_equal(casb_db_commit(c, err, sizeof err), 0);

    casb_db_pool_release(pool, c);
    casb_db_pool_release(pool, b);
    casb_db_pool_free(pool);
}

/* The value of one series in the rendered registry; -1 when absent. */
static double series_value(const char *series)
{
    char *out = NULL;
    char needle[128];
    const char *p;
    double v = -1;

    assert_int_equal(casb_metrics_render(&out, NULL), 0);
    snprintf(needle, sizeof needle, "\n%s ", series);
    p = strstr(out, needle);
    if (p)
        v = strtod(p + strlen(needle), NULL);
    free(out);
    return v;
}

static void assert_pool_gauges(double in_use, double idle)
{
    assert_true(series_value("casb_db_pool_connections{state=\"in_use\"}") == in_use);
    assert_true(series_value("casb_db_pool_connections{state=\"idle\"}") == idle);
}

/* Earlier tests freed their pools, so the process-wide gauges show this pool alone. */
static void test_pool_gauges(void **state)
{
    casb_db_pool *pool = NULL;
    casb_db *a, *b;
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_db_pool_new(&pool, test_url(), 3, 5000, err, sizeof err), 0);
    assert_pool_gauges(0, 3);
    a = casb_db_pool_acquire(pool, 1000);
    b = casb_db_pool_acquire(pool, 1000);
    assert_non_null(a);
    assert_non_null(b);
    assert_pool_gauges(2, 1);
    casb_db_pool_release(pool, a);
    assert_pool_gauges(1, 2);
    casb_db_pool_release(pool, b);
    casb_db_pool_free(pool);
    assert_pool_gauges(0, 0);
}

/* Threads waiting for a connection get one in the order they came, each handed over
 * directly; one that gave up waiting leaves the line. */
typedef struct {
    casb_db_pool *pool;
    int timeout_ms;
    int *order, *next; /* where this thread writes its place */
    pthread_mutex_t *mu;
    int id;
    int got;
} line_waiter;

static void *wait_for_connection(void *arg)
{
    line_waiter *w = arg;
    casb_db *db = casb_db_pool_acquire(w->pool, w->timeout_ms);

    w->got = db != NULL;
    if (!db)
        return NULL;
    pthread_mutex_lock(w->mu);
    w->order[(*w->next)++] = w->id;
    pthread_mutex_unlock(w->mu);
    casb_sleep_ms(20);
    casb_db_pool_release(w->pool, db);
    return NULL;
}

static void test_pool_hands_over_in_order(void **state)
{
    casb_db_pool *pool = NULL;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_t threads[4];
    line_waiter w[4];
    int order[4] = {-1, -1, -1, -1}, next = 0;
    char err[256] = "";
    casb_db *held;

    (void)state;
    assert_int_equal(casb_db_pool_new(&pool, test_url(), 1, 5000, err, sizeof err), 0);
    held = casb_db_pool_acquire(pool, 1000);
    assert_non_null(held);
    /* Thread 1 gives up after 150 ms, before the connection comes back. */
    for (int i = 0; i < 4; i++) {
        w[i] = (line_waiter){pool, i == 1 ? 150 : 5000, order, &next, &mu, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, wait_for_connection, &w[i]), 0);
        casb_sleep_ms(100); /* each is in line before the next comes */
    }
    casb_sleep_ms(200);
    casb_db_pool_release(pool, held);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(w[1].got, 0);
    assert_int_equal(next, 3);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 3);
    /* Handed over in use, the connection ends idle once: the gauges agree. */
    assert_pool_gauges(0, 1);
    casb_db_pool_free(pool);
    assert_pool_gauges(0, 0);
}

/* ---- generic plans ---- */

/* plan_cache_mode as a one-shot statement sees it, or as a generic one does. */
static char *plan_mode(casb_db *db, int generic)
{
    static const char sql[] = "SELECT current_setting('plan_cache_mode') AS m";
    static char mode[64];
    char err[256] = "";
    PGresult *res = generic ? casb_db_query_generic(db, sql, 0, NULL, err, sizeof err)
                            : casb_db_query(db, sql, 0, NULL, err, sizeof err);

    if (!res)
        fail_msg("plan mode: %s", err);
    snprintf(mode, sizeof mode, "%s", casb_db_get(res, 0, "m"));
    PQclear(res);
    return mode;
}

static long long generic_count(casb_db *db, const char *id)
{
    return count_with(db, casb_db_query_generic, id);
}

/* Prepared once, run with one generic plan; the statements around it keep the server's
 * plan mode. */
static void test_generic_statements_are_prepared_once(void **state)
{
    casb_db *db = *state;
    const char *params[1] = {"a"};
    char err[256] = "";
    PGresult *res;

    exec_ok(db, "INSERT INTO " TABLE " (name) VALUES ($1)", 1, params);
    for (int i = 0; i < 8; i++)
        assert_int_equal(generic_count(db, i % 2 ? "a" : "b"), i % 2 ? 1 : 0);
    res = casb_db_query(db,
                        "SELECT count(*) AS n, sum(generic_plans) AS g, sum(custom_plans) AS c"
                        " FROM pg_prepared_statements WHERE statement LIKE '%" TABLE "%'",
                        0, NULL, err, sizeof err);
    assert_non_null(res);
    assert_int_equal(casb_db_get_int(res, 0, "n", -1), 1);
    assert_int_equal(casb_db_get_int(res, 0, "g", -1), 8);
    assert_int_equal(casb_db_get_int(res, 0, "c", -1), 0);
    PQclear(res);
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
    assert_string_equal(plan_mode(db, 0), "auto");
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
    /* What runs on the borrowed PGconn is planned as one-shot statements are. */
    res = PQexec(casb_db_conn(db), "SHOW plan_cache_mode");
    assert_string_equal(PQgetvalue(res, 0, 0), "auto");
    PQclear(res);
}

/* A rollback undoes a switch of plan mode made in its transaction: the connection must
 * not take the undone mode for the current one. */
static void test_plan_mode_survives_rollback(void **state)
{
    casb_db *db = *state;
    char err[256] = "";

    /* Generic outside; switched back inside; the rollback restores generic. */
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    assert_string_equal(plan_mode(db, 0), "auto");
    casb_db_rollback(db);
    assert_string_equal(plan_mode(db, 0), "auto");
    /* Default outside; generic inside; the rollback restores the default. */
    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
    casb_db_rollback(db);
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
    assert_string_equal(plan_mode(db, 0), "auto");
    /* A transaction that failed ends in ROLLBACK through COMMIT. */
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    assert_string_equal(plan_mode(db, 0), "auto");
    assert_null(casb_db_query(db, "SELECT 1/0", 0, NULL, err, sizeof err));
    assert_int_not_equal(casb_db_commit(db, err, sizeof err), 0);
    assert_string_equal(plan_mode(db, 0), "auto");
    /* A committed switch stays. */
    assert_int_equal(casb_db_begin(db, err, sizeof err), 0);
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
    assert_int_equal(casb_db_commit(db, err, sizeof err), 0);
    assert_string_equal(plan_mode(db, 1), "force_generic_plan");
}

/* Statements the server dropped (DISCARD ALL), a result type a migration changed, and a
 * reconnect: the statement is prepared again and runs. More texts than the cache holds
 * still run. */
static void test_generic_statements_recover(void **state)
{
    casb_db *db = *state;
    const char *params[1] = {"a"};
    char err[256] = "", sql[128];
    PGresult *res;

    exec_ok(db, "INSERT INTO " TABLE " (name, n) VALUES ($1, 7)", 1, params);
    assert_int_equal(generic_count(db, "a"), 1);
    exec_ok(db, "DEALLOCATE ALL", 0, NULL);
    assert_int_equal(generic_count(db, "a"), 1);
    res = casb_db_query_generic(db, "SELECT * FROM " TABLE " WHERE name = $1", 1, params, err,
                                sizeof err);
    assert_non_null(res);
    assert_int_equal(PQnfields(res), 5);
    PQclear(res);
    exec_ok(db, "ALTER TABLE " TABLE " ADD COLUMN extra int", 0, NULL);
    res = casb_db_query_generic(db, "SELECT * FROM " TABLE " WHERE name = $1", 1, params, err,
                                sizeof err);
    assert_non_null(res);
    assert_int_equal(PQnfields(res), 6);
    PQclear(res);
    terminate_backend(backend_pid(db));
    assert_int_equal(generic_count(db, "a"), 1);
    assert_string_equal(plan_mode(db, 0), "auto");
    for (int i = 0; i < 80; i++) {
        snprintf(sql, sizeof sql, "SELECT n + %d AS v FROM " TABLE " WHERE name = $1", i);
        res = casb_db_query_generic(db, sql, 1, params, err, sizeof err);
        if (!res)
            fail_msg("statement %d: %s", i, err);
        assert_int_equal(casb_db_get_int(res, 0, "v", -1), 7 + i);
        PQclear(res);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_unreachable_fails_after_timeout),
        cmocka_unit_test_setup_teardown(test_params_are_stored_verbatim, setup_table, teardown_table),
        cmocka_unit_test_setup_teardown(test_null_params_and_getters, setup_table, teardown_table),
        cmocka_unit_test_setup_teardown(test_binary_results_and_getters, setup_table,
                                        teardown_table),
        cmocka_unit_test_setup_teardown(test_exec_affected_and_sqlstate, setup_table, teardown_table),
        cmocka_unit_test_setup_teardown(test_transactions, setup_table, teardown_table),
        cmocka_unit_test_setup_teardown(test_reconnect_after_terminate, setup_table, teardown_table),
        cmocka_unit_test_setup_teardown(test_no_silent_retry_inside_transaction, setup_table,
                                        teardown_table),
        cmocka_unit_test_setup_teardown(test_pool_across_threads, setup_table, teardown_table),
        cmocka_unit_test(test_pool_timeout_and_repair),
        cmocka_unit_test(test_pool_gauges),
        cmocka_unit_test(test_pool_hands_over_in_order),
        cmocka_unit_test_setup_teardown(test_generic_statements_are_prepared_once, setup_table,
                                        teardown_table),
        cmocka_unit_test_setup_teardown(test_plan_mode_survives_rollback, setup_table,
                                        teardown_table),
        cmocka_unit_test_setup_teardown(test_generic_statements_recover, setup_table,
                                        teardown_table),
    };

    casb_log_init("test_db", CASB_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
