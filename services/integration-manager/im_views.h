#ifndef IM_VIEWS_H
#define IM_VIEWS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "provider.h"

/* The JSON shapes of the integration-manager API. Each returns a new reference (NULL only
 * when out of memory). Rows come from the column lists of im_integrations.c: timestamps are
 * already RFC 3339 UTC strings, jsonb columns are their text. Credentials have no column
 * there, so no view can leak them. */

/* id, provider, name, config, health, health_reason, paused, scan_interval_s, last_scan_at,
 * last_scan_status, last_scan, next_scan_at, created_at, updated_at. last_scan is the most
 * recent finished (succeeded or failed) scan, {id, status, reason, finished_at, error}, from
 * the row's last_scan column (a JSON text), or null. */
json_t *im_view_integration(const PGresult *res, int row);

/* id, integration_id, status, reason, queued_at, started_at, finished_at, duration_ms,
 * stats, coverage, error. */
json_t *im_view_scan(const PGresult *res, int row);

/* One catalogue entry of GET /v1/providers: id, name, auth_methods, config_fields,
 * credential_fields, permissions, default_scan_interval_s, finding_types_count. */
json_t *im_view_provider(const casb_provider *p);

/* {"providers":[...],"next_cursor":null} for a NULL-terminated registry. */
json_t *im_view_providers(const casb_provider *const *all);

/* One audit log entry: id (a number), at, actor, action, integration_id, outcome,
 * status_code, details. */
json_t *im_view_audit_entry(const PGresult *res, int row);

/* An API token as GET /v1/tokens shows it (schema ApiToken): never its secret. */
json_t *im_view_token(const PGresult *res, int row);

#endif
