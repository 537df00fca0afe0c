#include "im_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/http_client.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/query.h"
#include "im_cursor.h"
#include "im_events.h"
#include "im_integrations.h"
#include "im_validate.h"
#include "im_views.h"
#include "provider.h"

#define POOL_WAIT_MS 5000
#define EVENT_FLUSH_TIMEOUT_MS 5000
/* A connection check is one cheap call: one retry, and never a long Retry-After wait. */
#define CHECK_MAX_RETRIES 1
#define CHECK_MAX_WAIT_S 2

static casb_metric *m_created;
static casb_metric *m_deleted;
static casb_metric *m_check_ok;
static casb_metric *m_check_auth;
static casb_metric *m_check_unavailable;
static casb_metric *m_scans_requested;

static im_app *app_of(casb_http_req *req)
{
    return casb_http_app(req);
}

static const char *allowed_endpoints(const im_app *app)
{
    return app->settings->allowed_endpoints ? app->settings->allowed_endpoints : "";
}

static const char *account_of(casb_http_req *req)
{
    return casb_http_principal(req)->account_id;
}

static json_t *field_member(const char *field)
{
    return json_pack("{s:s}", "field", field);
}

static int reply_internal(casb_http_req *req, const char *operation, const char *err)
{
    casb_log_error("request failed", "operation", operation, "error", err);
    return casb_http_reply_problem(req, 500, "internal error", NULL);
}

static int reply_not_found(casb_http_req *req)
{
    return casb_http_reply_problem(req, 404, "integration not found", NULL);
}

/* The answer to a failed im_integrations_* call. */
static int reply_failure(casb_http_req *req, int rc, const char *operation, const char *err)
{
    if (rc == CASB_ENOTFOUND)
        return reply_not_found(req);
    if (rc == CASB_ECONFLICT)
        return casb_http_reply_problem(req, 409, err, NULL);
    return reply_internal(req, operation, err);
}

static casb_db *acquire(casb_http_req *req)
{
    casb_db *db = casb_db_pool_acquire(app_of(req)->pool, POOL_WAIT_MS);

    if (!db) {
        casb_log_warn("no database connection available");
        casb_http_reply_problem(req, 503, "database unavailable, retry later", NULL);
    }
    return db;
}

static void release(casb_http_req *req, casb_db *db)
{
    casb_db_pool_release(app_of(req)->pool, db);
}

/* Checks the query: with page NULL the route takes no parameters; otherwise it takes limit
 * and cursor, parsed into *page. Returns 0, or the status of the 400 already answered. */
static int read_query(casb_http_req *req, im_page *page)
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

/* The start of every handler that reads the database: the query (see read_query), the
 * path's id when the route has one (id non-NULL), and a pooled connection. An id that is
 * not a UUID names no integration: 404 like an unknown one, before any SQL. Returns the
 * connection, or NULL with *status the answer already sent. */
static casb_db *open_request(casb_http_req *req, im_page *page, const char **id, int *status)
{
    casb_db *db = NULL;

    *status = read_query(req, page);
    if (*status != 0)
        return NULL;
    if (id) {
        *id = casb_http_param(req, "id");
        if (!*id || !casb_uuid_valid(*id)) {
            *status = reply_not_found(req);
            return NULL;
        }
    }
    db = acquire(req);
    if (!db)
        *status = 503;
    return db;
}

/* Events follow the database change they announce; losing one is logged, not undone. */
static void publish_event(casb_http_req *req, const char *event, const char *id,
                          const char *provider)
{
    char err[256];

    if (im_event_publish(app_of(req)->producer, event, id, account_of(req), provider,
                         EVENT_FLUSH_TIMEOUT_MS, err, sizeof(err)) != 0)
        casb_log_error("integration event not published", "event", event, "integration_id", id,
                       "account_id", account_of(req), "error", err);
}

static int list_providers(casb_http_req *req)
{
    int status = read_query(req, NULL);

    if (status != 0)
        return status;
    return casb_http_reply_json(req, 200, im_view_providers(casb_provider_all()));
}

/* One authenticated call to the provider with the submitted credentials, so that a typo is
 * refused now rather than found in the first scan. Returns the provider's verdict. */
static int check_connection(const im_app *app, const im_create_request *cr, char *err,
                            size_t errlen)
{
    casb_http_client_opts opts;
    casb_http_client *http = NULL;
    casb_scan_ctx ctx;
    int rc;

    memset(&opts, 0, sizeof(opts));
    opts.timeout_ms = app->settings->http_timeout_ms;
    opts.connect_timeout_ms = app->settings->http_timeout_ms < 5000
                                  ? app->settings->http_timeout_ms : 5000;
    opts.max_retries = CHECK_MAX_RETRIES;
    opts.max_wait_s = CHECK_MAX_WAIT_S;
    if (casb_http_client_new(&http, &opts, err, errlen) != 0)
        return CASB_ERROR;

    memset(&ctx, 0, sizeof(ctx));
    ctx.config = cr->config;
    ctx.credentials = cr->credentials;
    ctx.http = http;
    ctx.allowed_endpoints = allowed_endpoints(app);
    ctx.now_s = (long long)time(NULL);
    rc = cr->provider->check_connection ? cr->provider->check_connection(&ctx, err, errlen) : 0;
    casb_http_client_free(http);
    return rc;
}

/* Seals the credentials object; *sealed is malloc'ed. The plaintext is wiped at once. */
static int seal_credentials(const im_app *app, const json_t *credentials, char **sealed,
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

static int create_integration(casb_http_req *req)
{
    im_app *app = app_of(req);
    json_t *body = NULL;
    json_t *integration = NULL;
    im_create_request cr;
    im_integration_new row;
    casb_db *db = NULL;
    char *config_json = NULL;
    char *sealed = NULL;
    char id[37];
    char scan_id[37];
    char field[128];
    char err[512];
    int status;
    int rc;

    status = read_query(req, NULL);
    if (status != 0)
        return status;
    body = casb_http_body_json(req);
    if (!body)
        return 400;
    if (im_validate_create(&cr, body, casb_provider_all(), allowed_endpoints(app),
                           field, sizeof(field), err, sizeof(err)) != 0) {
        status = casb_http_reply_problem(req, 422, err, field_member(field));
        goto out;
    }

    rc = check_connection(app, &cr, err, sizeof(err));
    if (rc == CASB_EAUTH) {
        casb_metric_add(m_check_auth, 1);
        status = casb_http_reply_problem(req, 422, err, field_member("credentials"));
        goto out;
    }
    if (rc == CASB_EINVALID) {
        status = casb_http_reply_problem(req, 422, err, field_member("config"));
        goto out;
    }
    if (rc != 0) {
        casb_metric_add(m_check_unavailable, 1);
        casb_log_warn("connection check failed", "provider", cr.provider->id, "error", err);
        status = casb_http_reply_problem(req, 502, err, NULL);
        goto out;
    }
    casb_metric_add(m_check_ok, 1);

    config_json = casb_json_dump(cr.config);
    if (!config_json || seal_credentials(app, cr.credentials, &sealed, err, sizeof(err)) != 0) {
        status = reply_internal(req, "seal credentials", err);
        goto out;
    }
    casb_uuid_v4(id);
    memset(&row, 0, sizeof(row));
    row.id = id;
    row.account_id = account_of(req);
    row.provider = cr.provider->id;
    row.name = cr.name;
    row.config_json = config_json;
    row.credentials_sealed = sealed;
    row.credentials_key_id = casb_keyring_current_id(app->keys);
    row.scan_interval_s = cr.scan_interval_s;

    db = acquire(req);
    if (!db) {
        status = 503;
        goto out;
    }
    rc = im_integrations_create(db, &row, &integration, scan_id, err, sizeof(err));
    release(req, db);
    if (rc != 0) {
        status = reply_internal(req, "create integration", err);
        goto out;
    }
    casb_metric_add(m_created, 1);
    casb_log_info("integration created", "integration_id", id, "account_id", row.account_id,
                  "provider", row.provider, "scan_id", scan_id[0] ? scan_id : NULL);
    publish_event(req, "created", id, row.provider);
    status = casb_http_reply_json(req, 201, integration);
    integration = NULL;
out:
    json_decref(integration);
    json_decref(body);
    free(config_json);
    free(sealed);
    return status;
}

/* GET lists: one page of the account's integrations (of_integration 0) or of the scans of
 * the integration in the path (1), as {"<noun>": [...], "next_cursor": ...}. */
static int list_page(casb_http_req *req, int of_integration)
{
    const char *id = NULL;
    json_t *items = NULL;
    json_t *body = NULL;
    char *next = NULL;
    im_page page;
    casb_db *db = NULL;
    char err[512];
    int status;
    int rc;

    db = open_request(req, &page, of_integration ? &id : NULL, &status);
    if (!db)
        return status;
    if (id)
        rc = im_integrations_scans(db, account_of(req), id, &page, &items, &next, err,
                                   sizeof(err));
    else
        rc = im_integrations_list(db, account_of(req), &page, &items, &next, err, sizeof(err));
    release(req, db);
    if (rc != 0)
        return reply_failure(req, rc, id ? "list scans" : "list integrations", err);
    body = json_object();
    json_object_set_new(body, id ? "scans" : "integrations", items);
    json_object_set_new(body, "next_cursor", next ? json_string(next) : json_null());
    free(next);
    return casb_http_reply_json(req, 200, body);
}

static int list_integrations(casb_http_req *req)
{
    return list_page(req, 0);
}

static int list_scans(casb_http_req *req)
{
    return list_page(req, 1);
}

static int get_integration(casb_http_req *req)
{
    const char *id = NULL;
    json_t *integration = NULL;
    casb_db *db = NULL;
    char err[512];
    int status;
    int rc;

    db = open_request(req, NULL, &id, &status);
    if (!db)
        return status;
    rc = im_integrations_get(db, account_of(req), id, &integration, err, sizeof(err));
    release(req, db);
    if (rc != 0)
        return reply_failure(req, rc, "get integration", err);
    return casb_http_reply_json(req, 200, integration);
}

static int delete_integration(casb_http_req *req)
{
    const char *id = NULL;
    casb_db *db = NULL;
    char provider[64];
    char err[512];
    int status;
    int rc;

    db = open_request(req, NULL, &id, &status);
    if (!db)
        return status;
    rc = im_integrations_delete(db, account_of(req), id, provider, sizeof(provider), err,
                                sizeof(err));
    release(req, db);
    if (rc != 0)
        return reply_failure(req, rc, "delete integration", err);
    casb_metric_add(m_deleted, 1);
    casb_log_info("integration deleted", "integration_id", id, "account_id", account_of(req),
                  "provider", provider);
    publish_event(req, "deleted", id, provider);
    return casb_http_reply_json(req, 204, NULL);
}

/* pause, resume and scan now: one action on the integration. Returns 0 with *out (owned by
 * the caller) and *changed, or the status already answered. */
static int run_action(casb_http_req *req, im_integration_action action, const char *operation,
                      const char **id, json_t **out, int *changed)
{
    casb_db *db = NULL;
    char err[512];
    int status;
    int rc;

    *out = NULL;
    *changed = 0;
    db = open_request(req, NULL, id, &status);
    if (!db)
        return status;
    rc = action(db, account_of(req), *id, out, changed, err, sizeof(err));
    release(req, db);
    if (rc != 0)
        return reply_failure(req, rc, operation, err);
    return 0;
}

/* pause and resume: the same shape, a different change and event. */
static int change_state(casb_http_req *req, im_integration_action change, const char *event)
{
    const char *id = NULL;
    json_t *integration = NULL;
    int changed = 0;
    int status;

    status = run_action(req, change, event, &id, &integration, &changed);
    if (status != 0)
        return status;
    if (changed) {
        casb_log_info("integration state changed", "event", event, "integration_id", id,
                      "account_id", account_of(req));
        publish_event(req, event, id, json_string_value(json_object_get(integration, "provider")));
    }
    return casb_http_reply_json(req, 200, integration);
}

static int pause_integration(casb_http_req *req)
{
    return change_state(req, im_integrations_pause, "paused");
}

static int resume_integration(casb_http_req *req)
{
    return change_state(req, im_integrations_resume, "resumed");
}

static int request_scan(casb_http_req *req)
{
    const char *id = NULL;
    json_t *scan = NULL;
    int created = 0;
    int status;

    status = run_action(req, im_integrations_scan_now, "scan now", &id, &scan, &created);
    if (status != 0)
        return status;
    if (created) {
        casb_metric_add(m_scans_requested, 1);
        casb_log_info("scan requested", "integration_id", id, "account_id", account_of(req),
                      "scan_id", json_string_value(json_object_get(scan, "id")));
    }
    return casb_http_reply_json(req, 202, scan);
}

static void register_metrics(void)
{
    m_created = casb_metrics_counter("casb_integrations_created_total",
                                     "Integrations created.", NULL);
    m_deleted = casb_metrics_counter("casb_integrations_deleted_total",
                                     "Integrations deleted.", NULL);
    m_check_ok = casb_metrics_counter("casb_connection_checks_total",
                                      "Connection checks of new integrations, by result.",
                                      "result=\"ok\"");
    m_check_auth = casb_metrics_counter("casb_connection_checks_total",
                                        "Connection checks of new integrations, by result.",
                                        "result=\"auth_failed\"");
    m_check_unavailable = casb_metrics_counter(
        "casb_connection_checks_total", "Connection checks of new integrations, by result.",
        "result=\"unavailable\"");
    m_scans_requested = casb_metrics_counter("casb_manual_scans_requested_total",
                                             "Scans queued by the scan-now endpoint.", NULL);
}

int im_server_start(casb_http_server **out, im_app *app, char *err, size_t errlen)
{
    static const struct {
        const char *method;
        const char *pattern;
        casb_http_handler handler;
    } routes[] = {
        {"GET", "/v1/providers", list_providers},
        {"POST", "/v1/integrations", create_integration},
        {"GET", "/v1/integrations", list_integrations},
        {"GET", "/v1/integrations/{id}", get_integration},
        {"DELETE", "/v1/integrations/{id}", delete_integration},
        {"POST", "/v1/integrations/{id}/pause", pause_integration},
        {"POST", "/v1/integrations/{id}/resume", resume_integration},
        {"POST", "/v1/integrations/{id}/scans", request_scan},
        {"GET", "/v1/integrations/{id}/scans", list_scans},
    };
    casb_http_server_opts opts;
    casb_http_server *s = NULL;

    *out = NULL;
    register_metrics();
    memset(&opts, 0, sizeof(opts));
    opts.addr = app->settings->http_addr;
    opts.auth = app->auth;
    opts.ready = im_app_ready;
    opts.app = app;
    if (casb_http_server_new(&s, &opts, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (casb_http_route(s, routes[i].method, routes[i].pattern, routes[i].handler, 0) != 0) {
            casb_fail(err, errlen, CASB_ERROR, "cannot register %s %s", routes[i].method,
                      routes[i].pattern);
            goto fail;
        }
    }
    if (casb_http_server_start(s, err, errlen) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    casb_http_server_free(s);
    return -1;
}
