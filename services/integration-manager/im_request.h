#ifndef IM_REQUEST_H
#define IM_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#include "casb/db.h"
#include "casb/http_client.h"
#include "casb/http_server.h"
#include "casb/oauth.h"
#include "im_app.h"
#include "im_audit.h"
#include "im_cursor.h"
#include "provider.h"

/* What the integration-manager's request handlers share (im_routes.c, im_oauth_routes.c).
 * Functions that answer return the status they sent, like casb_http_reply_*. */

void im_request_metrics_init(void); /* once, before the server starts */

im_app *im_req_app(casb_http_req *req);
const char *im_req_account(casb_http_req *req);
const char *im_req_allowed_endpoints(const im_app *app); /* "" when unset */

json_t *im_field_member(const char *field); /* {"field": field}, for problem details */
int im_reply_internal(casb_http_req *req, const char *operation, const char *err); /* logs */
int im_reply_not_found(casb_http_req *req);
/* The answer to a failed im_integrations_* call: 404, 409 with err, or 500. */
int im_reply_failure(casb_http_req *req, int rc, const char *operation, const char *err);

/* A pooled connection, or NULL after answering 503. */
casb_db *im_req_acquire(casb_http_req *req);
void im_req_release(casb_http_req *req, casb_db *db);

/* Checks the query: with page NULL the route takes no parameters; otherwise it takes limit
 * and cursor, parsed into *page. Returns 0, or the status of the 400 already answered. */
int im_req_read_query(casb_http_req *req, im_page *page);
/* The start of every handler that reads the database: the query (see im_req_read_query),
 * the path's id when the route has one (id non-NULL; not a UUID: 404 before any SQL), and a
 * pooled connection. Returns it, or NULL with *status the answer already sent. */
casb_db *im_req_open(casb_http_req *req, im_page *page, const char **id, int *status);

/* Publishes an integration event after the change it announces; a loss is logged. */
void im_publish_event(casb_http_req *req, const char *event, const char *id,
                      const char *provider);

/* What a mutating request leaves in the audit log when it is refused: its action, the
 * integration it named (when it named a valid id) and the detail of the refusal. A
 * successful change writes its entry in its own transaction (im_audit_note) instead. */
typedef struct {
    const char *action; /* NULL: the refusal is the caller's to record (OAuth callback) */
    const char *id;
    char detail[512];
    int recorded;       /* the refusal's entry is written already */
} im_audit_ctx;

void im_audit_detail(im_audit_ctx *a, const char *detail);
/* problem+json answer that the audit log remembers: the entry is written before the answer
 * goes out, so a client that reads the log after a refusal finds it. extra is stolen (may
 * be NULL). */
int im_refuse(casb_http_req *req, im_audit_ctx *a, int status, const char *detail,
              json_t *extra);
/* The note of a change by the request's principal (details borrowed). */
im_audit_note im_note_for(casb_http_req *req, const char *action, int status_code,
                          const json_t *details);
/* Writes an entry outside any change (a refusal, or an idempotent request that changed
 * nothing) for the request's principal. details is stolen. A loss is logged and counted. */
void im_audit_outside(casb_http_req *req, const char *action, const char *id, int status,
                      json_t *details);

typedef int (*im_audited_handler)(casb_http_req *req, im_audit_ctx *a);
/* Runs a mutating handler and records its refusal (not a 503, which cannot be written). */
int im_run_audited(casb_http_req *req, const char *action, im_audited_handler fn);
/* The path's id for an audited request, or NULL after answering 404. */
const char *im_audited_id(casb_http_req *req, im_audit_ctx *a, int *status);

/* The HTTP client of calls to providers made while a user waits (connection checks, OAuth
 * code exchanges): the configured timeout, one retry, no long Retry-After wait. */
int im_provider_http(const im_app *app, casb_http_client **out, char *err, size_t errlen);

/* The provider's OAuth endpoints and client as the operator configured them
 * (casb_provider_oauth_endpoints over this service's settings). Same returns. */
int im_oauth_endpoints(const im_app *app, const casb_provider *provider,
                       casb_oauth_endpoints *out, char *err, size_t errlen);

/* One authenticated call to the provider with the given credentials. stored_id: the
 * credentials are the stored ones of that integration, opened by the caller; expired OAuth
 * tokens among them are renewed (and stored) first, updating credentials in place. NULL
 * for submitted credentials. Returns the provider's verdict: 0, CASB_EAUTH, CASB_EINVALID,
 * CASB_EUNAVAILABLE or CASB_ERROR. */
int im_check_connection(const im_app *app, const casb_provider *provider, const json_t *config,
                        const json_t *credentials, const char *stored_id, char *err,
                        size_t errlen);
/* im_check_connection with its answer: 0 when the provider accepted the credentials, else
 * the status already sent (422 refused credentials or config, 502 unreachable). */
int im_checked_connection(casb_http_req *req, im_audit_ctx *a, const casb_provider *provider,
                          const json_t *config, const json_t *credentials,
                          const char *stored_id);
/* Seals the credentials object; *sealed is malloc'ed. The plaintext is wiped at once. */
int im_seal_credentials(const im_app *app, const json_t *credentials, char **sealed, char *err,
                        size_t errlen);

#endif
