#ifndef SW_SETTINGS_H
#define SW_SETTINGS_H

/* The scanner-worker's configuration, read once from the environment at start. */
typedef struct {
    char *database_url;
    char *kafka_brokers;
    char *http_addr;            /* health and metrics only */
    char *master_key;           /* secret: never printed */
    char *master_key_previous;  /* secret, optional ("" when unset) */
    char *allowed_endpoints;    /* CASB_ALLOWED_ENDPOINTS, "" when unset */
    char *worker_id;            /* CASB_WORKER_ID, or "<hostname>-<pid>" */
    long result_batch_size;     /* findings per casb.scan.result message, 1..500 */
    long http_timeout_ms;
    long http_max_retries;
    long retry_max_wait_s;
    long lease_s;               /* scan lease length; renewed while the scan runs */
    int log_level;
    long shutdown_grace_s;
    char worker_id_buf[160];    /* storage for the default worker id */
} sw_settings;

/* Loads every variable (handles --help, exits 2 on a bad value). */
void sw_settings_load_or_exit(sw_settings *s, int argc, char **argv);

#endif
