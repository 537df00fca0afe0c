#ifndef SCHED_SETTINGS_H
#define SCHED_SETTINGS_H

#include <stddef.h>

#include "casb/config.h"

/* The scheduler's configuration, one member per environment variable. */
typedef struct {
    char *database_url;
    char *kafka_brokers;
    char *http_addr;      /* health and metrics only */
    int log_level;
    long tick_ms;         /* how often due integrations are claimed */
    long batch;           /* integrations claimed, and outbox rows relayed, per round */
    long jitter_pct;      /* next scan = interval * (1 + random in [0, jitter_pct %]) */
    long relay_poll_ms;   /* how often the outbox is polled when idle */
    long shutdown_grace_s;
} sched_settings;

#define SCHED_SETTINGS_COUNT 9

/* Fills vars (room for SCHED_SETTINGS_COUNT entries) with the variable table, each target
 * pointing into s. Returns the number of entries written. */
size_t sched_settings_table(sched_settings *s, casb_cfg_var *vars, size_t cap);

/* Loads every variable into s: handles --help (exit 0); a bad value exits 2 with one line. */
void sched_settings_load_or_exit(sched_settings *s, int argc, char **argv);

#endif
