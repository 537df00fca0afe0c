/* casb_db_open gives up its connect retries once the process is told to stop: a service
 * that receives SIGTERM while PostgreSQL is away exits within its grace period instead of
 * retrying for the whole connect timeout. A program of its own: the stop flag, once set,
 * stays set for the process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "casb/db.h"
#include "casb/error.h"
#include "casb/service.h"
#include "casb/timeutil.h"

static void *term_later(void *arg)
{
    (void)arg;
    casb_sleep_ms(500);
    kill(getpid(), SIGTERM);
    return NULL;
}

static void test_sigterm_ends_the_connect_retries(void **state)
{
    /* Port 1 on loopback refuses at once: the loop retries with backoff until stopped. */
    const char *url = "postgresql://casb:casb@127.0.0.1:1/casb?connect_timeout=2";
    casb_db *db = NULL;
    pthread_t t;
    char err[256] = "";
    int64_t start;
    int rc;

    (void)state;
    casb_service_signals_install();
    assert_int_equal(pthread_create(&t, NULL, term_later, NULL), 0);
    start = casb_monotonic_ms();
    rc = casb_db_open(&db, url, 60000, err, sizeof err);
    pthread_join(t, NULL);
    assert_int_equal(rc, CASB_EUNAVAILABLE);
    assert_null(db);
    assert_non_null(strstr(err, "stopping"));
    /* Stopped about when the signal came, not after the 60 s timeout. */
    assert_true(casb_monotonic_ms() - start < 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_ends_the_connect_retries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
