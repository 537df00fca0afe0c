#ifndef FA_SETTINGS_H
#define FA_SETTINGS_H

#include <stddef.h>

#include "casb/config.h"

/* The findings-api's configuration, one member per environment variable. Strings point into
 * the environment or into the table's defaults and are never freed. */
typedef struct {
    char *database_url;
    char *kafka_brokers;
    char *http_addr;
    int log_level;
    long shutdown_grace_s;
    char *admin_token;   /* secret: never printed */
    long db_pool_size;
    long http_threads;   /* HTTP worker threads: connections served at once */
    long api_rate_per_second; /* 0: unlimited */
    long api_rate_burst;
    char *catalogue_dir; /* directory of <provider>.json finding catalogues */
    char *dashboard_dir; /* static files of the dashboard, served at / */
    char *dashboard_integrations_url; /* integration-manager's base URL as the browser sees it */
    char *master_key;          /* secret: seals webhook secrets */
    char *master_key_previous; /* secret, optional: during a key rotation */
    char *webhook_allowed_networks; /* CIDRs webhooks may reach besides public addresses */
    long webhook_senders;      /* delivery threads */
    long webhook_timeout_ms;   /* one delivery attempt */
    long webhook_max_attempts; /* before a delivery is failed */
    long webhook_retry_base_ms;/* first retry's delay, doubled each time */
    long webhook_retry_max_s;  /* cap of one retry delay */
} fa_settings;

/* The catalogue directory when CASB_CATALOGUE_DIR is unset: the source tree's
 * proto/findings (CASB_SOURCE_DIR is set at compile time). */
#define FA_DEFAULT_CATALOGUE_DIR CASB_SOURCE_DIR "/proto/findings"

/* The dashboard's files when CASB_DASHBOARD_DIR is unset: the source tree's web/dashboard. */
#define FA_DEFAULT_DASHBOARD_DIR CASB_SOURCE_DIR "/web/dashboard"

#define FA_SETTINGS_COUNT 21

/* Fills vars (room for FA_SETTINGS_COUNT entries) with the service's variable table, each
 * entry's target pointing into s. Returns the number of entries written. */
size_t fa_settings_table(fa_settings *s, casb_cfg_var *vars, size_t cap);

/* Loads every variable into s: handles --help (exit 0); a bad value exits 2 with one line. */
void fa_settings_load_or_exit(fa_settings *s, int argc, char **argv);

#endif
