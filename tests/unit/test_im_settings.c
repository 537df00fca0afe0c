/* Unit tests for the integration-manager's configuration table (im_settings.c), through
 * libcommon's loader: defaults, required variables, bounds, and secrets that never show up
 * in --help or in error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "im_settings.h"

#define SECRET_KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SECRET_TOKEN "s3cr3t-admin-token-value"

static void base_env(void)
{
    unsetenv("CASB_HTTP_ADDR");
    unsetenv("CASB_MASTER_KEY_PREVIOUS");
    unsetenv("CASB_ALLOWED_ENDPOINTS");
    unsetenv("CASB_LOG_LEVEL");
    unsetenv("CASB_DB_POOL_SIZE");
    unsetenv("CASB_HTTP_TIMEOUT_MS");
    unsetenv("CASB_SHUTDOWN_GRACE_S");
    setenv("CASB_DATABASE_URL", "postgresql://casb:casb@127.0.0.1:55432/casb", 1);
    setenv("CASB_KAFKA_BROKERS", "127.0.0.1:19092", 1);
    setenv("CASB_MASTER_KEY", SECRET_KEY, 1);
    setenv("CASB_ADMIN_TOKEN", SECRET_TOKEN, 1);
}

static int load(im_settings *s, char *err, size_t errlen)
{
    casb_cfg_var vars[IM_SETTINGS_COUNT];
    size_t n = im_settings_table(s, vars, IM_SETTINGS_COUNT);

    assert_int_equal(n, IM_SETTINGS_COUNT);
    err[0] = '\0';
    return casb_config_load(vars, n, err, errlen);
}

static void test_defaults(void **state)
{
    im_settings s;
    char err[256];

    (void)state;
    base_env();
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.http_addr, "127.0.0.1:8081");
    assert_string_equal(s.master_key, SECRET_KEY);
    assert_string_equal(s.admin_token, SECRET_TOKEN);
    assert_null(s.master_key_previous);
    assert_null(s.allowed_endpoints);
    assert_int_equal(s.db_pool_size, 8);
    assert_int_equal(s.http_timeout_ms, 10000);
    assert_int_equal(s.shutdown_grace_s, 30);
}

static void test_required(void **state)
{
    static const char *const required[] = {"CASB_DATABASE_URL", "CASB_KAFKA_BROKERS",
                                           "CASB_MASTER_KEY"};
    im_settings s;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        base_env();
        unsetenv(required[i]);
        assert_int_not_equal(load(&s, err, sizeof(err)), 0);
        assert_non_null(strstr(err, required[i]));
    }
}

static void test_bounds(void **state)
{
    im_settings s;
    char err[256];

    (void)state;
    base_env();
    setenv("CASB_DB_POOL_SIZE", "0", 1);
    assert_int_not_equal(load(&s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "CASB_DB_POOL_SIZE"));
    base_env();
    setenv("CASB_HTTP_TIMEOUT_MS", "99", 1);
    assert_int_not_equal(load(&s, err, sizeof(err)), 0);
    base_env();
    setenv("CASB_HTTP_ADDR", "localhost", 1);
    assert_int_not_equal(load(&s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "CASB_HTTP_ADDR"));
}

static void test_secrets_not_shown(void **state)
{
    casb_cfg_var vars[IM_SETTINGS_COUNT];
    im_settings s;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    base_env();
    setenv("CASB_MASTER_KEY_PREVIOUS", "previous-key-secret-value", 1);
    im_settings_table(&s, vars, IM_SETTINGS_COUNT);
    f = open_memstream(&text, &len);
    assert_non_null(f);
    casb_config_help(f, "casb-integration-manager", "summary", vars, IM_SETTINGS_COUNT);
    fclose(f);
    assert_non_null(strstr(text, "CASB_MASTER_KEY"));
    assert_null(strstr(text, SECRET_KEY));
    assert_null(strstr(text, SECRET_TOKEN));
    assert_null(strstr(text, "previous-key-secret-value"));
    free(text);
    for (size_t i = 0; i < IM_SETTINGS_COUNT; i++) {
        if (strcmp(vars[i].name, "CASB_DATABASE_URL") == 0 ||
            strcmp(vars[i].name, "CASB_MASTER_KEY") == 0 ||
            strcmp(vars[i].name, "CASB_MASTER_KEY_PREVIOUS") == 0 ||
            strcmp(vars[i].name, "CASB_ADMIN_TOKEN") == 0 ||
            strcmp(vars[i].name, "CASB_GITHUB_OAUTH_CLIENT_SECRET") == 0)
            assert_true(vars[i].secret);
        else
            assert_false(vars[i].secret);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_secrets_not_shown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
