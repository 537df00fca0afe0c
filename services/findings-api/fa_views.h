#ifndef FA_VIEWS_H
#define FA_VIEWS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "casb/json.h"
#include "fa_catalogue.h"
#include "fa_store.h"

/* JSON representations of the API's resources, built from fa_store rows and the catalogue,
 * and the opaque pagination cursors. Every function returns a new reference (NULL only when
 * out of memory). */

/* A finding row. detailed adds description, impact, remediation and evidence from the
 * catalogue (GET /v1/findings/{id}). */
json_t *fa_view_finding(const PGresult *res, int row, const fa_catalogue *cat, int detailed);
json_t *fa_view_instance(const PGresult *res, int row);

/* The first n rows of res as the items of a list page, comma-separated, appended to out
 * (the functions above parse what these write). Findings are detailed, with the catalogue
 * members serialised once per type (fa_finding_type.detail_json); instances carry their
 * details as PostgreSQL returned them. 0 or -1. */
int fa_view_findings_append(casb_text *out, const PGresult *res, int n,
                            const fa_catalogue *cat);
/* The first n instances of a page of fa_store_list_instances (rows 1 to n), each with the
 * finding's ids of its row 0. */
int fa_view_instances_append(casb_text *out, const PGresult *res, int n);
/* Instances with their finding's type, severity and status (fa_store_list_all_instances). */
int fa_view_instances_of_append(casb_text *out, const PGresult *res, int n,
                                const fa_catalogue *cat);
/* The summary from fa_store_summary_counts and fa_store_summary_integrations rows. */
json_t *fa_view_summary(const PGresult *counts, const PGresult *integrations,
                        const fa_catalogue *cat);

/* One timeline event (fa_store_history row). */
json_t *fa_view_event(const PGresult *res, int row);
/* {"days": [{"day","critical","high","medium","low"}, ...]} from fa_store_trend rows. */
json_t *fa_view_trend(const PGresult *res);

/* Cursors are base64url text, opaque to clients. Findings: the last row's sort key. */
char *fa_cursor_findings_encode(const fa_findings_cursor *c); /* malloc'ed */
/* 0, or -1 when the cursor is not one of ours. */
int fa_cursor_findings_decode(const char *cursor, fa_findings_cursor *out);
/* Instances: the last row's asset id. */
char *fa_cursor_instances_encode(const char *asset_id);
char *fa_cursor_instances_decode(const char *cursor); /* malloc'ed, NULL when invalid */
/* All instances (GET /v1/instances): the last row's finding and asset ids. */
char *fa_cursor_all_instances_encode(const char *finding_id, const char *asset_id);
int fa_cursor_all_instances_decode(const char *cursor, char finding_id[37], char *asset_id,
                                   size_t asset_len);
/* Timeline events: the last row's id; decode answers -1 when the cursor is not one of ours. */
char *fa_cursor_events_encode(long long id);
long long fa_cursor_events_decode(const char *cursor);

#endif
