#include "sched_sweep.h"

#include <stdio.h>
#include <string.h>

#include "casb/log.h"

/* SKIP LOCKED: a worker renewing the lease right now, or another replica sweeping, wins. */
static const char abandon_sql[] =
    "WITH lost AS ("
    "  SELECT id FROM scans"
    "   WHERE status = 'running' AND lease_until < now() - make_interval(secs => $1::integer)"
    "   FOR UPDATE SKIP LOCKED) "
    "UPDATE scans s SET status = 'failed', finished_at = now(), lease_until = NULL,"
    "       error = 'worker lost: scan lease expired' "
    "  FROM lost WHERE s.id = lost.id "
    "RETURNING s.id::text AS scan_id, s.integration_id::text AS integration_id";

static const char requeue_sql[] =
    "SELECT casb_enqueue_scan(i.id, 'scheduled')::text AS scan_id FROM integrations i "
    " WHERE i.id = $1::uuid AND NOT i.paused";

int sched_sweep(casb_db *db, long stale_after_s, long retention_s, sched_sweep_result *out,
                char *err, size_t errlen)
{
    char stale_text[32];
    char retention_text[32];
    const char *params[1];
    PGresult *lost = NULL;
    PGresult *res = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    snprintf(stale_text, sizeof(stale_text), "%ld", stale_after_s);
    snprintf(retention_text, sizeof(retention_text), "%ld", retention_s);

    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    params[0] = stale_text;
    lost = casb_db_query(db, abandon_sql, 1, params, err, errlen);
    if (!lost)
        goto out;
    for (int i = 0; i < PQntuples(lost); i++) {
        params[0] = casb_db_get(lost, i, "integration_id");
        res = casb_db_query(db, requeue_sql, 1, params, err, errlen);
        if (!res)
            goto out;
        if (PQntuples(res) == 1 && casb_db_get(res, 0, "scan_id"))
            out->requeued++;
        PQclear(res);
        res = NULL;
    }
    params[0] = retention_text;
    if (casb_db_exec(db,
                     "DELETE FROM scan_outbox WHERE sent_at IS NOT NULL "
                     "AND sent_at < now() - make_interval(secs => $1::integer)",
                     1, params, &out->outbox_purged, err, errlen) != 0)
        goto out;
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    out->abandoned = PQntuples(lost);
    for (int i = 0; i < out->abandoned; i++)
        casb_log_warn("scan abandoned: worker lost", "scan_id", casb_db_get(lost, i, "scan_id"),
                      "integration_id", casb_db_get(lost, i, "integration_id"));
    rc = 0;
out:
    if (rc != 0) {
        casb_db_rollback(db);
        memset(out, 0, sizeof(*out));
    }
    PQclear(res);
    PQclear(lost);
    return rc;
}
