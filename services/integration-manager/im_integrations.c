#include "im_integrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "im_audit.h"
#include "im_views.h"

#define TS(col) IM_SQL_TS(col)
#define TS_US(col) IM_SQL_TS_US(col)

/* The most recent finished scan of the row in hand, as a JSON text (im_view_integration's
 * last_scan). Cancelled scans never ran to an outcome, so they are not "the last scan". */
#define LAST_SCAN_COLUMN                                                                     \
    "(SELECT json_build_object('id', s.id, 'status', s.status, 'reason', s.reason, "        \
    "'finished_at', " TS("s.finished_at") ", 'error', s.error)::text FROM scans s "         \
    "WHERE s.integration_id = integrations.id AND s.status IN ('succeeded', 'failed') "     \
    "ORDER BY s.finished_at DESC NULLS LAST, s.queued_at DESC LIMIT 1) AS last_scan"

/* What im_view_integration reads. credentials_* are deliberately absent. */
#define INTEGRATION_COLUMNS                                                                  \
    "id::text AS id, provider, name, config::text AS config, health, health_reason, "       \
    "paused, scan_interval_s, " TS("last_scan_at") " AS last_scan_at, last_scan_status, "   \
    LAST_SCAN_COLUMN ", "                                                                    \
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

/* It asks for one row more than the page: when that row comes, another page exists, whose
 * cursor is the last returned row's key. */
int im_query_page(casb_db *db, const char *sql, int n, const char **params, const im_page *page,
                  json_t *(*view)(const PGresult *, int), json_t **items, char **next_cursor,
                  char *err, size_t errlen)
{
    char fetch[32];
    PGresult *res = NULL;
    int rows;
    int shown;
    int rc = -1;

    *items = NULL;
    *next_cursor = NULL;
    snprintf(fetch, sizeof(fetch), "%ld", page->limit + 1);
    params[n - 1] = fetch;
    res = casb_db_query(db, sql, n, params, err, errlen);
    if (!res)
        return -1;
    rows = PQntuples(res);
    shown = rows > page->limit ? (int)page->limit : rows;
    *items = json_array();
    for (int i = 0; i < shown; i++)
        json_array_append_new(*items, view(res, i));
    if (rows > page->limit && shown > 0) {
        *next_cursor = im_cursor_encode(casb_db_get(res, shown - 1, "cursor_at"),
                                        casb_db_get(res, shown - 1, "id"));
        if (!*next_cursor) {
            casb_fail(err, errlen, CASB_ERROR, "cannot encode page cursor");
            json_decref(*items);
            *items = NULL;
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    return rc;
}

/* Whether the account has the integration, and whether it is paused. With lock, the row
 * stays locked for the rest of the transaction: pause, resume and scan requests on one
 * integration then run one after the other, and the scheduler's SKIP LOCKED claim passes
 * over it meanwhile. */
static int find_integration(casb_db *db, const char *account_id, const char *id, int lock,
                            int *paused, char *err, size_t errlen)
{
    static const char plain[] = "SELECT paused FROM integrations "
                                "WHERE id = $1::uuid AND account_id = $2::uuid";
    static const char locked[] = "SELECT paused FROM integrations "
                                 "WHERE id = $1::uuid AND account_id = $2::uuid FOR UPDATE";
    const char *params[2] = {id, account_id};
    PGresult *res = NULL;
    int rc = -1;

    res = casb_db_query(db, lock ? locked : plain, 2, params, err, errlen);
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

/* Opens the transaction of an action (pause, resume, scan now), locks the integration and
 * clears the action's outputs. On failure nothing is left open. */
static int begin_action(casb_db *db, const char *account_id, const char *id, int *paused,
                        json_t **out, int *changed, char *err, size_t errlen)
{
    int rc;

    *out = NULL;
    *changed = 0;
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    rc = find_integration(db, account_id, id, 1, paused, err, errlen);
    if (rc != 0)
        casb_db_rollback(db);
    return rc;
}

/* Ends a transaction: commits when rc is 0, else rolls back. Returns rc, or -1 when the
 * commit failed. */
static int end_transaction(casb_db *db, int rc, char *err, size_t errlen)
{
    if (rc == 0 && casb_db_commit(db, err, errlen) != 0)
        rc = -1;
    if (rc != 0)
        casb_db_rollback(db);
    return rc;
}

/* Ends the transaction of an action; on failure drops what the action prepared. */
static int finish_action(casb_db *db, int rc, json_t **out, int *changed, char *err,
                         size_t errlen)
{
    rc = end_transaction(db, rc, err, errlen);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
        *changed = 0;
    }
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

int im_integrations_create(casb_db *db, const im_integration_new *in, const im_audit_note *note,
                           json_t **out, char first_scan_id[37], char *err, size_t errlen)
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
    if (im_audit_write_note(db, note, in->id,
                            json_pack("{s:s, s:s?}", "provider", in->provider, "scan_id",
                                      first_scan_id[0] ? first_scan_id : NULL),
                            err, errlen) != 0)
        goto out;
    rc = 0;
out:
    rc = end_transaction(db, rc, err, errlen);
    if (rc == 0)
        *out = im_view_integration(res, 0);
    PQclear(res);
    return rc;
}

int im_integrations_get(casb_db *db, const char *account_id, const char *id, json_t **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    return fetch_integration(db, account_id, id, out, err, errlen);
}

int im_integrations_list(casb_db *db, const char *account_id, const im_page *page,
                         const im_integration_filter *filter, json_t **items,
                         char **next_cursor, char *err, size_t errlen)
{
    const char *params[6];

    params[0] = account_id;
    params[1] = page->has_cursor ? page->cursor.at : NULL;
    params[2] = page->has_cursor ? page->cursor.id : NULL;
    params[3] = filter ? filter->health : NULL;
    params[4] = filter ? filter->provider : NULL;
    return im_query_page(db,
                      "SELECT " INTEGRATION_COLUMNS " FROM integrations "
                      "WHERE account_id = $1::uuid AND ($2::timestamptz IS NULL "
                      "OR (created_at, id) > ($2::timestamptz, $3::uuid)) "
                      "AND ($4::text IS NULL OR health = $4) "
                      "AND ($5::text IS NULL OR provider = $5) "
                      "ORDER BY created_at, id LIMIT $6::integer",
                      6, params, page, im_view_integration, items, next_cursor, err, errlen);
}

int im_integrations_delete(casb_db *db, const char *account_id, const char *id,
                           const im_audit_note *note, char *provider, size_t providerlen,
                           char *err, size_t errlen)
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
    if (im_audit_write_note(db, note, id, json_pack("{s:b}", "existed", 1), err, errlen) != 0)
        goto out;
    rc = 0;
out:
    rc = end_transaction(db, rc, err, errlen);
    PQclear(res);
    return rc;
}

/* The state change of pause (paused = 1) or resume (0), made only when the integration is
 * in the other state. */
static int set_paused(casb_db *db, const char *account_id, const char *id, int paused,
                      const im_audit_note *note, json_t **out, int *changed, char *err,
                      size_t errlen)
{
    const char *params[1] = {id};
    char scan_id[37];
    int was_paused = 0;
    int rc;

    rc = begin_action(db, account_id, id, &was_paused, out, changed, err, errlen);
    if (rc != 0)
        return rc;
    rc = -1;
    if (paused && !was_paused) {
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
    } else if (!paused && was_paused) {
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
    if (im_audit_write_note(db, note, id, json_pack("{s:b}", "state_changed", *changed), err,
                            errlen) != 0)
        goto out;
    rc = fetch_integration(db, account_id, id, out, err, errlen);
out:
    return finish_action(db, rc, out, changed, err, errlen);
}

int im_integrations_pause(casb_db *db, const char *account_id, const char *id,
                          const im_audit_note *note, json_t **out, int *changed, char *err,
                          size_t errlen)
{
    return set_paused(db, account_id, id, 1, note, out, changed, err, errlen);
}

int im_integrations_resume(casb_db *db, const char *account_id, const char *id,
                           const im_audit_note *note, json_t **out, int *changed, char *err,
                           size_t errlen)
{
    return set_paused(db, account_id, id, 0, note, out, changed, err, errlen);
}

int im_integrations_scan_now(casb_db *db, const char *account_id, const char *id,
                             const im_audit_note *note, json_t **out, int *created, char *err,
                             size_t errlen)
{
    const char *params[1] = {id};
    PGresult *res = NULL;
    char scan_id[37];
    int paused = 0;
    int rc;

    rc = begin_action(db, account_id, id, &paused, out, created, err, errlen);
    if (rc != 0)
        return rc;
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
    if (im_audit_write_note(db, note, id,
                            json_pack("{s:O?, s:b}", "scan_id", json_object_get(*out, "id"),
                                      "created", *created),
                            err, errlen) != 0)
        goto out;
    rc = 0;
out:
    PQclear(res);
    return finish_action(db, rc, out, created, err, errlen);
}

int im_integrations_scans(casb_db *db, const char *account_id, const char *id,
                          const im_page *page, json_t **items, char **next_cursor, char *err,
                          size_t errlen)
{
    const char *params[5];
    int paused = 0;
    int rc;

    *items = NULL;
    *next_cursor = NULL;
    /* An unknown integration answers 404, not an empty list that would hide a typo. */
    rc = find_integration(db, account_id, id, 0, &paused, err, errlen);
    if (rc != 0)
        return rc;
    params[0] = id;
    params[1] = account_id;
    params[2] = page->has_cursor ? page->cursor.at : NULL;
    params[3] = page->has_cursor ? page->cursor.id : NULL;
    return im_query_page(db,
                      "SELECT " SCAN_COLUMNS " FROM scans "
                      "WHERE integration_id = $1::uuid AND account_id = $2::uuid "
                      "AND ($3::timestamptz IS NULL "
                      "OR (queued_at, id) < ($3::timestamptz, $4::uuid)) "
                      "ORDER BY queued_at DESC, id DESC LIMIT $5::integer",
                      5, params, page, im_view_scan, items, next_cursor, err, errlen);
}

int im_integrations_update(casb_db *db, const im_integration_change *ch,
                           const im_audit_note *note, json_t **out, char scan_id[37], char *err,
                           size_t errlen)
{
    const char *params[8];
    char interval[32];
    int paused = 0;
    int rc;

    *out = NULL;
    scan_id[0] = '\0';
    snprintf(interval, sizeof(interval), "%ld", ch->scan_interval_s);
    params[0] = ch->id;
    params[1] = ch->account_id;
    params[2] = ch->name;
    params[3] = ch->scan_interval_s > 0 ? interval : NULL;
    params[4] = ch->config_json;
    params[5] = ch->credentials_sealed;
    params[6] = ch->credentials_sealed ? ch->credentials_key_id : NULL;
    params[7] = ch->reauthorize ? "t" : "f";

    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    rc = find_integration(db, ch->account_id, ch->id, 1, &paused, err, errlen);
    if (rc != 0)
        goto out;
    rc = -1;
    /* A new interval counts from the last scan, so that shortening it brings the next scan
     * forward at once; never into the past, which would only mean "due now". Reauthorizing
     * starts health afresh: the scan queued below decides it. */
    if (casb_db_exec(db,
                     "UPDATE integrations SET name = coalesce($3, name), "
                     "scan_interval_s = coalesce($4::integer, scan_interval_s), "
                     "next_scan_at = CASE WHEN $4::integer IS NULL THEN next_scan_at "
                     "ELSE greatest(now(), coalesce(last_scan_at, now()) "
                     "+ make_interval(secs => $4::integer)) END, "
                     "config = coalesce($5::jsonb, config), "
                     "credentials_sealed = coalesce($6, credentials_sealed), "
                     "credentials_key_id = coalesce($7, credentials_key_id), "
                     "health = CASE WHEN $8::boolean AND NOT paused THEN 'initializing' "
                     "ELSE health END, "
                     "health_reason = CASE WHEN $8::boolean AND NOT paused THEN NULL "
                     "ELSE health_reason END, "
                     "updated_at = now() "
                     "WHERE id = $1::uuid AND account_id = $2::uuid",
                     8, params, NULL, err, errlen) != 0)
        goto out;
    if (ch->reauthorize && !paused &&
        enqueue_scan(db, ch->id, "manual", scan_id, err, errlen) != 0)
        goto out;
    if (im_audit_write_note(db, note, ch->id,
                            json_pack("{s:s?}", "scan_id", scan_id[0] ? scan_id : NULL), err,
                            errlen) != 0)
        goto out;
    rc = fetch_integration(db, ch->account_id, ch->id, out, err, errlen);
out:
    rc = end_transaction(db, rc, err, errlen);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
        scan_id[0] = '\0';
    }
    return rc;
}
