/* casb-scanner-worker: consumes casb.scan.jobs, scans SaaS tenants, produces
 * casb.scan.results. main only wires the modules together. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/http_server.h"
#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/migrate.h"
#include "casb/timeutil.h"
#include "sw_settings.h"
#include "sw_worker.h"

#define SW_GROUP_ID "casb-scanner-worker"
/* One job is processed for as long as its scan runs, without polling in between. Scans of
 * large tenants take many minutes, so the group must not evict a worker that is busy: 30
 * minutes for now. Longer scans are handled by a later change (pausing the partitions and
 * polling while scanning); meanwhile the scan lease keeps a second worker off the scan. */
#define SW_MAX_POLL_INTERVAL_MS (30 * 60 * 1000)
#define SW_DB_CONNECT_TIMEOUT_MS 60000

static volatile int g_stop;
static volatile int g_scan_cancel;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    g_scan_cancel = 1;
}

/* /readyz runs on server threads: it has its own connection, guarded by a mutex. */
typedef struct {
    casb_db *db;
    pthread_mutex_t mu;
    casb_producer *producer;
} probe;

static int ready(void *app, char *reason, size_t reasonlen)
{
    probe *p = app;
    int db_ok;

    pthread_mutex_lock(&p->mu);
    db_ok = casb_db_ping(p->db);
    pthread_mutex_unlock(&p->mu);
    if (!db_ok) {
        snprintf(reason, reasonlen, "database unreachable");
        return 0;
    }
    if (!casb_kafka_reachable(p->producer, 2000)) {
        snprintf(reason, reasonlen, "kafka unreachable");
        return 0;
    }
    return 1;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static casb_consumer *join_group(const sw_settings *st)
{
    static const char *const topics[] = {CASB_TOPIC_SCAN_JOBS, NULL};
    casb_consumer *c = NULL;
    char err[256];

    while (!g_stop) {
        if (casb_consumer_new(&c, st->kafka_brokers, SW_GROUP_ID, topics,
                              SW_MAX_POLL_INTERVAL_MS, err, sizeof(err)) == 0)
            return c;
        casb_log_error("cannot create the job consumer; retrying", "error", err);
        for (int i = 0; i < 50 && !g_stop; i++)
            casb_sleep_ms(100);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    sw_settings st;
    casb_keyring *keys = NULL;
    casb_db *db = NULL;
    probe pr = {.db = NULL};
    casb_producer *producer = NULL;
    casb_consumer *consumer = NULL;
    casb_http_server *http = NULL;
    char err[512];
    int exit_code = 1;

    sw_settings_load_or_exit(&st, argc, argv);
    casb_log_init("scanner-worker", st.log_level);
    if (casb_keyring_new(&keys, st.master_key,
                         st.master_key_previous[0] ? st.master_key_previous : NULL, err,
                         sizeof(err)) != 0) {
        fprintf(stderr, "casb-scanner-worker: CASB_MASTER_KEY: %s\n", err);
        return 2;
    }
    install_signals();
    pthread_mutex_init(&pr.mu, NULL);
    sw_worker_metrics_init();

    if (casb_db_open(&db, st.database_url, SW_DB_CONNECT_TIMEOUT_MS, err, sizeof(err)) != 0 ||
        casb_db_open(&pr.db, st.database_url, SW_DB_CONNECT_TIMEOUT_MS, err, sizeof(err)) != 0) {
        casb_log_error("cannot connect to PostgreSQL", "error", err);
        goto out;
    }
    /* Any service may start first: each brings the schema up to date (under a lock). */
    if (casb_migrate(db, casb_migrations, casb_migrations_count, NULL, err, sizeof(err)) != 0) {
        casb_log_error("cannot migrate the database", "error", err);
        goto out;
    }
    if (casb_producer_new(&producer, st.kafka_brokers, "casb-scanner-worker", err,
                          sizeof(err)) != 0) {
        casb_log_error("cannot create the Kafka producer", "error", err);
        goto out;
    }
    pr.producer = producer;

    casb_http_server_opts ho = {.addr = st.http_addr, .ready = ready, .app = &pr};
    if (casb_http_server_new(&http, &ho, err, sizeof(err)) != 0 ||
        casb_http_server_start(http, err, sizeof(err)) != 0) {
        casb_log_error("cannot start the HTTP server", "error", err, "addr", st.http_addr);
        goto out;
    }

    consumer = join_group(&st);
    casb_log_info("scanner-worker started", "worker_id", st.worker_id, "http_addr", st.http_addr);

    sw_worker w = {
        .settings = &st,
        .keys = keys,
        .db = db,
        .producer = producer,
        .stop = &g_stop,
        .cancel = &g_scan_cancel,
    };
    exit_code = 0;
    while (!g_stop && consumer) {
        casb_message *msg = NULL;
        int rc = casb_consumer_poll(consumer, &msg, 500);

        if (rc < 0) {
            casb_log_error("fatal consumer error; exiting");
            exit_code = 1;
            break;
        }
        if (rc == 0) {
            casb_producer_poll(producer);
            continue;
        }
        sw_job_outcome outcome = sw_worker_handle(&w, msg);
        if (outcome == SW_JOB_COMMIT) {
            casb_consumer_commit(consumer, msg);
        } else if (outcome == SW_JOB_REDELIVER) {
            /* Leaving and rejoining the group rewinds to the last committed offset, so the
             * job comes back; moving on to the next message would commit past it. */
            casb_message_free(msg);
            msg = NULL;
            casb_consumer_close(consumer);
            consumer = NULL;
            for (int i = 0; i < 50 && !g_stop; i++)
                casb_sleep_ms(100);
            consumer = join_group(&st);
        }
        casb_message_free(msg);
    }

    casb_log_info("scanner-worker stopping");
out:
    if (producer && casb_producer_flush(producer, (int)st.shutdown_grace_s * 1000, err,
                                        sizeof(err)) != 0)
        casb_log_warn("producer flush on shutdown incomplete", "error", err);
    casb_consumer_close(consumer);
    casb_http_server_free(http);
    casb_producer_free(producer);
    if (pr.db)
        casb_db_close(pr.db);
    if (db)
        casb_db_close(db);
    pthread_mutex_destroy(&pr.mu);
    if (keys)
        casb_keyring_free(keys);
    return exit_code;
}
