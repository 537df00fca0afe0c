#ifndef FA_STORE_H
#define FA_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "casb/db.h"

/* The read queries behind the HTTP API. Every query is scoped to the caller's account in
 * SQL. Results are PGresults the caller PQclear()s; fa_views turns them into JSON. Times
 * come out as RFC 3339 UTC strings. */

/* The orders of the findings list. Each is a keyset (k1, k2, id), ascending:
 *   severity        critical first, then more instances first (the default);
 *   instance_count  more instances first, then the more severe;
 *   last_seen       most recently seen first. */
typedef enum { FA_SORT_SEVERITY = 0, FA_SORT_INSTANCE_COUNT = 1, FA_SORT_LAST_SEEN = 2 } fa_sort;

/* Where a page of the findings list ended: the last row's sort key. */
typedef struct {
    int sort;
    long long k1, k2;
    char id[37];
} fa_findings_cursor;

/* The longest text search, in bytes. */
#define FA_SEARCH_MAX_BYTES 100

typedef struct {
    const char *account_id;
    const char *integration_id;   /* NULL: any */
    const char *provider;         /* NULL: any */
    const char *severity;         /* NULL: any */
    const char *status;           /* active | ignored; NULL: any */
    const char *types_json;       /* JSON array of finding type ids (a category); NULL: any */
    /* Text search: findings whose type's title matches (search_types_json, the catalogue's
     * ids) or with an instance whose asset name matches (search_like, an ILIKE pattern);
     * both NULL: no search. */
    const char *search_like;
    char *search_types_json;      /* malloc'ed (fa_findings_query_clear) */
    char search_like_buf[FA_SEARCH_MAX_BYTES * 2 + 3];
    char *types_owned;            /* malloc'ed storage of types_json */
    const char *finding_type;     /* NULL: any */
    int include_resolved;         /* 0: only findings with active instances */
    int sort;                     /* fa_sort */
    int has_cursor;               /* keyset: rows strictly after the cursor's */
    fa_findings_cursor cursor;
    int limit;                    /* page size */
} fa_findings_query;

/* A time that leaves PostgreSQL as text, in RFC 3339 UTC (exports, webhooks, a finding's
 * history). The findings' and instances' views read theirs in binary instead (fa_store.c):
 * to_char was a fifth of the database's time for a page of 200 instances. */
#define FA_SQL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Today's row of the trend (integration_daily_counts) for each integration whose id the
 * SELECT `which` returns: active instances of its findings that are not ignored, by
 * severity, as they are now. Written when a scan completes and after each triage change, so
 * the trend shows the day as its last change left it. */
#define FA_SQL_DAILY_COUNTS(which)                                                             \
    "INSERT INTO integration_daily_counts AS d (integration_id, account_id, day, critical,"    \
    "       high, medium, low)"                                                                \
    " SELECT i.id, i.account_id, (now() AT TIME ZONE 'UTC')::date,"                            \
    "        coalesce(sum(f.instance_count) FILTER (WHERE f.severity = 'critical'), 0),"       \
    "        coalesce(sum(f.instance_count) FILTER (WHERE f.severity = 'high'), 0),"           \
    "        coalesce(sum(f.instance_count) FILTER (WHERE f.severity = 'medium'), 0),"         \
    "        coalesce(sum(f.instance_count) FILTER (WHERE f.severity = 'low'), 0)"             \
    "   FROM integrations i"                                                                   \
    "   LEFT JOIN findings f ON f.integration_id = i.id AND f.status = 'active'"               \
    "  WHERE i.id IN (" which ")"                                                              \
    "  GROUP BY i.id, i.account_id"                                                            \
    " ON CONFLICT (integration_id, day) DO UPDATE"                                             \
    "    SET critical = excluded.critical, high = excluded.high, medium = excluded.medium,"    \
    "        low = excluded.low"

/* A severity's rank, critical first: the expression of migration 0009's indexes. */
#define FA_SQL_SEVERITY_RANK(severity)                                                         \
    "(CASE " severity " WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2"        \
    " ELSE 3 END)"

/* The finding filters on findings f joined to integrations i, each NULL or a value so that
 * the statement is constant: $1 account, $2 integration, $3 provider, $4 severity, $5 status,
 * $6 category's type ids (JSON), $7 finding type, $9 the text search's ILIKE pattern and $10
 * the type ids whose title it matches. A severity is compared by its rank as well: the
 * planner then holds the rank constant, so migration 0009's findings_by_severity index yields
 * one severity's page in either order (severity or instance count) and the scan stops after
 * it (the query benchmark's high findings by instance count read 53 rows for a page of 51,
 * not 208, in a third of the time). */
#define FA_SQL_FINDING_FILTERS                                                                 \
    " WHERE f.account_id = $1"                                                                 \
    "   AND ($2::uuid IS NULL OR f.integration_id = $2::uuid)"                                 \
    "   AND ($3::text IS NULL OR i.provider = $3)"                                             \
    "   AND ($4::text IS NULL"                                                                 \
    "        OR (f.severity = $4 AND " FA_SQL_SEVERITY_RANK("f.severity") " = "               \
    "            " FA_SQL_SEVERITY_RANK("$4::text") "))"                                      \
    "   AND ($5::text IS NULL OR f.status = $5)"                                               \
    "   AND ($6::jsonb IS NULL OR f.finding_type IN"                                           \
    "        (SELECT jsonb_array_elements_text($6::jsonb)))"                                   \
    "   AND ($7::text IS NULL OR f.finding_type = $7)"                                         \
    "   AND ($9::text IS NULL"                                                                 \
    "        OR f.finding_type IN (SELECT jsonb_array_elements_text($10::jsonb))"              \
    "        OR EXISTS (SELECT 1 FROM finding_instances si"                                    \
    "                    WHERE si.finding_id = f.id AND si.asset_name ILIKE $9))"

/* On instances fi of those findings: $8 the state (NULL: any), and a search by asset name
 * keeps the instances that match (all of them when the title matches). */
#define FA_SQL_INSTANCE_FILTERS                                                                \
    "   AND ($8::text IS NULL OR fi.state = $8)"                                               \
    "   AND ($9::text IS NULL"                                                                 \
    "        OR f.finding_type IN (SELECT jsonb_array_elements_text($10::jsonb))"              \
    "        OR fi.asset_name ILIKE $9)"

/* Instances of every finding the filters select, in (finding_id, asset_id) order, after
 * (after_finding, after_asset) when given; up to limit + 1 rows. Columns of
 * fa_store_list_instances plus finding_type, severity and finding_status. params: the 10
 * filter parameters above ($1..$10). */
PGresult *fa_store_list_all_instances(casb_db *db, const char *const params[10],
                                      const char *after_finding, const char *after_asset,
                                      int limit, char *err, size_t errlen);

/* Frees what fa_query_resolve allocated; safe on a query it never saw. */
void fa_findings_query_clear(fa_findings_query *q);

/* The list queries return up to limit + 1 rows: a row beyond the page tells that another
 * page exists. */

/* Findings in q->sort order (columns k1 and k2 carry the row's sort key, for the cursor). */
PGresult *fa_store_list_findings(casb_db *db, const fa_findings_query *q, char *err,
                                 size_t errlen);
/* One finding (0 or 1 row). */
PGresult *fa_store_get_finding(casb_db *db, const char *account_id, const char *finding_id,
                               char *err, size_t errlen);

/* A page of a finding's instances: row 0 is the finding's (finding_id and integration_id;
 * NULL in every instance column), then its instances in asset_id order (finding_id and
 * integration_id NULL: fa_view_instances_append takes them from row 0). No row: the
 * account has no such finding. state NULL: every state; after_asset_id NULL: from the
 * start. Up to limit + 1 instances. */
PGresult *fa_store_list_instances(casb_db *db, const char *account_id, const char *finding_id,
                                  const char *state, const char *after_asset_id, int limit,
                                  char *err, size_t errlen);

/* The account's summary version (summary_versions): 0 rows before the account's first
 * change, else one with column version, which changes with every commit that changes what
 * the summary shows. */
PGresult *fa_store_summary_version(casb_db *db, const char *account_id, char *err,
                                   size_t errlen);
/* The account's findings of status active counted by type and by integration: rows of
 * finding_type, severity and NULL integration_id, and rows of integration_id alone, each
 * with findings (those with instances) and instances (their sum). */
PGresult *fa_store_summary_counts(casb_db *db, const char *account_id, char *err,
                                  size_t errlen);
/* Every integration of the account, oldest first: id, name, provider, health,
 * last_scan_status, last_scan_at. */
PGresult *fa_store_summary_integrations(casb_db *db, const char *account_id, char *err,
                                        size_t errlen);

/* One instance of the account (0 or 1 row), in the columns of fa_store_list_instances. */
PGresult *fa_store_get_instance(casb_db *db, const char *account_id, const char *instance_id,
                                char *err, size_t errlen);

/* The finding's timeline, newest first, events with id < before_id (0: from the newest);
 * up to limit + 1 rows. */
PGresult *fa_store_history(casb_db *db, const char *account_id, const char *finding_id,
                           long long before_id, int limit, char *err, size_t errlen);

/* The last days days (today included), oldest first: day, critical, high, medium, low,
 * summed over the account's integrations (or the one integration_id, NULL: all). */
PGresult *fa_store_trend(casb_db *db, const char *account_id, const char *integration_id,
                         int days, char *err, size_t errlen);

#endif
