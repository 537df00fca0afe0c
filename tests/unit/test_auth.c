/* Unit tests for auth.c. Without a database the bootstrap admin token authenticates as the
 * default account's admin, anything else is CASB_EAUTH, and weak tokens are refused at
 * start. With one (CASB_TEST_DATABASE_URL), issued tokens authenticate with their account
 * and role until they expire or are revoked, and the bootstrap token is seeded once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "casb/auth.h"
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

static void test_issued_tokens_carry_account_and_role(void **state)
{
    casb_db *db = db_or_skip();
    casb_token_spec spec = {CASB_DEFAULT_ACCOUNT_ID, "unit analyst", CASB_ROLE_ANALYST, NULL,
                            "test_auth"};
    char token[CASB_TOKEN_SIZE], id[37], header[128], err[256];
    casb_principal who;
    casb_auth *a = NULL;

    (void)state;
    assert_int_equal(casb_auth_issue(db, &spec, token, id, err, sizeof(err)), 0);
    assert_int_equal(strncmp(token, CASB_TOKEN_PREFIX, 5), 0);
    assert_int_equal(strlen(token), CASB_TOKEN_SIZE - 1);
    assert_int_equal(casb_auth_new(&a, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_auth_connect(a, pool, err, sizeof(err)), 0);
    snprintf(header, sizeof(header), "Bearer %s", token);
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
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    casb_db_pool_free(pool);
    return failed;
}
