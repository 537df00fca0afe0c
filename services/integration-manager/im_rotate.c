#include "im_rotate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/service.h"
#include "im_settings.h"

/* Rows a service holds (a scheduler claim, a PATCH) are skipped by a pass and retried by the
 * next one; a row still held after this many passes is reported as failed, never waited for
 * without end. */
#define ROTATE_MAX_PASSES 20
#define ROTATE_PASS_PAUSE_MS 250
#define NIL_UUID "00000000-0000-0000-0000-000000000000"

/* A table whose rows hold a secret sealed under the master key. Its statements name the
 * columns id, sealed and key_id, so that the code below serves every table alike. */
typedef struct {
    const char *row;      /* what a row is called in logs */
    const char *id_field; /* the log field of a row's id */
    /* $1 current key id. Returns n, the rows already under it. */
    const char *count_current;
    /* $1 current key id, $2 cursor, $3 failed ids, $4 batch size. Locks and returns id,
     * sealed, key_id of the next rows to re-seal. */
    const char *select_batch;
    /* $1 id, $2 new envelope, $3 current key id, $4 key id the row had when read. */
    const char *update;
    /* $1 current key id, $2 failed ids. Returns the ids still to re-seal. */
    const char *remaining;
} sealed_table;

static const sealed_table INTEGRATIONS = {
    .row = "integration",
    .id_field = "integration_id",
    .count_current = "SELECT count(*) AS n FROM integrations WHERE credentials_key_id = $1",
    .select_batch = "SELECT id::text AS id, credentials_sealed AS sealed,"
                    " credentials_key_id AS key_id FROM integrations"
                    " WHERE credentials_key_id <> $1 AND id > $2::uuid"
                    " AND NOT (id = ANY ($3::uuid[]))"
                    " ORDER BY id LIMIT $4::int FOR UPDATE SKIP LOCKED",
    .update = "UPDATE integrations SET credentials_sealed = $2, credentials_key_id = $3"
              " WHERE id = $1::uuid AND credentials_key_id = $4",
    .remaining = "SELECT id::text AS id FROM integrations"
                 " WHERE credentials_key_id <> $1 AND NOT (id = ANY ($2::uuid[])) ORDER BY id",
};

/* A webhook with auth_type 'none' has no envelope (auth_sealed and auth_key_id NULL): it is
 * neither counted nor re-sealed. */
static const sealed_table WEBHOOKS = {
    .row = "webhook",
    .id_field = "webhook_id",
    .count_current = "SELECT count(*) AS n FROM webhooks WHERE auth_key_id = $1",
    .select_batch = "SELECT id::text AS id, auth_sealed AS sealed, auth_key_id AS key_id"
                    " FROM webhooks"
                    " WHERE auth_sealed IS NOT NULL AND auth_key_id <> $1 AND id > $2::uuid"
                    " AND NOT (id = ANY ($3::uuid[]))"
                    " ORDER BY id LIMIT $4::int FOR UPDATE SKIP LOCKED",
    .update = "UPDATE webhooks SET auth_sealed = $2, auth_key_id = $3"
              " WHERE id = $1::uuid AND auth_key_id = $4",
    .remaining = "SELECT id::text AS id FROM webhooks"
                 " WHERE auth_sealed IS NOT NULL AND auth_key_id <> $1"
                 " AND NOT (id = ANY ($2::uuid[])) ORDER BY id",
};

static int counts_fail(const sealed_table *t, im_rotate_counts *counts, const char *id,
                       const char *why)
{
    casb_log_error("sealed secret cannot be re-sealed", "row", t->row, t->id_field, id, "error",
                   why);
    counts->failed++;
    return json_array_append_new(counts->failed_ids, json_string(id));
}

/* The failed ids as a PostgreSQL uuid[] literal, so that later batches skip them: "{a,b}".
 * malloc'ed; NULL when out of memory. */
static char *failed_ids_literal(const im_rotate_counts *counts)
{
    size_t n = json_array_size(counts->failed_ids);
    char *out = malloc(3 + n * 37);
    size_t len = 0;

    if (!out)
        return NULL;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(counts->failed_ids, i));

        if (i > 0)
            out[len++] = ',';
        memcpy(out + len, id, 36);
        len += 36;
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

/* Opens one envelope and seals its plaintext under the current key. *resealed is
 * malloc'ed. The plaintext is wiped before it is freed. */
static int reseal(const casb_keyring *keys, const char *sealed, char **resealed, char *err,
                  size_t errlen)
{
    char *plain = NULL;
    size_t n = 0;
    int rc;

    *resealed = NULL;
    rc = casb_secret_open(keys, sealed, &plain, &n, err, errlen);
    if (rc != 0)
        return rc;
    rc = casb_secret_seal(keys, plain, n, resealed, err, errlen);
    casb_secret_wipe(plain, n);
    free(plain);
    return rc;
}

/* One batch of table t in one transaction: locks up to batch rows after *cursor (in id
 * order) that are not under the current key, skipping rows locked elsewhere and rows that
 * already failed, and re-seals them. Advances *cursor; *taken is how many rows the batch
 * locked (0: the pass is over). Returns 0 or -1 with err set (the batch is rolled back). */
static int rotate_batch(casb_db *db, const casb_keyring *keys, const sealed_table *t,
                        long batch, char cursor[37], int *taken, im_rotate_counts *counts,
                        char *err, size_t errlen)
{
    const char *current = casb_keyring_current_id(keys);
    char limit[24];
    char *exclude = NULL;
    PGresult *res = NULL;
    long rotated = 0;
    int rc = -1;

    *taken = 0;
    exclude = failed_ids_literal(counts);
    if (!exclude)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    snprintf(limit, sizeof(limit), "%ld", batch);
    if (casb_db_begin(db, err, errlen) != 0)
        goto out;
    const char *params[] = {current, cursor, exclude, limit};
    res = casb_db_query(db, t->select_batch, 4, params, err, errlen);
    if (!res)
        goto out;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = casb_db_get(res, i, "id");
        char why[256] = "";
        char *resealed = NULL;
        long affected = 0;

        snprintf(cursor, 37, "%s", id);
        if (reseal(keys, casb_db_get(res, i, "sealed"), &resealed, why, sizeof(why)) != 0) {
            if (counts_fail(t, counts, id, why) != 0) {
                casb_fail(err, errlen, CASB_ERROR, "out of memory");
                goto out;
            }
            continue;
        }
        /* The key id is checked again so that a row re-sealed by someone else since it was
         * read (a PATCH of its secrets) is never overwritten with older secrets. */
        const char *uparams[] = {id, resealed, current, casb_db_get(res, i, "key_id")};
        int urc = casb_db_exec(db, t->update, 4, uparams, &affected, err, errlen);
        free(resealed);
        if (urc != 0)
            goto out;
        rotated += affected;
    }
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    *taken = PQntuples(res);
    counts->rotated += rotated;
    rc = 0;
out:
    if (rc != 0)
        casb_db_rollback(db);
    PQclear(res);
    free(exclude);
    return rc;
}

/* Ids of rows of t still not under the current key, other than those that already failed:
 * rows that every pass found locked. Returns the result (caller PQclear()s) or NULL. */
static PGresult *remaining_rows(casb_db *db, const sealed_table *t, const char *current,
                                const im_rotate_counts *counts, char *err, size_t errlen)
{
    char *exclude = failed_ids_literal(counts);
    PGresult *res;

    if (!exclude) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        return NULL;
    }
    const char *params[] = {current, exclude};
    res = casb_db_query(db, t->remaining, 2, params, err, errlen);
    free(exclude);
    return res;
}

/* Re-seals every row of t not under the current key, in passes of batches, into counts
 * (whose failed_ids is already an array). Returns 0 or -1 with err set. */
static int rotate_table(casb_db *db, const casb_keyring *keys, const sealed_table *t,
                        long batch_size, im_rotate_counts *counts, char *err, size_t errlen)
{
    const char *current = casb_keyring_current_id(keys);
    PGresult *res = NULL;
    int rc = -1;

    const char *params[] = {current};
    res = casb_db_query(db, t->count_current, 1, params, err, errlen);
    if (!res)
        goto out;
    counts->already_current = casb_db_get_int(res, 0, "n", 0);
    PQclear(res);
    res = NULL;

    for (int pass = 0; pass < ROTATE_MAX_PASSES; pass++) {
        char cursor[37] = NIL_UUID;
        int taken = 0;

        if (pass > 0)
            casb_service_sleep_ms(ROTATE_PASS_PAUSE_MS);
        do {
            if (casb_service_stopping()) {
                casb_fail(err, errlen, CASB_ERROR, "interrupted");
                goto out;
            }
            if (rotate_batch(db, keys, t, batch_size, cursor, &taken, counts, err, errlen) != 0)
                goto out;
        } while (taken > 0);
        res = remaining_rows(db, t, current, counts, err, errlen);
        if (!res)
            goto out;
        if (PQntuples(res) == 0)
            break;
        if (pass + 1 < ROTATE_MAX_PASSES) {
            PQclear(res);
            res = NULL;
        }
    }
    /* Rows held by other transactions through every pass. */
    for (int i = 0; res && i < PQntuples(res); i++) {
        if (counts_fail(t, counts, casb_db_get(res, i, "id"),
                        "row locked by another transaction throughout the rotation") != 0) {
            casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    return rc;
}

int im_rotate_credentials(casb_db *db, const casb_keyring *keys, long batch_size,
                          im_rotate_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof(*stats));
    stats->integrations.failed_ids = json_array();
    stats->webhooks.failed_ids = json_array();
    if (!stats->integrations.failed_ids || !stats->webhooks.failed_ids)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (batch_size <= 0)
        batch_size = IM_ROTATE_BATCH;
    if (rotate_table(db, keys, &INTEGRATIONS, batch_size, &stats->integrations, err,
                     errlen) != 0)
        return -1;
    return rotate_table(db, keys, &WEBHOOKS, batch_size, &stats->webhooks, err, errlen);
}

void im_rotate_stats_clear(im_rotate_stats *stats)
{
    json_decref(stats->integrations.failed_ids);
    json_decref(stats->webhooks.failed_ids);
    memset(stats, 0, sizeof(*stats));
}

/* The counts of one table and its failed ids under ids_name, as a JSON object's members
 * added to o. Returns 0 or -1 when out of memory. */
static int counts_put(json_t *o, const im_rotate_counts *counts, const char *ids_name)
{
    json_t *ids = counts->failed_ids ? json_incref(counts->failed_ids) : json_array();

    if (json_object_set_new(o, "rotated", json_integer(counts->rotated)) != 0 ||
        json_object_set_new(o, "already_current", json_integer(counts->already_current)) != 0 ||
        json_object_set_new(o, "failed", json_integer(counts->failed)) != 0 ||
        json_object_set_new(o, ids_name, ids) != 0)
        return -1;
    return 0;
}

char *im_rotate_summary(const im_rotate_stats *stats, const char *key_id)
{
    json_t *o = json_object();
    json_t *webhooks = json_object();
    char *out = NULL;

    if (!o || !webhooks || json_object_set_new(o, "key_id", json_string(key_id)) != 0 ||
        counts_put(o, &stats->integrations, "failed_integration_ids") != 0 ||
        counts_put(webhooks, &stats->webhooks, "failed_webhook_ids") != 0)
        goto out;
    /* set_new steals webhooks, also when it fails. */
    if (json_object_set_new(o, "webhooks", webhooks) == 0)
        out = casb_json_dump(o);
    webhooks = NULL;
out:
    json_decref(webhooks);
    json_decref(o);
    return out;
}

int im_rotate_main(int argc, char **argv)
{
    im_rotate_settings settings;
    im_rotate_stats stats = {0};
    casb_keyring *keys = NULL;
    casb_db *db = NULL;
    char *summary = NULL;
    char err[512] = "";
    int status = 1;

    im_rotate_settings_load_or_exit(&settings, argc, argv);
    casb_log_init("integration-manager", settings.log_level);
    casb_service_signals_install();

    if (casb_keyring_new(&keys, settings.master_key, settings.master_key_previous, err,
                         sizeof(err)) != 0) {
        fprintf(stderr, "casb-integration-manager %s: %s\n", IM_ROTATE_COMMAND, err);
        return CASB_SERVICE_EXIT_CONFIG;
    }
    if (casb_service_migrate(settings.database_url, err, sizeof(err)) != 0 ||
        casb_db_open(&db, settings.database_url, CASB_SERVICE_CONNECT_TIMEOUT_MS, err,
                     sizeof(err)) != 0) {
        casb_log_error("cannot open the database", "error", err);
        goto out;
    }
    casb_log_info("re-sealing integrations' credentials and webhooks' secrets",
                  "key_id", casb_keyring_current_id(keys));
    if (im_rotate_credentials(db, keys, IM_ROTATE_BATCH, &stats, err, sizeof(err)) != 0)
        casb_log_error("rotation stopped", "error", err);
    else if (stats.integrations.failed == 0 && stats.webhooks.failed == 0)
        status = 0;
    summary = im_rotate_summary(&stats, casb_keyring_current_id(keys));
    if (summary) {
        printf("%s\n", summary);
        fflush(stdout);
    }
out:
    free(summary);
    im_rotate_stats_clear(&stats);
    casb_db_close(db);
    casb_keyring_free(keys);
    return status;
}
