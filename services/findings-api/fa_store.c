#include "fa_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/sql.h"
#include "fa_query.h"

#define TS(col) FA_SQL_TS(col)

/* The same expression as in migration 0009's indexes, which the list's orders use. */
#define SEVERITY_RANK FA_SQL_SEVERITY_RANK("f.severity")

/* The statements that fa_views.c writes out run with binary results
 * (casb_db_query_binary): their uuids, numbers and times are read as PostgreSQL keeps
 * them, not written out as text by the server and parsed back here. */
#define FINDING_COLUMNS                                                                        \
    "f.id, f.integration_id, i.provider, i.name AS integration_name, f.finding_type,"         \
    " f.severity, f.severity_tuned, f.status, f.instance_count, f.first_seen_at,"              \
    " f.last_seen_at"

/* Every filter is a parameter that is either NULL (no filter) or a value, so each statement
 * is constant. One statement per order, whose sort key (k1, k2, id) is written the way
 * migration 0009's indexes are: an ascending index scan of the account's findings then yields
 * the page without sorting all of them (the query benchmark: 18,000 findings per account).
 * The keyset condition compares (k1, k2, id) as a row, which matches the ORDER BY exactly and
 * bounds the index scan. The statements run specialised (casb_db_query_specialised_binary):
 * the groups of NULL filters and of an absent cursor become constants, and each combination
 * gets one generic plan per connection (the query benchmark: planning a list statement took
 * more database time than running it). */
#define LAST_SEEN_US "(extract(epoch FROM f.last_seen_at) * 1000000)::bigint"
#define SQL_LIST_FINDINGS(k1, k2)                                                              \
    "SELECT " FINDING_COLUMNS ", (" k1 ")::bigint AS k1, (" k2 ")::bigint AS k2"               \
    "  FROM findings f JOIN integrations i ON i.id = f.integration_id"                         \
    FA_SQL_FINDING_FILTERS                                                                     \
    "   AND ($8::boolean OR f.instance_count > 0)"                                             \
    "   AND ($11::bigint IS NULL"                                                              \
    "        OR (" k1 ", " k2 ", f.id) > ($11::bigint, $12::bigint, $13::uuid))"               \
    " ORDER BY " k1 ", " k2 ", f.id"                                                           \
    " LIMIT $14"

/* Most recently seen first, on migration 0012's index (account_id, last_seen_at DESC, id).
 * Its cursor key k1 is the time in microseconds, negated, as the other orders' keys ascend;
 * the cursor's time is rebuilt from it exactly (timestamptz keeps microseconds) and bounds
 * the index scan, the id breaking ties. k2 is 0 in this order's cursors. */
#define CURSOR_LAST_SEEN "(timestamptz 'epoch' - $11::bigint * interval '1 microsecond')"
#define SQL_LIST_FINDINGS_BY_LAST_SEEN                                                         \
    "SELECT " FINDING_COLUMNS ", (-" LAST_SEEN_US ")::bigint AS k1, 0::bigint AS k2"           \
    "  FROM findings f JOIN integrations i ON i.id = f.integration_id"                         \
    FA_SQL_FINDING_FILTERS                                                                     \
    "   AND ($8::boolean OR f.instance_count > 0)"                                             \
    "   AND ($11::bigint IS NULL"                                                              \
    "        OR (f.last_seen_at <= " CURSOR_LAST_SEEN " AND $12::bigint = 0"                   \
    "            AND (f.last_seen_at < " CURSOR_LAST_SEEN " OR f.id > $13::uuid)))"            \
    " ORDER BY f.last_seen_at DESC, f.id"                                                      \
    " LIMIT $14"

/* Indexed by fa_sort: critical first then more instances; more instances first then the more
 * severe; most recently seen first. */
static const char *const SQL_LIST_FINDINGS_BY[] = {
    SQL_LIST_FINDINGS(SEVERITY_RANK, "-f.instance_count"),
    SQL_LIST_FINDINGS("-f.instance_count", SEVERITY_RANK),
    SQL_LIST_FINDINGS_BY_LAST_SEEN,
};

static const char SQL_GET_FINDING[] =
    "SELECT " FINDING_COLUMNS
    "  FROM findings f JOIN integrations i ON i.id = f.integration_id"
    " WHERE f.account_id = $1 AND f.id = $2";

/* finding_ids: the columns finding_id and integration_id. */
#define INSTANCE_COLUMNS_WITH(finding_ids)                                                     \
    "fi.id, " finding_ids ", fi.asset_kind, fi.asset_id, fi.asset_name,"                       \
    " fi.asset_url, fi.details, fi.state, fi.first_seen_at, fi.last_seen_at,"                 \
    " fi.last_scan_id, fi.resolved_at"
#define INSTANCE_COLUMNS INSTANCE_COLUMNS_WITH("fi.finding_id, fi.integration_id")

/* The finding's row, then its instances (Append runs the two branches in order). The
 * finding's ids are on its row only: the same on every row of a page, the two uuid columns
 * were a fifth of the statement's time (pgbench, a page of 200: 4,500 tps with them, 5,300
 * without). No row at all: the account has no such finding. */
static const char SQL_LIST_INSTANCES[] =
    "SELECT NULL::uuid AS id, f.id AS finding_id, f.integration_id, NULL::text AS asset_kind,"
    "       NULL::text AS asset_id, NULL::text AS asset_name, NULL::text AS asset_url,"
    "       NULL::json AS details, NULL::text AS state, NULL::timestamptz AS first_seen_at,"
    "       NULL::timestamptz AS last_seen_at, NULL::uuid AS last_scan_id,"
    "       NULL::timestamptz AS resolved_at"
    "  FROM findings f"
    " WHERE f.account_id = $1 AND f.id = $2"
    " UNION ALL"
    " (SELECT " INSTANCE_COLUMNS_WITH("NULL, NULL")
    "    FROM finding_instances fi JOIN findings f ON f.id = fi.finding_id"
    "   WHERE f.account_id = $1 AND fi.finding_id = $2"
    "     AND ($3::text IS NULL OR fi.state = $3)"
    "     AND ($4::text IS NULL OR fi.asset_id > $4)"
    "   ORDER BY fi.asset_id"
    "   LIMIT $5)";

static const char SQL_LIST_ALL_INSTANCES[] =
    "SELECT " INSTANCE_COLUMNS ", f.finding_type, f.severity, f.status AS finding_status"
    "  FROM findings f JOIN integrations i ON i.id = f.integration_id"
    "  JOIN finding_instances fi ON fi.finding_id = f.id"
    FA_SQL_FINDING_FILTERS
    FA_SQL_INSTANCE_FILTERS
    "   AND ($11::uuid IS NULL OR (fi.finding_id, fi.asset_id) > ($11::uuid, $12::text))"
    " ORDER BY fi.finding_id, fi.asset_id"
    " LIMIT $13";

static const char SQL_GET_INSTANCE[] =
    "SELECT " INSTANCE_COLUMNS
    "  FROM finding_instances fi JOIN findings f ON f.id = fi.finding_id"
    " WHERE f.account_id = $1 AND fi.id = $2";

/* Newest first; the instance's asset names the event's subject. */
static const char SQL_HISTORY[] =
    "SELECT e.id, e.event, " TS("e.at") " AS at, e.actor, e.scan_id, e.instance_id,"
    "       fi.asset_name, e.details::text AS details"
    "  FROM finding_events e LEFT JOIN finding_instances fi ON fi.id = e.instance_id"
    " WHERE e.account_id = $1 AND e.finding_id = $2"
    "   AND ($3::bigint IS NULL OR e.id < $3::bigint)"
    " ORDER BY e.id DESC"
    " LIMIT $4";

/* One row per day of the window, oldest first: each integration's last snapshot on or
 * before that day (days without a scan carry the previous one forward), summed. */
static const char SQL_TREND[] =
    "SELECT to_char(d.day, 'YYYY-MM-DD') AS day,"
    "       coalesce(sum(c.critical), 0) AS critical, coalesce(sum(c.high), 0) AS high,"
    "       coalesce(sum(c.medium), 0) AS medium, coalesce(sum(c.low), 0) AS low"
    "  FROM generate_series((now() AT TIME ZONE 'UTC')::date - ($3::int - 1),"
    "                       (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d(day)"
    "  LEFT JOIN LATERAL ("
    "       SELECT DISTINCT ON (x.integration_id) x.critical, x.high, x.medium, x.low"
    "         FROM integration_daily_counts x"
    "        WHERE x.account_id = $1 AND x.day <= d.day"
    "          AND ($2::uuid IS NULL OR x.integration_id = $2::uuid)"
    "        ORDER BY x.integration_id, x.day DESC) c ON true"
    " GROUP BY d.day ORDER BY d.day";

/* One scan of the account's active findings, counted two ways at once (GROUPING SETS): by
 * type and severity (integration_id NULL) and by integration (finding_type NULL). The two
 * statements it replaced each scanned them (the query benchmark: 18,000 findings per
 * account, 15 ms for both, 9 ms for this and SQL_SUMMARY_INTEGRATIONS). */
static const char SQL_SUMMARY_COUNTS[] =
    "SELECT f.finding_type, f.severity, f.integration_id,"
    "       count(*) FILTER (WHERE f.instance_count > 0) AS findings,"
    "       sum(f.instance_count) AS instances"
    "  FROM findings f"
    " WHERE f.account_id = $1 AND f.status = 'active'"
    " GROUP BY GROUPING SETS ((f.finding_type, f.severity), (f.integration_id))";

/* The account's summary version (migration 0013), as text; no row before its first change. */
static const char SQL_SUMMARY_VERSION[] =
    "SELECT changed_by::text AS version FROM summary_versions WHERE account_id = $1";

static const char SQL_SUMMARY_INTEGRATIONS[] =
    "SELECT i.id, i.name, i.provider, i.health, i.last_scan_status,"
    "       " TS("i.last_scan_at") " AS last_scan_at"
    "  FROM integrations i"
    " WHERE i.account_id = $1"
    " ORDER BY i.created_at, i.id";

PGresult *fa_store_list_findings(casb_db *db, const fa_findings_query *q, char *err,
                                 size_t errlen)
{
    char k1_s[24], k2_s[24], limit_s[16];
    const char *params[14];
    int sort = q->sort >= FA_SORT_SEVERITY && q->sort <= FA_SORT_LAST_SEEN ? q->sort
                                                                          : FA_SORT_SEVERITY;

    snprintf(k1_s, sizeof(k1_s), "%lld", q->cursor.k1);
    snprintf(k2_s, sizeof(k2_s), "%lld", q->cursor.k2);
    snprintf(limit_s, sizeof(limit_s), "%d", q->limit + 1);
    fa_query_filter_params(q, q->include_resolved ? "true" : "false", params);
    params[10] = q->has_cursor ? k1_s : NULL;
    params[11] = q->has_cursor ? k2_s : NULL;
    params[12] = q->has_cursor ? q->cursor.id : NULL;
    params[13] = limit_s;
    return casb_db_query_specialised_binary(db, SQL_LIST_FINDINGS_BY[sort], 14, params, err,
                                            errlen);
}

PGresult *fa_store_get_finding(casb_db *db, const char *account_id, const char *finding_id,
                               char *err, size_t errlen)
{
    const char *params[] = {account_id, finding_id};

    return casb_db_query_generic_binary(db, SQL_GET_FINDING, 2, params, err, errlen);
}

PGresult *fa_store_list_instances(casb_db *db, const char *account_id, const char *finding_id,
                                  const char *state, const char *after_asset_id, int limit,
                                  char *err, size_t errlen)
{
    char limit_s[16];

    snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
    const char *params[] = {account_id, finding_id, state, after_asset_id, limit_s};
    return casb_db_query_specialised_binary(db, SQL_LIST_INSTANCES, 5, params, err, errlen);
}

PGresult *fa_store_summary_counts(casb_db *db, const char *account_id, char *err,
                                   size_t errlen)
{
    const char *params[] = {account_id};

    return casb_db_query(db, SQL_SUMMARY_COUNTS, 1, params, err, errlen);
}

PGresult *fa_store_summary_version(casb_db *db, const char *account_id, char *err,
                                   size_t errlen)
{
    const char *params[] = {account_id};

    return casb_db_query_generic(db, SQL_SUMMARY_VERSION, 1, params, err, errlen);
}

PGresult *fa_store_summary_integrations(casb_db *db, const char *account_id, char *err,
                                        size_t errlen)
{
    const char *params[] = {account_id};

    return casb_db_query(db, SQL_SUMMARY_INTEGRATIONS, 1, params, err, errlen);
}

PGresult *fa_store_get_instance(casb_db *db, const char *account_id, const char *instance_id,
                                char *err, size_t errlen)
{
    const char *params[] = {account_id, instance_id};

    return casb_db_query_generic_binary(db, SQL_GET_INSTANCE, 2, params, err, errlen);
}

PGresult *fa_store_history(casb_db *db, const char *account_id, const char *finding_id,
                           long long before_id, int limit, char *err, size_t errlen)
{
    char before_s[24], limit_s[16];

    snprintf(before_s, sizeof(before_s), "%lld", before_id);
    snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
    const char *params[] = {account_id, finding_id, before_id > 0 ? before_s : NULL, limit_s};
    return casb_db_query_specialised(db, SQL_HISTORY, 4, params, err, errlen);
}

PGresult *fa_store_trend(casb_db *db, const char *account_id, const char *integration_id,
                         int days, char *err, size_t errlen)
{
    char days_s[16];

    snprintf(days_s, sizeof(days_s), "%d", days);
    const char *params[] = {account_id, integration_id, days_s};
    return casb_db_query(db, SQL_TREND, 3, params, err, errlen);
}

void fa_findings_query_clear(fa_findings_query *q)
{
    free(q->types_owned);
    free(q->search_types_json);
    q->types_owned = NULL;
    q->search_types_json = NULL;
    q->types_json = NULL;
}

PGresult *fa_store_list_all_instances(casb_db *db, const char *const params[10],
                                      const char *after_finding, const char *after_asset,
                                      int limit, char *err, size_t errlen)
{
    const char *p[13];
    char limit_s[16];

    snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
    memcpy(p, params, 10 * sizeof(p[0]));
    p[10] = after_finding;
    p[11] = after_asset;
    p[12] = limit_s;
    return casb_db_query_binary(db, SQL_LIST_ALL_INSTANCES, 13, p, err, errlen);
}
