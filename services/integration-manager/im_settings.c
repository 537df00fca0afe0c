#include "im_settings.h"

#include <string.h>

#include "casb/auth.h"
#include "casb/service.h"

#define IM_PROG "casb-integration-manager"
#define IM_SUMMARY                                                                           \
    "Manages integrations (SaaS connections and their encrypted credentials) and queues " \
    "their scans.\n\n"                                                                      \
    "Subcommand: `" IM_PROG " rotate-credentials` re-seals every integration's credentials " \
    "and every webhook's secrets under CASB_MASTER_KEY, then exits; `" IM_PROG " migrate` "   \
    "applies the schema migrations and `" IM_PROG " create-topics` creates the Kafka "       \
    "topics, each then exits; `" IM_PROG " create-account` and `" IM_PROG " create-token` "  \
    "issue an account and API tokens, and `" IM_PROG " replay-dlq` sends a dead-letter "       \
    "topic's messages back (see their --help)."
#define IM_ROTATE_PROG IM_PROG " rotate-credentials"
#define IM_ROTATE_SUMMARY                                                                    \
    "Re-seals every integration's credentials and every webhook's secrets (webhooks with "  \
    "auth_type none have none) whose envelope is not under CASB_MASTER_KEY, in batches of " \
    "100 rows per transaction, while the services run. Rotation: set CASB_MASTER_KEY to "   \
    "the new key and CASB_MASTER_KEY_PREVIOUS to the old one, restart integration-manager, " \
    "scanner-worker and findings-api with both, run this command, and drop "               \
    "CASB_MASTER_KEY_PREVIOUS only after it exits 0. Prints one JSON line, the "            \
    "integrations' counts at the top level and the webhooks' under \"webhooks\": "          \
    "{\"key_id\",\"rotated\",\"already_current\",\"failed\",\"failed_integration_ids\","    \
    "\"webhooks\":{\"rotated\",\"already_current\",\"failed\",\"failed_webhook_ids\"}}; "   \
    "exits 0 when every integration and webhook is under the current key, 1 when one could " \
    "not be opened (sealed with a key given in neither variable) or the database failed, "  \
    "2 on a bad configuration. Running it again is harmless."

#define IM_ACCOUNT_PROG IM_PROG " create-account"
#define IM_ACCOUNT_SUMMARY                                                                   \
    "Creates an account (a tenant of this CASB: its integrations, findings, webhooks and "  \
    "tokens are seen by nobody else) with a first admin token, then exits. Prints one JSON " \
    "line {\"account_id\", \"token_id\", \"token\"}: the token is shown this once and is " \
    "stored only as a digest. Exits 0 done, 1 the database failed, 2 a bad configuration."
#define IM_TOKEN_PROG IM_PROG " create-token"
#define IM_TOKEN_SUMMARY                                                                     \
    "Issues an API token of an account, e.g. a new admin token when every admin token was " \
    "lost or revoked (the bootstrap CASB_ADMIN_TOKEN seeds the first start only), then "     \
    "exits. Prints one JSON line {\"account_id\", \"token_id\", \"token\"}. Exits 0 done, " \
    "1 the database failed or the account does not exist, 2 a bad configuration."

#define IM_REPLAY_PROG IM_PROG " replay-dlq"
#define IM_REPLAY_SUMMARY                                                                    \
    "Sends the messages of a dead-letter topic (casb.scan.jobs.dlq, casb.scan.results.dlq, " \
    "casb.integration.events.dlq) back to their topic after the fault that sent them there " \
    "is fixed, with their keys, then exits; safe because every consumer is idempotent. "   \
    "Only what the DLQ held when it started is replayed: a message that fails again lands " \
    "after that and waits for the next run, so a replay never loops. Progress is kept in "  \
    "the consumer group casb-dlq-replay: running it again replays only what came since. "   \
    "Prints one JSON line {\"topic\", \"replayed\", \"left\"}; exits 0, 1 when Kafka "      \
    "failed, 2 on a bad configuration."

#define IM_MIGRATE_PROG IM_PROG " migrate"
#define IM_MIGRATE_SUMMARY                                                                   \
    "Applies the schema migrations embedded in this binary that the database lacks (every " \
    "service also does so at start, under an advisory lock; this runs it once before "      \
    "them, e.g. as a deployment's init job), then exits. Prints one JSON line "             \
    "{\"applied\": n}, n the migrations this run applied (0 when the schema was up to "     \
    "date); exits 0, 1 when the database failed, 2 on a bad configuration. Running it "     \
    "again is harmless."
#define IM_TOPICS_PROG IM_PROG " create-topics"
#define IM_TOPICS_SUMMARY                                                                    \
    "Creates the Kafka topics the services use (casb.scan.jobs and casb.scan.results with " \
    "6 partitions, casb.integration.events with 3, and a .dlq twin of each with 1) through " \
    "the Admin API, then exits. A topic that already exists is left as it is. Prints one " \
    "JSON line {\"created\": [names], \"existing\": [names]}; exits 0, 1 when a topic "     \
    "could not be created or the brokers did not answer, 2 on a bad configuration. "        \
    "Running it again is harmless."

/* Copies a subcommand's (or the service's) table into the caller's room for it. */
static size_t table_copy(casb_cfg_var *vars, size_t cap, const casb_cfg_var *table,
                         size_t count)
{
    size_t n = count < cap ? count : cap;

    memcpy(vars, table, n * sizeof(table[0]));
    return n;
}

size_t im_settings_table(im_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[IM_SETTINGS_COUNT] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_kafka_brokers(&s->kafka_brokers),
        casb_service_var_http_addr(&s->http_addr, "127.0.0.1:8081"),
        casb_service_var_log_level(&s->log_level),
        casb_service_var_shutdown_grace_s(&s->shutdown_grace_s),
        casb_service_var_master_key(&s->master_key),
        casb_service_var_master_key_previous(&s->master_key_previous),
        casb_service_var_admin_token(&s->admin_token),
        casb_service_var_allowed_endpoints(&s->allowed_endpoints),
        casb_service_var_db_pool_size(&s->db_pool_size),
        casb_service_var_api_rate_per_second(&s->api_rate_per_second),
        casb_service_var_api_rate_burst(&s->api_rate_burst),
        {"CASB_HTTP_TIMEOUT_MS", CASB_CFG_INT, "10000", 0, 0, 100, 120000,
         "Timeout of one request to a provider when checking a new integration's connection.",
         &s->http_timeout_ms},
        {"CASB_PUBLIC_URL", CASB_CFG_STRING, "http://127.0.0.1:8081", 0, 0, 0, 0,
         "Base URL at which browsers reach this API (behind the TLS terminator); OAuth "
         "providers redirect to <CASB_PUBLIC_URL>/v1/integrations/oauth/<provider>/callback.",
         &s->public_url},
        {"CASB_OAUTH_STATE_TTL_S", CASB_CFG_INT, "600", 0, 0, 60, 3600,
         "Seconds a started OAuth consent flow stays valid (its state is single use).",
         &s->oauth_state_ttl_s},
        casb_service_var_github_oauth_client_id(&s->github_oauth_client_id),
        casb_service_var_github_oauth_client_secret(&s->github_oauth_client_secret),
        casb_service_var_github_web_url(&s->github_web_url),
        {"CASB_GITHUB_APP_SLUG", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
         "Name of that GitHub App in https://github.com/apps/<name>: consent flows may then "
         "start on its installation page (an organization without the App installs it on the "
         "way).",
         &s->github_app_slug},
        {"CASB_CORS_ORIGINS", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
         "Comma-separated browser origins (scheme://host:port) whose pages may call this API, "
         "e.g. the dashboard's findings-api http://127.0.0.1:8082. Unset: no CORS.",
         &s->cors_origins},
    };
    return table_copy(vars, cap, table, IM_SETTINGS_COUNT);
}

void im_settings_load_or_exit(im_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[IM_SETTINGS_COUNT];
    size_t n = im_settings_table(s, vars, IM_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, IM_PROG, IM_SUMMARY, vars, n);
}

size_t im_rotate_settings_table(im_rotate_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[IM_ROTATE_SETTINGS_COUNT] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_log_level(&s->log_level),
        casb_service_var_master_key(&s->master_key),
        casb_service_var_master_key_previous(&s->master_key_previous),
    };
    return table_copy(vars, cap, table, IM_ROTATE_SETTINGS_COUNT);
}

void im_rotate_settings_load_or_exit(im_rotate_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[IM_ROTATE_SETTINGS_COUNT];
    size_t n = im_rotate_settings_table(s, vars, IM_ROTATE_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, IM_ROTATE_PROG, IM_ROTATE_SUMMARY, vars, n);
}

size_t im_migrate_settings_table(im_migrate_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[IM_MIGRATE_SETTINGS_COUNT] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_log_level(&s->log_level),
    };
    return table_copy(vars, cap, table, IM_MIGRATE_SETTINGS_COUNT);
}

void im_migrate_settings_load_or_exit(im_migrate_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[IM_MIGRATE_SETTINGS_COUNT];
    size_t n = im_migrate_settings_table(s, vars, IM_MIGRATE_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, IM_MIGRATE_PROG, IM_MIGRATE_SUMMARY, vars, n);
}

size_t im_topics_settings_table(im_topics_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[IM_TOPICS_SETTINGS_COUNT] = {
        casb_service_var_kafka_brokers(&s->kafka_brokers),
        {"CASB_KAFKA_REPLICATION_FACTOR", CASB_CFG_INT, "1", 0, 0, 1, 32,
         "Replicas of each topic created; at most the number of brokers. 1 suits a single "
         "broker (development, the demo); use 3 in production.",
         &s->replication_factor},
        casb_service_var_log_level(&s->log_level),
    };
    return table_copy(vars, cap, table, IM_TOPICS_SETTINGS_COUNT);
}

void im_topics_settings_load_or_exit(im_topics_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[IM_TOPICS_SETTINGS_COUNT];
    size_t n = im_topics_settings_table(s, vars, IM_TOPICS_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, IM_TOPICS_PROG, IM_TOPICS_SUMMARY, vars, n);
}

size_t im_account_settings_table(im_account_settings *s, int with_token, casb_cfg_var *vars,
                                 size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var account[] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_log_level(&s->log_level),
        {"CASB_ACCOUNT_NAME", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
         "The new account's name (1 to 200 characters).", &s->account_name},
    };
    const casb_cfg_var token[] = {
        casb_service_var_database_url(&s->database_url),
        casb_service_var_log_level(&s->log_level),
        {"CASB_ACCOUNT_ID", CASB_CFG_STRING, CASB_DEFAULT_ACCOUNT_ID, 0, 0, 0, 0,
         "The account of the token (default: the default account).", &s->account_id},
        {"CASB_TOKEN_NAME", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
         "The token's name, shown in the audit log (1 to 100 characters).", &s->token_name},
        {"CASB_TOKEN_ROLE", CASB_CFG_STRING, "admin", 0, 0, 0, 0,
         "admin, analyst or read_only.", &s->token_role},
        {"CASB_TOKEN_EXPIRES_AT", CASB_CFG_STRING, NULL, 0, 0, 0, 0,
         "RFC 3339 date-time after which the token is refused; unset: never.",
         &s->token_expires_at},
    };
    if (with_token)
        return table_copy(vars, cap, token, sizeof(token) / sizeof(token[0]));
    return table_copy(vars, cap, account, sizeof(account) / sizeof(account[0]));
}

void im_account_settings_load_or_exit(im_account_settings *s, int with_token, int argc,
                                      char **argv)
{
    casb_cfg_var vars[IM_ACCOUNT_SETTINGS_MAX];
    size_t n = im_account_settings_table(s, with_token, vars, IM_ACCOUNT_SETTINGS_MAX);

    if (with_token)
        casb_config_init_or_exit(argc, argv, IM_TOKEN_PROG, IM_TOKEN_SUMMARY, vars, n);
    else
        casb_config_init_or_exit(argc, argv, IM_ACCOUNT_PROG, IM_ACCOUNT_SUMMARY, vars, n);
}

size_t im_replay_settings_table(im_replay_settings *s, casb_cfg_var *vars, size_t cap)
{
    memset(s, 0, sizeof(*s));
    const casb_cfg_var table[IM_REPLAY_SETTINGS_COUNT] = {
        casb_service_var_kafka_brokers(&s->kafka_brokers),
        casb_service_var_log_level(&s->log_level),
        {"CASB_DLQ_TOPIC", CASB_CFG_STRING, NULL, 1, 0, 0, 0,
         "The dead-letter topic to replay, e.g. casb.scan.results.dlq.", &s->dlq_topic},
        {"CASB_REPLAY_MAX", CASB_CFG_INT, "0", 0, 0, 0, 100000000,
         "Replay at most this many messages (0: all the topic held at the start).",
         &s->max_messages},
        {"CASB_REPLAY_IDLE_MS", CASB_CFG_INT, "10000", 0, 0, 1000, 600000,
         "Stop after this long without a message (joining the group takes a few seconds).",
         &s->idle_ms},
    };
    return table_copy(vars, cap, table, IM_REPLAY_SETTINGS_COUNT);
}

void im_replay_settings_load_or_exit(im_replay_settings *s, int argc, char **argv)
{
    casb_cfg_var vars[IM_REPLAY_SETTINGS_COUNT];
    size_t n = im_replay_settings_table(s, vars, IM_REPLAY_SETTINGS_COUNT);

    casb_config_init_or_exit(argc, argv, IM_REPLAY_PROG, IM_REPLAY_SUMMARY, vars, n);
}
