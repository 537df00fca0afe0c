#ifndef IM_SETTINGS_H
#define IM_SETTINGS_H

#include <stddef.h>

#include "casb/config.h"

/* The integration-manager's configuration, one member per environment variable. Strings
 * point into the environment or into the table's defaults and are never freed. */
typedef struct {
    char *database_url;
    char *kafka_brokers;
    char *http_addr;
    char *master_key;
    char *master_key_previous; /* NULL when not set */
    char *admin_token;
    char *allowed_endpoints;   /* NULL when not set: only providers' own endpoints */
    int log_level;
    long db_pool_size;
    long api_rate_per_second; /* 0: unlimited */
    long api_rate_burst;
    long http_timeout_ms;      /* connection checks against the provider */
    long shutdown_grace_s;
    char *public_url;          /* where browsers reach this API: OAuth redirect URIs */
    long oauth_state_ttl_s;    /* how long a started consent flow may take */
    char *github_oauth_client_id;     /* NULL: no GitHub consent flow */
    char *github_oauth_client_secret; /* secret */
    char *github_web_url;
    char *github_app_slug;     /* NULL: no install page, only authorization */
    char *cors_origins;        /* NULL: no CORS; else origins whose pages may call the API */
} im_settings;

#define IM_SETTINGS_COUNT 20

/* Fills vars (room for IM_SETTINGS_COUNT entries) with the service's variable table, each
 * entry's target pointing into s. Returns the number of entries written. */
size_t im_settings_table(im_settings *s, casb_cfg_var *vars, size_t cap);

/* Loads every variable into s: handles --help (exit 0); a bad value exits 2 with one line. */
void im_settings_load_or_exit(im_settings *s, int argc, char **argv);

/* The configuration of the rotate-credentials subcommand: only what it uses, from the same
 * variables as the service (CASB_MASTER_KEY is the new key, CASB_MASTER_KEY_PREVIOUS the old). */
typedef struct {
    char *database_url;
    char *master_key;
    char *master_key_previous; /* NULL when not set */
    int log_level;
} im_rotate_settings;

#define IM_ROTATE_SETTINGS_COUNT 4

size_t im_rotate_settings_table(im_rotate_settings *s, casb_cfg_var *vars, size_t cap);

/* Like im_settings_load_or_exit, with argv[0] the subcommand's name. */
void im_rotate_settings_load_or_exit(im_rotate_settings *s, int argc, char **argv);

/* The migrate subcommand: only the database. */
typedef struct {
    char *database_url;
    int log_level;
} im_migrate_settings;

#define IM_MIGRATE_SETTINGS_COUNT 2

size_t im_migrate_settings_table(im_migrate_settings *s, casb_cfg_var *vars, size_t cap);
void im_migrate_settings_load_or_exit(im_migrate_settings *s, int argc, char **argv);

/* The create-account and create-token subcommands (im_accounts.h). */
typedef struct {
    char *database_url;
    int log_level;
    char *account_name;     /* create-account */
    char *account_id;       /* create-token */
    char *token_name;
    char *token_role;
    char *token_expires_at; /* NULL: never */
} im_account_settings;

#define IM_ACCOUNT_SETTINGS_MAX 6

/* with_token: create-token's table, else create-account's. */
size_t im_account_settings_table(im_account_settings *s, int with_token, casb_cfg_var *vars,
                                 size_t cap);
void im_account_settings_load_or_exit(im_account_settings *s, int with_token, int argc,
                                      char **argv);

/* The replay-dlq subcommand (im_replay.h). */
typedef struct {
    char *kafka_brokers;
    int log_level;
    char *dlq_topic;
    long max_messages; /* 0: all */
    long idle_ms;
} im_replay_settings;

#define IM_REPLAY_SETTINGS_COUNT 5

size_t im_replay_settings_table(im_replay_settings *s, casb_cfg_var *vars, size_t cap);
void im_replay_settings_load_or_exit(im_replay_settings *s, int argc, char **argv);

/* The create-topics subcommand: the brokers and how many replicas each topic gets. */
typedef struct {
    char *kafka_brokers;
    long replication_factor;
    int log_level;
} im_topics_settings;

#define IM_TOPICS_SETTINGS_COUNT 3

size_t im_topics_settings_table(im_topics_settings *s, casb_cfg_var *vars, size_t cap);
void im_topics_settings_load_or_exit(im_topics_settings *s, int argc, char **argv);

#endif
