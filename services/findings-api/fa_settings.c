#include "fa_settings.h"

#include <string.h>

#include "casb/service.h"

#define FA_PROG "casb-findings-api"
#define FA_SUMMARY                                                                             \
    "Ingests scan results from casb.scan.results into findings and serves them over HTTP " \
    "(/v1/findings, /v1/finding-types, /v1/summary) and delivers webhooks."

size_t fa_settings_table(fa_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[FA_SETTINGS_COUNT] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_kafka_brokers(&s->kafka_brokers),
        casb_service_var_http_addr(&s->http_addr, "127.0.0.1:8082"),
        casb_service_var_log_level(&s->log_level),
        casb_service_var_shutdown_grace_s(&s->shutdown_grace_s),
        casb_service_var_admin_token(&s->admin_token),
        casb_service_var_db_pool_size(&s->db_pool_size),
        {"CASB_HTTP_THREADS", CASB_CFG_INT, "64", 0, 0, 1, 1024,
         "Threads serving the HTTP API. A keep-alive connection keeps its thread while it "
         "stays busy, so this is how many clients are served at once; more wait.",
         &s->http_threads},
        casb_service_var_api_rate_per_second(&s->api_rate_per_second),
        casb_service_var_api_rate_burst(&s->api_rate_burst),
        {"CASB_CATALOGUE_DIR", CASB_CFG_STRING, FA_DEFAULT_CATALOGUE_DIR, 0, 0, 0, 0,
         "Directory of the finding catalogues (<provider>.json), loaded at start.",
         &s->catalogue_dir},
        {"CASB_DASHBOARD_DIR", CASB_CFG_STRING, FA_DEFAULT_DASHBOARD_DIR, 0, 0, 0, 0,
         "Directory of the dashboard's static files (index.html, app.js, app.css), served at /.",
         &s->dashboard_dir},
        {"CASB_DASHBOARD_INTEGRATIONS_URL", CASB_CFG_STRING, "http://127.0.0.1:8081", 0, 0, 0,
         0,
         "integration-manager's base URL as browsers reach it; the dashboard calls it for "
         "integration actions (integration-manager must list this service's origin in its "
         "CASB_CORS_ORIGINS).",
         &s->dashboard_integrations_url},
        casb_service_var_master_key(&s->master_key),
        casb_service_var_master_key_previous(&s->master_key_previous),
        {"CASB_WEBHOOK_ALLOWED_NETWORKS", CASB_CFG_STRING, "", 0, 0, 0, 0,
         "Comma-separated networks (CIDR) that webhook destinations may resolve to besides "
         "public addresses, e.g. 10.20.0.0/16 for an internal SIEM; loopback, private, "
         "link-local and metadata addresses are refused otherwise.",
         &s->webhook_allowed_networks},
        {"CASB_WEBHOOK_SENDERS", CASB_CFG_INT, "4", 0, 0, 1, 64,
         "Threads delivering webhooks; each sends one request at a time.", &s->webhook_senders},
        {"CASB_WEBHOOK_TIMEOUT_MS", CASB_CFG_INT, "10000", 0, 0, 100, 120000,
         "Time one delivery attempt may take, connection included.", &s->webhook_timeout_ms},
        {"CASB_WEBHOOK_MAX_ATTEMPTS", CASB_CFG_INT, "12", 0, 0, 1, 100,
         "Attempts of one delivery before it is marked failed (it can be redelivered).",
         &s->webhook_max_attempts},
        {"CASB_WEBHOOK_RETRY_BASE_MS", CASB_CFG_INT, "10000", 0, 0, 10, 3600000,
         "Delay before the first retry of a delivery; each later retry doubles it (plus "
         "jitter), up to CASB_WEBHOOK_RETRY_MAX_S.",
         &s->webhook_retry_base_ms},
        {"CASB_WEBHOOK_RETRY_MAX_S", CASB_CFG_INT, "3600", 0, 0, 1, 86400,
         "Longest delay between two attempts of a delivery, Retry-After included.",
         &s->webhook_retry_max_s},
    };
    size_t n = FA_SETTINGS_COUNT < cap ? FA_SETTINGS_COUNT : cap;

    memcpy(vars, table, n * sizeof(table[0]));
    return n;
}

void fa_settings_load_or_exit(fa_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[FA_SETTINGS_COUNT];
    size_t n = fa_settings_table(s, vars, FA_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, FA_PROG, FA_SUMMARY, vars, n);
}
