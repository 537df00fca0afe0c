#include "sched_settings.h"

#include <string.h>

size_t sched_settings_table(sched_settings *s, casb_cfg_var *vars, size_t cap)
{
    const casb_cfg_var table[SCHED_SETTINGS_COUNT] = {
        {"CASB_DATABASE_URL", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
         "PostgreSQL connection URL (postgresql://user:password@host:port/db).",
         &s->database_url},
        {"CASB_KAFKA_BROKERS", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
         "Comma-separated Kafka bootstrap servers (host:port).", &s->kafka_brokers},
        {"CASB_HTTP_ADDR", CASB_CFG_ADDR, "127.0.0.1:8083", 0, 0, 0, 0,
         "Address of /healthz, /readyz and /metrics (IPv4 host:port).", &s->http_addr},
        {"CASB_LOG_LEVEL", CASB_CFG_LOGLEVEL, "info", 0, 0, 0, 0,
         "Minimum log level: debug, info, warn or error.", &s->log_level},
        {"CASB_SCHEDULER_TICK_MS", CASB_CFG_INT, "1000", 0, 0, 100, 600000,
         "Milliseconds between two claims of due integrations.", &s->tick_ms},
        {"CASB_SCHEDULER_BATCH", CASB_CFG_INT, "500", 0, 0, 1, 10000,
         "Most integrations claimed, and most outbox jobs relayed, in one round.", &s->batch},
        {"CASB_SCHEDULER_JITTER_PCT", CASB_CFG_INT, "10", 0, 0, 0, 100,
         "Random extra delay added to each integration's interval, in percent of it, so that "
         "integrations created together drift apart.",
         &s->jitter_pct},
        {"CASB_RELAY_POLL_MS", CASB_CFG_INT, "250", 0, 0, 10, 60000,
         "Milliseconds between two polls of the scan job outbox when it is idle.",
         &s->relay_poll_ms},
        {"CASB_SHUTDOWN_GRACE_S", CASB_CFG_INT, "30", 0, 0, 1, 3600,
         "Seconds given to queued Kafka deliveries on SIGTERM.", &s->shutdown_grace_s},
    };
    size_t n = SCHED_SETTINGS_COUNT < cap ? SCHED_SETTINGS_COUNT : cap;

    memset(s, 0, sizeof(*s));
    memcpy(vars, table, n * sizeof(table[0]));
    return n;
}
