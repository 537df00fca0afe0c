/* Unit tests for auth.c: the bootstrap admin token authenticates as the default account's
 * admin; anything else is CASB_EAUTH; weak tokens are refused at start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "casb/auth.h"
#include "casb/error.h"

#define TOKEN "casb_admin_0123456789abcdef"

static void test_new_rejects_weak_tokens(void **state)
{
    casb_auth *a = (casb_auth *)&a; /* must be reset to NULL on failure */
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_auth_new(&a, NULL, err, sizeof(err)), CASB_EINVALID);
    assert_null(a);
    assert_int_equal(casb_auth_new(&a, "", err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_auth_new(&a, "fifteen-chars-x", err, sizeof(err)), CASB_EINVALID);
    assert_non_null(strstr(err, "16"));
    assert_null(strstr(err, "fifteen")); /* the token is never echoed */
    assert_int_equal(casb_auth_new(&a, "sixteen chars ok", err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_auth_new(&a, "sixteen-chars-ok", err, sizeof(err)), 0);
    assert_non_null(a);
    casb_auth_free(a);
    casb_auth_free(NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_weak_tokens),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_two_instances_are_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
