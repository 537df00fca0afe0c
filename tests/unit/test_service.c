/* Unit tests for common/src/service.c: the standard configuration variables through
 * libcommon's loader (required, defaults, bounds, secrets never printed), the readiness probe
 * and the health server against a real PostgreSQL (CASB_TEST_DATABASE_URL) and Kafka
 * (CASB_TEST_KAFKA_BROKERS), and the stop signals. The signal test runs last: a stop request
 * cannot be taken back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casb/config.h"
#include "casb/db.h"
#include "casb/http_client.h"
#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/service.h"
#include "casb/timeutil.h"

#define DB_URL_WITH_PASSWORD "postgresql://casb:pa55w0rd-in-url@127.0.0.1:55432/casb"

typedef struct {
    char *database_url;
    char *kafka_brokers;
    char *http_addr;
    int log_level;
    long shutdown_grace_s;
    char *master_key;
    char *master_key_previous;
    char *admin_token;
    char *allowed_endpoints;
    long db_pool_size;
} standard_settings;

#define NVARS 10

static size_t standard_table(standard_settings *s, casb_cfg_var vars[NVARS])
{
    const casb_cfg_var table[NVARS] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_kafka_brokers(&s->kafka_brokers),
        casb_service_var_http_addr(&s->http_addr, "127.0.0.1:8099"),
        casb_service_var_log_level(&s->log_level),
        casb_service_var_shutdown_grace_s(&s->shutdown_grace_s),
        casb_service_var_master_key(&s->master_key),
        casb_service_var_master_key_previous(&s->master_key_previous),
        casb_service_var_admin_token(&s->admin_token),
        casb_service_var_allowed_endpoints(&s->allowed_endpoints),
        casb_service_var_db_pool_size(&s->db_pool_size),
    };

    memset(s, 0, sizeof(*s));
    memcpy(vars, table, sizeof(table));
    return NVARS;
}

static void base_env(void)
{
    static const char *const optional[] = {
        "CASB_HTTP_ADDR",         "CASB_LOG_LEVEL",    "CASB_SHUTDOWN_GRACE_S",
        "CASB_MASTER_KEY_PREVIOUS", "CASB_ALLOWED_ENDPOINTS", "CASB_DB_POOL_SIZE",
    };

    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        unsetenv(optional[i]);
    setenv("CASB_DATABASE_URL", DB_URL_WITH_PASSWORD, 1);
    setenv("CASB_KAFKA_BROKERS", "127.0.0.1:19092", 1);
    setenv("CASB_MASTER_KEY", "master-key-value", 1);
    setenv("CASB_ADMIN_TOKEN", "admin-token-value", 1);
}

static int load(standard_settings *s, char *err, size_t errlen)
{
    casb_cfg_var vars[NVARS];

    standard_table(s, vars);
    err[0] = '\0';
    return casb_config_load(vars, NVARS, err, errlen);
}

static void test_defaults(void **state)
{
    standard_settings s;
    char err[256];

    (void)state;
    base_env();
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.database_url, DB_URL_WITH_PASSWORD);
    assert_string_equal(s.kafka_brokers, "127.0.0.1:19092");
    assert_string_equal(s.http_addr, "127.0.0.1:8099");
    assert_int_equal(s.log_level, CASB_LOG_INFO);
    assert_int_equal(s.shutdown_grace_s, 30);
    assert_int_equal(s.db_pool_size, 8);
    assert_null(s.master_key_previous);
    assert_null(s.allowed_endpoints);

    /* An empty optional variable is unset, not an empty key or allowlist. */
    setenv("CASB_MASTER_KEY_PREVIOUS", "", 1);
    setenv("CASB_ALLOWED_ENDPOINTS", "", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_null(s.master_key_previous);
    assert_null(s.allowed_endpoints);
}

/* No service may fall back to a built-in database or broker: a forgotten variable would
 * silently point a deployment at the wrong place. */
static void test_required_without_default(void **state)
{
    static const char *const required[] = {"CASB_DATABASE_URL", "CASB_KAFKA_BROKERS",
                                            "CASB_MASTER_KEY"};
    standard_settings s;
    casb_cfg_var vars[NVARS];
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        base_env();
        unsetenv(required[i]);
        assert_int_not_equal(load(&s, err, sizeof(err)), 0);
        assert_non_null(strstr(err, required[i]));
        assert_non_null(strstr(err, "required"));
    }
    standard_table(&s, vars);
    assert_null(vars[0].default_value);
    assert_null(vars[1].default_value);
}

static void test_bounds(void **state)
{
    static const struct {
        const char *name;
        const char *value;
        int ok;
    } cases[] = {
        {"CASB_SHUTDOWN_GRACE_S", "0", 1},    {"CASB_SHUTDOWN_GRACE_S", "3600", 1},
        {"CASB_SHUTDOWN_GRACE_S", "-1", 0},   {"CASB_SHUTDOWN_GRACE_S", "3601", 0},
        {"CASB_DB_POOL_SIZE", "1", 1},        {"CASB_DB_POOL_SIZE", "256", 1},
        {"CASB_DB_POOL_SIZE", "0", 0},        {"CASB_DB_POOL_SIZE", "257", 0},
        {"CASB_HTTP_ADDR", "127.0.0.1:1", 1}, {"CASB_HTTP_ADDR", "localhost:8081", 0},
        {"CASB_LOG_LEVEL", "debug", 1},       {"CASB_LOG_LEVEL", "verbose", 0},
    };
    standard_settings s;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        base_env();
        setenv(cases[i].name, cases[i].value, 1);
        if (cases[i].ok) {
            assert_int_equal(load(&s, err, sizeof(err)), 0);
        } else {
            assert_int_not_equal(load(&s, err, sizeof(err)), 0);
            assert_non_null(strstr(err, cases[i].name));
            /* Not secret: the offending value is shown to help the operator. */
            assert_non_null(strstr(err, cases[i].value));
        }
    }
}

/* The secret definitions are exactly the variables that may carry a credential; their values
 * appear neither in --help nor in an error, even when the loader rejects them. */
static void test_secrets_never_printed(void **state)
{
    standard_settings s;
    casb_cfg_var vars[NVARS];
    char *text = NULL;
    size_t len = 0;
    char err[256];
    FILE *f;

    (void)state;
    base_env();
    setenv("CASB_MASTER_KEY_PREVIOUS", "previous-key-value", 1);
    standard_table(&s, vars);
    for (size_t i = 0; i < NVARS; i++) {
        int want_secret = strcmp(vars[i].name, "CASB_DATABASE_URL") == 0 ||
                          strcmp(vars[i].name, "CASB_MASTER_KEY") == 0 ||
                          strcmp(vars[i].name, "CASB_MASTER_KEY_PREVIOUS") == 0 ||
                          strcmp(vars[i].name, "CASB_ADMIN_TOKEN") == 0;

        assert_int_equal(vars[i].secret != 0, want_secret);
        if (!want_secret)
            continue;
        /* Force a rejection of the (set) value: the message names the variable only. */
        casb_cfg_var bad = vars[i];
        long sink = 0;

        bad.type = CASB_CFG_INT;
        bad.target = &sink;
        assert_int_not_equal(casb_config_load(&bad, 1, err, sizeof(err)), 0);
        assert_non_null(strstr(err, vars[i].name));
        assert_null(strstr(err, getenv(vars[i].name)));
        assert_null(strstr(err, "pa55w0rd"));
    }

    f = open_memstream(&text, &len);
    assert_non_null(f);
    casb_config_help(f, "casb-test", "summary", vars, NVARS);
    fclose(f);
    assert_non_null(strstr(text, "CASB_DATABASE_URL (string, required, secret)"));
    assert_null(strstr(text, "pa55w0rd"));
    assert_null(strstr(text, "master-key-value"));
    assert_null(strstr(text, "previous-key-value"));
    assert_null(strstr(text, "admin-token-value"));
    free(text);
}

static const char *test_db_url(void)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");

    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: the probe tests need a real PostgreSQL "
                 "(tests/run exports it)");
    return url;
}

/* The broker of the local stack (DESIGN) unless tests/run says otherwise. */
static const char *test_brokers(void)
{
    const char *brokers = getenv("CASB_TEST_KAFKA_BROKERS");

    return brokers && *brokers ? brokers : "127.0.0.1:19092";
}

static casb_producer *new_producer(const char *brokers)
{
    casb_producer *p = NULL;
    char err[256] = "";

    if (casb_producer_new(&p, brokers, "test-service", err, sizeof(err)) != 0)
        fail_msg("casb_producer_new: %s", err);
    return p;
}

/* The probe's connection, tagged so that the test can cut it from the server side. */
static casb_service_probe *new_probe(casb_producer *producer, char *app_name, size_t len)
{
    casb_service_probe *probe = NULL;
    const char *base = test_db_url();
    char url[512];
    char err[256] = "";

    snprintf(app_name, len, "casb_test_probe_%d", (int)getpid());
    snprintf(url, sizeof(url), "%s%capplication_name=%s", base, strchr(base, '?') ? '&' : '?',
             app_name);
    if (casb_service_probe_new(&probe, url, producer, err, sizeof(err)) != 0)
        fail_msg("casb_service_probe_new: %s", err);
    return probe;
}

static void test_probe_ready_and_reconnects(void **state)
{
    casb_producer *producer = new_producer(test_brokers());
    char app_name[64];
    casb_service_probe *probe = new_probe(producer, app_name, sizeof(app_name));
    casb_db *admin = NULL;
    char reason[128] = "";
    char err[256] = "";
    const char *params[1] = {app_name};
    long killed = 0;

    (void)state;
    assert_int_equal(casb_service_probe_ready(probe, reason, sizeof(reason)), 1);

    /* A PostgreSQL restart as the probe sees it: its backend goes away. The next probe
     * reconnects instead of reporting the service unready forever. */
    if (casb_db_open(&admin, test_db_url(), 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    if (casb_db_exec(admin,
                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = $1",
                     1, params, &killed, err, sizeof(err)) != 0)
        fail_msg("pg_terminate_backend: %s", err);
    assert_int_equal(killed, 1);
    casb_db_close(admin);
    casb_sleep_ms(200);
    assert_int_equal(casb_service_probe_ready(probe, reason, sizeof(reason)), 1);

    casb_service_probe_free(probe);
    casb_producer_free(producer);
}

static void test_probe_kafka_unreachable(void **state)
{
    /* Nothing listens on port 1: metadata requests cannot be answered. */
    casb_producer *producer = new_producer("127.0.0.1:1");
    char app_name[64];
    casb_service_probe *probe = new_probe(producer, app_name, sizeof(app_name));
    char reason[128] = "";

    (void)state;
    assert_int_equal(casb_service_probe_ready(probe, reason, sizeof(reason)), 0);
    assert_string_equal(reason, "kafka unreachable");
    casb_service_probe_free(probe);
    casb_producer_free(producer);
}

/* A loopback port nobody listens on right now (the kernel's choice). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static long get_status(casb_http_client *c, const char *base, const char *path)
{
    casb_http_response *r = NULL;
    char url[128];
    char err[256] = "";
    long status;

    snprintf(url, sizeof(url), "%s%s", base, path);
    if (casb_http_request(c, &r, "GET", url, NULL, NULL, 0, err, sizeof(err)) != 0)
        fail_msg("GET %s: %s", url, err);
    status = r->status;
    casb_http_response_free(r);
    return status;
}

static void test_health_server(void **state)
{
    casb_producer *producer = new_producer(test_brokers());
    char app_name[64];
    casb_service_probe *probe = new_probe(producer, app_name, sizeof(app_name));
    casb_http_server *server = NULL;
    casb_http_client *client = NULL;
    casb_http_client_opts co = {.timeout_ms = 10000};
    char addr[32];
    char base[48];
    char err[256] = "";

    (void)state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
    snprintf(base, sizeof(base), "http://%s", addr);
    if (casb_service_health_start(&server, addr, probe, err, sizeof(err)) != 0)
        fail_msg("casb_service_health_start: %s", err);
    if (casb_http_client_new(&client, &co, err, sizeof(err)) != 0)
        fail_msg("casb_http_client_new: %s", err);
    assert_int_equal(get_status(client, base, "/healthz"), 200);
    assert_int_equal(get_status(client, base, "/readyz"), 200);
    assert_int_equal(get_status(client, base, "/metrics"), 200);
    assert_int_equal(get_status(client, base, "/v1/findings"), 404);

    casb_http_client_free(client);
    casb_http_server_free(server);
    casb_service_probe_free(probe);
    casb_producer_free(producer);
}

static void test_stop_signals(void **state)
{
    volatile int *cancel = casb_service_cancel_flag();
    int64_t t0;

    (void)state;
    casb_service_signals_install();
    assert_int_equal(casb_service_stopping(), 0);

    /* SIGPIPE is ignored: a write to a closed socket must not kill a service. */
    raise(SIGPIPE);
    assert_int_equal(casb_service_stopping(), 0);

    /* No stop yet: the whole grace period is left. */
    assert_int_equal(casb_service_grace_left_ms(3), 3000);
    assert_int_equal(casb_service_watchdog_start(3600), 0);

    /* The cancel flag belongs to its user between signals (reset per scan). */
    *cancel = 0;
    raise(SIGTERM);
    assert_int_equal(casb_service_stopping(), 1);
    assert_int_equal(*cancel, 1);

    /* The grace period counts from the signal; a spent one leaves 0, never less. */
    assert_true(casb_service_grace_left_ms(3) <= 3000);
    assert_true(casb_service_grace_left_ms(3) > 2000);
    assert_int_equal(casb_service_grace_left_ms(0), 0);
    /* A shutdown done within the grace period ends the watchdog without exiting. */
    casb_service_watchdog_stop();

    /* Waits end at once when a stop was requested. */
    t0 = casb_monotonic_ms();
    casb_service_sleep_ms(60000);
    casb_service_wait(NULL);
    assert_true(casb_monotonic_ms() - t0 < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_required_without_default),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_secrets_never_printed),
        cmocka_unit_test(test_probe_ready_and_reconnects),
        cmocka_unit_test(test_probe_kafka_unreachable),
        cmocka_unit_test(test_health_server),
        cmocka_unit_test(test_stop_signals),
    };

    casb_log_init("test_service", getenv("TEST_LOG_DEBUG") ? CASB_LOG_DEBUG : CASB_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
