/* findings-api's summaries (fa_summary.c) against a real PostgreSQL, in a schema of their
 * own: a summary is rendered once per version of its account and served again until a
 * change, made by any connection, changes the version; what is served is then what a fresh
 * render gives. The cache keeps its bounds, least recently served out first, and stays
 * consistent under concurrent readers and writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/json.h"
#include "fa_catalogue.h"
#include "fa_summary.h"
#include "test_schema.h"

#define ACCOUNTS 3

static casb_db *db;
static char schema[64];
static fa_catalogue *cat;
static char accounts[ACCOUNTS][37], integrations[ACCOUNTS][37];

static void exec_ok(casb_db *conn, const char *sql, int n, const char *const *params)
{
    char err[256] = "";

    if (casb_db_exec(conn, sql, n, params, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", sql, err);
}

/* Each account: one integration, three active findings of 3, 2 and 1 instances. */
static int setup(void **state)
{
    char err[256] = "";

    (void)state;
    test_schema_open(&db, "fa_summary", schema);
    if (fa_catalogue_load_dir(&cat, CASB_SOURCE_DIR "/proto/findings", err, sizeof(err)) != 0)
        fail_msg("catalogue: %s", err);
    for (int a = 0; a < ACCOUNTS; a++) {
        casb_uuid_v4(accounts[a]);
        casb_uuid_v4(integrations[a]);
        const char *p[] = {accounts[a], integrations[a]};
        exec_ok(db, "INSERT INTO accounts (id, name) VALUES ($1, 'summary')", 1, p);
        exec_ok(db,
                "INSERT INTO integrations (id, account_id, provider, name, credentials_sealed,"
                " credentials_key_id, scan_interval_s, health)"
                " VALUES ($2, $1, 'github', 'acme', 'v1.x.y', 'x', 3600, 'healthy')",
                2, p);
        exec_ok(db,
                "INSERT INTO findings (id, account_id, integration_id, finding_type, severity,"
                " instance_count, first_seen_at, last_seen_at)"
                " SELECT gen_random_uuid(), $1, $2, t.type, t.severity, t.n, now(), now()"
                " FROM (VALUES ('github.org.member_2fa_disabled', 'high', 3),"
                "              ('github.repo.stale', 'medium', 2),"
                "              ('github.repo.public', 'low', 1)) AS t (type, severity, n)",
                2, p);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fa_catalogue_free(cat);
    test_schema_close(db, schema);
    return 0;
}

static fa_summary *get(fa_summary_cache *c, casb_db *conn, int account)
{
    char err[256] = "";
    fa_summary *s = fa_summary_get(c, conn, accounts[account], cat, err, sizeof(err));

    if (!s)
        fail_msg("fa_summary_get: %s", err);
    return s;
}

static long long total_instances(const fa_summary *s)
{
    size_t len;
    const char *text = fa_summary_json(s, &len);
    json_t *v = json_loadb(text, len, 0, NULL);
    long long n;

    assert_non_null(v);
    n = casb_json_int(v, "total_instances", -1);
    json_decref(v);
    return n;
}

/* What the cache serves is what a render without it gives. */
static void assert_current(fa_summary *cached, int account)
{
    fa_summary *fresh = get(NULL, db, account);
    size_t a, b;
    const char *ta = fa_summary_json(cached, &a), *tb = fa_summary_json(fresh, &b);

    assert_int_equal(a, b);
    assert_memory_equal(ta, tb, a);
    fa_summary_release(fresh);
}

static void test_served_until_changed(void **state)
{
    fa_summary_cache *c = fa_summary_cache_new(8, 1 << 20);
    const char *pi[] = {integrations[0]};
    fa_summary *s1, *s2, *s3, *s4;

    (void)state;
    assert_non_null(c);
    s1 = get(c, db, 0);
    s2 = get(c, db, 0);
    assert_ptr_equal(s1, s2); /* served, not rendered again */
    assert_int_equal(total_instances(s1), 6);

    /* A triage change from another connection, as another replica would make it. */
    casb_db *other = NULL;
    char url[1024], err[256] = "";
    test_schema_url(schema, url, sizeof(url));
    if (casb_db_open(&other, url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    exec_ok(other,
            "UPDATE findings SET status = 'ignored'"
            " WHERE integration_id = $1 AND finding_type = 'github.org.member_2fa_disabled'",
            1, pi);
    casb_db_close(other);
    s3 = get(c, db, 0);
    assert_ptr_not_equal(s3, s1);
    assert_int_equal(total_instances(s3), 3);
    assert_current(s3, 0);

    /* What the summary does not show leaves it served as it was. */
    exec_ok(db, "UPDATE findings SET last_seen_at = now() WHERE integration_id = $1", 1, pi);
    s4 = get(c, db, 0);
    assert_ptr_equal(s4, s3);
    fa_summary_release(s4);

    exec_ok(db, "UPDATE integrations SET name = 'acme-renamed' WHERE id = $1", 1, pi);
    s4 = get(c, db, 0);
    assert_ptr_not_equal(s4, s3);
    assert_current(s4, 0);
    size_t len;
    assert_non_null(strstr(fa_summary_json(s4, &len), "\"acme-renamed\""));

    exec_ok(db, "UPDATE findings SET status = 'active' WHERE integration_id = $1", 1, pi);
    exec_ok(db, "UPDATE integrations SET name = 'acme' WHERE id = $1", 1, pi);
    fa_summary_release(s1);
    fa_summary_release(s2);
    fa_summary_release(s3);
    fa_summary_release(s4);
    fa_summary_cache_free(c);
}

/* Without a cache, each request renders; a summary outlives the cache it came from. */
static void test_without_cache_and_after_it(void **state)
{
    fa_summary_cache *c = fa_summary_cache_new(8, 1 << 20);
    fa_summary *a = get(NULL, db, 1), *b = get(NULL, db, 1), *kept = get(c, db, 1);

    (void)state;
    assert_ptr_not_equal(a, b);
    assert_current(a, 1);
    fa_summary_cache_free(c);
    assert_int_equal(total_instances(kept), 6);
    fa_summary_release(kept);
    fa_summary_release(a);
    fa_summary_release(b);
}

/* Each call takes the summary and gives it back: 1 when it was the one served before. */
static int served_again(fa_summary_cache *c, int account, fa_summary **last)
{
    fa_summary *s = get(c, db, account);
    int same = s == *last;

    fa_summary_release(*last);
    *last = s;
    return same;
}

static void test_bounds(void **state)
{
    fa_summary_cache *two = fa_summary_cache_new(2, 1 << 20);
    fa_summary *last[ACCOUNTS] = {0};
    size_t len;

    (void)state;
    assert_false(served_again(two, 0, &last[0]));
    assert_false(served_again(two, 1, &last[1]));
    assert_true(served_again(two, 0, &last[0])); /* 1 is now the least recently served */
    assert_false(served_again(two, 2, &last[2]));
    assert_true(served_again(two, 0, &last[0]));
    assert_true(served_again(two, 2, &last[2]));
    assert_false(served_again(two, 1, &last[1])); /* was dropped */
    for (int a = 0; a < ACCOUNTS; a++)
        fa_summary_release(last[a]);
    fa_summary_cache_free(two);

    /* A byte bound below one summary keeps none. */
    fa_summary *probe = get(NULL, db, 0);
    fa_summary_json(probe, &len);
    fa_summary_release(probe);
    fa_summary_cache *tiny = fa_summary_cache_new(8, len - 1);
    fa_summary *first = get(tiny, db, 0), *second = get(tiny, db, 0);
    assert_ptr_not_equal(first, second);
    fa_summary_release(first);
    fa_summary_release(second);
    fa_summary_cache_free(tiny);
}

/* Readers on their own connections while a writer changes the accounts: no reference is
 * lost or freed twice (ASan), and once the writer is done every account is served as it
 * is. */
typedef struct {
    fa_summary_cache *cache;
    casb_db *conn;
    int reads;
} reader;

static void *read_loop(void *arg)
{
    reader *r = arg;
    char err[256];

    for (int i = 0; i < r->reads; i++) {
        fa_summary *s = fa_summary_get(r->cache, r->conn, accounts[i % ACCOUNTS], cat, err,
                                       sizeof(err));
        if (!s)
            return (void *)1;
        fa_summary_release(s);
    }
    return NULL;
}

static void test_concurrent_readers_and_writer(void **state)
{
    fa_summary_cache *c = fa_summary_cache_new(2, 1 << 20); /* fewer than the accounts */
    pthread_t threads[3];
    reader readers[3];
    char url[1024], err[256] = "";

    (void)state;
    test_schema_url(schema, url, sizeof(url));
    for (int t = 0; t < 3; t++) {
        readers[t] = (reader){.cache = c, .reads = 300};
        if (casb_db_open(&readers[t].conn, url, 5000, err, sizeof(err)) != 0)
            fail_msg("casb_db_open: %s", err);
        assert_int_equal(pthread_create(&threads[t], NULL, read_loop, &readers[t]), 0);
    }
    for (int i = 0; i < 30; i++) {
        const char *p[] = {integrations[i % ACCOUNTS]};
        exec_ok(db, "UPDATE findings SET instance_count = instance_count + 1"
                    " WHERE integration_id = $1", 1, p);
    }
    for (int t = 0; t < 3; t++) {
        void *failed = NULL;
        pthread_join(threads[t], &failed);
        casb_db_close(readers[t].conn);
        assert_null(failed);
    }
    for (int a = 0; a < ACCOUNTS; a++) {
        fa_summary *s = get(c, db, a);
        assert_int_equal(total_instances(s), 6 + 10 * 3);
        assert_current(s, a);
        fa_summary_release(s);
    }
    fa_summary_cache_free(c);
}

/* Requests for an account at the same version while it is being rendered wait for that
 * render: the findings are locked, so the first request's render waits, and the others
 * arrive meanwhile. Each rendering for itself would give each its own summary. */
typedef struct {
    fa_summary_cache *cache;
    casb_db *conn;
    fa_summary *got;
} requester;

static void *request_once(void *arg)
{
    requester *r = arg;
    char err[256];

    r->got = fa_summary_get(r->cache, r->conn, accounts[2], cat, err, sizeof(err));
    return NULL;
}

static void test_one_render_for_concurrent_requests(void **state)
{
    fa_summary_cache *c = fa_summary_cache_new(8, 1 << 20);
    const char *pi[] = {integrations[2]};
    char url[1024], err[256] = "";
    requester reqs[4];
    pthread_t threads[4];

    (void)state;
    test_schema_url(schema, url, sizeof(url));
    exec_ok(db, "UPDATE integrations SET name = 'before-the-lock' WHERE id = $1", 1, pi);
    exec_ok(db, "BEGIN", 0, NULL);
    exec_ok(db, "LOCK TABLE findings IN ACCESS EXCLUSIVE MODE", 0, NULL);
    for (int t = 0; t < 4; t++) {
        reqs[t] = (requester){.cache = c};
        if (casb_db_open(&reqs[t].conn, url, 5000, err, sizeof(err)) != 0)
            fail_msg("casb_db_open: %s", err);
        assert_int_equal(pthread_create(&threads[t], NULL, request_once, &reqs[t]), 0);
    }
    struct timespec wait = {0, 300 * 1000 * 1000};
    nanosleep(&wait, NULL); /* the four have read the version; one renders, blocked */
    exec_ok(db, "COMMIT", 0, NULL);
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        casb_db_close(reqs[t].conn);
        assert_non_null(reqs[t].got);
        assert_ptr_equal(reqs[t].got, reqs[0].got);
    }
    assert_current(reqs[0].got, 2);
    for (int t = 0; t < 4; t++)
        fa_summary_release(reqs[t].got);
    exec_ok(db, "UPDATE integrations SET name = 'acme' WHERE id = $1", 1, pi);
    fa_summary_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_until_changed),
        cmocka_unit_test(test_without_cache_and_after_it),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_concurrent_readers_and_writer),
        cmocka_unit_test(test_one_render_for_concurrent_requests),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
