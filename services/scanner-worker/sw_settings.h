#ifndef SW_SETTINGS_H
#define SW_SETTINGS_H

#include <stddef.h>

#include "casb/config.h"

/* The scanner-worker's configuration, one member per environment variable. Strings point into
 * the environment, the table's defaults or worker_id_buf, and are never freed. */
typedef struct {
    char *database_url;
    char *kafka_brokers;
    char *http_addr;            /* health and metrics only */
    int log_level;
    long shutdown_grace_s;
    char *master_key;           /* secret: never printed */
    char *master_key_previous;  /* secret; NULL when unset */
    char *allowed_endpoints;    /* NULL when unset: only providers' own endpoints */
    char *worker_id;            /* CASB_WORKER_ID, or "<hostname>-<pid>" */
    long result_batch_size;     /* findings per casb.scan.result message, 1..500 */
    long http_timeout_ms;
    long http_max_retries;
    long retry_max_wait_s;
    long rate_limit_budget_s;
    long lease_s;               /* scan lease length; renewed while the scan runs */
    char *github_oauth_client_id;     /* renews GitHub OAuth tokens; NULL when unset */
    char *github_oauth_client_secret; /* secret */
    char *github_web_url;
    char *dns_resolver;         /* "ip:port" for the DNS checks; NULL: the system resolver */
    char worker_id_buf[160];    /* storage for the default worker id */
} sw_settings;

#define SW_SETTINGS_COUNT 19

/* Fills vars (room for SW_SETTINGS_COUNT entries) with the service's variable table, each
 * entry's target pointing into s. Returns the number of entries written. */
size_t sw_settings_table(sw_settings *s, casb_cfg_var *vars, size_t cap);

/* Loads every variable into s and gives the worker its default id when CASB_WORKER_ID is
 * unset: handles --help (exit 0); a bad value exits 2 with one line. */
void sw_settings_load_or_exit(sw_settings *s, int argc, char **argv);

#endif
