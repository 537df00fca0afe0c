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

/* Instances of a finding in asset_id order. state NULL: every state; after_asset_id NULL:
 * from the start. */
PGresult *fa_store_list_instances(casb_db *db, const char *account_id, const char *finding_id,
                                  const char *state, const char *after_asset_id, int limit,
                                  char *err, size_t errlen);

/* Active findings (status active, instance_count > 0) of the account grouped by finding
 * type: finding_type, severity, findings, instances. */
PGresult *fa_store_summary_by_type(casb_db *db, const char *account_id, char *err,
                                   size_t errlen);
/* Every integration of the account with its active finding and instance counts. */
PGresult *fa_store_summary_by_integration(casb_db *db, const char *account_id, char *err,
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
