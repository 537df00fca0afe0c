#include "casb/service.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "casb/db.h"
#include "casb/error.h"
#include "casb/log.h"
#include "casb/migrate.h"
#include "casb/timeutil.h"

/* The slice in which waiting loops look at the stop flag: short enough that SIGTERM is seen
 * at once by a human, long enough to cost nothing. */
#define STOP_CHECK_MS 100
/* After the grace period, the time a service may still take to close its connections before
 * the watchdog ends it. */
#define WATCHDOG_CLOSE_MARGIN_MS 5000
/* Health-only servers answer a probe now and then: a few threads are plenty. */
#define HEALTH_SERVER_THREADS 4

/* The standard variables, one definition each (targets are filled in by the accessors). */
enum {
    VAR_DATABASE_URL,
    VAR_KAFKA_BROKERS,
    VAR_HTTP_ADDR,
    VAR_LOG_LEVEL,
    VAR_SHUTDOWN_GRACE_S,
    VAR_MASTER_KEY,
    VAR_MASTER_KEY_PREVIOUS,
    VAR_ADMIN_TOKEN,
    VAR_ALLOWED_ENDPOINTS,
    VAR_DB_POOL_SIZE,
    VAR_API_RATE_PER_SECOND,
    VAR_API_RATE_BURST,
    VAR_GITHUB_OAUTH_CLIENT_ID,
    VAR_GITHUB_OAUTH_CLIENT_SECRET,
    VAR_GITHUB_WEB_URL,
};

static const casb_cfg_var standard_vars[] = {
    [VAR_DATABASE_URL] = {"CASB_DATABASE_URL", CASB_CFG_STRING, NULL, 1, 1, 0, 0,
                          "PostgreSQL connection URL (postgresql://user:password@host:port/db).",
                          NULL},
    [VAR_KAFKA_BROKERS] = {"CASB_KAFKA_BROKERS", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
                           "Comma-separated Kafka bootstrap servers (host:port).", NULL},
    [VAR_HTTP_ADDR] = {"CASB_HTTP_ADDR", CASB_CFG_ADDR, NULL, 0, 0, 0, 0,
                       "Address (IPv4 host:port) of the service's HTTP API, if it has one, and "
                       "of /healthz, /readyz and /metrics.",
                       NULL},
    [VAR_LOG_LEVEL] = {"CASB_LOG_LEVEL", CASB_CFG_LOGLEVEL, "info", 0, 0, 0, 0,
                       "Minimum log level: debug, info, warn or error.", NULL},
    [VAR_SHUTDOWN_GRACE_S] = {"CASB_SHUTDOWN_GRACE_S", CASB_CFG_INT, "30", 0, 0, 0, 3600,
                              "Seconds given on SIGTERM to deliver the Kafka messages still "
                              "queued once the work has stopped (0: do not wait).",
                              NULL},
    [VAR_MASTER_KEY] = {"CASB_MASTER_KEY", CASB_CFG_STRING, NULL, 1, 1, 0, 0,
                        "32-byte key sealing secrets at rest (integration credentials, webhook "
                        "secrets), as 64 hex "
                        "characters or base64.",
                        NULL},
    [VAR_MASTER_KEY_PREVIOUS] = {"CASB_MASTER_KEY_PREVIOUS", CASB_CFG_STRING, NULL, 0, 1, 0, 0,
                                 "The master key before the last rotation; credentials sealed "
                                 "with it stay readable.",
                                 NULL},
    [VAR_ADMIN_TOKEN] = {"CASB_ADMIN_TOKEN", CASB_CFG_STRING, NULL, 0, 1, 0, 0,
                         "Bootstrap admin token of the default account, stored at the first "
                         "start only (then revocable; later values are ignored): issue the "
                         "others with POST /v1/tokens.",
                         NULL},
    [VAR_ALLOWED_ENDPOINTS] = {"CASB_ALLOWED_ENDPOINTS", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
                               "Comma-separated base URLs providers may use besides their "
                               "public endpoints (e.g. http://127.0.0.1:8090).",
                               NULL},
    [VAR_DB_POOL_SIZE] = {"CASB_DB_POOL_SIZE", CASB_CFG_INT, "8", 0, 0, 1, 256,
                          "PostgreSQL connections shared by the HTTP request handlers.", NULL},
    [VAR_API_RATE_PER_SECOND] = {"CASB_API_RATE_PER_SECOND", CASB_CFG_INT, "50", 0, 0, 0, 1000000,
                                 "Requests per second one API token may sustain on this "
                                 "replica (429 with Retry-After beyond); 0: unlimited.",
                                 NULL},
    [VAR_API_RATE_BURST] = {"CASB_API_RATE_BURST", CASB_CFG_INT, "500", 0, 0, 1, 1000000,
                            "Requests one API token may send at once before "
                            "CASB_API_RATE_PER_SECOND paces it.",
                            NULL},
    [VAR_GITHUB_OAUTH_CLIENT_ID] = {"CASB_GITHUB_OAUTH_CLIENT_ID", CASB_CFG_STRING, NULL, 0, 0, 0,
                                    0,
                                    "Client ID of the GitHub App whose user authorization "
                                    "installs GitHub integrations by consent (OAuth). Unset: "
                                    "GitHub integrations take tokens or App keys only.",
                                    NULL},
    [VAR_GITHUB_OAUTH_CLIENT_SECRET] = {"CASB_GITHUB_OAUTH_CLIENT_SECRET", CASB_CFG_STRING,
                                        NULL, 0, 1, 0, 0,
                                        "Client secret of that GitHub App (secret).", NULL},
    [VAR_GITHUB_WEB_URL] = {"CASB_GITHUB_WEB_URL", CASB_CFG_STRING, "https://github.com", 0, 0,
                            0, 0,
                            "GitHub's web URL for the OAuth authorize and token endpoints "
                            "(GitHub Enterprise Server: https://<host>). Another URL than "
                            "the default must be listed in CASB_ALLOWED_ENDPOINTS.",
                            NULL},
};

static casb_cfg_var standard_var(int which, void *target)
{
    casb_cfg_var v = standard_vars[which];

    v.target = target;
    return v;
}

casb_cfg_var casb_service_var_database_url(char **target)
{
    return standard_var(VAR_DATABASE_URL, target);
}

casb_cfg_var casb_service_var_kafka_brokers(char **target)
{
    return standard_var(VAR_KAFKA_BROKERS, target);
}

casb_cfg_var casb_service_var_http_addr(char **target, const char *default_addr)
{
    casb_cfg_var v = standard_var(VAR_HTTP_ADDR, target);

    v.default_value = default_addr;
    return v;
}

casb_cfg_var casb_service_var_log_level(int *target)
{
    return standard_var(VAR_LOG_LEVEL, target);
}

casb_cfg_var casb_service_var_shutdown_grace_s(long *target)
{
    return standard_var(VAR_SHUTDOWN_GRACE_S, target);
}

casb_cfg_var casb_service_var_master_key(char **target)
{
    return standard_var(VAR_MASTER_KEY, target);
}

casb_cfg_var casb_service_var_master_key_previous(char **target)
{
    return standard_var(VAR_MASTER_KEY_PREVIOUS, target);
}

casb_cfg_var casb_service_var_admin_token(char **target)
{
    return standard_var(VAR_ADMIN_TOKEN, target);
}

casb_cfg_var casb_service_var_api_rate_per_second(long *target)
{
    return standard_var(VAR_API_RATE_PER_SECOND, target);
}

casb_cfg_var casb_service_var_api_rate_burst(long *target)
{
    return standard_var(VAR_API_RATE_BURST, target);
}

casb_cfg_var casb_service_var_allowed_endpoints(char **target)
{
    return standard_var(VAR_ALLOWED_ENDPOINTS, target);
}

casb_cfg_var casb_service_var_db_pool_size(long *target)
{
    return standard_var(VAR_DB_POOL_SIZE, target);
}

/* Written only by the signal handler (and read everywhere): sig_atomic_t is what a handler
 * may set. The cancel flag has the type its watchers expect (volatile int); glibc's
 * sig_atomic_t is an int, so the handler's store is just as atomic. */
static volatile sig_atomic_t stop_requested;
static volatile int cancel_requested;
/* When the first stop signal came (CLOCK_MONOTONIC, as casb_monotonic_ms): the grace period
 * counts from there. Written before stop_requested and read only once that is set; an
 * aligned 64-bit store is one instruction on the platforms the services run on. */
static volatile int64_t stop_at_ms;

static void on_stop_signal(int sig)
{
    struct timespec ts;

    (void)sig;
    /* clock_gettime is async-signal-safe. */
    if (!stop_requested && clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        stop_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    stop_requested = 1;
    cancel_requested = 1;
}

long casb_service_grace_left_ms(long grace_s)
{
    int64_t left;

    if (!stop_requested || stop_at_ms == 0)
        return grace_s * 1000;
    left = stop_at_ms + (int64_t)grace_s * 1000 - casb_monotonic_ms();
    return left > 0 ? (long)left : 0;
}

/* The shutdown watchdog: one thread per process, started and stopped by main. */
static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int running;
    int done; /* main has finished its shutdown */
    long grace_s;
} watchdog = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* Wakes every STOP_CHECK_MS (a signal handler cannot signal a condition variable) until a
 * stop is requested, then once the grace period and the close margin are over. */
static void *watchdog_main(void *arg)
{
    char grace[24];
    int done;

    (void)arg;
    pthread_mutex_lock(&watchdog.mu);
    while (!watchdog.done &&
           (!stop_requested || stop_at_ms == 0 ||
            casb_monotonic_ms() <
                stop_at_ms + (int64_t)watchdog.grace_s * 1000 + WATCHDOG_CLOSE_MARGIN_MS)) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += STOP_CHECK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&watchdog.cond, &watchdog.mu, &until);
    }
    done = watchdog.done;
    pthread_mutex_unlock(&watchdog.mu);
    if (done)
        return NULL;
    /* What the service still holds is uncommitted, so it is redelivered elsewhere: exiting
     * loses nothing that at-least-once delivery does not bring back. */
    snprintf(grace, sizeof(grace), "%ld", watchdog.grace_s);
    casb_log_error("shutdown took longer than the grace period; exiting now", "grace_s", grace);
    _exit(1);
}

int casb_service_watchdog_start(long grace_s)
{
    watchdog.grace_s = grace_s;
    watchdog.done = 0;
    if (pthread_create(&watchdog.thread, NULL, watchdog_main, NULL) != 0) {
        casb_log_warn("cannot start the shutdown watchdog");
        return -1;
    }
    watchdog.running = 1;
    return 0;
}

void casb_service_watchdog_stop(void)
{
    if (!watchdog.running)
        return;
    pthread_mutex_lock(&watchdog.mu);
    watchdog.done = 1;
    pthread_cond_signal(&watchdog.cond);
    pthread_mutex_unlock(&watchdog.mu);
    pthread_join(watchdog.thread, NULL);
    watchdog.running = 0;
}

void casb_service_signals_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

int casb_service_stopping(void)
{
    return stop_requested != 0;
}

volatile int *casb_service_cancel_flag(void)
{
    return &cancel_requested;
}

void casb_service_sleep_ms(long ms)
{
    while (ms > 0 && !stop_requested) {
        long step = ms < STOP_CHECK_MS ? ms : STOP_CHECK_MS;

        casb_sleep_ms(step);
        ms -= step;
    }
}

void casb_service_wait(casb_producer *producer)
{
    while (!stop_requested) {
        if (producer)
            casb_producer_poll(producer);
        casb_sleep_ms(STOP_CHECK_MS * 2);
    }
}

int casb_service_migrate_count(const char *database_url, int *applied, char *err,
                               size_t errlen)
{
    casb_db *db = NULL;
    char applied_text[16];
    int rc = -1;

    *applied = 0;
    if (casb_db_open(&db, database_url, CASB_SERVICE_CONNECT_TIMEOUT_MS, err, errlen) != 0)
        goto out;
    if (casb_migrate(db, casb_migrations, casb_migrations_count, applied, err, errlen) != 0)
        goto out;
    snprintf(applied_text, sizeof(applied_text), "%d", *applied);
    casb_log_info("migrations checked", "applied", applied_text);
    rc = 0;
out:
    casb_db_close(db);
    return rc;
}

int casb_service_migrate(const char *database_url, char *err, size_t errlen)
{
    int applied;

    return casb_service_migrate_count(database_url, &applied, err, errlen);
}

struct casb_service_probe {
    pthread_mutex_t mu; /* guards db: /readyz runs on any server thread */
    casb_db *db;
    casb_producer *producer; /* borrowed */
};

int casb_service_probe_new(casb_service_probe **out, const char *database_url,
                           casb_producer *producer, char *err, size_t errlen)
{
    casb_service_probe *p;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (casb_db_open(&p->db, database_url, CASB_SERVICE_CONNECT_TIMEOUT_MS, err, errlen) != 0) {
        free(p);
        return CASB_ERROR;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->producer = producer;
    *out = p;
    return 0;
}

int casb_service_probe_ready(void *probe, char *reason, size_t reasonlen)
{
    casb_service_probe *p = probe;
    char err[256];
    int db_ok;

    /* casb_db_exec, not casb_db_ping: it reconnects a connection that broke (a PostgreSQL
     * restart), so the probe recovers together with the database. */
    pthread_mutex_lock(&p->mu);
    db_ok = casb_db_exec(p->db, "SELECT 1", 0, NULL, NULL, err, sizeof(err)) == 0;
    pthread_mutex_unlock(&p->mu);
    if (!db_ok) {
        casb_fail(reason, reasonlen, 0, "database unreachable");
        return 0;
    }
    if (!casb_kafka_reachable(p->producer, CASB_SERVICE_READY_TIMEOUT_MS)) {
        casb_fail(reason, reasonlen, 0, "kafka unreachable");
        return 0;
    }
    return 1;
}

void casb_service_probe_free(casb_service_probe *probe)
{
    if (!probe)
        return;
    casb_db_close(probe->db);
    pthread_mutex_destroy(&probe->mu);
    free(probe);
}

int casb_service_health_start(casb_http_server **out, const char *addr,
                              casb_service_probe *probe, char *err, size_t errlen)
{
    casb_http_server_opts opts;
    casb_http_server *s = NULL;

    *out = NULL;
    memset(&opts, 0, sizeof(opts));
    opts.addr = addr;
    opts.num_threads = HEALTH_SERVER_THREADS;
    opts.ready = casb_service_probe_ready;
    opts.app = probe;
    if (casb_http_server_new(&s, &opts, err, errlen) != 0)
        return CASB_ERROR;
    if (casb_http_server_start(s, err, errlen) != 0) {
        casb_http_server_free(s);
        return CASB_ERROR;
    }
    *out = s;
    return 0;
}

void casb_service_flush(casb_producer *producer, long grace_s)
{
    char err[256];

    if (!producer || grace_s <= 0)
        return;
    /* What the grace period has left after the work stopped, not a second grace period. */
    if (casb_producer_flush(producer, (int)casb_service_grace_left_ms(grace_s), err,
                            sizeof(err)) != 0)
        casb_log_warn("kafka flush at shutdown incomplete", "error", err);
}

casb_cfg_var casb_service_var_github_oauth_client_id(char **target)
{
    return standard_var(VAR_GITHUB_OAUTH_CLIENT_ID, target);
}

casb_cfg_var casb_service_var_github_oauth_client_secret(char **target)
{
    return standard_var(VAR_GITHUB_OAUTH_CLIENT_SECRET, target);
}

casb_cfg_var casb_service_var_github_web_url(char **target)
{
    return standard_var(VAR_GITHUB_WEB_URL, target);
}
