#include "sw_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"

int sw_store_take_lease(casb_db *db, const char *scan_id, const char *integration_id,
                        const char *worker_id, long lease_s, int *attempt, char *started_at,
                        size_t started_at_len, char *err, size_t errlen)
{
    char lease[24];
    PGresult *res = NULL;
    int rc = -1;

    *attempt = 0;
    snprintf(lease, sizeof(lease), "%ld", lease_s);
    const char *params[] = {scan_id, integration_id, worker_id, lease};
    res = casb_db_query(db,
                        "UPDATE scans SET status = 'running', worker_id = $3,"
                        "       started_at = coalesce(started_at, now()),"
                        "       attempt = attempt + 1, attempt_started_at = now(),"
                        "       lease_until = now() + make_interval(secs => $4::int)"
                        " WHERE id = $1 AND integration_id = $2"
                        "   AND (status = 'queued' OR (status = 'running' AND lease_until < now()))"
                        " RETURNING attempt,"
                        "           to_char(attempt_started_at AT TIME ZONE 'UTC',"
                        "                   'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS started_at",
                        4, params, err, errlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = 0;
        goto out;
    }
    *attempt = (int)casb_db_get_int(res, 0, "attempt", 0);
    snprintf(started_at, started_at_len, "%s", casb_db_get(res, 0, "started_at"));
    rc = 1;
out:
    PQclear(res);
    return rc;
}

int sw_store_renew_lease(casb_db *db, const char *scan_id, const char *worker_id, int attempt,
                         long lease_s, char *err, size_t errlen)
{
    char lease[24], attempt_s[16];
    long affected = 0;

    snprintf(lease, sizeof(lease), "%ld", lease_s);
    snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
    const char *params[] = {scan_id, worker_id, lease, attempt_s};
    if (casb_db_exec(db,
                     "UPDATE scans SET lease_until = now() + make_interval(secs => $3::int)"
                     " WHERE id = $1 AND worker_id = $2 AND attempt = $4::int"
                     "   AND status = 'running'",
                     4, params, &affected, err, errlen) != 0)
        return -1;
    return affected > 0 ? 1 : 0;
}

int sw_store_lease_held(casb_db *db, const char *scan_id, long *left_ms, char *err,
                        size_t errlen)
{
    const char *params[] = {scan_id};
    PGresult *res;
    int rc;

    *left_ms = 0;
    res = casb_db_query(db,
                        "SELECT ceil(extract(epoch FROM lease_until - now()) * 1000)::bigint"
                        "       AS left_ms FROM scans"
                        " WHERE id = $1 AND status = 'running' AND lease_until >= now()",
                        1, params, err, errlen);
    if (!res)
        return -1;
    rc = PQntuples(res) > 0 ? 1 : 0;
    if (rc)
        *left_ms = casb_db_get_int(res, 0, "left_ms", 0);
    PQclear(res);
    return rc;
}

int sw_store_scan_exists(casb_db *db, const char *scan_id, char *err, size_t errlen)
{
    const char *params[] = {scan_id};
    PGresult *res;
    int rc;

    res = casb_db_query(db, "SELECT 1 FROM scans WHERE id = $1", 1, params, err, errlen);
    if (!res)
        return -1;
    rc = PQntuples(res) > 0 ? 1 : 0;
    PQclear(res);
    return rc;
}

int sw_store_release_lease(casb_db *db, const char *scan_id, const char *worker_id, int attempt,
                           char *err, size_t errlen)
{
    char attempt_s[16];

    snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
    const char *params[] = {scan_id, worker_id, attempt_s};
    return casb_db_exec(db,
                        "UPDATE scans SET lease_until = now() - interval '1 second'"
                        " WHERE id = $1 AND worker_id = $2 AND attempt = $3::int"
                        "   AND status = 'running'",
                        3, params, NULL, err, errlen);
}


/* A CTE named async that turns synchronous_commit off for the statement's own (implicit)
 * transaction; the statement must read from it so that it is evaluated. */
#define ASYNC_COMMIT "async AS (SELECT set_config('synchronous_commit', 'off', true))"

/* A copy of a column's value, or NULL for SQL NULL; *ok is cleared when out of memory. */
static char *dup_column(const PGresult *res, const char *column, int *ok)
{
    const char *v = casb_db_get(res, 0, column);
    char *copy;

    if (!v)
        return NULL;
    copy = strdup(v);
    if (!copy)
        *ok = 0;
    return copy;
}

int sw_store_page_get(casb_db *db, const char *integration_id, const char *url, char **etag,
                      char **body, size_t *body_len, char **next_url, char *err, size_t errlen)
{
    const char *params[] = {integration_id, url};
    PGresult *res = NULL;
    int ok = 1, rc = -1;

    *etag = NULL;
    *body = NULL;
    *body_len = 0;
    *next_url = NULL;
    if (strlen(url) > SW_PAGE_CACHE_MAX_URL)
        return 0;
    /* Marking the entry used in the same round trip lets a completed scan prune the rest.
     * Cache writes commit without waiting for the WAL flush (ASYNC_COMMIT): one per request
     * would otherwise wait for a disk flush each, and an entry lost in a crash only costs
     * one unconditional request. */
    res = casb_db_query(db,
                        "WITH " ASYNC_COMMIT " UPDATE provider_page_cache SET used_at = now()"
                        " FROM async WHERE integration_id = $1 AND url = $2"
                        " RETURNING etag, body, next_url",
                        2, params, err, errlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = 0;
        goto out;
    }
    *etag = dup_column(res, "etag", &ok);
    *body = dup_column(res, "body", &ok);
    *next_url = dup_column(res, "next_url", &ok);
    if (!ok || !*etag || !*body) {
        free(*etag);
        free(*body);
        free(*next_url);
        *etag = *body = *next_url = NULL;
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    *body_len = strlen(*body);
    rc = 1;
out:
    PQclear(res);
    return rc;
}

int sw_store_page_put(casb_db *db, const char *integration_id, const char *url, const char *etag,
                      const char *body, const char *next_url, char *err, size_t errlen)
{
    const char *params[] = {integration_id, url, etag, body, next_url};

    if (strlen(url) > SW_PAGE_CACHE_MAX_URL)
        return 0;
    return casb_db_exec(db,
                        "WITH " ASYNC_COMMIT " INSERT INTO provider_page_cache"
                        " (integration_id, url, etag, body, next_url, used_at)"
                        " SELECT $1::uuid, $2::text, $3::text, $4::text, $5::text, now()"
                        " FROM async"
                        " ON CONFLICT (integration_id, url) DO UPDATE"
                        " SET etag = excluded.etag, body = excluded.body,"
                        "     next_url = excluded.next_url, used_at = now()",
                        5, params, NULL, err, errlen);
}

int sw_store_page_prune(casb_db *db, const char *integration_id, const char *since,
                        long *deleted, char *err, size_t errlen)
{
    const char *params[] = {integration_id, since};

    return casb_db_exec(db,
                        "DELETE FROM provider_page_cache"
                        " WHERE integration_id = $1 AND used_at < $2::timestamptz",
                        2, params, deleted, err, errlen);
}
