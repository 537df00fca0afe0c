/* casb-findings-api: ingests casb.scan.results into findings and serves the findings API.
 * main only wires the modules together. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "casb/auth.h"
#include "casb/db.h"
#include "casb/http_server.h"
#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/migrate.h"
#include "casb/timeutil.h"
#include "fa_catalogue.h"
#include "fa_ingest.h"
#include "fa_routes.h"
#include "fa_settings.h"

#define FA_DB_CONNECT_TIMEOUT_MS 60000

static volatile sig_atomic_t g_stop;

/* Brings the schema up to date; replicas starting together apply each migration once. */
static int migrate(const char *url, char *err, size_t errlen)
{
    casb_db *db = NULL;
    int applied = 0;
    char applied_s[16];
    int rc = -1;

    if (casb_db_open(&db, url, FA_DB_CONNECT_TIMEOUT_MS, err, errlen) != 0)
        goto out;
    if (casb_migrate(db, casb_migrations, casb_migrations_count, &applied, err, errlen) != 0)
        goto out;
    snprintf(applied_s, sizeof(applied_s), "%d", applied);
    casb_log_info("migrations checked", "applied", applied_s);
    rc = 0;
out:
    casb_db_close(db);
    return rc;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
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

int main(int argc, char **argv)
{
    fa_settings st;
    fa_catalogue *cat = NULL;
    casb_auth *auth = NULL;
    casb_db_pool *pool = NULL;
    casb_producer *producer = NULL;
    casb_http_server *http = NULL;
    fa_ingest *ingest = NULL;
    fa_app app = {0};
    char err[512];
    char count[16];
    int exit_code = 1;

    fa_settings_load_or_exit(&st, argc, argv);
    casb_log_init("findings-api", st.log_level);
    if (fa_catalogue_load_dir(&cat, st.catalogue_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "casb-findings-api: CASB_CATALOGUE_DIR: %s\n", err);
        return 2;
    }
    if (casb_auth_new(&auth, st.admin_token, err, sizeof(err)) != 0) {
        fprintf(stderr, "casb-findings-api: CASB_ADMIN_TOKEN: %s\n", err);
        fa_catalogue_free(cat);
        return 2;
    }
    install_signals();
    fa_ingest_metrics_init();

    if (migrate(st.database_url, err, sizeof(err)) != 0) {
        casb_log_error("cannot migrate the database", "error", err);
        goto out;
    }
    if (casb_db_pool_new(&pool, st.database_url, (int)st.db_pool_size, FA_DB_CONNECT_TIMEOUT_MS,
                         err, sizeof(err)) != 0) {
        casb_log_error("cannot connect to PostgreSQL", "error", err);
        goto out;
    }
    if (casb_producer_new(&producer, st.kafka_brokers, "casb-findings-api", err,
                          sizeof(err)) != 0) {
        casb_log_error("cannot create the Kafka producer", "error", err);
        goto out;
    }
    app.pool = pool;
    app.catalogue = cat;
    app.producer = producer;

    fa_ingest_opts io = {
        .database_url = st.database_url,
        .kafka_brokers = st.kafka_brokers,
        .catalogue = cat,
        .producer = producer,
    };
    if (fa_ingest_start(&ingest, &io, err, sizeof(err)) != 0) {
        casb_log_error("cannot start result ingest", "error", err);
        goto out;
    }
    app.ingest = ingest;

    casb_http_server_opts ho = {
        .addr = st.http_addr,
        .auth = auth,
        .ready = fa_ready,
        .app = &app,
    };
    if (casb_http_server_new(&http, &ho, err, sizeof(err)) != 0 ||
        fa_routes_register(http) != 0 || casb_http_server_start(http, err, sizeof(err)) != 0) {
        casb_log_error("cannot start the HTTP server", "error", err, "addr", st.http_addr);
        goto out;
    }

    snprintf(count, sizeof(count), "%zu", fa_catalogue_count(cat));
    casb_log_info("findings-api started", "http_addr", st.http_addr, "finding_types", count);

    while (!g_stop)
        casb_sleep_ms(200);
    casb_log_info("findings-api stopping");
    exit_code = 0;
out:
    /* The server first: its handlers use the ingest (readyz). The ingest's message in
     * progress is then either committed or redelivered later. */
    casb_http_server_free(http);
    fa_ingest_stop(ingest);
    casb_producer_free(producer);
    if (pool)
        casb_db_pool_free(pool);
    casb_auth_free(auth);
    fa_catalogue_free(cat);
    return exit_code;
}
