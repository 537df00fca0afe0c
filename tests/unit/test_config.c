/* Unit tests for config.c: typed parsing, validation messages, secrets kept out of
 * messages, --help generated from the table, and the exit-2 start-up path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "casb/config.h"
#include "casb/log.h"

static char *t_str;
static long t_int;
static int t_bool;
static char *t_addr;
static char *t_url;
static int t_level;
static char *t_secret;

static casb_cfg_var table[] = {
    {"T_STR", CASB_CFG_STRING, "dflt", 0, 0, 0, 0, "A string.", &t_str},
    {"T_INT", CASB_CFG_INT, "30", 0, 0, 1, 3600, "Seconds to wait.", &t_int},
    {"T_BOOL", CASB_CFG_BOOL, "false", 0, 0, 0, 0, "A switch.", &t_bool},
    {"T_ADDR", CASB_CFG_ADDR, "127.0.0.1:8081", 0, 0, 0, 0, "Listen address.", &t_addr},
    {"T_URL", CASB_CFG_URL, NULL, 0, 0, 0, 0, "Base URL.", &t_url},
    {"T_LEVEL", CASB_CFG_LOGLEVEL, "info", 0, 0, 0, 0, "Log level.", &t_level},
    {"T_SECRET", CASB_CFG_STRING, NULL, 1, 1, 0, 0, "The master key.", &t_secret},
};
#define NVARS (sizeof(table) / sizeof(table[0]))

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVARS; i++)
        unsetenv(table[i].name);
    setenv("T_SECRET", "s3cr3t-value-never-shown", 1);
    return 0;
}

static void test_defaults(void **state)
{
    char err[256] = "";

    (void)state;
    t_url = (char *)"garbage";
    assert_int_equal(casb_config_load(table, NVARS, err, sizeof(err)), 0);
    assert_string_equal(t_str, "dflt");
    assert_int_equal(t_int, 30);
    assert_int_equal(t_bool, 0);
    assert_string_equal(t_addr, "127.0.0.1:8081");
    assert_null(t_url); /* optional without default: defined NULL */
    assert_int_equal(t_level, CASB_LOG_INFO);
    assert_string_equal(t_secret, "s3cr3t-value-never-shown");
}

static void test_values_from_environment(void **state)
{
    char err[256] = "";

    (void)state;
    setenv("T_STR", "hello", 1);
    setenv("T_INT", "3600", 1);
    setenv("T_BOOL", "YES", 1);
    setenv("T_ADDR", "0.0.0.0:65535", 1);
    setenv("T_URL", "http://127.0.0.1:8090", 1);
    setenv("T_LEVEL", "debug", 1);
    assert_int_equal(casb_config_load(table, NVARS, err, sizeof(err)), 0);
    assert_string_equal(t_str, "hello");
    assert_int_equal(t_int, 3600);
    assert_int_equal(t_bool, 1);
    assert_string_equal(t_addr, "0.0.0.0:65535");
    assert_string_equal(t_url, "http://127.0.0.1:8090");
    assert_int_equal(t_level, CASB_LOG_DEBUG);

    setenv("T_BOOL", "off", 1);
    assert_int_equal(casb_config_load(table, NVARS, err, sizeof(err)), 0);
    assert_int_equal(t_bool, 0);
}

static void test_empty_counts_as_unset(void **state)
{
    char err[256] = "";

    (void)state;
    setenv("T_INT", "", 1);
    assert_int_equal(casb_config_load(table, NVARS, err, sizeof(err)), 0);
    assert_int_equal(t_int, 30);

    setenv("T_SECRET", "", 1);
    assert_int_equal(casb_config_load(table, NVARS, err, sizeof(err)), -1);
    assert_string_equal(err, "T_SECRET: required but not set");
}

/* Loads with one variable set to a bad value and returns the message. */
static const char *load_bad(const char *name, const char *value)
{
    static char err[256];

    setenv(name, value, 1);
    err[0] = '\0';
    assert_int_equal(casb_config_load(table, NVARS, err, sizeof(err)), -1);
    unsetenv(name);
    return err;
}

static void test_invalid_values(void **state)
{
    (void)state;
    assert_string_equal(load_bad("T_INT", "12abc"), "T_INT: \"12abc\" is not an integer");
    assert_string_equal(load_bad("T_INT", "0"), "T_INT: \"0\" is out of range [1, 3600]");
    assert_string_equal(load_bad("T_INT", "3601"), "T_INT: \"3601\" is out of range [1, 3600]");
    assert_string_equal(load_bad("T_INT", "99999999999999999999"),
                        "T_INT: \"99999999999999999999\" is not an integer");
    assert_non_null(strstr(load_bad("T_BOOL", "maybe"), "T_BOOL: \"maybe\" is not a boolean"));
    assert_non_null(strstr(load_bad("T_ADDR", "localhost:8080"), "T_ADDR: \"localhost:8080\""));
    assert_non_null(strstr(load_bad("T_ADDR", "127.0.0.1"), "T_ADDR:"));
    assert_non_null(strstr(load_bad("T_ADDR", "127.0.0.1:0"), "T_ADDR:"));
    assert_non_null(strstr(load_bad("T_ADDR", "127.0.0.1:65536"), "T_ADDR:"));
    assert_non_null(strstr(load_bad("T_ADDR", "127.0.0.1:-1"), "T_ADDR:"));
    assert_non_null(strstr(load_bad("T_ADDR", "300.0.0.1:80"), "T_ADDR:"));
    assert_non_null(strstr(load_bad("T_URL", "ftp://x"), "T_URL: \"ftp://x\" is not an http"));
    assert_non_null(strstr(load_bad("T_URL", "http://"), "T_URL:"));
    assert_non_null(strstr(load_bad("T_URL", "https://a b"), "T_URL:"));
    assert_string_equal(load_bad("T_LEVEL", "verbose"),
                        "T_LEVEL: \"verbose\" is not one of debug, info, warn, error");
}

static void test_control_characters_not_echoed(void **state)
{
    const char *err;

    (void)state;
    err = load_bad("T_INT", "1\n2");
    assert_null(strchr(err, '\n'));
    assert_string_equal(err, "T_INT: \"1?2\" is not an integer");
}

static void test_secret_never_in_error(void **state)
{
    static casb_cfg_var secret_int[] = {
        {"T_SECRET_INT", CASB_CFG_INT, NULL, 1, 1, 1, 10, "A secret number.", &t_int},
    };
    char err[256] = "";

    (void)state;
    setenv("T_SECRET_INT", "hunter2hunter2", 1);
    assert_int_equal(casb_config_load(secret_int, 1, err, sizeof(err)), -1);
    assert_string_equal(err, "T_SECRET_INT: is not an integer");
    assert_null(strstr(err, "hunter2"));
    unsetenv("T_SECRET_INT");
}

static void test_bad_default_is_reported(void **state)
{
    static casb_cfg_var bad_default[] = {
        {"T_BAD_DEFAULT", CASB_CFG_INT, "0", 0, 0, 1, 5, "Out of range default.", &t_int},
    };
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_config_load(bad_default, 1, err, sizeof(err)), -1);
    assert_string_equal(err, "T_BAD_DEFAULT: \"0\" is out of range [1, 5] (default)");
}

static char *help_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    casb_config_help(f, "casb-test", "Does test things.", table, NVARS);
    fclose(f);
    return buf;
}

static void test_help_from_table(void **state)
{
    char *h = help_text();

    (void)state;
    assert_non_null(strstr(h, "Usage: casb-test [--help]"));
    assert_non_null(strstr(h, "Does test things."));
    for (size_t i = 0; i < NVARS; i++) {
        assert_non_null(strstr(h, table[i].name));
        assert_non_null(strstr(h, table[i].help));
    }
    assert_non_null(strstr(h, "T_INT (integer, 1..3600, default 30)"));
    assert_non_null(strstr(h, "T_ADDR (host:port, default 127.0.0.1:8081)"));
    assert_non_null(strstr(h, "T_SECRET (string, required, secret)"));
    assert_null(strstr(h, "s3cr3t"));
    free(h);
}

/* Runs casb_config_init_or_exit in a child with argv, capturing stdout and stderr. */
static int run_child(char **argv, int argc, char *out, size_t outlen)
{
    int fds[2];
    pid_t pid;
    int status = 0;
    size_t got = 0;
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    /* Buffered output of the test runner would otherwise be flushed again by the child. */
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        casb_config_init_or_exit(argc, argv, "casb-test", "Does test things.", table, NVARS);
        printf("LOADED\n");
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    while (got + 1 < outlen && (n = read(fds[0], out + got, outlen - got - 1)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_init_or_exit(void **state)
{
    char out[4096];
    char *help_argv[] = {(char *)"prog", (char *)"--help", NULL};
    char *h_argv[] = {(char *)"prog", (char *)"-h", NULL};
    char *bad_argv[] = {(char *)"prog", (char *)"--port=1", NULL};
    char *ok_argv[] = {(char *)"prog", NULL};

    (void)state;
    assert_int_equal(run_child(help_argv, 2, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "Usage: casb-test"));
    assert_null(strstr(out, "LOADED"));
    assert_int_equal(run_child(h_argv, 2, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "T_LEVEL"));

    assert_int_equal(run_child(bad_argv, 2, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "casb-test: unknown argument \"--port=1\""));

    assert_int_equal(run_child(ok_argv, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "LOADED\n");

    /* A bad value: exactly one line "<prog>: NAME: why", exit 2. */
    setenv("T_ADDR", "nonsense", 1);
    assert_int_equal(run_child(ok_argv, 1, out, sizeof(out)), 2);
    assert_string_equal(out, "casb-test: T_ADDR: \"nonsense\" is not host:port with an IPv4 host "
                             "and a port 1..65535\n");
    unsetenv("T_ADDR");

    /* A missing secret: named, never shown. */
    unsetenv("T_SECRET");
    assert_int_equal(run_child(ok_argv, 1, out, sizeof(out)), 2);
    assert_string_equal(out, "casb-test: T_SECRET: required but not set\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_values_from_environment, setup),
        cmocka_unit_test_setup(test_empty_counts_as_unset, setup),
        cmocka_unit_test_setup(test_invalid_values, setup),
        cmocka_unit_test_setup(test_control_characters_not_echoed, setup),
        cmocka_unit_test_setup(test_secret_never_in_error, setup),
        cmocka_unit_test_setup(test_bad_default_is_reported, setup),
        cmocka_unit_test_setup(test_help_from_table, setup),
        cmocka_unit_test_setup(test_init_or_exit, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
