/* Unit tests for auth.c. Without a database the bootstrap admin token authenticates as the
 * default account's admin, anything else is CASB_EAUTH, and weak tokens are refused at
 * start. With one (CASB_TEST_DATABASE_URL), issued tokens authenticate with their account
 * and role until they expire or are revoked, and the bootstrap token is seeded once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "casb/auth.h"
#include "casb/auth_cache.h"
#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/service.h"

#define TOKEN "casb_admin_0123456789abcdef"

static void test_new_rejects_weak_tokens(void **state)
{
    casb_auth *a = (casb_auth *)&a; /* must be reset to NULL on failure */
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_auth_new(&a, "", err, sizeof(err)), CASB_EINVALID);
    assert_null(a);
    assert_int_equal(casb_auth_new(&a, "fifteen-chars-x", err, sizeof(err)), CASB_EINVALID);
    assert_non_null(strstr(err, "16"));
    assert_null(strstr(err, "fifteen")); /* the token is never echoed */
    assert_int_equal(casb_auth_new(&a, "sixteen chars ok", err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_auth_new(&a, "sixteen-chars-ok", err, sizeof(err)), 0);
    assert_non_null(a);
    casb_auth_free(a);
    casb_auth_free(NULL);
    /* None configured: the database's tokens only, so nothing passes without one. */
    assert_int_equal(casb_auth_new(&a, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_check(a, "Bearer " TOKEN, &(casb_principal){0}), CASB_EAUTH);
    casb_auth_free(a);
}

static void test_check(void **state)
{
    casb_auth *a = NULL;
    casb_principal who;
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_auth_new(&a, TOKEN, err, sizeof(err)), 0);

    memset(&who, 0x55, sizeof(who));
    assert_int_equal(casb_auth_check(a, "Bearer " TOKEN, &who), 0);
    assert_string_equal(who.account_id, CASB_DEFAULT_ACCOUNT_ID);
    assert_string_equal(who.token_name, "bootstrap");
    assert_int_equal(who.role, CASB_ROLE_ADMIN);

    /* Scheme is case-insensitive; extra spaces around the token are tolerated. */
    assert_int_equal(casb_auth_check(a, "bearer " TOKEN, &who), 0);
    assert_int_equal(casb_auth_check(a, "BEARER   " TOKEN "  ", &who), 0);

    assert_int_equal(casb_auth_check(a, NULL, &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, TOKEN, &who), CASB_EAUTH);           /* no scheme */
    assert_int_equal(casb_auth_check(a, "Basic " TOKEN, &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer ", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer    ", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer" TOKEN, &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer " TOKEN "x", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer casb_admin_0123456789abcdeF", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer casb_admin_0123456789abcde", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(a, "Bearer " TOKEN " " TOKEN, &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(NULL, "Bearer " TOKEN, &who), CASB_EAUTH);
    casb_auth_free(a);
}

static void test_two_instances_are_independent(void **state)
{
    casb_auth *a = NULL, *b = NULL;
    casb_principal who;

    (void)state;
    assert_int_equal(casb_auth_new(&a, TOKEN, NULL, 0), 0);
    assert_int_equal(casb_auth_new(&b, "another-admin-token-value", NULL, 0), 0);
    assert_int_equal(casb_auth_check(a, "Bearer another-admin-token-value", &who), CASB_EAUTH);
    assert_int_equal(casb_auth_check(b, "Bearer another-admin-token-value", &who), 0);
    assert_int_equal(casb_auth_check(b, "Bearer " TOKEN, &who), CASB_EAUTH);
    casb_auth_free(a);
    casb_auth_free(b);
}

static casb_db_pool *pool;

static casb_db *db_or_skip(void)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    char err[512];

    if (!url || !*url)
        skip();
    if (!pool) {
        assert_int_equal(casb_service_migrate(url, err, sizeof(err)), 0);
        assert_int_equal(casb_db_pool_new(&pool, url, 2, 10000, err, sizeof(err)), 0);
    }
    return casb_db_pool_acquire(pool, 1000);
}

/* The rows the statement changed, or -1. */
static long sql(casb_db *db, const char *statement, const char *param)
{
    const char *params[1] = {param};
    char err[256];
    long affected = 0;

    if (casb_db_exec(db, statement, param ? 1 : 0, params, &affected, err, sizeof(err)) != 0)
        return -1;
    return affected;
}

/* Issues an analyst token of the default account named name; header: its Authorization. */
static void issue_analyst(casb_db *db, const char *name, char token[CASB_TOKEN_SIZE],
                          char id[37], char header[128])
{
    casb_token_spec spec = {CASB_DEFAULT_ACCOUNT_ID, name, CASB_ROLE_ANALYST, NULL, "test_auth"};
    char err[256];

    assert_int_equal(casb_auth_issue(db, &spec, token, id, err, sizeof(err)), 0);
    snprintf(header, 128, "Bearer %s", token);
}

static void test_issued_tokens_carry_account_and_role(void **state)
{
    casb_db *db = db_or_skip();
    char token[CASB_TOKEN_SIZE], id[37], header[128], err[256];
    casb_principal who;
    casb_auth *a = NULL;

    (void)state;
    issue_analyst(db, "unit analyst", token, id, header);
    assert_int_equal(strncmp(token, CASB_TOKEN_PREFIX, 5), 0);
    assert_int_equal(strlen(token), CASB_TOKEN_SIZE - 1);
    assert_int_equal(casb_auth_new(&a, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_connect(a, pool, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_check(a, header, &who), 0);
    assert_string_equal(who.account_id, CASB_DEFAULT_ACCOUNT_ID);
    assert_string_equal(who.token_id, id);
    assert_string_equal(who.token_name, "unit analyst");
    assert_int_equal(who.role, CASB_ROLE_ANALYST);
    /* Its last use is recorded. */
    assert_int_equal(sql(db, "UPDATE api_tokens SET secret_sha256 = secret_sha256 WHERE id = $1 "
                             "AND last_used_at > now() - interval '1 minute'", id), 1);
    /* One character off, or the token's digest itself, is not the token. */
    header[strlen(header) - 1] ^= 1;
    assert_int_equal(casb_auth_check(a, header, &who), CASB_EAUTH);
    assert_string_equal(who.account_id, "");
    /* Expired, then revoked: refused from the next request on. */
    assert_int_equal(sql(db, "UPDATE api_tokens SET expires_at = now() - interval '1 second' "
                             "WHERE id = $1", id), 1);
    snprintf(header, sizeof(header), "Bearer %s", token);
    assert_int_equal(casb_auth_check(a, header, &who), CASB_EAUTH);
    assert_int_equal(sql(db, "UPDATE api_tokens SET expires_at = NULL, revoked_at = now() "
                             "WHERE id = $1", id), 1);
    assert_int_equal(casb_auth_check(a, header, &who), CASB_EAUTH);
    casb_auth_free(a);
    casb_db_pool_release(pool, db);
}

static void test_bad_specs_are_refused(void **state)
{
    casb_db *db = db_or_skip();
    char token[CASB_TOKEN_SIZE], id[37], err[256];
    casb_token_spec past = {CASB_DEFAULT_ACCOUNT_ID, "x", CASB_ROLE_ADMIN, "2020-01-01T00:00:00Z",
                            NULL};
    casb_token_spec noname = {CASB_DEFAULT_ACCOUNT_ID, "", CASB_ROLE_ADMIN, NULL, NULL};
    casb_token_spec control = {CASB_DEFAULT_ACCOUNT_ID, "a\tb", CASB_ROLE_ADMIN, NULL, NULL};
    casb_token_spec badacct = {"not-a-uuid", "x", CASB_ROLE_ADMIN, NULL, NULL};

    (void)state;
    assert_int_equal(casb_auth_issue(db, &past, token, id, err, sizeof(err)), CASB_EINVALID);
    assert_non_null(strstr(err, "future"));
    assert_int_equal(casb_auth_issue(db, &noname, token, id, err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_auth_issue(db, &control, token, id, err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_auth_issue(db, &badacct, token, id, err, sizeof(err)), CASB_EINVALID);
    assert_string_equal(token, "");
    casb_db_pool_release(pool, db);
}

/* Found by tests/apifuzz: an RFC 3339 offset beyond PostgreSQL's +-15:59 was a database error
 * (500), and a name of 100 characters was refused when they took more than 100 bytes. */
static void test_any_rfc3339_offset_and_100_characters_are_issued(void **state)
{
    casb_db *db = db_or_skip();
    char name[4 * CASB_TOKEN_NAME_MAX + 1] = "";
    casb_token_spec spec = {CASB_DEFAULT_ACCOUNT_ID, name, CASB_ROLE_READ_ONLY,
                            "6490-06-02T00:54:43+19:50", "test_auth"};
    char token[CASB_TOKEN_SIZE], id[37], err[256];

    (void)state;
    for (int i = 0; i < CASB_TOKEN_NAME_MAX; i++)
        strcat(name, "\xc3\xa9"); /* U+00E9, two bytes */
    assert_int_equal(casb_auth_issue(db, &spec, token, id, err, sizeof(err)), 0);
    assert_int_equal(sql(db, "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND "
                             "expires_at = '6490-06-01T05:04:43Z' AND length(name) = 100", id), 1);
    strcat(name, "\xc3\xa9");
    assert_int_equal(casb_auth_issue(db, &spec, token, id, err, sizeof(err)), CASB_EINVALID);
    casb_db_pool_release(pool, db);
}

static void test_the_bootstrap_token_is_seeded_once(void **state)
{
    casb_db *db = db_or_skip();
    casb_auth *first = NULL, *second = NULL;
    casb_principal who;
    char err[256];

    (void)state;
    assert_true(sql(db, "DELETE FROM api_tokens WHERE bootstrap", NULL) >= 0);
    assert_int_equal(casb_auth_new(&first, TOKEN, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_connect(first, pool, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_check(first, "Bearer " TOKEN, &who), 0);
    assert_string_equal(who.token_name, "bootstrap");
    assert_int_equal(who.role, CASB_ROLE_ADMIN);
    /* A later start with another configured token changes nothing: that one is refused. */
    assert_int_equal(casb_auth_new(&second, "another-bootstrap-token-value", err, sizeof(err)), 0);
    assert_int_equal(casb_auth_connect(second, pool, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_check(second, "Bearer another-bootstrap-token-value", &who),
                     CASB_EAUTH);
    assert_int_equal(casb_auth_check(second, "Bearer " TOKEN, &who), 0);
    /* Revoked, it stays revoked across starts. */
    assert_int_equal(sql(db, "UPDATE api_tokens SET revoked_at = now() WHERE bootstrap", NULL), 1);
    casb_auth_free(second);
    second = NULL;
    assert_int_equal(casb_auth_new(&second, TOKEN, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_connect(second, pool, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_check(second, "Bearer " TOKEN, &who), CASB_EAUTH);
    assert_int_equal(sql(db, "DELETE FROM api_tokens WHERE bootstrap", NULL), 1);
    casb_auth_free(first);
    casb_auth_free(second);
    casb_db_pool_release(pool, db);
}

/* ---- the token cache ---- */

/* Waits up to 5 s for cond (re-evaluated every 20 ms); its last value. */
#define WITHIN_5S(cond)                                                                      \
    ({                                                                                         \
        int ok_ = 0;                                                                           \
        for (int i_ = 0; i_ < 250 && !(ok_ = (cond)); i_++)                                    \
            usleep(20000);                                                                     \
        ok_;                                                                                   \
    })

static const char D1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char D2[] = "1122222222222222222222222222222222222222222222222222222222222222";

static casb_principal principal_named(const char *name)
{
    casb_principal who = {.role = CASB_ROLE_ANALYST};

    snprintf(who.account_id, sizeof(who.account_id), "%s", CASB_DEFAULT_ACCOUNT_ID);
    snprintf(who.token_id, sizeof(who.token_id), "%s", "00000000-0000-4000-8000-0000000000c1");
    snprintf(who.token_name, sizeof(who.token_name), "%s", name);
    return who;
}

static int remembered(casb_auth_cache *c, const char *digest)
{
    casb_principal who;

    return casb_auth_cache_get(c, digest, &who);
}

/* A change to token id, from another connection than the cache's; the row count it changed. */
static long touch_token(casb_db *db, const char *id, const char *set)
{
    char statement[128];

    snprintf(statement, sizeof(statement), "UPDATE api_tokens SET %s WHERE id = $1", set);
    return sql(db, statement, id);
}

static void test_cache_remembers_until_told(void **state)
{
    casb_db *db = db_or_skip();
    casb_principal who = principal_named("cached"), got;
    casb_auth_cache *c = NULL;
    char token[CASB_TOKEN_SIZE], id[37], header[128], err[256];
    unsigned long long ticket;

    (void)state;
    issue_analyst(db, "changed by the test", token, id, header); /* a row to change */

    assert_int_equal(casb_auth_cache_new(&c, getenv("CASB_TEST_DATABASE_URL"), err,
                                         sizeof(err)), 0);
    assert_true(WITHIN_5S(casb_auth_cache_listening(c)));
    ticket = casb_auth_cache_ticket(c);
    assert_true(ticket != 0);
    casb_auth_cache_put(c, ticket, D1, &who, 0);
    assert_int_equal(casb_auth_cache_get(c, D1, &got), 1);
    assert_string_equal(got.token_name, "cached");
    assert_int_equal(got.role, CASB_ROLE_ANALYST);
    assert_int_equal(remembered(c, D2), 0); /* same set, another token */
    assert_int_equal(remembered(c, "not a digest"), 0);

    /* Authentication's own write (last use) tells nobody: still remembered. */
    assert_int_equal(touch_token(db, id, "last_used_at = now()"), 1);
    usleep(300000);
    assert_int_equal(remembered(c, D1), 1);

    /* Any other change to a token, from another connection: forgotten. */
    assert_int_equal(touch_token(db, id, "revoked_at = now()"), 1);
    assert_true(WITHIN_5S(!remembered(c, D1)));
    casb_auth_cache_put(c, casb_auth_cache_ticket(c), D1, &who, 0);
    assert_int_equal(touch_token(db, id, "name = 'renamed by the test'"), 1);
    assert_true(WITHIN_5S(!remembered(c, D1)));

    /* An answer read before a change is not stored after it was heard of. */
    casb_auth_cache_put(c, casb_auth_cache_ticket(c), D2, &who, 0);
    ticket = casb_auth_cache_ticket(c);
    assert_int_equal(touch_token(db, id, "revoked_at = NULL"), 1);
    assert_true(WITHIN_5S(!remembered(c, D2)));
    casb_auth_cache_put(c, ticket, D1, &who, 0);
    assert_int_equal(remembered(c, D1), 0);

    /* Expiry counts, to the second. */
    casb_auth_cache_put(c, casb_auth_cache_ticket(c), D1, &who, (long long)time(NULL) - 1);
    assert_int_equal(remembered(c, D1), 0);
    casb_auth_cache_put(c, casb_auth_cache_ticket(c), D1, &who, (long long)time(NULL) + 100);
    assert_int_equal(remembered(c, D1), 1);
    casb_auth_cache_clear(c);
    assert_int_equal(remembered(c, D1), 0);

    casb_auth_cache_free(c);
    casb_db_pool_release(pool, db);
}

/* Deaf, it remembers nothing: from the moment its connection is cut until it listens again. */
static void test_cache_forgets_while_deaf(void **state)
{
    casb_db *db = db_or_skip();
    casb_principal who = principal_named("cached");
    casb_auth_cache *c = NULL;
    unsigned long long before;
    char err[256];

    (void)state;
    assert_int_equal(casb_auth_cache_new(&c, getenv("CASB_TEST_DATABASE_URL"), err,
                                         sizeof(err)), 0);
    assert_true(WITHIN_5S(casb_auth_cache_listening(c)));
    before = casb_auth_cache_ticket(c);
    casb_auth_cache_put(c, before, D1, &who, 0);
    assert_int_equal(remembered(c, D1), 1);
    /* Every listener of the test database (another test's too: it reconnects likewise). */
    assert_true(sql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND query = 'LISTEN casb_api_tokens'",
                    NULL) >= 1);
    assert_true(WITHIN_5S(!casb_auth_cache_listening(c) || !remembered(c, D1)));
    assert_int_equal(remembered(c, D1), 0);
    /* Listening again (the loss and the return each move the generation): what it held
     * before is gone, and so is what was read before. */
    assert_true(WITHIN_5S(casb_auth_cache_ticket(c) >= before + 2));
    assert_int_equal(remembered(c, D1), 0);
    casb_auth_cache_put(c, before, D1, &who, 0);
    assert_int_equal(remembered(c, D1), 0);
    casb_auth_cache_put(c, casb_auth_cache_ticket(c), D1, &who, 0);
    assert_int_equal(remembered(c, D1), 1);
    casb_auth_cache_free(c);
    casb_db_pool_release(pool, db);
}

/* Through casb_auth: a token checked once is checked again without the database (here, with
 * the pool's connections all taken, only the cache can answer), until it is revoked. */
static void test_checks_use_the_cache(void **state)
{
    casb_db *db = db_or_skip(), *held;
    char token[CASB_TOKEN_SIZE], id[37], header[128], err[256];
    casb_principal who;
    casb_auth *a = NULL;

    (void)state;
    issue_analyst(db, "cached analyst", token, id, header);
    assert_int_equal(casb_auth_new(&a, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_caching(a), 0);
    assert_int_equal(casb_auth_cache_tokens(a, getenv("CASB_TEST_DATABASE_URL"), err,
                                            sizeof(err)), CASB_EINVALID); /* not connected */
    assert_int_equal(casb_auth_connect(a, pool, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_cache_tokens(a, getenv("CASB_TEST_DATABASE_URL"), err,
                                            sizeof(err)), 0);
    assert_true(WITHIN_5S(casb_auth_caching(a)));
    assert_int_equal(casb_auth_check(a, header, &who), 0);

    held = casb_db_pool_acquire(pool, 1000); /* the pool has 2: none is left */
    assert_non_null(held);
    memset(&who, 0, sizeof(who));
    assert_int_equal(casb_auth_check(a, header, &who), 0);
    assert_string_equal(who.token_id, id);
    assert_string_equal(who.token_name, "cached analyst");
    assert_int_equal(who.role, CASB_ROLE_ANALYST);
    /* An unknown token is never remembered: it needs the database, which is busy. */
    assert_int_equal(casb_auth_check(a, "Bearer casb_unknown_0123456789abcdef", &who),
                     CASB_EUNAVAILABLE);
    casb_db_pool_release(pool, held);

    assert_int_equal(sql(db, "UPDATE api_tokens SET revoked_at = now() WHERE id = $1", id), 1);
    assert_true(WITHIN_5S(casb_auth_check(a, header, &who) == CASB_EAUTH));
    /* And a change this process made is forgotten at once. */
    assert_int_equal(sql(db, "UPDATE api_tokens SET revoked_at = NULL WHERE id = $1", id), 1);
    assert_true(WITHIN_5S(casb_auth_check(a, header, &who) == 0));
    assert_int_equal(sql(db, "UPDATE api_tokens SET revoked_at = now() WHERE id = $1", id), 1);
    casb_auth_forget_tokens(a);
    assert_int_equal(casb_auth_check(a, header, &who), CASB_EAUTH);
    casb_auth_free(a);
    casb_db_pool_release(pool, db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_weak_tokens),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_two_instances_are_independent),
        cmocka_unit_test(test_issued_tokens_carry_account_and_role),
        cmocka_unit_test(test_bad_specs_are_refused),
        cmocka_unit_test(test_any_rfc3339_offset_and_100_characters_are_issued),
        cmocka_unit_test(test_the_bootstrap_token_is_seeded_once),
        cmocka_unit_test(test_cache_remembers_until_told),
        cmocka_unit_test(test_cache_forgets_while_deaf),
        cmocka_unit_test(test_checks_use_the_cache),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    casb_db_pool_free(pool);
    return failed;
}
