#ifndef FA_SETTINGS_H
#define FA_SETTINGS_H

/* The findings-api's configuration, read once from the environment at start. */
typedef struct {
    char *database_url;
    char *kafka_brokers;
    char *http_addr;
    char *admin_token;   /* secret: never printed */
    long db_pool_size;
    char *catalogue_dir; /* directory of <provider>.json finding catalogues */
    int log_level;
    long shutdown_grace_s;
} fa_settings;

/* The catalogue directory when CASB_CATALOGUE_DIR is unset: the source tree's
 * proto/findings (CASB_SOURCE_DIR is set at compile time). */
#define FA_DEFAULT_CATALOGUE_DIR CASB_SOURCE_DIR "/proto/findings"

/* Loads every variable (handles --help, exits 2 on a bad value). */
void fa_settings_load_or_exit(fa_settings *s, int argc, char **argv);

#endif
