#include "fa_settings.h"

#include <string.h>

#include "casb/config.h"
#include "casb/log.h"

#define FA_SUMMARY                                                                             \
    "Ingests scan results from casb.scan.results into findings and serves them over HTTP " \
    "(/v1/findings, /v1/finding-types, /v1/summary)."

void fa_settings_load_or_exit(fa_settings *s, int argc, char **argv)
{
    memset(s, 0, sizeof(*s));
    s->log_level = CASB_LOG_INFO;
    const casb_cfg_var vars[] = {
        {"CASB_DATABASE_URL", CASB_CFG_STRING, "postgresql://casb:casb@127.0.0.1:55432/casb", 1, 1,
         0, 0, "PostgreSQL connection URL.", &s->database_url},
        {"CASB_KAFKA_BROKERS", CASB_CFG_STRING, "127.0.0.1:19092", 1, 0, 0, 0,
         "Kafka bootstrap brokers, comma-separated host:port.", &s->kafka_brokers},
        {"CASB_HTTP_ADDR", CASB_CFG_ADDR, "127.0.0.1:8082", 1, 0, 0, 0,
         "Address the HTTP API listens on.", &s->http_addr},
        {"CASB_ADMIN_TOKEN", CASB_CFG_STRING, NULL, 1, 1, 0, 0,
         "Bearer token of the bootstrap administrator.", &s->admin_token},
        {"CASB_DB_POOL_SIZE", CASB_CFG_INT, "8", 0, 0, 1, 256,
         "PostgreSQL connections shared by HTTP requests.", &s->db_pool_size},
        {"CASB_CATALOGUE_DIR", CASB_CFG_STRING, FA_DEFAULT_CATALOGUE_DIR, 0, 0, 0, 0,
         "Directory of the finding catalogues (<provider>.json), loaded at start.",
         &s->catalogue_dir},
        {"CASB_LOG_LEVEL", CASB_CFG_LOGLEVEL, "info", 0, 0, 0, 0,
         "Minimum log level: debug, info, warn or error.", &s->log_level},
        {"CASB_SHUTDOWN_GRACE_S", CASB_CFG_INT, "30", 0, 0, 0, 3600,
         "Seconds allowed for in-flight work on SIGTERM.", &s->shutdown_grace_s},
    };

    casb_config_init_or_exit(argc, argv, "casb-findings-api", FA_SUMMARY, vars,
                             sizeof(vars) / sizeof(vars[0]));
}
