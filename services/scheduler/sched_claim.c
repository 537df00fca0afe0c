#include "sched_claim.h"

#include <stdio.h>
#include <string.h>

#include "casb/log.h"

/* casb_enqueue_scan runs once per claimed row, inside the same statement and so the same
 * transaction: a claim never moves next_scan_at without writing the job, and never writes a
 * job without moving next_scan_at. The function sees (and re-locks) the row this statement
 * has just updated. Jitter only ever adds, so no integration is scanned more often than its
 * interval. */
static const char claim_sql[] =
    "WITH due AS ("
    "  SELECT id FROM integrations"
    "   WHERE NOT paused AND next_scan_at <= now()"
    "   ORDER BY next_scan_at LIMIT $1::integer"
    "   FOR UPDATE SKIP LOCKED) "
    "UPDATE integrations i"
    "   SET next_scan_at = now() + make_interval(secs => i.scan_interval_s"
    "                                           * (1 + random() * $2::integer / 100.0))"
    "  FROM due WHERE i.id = due.id "
    "RETURNING i.id::text AS integration_id, i.account_id::text AS account_id,"
    "          casb_enqueue_scan(i.id, 'scheduled')::text AS scan_id";

int sched_claim_due(casb_db *db, long batch, long jitter_pct, sched_claim_result *out,
                    char *err, size_t errlen)
{
    char batch_text[32];
    char jitter_text[32];
    const char *params[2] = {batch_text, jitter_text};
    PGresult *res = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    snprintf(batch_text, sizeof(batch_text), "%ld", batch);
    snprintf(jitter_text, sizeof(jitter_text), "%ld", jitter_pct);
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    res = casb_db_query(db, claim_sql, 2, params, err, errlen);
    if (!res)
        goto out;
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    out->claimed = PQntuples(res);
    for (int i = 0; i < out->claimed; i++) {
        const char *scan_id = casb_db_get(res, i, "scan_id");

        if (scan_id) {
            out->enqueued++;
            casb_log_info("scan scheduled", "scan_id", scan_id, "integration_id",
                          casb_db_get(res, i, "integration_id"), "account_id",
                          casb_db_get(res, i, "account_id"));
        } else {
            casb_log_info("scan not scheduled: one is queued or running", "integration_id",
                          casb_db_get(res, i, "integration_id"), "account_id",
                          casb_db_get(res, i, "account_id"));
        }
    }
    rc = 0;
out:
    if (rc != 0) {
        casb_db_rollback(db);
        memset(out, 0, sizeof(*out));
    }
    PQclear(res);
    return rc;
}
