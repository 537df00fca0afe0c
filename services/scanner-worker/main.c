/* casb-scanner-worker: consumes casb.scan.jobs, scans SaaS tenants, produces
 * casb.scan.results. main only wires the modules together. */
#include <stdio.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/http_server.h"
#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/service.h"
#include "sw_loop.h"
#include "sw_settings.h"
#include "sw_worker.h"

#define PROG "casb-scanner-worker"

int main(int argc, char **argv)
{
    sw_settings st;
    casb_keyring *keys = NULL;
    casb_db *db = NULL;
    casb_producer *producer = NULL;
    casb_service_probe *probe = NULL;
    casb_http_server *http = NULL;
    char err[512];
    int exit_code = 1;

    sw_settings_load_or_exit(&st, argc, argv);
    casb_log_init("scanner-worker", st.log_level);
    if (casb_keyring_new(&keys, st.master_key, st.master_key_previous, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: CASB_MASTER_KEY: %s\n", PROG, err);
        return CASB_SERVICE_EXIT_CONFIG;
    }
    casb_service_signals_install();
    casb_service_watchdog_start(st.shutdown_grace_s);
    sw_worker_metrics_init();

    if (casb_service_migrate(st.database_url, err, sizeof(err)) != 0) {
        casb_log_error("cannot migrate the database", "error", err);
        goto out;
    }
    if (casb_db_open(&db, st.database_url, CASB_SERVICE_CONNECT_TIMEOUT_MS, err,
                     sizeof(err)) != 0) {
        casb_log_error("cannot connect to PostgreSQL", "error", err);
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
    if (casb_service_health_start(&http, st.http_addr, probe, err, sizeof(err)) != 0) {
        casb_log_error("cannot start the HTTP server", "addr", st.http_addr, "error", err);
        goto out;
    }
    casb_log_info("scanner-worker started", "addr", st.http_addr, "worker_id", st.worker_id);

    sw_worker w = {
        .settings = &st,
        .keys = keys,
        .db = db,
        .producer = producer,
        .cancel = casb_service_cancel_flag(),
    };
    exit_code = sw_loop_run(&w) == 0 ? 0 : 1;
    casb_log_info("shutting down");
out:
    casb_http_server_free(http);
    casb_service_flush(producer, st.shutdown_grace_s);
    casb_service_probe_free(probe);
    casb_producer_free(producer);
    casb_db_close(db);
    casb_keyring_free(keys);
    if (exit_code == 0)
        casb_log_info("stopped");
    casb_service_watchdog_stop();
    return exit_code;
}
