#include "fa_ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/timeutil.h"
#include "fa_store.h"

#define FA_GROUP_ID "casb-findings-api"
#define FA_DB_CONNECT_TIMEOUT_MS 60000
/* A completed message whose earlier messages are missing is retried this many times, a
 * second apart, before the scan is failed: on one partition the earlier messages precede
 * it, so they are missing for good only when they were dead-lettered. */
#define FA_INCOMPLETE_TRIES 3
/* A database error that is not transient (bad data the validation missed) gets this many
 * attempts before the message is dead-lettered. */
#define FA_PERMANENT_ERROR_TRIES 3
#define FA_MAX_BACKOFF_MS 5000

static casb_metric *m_applied[4];
static casb_metric *m_duplicates;
static casb_metric *m_batched;
static casb_metric *m_superseded;
static casb_metric *m_dropped;
static casb_metric *m_dead_lettered;
static casb_metric *m_instances;
static casb_metric *m_resolved;
static casb_metric *m_db_errors;

void fa_ingest_metrics_init(void)
{
    static const char *const kinds[] = {"kind=\"findings\"", "kind=\"progress\"",
                                        "kind=\"completed\"", "kind=\"failed\""};

    for (int i = 0; i < 4; i++)
        m_applied[i] = casb_metrics_counter("casb_ingest_messages_total",
                                            "Result messages applied, by kind.", kinds[i]);
    m_duplicates = casb_metrics_counter("casb_ingest_duplicates_total",
                                        "Result messages skipped as already applied.", NULL);
    m_batched = casb_metrics_counter(
        "casb_ingest_batched_messages_total",
        "Findings messages applied in one transaction with others of their scan attempt.",
        NULL);
    m_superseded = casb_metrics_counter(
        "casb_ingest_superseded_total",
        "Completed/failed messages of a scan attempt that another worker took over.", NULL);
    m_dropped = casb_metrics_counter("casb_ingest_dropped_total",
                                     "Result messages dropped without effect, by reason.",
                                     "reason=\"integration_deleted\"");
    m_dead_lettered = casb_metrics_counter("casb_ingest_dead_lettered_total",
                                           "Result messages sent to casb.scan.results.dlq.", NULL);
    m_instances = casb_metrics_counter("casb_ingest_instances_total",
                                       "Finding instance sightings applied.", NULL);
    m_resolved = casb_metrics_counter("casb_ingest_resolved_instances_total",
                                      "Instances resolved by completed scans.", NULL);
    m_db_errors = casb_metrics_counter("casb_ingest_db_errors_total",
                                       "Failed ingest transactions (retried).", NULL);
}

static void metric_add(casb_metric *m, double v)
{
    if (m)
        casb_metric_add(m, v);
}

/* ---- SQL ---- */

static const char SQL_LOCK_SCAN[] =
    "SELECT s.status, s.attempt, i.provider"
    "  FROM scans s JOIN integrations i ON i.id = s.integration_id"
    " WHERE s.id = $1 AND s.integration_id = $2 AND s.account_id = $3"
    " FOR UPDATE OF s";

static const char SQL_INTEGRATION_EXISTS[] =
    "SELECT 1 FROM integrations WHERE id = $1 AND account_id = $2";

static const char SQL_RECORD_BATCH[] =
    "INSERT INTO ingested_batches (scan_id, attempt, seq, kind, instances)"
    " VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT DO NOTHING";

/* The messages of one attempt before its completed: another attempt's count for nothing. */
static const char SQL_EARLIER_BATCHES[] =
    "SELECT count(*) AS n FROM ingested_batches"
    " WHERE scan_id = $1 AND attempt = $2 AND seq < $3";

/* Findings rows first: the instances refer to them. Severity follows the catalogue unless a
 * user tuned it. A finding is written once per scan, by the first message that sees it
 * ($4: the scan's start), not by every message: each write leaves a dead row version (and
 * one in each of its indexes) that every later foreign-key check from the instances has to
 * step over, which made a large first scan's ingest slow down as it went. */
static const char SQL_UPSERT_FINDINGS[] =
    "INSERT INTO findings (id, account_id, integration_id, finding_type, severity,"
    "                      first_seen_at, last_seen_at)"
    " SELECT gen_random_uuid(), $2, $3, r.finding_type, r.severity, now(), now()"
    "   FROM jsonb_to_recordset($1::jsonb) AS r(finding_type text, severity text)"
    " ON CONFLICT (integration_id, finding_type) DO UPDATE"
    "    SET last_seen_at = greatest(findings.last_seen_at, excluded.last_seen_at),"
    "        severity = CASE WHEN findings.severity_tuned THEN findings.severity"
    "                        ELSE excluded.severity END"
    "  WHERE findings.last_seen_at < $4::timestamptz"
    "     OR (NOT findings.severity_tuned AND findings.severity <> excluded.severity)";

/* All instances of one message in one statement. A resolved instance seen again reopens; a
 * hidden one stays hidden. A sighting older than the instance's last one (a late message of
 * an earlier scan) changes nothing. DISTINCT ON keeps the last sighting of an asset repeated
 * within the message, which ON CONFLICT could not update twice. New and reopened instances
 * leave their event on the timeline, and a delivery for each webhook whose filters match it
 * (not for a finding someone ignored); n is how many instances the message upserted. The
 * webhooks are locked FOR KEY SHARE: one deleted meanwhile is skipped, one being deleted
 * waits for this transaction, so a delivery never names a webhook that is gone. The new and
 * reopened instances are exactly the ones that became active, so each finding's
 * instance_count grows by theirs: recounting the findings' instances for every message made
 * ingest quadratic in a scan's instances (the ingest benchmark: 200,000 instances). The
 * completed message recounts every finding of the integration (SQL_RECOUNT). The rows are
 * read as json, not jsonb: the details are stored as their text (migration 0014). */
static const char SQL_UPSERT_INSTANCES[] =
    "WITH up AS ("
    "INSERT INTO finding_instances AS fi (id, finding_id, integration_id, asset_kind, asset_id,"
    "       asset_name, asset_url, details, state, first_seen_at, last_seen_at, last_scan_id,"
    "       last_scan_started_at, last_transition)"
    " SELECT gen_random_uuid(), f.id, f.integration_id, r.asset_kind, r.asset_id, r.asset_name,"
    "        r.asset_url, coalesce(r.details, '{}'::json), 'active', now(), now(), $3,"
    "        $4::timestamptz, 'detected'"
    "   FROM (SELECT DISTINCT ON (x.finding_type, x.asset_id) x.*"
    "           FROM json_to_recordset($1::json) AS x(seq int, ord int, finding_type text,"
    "                asset_kind text, asset_id text, asset_name text, asset_url text,"
    "                details json)"
    "          ORDER BY x.finding_type, x.asset_id, x.seq DESC, x.ord DESC) r"
    "   JOIN findings f ON f.integration_id = $2 AND f.finding_type = r.finding_type"
    " ON CONFLICT (finding_id, asset_id) DO UPDATE"
    "    SET asset_kind = excluded.asset_kind, asset_name = excluded.asset_name,"
    "        asset_url = excluded.asset_url, details = excluded.details,"
    "        last_seen_at = excluded.last_seen_at, last_scan_id = excluded.last_scan_id,"
    "        last_scan_started_at = excluded.last_scan_started_at,"
    "        state = CASE WHEN fi.state = 'resolved' THEN 'active' ELSE fi.state END,"
    "        resolved_at = CASE WHEN fi.state = 'resolved' THEN NULL ELSE fi.resolved_at END,"
    "        last_transition = CASE WHEN fi.state = 'resolved' THEN 'reopened' END"
    "  WHERE excluded.last_scan_started_at >= fi.last_scan_started_at"
    " RETURNING fi.id, fi.finding_id, fi.last_transition),"
    " ev AS (INSERT INTO finding_events (account_id, finding_id, instance_id, event, scan_id)"
    "        SELECT $5::uuid, up.finding_id, up.id, up.last_transition, $3::uuid FROM up"
    "         WHERE up.last_transition IS NOT NULL"
    "        RETURNING id, finding_id, instance_id, event),"
    " hooks AS (SELECT id, finding_types, severities, integration_ids FROM webhooks"
    "            WHERE account_id = $5::uuid AND enabled FOR KEY SHARE),"
    " wh AS (INSERT INTO webhook_deliveries (id, webhook_id, account_id, event_type, event_id,"
    "                                        finding_id, instance_id)"
    "        SELECT gen_random_uuid(), w.id, $5::uuid, 'instance.' || ev.event, ev.id,"
    "               ev.finding_id, ev.instance_id"
    "          FROM ev JOIN findings f ON f.id = ev.finding_id CROSS JOIN hooks w"
    "         WHERE f.status = 'active'"
    "           AND (w.finding_types = '{}' OR f.finding_type = ANY (w.finding_types))"
    "           AND (w.severities = '{}' OR f.severity = ANY (w.severities))"
    "           AND (w.integration_ids = '{}' OR f.integration_id = ANY (w.integration_ids))),"
    " cnt AS (UPDATE findings f SET instance_count = f.instance_count + d.n"
    "           FROM (SELECT finding_id, count(*) AS n FROM up"
    "                  WHERE up.last_transition IS NOT NULL GROUP BY finding_id) d"
    "          WHERE f.id = d.finding_id)"
    " SELECT count(*) AS n FROM up";

/* instance_count = active instances, for every finding of the integration: once per scan,
 * after the resolve. */
static const char SQL_RECOUNT[] =
    "UPDATE findings f SET instance_count = c.n"
    "  FROM (SELECT f2.id, (SELECT count(*) FROM finding_instances i"
    "                        WHERE i.finding_id = f2.id AND i.state = 'active') AS n"
    "          FROM findings f2"
    "         WHERE f2.integration_id = $1) c"
    " WHERE f.id = c.id AND f.instance_count <> c.n";

/* Instances of the checks that ran in this scan and were not seen by it, each with its
 * event on the timeline. */
static const char SQL_RESOLVE[] =
    "WITH r AS ("
    "UPDATE finding_instances i SET state = 'resolved', resolved_at = now(),"
    "       last_transition = NULL"
    "  FROM findings f"
    " WHERE i.finding_id = f.id AND f.integration_id = $1"
    "   AND f.finding_type IN (SELECT jsonb_array_elements_text($2::jsonb))"
    "   AND i.state = 'active' AND i.last_scan_started_at < $3::timestamptz"
    " RETURNING i.id, i.finding_id)"
    " INSERT INTO finding_events (account_id, finding_id, instance_id, event, scan_id)"
    " SELECT $4::uuid, r.finding_id, r.id, 'resolved', $5::uuid FROM r";

/* Today's counts of the integration for the trend, as this completed scan leaves them. */
static const char SQL_DAILY_COUNTS[] = FA_SQL_DAILY_COUNTS("SELECT $1::uuid");

static const char SQL_SCAN_SUCCEEDED[] =
    "UPDATE scans SET status = 'succeeded', finished_at = now(), stats = $2::jsonb,"
    "       coverage = $3::jsonb, error = NULL, lease_until = NULL"
    " WHERE id = $1 AND status IN ('queued', 'running')";

static const char SQL_INTEGRATION_SUCCEEDED[] =
    "UPDATE integrations SET last_scan_at = now(), last_scan_status = 'succeeded',"
    "       health = CASE WHEN paused THEN 'paused' ELSE 'healthy' END, health_reason = NULL"
    " WHERE id = $1";

/* $2: failed | cancelled. */
static const char SQL_SCAN_FAILED[] =
    "UPDATE scans SET status = $2, finished_at = now(), error = $3,"
    "       stats = coalesce($4::jsonb, stats), lease_until = NULL"
    " WHERE id = $1 AND status IN ('queued', 'running')";

/* A cancelled scan (the integration was paused) says nothing about the integration's
 * health; an authentication failure asks for new credentials. $4 is the health reason: the
 * scan's error with what the user can do about it (fa_ingest_health_reason). */
static const char SQL_INTEGRATION_FAILED[] =
    "UPDATE integrations SET last_scan_at = now(), last_scan_status = $2,"
    "       health = CASE WHEN paused THEN 'paused'"
    "                     WHEN $2 = 'cancelled' THEN health"
    "                     WHEN $3 = 'auth' THEN 'needs_reauthorization'"
    "                     ELSE 'unhealthy' END,"
    "       health_reason = CASE WHEN $2 = 'cancelled' THEN health_reason ELSE $4 END"
    " WHERE id = $1";

static const char SQL_SCAN_PROGRESS[] =
    "UPDATE scans SET stats = $2::jsonb WHERE id = $1 AND status = 'running'";

/* ---- apply ---- */

/* Serializes v (borrowed; NULL gives NULL, i.e. SQL NULL). */
static char *dump_or_null(const json_t *v)
{
    return v ? casb_json_dump(v) : NULL;
}

typedef struct {
    int finished; /* the scan already has its outcome */
    int attempt;  /* scans.attempt: the attempt whose lease is current (0: never leased) */
} scan_state;

/* Locks the scan row and checks the message against it. Returns APPLIED to go on. */
static fa_apply_result lock_scan(casb_db *db, const fa_result_msg *m, scan_state *st,
                                 char *reason, size_t reasonlen)
{
    const char *p3[] = {m->scan_id, m->integration_id, m->account_id};
    const char *p2[] = {m->integration_id, m->account_id};
    PGresult *res = NULL;
    fa_apply_result r = FA_APPLY_ERROR;
    const char *status;

    res = casb_db_query(db, SQL_LOCK_SCAN, 3, p3, reason, reasonlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        PQclear(res);
        res = casb_db_query(db, SQL_INTEGRATION_EXISTS, 2, p2, reason, reasonlen);
        if (!res)
            goto out;
        if (PQntuples(res) == 0) {
            r = FA_APPLY_DROPPED;
            goto out;
        }
        casb_fail(reason, reasonlen, CASB_EINVALID, "unknown scan for this integration");
        r = FA_APPLY_REJECTED;
        goto out;
    }
    if (strcmp(casb_db_get(res, 0, "provider"), m->provider) != 0) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "provider does not match the integration");
        r = FA_APPLY_REJECTED;
        goto out;
    }
    status = casb_db_get(res, 0, "status");
    st->finished = strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
    st->attempt = (int)casb_db_get_int(res, 0, "attempt", 0);
    r = FA_APPLY_APPLIED;
out:
    PQclear(res);
    return r;
}

/* Records (scan, attempt, seq); a conflict means the message was applied before. */
static fa_apply_result record_batch(casb_db *db, const fa_result_msg *m, long instances,
                                    char *reason, size_t reasonlen)
{
    char attempt_s[16], seq_s[16], n_s[24];
    long affected = 0;

    snprintf(attempt_s, sizeof(attempt_s), "%d", m->attempt);
    snprintf(seq_s, sizeof(seq_s), "%d", m->seq);
    snprintf(n_s, sizeof(n_s), "%ld", instances);
    const char *params[] = {m->scan_id, attempt_s, seq_s, m->kind_name, n_s};
    if (casb_db_exec(db, SQL_RECORD_BATCH, 5, params, &affected, reason, reasonlen) != 0)
        return FA_APPLY_ERROR;
    return affected == 0 ? FA_APPLY_DUPLICATE : FA_APPLY_APPLIED;
}

/* Upserts the findings and instances of the findings messages ms (one scan attempt's, in
 * the order sent) in the caller's transaction. */
static fa_apply_result apply_findings(casb_db *db, const fa_result_msg *const *ms, size_t n,
                                      char *reason, size_t reasonlen)
{
    const fa_result_msg *m = ms[0];
    casb_text types = {0}, rows = {0};
    fa_apply_result r = FA_APPLY_ERROR;
    PGresult *res = NULL;
    long affected = 0;
    size_t total = 0;

    for (size_t k = 0; k < n; k++)
        total += json_array_size(ms[k]->findings);
    if (total == 0)
        return FA_APPLY_APPLIED;
    /* The messages' rows were made when they were parsed: this only joins them. */
    if (fa_message_type_rows(ms, n, &types) != 0 || fa_message_instance_rows(ms, n, &rows) != 0) {
        casb_fail(reason, reasonlen, CASB_ERROR, "out of memory");
        goto out;
    }
    const char *pf[] = {types.data, m->account_id, m->integration_id, m->scan_started_at};
    if (casb_db_exec(db, SQL_UPSERT_FINDINGS, 4, pf, NULL, reason, reasonlen) != 0)
        goto out;
    const char *pi[] = {rows.data, m->integration_id, m->scan_id, m->scan_started_at,
                        m->account_id};
    res = casb_db_query(db, SQL_UPSERT_INSTANCES, 5, pi, reason, reasonlen);
    if (!res)
        goto out;
    affected = (long)casb_db_get_int(res, 0, "n", 0);
    metric_add(m_instances, (double)affected);
    r = FA_APPLY_APPLIED;
out:
    PQclear(res);
    casb_text_free(&types);
    casb_text_free(&rows);
    return r;
}

static fa_apply_result apply_completed(casb_db *db, const fa_result_msg *m, long *resolved,
                                       char *reason, size_t reasonlen)
{
    char *ran_s = dump_or_null(json_object_get(m->coverage, "ran"));
    char *stats_s = dump_or_null(m->stats);
    char *coverage_s = dump_or_null(m->coverage);
    fa_apply_result r = FA_APPLY_ERROR;

    *resolved = 0;
    if (!ran_s || !coverage_s || (m->stats && !stats_s)) {
        casb_fail(reason, reasonlen, CASB_ERROR, "out of memory");
        goto out;
    }
    const char *pr[] = {m->integration_id, ran_s, m->scan_started_at, m->account_id,
                        m->scan_id};
    if (casb_db_exec(db, SQL_RESOLVE, 5, pr, resolved, reason, reasonlen) != 0)
        goto out;
    const char *pc[] = {m->integration_id};
    if (casb_db_exec(db, SQL_RECOUNT, 1, pc, NULL, reason, reasonlen) != 0)
        goto out;
    const char *pd[] = {m->integration_id};
    if (casb_db_exec(db, SQL_DAILY_COUNTS, 1, pd, NULL, reason, reasonlen) != 0)
        goto out;
    const char *ps[] = {m->scan_id, stats_s, coverage_s};
    if (casb_db_exec(db, SQL_SCAN_SUCCEEDED, 3, ps, NULL, reason, reasonlen) != 0)
        goto out;
    const char *pi[] = {m->integration_id};
    if (casb_db_exec(db, SQL_INTEGRATION_SUCCEEDED, 1, pi, NULL, reason, reasonlen) != 0)
        goto out;
    r = FA_APPLY_APPLIED;
out:
    free(ran_s);
    free(stats_s);
    free(coverage_s);
    return r;
}

void fa_ingest_health_reason(char *out, size_t outlen, const char *integration_id,
                             const char *scan_id, const char *error_kind, const char *error)
{
    const char *e = error && error[0] ? error : "the scan failed";

    if (strcmp(error_kind, "auth") == 0) {
        snprintf(out, outlen,
                 "%s; reauthorize the integration (POST /v1/integrations/%s/reauthorize) with "
                 "valid credentials that hold the permissions GET /v1/providers lists",
                 e, integration_id);
    } else if (strcmp(error_kind, "unavailable") == 0) {
        snprintf(out, outlen,
                 "%s; the scan will be retried at the next interval, or start one with "
                 "scan-now once the provider answers again",
                 e);
    } else if (strcmp(error_kind, "internal") == 0) {
        snprintf(out, outlen,
                 "%s; the scan will be retried at the next interval; if it keeps failing, "
                 "look for scan_id %s in the scanner-worker log",
                 e, scan_id);
    } else {
        snprintf(out, outlen, "%s", e);
    }
}

static fa_apply_result apply_failed(casb_db *db, const fa_result_msg *m, const char *error,
                                    const char *error_kind, char *reason, size_t reasonlen)
{
    const char *status = strcmp(error_kind, "cancelled") == 0 ? "cancelled" : "failed";
    char *stats_s = dump_or_null(m->stats);
    char health_reason[1024];
    fa_apply_result r = FA_APPLY_ERROR;

    if (m->stats && !stats_s) {
        casb_fail(reason, reasonlen, CASB_ERROR, "out of memory");
        goto out;
    }
    const char *ps[] = {m->scan_id, status, error, stats_s};
    if (casb_db_exec(db, SQL_SCAN_FAILED, 4, ps, NULL, reason, reasonlen) != 0)
        goto out;
    fa_ingest_health_reason(health_reason, sizeof(health_reason), m->integration_id,
                            m->scan_id, error_kind, error);
    const char *pi[] = {m->integration_id, status, error_kind, health_reason};
    if (casb_db_exec(db, SQL_INTEGRATION_FAILED, 4, pi, NULL, reason, reasonlen) != 0)
        goto out;
    r = FA_APPLY_APPLIED;
out:
    free(stats_s);
    return r;
}

static fa_apply_result apply_progress(casb_db *db, const fa_result_msg *m, char *reason,
                                      size_t reasonlen)
{
    char *stats_s = NULL;
    int rc;

    if (!m->stats)
        return FA_APPLY_APPLIED;
    stats_s = casb_json_dump(m->stats);
    if (!stats_s)
        return FA_APPLY_ERROR;
    const char *ps[] = {m->scan_id, stats_s};
    rc = casb_db_exec(db, SQL_SCAN_PROGRESS, 2, ps, NULL, reason, reasonlen);
    free(stats_s);
    return rc == 0 ? FA_APPLY_APPLIED : FA_APPLY_ERROR;
}

/* Every message of the attempt before this one has been applied. */
static fa_apply_result check_complete(casb_db *db, const fa_result_msg *m, char *reason,
                                      size_t reasonlen)
{
    char attempt_s[16], seq_s[16];
    PGresult *res;
    long long n;

    snprintf(attempt_s, sizeof(attempt_s), "%d", m->attempt);
    snprintf(seq_s, sizeof(seq_s), "%d", m->seq);
    const char *params[] = {m->scan_id, attempt_s, seq_s};
    res = casb_db_query(db, SQL_EARLIER_BATCHES, 3, params, reason, reasonlen);
    if (!res)
        return FA_APPLY_ERROR;
    n = casb_db_get_int(res, 0, "n", -1);
    PQclear(res);
    if (n != m->seq - 1) {
        casb_fail(reason, reasonlen, CASB_ECONFLICT, "%lld of %d earlier messages applied", n,
                  m->seq - 1);
        return FA_APPLY_INCOMPLETE;
    }
    return FA_APPLY_APPLIED;
}

/* Logs the end message of an attempt that is not the scan's current one. */
static void log_superseded(const fa_result_msg *m, int current_attempt)
{
    char attempt_s[16], current_s[16];

    snprintf(attempt_s, sizeof(attempt_s), "%d", m->attempt);
    snprintf(current_s, sizeof(current_s), "%d", current_attempt);
    casb_log_info("end message of a superseded scan attempt ignored", "scan_id", m->scan_id,
                  "integration_id", m->integration_id, "account_id", m->account_id, "kind",
                  m->kind_name, "attempt", attempt_s, "current_attempt", current_s);
}

fa_apply_result fa_ingest_apply(casb_db *db, const fa_result_msg *m, const fa_catalogue *cat,
                                char *reason, size_t reasonlen)
{
    scan_state st = {0};
    fa_apply_result r;
    long resolved = 0;
    int current;

    if (m->kind == FA_KIND_FINDINGS) {
        /* A run of one: the same transaction as a run of several. */
        size_t duplicates = 0;
        r = fa_ingest_apply_findings(db, &m, 1, &duplicates, reason, reasonlen);
        return r == FA_APPLY_APPLIED && duplicates ? FA_APPLY_DUPLICATE : r;
    }
    if (casb_db_begin(db, reason, reasonlen) != 0)
        return FA_APPLY_ERROR;
    r = lock_scan(db, m, &st, reason, reasonlen);
    if (r != FA_APPLY_APPLIED)
        goto out;
    r = record_batch(db, m, 0, reason, reasonlen);
    if (r != FA_APPLY_APPLIED)
        goto out;
    /* The lease taken by a worker raised scans.attempt before it sent anything, and this
     * transaction holds the scan row: an attempt other than the current one was taken over
     * and must not end (or report on) the scan the current attempt is running. */
    current = m->attempt == st.attempt;
    switch (m->kind) {
    case FA_KIND_FINDINGS: /* above */
        break;
    case FA_KIND_PROGRESS:
        r = (st.finished || !current) ? FA_APPLY_APPLIED
                                      : apply_progress(db, m, reason, reasonlen);
        break;
    case FA_KIND_COMPLETED:
        if (!current)
            break;
        r = check_complete(db, m, reason, reasonlen);
        if (r == FA_APPLY_APPLIED && !st.finished)
            r = apply_completed(db, m, &resolved, reason, reasonlen);
        break;
    case FA_KIND_FAILED:
        if (!current || st.finished)
            break;
        r = apply_failed(db, m, m->error, m->error_kind, reason, reasonlen);
        break;
    }
    if (r != FA_APPLY_APPLIED)
        goto out;
    if (casb_db_commit(db, reason, reasonlen) != 0) {
        r = FA_APPLY_ERROR;
        goto out;
    }
    metric_add(m_resolved, (double)resolved);
    if ((m->kind == FA_KIND_COMPLETED || m->kind == FA_KIND_FAILED) && !current) {
        log_superseded(m, st.attempt);
        return FA_APPLY_SUPERSEDED;
    }
    if (m->kind == FA_KIND_COMPLETED || m->kind == FA_KIND_FAILED) {
        char attempt_s[16], seq_s[16], resolved_s[24];
        snprintf(attempt_s, sizeof(attempt_s), "%d", m->attempt);
        snprintf(seq_s, sizeof(seq_s), "%d", m->seq);
        snprintf(resolved_s, sizeof(resolved_s), "%ld", resolved);
        casb_log_info(m->kind == FA_KIND_COMPLETED ? "scan succeeded" : "scan failed",
                      "scan_id", m->scan_id, "integration_id", m->integration_id, "account_id",
                      m->account_id, "attempt", attempt_s, "messages", seq_s, "resolved",
                      resolved_s, "error", m->error, "error_kind",
                      m->kind == FA_KIND_FAILED ? m->error_kind : NULL, "already_finished",
                      st.finished ? "true" : "false");
    }
    return FA_APPLY_APPLIED;
out:
    casb_db_rollback(db);
    return r;
}

/* 1 when b continues a's scan attempt: the same scan, integration, account and provider. */
int fa_ingest_same_attempt(const fa_result_msg *a, const fa_result_msg *b)
{
    return a->attempt == b->attempt && strcmp(a->scan_id, b->scan_id) == 0 &&
           strcmp(a->integration_id, b->integration_id) == 0 &&
           strcmp(a->account_id, b->account_id) == 0 && strcmp(a->provider, b->provider) == 0;
}

fa_apply_result fa_ingest_apply_findings(casb_db *db, const fa_result_msg *const *ms, size_t n,
                                         size_t *duplicates, char *reason, size_t reasonlen)
{
    const fa_result_msg *fresh[FA_INGEST_MAX_BATCH];
    size_t nfresh = 0;
    scan_state st = {0};
    fa_apply_result r;

    *duplicates = 0;
    if (n == 0 || n > FA_INGEST_MAX_BATCH) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "batch of %zu messages", n);
        return FA_APPLY_REJECTED;
    }
    for (size_t k = 0; k < n; k++) {
        if (ms[k]->kind != FA_KIND_FINDINGS || !fa_ingest_same_attempt(ms[0], ms[k])) {
            casb_fail(reason, reasonlen, CASB_EINVALID,
                      "a batch holds findings messages of one scan attempt only");
            return FA_APPLY_REJECTED;
        }
    }
    if (casb_db_begin(db, reason, reasonlen) != 0)
        return FA_APPLY_ERROR;
    r = lock_scan(db, ms[0], &st, reason, reasonlen);
    if (r != FA_APPLY_APPLIED)
        goto out;
    for (size_t k = 0; k < n; k++) {
        long instances = (long)json_array_size(ms[k]->findings);
        r = record_batch(db, ms[k], instances, reason, reasonlen);
        if (r == FA_APPLY_DUPLICATE) {
            (*duplicates)++;
            continue;
        }
        if (r != FA_APPLY_APPLIED)
            goto out;
        fresh[nfresh++] = ms[k];
    }
    /* Applied even when the scan already ended or the attempt was superseded: the
     * sightings are real, and the timestamps keep a late message from undoing newer state. */
    r = apply_findings(db, fresh, nfresh, reason, reasonlen);
    if (r != FA_APPLY_APPLIED)
        goto out;
    if (casb_db_commit(db, reason, reasonlen) != 0) {
        r = FA_APPLY_ERROR;
        goto out;
    }
    return FA_APPLY_APPLIED;
out:
    casb_db_rollback(db);
    *duplicates = 0;
    return r;
}

fa_apply_result fa_ingest_fail_scan(casb_db *db, const fa_result_msg *m, const char *error,
                                    char *reason, size_t reasonlen)
{
    scan_state st = {0};
    fa_apply_result r;

    if (casb_db_begin(db, reason, reasonlen) != 0)
        return FA_APPLY_ERROR;
    r = lock_scan(db, m, &st, reason, reasonlen);
    if (r != FA_APPLY_APPLIED)
        goto out;
    r = record_batch(db, m, 0, reason, reasonlen);
    if (r != FA_APPLY_APPLIED)
        goto out;
    /* Taken over while we waited for the missing messages: the new attempt ends the scan. */
    if (!st.finished && m->attempt == st.attempt) {
        r = apply_failed(db, m, error, "internal", reason, reasonlen);
        if (r != FA_APPLY_APPLIED)
            goto out;
    }
    if (casb_db_commit(db, reason, reasonlen) != 0) {
        r = FA_APPLY_ERROR;
        goto out;
    }
    if (m->attempt != st.attempt) {
        log_superseded(m, st.attempt);
        return FA_APPLY_SUPERSEDED;
    }
    return FA_APPLY_APPLIED;
out:
    casb_db_rollback(db);
    return r;
}

/* ---- the consumer thread ---- */

/* A message polled from the consumer, parsed. */
typedef struct {
    casb_message *msg;
    fa_result_msg m;  /* when parsed */
    int parsed;
    char reason[512]; /* why it did not parse */
} ingest_item;

/* What the reader hands the writer: one message, or a run of findings messages of one scan
 * attempt to apply together. */
typedef struct {
    ingest_item items[FA_INGEST_MAX_BATCH];
    size_t n;
} ingest_batch;

struct fa_ingest {
    /* Two threads: the reader polls and parses the next batch while the writer applies the
     * one before (parsing is a fifth of ingest's time on a large scan's backlog). The
     * handoff holds at most one batch, so the reader is never more than a batch ahead. */
    pthread_t reader, writer;
    int reader_started, writer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sync_ready;
    int handoff_full; /* under mu */
    int reader_done;  /* under mu */
    ingest_batch handoff;
    atomic_int stop;
    atomic_int dead; /* the consumer failed fatally */
    casb_db *db;
    casb_consumer *consumer;
    casb_producer *producer;
    const fa_catalogue *cat;
};

static void sleep_unless_stopped(fa_ingest *ing, long ms)
{
    while (ms > 0 && !atomic_load(&ing->stop)) {
        long step = ms < 100 ? ms : 100;
        casb_sleep_ms(step);
        ms -= step;
    }
}

/* Connection loss, serialization failures, deadlocks, server shutdown, resource limits:
 * these pass, so the message is retried for as long as it takes. */
static int transient_sqlstate(const char *state)
{
    if (!state || !state[0])
        return 1;
    return strncmp(state, "08", 2) == 0 || strcmp(state, "40001") == 0 ||
           strcmp(state, "40P01") == 0 || strncmp(state, "57P", 3) == 0 ||
           strncmp(state, "53", 2) == 0 || strcmp(state, "55P03") == 0;
}

/* Publishes to the dead-letter topic, retrying while Kafka is away. 1 done, 0 stopping. */
static int dead_letter(fa_ingest *ing, const casb_message *msg, const char *reason)
{
    char err[256];
    long backoff_ms = 500;

    for (;;) {
        if (casb_dlq_publish(ing->producer, msg, reason, err, sizeof(err)) == 0) {
            metric_add(m_dead_lettered, 1);
            return 1;
        }
        casb_log_error("dead-letter publish failed; retrying", "error", err);
        sleep_unless_stopped(ing, backoff_ms);
        if (atomic_load(&ing->stop))
            return 0;
        backoff_ms = backoff_ms * 2 > FA_MAX_BACKOFF_MS ? FA_MAX_BACKOFF_MS : backoff_ms * 2;
    }
}

static void item_parse(fa_ingest *ing, ingest_item *it, casb_message *msg)
{
    it->msg = msg;
    it->parsed = fa_message_parse(&it->m, msg->value, msg->value_len, ing->cat, it->reason,
                                  sizeof(it->reason)) == 0;
}

static void item_clear(ingest_item *it)
{
    if (it->parsed)
        fa_message_clear(&it->m);
    casb_message_free(it->msg);
    memset(it, 0, sizeof(*it));
}

/* Handles one message. 1: its effect is durable (or it was dead-lettered), commit it;
 * 0: stopping with the work undone, do not commit. */
static int handle(fa_ingest *ing, ingest_item *it)
{
    const casb_message *msg = it->msg;
    fa_result_msg m = it->m;
    char reason[512];
    char detail[512];
    int permanent_errors = 0;
    int incomplete = 0;
    long backoff_ms = 250;

    if (!it->parsed) {
        casb_log_warn("invalid result message", "reason", it->reason);
        return dead_letter(ing, msg, it->reason);
    }
    for (;;) {
        fa_apply_result r = fa_ingest_apply(ing->db, &m, ing->cat, reason, sizeof(reason));
        int done = 1;

        switch (r) {
        case FA_APPLY_APPLIED:
            metric_add(m_applied[m.kind], 1);
            if (m.kind == FA_KIND_FINDINGS || m.kind == FA_KIND_PROGRESS) {
                char seq_s[16];
                snprintf(seq_s, sizeof(seq_s), "%d", m.seq);
                casb_log_debug("result message applied", "scan_id", m.scan_id, "seq", seq_s,
                               "kind", m.kind_name);
            }
            break;
        case FA_APPLY_DUPLICATE:
            metric_add(m_duplicates, 1);
            casb_log_debug("result message already applied", "scan_id", m.scan_id);
            break;
        case FA_APPLY_SUPERSEDED:
            /* Recorded and logged by fa_ingest_apply; the current attempt ends the scan. */
            metric_add(m_superseded, 1);
            break;
        case FA_APPLY_DROPPED:
            metric_add(m_dropped, 1);
            casb_log_info("result message dropped: integration deleted", "scan_id", m.scan_id,
                          "integration_id", m.integration_id);
            break;
        case FA_APPLY_REJECTED:
            casb_log_warn("result message rejected", "scan_id", m.scan_id, "reason", reason);
            done = dead_letter(ing, msg, reason) ? 1 : -1;
            break;
        case FA_APPLY_INCOMPLETE:
            if (++incomplete < FA_INCOMPLETE_TRIES) {
                casb_log_warn("completed message before the scan's other messages; retrying",
                              "scan_id", m.scan_id, "detail", reason);
                sleep_unless_stopped(ing, 1000);
                done = 0;
                break;
            }
            snprintf(detail, sizeof(detail), "%s", reason);
            r = fa_ingest_fail_scan(ing->db, &m, "incomplete scan results", reason,
                                    sizeof(reason));
            if (r == FA_APPLY_ERROR) {
                casb_log_error("cannot mark the scan failed; retrying", "scan_id", m.scan_id,
                               "error", reason);
                sleep_unless_stopped(ing, backoff_ms);
                done = 0;
                break;
            }
            if (r == FA_APPLY_SUPERSEDED) {
                /* Taken over meanwhile: the new attempt ends the scan, not this one. */
                metric_add(m_superseded, 1);
                break;
            }
            casb_log_error("scan results incomplete: scan marked failed", "scan_id", m.scan_id,
                           "integration_id", m.integration_id, "detail", detail);
            done = dead_letter(ing, msg, "incomplete scan results") ? 1 : -1;
            break;
        case FA_APPLY_ERROR:
            metric_add(m_db_errors, 1);
            done = 0;
            if (transient_sqlstate(casb_db_last_sqlstate(ing->db))) {
                casb_log_warn("ingest transaction failed; retrying", "scan_id", m.scan_id,
                              "error", reason);
            } else if (++permanent_errors >= FA_PERMANENT_ERROR_TRIES) {
                char dlq_reason[600];
                snprintf(dlq_reason, sizeof(dlq_reason), "database rejected the message: %s",
                         reason);
                casb_log_error("ingest transaction keeps failing; dead-lettering", "scan_id",
                               m.scan_id, "error", reason);
                done = dead_letter(ing, msg, dlq_reason) ? 1 : -1;
                break;
            } else {
                casb_log_warn("ingest transaction failed", "scan_id", m.scan_id, "error",
                              reason);
            }
            sleep_unless_stopped(ing, backoff_ms);
            backoff_ms = backoff_ms * 2 > FA_MAX_BACKOFF_MS ? FA_MAX_BACKOFF_MS : backoff_ms * 2;
            break;
        }
        if (done == 1)
            return 1;
        if (done < 0 || atomic_load(&ing->stop))
            return 0;
    }
}

static int is_findings(const ingest_item *it)
{
    return it->parsed && it->m.kind == FA_KIND_FINDINGS;
}

/* Applies items[0..n) (findings messages of one scan attempt) in one transaction and
 * commits their offsets. When the batch does not apply (a transient error, a message the
 * database rejects), each is handled on its own, which retries and dead-letters as it
 * should. 0: stopping, the rest left uncommitted for redelivery. */
static int handle_batch(fa_ingest *ing, ingest_item *items, size_t n)
{
    const fa_result_msg *ms[FA_INGEST_MAX_BATCH];
    char reason[512];
    size_t duplicates = 0;

    for (size_t k = 0; k < n; k++)
        ms[k] = &items[k].m;
    if (fa_ingest_apply_findings(ing->db, ms, n, &duplicates, reason,
                                 sizeof(reason)) == FA_APPLY_APPLIED) {
        metric_add(m_applied[FA_KIND_FINDINGS], (double)(n - duplicates));
        metric_add(m_duplicates, (double)duplicates);
        metric_add(m_batched, (double)n);
        for (size_t k = 0; k < n; k++)
            casb_consumer_commit(ing->consumer, items[k].msg);
        return 1;
    }
    casb_log_debug("batch not applied; applying its messages one by one", "scan_id",
                   items[0].m.scan_id, "reason", reason);
    for (size_t k = 0; k < n; k++) {
        if (!handle(ing, &items[k]))
            return 0;
        casb_consumer_commit(ing->consumer, items[k].msg);
    }
    return 1;
}

/* After a findings message, takes the messages the consumer already holds (no waiting)
 * while they continue the same scan attempt, up to FA_INGEST_MAX_BATCH: a large scan's
 * backlog is then applied a batch per transaction, while a lone message goes through at
 * once. Returns how many items there are; the last may not belong to the run (*run says
 * how many do). */
static size_t gather(fa_ingest *ing, ingest_item *items, size_t *run)
{
    size_t n = 1;

    *run = 1;
    while (is_findings(&items[0]) && n < FA_INGEST_MAX_BATCH) {
        casb_message *msg = NULL;
        if (casb_consumer_poll(ing->consumer, &msg, 0) <= 0)
            break;
        item_parse(ing, &items[n++], msg);
        if (!is_findings(&items[n - 1]) ||
            !fa_ingest_same_attempt(&items[0].m, &items[n - 1].m))
            break;
        *run = n;
    }
    return n;
}

static void batch_clear(ingest_batch *b)
{
    for (size_t k = 0; k < b->n; k++)
        item_clear(&b->items[k]);
    b->n = 0;
}

/* Gives the writer b (which is left empty). 0: stopping, b left as it was. */
static int hand_over(fa_ingest *ing, ingest_batch *b)
{
    pthread_mutex_lock(&ing->mu);
    while (ing->handoff_full && !atomic_load(&ing->stop))
        pthread_cond_wait(&ing->cv, &ing->mu);
    if (atomic_load(&ing->stop)) {
        pthread_mutex_unlock(&ing->mu);
        return 0;
    }
    ing->handoff = *b;
    ing->handoff_full = 1;
    pthread_cond_broadcast(&ing->cv);
    pthread_mutex_unlock(&ing->mu);
    memset(b, 0, sizeof(*b));
    return 1;
}

/* Takes the next batch. 0: none will come (the reader ended, or stopping). */
static int take_over(fa_ingest *ing, ingest_batch *b)
{
    int got = 0;

    pthread_mutex_lock(&ing->mu);
    while (!ing->handoff_full && !ing->reader_done && !atomic_load(&ing->stop))
        pthread_cond_wait(&ing->cv, &ing->mu);
    if (ing->handoff_full && !atomic_load(&ing->stop)) {
        *b = ing->handoff;
        memset(&ing->handoff, 0, sizeof(ing->handoff));
        ing->handoff_full = 0;
        pthread_cond_broadcast(&ing->cv);
        got = 1;
    }
    pthread_mutex_unlock(&ing->mu);
    return got;
}

static void *reader_main(void *arg)
{
    fa_ingest *ing = arg;
    ingest_batch b;
    ingest_item next; /* polled, but it did not belong to the batch before it */
    int held = 0;

    memset(&b, 0, sizeof(b));
    memset(&next, 0, sizeof(next));
    while (!atomic_load(&ing->stop)) {
        size_t n, run;

        if (held) {
            b.items[0] = next;
            memset(&next, 0, sizeof(next));
            held = 0;
        } else {
            casb_message *msg = NULL;
            int rc = casb_consumer_poll(ing->consumer, &msg, 500);

            if (rc < 0) {
                /* Fatal for this consumer instance; the process keeps serving HTTP and
                 * readyz turns false. A restart (the orchestrator's) recovers. */
                casb_log_error("result consumer failed; ingest stopped");
                atomic_store(&ing->dead, 1);
                break;
            }
            if (rc == 0) {
                casb_producer_poll(ing->producer);
                continue;
            }
            item_parse(ing, &b.items[0], msg);
        }
        n = gather(ing, b.items, &run);
        if (n > run) {
            next = b.items[run];
            memset(&b.items[run], 0, sizeof(b.items[run]));
            held = 1;
        }
        b.n = run;
        if (!hand_over(ing, &b))
            break;
    }
    batch_clear(&b);
    item_clear(&next);
    pthread_mutex_lock(&ing->mu);
    ing->reader_done = 1;
    pthread_cond_broadcast(&ing->cv);
    pthread_mutex_unlock(&ing->mu);
    return NULL;
}

static void *writer_main(void *arg)
{
    fa_ingest *ing = arg;
    ingest_batch b;

    memset(&b, 0, sizeof(b));
    while (take_over(ing, &b)) {
        int ok;

        if (b.n > 1) {
            ok = handle_batch(ing, b.items, b.n);
        } else {
            ok = handle(ing, &b.items[0]);
            if (ok)
                casb_consumer_commit(ing->consumer, b.items[0].msg);
        }
        batch_clear(&b);
        if (!ok)
            break;
    }
    return NULL;
}

int fa_ingest_start(fa_ingest **out, const fa_ingest_opts *o, char *err, size_t errlen)
{
    static const char *const topics[] = {CASB_TOPIC_SCAN_RESULTS, NULL};
    fa_ingest *ing = NULL;

    *out = NULL;
    ing = calloc(1, sizeof(*ing));
    if (!ing)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    atomic_init(&ing->stop, 0);
    atomic_init(&ing->dead, 0);
    if (pthread_mutex_init(&ing->mu, NULL) != 0) {
        free(ing);
        return casb_fail(err, errlen, CASB_ERROR, "cannot create the ingest mutex");
    }
    if (pthread_cond_init(&ing->cv, NULL) != 0) {
        pthread_mutex_destroy(&ing->mu);
        free(ing);
        return casb_fail(err, errlen, CASB_ERROR, "cannot create the ingest condition");
    }
    ing->sync_ready = 1;
    ing->producer = o->producer;
    ing->cat = o->catalogue;
    if (casb_db_open(&ing->db, o->database_url, FA_DB_CONNECT_TIMEOUT_MS, err, errlen) != 0)
        goto fail;
    if (casb_consumer_new(&ing->consumer, o->kafka_brokers, FA_GROUP_ID, topics, 0, err,
                          errlen) != 0)
        goto fail;
    if (pthread_create(&ing->writer, NULL, writer_main, ing) != 0) {
        casb_fail(err, errlen, CASB_ERROR, "cannot start the ingest writer thread");
        goto fail;
    }
    ing->writer_started = 1;
    if (pthread_create(&ing->reader, NULL, reader_main, ing) != 0) {
        casb_fail(err, errlen, CASB_ERROR, "cannot start the ingest reader thread");
        goto fail;
    }
    ing->reader_started = 1;
    *out = ing;
    return 0;
fail:
    fa_ingest_stop(ing);
    return CASB_ERROR;
}

int fa_ingest_alive(fa_ingest *ing)
{
    return ing && !atomic_load(&ing->dead);
}

void fa_ingest_stop(fa_ingest *ing)
{
    if (!ing)
        return;
    atomic_store(&ing->stop, 1);
    if (ing->sync_ready) {
        pthread_mutex_lock(&ing->mu);
        pthread_cond_broadcast(&ing->cv);
        pthread_mutex_unlock(&ing->mu);
    }
    if (ing->reader_started)
        pthread_join(ing->reader, NULL);
    if (ing->writer_started)
        pthread_join(ing->writer, NULL);
    if (ing->sync_ready) {
        batch_clear(&ing->handoff); /* taken by nobody: redelivered later */
        pthread_mutex_destroy(&ing->mu);
        pthread_cond_destroy(&ing->cv);
    }
    casb_consumer_close(ing->consumer);
    if (ing->db)
        casb_db_close(ing->db);
    free(ing);
}
