#include "sched_settings.h"

#include <string.h>

#include "casb/service.h"

#define SCHED_PROG "casb-scheduler"
#define SCHED_SUMMARY                                                                        \
    "Dispatches due scans: claims integrations whose next scan is due and relays the scan " \
    "job outbox to Kafka."

size_t sched_settings_table(sched_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[SCHED_SETTINGS_COUNT] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_kafka_brokers(&s->kafka_brokers),
        casb_service_var_http_addr(&s->http_addr, "127.0.0.1:8083"),
        casb_service_var_log_level(&s->log_level),
        casb_service_var_shutdown_grace_s(&s->shutdown_grace_s),
        {"CASB_SCHEDULER_TICK_MS", CASB_CFG_INT, "1000", 0, 0, 100, 600000,
         "Milliseconds between two claims of due integrations (a full batch is followed by "
         "the next claim at once).",
         &s->tick_ms},
        {"CASB_SCHEDULER_BATCH", CASB_CFG_INT, "500", 0, 0, 1, 10000,
         "Most integrations claimed, and most outbox jobs relayed, in one round.", &s->batch},
        {"CASB_SCHEDULER_JITTER_PCT", CASB_CFG_INT, "10", 0, 0, 0, 100,
         "Random extra delay added to each integration's interval, in percent of it, so that "
         "integrations created together drift apart.",
         &s->jitter_pct},
        {"CASB_RELAY_POLL_MS", CASB_CFG_INT, "250", 0, 0, 10, 60000,
         "Milliseconds between two polls of the scan job outbox when it is idle.",
         &s->relay_poll_ms},
    };
    size_t n = SCHED_SETTINGS_COUNT < cap ? SCHED_SETTINGS_COUNT : cap;

    memcpy(vars, table, n * sizeof(table[0]));
    return n;
}

void sched_settings_load_or_exit(sched_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[SCHED_SETTINGS_COUNT];
    size_t n = sched_settings_table(s, vars, SCHED_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, SCHED_PROG, SCHED_SUMMARY, vars, n);
}
