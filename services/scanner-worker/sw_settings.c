#include "sw_settings.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "casb/config.h"
#include "casb/log.h"

#define SW_SUMMARY                                                                          \
    "Consumes scan jobs from casb.scan.jobs, scans the SaaS tenant through its provider and " \
    "streams findings to casb.scan.results."

void sw_settings_load_or_exit(sw_settings *s, int argc, char **argv)
{
    memset(s, 0, sizeof(*s));
    s->log_level = CASB_LOG_INFO;
    char *worker_id = NULL;
    const casb_cfg_var vars[] = {
        {"CASB_DATABASE_URL", CASB_CFG_STRING, "postgresql://casb:casb@127.0.0.1:55432/casb", 1, 1,
         0, 0, "PostgreSQL connection URL (scan leases, integrations).", &s->database_url},
        {"CASB_KAFKA_BROKERS", CASB_CFG_STRING, "127.0.0.1:19092", 1, 0, 0, 0,
         "Kafka bootstrap brokers, comma-separated host:port.", &s->kafka_brokers},
        {"CASB_HTTP_ADDR", CASB_CFG_ADDR, "127.0.0.1:8084", 1, 0, 0, 0,
         "Address of the /healthz, /readyz and /metrics endpoints.", &s->http_addr},
        {"CASB_MASTER_KEY", CASB_CFG_STRING, NULL, 1, 1, 0, 0,
         "32-byte key (64 hex chars or base64) that opens the integrations' sealed credentials.",
         &s->master_key},
        {"CASB_MASTER_KEY_PREVIOUS", CASB_CFG_STRING, NULL, 0, 1, 0, 0,
         "The previous master key during a rotation (optional).", &s->master_key_previous},
        {"CASB_ALLOWED_ENDPOINTS", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
         "Comma-separated base URLs providers may call besides their public endpoints.",
         &s->allowed_endpoints},
        {"CASB_WORKER_ID", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
         "Name of this worker in scan leases (default: <hostname>-<pid>).", &worker_id},
        {"CASB_RESULT_BATCH_SIZE", CASB_CFG_INT, "500", 0, 0, 1, 500,
         "Findings per result message (at most 500).", &s->result_batch_size},
        {"CASB_HTTP_TIMEOUT_MS", CASB_CFG_INT, "30000", 0, 0, 100, 600000,
         "Timeout of one provider API request, in milliseconds.", &s->http_timeout_ms},
        {"CASB_HTTP_MAX_RETRIES", CASB_CFG_INT, "5", 0, 0, 0, 20,
         "Retries of one provider API request (network errors, 5xx, rate limits).",
         &s->http_max_retries},
        {"CASB_RETRY_MAX_WAIT_S", CASB_CFG_INT, "60", 0, 0, 1, 3600,
         "Longest wait before one retry (caps Retry-After), in seconds.", &s->retry_max_wait_s},
        {"CASB_LEASE_S", CASB_CFG_INT, "120", 0, 0, 30, 3600,
         "Length of a scan lease in seconds; renewed while the scan makes progress.", &s->lease_s},
        {"CASB_LOG_LEVEL", CASB_CFG_LOGLEVEL, "info", 0, 0, 0, 0,
         "Minimum log level: debug, info, warn or error.", &s->log_level},
        {"CASB_SHUTDOWN_GRACE_S", CASB_CFG_INT, "30", 0, 0, 0, 3600,
         "Seconds allowed for flushing results and leaving the group on SIGTERM.",
         &s->shutdown_grace_s},
    };

    casb_config_init_or_exit(argc, argv, "casb-scanner-worker", SW_SUMMARY, vars,
                             sizeof(vars) / sizeof(vars[0]));
    /* Unset optional strings are NULL; the rest of the worker reads "" as "none". */
    if (!s->master_key_previous)
        s->master_key_previous = "";
    if (!s->allowed_endpoints)
        s->allowed_endpoints = "";

    if (worker_id && worker_id[0]) {
        s->worker_id = worker_id;
        return;
    }
    char host[128];
    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "worker");
    host[sizeof(host) - 1] = '\0';
    snprintf(s->worker_id_buf, sizeof(s->worker_id_buf), "%s-%ld", host, (long)getpid());
    s->worker_id = s->worker_id_buf;
}
