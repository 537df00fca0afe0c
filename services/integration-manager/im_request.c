/* What the integration-manager's request handlers share: the request's app and account,
 * answers, the pooled connection, the audit trail of refusals, events, and the connection
 * check and sealing of submitted credentials. */
#include "im_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/http_client.h"
#include "casb/integration.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/query.h"
#include "im_events.h"

#define POOL_WAIT_MS 5000
#define EVENT_FLUSH_TIMEOUT_MS 5000
/* A connection check is one cheap call: one retry, and never a long Retry-After wait. */
#define CHECK_MAX_RETRIES 1
#define CHECK_MAX_WAIT_S 2

static casb_metric *m_check_ok;
static casb_metric *m_check_auth;
static casb_metric *m_check_unavailable;
static casb_metric *m_audit_failed;

void im_request_metrics_init(void)
{
    m_check_ok = casb_metrics_counter("casb_connection_checks_total",
                                      "Connection checks of new integrations, by result.",
                                      "result=\"ok\"");
    m_check_auth = casb_metrics_counter("casb_connection_checks_total",
                                        "Connection checks of new integrations, by result.",
                                        "result=\"auth_failed\"");
    m_check_unavailable = casb_metrics_counter(
        "casb_connection_checks_total", "Connection checks of new integrations, by result.",
        "result=\"unavailable\"");
    m_audit_failed = casb_metrics_counter("casb_audit_entries_failed_total",
                                          "Audit entries of refused requests not written.",
                                          NULL);
}

im_app *im_req_app(casb_http_req *req)
{
    return casb_http_app(req);
}

const char *im_req_allowed_endpoints(const im_app *app)
{
    return app->settings->allowed_endpoints ? app->settings->allowed_endpoints : "";
}

const char *im_req_account(casb_http_req *req)
{
    return casb_http_principal(req)->account_id;
}

json_t *im_field_member(const char *field)
{
    return json_pack("{s:s}", "field", field);
}

int im_reply_internal(casb_http_req *req, const char *operation, const char *err)
{
    casb_log_error("request failed", "operation", operation, "error", err);
    return casb_http_reply_problem(req, 500, "internal error", NULL);
}

int im_reply_not_found(casb_http_req *req)
{
    return casb_http_reply_problem(req, 404, "integration not found", NULL);
}

/* The answer to a failed im_integrations_* call. */
int im_reply_failure(casb_http_req *req, int rc, const char *operation, const char *err)
{
    if (rc == CASB_ENOTFOUND)
        return im_reply_not_found(req);
    if (rc == CASB_ECONFLICT)
        return casb_http_reply_problem(req, 409, err, NULL);
    return im_reply_internal(req, operation, err);
}

casb_db *im_req_acquire(casb_http_req *req)
{
    casb_db *db = casb_db_pool_acquire(im_req_app(req)->pool, POOL_WAIT_MS);

    if (!db) {
        casb_log_warn("no database connection available");
        casb_http_reply_problem(req, 503, "database unavailable, retry later", NULL);
    }
    return db;
}

void im_req_release(casb_http_req *req, casb_db *db)
{
    casb_db_pool_release(im_req_app(req)->pool, db);
}

/* Checks the query: with page NULL the route takes no parameters; otherwise it takes limit
 * and cursor, parsed into *page. Returns 0, or the status of the 400 already answered. */
int im_req_read_query(casb_http_req *req, im_page *page)
{
    const char *limit = NULL;
    const char *cursor = NULL;
    const casb_query_param none[] = {{NULL, NULL}};
    const casb_query_param paging[] = {{"limit", &limit}, {"cursor", &cursor}, {NULL, NULL}};
    casb_query_text text;
    const char *param = NULL;
    char err[256];
    int status;

    status = casb_query_read(req, page ? paging : none, page ? &text : NULL);
    if (status != 0 || !page)
        return status;
    if (im_page_parse(page, limit, cursor, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(req, param, err);
    return 0;
}

/* The start of every handler that reads the database: the query (see im_req_read_query), the
 * path's id when the route has one (id non-NULL), and a pooled connection. An id that is
 * not a UUID names no integration: 404 like an unknown one, before any SQL. Returns the
 * connection, or NULL with *status the answer already sent. */
casb_db *im_req_open(casb_http_req *req, im_page *page, const char **id, int *status)
{
    casb_db *db = NULL;

    *status = im_req_read_query(req, page);
    if (*status != 0)
        return NULL;
    if (id) {
        *id = casb_http_param(req, "id");
        if (!*id || !casb_uuid_valid(*id)) {
            *status = im_reply_not_found(req);
            return NULL;
        }
    }
    db = im_req_acquire(req);
    if (!db)
        *status = 503;
    return db;
}

/* Events follow the database change they announce; losing one is logged, not undone. */
void im_publish_event(casb_http_req *req, const char *event, const char *id,
                      const char *provider)
{
    char err[256];

    if (im_event_publish(im_req_app(req)->producer, event, id, im_req_account(req), provider,
                         EVENT_FLUSH_TIMEOUT_MS, err, sizeof(err)) != 0)
        casb_log_error("integration event not published", "event", event, "integration_id", id,
                       "account_id", im_req_account(req), "error", err);
}

void im_audit_detail(im_audit_ctx *a, const char *detail)
{
    if (a && detail)
        snprintf(a->detail, sizeof(a->detail), "%s", detail);
}

/* problem+json answer that the audit log remembers. */
int im_refuse(casb_http_req *req, im_audit_ctx *a, int status, const char *detail,
              json_t *extra)
{
    im_audit_detail(a, detail);
    if (a && a->action && !a->recorded && status != 503) {
        im_audit_outside(req, a->action, a->id, status, json_pack("{s:s}", "error", a->detail));
        a->recorded = 1;
    }
    return casb_http_reply_problem(req, status, detail, extra);
}

im_audit_note im_note_for(casb_http_req *req, const char *action, int status_code,
                          const json_t *details)
{
    im_audit_note n;

    n.who = casb_http_principal(req);
    n.action = action;
    n.status_code = status_code;
    n.details = details;
    return n;
}

/* Writes an entry outside any change: a refusal, or an idempotent request that changed
 * nothing. Losing it is logged and counted, never turned into a failed answer. */
void im_audit_outside(casb_http_req *req, const char *action, const char *id, int status,
                      json_t *details)
{
    casb_db *db = casb_db_pool_acquire(im_req_app(req)->pool, POOL_WAIT_MS);
    char err[256];

    if (!db || im_audit_record(db, casb_http_principal(req), action, id, status, details, err,
                               sizeof(err)) != 0) {
        if (!db) {
            json_decref(details);
            snprintf(err, sizeof(err), "no database connection");
        }
        casb_metric_add(m_audit_failed, 1);
        casb_log_error("audit entry not written", "action", action, "integration_id", id,
                       "account_id", im_req_account(req), "error", err);
    }
    if (db)
        im_req_release(req, db);
}

/* Runs a mutating handler and records its refusal. A 503 (no database) cannot be written
 * and is only logged; a request whose reply failed (-1) changed nothing and is not an
 * answer anyone saw. */
int im_run_audited(casb_http_req *req, const char *action, im_audited_handler fn)
{
    im_audit_ctx a;
    int status;

    memset(&a, 0, sizeof(a));
    a.action = action;
    status = fn(req, &a);
    if (status >= 400 && status != 503 && !a.recorded) {
        /* Refusals answered outside im_refuse (a bad query or body): recorded after. */
        const char *detail = a.detail[0] ? a.detail
                             : status == 404 ? "integration not found"
                             : status == 400 ? "bad request"
                             : status >= 500 ? "internal error"
                             : "refused";
        im_audit_outside(req, action, a.id, status, json_pack("{s:s}", "error", detail));
    }
    return status;
}

/* The path's id for an audited request: a UUID, or 404 (an id that is not a UUID names no
 * integration). Returns NULL after answering. */
const char *im_audited_id(casb_http_req *req, im_audit_ctx *a, int *status)
{
    const char *id = casb_http_param(req, "id");

    if (!id || !casb_uuid_valid(id)) {
        *status = im_refuse(req, a, 404, "integration not found", NULL);
        return NULL;
    }
    a->id = id;
    return id;
}

int im_provider_http(const im_app *app, casb_http_client **out, char *err, size_t errlen)
{
    casb_http_client_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.timeout_ms = app->settings->http_timeout_ms;
    opts.connect_timeout_ms = app->settings->http_timeout_ms < 5000
                                  ? app->settings->http_timeout_ms : 5000;
    opts.max_retries = CHECK_MAX_RETRIES;
    opts.max_wait_s = CHECK_MAX_WAIT_S;
    return casb_http_client_new(out, &opts, err, errlen) == 0 ? 0 : CASB_ERROR;
}

/* The operator's OAuth client registrations, from this service's settings. */
#define IM_OAUTH_REGISTRATIONS 1
static void oauth_registrations(const im_app *app,
                                casb_oauth_registration regs[IM_OAUTH_REGISTRATIONS])
{
    const im_settings *st = app->settings;

    regs[0] = (casb_oauth_registration){"github", st->github_oauth_client_id,
                                        st->github_oauth_client_secret, st->github_web_url,
                                        st->github_app_slug};
}

int im_oauth_endpoints(const im_app *app, const casb_provider *provider,
                       casb_oauth_endpoints *out, char *err, size_t errlen)
{
    casb_oauth_registration regs[IM_OAUTH_REGISTRATIONS];

    oauth_registrations(app, regs);
    return casb_provider_oauth_endpoints(provider, regs, IM_OAUTH_REGISTRATIONS,
                                         im_req_allowed_endpoints(app), out, err, errlen);
}

/* What renewing stored OAuth tokens during a connection check needs. */
typedef struct {
    const im_app *app;
    const casb_provider *provider;
    const char *integration_id;
    json_t *credentials;
} renew_ctx;

/* ctx->renew_credentials of a check on stored OAuth credentials: the access token of an
 * integration that was not scanned for hours has expired; renewing it here is what the
 * worker would do, under the same row lock. */
static int renew_stored(casb_scan_ctx *ctx, char *err, size_t errlen)
{
    renew_ctx *r = ctx->renew_ud;
    casb_oauth_registration regs[IM_OAUTH_REGISTRATIONS];
    casb_db *db;
    int rc;

    oauth_registrations(r->app, regs);
    db = casb_db_pool_acquire(r->app->pool, POOL_WAIT_MS);
    if (!db)
        return casb_fail(err, errlen, CASB_ERROR, "no database connection");
    rc = casb_provider_oauth_renew(r->provider, regs, IM_OAUTH_REGISTRATIONS,
                                   im_req_allowed_endpoints(r->app), db, r->app->keys,
                                   ctx->http, r->integration_id, r->credentials, err, errlen);
    casb_db_pool_release(r->app->pool, db);
    return rc;
}

int im_check_connection(const im_app *app, const casb_provider *provider,
                        const json_t *config, const json_t *credentials,
                        const char *stored_id, char *err, size_t errlen)
{
    casb_http_client *http = NULL;
    casb_scan_ctx ctx;
    /* Only stored credentials (stored_id set) are renewed; the caller owns that object. */
    renew_ctx renew = {app, provider, stored_id, (json_t *)credentials};
    int rc;

    if (im_provider_http(app, &http, err, errlen) != 0)
        return CASB_ERROR;
    memset(&ctx, 0, sizeof(ctx));
    ctx.config = config;
    ctx.credentials = credentials;
    ctx.http = http;
    ctx.allowed_endpoints = im_req_allowed_endpoints(app);
    ctx.now_s = (long long)time(NULL);
    if (stored_id && casb_oauth_is_credentials(credentials)) {
        ctx.renew_credentials = renew_stored;
        ctx.renew_ud = &renew;
    }
    rc = provider->check_connection ? provider->check_connection(&ctx, err, errlen) : 0;
    casb_http_client_free(http);
    return rc;
}

/* im_check_connection with its answer: 0 when the provider accepted the credentials, else the
 * status already sent (422 for refused credentials or config, 502 unreachable). */
int im_checked_connection(casb_http_req *req, im_audit_ctx *a, const casb_provider *provider,
                          const json_t *config, const json_t *credentials,
                          const char *stored_id)
{
    char err[512];
    int rc;

    rc = im_check_connection(im_req_app(req), provider, config, credentials, stored_id, err,
                             sizeof(err));
    if (rc == CASB_EAUTH) {
        casb_metric_add(m_check_auth, 1);
        return im_refuse(req, a, 422, err, im_field_member("credentials"));
    }
    if (rc == CASB_EINVALID)
        return im_refuse(req, a, 422, err, im_field_member("config"));
    if (rc != 0) {
        casb_metric_add(m_check_unavailable, 1);
        casb_log_warn("connection check failed", "provider", provider->id, "error", err);
        return im_refuse(req, a, 502, err, NULL);
    }
    casb_metric_add(m_check_ok, 1);
    return 0;
}

/* Seals the credentials object; *sealed is malloc'ed. The plaintext is wiped at once. */
int im_seal_credentials(const im_app *app, const json_t *credentials, char **sealed,
                        char *err, size_t errlen)
{
    char *plain = casb_json_dump(credentials);
    int rc;

    if (!plain)
        return casb_fail(err, errlen, CASB_ERROR, "cannot serialise credentials");
    rc = casb_secret_seal(app->keys, plain, strlen(plain), sealed, err, errlen);
    casb_secret_wipe(plain, strlen(plain));
    free(plain);
    return rc;
}