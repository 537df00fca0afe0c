#include "sw_settings.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "casb/service.h"

#define SW_PROG "casb-scanner-worker"
#define SW_SUMMARY                                                                          \
    "Consumes scan jobs from casb.scan.jobs, scans the SaaS tenant through its provider and " \
    "streams findings to casb.scan.results."

size_t sw_settings_table(sw_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[SW_SETTINGS_COUNT] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_kafka_brokers(&s->kafka_brokers),
        casb_service_var_http_addr(&s->http_addr, "127.0.0.1:8084"),
        casb_service_var_log_level(&s->log_level),
        casb_service_var_shutdown_grace_s(&s->shutdown_grace_s),
        casb_service_var_master_key(&s->master_key),
        casb_service_var_master_key_previous(&s->master_key_previous),
        casb_service_var_allowed_endpoints(&s->allowed_endpoints),
        {"CASB_WORKER_ID", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
         "Name of this worker in scan leases (default: <hostname>-<pid>).", &s->worker_id},
        {"CASB_RESULT_BATCH_SIZE", CASB_CFG_INT, "500", 0, 0, 1, 500,
         "Findings per result message (at most 500).", &s->result_batch_size},
        {"CASB_HTTP_TIMEOUT_MS", CASB_CFG_INT, "30000", 0, 0, 100, 600000,
         "Timeout of one provider API request, in milliseconds.", &s->http_timeout_ms},
        {"CASB_HTTP_MAX_RETRIES", CASB_CFG_INT, "5", 0, 0, 0, 20,
         "Retries of one provider API request after network errors and 5xx answers.",
         &s->http_max_retries},
        {"CASB_RATE_LIMIT_BUDGET_S", CASB_CFG_INT, "900", 0, 0, 1, 86400,
         "Longest total time one provider API request waits out rate limits (429, or 403 with "
         "x-ratelimit-remaining 0) before the scan fails, in seconds.",
         &s->rate_limit_budget_s},
        {"CASB_RETRY_MAX_WAIT_S", CASB_CFG_INT, "60", 0, 0, 1, 3600,
         "Longest wait before one retry (caps Retry-After), in seconds.", &s->retry_max_wait_s},
        {"CASB_LEASE_S", CASB_CFG_INT, "120", 0, 0, 30, 3600,
         "Length of a scan lease in seconds; renewed while the scan makes progress.", &s->lease_s},
        casb_service_var_github_oauth_client_id(&s->github_oauth_client_id),
        casb_service_var_github_oauth_client_secret(&s->github_oauth_client_secret),
        casb_service_var_github_web_url(&s->github_web_url),
        {"CASB_DNS_RESOLVER", CASB_CFG_ADDR, NULL, 0, 0, 0, 0,
         "IPv4 address and port (1.1.1.1:53) of the DNS resolver for the DNS checks (SPF, "
         "DMARC); unset: the system's resolver.",
         &s->dns_resolver},
    };
    size_t n = SW_SETTINGS_COUNT < cap ? SW_SETTINGS_COUNT : cap;

    memcpy(vars, table, n * sizeof(table[0]));
    return n;
}

/* "<hostname>-<pid>": unique among the workers of a host and readable in the scans table. */
static void default_worker_id(sw_settings *s)
{
    char host[128];

    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "worker");
    host[sizeof(host) - 1] = '\0';
    snprintf(s->worker_id_buf, sizeof(s->worker_id_buf), "%s-%ld", host, (long)getpid());
    s->worker_id = s->worker_id_buf;
}

void sw_settings_load_or_exit(sw_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[SW_SETTINGS_COUNT];
    size_t n = sw_settings_table(s, vars, SW_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, SW_PROG, SW_SUMMARY, vars, n);
    /* The loader leaves NULL for an unset (or empty) CASB_WORKER_ID. */
    if (!s->worker_id)
        default_worker_id(s);
}
