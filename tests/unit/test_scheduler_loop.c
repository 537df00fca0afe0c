/* Unit tests for the scheduler's pure parts: the outbox id array handed to SQL
 * (sched_relay.c), the loop's timing decisions (sched_loop.c) and its configuration table
 * (sched_settings.c, through libcommon's config loader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sched_loop.h"
#include "sched_relay.h"
#include "sched_settings.h"

static void test_id_array(void **state)
{
    const char *const ids[] = {"1", "42", "9223372036854775807"};
    const char *const bad1[] = {"1", "2;DROP"};
    const char *const bad2[] = {"-1"};
    const char *const bad3[] = {""};
    char *s;

    (void)state;
    s = sched_relay_id_array(ids, 3);
    assert_string_equal(s, "{1,42,9223372036854775807}");
    free(s);
    s = sched_relay_id_array(ids, 1);
    assert_string_equal(s, "{1}");
    free(s);
    s = sched_relay_id_array(NULL, 0);
    assert_string_equal(s, "{}");
    free(s);
    assert_null(sched_relay_id_array(bad1, 2));
    assert_null(sched_relay_id_array(bad2, 1));
    assert_null(sched_relay_id_array(bad3, 1));
}

static void test_sleep(void **state)
{
    sched_deadlines d = {.claim = 1000, .relay = 1250, .backlog = 2000, .sweep = 60000};

    (void)state;
    assert_int_equal(sched_loop_sleep_ms(&d, 900, 100), 100);  /* capped */
    assert_int_equal(sched_loop_sleep_ms(&d, 950, 100), 50);   /* until the claim */
    assert_int_equal(sched_loop_sleep_ms(&d, 1000, 100), 0);   /* due now */
    assert_int_equal(sched_loop_sleep_ms(&d, 5000, 100), 0);   /* overdue */
    d.claim = 2000;
    assert_int_equal(sched_loop_sleep_ms(&d, 1200, 100), 50);  /* until the relay */
}

static void test_next_relay(void **state)
{
    (void)state;
    /* A full batch: the outbox may hold more, go again at once. */
    assert_int_equal(sched_loop_next_relay(1000, 500, 500, 250), 1000);
    /* Less than a batch: it is drained, poll later. */
    assert_int_equal(sched_loop_next_relay(1000, 3, 500, 250), 1250);
    assert_int_equal(sched_loop_next_relay(1000, 0, 500, 250), 1250);
    /* A failure backs off at least a second, longer when polling is slower anyway. */
    assert_int_equal(sched_loop_next_relay(1000, -1, 500, 250), 3000);
    assert_int_equal(sched_loop_next_relay(1000, -1, 500, 5000), 6000);
}

static void test_next_claim(void **state)
{
    (void)state;
    /* A full batch: more may be due, claim again at once. */
    assert_int_equal(sched_loop_next_claim(1000, 500, 500, 1000), 1000);
    /* Less than a batch, or a failure: wait for the next tick. */
    assert_int_equal(sched_loop_next_claim(1000, 499, 500, 1000), 2000);
    assert_int_equal(sched_loop_next_claim(1000, 0, 500, 1000), 2000);
    assert_int_equal(sched_loop_next_claim(1000, -1, 500, 1000), 2000);
}

static void clear_env(void)
{
    unsetenv("CASB_HTTP_ADDR");
    unsetenv("CASB_LOG_LEVEL");
    unsetenv("CASB_SCHEDULER_TICK_MS");
    unsetenv("CASB_SCHEDULER_BATCH");
    unsetenv("CASB_SCHEDULER_JITTER_PCT");
    unsetenv("CASB_RELAY_POLL_MS");
    unsetenv("CASB_SHUTDOWN_GRACE_S");
    setenv("CASB_DATABASE_URL", "postgresql://casb:casb@127.0.0.1:55432/casb", 1);
    setenv("CASB_KAFKA_BROKERS", "127.0.0.1:19092", 1);
}

static int load(sched_settings *s, char *err, size_t errlen)
{
    casb_cfg_var vars[SCHED_SETTINGS_COUNT];
    size_t n = sched_settings_table(s, vars, SCHED_SETTINGS_COUNT);

    assert_int_equal(n, SCHED_SETTINGS_COUNT);
    return casb_config_load(vars, n, err, errlen);
}

static void test_settings_defaults(void **state)
{
    sched_settings s;
    char err[256] = "";

    (void)state;
    clear_env();
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.http_addr, "127.0.0.1:8083");
    assert_int_equal(s.tick_ms, 1000);
    assert_int_equal(s.batch, 500);
    assert_int_equal(s.jitter_pct, 10);
    assert_int_equal(s.relay_poll_ms, 250);
    assert_int_equal(s.shutdown_grace_s, 30);
}

static void test_settings_bounds(void **state)
{
    sched_settings s;
    char err[256] = "";

    (void)state;
    clear_env();
    setenv("CASB_SCHEDULER_JITTER_PCT", "0", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_int_equal(s.jitter_pct, 0);
    setenv("CASB_SCHEDULER_JITTER_PCT", "101", 1);
    assert_int_not_equal(load(&s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "CASB_SCHEDULER_JITTER_PCT"));
    clear_env();
    setenv("CASB_SCHEDULER_BATCH", "0", 1);
    assert_int_not_equal(load(&s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "CASB_SCHEDULER_BATCH"));
    clear_env();
    unsetenv("CASB_DATABASE_URL");
    assert_int_not_equal(load(&s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "CASB_DATABASE_URL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_array),          cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_next_relay),        cmocka_unit_test(test_next_claim),
        cmocka_unit_test(test_settings_defaults), cmocka_unit_test(test_settings_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
