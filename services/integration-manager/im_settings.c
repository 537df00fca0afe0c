#include "im_settings.h"

#include <string.h>

size_t im_settings_table(im_settings *s, casb_cfg_var *vars, size_t cap)
{
    const casb_cfg_var table[IM_SETTINGS_COUNT] = {
        {"CASB_DATABASE_URL", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
         "PostgreSQL connection URL (postgresql://user:password@host:port/db).",
         &s->database_url},
        {"CASB_KAFKA_BROKERS", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
         "Comma-separated Kafka bootstrap servers (host:port).", &s->kafka_brokers},
        {"CASB_HTTP_ADDR", CASB_CFG_ADDR, "127.0.0.1:8081", 0, 0, 0, 0,
         "Address the HTTP API listens on (IPv4 host:port).", &s->http_addr},
        {"CASB_MASTER_KEY", CASB_CFG_STRING, NULL, 1, 1, 0, 0,
         "32-byte key sealing credentials at rest, as 64 hex characters or base64.",
         &s->master_key},
        {"CASB_MASTER_KEY_PREVIOUS", CASB_CFG_STRING, NULL, 0, 1, 0, 0,
         "The master key before the last rotation; credentials sealed with it stay readable.",
         &s->master_key_previous},
        {"CASB_ADMIN_TOKEN", CASB_CFG_STRING, NULL, 1, 1, 0, 0,
         "Bootstrap bearer token of the default account's administrator.", &s->admin_token},
        {"CASB_ALLOWED_ENDPOINTS", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
         "Comma-separated base URLs providers may use besides their public endpoints "
         "(e.g. http://127.0.0.1:8090).",
         &s->allowed_endpoints},
        {"CASB_LOG_LEVEL", CASB_CFG_LOGLEVEL, "info", 0, 0, 0, 0,
         "Minimum log level: debug, info, warn or error.", &s->log_level},
        {"CASB_DB_POOL_SIZE", CASB_CFG_INT, "8", 0, 0, 1, 64,
         "PostgreSQL connections kept for HTTP handlers.", &s->db_pool_size},
        {"CASB_HTTP_TIMEOUT_MS", CASB_CFG_INT, "10000", 0, 0, 100, 120000,
         "Timeout of one request to a provider when checking a new integration's connection.",
         &s->http_timeout_ms},
        {"CASB_SHUTDOWN_GRACE_S", CASB_CFG_INT, "30", 0, 0, 1, 3600,
         "Seconds given to in-flight work (requests, Kafka deliveries) on SIGTERM.",
         &s->shutdown_grace_s},
    };
    size_t n = IM_SETTINGS_COUNT < cap ? IM_SETTINGS_COUNT : cap;

    memset(s, 0, sizeof(*s));
    memcpy(vars, table, n * sizeof(table[0]));
    return n;
}
