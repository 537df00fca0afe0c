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

static int stats_fail(im_rotate_stats *stats, const char *id, const char *why)
{
    casb_log_error("credentials of an integration cannot be re-sealed", "integration_id", id,
                   "error", why);
    stats->failed++;
    return json_array_append_new(stats->failed_ids, json_string(id));
}

/* The failed ids as a PostgreSQL uuid[] literal, so that later batches skip them: "{a,b}".
 * malloc'ed; NULL when out of memory. */
static char *failed_ids_literal(const im_rotate_stats *stats)
{
    size_t n = json_array_size(stats->failed_ids);
    char *out = malloc(3 + n * 37);
    size_t len = 0;

    if (!out)
        return NULL;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(stats->failed_ids, i));

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

/* One batch in one transaction: locks up to batch rows after *cursor (in id order) that are
 * not under the current key, skipping rows locked elsewhere and rows that already failed,
 * and re-seals them. Advances *cursor; *taken is how many rows the batch locked (0: the pass
 * is over). Returns 0 or -1 with err set (the batch is rolled back). */
static int rotate_batch(casb_db *db, const casb_keyring *keys, long batch, char cursor[37],
                        int *taken, im_rotate_stats *stats, char *err, size_t errlen)
{
    const char *current = casb_keyring_current_id(keys);
    char limit[24];
    char *exclude = NULL;
    PGresult *res = NULL;
    long rotated = 0;
    int rc = -1;

    *taken = 0;
    exclude = failed_ids_literal(stats);
    if (!exclude)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    snprintf(limit, sizeof(limit), "%ld", batch);
    if (casb_db_begin(db, err, errlen) != 0)
        goto out;
    const char *params[] = {current, cursor, exclude, limit};
    res = casb_db_query(db,
                        "SELECT id::text AS id, credentials_sealed, credentials_key_id"
                        " FROM integrations"
                        " WHERE credentials_key_id <> $1 AND id > $2::uuid"
                        " AND NOT (id = ANY ($3::uuid[]))"
                        " ORDER BY id LIMIT $4::int FOR UPDATE SKIP LOCKED",
                        4, params, err, errlen);
    if (!res)
        goto out;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = casb_db_get(res, i, "id");
        const char *old_key_id = casb_db_get(res, i, "credentials_key_id");
        char why[256] = "";
        char *resealed = NULL;
        long affected = 0;

        snprintf(cursor, 37, "%s", id);
        if (reseal(keys, casb_db_get(res, i, "credentials_sealed"), &resealed, why,
                   sizeof(why)) != 0) {
            if (stats_fail(stats, id, why) != 0) {
                casb_fail(err, errlen, CASB_ERROR, "out of memory");
                goto out;
            }
            continue;
        }
        /* The key id is checked again so that a row re-sealed by someone else since it was
         * read (a PATCH of its credentials) is never overwritten with older credentials. */
        const char *uparams[] = {id, resealed, current, old_key_id};
        int urc = casb_db_exec(db,
                               "UPDATE integrations SET credentials_sealed = $2,"
                               " credentials_key_id = $3"
                               " WHERE id = $1::uuid AND credentials_key_id = $4",
                               4, uparams, &affected, err, errlen);
        free(resealed);
        if (urc != 0)
            goto out;
        rotated += affected;
    }
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    *taken = PQntuples(res);
    stats->rotated += rotated;
    rc = 0;
out:
    if (rc != 0)
        casb_db_rollback(db);
    PQclear(res);
    free(exclude);
    return rc;
}

/* Ids of rows still not under the current key, other than those that already failed:
 * rows that every pass found locked. Returns the result (caller PQclear()s) or NULL. */
static PGresult *remaining_rows(casb_db *db, const char *current, const im_rotate_stats *stats,
                                char *err, size_t errlen)
{
    char *exclude = failed_ids_literal(stats);
    PGresult *res;

    if (!exclude) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        return NULL;
    }
    const char *params[] = {current, exclude};
    res = casb_db_query(db,
                        "SELECT id::text AS id FROM integrations"
                        " WHERE credentials_key_id <> $1 AND NOT (id = ANY ($2::uuid[]))"
                        " ORDER BY id",
                        2, params, err, errlen);
    free(exclude);
    return res;
}

int im_rotate_credentials(casb_db *db, const casb_keyring *keys, long batch_size,
                          im_rotate_stats *stats, char *err, size_t errlen)
{
    const char *current = casb_keyring_current_id(keys);
    PGresult *res = NULL;
    int rc = -1;

    memset(stats, 0, sizeof(*stats));
    stats->failed_ids = json_array();
    if (!stats->failed_ids)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (batch_size <= 0)
        batch_size = IM_ROTATE_BATCH;

    const char *params[] = {current};
    res = casb_db_query(db,
                        "SELECT count(*) AS n FROM integrations WHERE credentials_key_id = $1",
                        1, params, err, errlen);
    if (!res)
        goto out;
    stats->already_current = casb_db_get_int(res, 0, "n", 0);
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
            if (rotate_batch(db, keys, batch_size, cursor, &taken, stats, err, errlen) != 0)
                goto out;
        } while (taken > 0);
        res = remaining_rows(db, current, stats, err, errlen);
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
        if (stats_fail(stats, casb_db_get(res, i, "id"),
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

void im_rotate_stats_clear(im_rotate_stats *stats)
{
    json_decref(stats->failed_ids);
    memset(stats, 0, sizeof(*stats));
}

char *im_rotate_summary(const im_rotate_stats *stats, const char *key_id)
{
    json_t *ids = stats->failed_ids ? json_incref(stats->failed_ids) : json_array();
    /* "o" steals ids, also when packing fails. */
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:o}", "key_id", key_id, "rotated",
                          (json_int_t)stats->rotated, "already_current",
                          (json_int_t)stats->already_current, "failed",
                          (json_int_t)stats->failed, "failed_integration_ids", ids);
    char *out;

    if (!o)
        return NULL;
    out = casb_json_dump(o);
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
    casb_log_info("rotating credentials", "key_id", casb_keyring_current_id(keys));
    if (im_rotate_credentials(db, keys, IM_ROTATE_BATCH, &stats, err, sizeof(err)) != 0)
        casb_log_error("rotation stopped", "error", err);
    else if (stats.failed == 0)
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
