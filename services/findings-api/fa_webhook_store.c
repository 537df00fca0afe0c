#include "fa_webhook_store.h"

#include <stdio.h>
#include <stdlib.h>

#include "casb/error.h"
#include "casb/json.h"
#include "fa_store.h"

/* ---- webhooks ---- */

/* The view's columns, the delivery counts included (one index range scan per webhook). */
#define WEBHOOK_SELECT                                                                        \
    "SELECT w.id::text AS id, w.name, w.url, w.auth_type, w.auth_public::text AS auth_public," \
    "       w.finding_types::text AS finding_types, w.severities::text AS severities,"        \
    "       w.integration_ids::text AS integration_ids, w.enabled, w.created_by,"             \
    "       " FA_SQL_TS("w.created_at") " AS created_at,"                                     \
    "       " FA_SQL_TS("w.updated_at") " AS updated_at,"                                     \
    "       d.pending, d.succeeded, d.failed,"                                                \
    "       " FA_SQL_TS("d.last_success_at") " AS last_success_at,"                           \
    "       " FA_SQL_TS("d.last_failure_at") " AS last_failure_at"                            \
    "  FROM webhooks w,"                                                                      \
    "       LATERAL (SELECT count(*) FILTER (WHERE status = 'pending') AS pending,"           \
    "                       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,"       \
    "                       count(*) FILTER (WHERE status = 'failed') AS failed,"             \
    "                       max(delivered_at) AS last_success_at,"                            \
    "                       max(last_attempt_at) FILTER (WHERE last_error IS NOT NULL)"       \
    "                           AS last_failure_at"                                           \
    "                  FROM webhook_deliveries WHERE webhook_id = w.id) d"

PGresult *fa_webhook_store_get(casb_db *db, const char *account_id, const char *id, char *err,
                               size_t errlen)
{
    const char *params[] = {account_id, id};

    return casb_db_query(db, WEBHOOK_SELECT " WHERE w.account_id = $1 AND w.id = $2::uuid", 2,
                         params, err, errlen);
}

PGresult *fa_webhook_store_list(casb_db *db, const char *account_id, const char *after_id,
                                int limit, char *err, size_t errlen)
{
    char n[16];

    snprintf(n, sizeof(n), "%d", limit + 1);
    const char *params[] = {account_id, after_id, n};
    return casb_db_query(db,
                         WEBHOOK_SELECT
                         " WHERE w.account_id = $1"
                         "   AND ($2::uuid IS NULL OR (w.created_at, w.id) >"
                         "        (SELECT created_at, id FROM webhooks WHERE id = $2::uuid))"
                         " ORDER BY w.created_at, w.id LIMIT $3::int",
                         3, params, err, errlen);
}

PGresult *fa_webhook_store_target(casb_db *db, const char *account_id, const char *id,
                                  char *err, size_t errlen)
{
    const char *params[] = {account_id, id};

    return casb_db_query(db,
                         "SELECT url, auth_type, auth_sealed FROM webhooks"
                         " WHERE account_id = $1 AND id = $2::uuid",
                         2, params, err, errlen);
}

int fa_webhook_store_unknown_integration(casb_db *db, const char *account_id,
                                         const json_t *ids, char out[37], char *err,
                                         size_t errlen)
{
    char *ids_s = casb_json_dump(ids);
    PGresult *res;
    int rc = -1;

    if (!ids_s)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    const char *params[] = {account_id, ids_s};
    res = casb_db_query(db,
                        "SELECT x.id FROM jsonb_array_elements_text($2::jsonb) AS x(id)"
                        " WHERE NOT EXISTS (SELECT 1 FROM integrations i"
                        "                    WHERE i.account_id = $1 AND i.id = x.id::uuid)"
                        " LIMIT 1",
                        2, params, err, errlen);
    free(ids_s);
    if (res) {
        rc = PQntuples(res) > 0;
        if (rc)
            snprintf(out, 37, "%s", casb_db_get(res, 0, "id"));
        PQclear(res);
    }
    return rc;
}

/* The JSON members of in as statement parameters (NULL when absent: unchanged or default). */
typedef struct {
    char *auth_public, *finding_types, *severities, *integration_ids;
} input_json;

static int input_json_dump(input_json *j, const fa_webhook_input *in, char *err, size_t errlen)
{
    j->auth_public = in->auth_public ? casb_json_dump(in->auth_public) : NULL;
    j->finding_types = in->finding_types ? casb_json_dump(in->finding_types) : NULL;
    j->severities = in->severities ? casb_json_dump(in->severities) : NULL;
    j->integration_ids = in->integration_ids ? casb_json_dump(in->integration_ids) : NULL;
    if ((in->auth_public && !j->auth_public) || (in->finding_types && !j->finding_types) ||
        (in->severities && !j->severities) || (in->integration_ids && !j->integration_ids))
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    return 0;
}

static void input_json_free(input_json *j)
{
    free(j->auth_public);
    free(j->finding_types);
    free(j->severities);
    free(j->integration_ids);
}

/* JSON arrays of strings into the array columns; NULL keeps the default ('{}'). */
#define SQL_TEXT_ARRAY(p) "coalesce(ARRAY(SELECT jsonb_array_elements_text(" p "::jsonb)), '{}')"
#define SQL_UUID_ARRAY(p)                                                                      \
    "coalesce(ARRAY(SELECT jsonb_array_elements_text(" p "::jsonb)::uuid), '{}')"

int fa_webhook_store_insert(casb_db *db, const char *account_id, const char *id,
                            const fa_webhook_input *in, const char *sealed, const char *key_id,
                            const char *actor, char *err, size_t errlen)
{
    input_json j = {0};
    int rc = -1;

    if (input_json_dump(&j, in, err, errlen) != 0)
        goto out;
    const char *params[] = {id,          account_id,      in->name,      in->url,
                            in->auth_type, j.auth_public, sealed,        key_id,
                            j.finding_types, j.severities, j.integration_ids,
                            in->enabled ? "true" : "false", actor};
    rc = casb_db_exec(db,
                      "INSERT INTO webhooks (id, account_id, name, url, auth_type, auth_public,"
                      "       auth_sealed, auth_key_id, finding_types, severities,"
                      "       integration_ids, enabled, created_by)"
                      " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, " SQL_TEXT_ARRAY("$9") ","
                      "         " SQL_TEXT_ARRAY("$10") ", " SQL_UUID_ARRAY("$11") ","
                      "         $12::boolean, $13)",
                      13, params, NULL, err, errlen);
out:
    input_json_free(&j);
    return rc;
}

/* Each member is replaced only when the body carried it ($n IS NOT NULL); auth is replaced
 * whole ($5 given), secrets included, so that a switch to none drops them. */
static const char SQL_UPDATE[] =
    "UPDATE webhooks SET"
    "   name = coalesce($3, name), url = coalesce($4, url),"
    "   auth_type = coalesce($5, auth_type),"
    "   auth_public = coalesce($6::jsonb, auth_public),"
    "   auth_sealed = CASE WHEN $5::text IS NULL THEN auth_sealed ELSE $7 END,"
    "   auth_key_id = CASE WHEN $5::text IS NULL THEN auth_key_id ELSE $8 END,"
    "   finding_types = CASE WHEN $9::jsonb IS NULL THEN finding_types"
    "                        ELSE " SQL_TEXT_ARRAY("$9") " END,"
    "   severities = CASE WHEN $10::jsonb IS NULL THEN severities"
    "                     ELSE " SQL_TEXT_ARRAY("$10") " END,"
    "   integration_ids = CASE WHEN $11::jsonb IS NULL THEN integration_ids"
    "                          ELSE " SQL_UUID_ARRAY("$11") " END,"
    "   enabled = coalesce($12::boolean, enabled), updated_at = now()"
    " WHERE account_id = $1 AND id = $2::uuid";

int fa_webhook_store_update(casb_db *db, const char *account_id, const char *id,
                            const fa_webhook_input *in, const char *sealed, const char *key_id,
                            int *found, char *err, size_t errlen)
{
    input_json j = {0};
    long affected = 0;
    const char *enabled = NULL;
    int rc = -1;

    if (input_json_dump(&j, in, err, errlen) != 0)
        goto out;
    if (in->present & FA_WEBHOOK_ENABLED)
        enabled = in->enabled ? "true" : "false";
    const char *params[] = {account_id,   id,           in->name,          in->url,
                            in->auth_type, j.auth_public, sealed,          key_id,
                            j.finding_types, j.severities, j.integration_ids, enabled};
    rc = casb_db_exec(db, SQL_UPDATE, 12, params, &affected, err, errlen);
    *found = affected > 0;
out:
    input_json_free(&j);
    return rc;
}

int fa_webhook_store_delete(casb_db *db, const char *account_id, const char *id, int *found,
                            char *err, size_t errlen)
{
    const char *params[] = {account_id, id};
    long affected = 0;
    int rc = casb_db_exec(db, "DELETE FROM webhooks WHERE account_id = $1 AND id = $2::uuid", 2,
                          params, &affected, err, errlen);

    *found = affected > 0;
    return rc;
}

/* ---- deliveries ---- */

#define DELIVERY_COLUMNS                                                                      \
    "d.id::text AS id, d.seq, d.webhook_id::text AS webhook_id, d.event_type,"                \
    " d.finding_id::text AS finding_id, d.instance_id::text AS instance_id, d.status,"        \
    " d.attempts, " FA_SQL_TS("d.next_attempt_at") " AS next_attempt_at,"                     \
    " " FA_SQL_TS("d.last_attempt_at") " AS last_attempt_at, d.last_status_code,"             \
    " d.last_error, " FA_SQL_TS("d.delivered_at") " AS delivered_at,"                         \
    " " FA_SQL_TS("d.created_at") " AS created_at"

PGresult *fa_webhook_store_deliveries(casb_db *db, const char *account_id,
                                      const char *webhook_id, const char *status,
                                      long long before_seq, int limit, char *err,
                                      size_t errlen)
{
    char before[24], n[16];

    snprintf(before, sizeof(before), "%lld", before_seq);
    snprintf(n, sizeof(n), "%d", limit + 1);
    const char *params[] = {account_id, webhook_id, status, before, n};
    return casb_db_query(db,
                         "SELECT " DELIVERY_COLUMNS " FROM webhook_deliveries d"
                         " WHERE d.account_id = $1 AND d.webhook_id = $2::uuid"
                         "   AND ($3::text IS NULL OR d.status = $3)"
                         "   AND ($4::bigint = 0 OR d.seq < $4::bigint)"
                         " ORDER BY d.seq DESC LIMIT $5::int",
                         5, params, err, errlen);
}

PGresult *fa_webhook_store_delivery(casb_db *db, const char *account_id, const char *webhook_id,
                                    const char *delivery_id, char *err, size_t errlen)
{
    const char *params[] = {account_id, webhook_id, delivery_id};

    return casb_db_query(db,
                         "SELECT " DELIVERY_COLUMNS " FROM webhook_deliveries d"
                         " WHERE d.account_id = $1 AND d.webhook_id = $2::uuid"
                         "   AND d.id = $3::uuid",
                         3, params, err, errlen);
}

PGresult *fa_webhook_store_redeliver(casb_db *db, const char *account_id,
                                     const char *webhook_id, const char *delivery_id,
                                     char *err, size_t errlen)
{
    const char *params[] = {account_id, webhook_id, delivery_id};

    return casb_db_query(db,
                         "UPDATE webhook_deliveries d SET status = 'pending', attempts = 0,"
                         "       next_attempt_at = now(), delivered_at = NULL"
                         " WHERE d.account_id = $1 AND d.webhook_id = $2::uuid"
                         "   AND d.id = $3::uuid AND d.status <> 'pending'"
                         "   AND d.event_type <> 'webhook.test'"
                         " RETURNING " DELIVERY_COLUMNS,
                         3, params, err, errlen);
}

int fa_webhook_store_insert_test(casb_db *db, const char *account_id, const char *webhook_id,
                                 const char *delivery_id, long lease_s, char *err,
                                 size_t errlen)
{
    char lease[24];

    snprintf(lease, sizeof(lease), "%ld", lease_s);
    const char *params[] = {delivery_id, webhook_id, account_id, lease};
    return casb_db_exec(db,
                        "INSERT INTO webhook_deliveries (id, webhook_id, account_id, event_type,"
                        "       attempts, last_attempt_at, next_attempt_at)"
                        " VALUES ($1, $2, $3, 'webhook.test', 1, now(),"
                        "         now() + make_interval(secs => $4::int))",
                        4, params, NULL, err, errlen);
}

/* ---- the queue ---- */

PGresult *fa_webhook_store_claim(casb_db *db, int batch, long lease_s, char *err,
                                 size_t errlen)
{
    char n[16], lease[24];

    snprintf(n, sizeof(n), "%d", batch);
    snprintf(lease, sizeof(lease), "%ld", lease_s);
    const char *params[] = {n, lease};
    return casb_db_query(
        db,
        "WITH due AS ("
        "  SELECT d.id, w.url, w.auth_type, w.auth_sealed, " FA_SQL_TS("e.at") " AS occurred_at,"
        "         e.scan_id"
        "    FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id AND w.enabled"
        "    LEFT JOIN finding_events e ON e.id = d.event_id"
        "   WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
        "   ORDER BY d.next_attempt_at LIMIT $1::int"
        "   FOR UPDATE OF d SKIP LOCKED)"
        " UPDATE webhook_deliveries d"
        "    SET attempts = d.attempts + 1, last_attempt_at = now(),"
        "        next_attempt_at = now() + make_interval(secs => $2::int)"
        "   FROM due WHERE d.id = due.id"
        " RETURNING d.id::text AS id, d.account_id::text AS account_id,"
        "           d.webhook_id::text AS webhook_id, d.event_type,"
        "           d.finding_id::text AS finding_id, d.instance_id::text AS instance_id,"
        "           d.attempts, due.occurred_at, due.scan_id::text AS scan_id, due.url,"
        "           due.auth_type, due.auth_sealed",
        2, params, err, errlen);
}

int fa_webhook_store_record(casb_db *db, const char *delivery_id, const fa_webhook_outcome *o,
                            char *err, size_t errlen)
{
    char code[24], retry[24];
    const char *status = o->ok ? "succeeded" : o->retry_in_ms < 0 ? "failed" : "pending";

    snprintf(code, sizeof(code), "%ld", o->status_code);
    snprintf(retry, sizeof(retry), "%lld", o->retry_in_ms < 0 ? 0 : o->retry_in_ms);
    const char *params[] = {delivery_id, status, o->status_code > 0 ? code : NULL, o->error,
                            retry};
    return casb_db_exec(db,
                        "UPDATE webhook_deliveries SET status = $2, last_status_code = $3::int,"
                        "       last_error = $4,"
                        "       delivered_at = CASE WHEN $2 = 'succeeded' THEN now() END,"
                        "       next_attempt_at ="
                        "           now() + make_interval(secs => ($5::bigint / 1000.0)::float8)"
                        " WHERE id = $1::uuid",
                        5, params, NULL, err, errlen);
}
