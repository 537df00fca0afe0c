#include "im_integrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "im_views.h"

/* Times leave PostgreSQL already in RFC 3339 UTC; the microsecond form is the cursor key. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define TS_US(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* What im_view_integration reads. credentials_* are deliberately absent. */
#define INTEGRATION_COLUMNS                                                                  \
    "id::text AS id, provider, name, config::text AS config, health, health_reason, "       \
    "paused, scan_interval_s, " TS("last_scan_at") " AS last_scan_at, last_scan_status, "   \
    TS("next_scan_at") " AS next_scan_at, " TS("created_at") " AS created_at, "             \
    TS("updated_at") " AS updated_at, " TS_US("created_at") " AS cursor_at"

/* What im_view_scan reads. */
#define SCAN_COLUMNS                                                                         \
    "id::text AS id, integration_id::text AS integration_id, status, reason, "             \
    TS("queued_at") " AS queued_at, " TS("started_at") " AS started_at, "                   \
    TS("finished_at") " AS finished_at, "                                                   \
    "(extract(epoch FROM finished_at - started_at) * 1000)::bigint AS duration_ms, "        \
    "stats::text AS stats, coverage::text AS coverage, error, "                             \
    TS_US("queued_at") " AS cursor_at"

static int single_object(PGresult *res, json_t *(*view)(const PGresult *, int), json_t **out)
{
    if (PQntuples(res) == 0)
        return CASB_ENOTFOUND;
    *out = view(res, 0);
    return 0;
}

/* Turns up to limit rows into items; a row beyond limit means another page exists, whose
 * cursor is the last returned row's key. */
static int page(PGresult *res, long limit, json_t *(*view)(const PGresult *, int),
                json_t **items, char **next_cursor, char *err, size_t errlen)
{
    int n = PQntuples(res);
    int shown = n > limit ? (int)limit : n;

    *items = json_array();
    *next_cursor = NULL;
    for (int i = 0; i < shown; i++)
        json_array_append_new(*items, view(res, i));
    if (n > limit && shown > 0) {
        *next_cursor = im_cursor_encode(casb_db_get(res, shown - 1, "cursor_at"),
                                        casb_db_get(res, shown - 1, "id"));
        if (!*next_cursor) {
            json_decref(*items);
            *items = NULL;
            return casb_fail(err, errlen, CASB_ERROR, "cannot encode page cursor");
        }
    }
    return 0;
}

/* Locks the account's integration row for the rest of the transaction: pause, resume and
 * scan requests on one integration then run one after the other, and the scheduler's
 * SKIP LOCKED claim passes over it meanwhile. */
static int lock_integration(casb_db *db, const char *account_id, const char *id, int *paused,
                            char *err, size_t errlen)
{
    const char *params[2] = {id, account_id};
    PGresult *res = NULL;
    int rc = -1;

    res = casb_db_query(db,
                        "SELECT paused FROM integrations WHERE id = $1::uuid "
                        "AND account_id = $2::uuid FOR UPDATE",
                        2, params, err, errlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = CASB_ENOTFOUND;
        goto out;
    }
    *paused = casb_db_get_bool(res, 0, "paused");
    rc = 0;
out:
    PQclear(res);
    return rc;
}

static int fetch_integration(casb_db *db, const char *account_id, const char *id, json_t **out,
                             char *err, size_t errlen)
{
    const char *params[2] = {id, account_id};
    PGresult *res = NULL;
    int rc;

    res = casb_db_query(db,
                        "SELECT " INTEGRATION_COLUMNS " FROM integrations "
                        "WHERE id = $1::uuid AND account_id = $2::uuid",
                        2, params, err, errlen);
    if (!res)
        return -1;
    rc = single_object(res, im_view_integration, out);
    PQclear(res);
    return rc;
}

static int fetch_scan(casb_db *db, const char *scan_id, json_t **out, char *err, size_t errlen)
{
    const char *params[1] = {scan_id};
    PGresult *res = NULL;
    int rc;

    res = casb_db_query(db, "SELECT " SCAN_COLUMNS " FROM scans WHERE id = $1::uuid", 1, params,
                        err, errlen);
    if (!res)
        return -1;
    rc = single_object(res, im_view_scan, out);
    PQclear(res);
    return rc;
}

/* casb_enqueue_scan: the new scan's id into scan_id, or "" when the integration has a scan
 * queued or running already. */
static int enqueue_scan(casb_db *db, const char *id, const char *reason, char scan_id[37],
                        char *err, size_t errlen)
{
    const char *params[2] = {id, reason};
    PGresult *res = NULL;
    const char *v = NULL;

    scan_id[0] = '\0';
    res = casb_db_query(db, "SELECT casb_enqueue_scan($1::uuid, $2)::text AS scan_id", 2,
                        params, err, errlen);
    if (!res)
        return -1;
    v = PQntuples(res) == 1 ? casb_db_get(res, 0, "scan_id") : NULL;
    if (v)
        snprintf(scan_id, 37, "%s", v);
    PQclear(res);
    return 0;
}

int im_integrations_create(casb_db *db, const im_integration_new *in, json_t **out,
                           char first_scan_id[37], char *err, size_t errlen)
{
    char interval[32];
    const char *params[8];
    PGresult *res = NULL;
    int rc = -1;

    *out = NULL;
    first_scan_id[0] = '\0';
    snprintf(interval, sizeof(interval), "%ld", in->scan_interval_s);
    params[0] = in->id;
    params[1] = in->account_id;
    params[2] = in->provider;
    params[3] = in->name;
    params[4] = in->config_json;
    params[5] = in->credentials_sealed;
    params[6] = in->credentials_key_id;
    params[7] = interval;

    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    res = casb_db_query(db,
                        "INSERT INTO integrations (id, account_id, provider, name, config, "
                        "credentials_sealed, credentials_key_id, scan_interval_s, next_scan_at) "
                        "VALUES ($1::uuid, $2::uuid, $3, $4, $5::jsonb, $6, $7, $8::integer, "
                        "now() + make_interval(secs => $8::integer)) "
                        "RETURNING " INTEGRATION_COLUMNS,
                        8, params, err, errlen);
    if (!res || PQntuples(res) != 1)
        goto out;
    if (enqueue_scan(db, in->id, "first", first_scan_id, err, errlen) != 0)
        goto out;
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    *out = im_view_integration(res, 0);
    rc = 0;
out:
    if (rc != 0)
        casb_db_rollback(db);
    PQclear(res);
    return rc;
}

int im_integrations_get(casb_db *db, const char *account_id, const char *id, json_t **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    return fetch_integration(db, account_id, id, out, err, errlen);
}

int im_integrations_list(casb_db *db, const char *account_id, const im_cursor *after,
                         long limit, json_t **items, char **next_cursor, char *err,
                         size_t errlen)
{
    char fetch[32];
    const char *params[4];
    PGresult *res = NULL;
    int rc;

    *items = NULL;
    *next_cursor = NULL;
    /* One row more than asked tells whether another page exists. */
    snprintf(fetch, sizeof(fetch), "%ld", limit + 1);
    params[0] = account_id;
    params[1] = after ? after->at : NULL;
    params[2] = after ? after->id : NULL;
    params[3] = fetch;
    res = casb_db_query(db,
                        "SELECT " INTEGRATION_COLUMNS " FROM integrations "
                        "WHERE account_id = $1::uuid AND ($2::timestamptz IS NULL "
                        "OR (created_at, id) > ($2::timestamptz, $3::uuid)) "
                        "ORDER BY created_at, id LIMIT $4::integer",
                        4, params, err, errlen);
    if (!res)
        return -1;
    rc = page(res, limit, im_view_integration, items, next_cursor, err, errlen);
    PQclear(res);
    return rc;
}

int im_integrations_delete(casb_db *db, const char *account_id, const char *id,
                           char *provider, size_t providerlen, char *err, size_t errlen)
{
    const char *params[2] = {id, account_id};
    PGresult *res = NULL;
    int rc = -1;

    if (providerlen)
        provider[0] = '\0';
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    /* ingested_batches has no foreign key (it is keyed by scan); its rows for this
     * integration's scans would otherwise outlive everything they refer to. */
    if (casb_db_exec(db,
                     "DELETE FROM ingested_batches WHERE scan_id IN (SELECT s.id FROM scans s "
                     "JOIN integrations i ON i.id = s.integration_id "
                     "WHERE i.id = $1::uuid AND i.account_id = $2::uuid)",
                     2, params, NULL, err, errlen) != 0)
        goto out;
    res = casb_db_query(db,
                        "DELETE FROM integrations WHERE id = $1::uuid AND account_id = $2::uuid "
                        "RETURNING provider",
                        2, params, err, errlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = CASB_ENOTFOUND;
        goto out;
    }
    snprintf(provider, providerlen, "%s", casb_db_get(res, 0, "provider"));
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        casb_db_rollback(db);
    PQclear(res);
    return rc;
}

int im_integrations_pause(casb_db *db, const char *account_id, const char *id, json_t **out,
                          int *changed, char *err, size_t errlen)
{
    const char *params[1] = {id};
    int paused = 0;
    int rc = -1;

    *out = NULL;
    *changed = 0;
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    rc = lock_integration(db, account_id, id, &paused, err, errlen);
    if (rc != 0)
        goto out;
    rc = -1;
    if (!paused) {
        if (casb_db_exec(db,
                         "UPDATE integrations SET paused = true, health = 'paused', "
                         "health_reason = NULL, updated_at = now() WHERE id = $1::uuid",
                         1, params, NULL, err, errlen) != 0)
            goto out;
        /* A scan still waiting for a worker would otherwise run after the pause; a worker
         * only takes a lease on a 'queued' scan, so cancelling it here is enough. */
        if (casb_db_exec(db,
                         "UPDATE scans SET status = 'cancelled', finished_at = now(), "
                         "error = 'integration paused' "
                         "WHERE integration_id = $1::uuid AND status = 'queued'",
                         1, params, NULL, err, errlen) != 0)
            goto out;
        *changed = 1;
    }
    if (fetch_integration(db, account_id, id, out, err, errlen) != 0)
        goto out;
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        casb_db_rollback(db);
        json_decref(*out);
        *out = NULL;
        *changed = 0;
    }
    return rc;
}

int im_integrations_resume(casb_db *db, const char *account_id, const char *id, json_t **out,
                           int *changed, char *err, size_t errlen)
{
    const char *params[1] = {id};
    char scan_id[37];
    int paused = 0;
    int rc = -1;

    *out = NULL;
    *changed = 0;
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    rc = lock_integration(db, account_id, id, &paused, err, errlen);
    if (rc != 0)
        goto out;
    rc = -1;
    if (paused) {
        if (casb_db_exec(db,
                         "UPDATE integrations SET paused = false, "
                         "health = CASE WHEN last_scan_status = 'succeeded' THEN 'healthy' "
                         "ELSE 'initializing' END, health_reason = NULL, "
                         "next_scan_at = now() + make_interval(secs => scan_interval_s), "
                         "updated_at = now() WHERE id = $1::uuid",
                         1, params, NULL, err, errlen) != 0)
            goto out;
        if (enqueue_scan(db, id, "resume", scan_id, err, errlen) != 0)
            goto out;
        *changed = 1;
    }
    if (fetch_integration(db, account_id, id, out, err, errlen) != 0)
        goto out;
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        casb_db_rollback(db);
        json_decref(*out);
        *out = NULL;
        *changed = 0;
    }
    return rc;
}

int im_integrations_scan_now(casb_db *db, const char *account_id, const char *id,
                             json_t **out, int *created, char *err, size_t errlen)
{
    const char *params[1] = {id};
    PGresult *res = NULL;
    char scan_id[37];
    int paused = 0;
    int rc = -1;

    *out = NULL;
    *created = 0;
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    rc = lock_integration(db, account_id, id, &paused, err, errlen);
    if (rc != 0)
        goto out;
    if (paused) {
        rc = casb_fail(err, errlen, CASB_ECONFLICT, "integration is paused; resume it first");
        goto out;
    }
    rc = -1;
    /* The open scan can finish between the two statements (workers do not lock the
     * integration), so try again a few times rather than answer with nothing. */
    for (int attempt = 0; attempt < 3 && !*out; attempt++) {
        if (enqueue_scan(db, id, "manual", scan_id, err, errlen) != 0)
            goto out;
        if (scan_id[0]) {
            *created = 1;
            if (fetch_scan(db, scan_id, out, err, errlen) != 0)
                goto out;
            break;
        }
        PQclear(res);
        res = casb_db_query(db,
                            "SELECT " SCAN_COLUMNS " FROM scans WHERE integration_id = $1::uuid "
                            "AND status IN ('queued', 'running') "
                            "ORDER BY queued_at DESC LIMIT 1",
                            1, params, err, errlen);
        if (!res)
            goto out;
        if (PQntuples(res) == 1)
            *out = im_view_scan(res, 0);
    }
    if (!*out) {
        casb_fail(err, errlen, CASB_ERROR, "could not queue a scan");
        goto out;
    }
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        casb_db_rollback(db);
        json_decref(*out);
        *out = NULL;
        *created = 0;
    }
    PQclear(res);
    return rc;
}

int im_integrations_scans(casb_db *db, const char *account_id, const char *id,
                          const im_cursor *before, long limit, json_t **items,
                          char **next_cursor, char *err, size_t errlen)
{
    const char *check[2] = {id, account_id};
    char fetch[32];
    const char *params[5];
    PGresult *res = NULL;
    int rc = -1;

    *items = NULL;
    *next_cursor = NULL;
    res = casb_db_query(db,
                        "SELECT 1 FROM integrations WHERE id = $1::uuid AND account_id = $2::uuid",
                        2, check, err, errlen);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return CASB_ENOTFOUND;
    }
    PQclear(res);

    snprintf(fetch, sizeof(fetch), "%ld", limit + 1);
    params[0] = id;
    params[1] = account_id;
    params[2] = before ? before->at : NULL;
    params[3] = before ? before->id : NULL;
    params[4] = fetch;
    res = casb_db_query(db,
                        "SELECT " SCAN_COLUMNS " FROM scans "
                        "WHERE integration_id = $1::uuid AND account_id = $2::uuid "
                        "AND ($3::timestamptz IS NULL "
                        "OR (queued_at, id) < ($3::timestamptz, $4::uuid)) "
                        "ORDER BY queued_at DESC, id DESC LIMIT $5::integer",
                        5, params, err, errlen);
    if (!res)
        return -1;
    rc = page(res, limit, im_view_scan, items, next_cursor, err, errlen);
    PQclear(res);
    return rc;
}
