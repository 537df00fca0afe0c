/* casb-findings-api: ingests casb.scan.results into findings and serves the findings API.
 * main only wires the modules together. */
#include <stdio.h>
#include <sys/stat.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/http_server.h"
#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/netguard.h"
#include "casb/service.h"
#include "fa_catalogue.h"
#include "fa_dashboard.h"
#include "fa_ingest.h"
#include "fa_routes.h"
#include "fa_settings.h"
#include "fa_webhook_routes.h"
#include "fa_webhook_sender.h"

#define PROG "casb-findings-api"
/* Rendered summaries kept (fa_summary.h): a dashboard's account of 1,000 integrations is
 * about 230 KB, so the byte bound is the one a large installation meets first. */
#define SUMMARY_CACHE_ACCOUNTS 256
#define SUMMARY_CACHE_BYTES (32u << 20)

/* The dashboard's directory, or NULL (with a warning) when it is missing: the API works
 * without its web page, e.g. from an install that left the files out. */
static const char *dashboard_dir(const char *dir)
{
    struct stat st;

    if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return dir;
    casb_log_warn("no dashboard: CASB_DASHBOARD_DIR is not a directory", "dir", dir ? dir : "");
    return NULL;
}

/* /readyz: the shared probe (PostgreSQL, Kafka), then the ingest thread, which stops for good
 * on a fatal consumer error. */
static int ready(void *app, char *reason, size_t reasonlen)
{
    fa_app *a = app;

    if (!casb_service_probe_ready(a->probe, reason, reasonlen))
        return 0;
    if (!fa_ingest_alive(a->ingest)) {
        snprintf(reason, reasonlen, "result ingest stopped");
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    fa_settings st;
    fa_catalogue *cat = NULL;
    casb_auth *auth = NULL;
    casb_keyring *keys = NULL;
    casb_netguard *guard = NULL;
    fa_webhook_sender *sender = NULL;
    casb_db_pool *pool = NULL;
    casb_producer *producer = NULL;
    casb_service_probe *probe = NULL;
    fa_ingest *ingest = NULL;
    fa_summary_cache *summaries = NULL;
    casb_http_server *http = NULL;
    fa_app app = {0};
    char err[512];
    char count[16];
    int exit_code = 1;

    fa_settings_load_or_exit(&st, argc, argv);
    casb_log_init("findings-api", st.log_level);
    if (fa_catalogue_load_dir(&cat, st.catalogue_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: CASB_CATALOGUE_DIR: %s\n", PROG, err);
        return CASB_SERVICE_EXIT_CONFIG;
    }
    if (casb_auth_new(&auth, st.admin_token, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: CASB_ADMIN_TOKEN: %s\n", PROG, err);
        goto config_error;
    }
    if (casb_keyring_new(&keys, st.master_key, st.master_key_previous, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: CASB_MASTER_KEY: %s\n", PROG, err);
        goto config_error;
    }
    if (casb_netguard_new(&guard, st.webhook_allowed_networks, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: CASB_WEBHOOK_ALLOWED_NETWORKS: %s\n", PROG, err);
        goto config_error;
    }
    casb_service_signals_install();
    casb_service_watchdog_start(st.shutdown_grace_s);
    fa_ingest_metrics_init();
    fa_webhook_metrics_init();

    if (casb_service_migrate(st.database_url, err, sizeof(err)) != 0) {
        casb_log_error("cannot migrate the database", "error", err);
        goto out;
    }
    if (casb_db_pool_new(&pool, st.database_url, (int)st.db_pool_size,
                         CASB_SERVICE_CONNECT_TIMEOUT_MS, err, sizeof(err)) != 0) {
        casb_log_error("cannot connect to PostgreSQL", "error", err);
        goto out;
    }
    if (casb_auth_connect(auth, pool, err, sizeof(err)) != 0 ||
        casb_auth_cache_tokens(auth, st.database_url, err, sizeof(err)) != 0) {
        casb_log_error("cannot read the API tokens", "error", err);
        goto out;
    }
    if (casb_producer_new(&producer, st.kafka_brokers, PROG, err, sizeof(err)) != 0) {
        casb_log_error("cannot create the Kafka producer", "error", err);
        goto out;
    }
    if (casb_service_probe_new(&probe, st.database_url, producer, err, sizeof(err)) != 0) {
        casb_log_error("cannot connect to PostgreSQL", "error", err);
        goto out;
    }

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

    const fa_webhook_env webhooks = {
        .keys = keys,
        .guard = guard,
        .catalogue = cat,
        .timeout_ms = st.webhook_timeout_ms,
    };
    fa_webhook_sender_opts so = {
        .database_url = st.database_url,
        .env = webhooks,
        .threads = (int)st.webhook_senders,
        .max_attempts = st.webhook_max_attempts,
        .retry_base_ms = st.webhook_retry_base_ms,
        .retry_max_s = st.webhook_retry_max_s,
    };
    if (fa_webhook_sender_start(&sender, &so, err, sizeof(err)) != 0) {
        casb_log_error("cannot start the webhook senders", "error", err);
        goto out;
    }

    summaries = fa_summary_cache_new(SUMMARY_CACHE_ACCOUNTS, SUMMARY_CACHE_BYTES);
    if (!summaries) {
        casb_log_error("cannot create the summary cache", "error", "out of memory");
        goto out;
    }
    app.summaries = summaries;
    app.pool = pool;
    app.webhooks = &webhooks;
    app.catalogue = cat;
    app.producer = producer;
    app.ingest = ingest;
    app.probe = probe;
    casb_http_server_opts ho = {
        .addr = st.http_addr,
        .auth = auth,
        .ready = ready,
        .app = &app,
        .static_dir = dashboard_dir(st.dashboard_dir),
        .rate_per_second = (double)st.api_rate_per_second,
        .rate_burst = (int)st.api_rate_burst,
        .num_threads = (int)st.http_threads,
        /* Every handler acquires through fa_acquire, which takes it first. */
        .share_auth_db = 1,
    };
    if (casb_http_server_new(&http, &ho, err, sizeof(err)) != 0 ||
        fa_routes_register(http) != 0 || fa_webhook_routes_register(http) != 0 ||
        fa_dashboard_register(http, st.dashboard_integrations_url) != 0 ||
        casb_http_server_start(http, err, sizeof(err)) != 0) {
        casb_log_error("cannot start the HTTP server", "addr", st.http_addr, "error", err);
        goto out;
    }

    snprintf(count, sizeof(count), "%zu", fa_catalogue_count(cat));
    casb_log_info("findings-api started", "addr", st.http_addr, "finding_types", count);

    casb_service_wait(producer);

    casb_log_info("shutting down");
    exit_code = 0;
out:
    /* The server first: its handlers use the ingest (readyz). The ingest's message in
     * progress is then either committed or redelivered later. */
    casb_http_server_free(http);
    fa_summary_cache_free(summaries);
    fa_webhook_sender_stop(sender);
    fa_ingest_stop(ingest);
    casb_service_flush(producer, st.shutdown_grace_s);
    casb_service_probe_free(probe);
    casb_producer_free(producer);
    casb_db_pool_free(pool);
    casb_netguard_free(guard);
    casb_keyring_free(keys);
    casb_auth_free(auth);
    fa_catalogue_free(cat);
    if (exit_code == 0)
        casb_log_info("stopped");
    casb_service_watchdog_stop();
    return exit_code;

config_error:
    casb_netguard_free(guard);
    casb_keyring_free(keys);
    casb_auth_free(auth);
    fa_catalogue_free(cat);
    return CASB_SERVICE_EXIT_CONFIG;
}
