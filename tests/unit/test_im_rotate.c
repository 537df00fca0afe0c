/* Master key rotation (im_rotate.c) against a real PostgreSQL: CASB_TEST_DATABASE_URL
 * (tests/run exports it). The tests run in a schema of their own, created and migrated in
 * setup and dropped in teardown, so that the rotation sees exactly the rows they insert.
 * Rows sealed with key A, rotated with keyring(B, previous A): all end under B and open with
 * B alone; a second run rotates nothing; a row sealed with an unknown key C is reported by
 * id and left as it was. The same holds for webhooks' secrets, and a webhook without
 * secrets (auth_type 'none') is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/json.h"
#include "casb/migrate.h"
#include "im_rotate.h"
#include "im_settings.h"
#include "test_schema.h"

#define KEY_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
#define KEY_C "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
#define ROWS_A 7 /* more than one batch of 3 */
#define WEBHOOKS_A 4
#define WEBHOOK_FIRST 200 /* secret_of index of the first webhook */

/* One row's envelope and key id, as load_row reads them. */
#define INTEGRATION_ROW                                                                      \
    "SELECT credentials_sealed AS sealed, credentials_key_id AS key_id FROM integrations"    \
    " WHERE id = $1"
#define WEBHOOK_ROW                                                                          \
    "SELECT auth_sealed AS sealed, auth_key_id AS key_id FROM webhooks WHERE id = $1"

static casb_db *db;
static char schema[64];
static casb_keyring *ring_a, *ring_b_prev_a, *ring_b, *ring_c;

static void exec_ok(const char *sql, int n, const char *const *params)
{
    char err[256] = "";

    if (casb_db_exec(db, sql, n, params, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", sql, err);
}

static void new_keyring(casb_keyring **out, const char *current, const char *previous)
{
    char err[256] = "";

    if (casb_keyring_new(out, current, previous, err, sizeof(err)) != 0)
        fail_msg("casb_keyring_new: %s", err);
}

/* The secret of row i: what each row must still hold after any number of rotations. */
static void secret_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "{\"token\":\"ghp_rotation_canary_%d\"}", i);
}

/* Secret i sealed with keys; malloc'ed. */
static char *seal_secret(const casb_keyring *keys, int i)
{
    char secret[96], err[256] = "";
    char *sealed = NULL;

    secret_of(i, secret, sizeof(secret));
    if (casb_secret_seal(keys, secret, strlen(secret), &sealed, err, sizeof(err)) != 0)
        fail_msg("casb_secret_seal: %s", err);
    return sealed;
}

static void insert_sealed(const casb_keyring *keys, int i, char id[37])
{
    char *sealed = seal_secret(keys, i);

    casb_uuid_v4(id);
    const char *params[] = {id, CASB_DEFAULT_ACCOUNT_ID, sealed, casb_keyring_current_id(keys)};
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, config, credentials_sealed,"
            " credentials_key_id, scan_interval_s)"
            " VALUES ($1, $2, 'github', 'test_im_rotate', '{}', $3, $4, 3600)",
            4, params);
    free(sealed);
}

/* A webhook of secret i sealed with keys, or without secrets when keys is NULL. */
static void insert_webhook(const casb_keyring *keys, int i, char id[37])
{
    char *sealed = keys ? seal_secret(keys, i) : NULL;

    casb_uuid_v4(id);
    const char *params[] = {id, CASB_DEFAULT_ACCOUNT_ID, keys ? "bearer" : "none", sealed,
                            keys ? casb_keyring_current_id(keys) : NULL};
    exec_ok("INSERT INTO webhooks (id, account_id, name, url, auth_type, auth_sealed,"
            " auth_key_id, created_by)"
            " VALUES ($1, $2, 'test_im_rotate', 'https://hooks.example.com/casb', $3, $4, $5,"
            " 'test')",
            5, params);
    free(sealed);
}

static char *strdup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The envelope and key id of one row, read by sql (INTEGRATION_ROW, WEBHOOK_ROW); both
 * malloc'ed, NULL when SQL NULL. */
static void load_row(const char *sql, const char *id, char **sealed, char **key_id)
{
    char err[256] = "";
    const char *params[] = {id};
    PGresult *res = casb_db_query(db, sql, 1, params, err, sizeof(err));

    if (!res || PQntuples(res) != 1)
        fail_msg("loading %s: %s", id, err);
    *sealed = strdup_or_null(casb_db_get(res, 0, "sealed"));
    *key_id = strdup_or_null(casb_db_get(res, 0, "key_id"));
    PQclear(res);
}

/* Row i (read by sql) opens with keys alone, to its own secret, and its envelope and column
 * name one key. */
static void assert_opens_with(const casb_keyring *keys, const char *sql, const char *id, int i)
{
    char expected[96], envelope_id[16], err[256] = "";
    char *sealed = NULL, *key_id = NULL, *plain = NULL;
    size_t n = 0;

    load_row(sql, id, &sealed, &key_id);
    assert_string_equal(key_id, casb_keyring_current_id(keys));
    assert_int_equal(casb_secret_key_id(sealed, envelope_id, sizeof(envelope_id)), 0);
    assert_string_equal(envelope_id, key_id);
    assert_null(strstr(sealed, "ghp_rotation_canary"));
    if (casb_secret_open(keys, sealed, &plain, &n, err, sizeof(err)) != 0)
        fail_msg("row %d does not open with its key: %s", i, err);
    secret_of(i, expected, sizeof(expected));
    assert_string_equal(plain, expected);
    casb_secret_wipe(plain, n);
    free(plain);
    free(sealed);
    free(key_id);
}

static int setup(void **state)
{
    (void)state;
    test_schema_open(&db, "test_im_rotate", schema);
    new_keyring(&ring_a, KEY_A, NULL);
    new_keyring(&ring_b_prev_a, KEY_B, KEY_A);
    new_keyring(&ring_b, KEY_B, NULL);
    new_keyring(&ring_c, KEY_C, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_schema_close(db, schema);
    casb_keyring_free(ring_a);
    casb_keyring_free(ring_b_prev_a);
    casb_keyring_free(ring_b);
    casb_keyring_free(ring_c);
    return 0;
}

static void run_rotation(const casb_keyring *keys, long batch, im_rotate_stats *stats)
{
    char err[256] = "";

    if (im_rotate_credentials(db, keys, batch, stats, err, sizeof(err)) != 0)
        fail_msg("im_rotate_credentials: %s", err);
}

/* The counts of one table: failed_id is the one row that failed, or NULL when none did. */
static void assert_counts(const im_rotate_counts *c, long rotated, long already_current,
                          const char *failed_id)
{
    assert_int_equal(c->rotated, rotated);
    assert_int_equal(c->already_current, already_current);
    assert_int_equal(c->failed, failed_id ? 1 : 0);
    assert_int_equal(json_array_size(c->failed_ids), failed_id ? 1 : 0);
    if (failed_id)
        assert_string_equal(json_string_value(json_array_get(c->failed_ids, 0)), failed_id);
}

/* The same counts as the summary prints them in o, the failed ids under ids_name. */
static void assert_summary_counts(json_t *o, const char *ids_name, long rotated,
                                  long already_current, const char *failed_id)
{
    json_t *ids;

    assert_non_null(o);
    ids = json_object_get(o, ids_name);
    assert_int_equal(casb_json_int(o, "rotated", -1), rotated);
    assert_int_equal(casb_json_int(o, "already_current", -1), already_current);
    assert_int_equal(casb_json_int(o, "failed", -1), failed_id ? 1 : 0);
    assert_int_equal(json_array_size(ids), failed_id ? 1 : 0);
    if (failed_id)
        assert_string_equal(json_string_value(json_array_get(ids, 0)), failed_id);
}

/* The summary of stats under ring_b, parsed; it names the key and holds no secret. */
static json_t *summary_of(const im_rotate_stats *stats)
{
    char *summary = im_rotate_summary(stats, casb_keyring_current_id(ring_b));
    json_t *parsed;

    assert_non_null(summary);
    assert_null(strstr(summary, "ghp_rotation_canary"));
    parsed = casb_json_parse(summary, strlen(summary), 0, NULL, 0);
    free(summary);
    assert_non_null(parsed);
    assert_string_equal(casb_json_str(parsed, "key_id"), casb_keyring_current_id(ring_b));
    return parsed;
}

static void test_rotation(void **state)
{
    char ids[ROWS_A][37], unknown_id[37], current_id[37];
    char *unknown_before = NULL, *unknown_key_before = NULL, *sealed = NULL, *key_id = NULL;
    json_t *parsed;
    im_rotate_stats stats;

    (void)state;
    assert_string_not_equal(casb_keyring_current_id(ring_a), casb_keyring_current_id(ring_b));
    for (int i = 0; i < ROWS_A; i++)
        insert_sealed(ring_a, i, ids[i]);
    insert_sealed(ring_b, ROWS_A, current_id);
    insert_sealed(ring_c, ROWS_A + 1, unknown_id);
    load_row(INTEGRATION_ROW, unknown_id, &unknown_before, &unknown_key_before);

    /* Batches of 3: the rows take several transactions, the unknown one stays behind. */
    run_rotation(ring_b_prev_a, 3, &stats);
    assert_counts(&stats.integrations, ROWS_A, 1, unknown_id);
    assert_counts(&stats.webhooks, 0, 0, NULL);
    parsed = summary_of(&stats);
    /* The integrations' counts where they were before webhooks existed. */
    assert_summary_counts(parsed, "failed_integration_ids", ROWS_A, 1, unknown_id);
    assert_summary_counts(json_object_get(parsed, "webhooks"), "failed_webhook_ids", 0, 0, NULL);
    json_decref(parsed);
    im_rotate_stats_clear(&stats);

    /* Every rotated row opens with the new key alone: the old one can go. */
    for (int i = 0; i < ROWS_A; i++)
        assert_opens_with(ring_b, INTEGRATION_ROW, ids[i], i);
    assert_opens_with(ring_b, INTEGRATION_ROW, current_id, ROWS_A);
    /* The row nobody can open is exactly as it was. */
    load_row(INTEGRATION_ROW, unknown_id, &sealed, &key_id);
    assert_string_equal(sealed, unknown_before);
    assert_string_equal(key_id, unknown_key_before);
    assert_string_equal(key_id, casb_keyring_current_id(ring_c));
    free(sealed);
    free(key_id);

    /* Idempotent: nothing left to rotate; the unknown row is still reported. */
    run_rotation(ring_b_prev_a, 0, &stats);
    assert_counts(&stats.integrations, 0, ROWS_A + 1, unknown_id);
    im_rotate_stats_clear(&stats);

    /* Once the unknown row is gone (or re-entered), a run with the new key alone is clean. */
    const char *params[] = {unknown_id};
    exec_ok("DELETE FROM integrations WHERE id = $1", 1, params);
    run_rotation(ring_b, 0, &stats);
    assert_counts(&stats.integrations, 0, ROWS_A + 1, NULL);
    im_rotate_stats_clear(&stats);
    free(unknown_before);
    free(unknown_key_before);
}

/* A row another transaction holds is skipped, not waited for: it is rotated by a later pass
 * once released, or reported as failed when it is held throughout. Here it is held for the
 * whole run through a second connection. */
static void test_locked_row_is_reported_not_waited_for(void **state)
{
    char id[37], err[256] = "", schema_url[1024];
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    casb_db *other = NULL;
    im_rotate_stats stats;
    char *sealed = NULL, *key_id = NULL;

    (void)state;
    insert_sealed(ring_a, 100, id);
    snprintf(schema_url, sizeof(schema_url), "%s%coptions=-csearch_path%%3D%s", url,
             strchr(url, '?') ? '&' : '?', schema);
    if (casb_db_open(&other, schema_url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    const char *params[] = {id};
    if (casb_db_begin(other, err, sizeof(err)) != 0 ||
        casb_db_exec(other, "SELECT 1 FROM integrations WHERE id = $1 FOR UPDATE", 1, params,
                     NULL, err, sizeof(err)) != 0)
        fail_msg("locking the row: %s", err);

    run_rotation(ring_b_prev_a, 0, &stats);
    assert_int_equal(stats.integrations.rotated, 0);
    assert_int_equal(stats.integrations.failed, 1);
    assert_string_equal(json_string_value(json_array_get(stats.integrations.failed_ids, 0)),
                        id);
    im_rotate_stats_clear(&stats);
    casb_db_rollback(other);
    casb_db_close(other);
    load_row(INTEGRATION_ROW, id, &sealed, &key_id);
    assert_string_equal(key_id, casb_keyring_current_id(ring_a));
    free(sealed);
    free(key_id);

    /* Released: the next run rotates it. */
    run_rotation(ring_b_prev_a, 0, &stats);
    assert_int_equal(stats.integrations.rotated, 1);
    assert_int_equal(stats.integrations.failed, 0);
    im_rotate_stats_clear(&stats);
    assert_opens_with(ring_b, INTEGRATION_ROW, id, 100);
}

/* Webhooks' secrets are re-sealed like integrations' credentials, in the same run and with
 * counts of their own under "webhooks" in the summary; a webhook without secrets is neither
 * counted nor touched, and one sealed with an unknown key is reported by id. */
static void test_webhooks(void **state)
{
    char ids[WEBHOOKS_A][37], none_id[37], unknown_id[37], current_id[37];
    char *unknown_before = NULL, *sealed = NULL, *key_id = NULL;
    json_t *parsed;
    im_rotate_stats stats;

    (void)state;
    for (int i = 0; i < WEBHOOKS_A; i++)
        insert_webhook(ring_a, WEBHOOK_FIRST + i, ids[i]);
    insert_webhook(NULL, 0, none_id);
    insert_webhook(ring_b, WEBHOOK_FIRST + WEBHOOKS_A, current_id);
    insert_webhook(ring_c, WEBHOOK_FIRST + WEBHOOKS_A + 1, unknown_id);
    load_row(WEBHOOK_ROW, unknown_id, &unknown_before, &key_id);
    free(key_id);

    run_rotation(ring_b_prev_a, 3, &stats);
    assert_counts(&stats.webhooks, WEBHOOKS_A, 1, unknown_id);
    /* The integrations of the earlier tests are all under B by now. */
    assert_int_equal(stats.integrations.rotated, 0);
    assert_int_equal(stats.integrations.failed, 0);
    parsed = summary_of(&stats);
    assert_int_equal(casb_json_int(parsed, "failed", -1), 0);
    assert_summary_counts(json_object_get(parsed, "webhooks"), "failed_webhook_ids", WEBHOOKS_A,
                          1, unknown_id);
    json_decref(parsed);
    im_rotate_stats_clear(&stats);

    for (int i = 0; i < WEBHOOKS_A; i++)
        assert_opens_with(ring_b, WEBHOOK_ROW, ids[i], WEBHOOK_FIRST + i);
    assert_opens_with(ring_b, WEBHOOK_ROW, current_id, WEBHOOK_FIRST + WEBHOOKS_A);
    load_row(WEBHOOK_ROW, none_id, &sealed, &key_id);
    assert_null(sealed);
    assert_null(key_id);
    load_row(WEBHOOK_ROW, unknown_id, &sealed, &key_id);
    assert_string_equal(sealed, unknown_before);
    assert_string_equal(key_id, casb_keyring_current_id(ring_c));
    free(sealed);
    free(key_id);

    /* Idempotent; the unknown webhook is still reported until it is gone. */
    run_rotation(ring_b_prev_a, 0, &stats);
    assert_counts(&stats.webhooks, 0, WEBHOOKS_A + 1, unknown_id);
    im_rotate_stats_clear(&stats);
    const char *params[] = {unknown_id};
    exec_ok("DELETE FROM webhooks WHERE id = $1", 1, params);
    run_rotation(ring_b, 0, &stats);
    assert_counts(&stats.webhooks, 0, WEBHOOKS_A + 1, NULL);
    im_rotate_stats_clear(&stats);
    free(unknown_before);
}

/* The subcommand needs only the database and the keys: not Kafka nor the admin token, which
 * an operator running it by hand may not have at hand. */
static void test_settings(void **state)
{
    casb_cfg_var vars[IM_ROTATE_SETTINGS_COUNT];
    im_rotate_settings s;
    char err[256] = "";
    size_t n;

    (void)state;
    unsetenv("CASB_KAFKA_BROKERS");
    unsetenv("CASB_ADMIN_TOKEN");
    unsetenv("CASB_MASTER_KEY_PREVIOUS");
    unsetenv("CASB_LOG_LEVEL");
    setenv("CASB_DATABASE_URL", "postgresql://casb:casb@127.0.0.1:55432/casb", 1);
    setenv("CASB_MASTER_KEY", KEY_B, 1);
    n = im_rotate_settings_table(&s, vars, IM_ROTATE_SETTINGS_COUNT);
    assert_int_equal(n, IM_ROTATE_SETTINGS_COUNT);
    assert_int_equal(casb_config_load(vars, n, err, sizeof(err)), 0);
    assert_string_equal(s.master_key, KEY_B);
    assert_null(s.master_key_previous);

    setenv("CASB_MASTER_KEY_PREVIOUS", KEY_A, 1);
    n = im_rotate_settings_table(&s, vars, IM_ROTATE_SETTINGS_COUNT);
    assert_int_equal(casb_config_load(vars, n, err, sizeof(err)), 0);
    assert_string_equal(s.master_key_previous, KEY_A);

    unsetenv("CASB_MASTER_KEY");
    n = im_rotate_settings_table(&s, vars, IM_ROTATE_SETTINGS_COUNT);
    assert_int_not_equal(casb_config_load(vars, n, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "CASB_MASTER_KEY"));
    assert_null(strstr(err, KEY_A));
    unsetenv("CASB_MASTER_KEY_PREVIOUS");
    unsetenv("CASB_DATABASE_URL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_locked_row_is_reported_not_waited_for),
        cmocka_unit_test(test_webhooks),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
