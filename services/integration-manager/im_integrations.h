#ifndef IM_INTEGRATIONS_H
#define IM_INTEGRATIONS_H

#include <jansson.h>
#include <stddef.h>

#include "casb/db.h"
#include "casb/integration.h"
#include "im_audit.h"
#include "im_cursor.h"

/* The integration-manager's SQL: integrations and the scan requests made on them. Every
 * statement is scoped to the caller's account, so another account's id behaves exactly like
 * an unknown one (CASB_ENOTFOUND). Results are JSON in the shapes of im_views.h (new
 * references owned by the caller). Functions return 0, CASB_ENOTFOUND, CASB_ECONFLICT, or
 * -1 with err set (a database failure). A successful change writes the entry of its note (an
 * im_audit_note, may be NULL) in its own transaction, so an audited change and its entry
 * commit or fail together. */

/* Times leave PostgreSQL already in RFC 3339 UTC; the microsecond form is a cursor key. */
#define IM_SQL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define IM_SQL_TS_US(col)                                                                    \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* Runs a keyset list statement (ordered by a timestamp and id, selecting them as cursor_at
 * and id) whose last parameter, filled here, is the row count; turns up to page->limit rows
 * into items with view, and *next_cursor (malloc'ed) names the next page, or is NULL. */
int im_query_page(casb_db *db, const char *sql, int n, const char **params, const im_page *page,
                  json_t *(*view)(const PGresult *, int), json_t **items, char **next_cursor,
                  char *err, size_t errlen);

typedef struct {
    const char *id;         /* fresh UUID */
    const char *account_id;
    const char *provider;
    const char *name;
    const char *config_json;        /* non-secret settings, a JSON object */
    const char *credentials_sealed; /* casb_secret_seal envelope */
    const char *credentials_key_id;
    long scan_interval_s;
} im_integration_new;

/* Inserts the integration (next scan one interval from now) and queues its first scan, in
 * one transaction. first_scan_id receives the queued scan's id. */
int im_integrations_create(casb_db *db, const im_integration_new *in, const im_audit_note *note,
                           json_t **out, char first_scan_id[37], char *err, size_t errlen);

int im_integrations_get(casb_db *db, const char *account_id, const char *id, json_t **out,
                        char *err, size_t errlen);

/* Filters of the list: NULL members match everything. */
typedef struct {
    const char *health;
    const char *provider;
} im_integration_filter;

/* One page in creation order, after page->cursor when it has one, of the integrations the
 * filter (may be NULL) matches. *items is an array; *next_cursor is malloc'ed, or NULL on
 * the last page. */
int im_integrations_list(casb_db *db, const char *account_id, const im_page *page,
                         const im_integration_filter *filter, json_t **items,
                         char **next_cursor, char *err, size_t errlen);



/* A change of PATCH or reauthorize; NULL (0) members stay as they are. */
typedef struct {
    const char *id;
    const char *account_id;
    const char *name;
    long scan_interval_s;           /* next_scan_at moves to last scan (or now) + interval */
    const char *config_json;
    const char *credentials_sealed; /* with credentials_key_id */
    const char *credentials_key_id;
    int reauthorize; /* unless paused: health 'initializing' and a scan queued (manual) */
} im_integration_change;

/* Applies the change under the row lock. *out is the integration; scan_id the scan queued by
 * a reauthorization ("" when none was, e.g. one was queued or running already). */
int im_integrations_update(casb_db *db, const im_integration_change *ch,
                           const im_audit_note *note, json_t **out, char scan_id[37], char *err,
                           size_t errlen);

/* Deletes the integration; findings, instances, scans and queued jobs go with it (ON DELETE
 * CASCADE). provider receives the deleted integration's provider id. */
int im_integrations_delete(casb_db *db, const char *account_id, const char *id,
                           const im_audit_note *note, char *provider, size_t providerlen,
                           char *err, size_t errlen);

/* pause, resume and scan now share one shape: a change made under the integration's row
 * lock, answered with the resulting object (*out), *changed saying whether anything
 * happened (an event or a metric follows only then). */
typedef int (*im_integration_action)(casb_db *db, const char *account_id, const char *id,
                                     const im_audit_note *note, json_t **out, int *changed,
                                     char *err, size_t errlen);

/* Pauses: no scheduled scans, health 'paused', queued (not yet started) scans cancelled.
 * Idempotent: *changed is 0 when it was paused already. *out is the integration. */
int im_integrations_pause(casb_db *db, const char *account_id, const char *id,
                          const im_audit_note *note, json_t **out, int *changed, char *err,
                          size_t errlen);

/* Resumes: health back ('healthy' after a successful last scan, else 'initializing'), next
 * scheduled scan one interval from now, and a scan queued at once (reason 'resume').
 * Idempotent: *changed is 0 when it was not paused. *out is the integration. */
int im_integrations_resume(casb_db *db, const char *account_id, const char *id,
                           const im_audit_note *note, json_t **out, int *changed, char *err,
                           size_t errlen);

/* Queues a manual scan. CASB_ECONFLICT when paused. When a scan is queued or running
 * already, *out is that scan and *created 0; otherwise the new scan and *created 1. */
int im_integrations_scan_now(casb_db *db, const char *account_id, const char *id,
                             const im_audit_note *note, json_t **out, int *created, char *err,
                             size_t errlen);

/* One page of the integration's scans, newest first, before page->cursor when it has
 * one. */
int im_integrations_scans(casb_db *db, const char *account_id, const char *id,
                          const im_page *page, json_t **items, char **next_cursor, char *err,
                          size_t errlen);

#endif
