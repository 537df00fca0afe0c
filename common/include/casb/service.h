#ifndef CASB_SERVICE_H
#define CASB_SERVICE_H

#include <stddef.h>

#include "casb/config.h"
#include "casb/http_server.h"
#include "casb/kafka.h"

/* The life of a service process, the same in every service: its standard configuration
 * variables, the schema check at start, the stop request (SIGTERM/SIGINT), the readiness
 * probe behind /readyz, and the flush of queued Kafka deliveries at shutdown.
 *
 * Every main follows the same order: load the settings (a bad value exits 2 with one line
 * on stderr), casb_log_init, casb_service_signals_install, casb_service_migrate, open the
 * connections, the producer and the probe, start HTTP and the consumers, run until
 * casb_service_stopping(), then stop HTTP and the consumers, casb_service_flush, close. */

/* Exit status for a rejected configuration, as casb_config_init_or_exit uses; also for
 * values rejected after parsing (a malformed key, an unreadable catalogue). */
#define CASB_SERVICE_EXIT_CONFIG 2
/* How long a service waits for PostgreSQL at start: it may come up after the service. */
#define CASB_SERVICE_CONNECT_TIMEOUT_MS 60000
/* How long /readyz waits for each dependency. */
#define CASB_SERVICE_READY_TIMEOUT_MS 2000

/* Standard configuration variables. Each returns the casb_config table entry of one variable
 * shared by several services, with its target pointing at the caller's member, so that every
 * service names, documents, defaults and validates it the same way. Unset optional strings
 * leave NULL in the target. */

/* CASB_DATABASE_URL: required, no default; secret because the URL may carry a password. */
casb_cfg_var casb_service_var_database_url(char **target);
/* CASB_KAFKA_BROKERS: required, no default. */
casb_cfg_var casb_service_var_kafka_brokers(char **target);
/* CASB_HTTP_ADDR: the service's API (if any) with /healthz, /readyz and /metrics;
 * default_addr is the service's own port (DESIGN), e.g. "127.0.0.1:8081". */
casb_cfg_var casb_service_var_http_addr(char **target, const char *default_addr);
/* CASB_LOG_LEVEL: debug|info|warn|error, default info. */
casb_cfg_var casb_service_var_log_level(int *target);
/* CASB_SHUTDOWN_GRACE_S: 0..3600, default 30; how long the whole shutdown may take from
 * SIGTERM: stopping the work, handing back or finishing what is held, the flush of queued
 * Kafka deliveries (0: do not wait for them). casb_service_watchdog_start enforces it. */
casb_cfg_var casb_service_var_shutdown_grace_s(long *target);
/* CASB_MASTER_KEY: required, secret. */
casb_cfg_var casb_service_var_master_key(char **target);
/* CASB_MASTER_KEY_PREVIOUS: optional, secret. */
casb_cfg_var casb_service_var_master_key_previous(char **target);
/* CASB_ADMIN_TOKEN: optional, secret; seeds the default account's first admin token. */
casb_cfg_var casb_service_var_admin_token(char **target);
/* CASB_API_RATE_PER_SECOND (default 50, 0: unlimited) and CASB_API_RATE_BURST (default 500):
 * the per-token request rate of an HTTP API (casb_http_server_opts). */
casb_cfg_var casb_service_var_api_rate_per_second(long *target);
casb_cfg_var casb_service_var_api_rate_burst(long *target);
/* CASB_ALLOWED_ENDPOINTS: optional comma-separated base URLs for the SSRF guard. */
casb_cfg_var casb_service_var_allowed_endpoints(char **target);
/* CASB_DB_POOL_SIZE: 1..256, default 8; connections shared by HTTP handlers. */
casb_cfg_var casb_service_var_db_pool_size(long *target);
/* The GitHub OAuth client registration (integration-manager exchanges codes, scanner-worker
 * renews tokens): CASB_GITHUB_OAUTH_CLIENT_ID (optional), CASB_GITHUB_OAUTH_CLIENT_SECRET
 * (optional, secret), CASB_GITHUB_WEB_URL (default https://github.com). */
casb_cfg_var casb_service_var_github_oauth_client_id(char **target);
casb_cfg_var casb_service_var_github_oauth_client_secret(char **target);
casb_cfg_var casb_service_var_github_web_url(char **target);

/* Stop request. SIGTERM and SIGINT set a process-wide stop flag (and the cancel flag);
 * SIGPIPE is ignored so that a peer closing a socket is an error return, not a death. */
void casb_service_signals_install(void);
/* 1 once SIGTERM or SIGINT was received. Safe from any thread. */
int casb_service_stopping(void);
/* A flag that SIGTERM and SIGINT set to 1, for code that watches a `volatile int *cancel`
 * (casb_http_client_opts, casb_scan_ctx). Its owner may reset it to 0 (a new scan) or set
 * it (a lost lease); the signals only ever set it. One per process. */
volatile int *casb_service_cancel_flag(void);
/* Sleeps up to ms, returning early once a stop is requested. */
void casb_service_sleep_ms(long ms);
/* Returns once a stop is requested, serving the producer's delivery reports meanwhile
 * (producer may be NULL). For mains whose work runs on other threads. */
void casb_service_wait(casb_producer *producer);

/* Brings the schema up to date over a connection of its own (retried up to
 * CASB_SERVICE_CONNECT_TIMEOUT_MS), and logs how many migrations ran. Any service may start
 * first: casb_migrate serialises replicas. Returns 0, or -1 with err set. */
int casb_service_migrate(const char *database_url, char *err, size_t errlen);
/* The same, also telling how many migrations this call applied (0 when the schema was up to
 * date), for `casb-integration-manager migrate`. */
int casb_service_migrate_count(const char *database_url, int *applied, char *err,
                               size_t errlen);

/* The readiness probe: ready when PostgreSQL answers `SELECT 1` on the probe's own connection
 * (reconnected when it broke) and the Kafka brokers answer a metadata request through the
 * producer. The probe is called from HTTP server threads; its connection is used under a
 * mutex. */
typedef struct casb_service_probe casb_service_probe;

/* Connects (retrying up to CASB_SERVICE_CONNECT_TIMEOUT_MS). producer is borrowed and must
 * outlive the probe. Returns 0, or -1 with err set. */
int casb_service_probe_new(casb_service_probe **out, const char *database_url,
                           casb_producer *producer, char *err, size_t errlen);
/* A casb_http_ready_fn with probe as its app: 1 when ready, else 0 and reason filled
 * ("database unreachable" or "kafka unreachable"). Services with checks of their own call it
 * first and add theirs. */
int casb_service_probe_ready(void *probe, char *reason, size_t reasonlen);
/* NULL-safe. */
void casb_service_probe_free(casb_service_probe *probe);

/* Starts an HTTP server on addr that answers only /healthz, /readyz (through probe) and
 * /metrics: the whole HTTP surface of the services without an API. Returns 0 and *out (free
 * with casb_http_server_free), or -1 with err set. */
int casb_service_health_start(casb_http_server **out, const char *addr,
                              casb_service_probe *probe, char *err, size_t errlen);

/* What is left of a grace period of grace_s since the first stop signal, in ms (0 when it is
 * over; all of it when no stop was requested, e.g. a fatal error). */
long casb_service_grace_left_ms(long grace_s);

/* The shutdown watchdog, started by main once the signals are installed: after a stop
 * request, a process still running grace_s plus a few seconds (to close connections) later
 * logs an error and exits 1 at once, so that no in-flight request, scan or broker wait can
 * hold a SIGTERM'd service up longer than its grace period. Whatever it held is uncommitted
 * and is redelivered. casb_service_watchdog_stop (at the end of main) ends the thread.
 * start: 0, or -1 (logged; the service runs without). */
int casb_service_watchdog_start(long grace_s);
void casb_service_watchdog_stop(void);

/* Waits for the producer's queued messages to be delivered for what is left of the grace
 * period (casb_service_grace_left_ms; a warning is logged when some are not). The step
 * between stopping the work and closing. NULL-safe. */
void casb_service_flush(casb_producer *producer, long grace_s);

#endif
