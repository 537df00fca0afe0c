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
#include "im_audit.h"
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
static casb_metric *m_updated;
static casb_metric *m_audit_failed;

/* The health values of integrations (the CHECK of the integrations table). */
static const char *const health_values[] = {"initializing", "healthy", "unhealthy",
                                            "needs_reauthorization", "paused", NULL};

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

/* What a mutating request leaves in the audit log when it is refused: its action, the
 * integration it named (when it named a valid id) and the detail of the refusal. A
 * successful change writes its entry in its own transaction (im_audit_note) instead. */
typedef struct {
    const char *action;
    const char *id;
    char detail[512];
} audit_ctx;

static void audit_detail(audit_ctx *a, const char *detail)
{
    if (a && detail)
        snprintf(a->detail, sizeof(a->detail), "%s", detail);
}

/* problem+json answer that the audit log remembers. */
static int refuse(casb_http_req *req, audit_ctx *a, int status, const char *detail,
                  json_t *extra)
{
    audit_detail(a, detail);
    return casb_http_reply_problem(req, status, detail, extra);
}

static im_audit_note note_for(casb_http_req *req, const char *action, int status_code,
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
static void audit_outside(casb_http_req *req, const char *action, const char *id, int status,
                          json_t *details)
{
    casb_db *db = casb_db_pool_acquire(app_of(req)->pool, POOL_WAIT_MS);
    char err[256];

    if (!db || im_audit_record(db, casb_http_principal(req), action, id, status, details, err,
                               sizeof(err)) != 0) {
        if (!db) {
            json_decref(details);
            snprintf(err, sizeof(err), "no database connection");
        }
        casb_metric_add(m_audit_failed, 1);
        casb_log_error("audit entry not written", "action", action, "integration_id", id,
                       "account_id", account_of(req), "error", err);
    }
    if (db)
        release(req, db);
}

typedef int (*audited_handler)(casb_http_req *req, audit_ctx *a);

/* Runs a mutating handler and records its refusal. A 503 (no database) cannot be written
 * and is only logged; a request whose reply failed (-1) changed nothing and is not an
 * answer anyone saw. */
static int run_audited(casb_http_req *req, const char *action, audited_handler fn)
{
    audit_ctx a;
    int status;

    memset(&a, 0, sizeof(a));
    a.action = action;
    status = fn(req, &a);
    if (status >= 400 && status != 503) {
        const char *detail = a.detail[0] ? a.detail
                             : status == 404 ? "integration not found"
                             : status == 400 ? "bad request"
                             : status >= 500 ? "internal error"
                             : "refused";
        audit_outside(req, action, a.id, status, json_pack("{s:s}", "error", detail));
    }
    return status;
}

/* The path's id for an audited request: a UUID, or 404 (an id that is not a UUID names no
 * integration). Returns NULL after answering. */
static const char *audited_id(casb_http_req *req, audit_ctx *a, int *status)
{
    const char *id = casb_http_param(req, "id");

    if (!id || !casb_uuid_valid(id)) {
        *status = refuse(req, a, 404, "integration not found", NULL);
        return NULL;
    }
    a->id = id;
    return id;
}

static int list_providers(casb_http_req *req)
{
    int status = read_query(req, NULL);

    if (status != 0)
        return status;
    return casb_http_reply_json(req, 200, im_view_providers(casb_provider_all()));
}

static const casb_provider *provider_by_id(const char *id)
{
    const casb_provider *const *all = casb_provider_all();

    for (size_t i = 0; id && all && all[i]; i++) {
        if (strcmp(all[i]->id, id) == 0)
            return all[i];
    }
    return NULL;
}

/* One authenticated call to the provider with the submitted credentials, so that a typo is
 * refused now rather than found in the first scan. Returns the provider's verdict. */
static int check_connection(const im_app *app, const casb_provider *provider,
                            const json_t *config, const json_t *credentials, char *err,
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
    ctx.config = config;
    ctx.credentials = credentials;
    ctx.http = http;
    ctx.allowed_endpoints = allowed_endpoints(app);
    ctx.now_s = (long long)time(NULL);
    rc = provider->check_connection ? provider->check_connection(&ctx, err, errlen) : 0;
    casb_http_client_free(http);
    return rc;
}

/* check_connection with its answer: 0 when the provider accepted the credentials, else the
 * status already sent (422 for refused credentials or config, 502 unreachable). */
static int checked_connection(casb_http_req *req, audit_ctx *a, const casb_provider *provider,
                              const json_t *config, const json_t *credentials)
{
    char err[512];
    int rc;

    rc = check_connection(app_of(req), provider, config, credentials, err, sizeof(err));
    if (rc == CASB_EAUTH) {
        casb_metric_add(m_check_auth, 1);
        return refuse(req, a, 422, err, field_member("credentials"));
    }
    if (rc == CASB_EINVALID)
        return refuse(req, a, 422, err, field_member("config"));
    if (rc != 0) {
        casb_metric_add(m_check_unavailable, 1);
        casb_log_warn("connection check failed", "provider", provider->id, "error", err);
        return refuse(req, a, 502, err, NULL);
    }
    casb_metric_add(m_check_ok, 1);
    return 0;
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

/* Opens stored credentials into a JSON object (*out, new reference). The plaintext is wiped
 * at once. */
static int open_credentials(const im_app *app, const char *sealed, json_t **out, char *err,
                            size_t errlen)
{
    char *plain = NULL;
    size_t n = 0;

    *out = NULL;
    if (casb_secret_open(app->keys, sealed, &plain, &n, err, errlen) != 0)
        return -1;
    *out = json_loadb(plain, n, 0, NULL);
    casb_secret_wipe(plain, n);
    free(plain);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return casb_fail(err, errlen, CASB_ERROR, "stored credentials are not an object");
    }
    return 0;
}

static int create_integration_audited(casb_http_req *req, audit_ctx *a)
{
    im_app *app = app_of(req);
    json_t *body = NULL;
    json_t *integration = NULL;
    im_create_request cr;
    im_integration_new row;
    im_audit_note note;
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
        status = refuse(req, a, 422, err, field_member(field));
        goto out;
    }

    status = checked_connection(req, a, cr.provider, cr.config, cr.credentials);
    if (status != 0)
        goto out;

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
    note = note_for(req, "create", 201, NULL);
    rc = im_integrations_create(db, &row, &note, &integration, scan_id, err, sizeof(err));
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

static int create_integration(casb_http_req *req)
{
    return run_audited(req, "create", create_integration_audited);
}

/* PATCH and reauthorize: validates the change against what is stored, checks the
 * connection when config or credentials change, then applies it (sealing new credentials).
 * Answers 200 with the integration. */
static int change_integration(casb_http_req *req, audit_ctx *a, int reauthorize)
{
    im_app *app = app_of(req);
    const casb_provider *provider = NULL;
    const char *id = NULL;
    json_t *body = NULL;
    json_t *integration = NULL;
    json_t *stored_credentials = NULL;
    json_t *details = NULL;
    json_t *changed = NULL;
    casb_integration_stored stored = {0};
    im_integration_change ch;
    im_update_request ur;
    im_audit_note note;
    casb_db *db = NULL;
    char *config_json = NULL;
    char *sealed = NULL;
    char scan_id[37];
    char field[128];
    char err[512];
    int status;
    int rc;

    memset(&stored, 0, sizeof(stored));
    status = read_query(req, NULL);
    if (status != 0)
        return status;
    id = audited_id(req, a, &status);
    if (!id)
        return status;
    body = casb_http_body_json(req);
    if (!body) {
        audit_detail(a, "body is not a JSON object");
        return 400;
    }
    rc = reauthorize ? im_validate_reauthorize(&ur, body, field, sizeof(field), err, sizeof(err))
                     : im_validate_update(&ur, body, field, sizeof(field), err, sizeof(err));
    if (rc != 0) {
        status = refuse(req, a, 422, err, field_member(field));
        goto out;
    }

    db = acquire(req);
    if (!db) {
        status = 503;
        goto out;
    }
    rc = casb_integration_load(&stored, db, account_of(req), id, err, sizeof(err));
    release(req, db);
    db = NULL;
    if (rc == CASB_ENOTFOUND) {
        status = refuse(req, a, 404, "integration not found", NULL);
        goto out;
    }
    if (rc != 0) {
        status = reply_internal(req, "load integration", err);
        goto out;
    }

    if (ur.config || ur.credentials) {
        const json_t *config = ur.config ? ur.config : stored.config;
        const json_t *credentials = ur.credentials;

        provider = provider_by_id(stored.provider);
        if (!provider) {
            status = reply_internal(req, "change integration", "stored provider is unknown");
            goto out;
        }
        if (!credentials) {
            if (open_credentials(app, stored.credentials_sealed, &stored_credentials, err,
                                 sizeof(err)) != 0) {
                status = reply_internal(req, "open credentials", err);
                goto out;
            }
            credentials = stored_credentials;
        }
        if (im_validate_settings(provider, config, credentials, allowed_endpoints(app), field,
                                 sizeof(field), err, sizeof(err)) != 0) {
            status = refuse(req, a, 422, err, field_member(field));
            goto out;
        }
        status = checked_connection(req, a, provider, config, credentials);
        if (status != 0)
            goto out;
    }
    if (ur.config) {
        config_json = casb_json_dump(ur.config);
        if (!config_json) {
            status = reply_internal(req, "change integration", "cannot serialise config");
            goto out;
        }
    }
    if (ur.credentials && seal_credentials(app, ur.credentials, &sealed, err, sizeof(err)) != 0) {
        status = reply_internal(req, "seal credentials", err);
        goto out;
    }

    memset(&ch, 0, sizeof(ch));
    ch.id = id;
    ch.account_id = account_of(req);
    ch.name = ur.name;
    ch.scan_interval_s = ur.scan_interval_s;
    ch.config_json = config_json;
    ch.credentials_sealed = sealed;
    ch.credentials_key_id = casb_keyring_current_id(app->keys);
    ch.reauthorize = reauthorize;

    /* Which members changed, never their values (credentials above all). */
    changed = json_array();
    if (ur.name)
        json_array_append_new(changed, json_string("name"));
    if (ur.scan_interval_s)
        json_array_append_new(changed, json_string("scan_interval_s"));
    if (ur.config)
        json_array_append_new(changed, json_string("config"));
    if (ur.credentials)
        json_array_append_new(changed, json_string("credentials"));
    details = json_pack("{s:o}", "changed", changed);
    if (ur.scan_interval_s)
        json_object_set_new(details, "scan_interval_s", json_integer(ur.scan_interval_s));

    db = acquire(req);
    if (!db) {
        status = 503;
        goto out;
    }
    note = note_for(req, reauthorize ? "reauthorize" : "update", 200, details);
    rc = im_integrations_update(db, &ch, &note, &integration, scan_id, err, sizeof(err));
    release(req, db);
    if (rc == CASB_ENOTFOUND) {
        status = refuse(req, a, 404, "integration not found", NULL);
        goto out;
    }
    if (rc != 0) {
        status = reply_internal(req, reauthorize ? "reauthorize integration"
                                                 : "update integration", err);
        goto out;
    }
    casb_metric_add(m_updated, 1);
    casb_log_info(reauthorize ? "integration reauthorized" : "integration updated",
                  "integration_id", id, "account_id", account_of(req), "scan_id",
                  scan_id[0] ? scan_id : NULL);
    publish_event(req, "updated", id, json_string_value(json_object_get(integration, "provider")));
    status = casb_http_reply_json(req, 200, integration);
    integration = NULL;
out:
    json_decref(integration);
    json_decref(body);
    json_decref(details);
    json_decref(stored_credentials);
    casb_integration_stored_clear(&stored);
    free(config_json);
    free(sealed);
    return status;
}

static int update_integration_audited(casb_http_req *req, audit_ctx *a)
{
    return change_integration(req, a, 0);
}

static int reauthorize_integration_audited(casb_http_req *req, audit_ctx *a)
{
    return change_integration(req, a, 1);
}

static int update_integration(casb_http_req *req)
{
    return run_audited(req, "update", update_integration_audited);
}

static int reauthorize_integration(casb_http_req *req)
{
    return run_audited(req, "reauthorize", reauthorize_integration_audited);
}

/* 1 when value is one of the NULL-terminated values. */
static int one_of(const char *value, const char *const *values)
{
    for (size_t i = 0; values[i]; i++) {
        if (strcmp(values[i], value) == 0)
            return 1;
    }
    return 0;
}

/* GET /v1/integrations: limit, cursor, and the filters health and provider. */
static int list_integrations(casb_http_req *req)
{
    const char *limit = NULL;
    const char *cursor = NULL;
    const char *param = NULL;
    im_integration_filter filter = {NULL, NULL};
    const casb_query_param params[] = {{"limit", &limit},
                                       {"cursor", &cursor},
                                       {"health", &filter.health},
                                       {"provider", &filter.provider},
                                       {NULL, NULL}};
    casb_query_text text;
    json_t *items = NULL;
    char *next = NULL;
    casb_db *db = NULL;
    im_page page;
    char err[512];
    int status;
    int rc;

    status = casb_query_read(req, params, &text);
    if (status != 0)
        return status;
    if (im_page_parse(&page, limit, cursor, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(req, param, err);
    if (filter.health && !one_of(filter.health, health_values))
        return casb_query_reply_invalid(req, "health",
                                        "health: expected one of initializing, healthy, "
                                        "unhealthy, needs_reauthorization, paused");
    if (filter.provider && !provider_by_id(filter.provider))
        return casb_query_reply_invalid(req, "provider",
                                        "provider: not a provider of GET /v1/providers");
    db = acquire(req);
    if (!db)
        return 503;
    rc = im_integrations_list(db, account_of(req), &page, &filter, &items, &next, err,
                              sizeof(err));
    release(req, db);
    if (rc != 0)
        return reply_failure(req, rc, "list integrations", err);
    return casb_query_reply_list(req, "integrations", items, next);
}

static int list_scans(casb_http_req *req)
{
    const char *id = NULL;
    json_t *items = NULL;
    char *next = NULL;
    im_page page;
    casb_db *db = NULL;
    char err[512];
    int status;
    int rc;

    db = open_request(req, &page, &id, &status);
    if (!db)
        return status;
    rc = im_integrations_scans(db, account_of(req), id, &page, &items, &next, err, sizeof(err));
    release(req, db);
    if (rc != 0)
        return reply_failure(req, rc, "list scans", err);
    return casb_query_reply_list(req, "scans", items, next);
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

/* Idempotent: deleting what is not there (never was, already deleted, another account's)
 * answers 204 as well, and says nothing about which it was. */
static int delete_integration_audited(casb_http_req *req, audit_ctx *a)
{
    const char *id = NULL;
    casb_db *db = NULL;
    im_audit_note note;
    char provider[64];
    char err[512];
    int status;
    int rc;

    status = read_query(req, NULL);
    if (status != 0)
        return status;
    id = casb_http_param(req, "id");
    if (!id || !casb_uuid_valid(id)) {
        /* Names no integration at all: nothing to delete, nothing to record. */
        return casb_http_reply_json(req, 204, NULL);
    }
    a->id = id;
    db = acquire(req);
    if (!db)
        return 503;
    note = note_for(req, "delete", 204, NULL);
    rc = im_integrations_delete(db, account_of(req), id, &note, provider, sizeof(provider), err,
                                sizeof(err));
    release(req, db);
    if (rc == CASB_ENOTFOUND) {
        audit_outside(req, "delete", id, 204, json_pack("{s:b}", "existed", 0));
        return casb_http_reply_json(req, 204, NULL);
    }
    if (rc != 0)
        return reply_failure(req, rc, "delete integration", err);
    casb_metric_add(m_deleted, 1);
    casb_log_info("integration deleted", "integration_id", id, "account_id", account_of(req),
                  "provider", provider);
    publish_event(req, "deleted", id, provider);
    return casb_http_reply_json(req, 204, NULL);
}

static int delete_integration(casb_http_req *req)
{
    return run_audited(req, "delete", delete_integration_audited);
}

/* pause, resume and scan now: one action on the integration, audited as action with the
 * status of its success. Returns 0 with *out (owned by the caller) and *changed, or the
 * status already answered. */
static int run_action(casb_http_req *req, audit_ctx *a, im_integration_action action,
                      const char *operation, int success_status, const char **id,
                      json_t **out, int *changed)
{
    casb_db *db = NULL;
    im_audit_note note;
    char err[512];
    int status;
    int rc;

    *out = NULL;
    *changed = 0;
    status = read_query(req, NULL);
    if (status != 0)
        return status;
    *id = audited_id(req, a, &status);
    if (!*id)
        return status;
    db = acquire(req);
    if (!db)
        return 503;
    note = note_for(req, a->action, success_status, NULL);
    rc = action(db, account_of(req), *id, &note, out, changed, err, sizeof(err));
    release(req, db);
    if (rc == CASB_ENOTFOUND || rc == CASB_ECONFLICT)
        audit_detail(a, rc == CASB_ENOTFOUND ? "integration not found" : err);
    if (rc != 0)
        return reply_failure(req, rc, operation, err);
    return 0;
}

/* pause and resume: the same shape, a different change and event. */
static int change_state(casb_http_req *req, audit_ctx *a, im_integration_action change,
                        const char *event)
{
    const char *id = NULL;
    json_t *integration = NULL;
    int changed = 0;
    int status;

    status = run_action(req, a, change, event, 200, &id, &integration, &changed);
    if (status != 0)
        return status;
    if (changed) {
        casb_log_info("integration state changed", "event", event, "integration_id", id,
                      "account_id", account_of(req));
        publish_event(req, event, id, json_string_value(json_object_get(integration, "provider")));
    }
    return casb_http_reply_json(req, 200, integration);
}

static int pause_audited(casb_http_req *req, audit_ctx *a)
{
    return change_state(req, a, im_integrations_pause, "paused");
}

static int resume_audited(casb_http_req *req, audit_ctx *a)
{
    return change_state(req, a, im_integrations_resume, "resumed");
}

static int pause_integration(casb_http_req *req)
{
    return run_audited(req, "pause", pause_audited);
}

static int resume_integration(casb_http_req *req)
{
    return run_audited(req, "resume", resume_audited);
}

static int request_scan_audited(casb_http_req *req, audit_ctx *a)
{
    const char *id = NULL;
    json_t *scan = NULL;
    int created = 0;
    int status;

    status = run_action(req, a, im_integrations_scan_now, "scan now", 202, &id, &scan,
                        &created);
    if (status != 0)
        return status;
    if (created) {
        casb_metric_add(m_scans_requested, 1);
        casb_log_info("scan requested", "integration_id", id, "account_id", account_of(req),
                      "scan_id", json_string_value(json_object_get(scan, "id")));
    }
    return casb_http_reply_json(req, 202, scan);
}

static int request_scan(casb_http_req *req)
{
    return run_audited(req, "scan_now", request_scan_audited);
}

/* GET /v1/audit-log: newest first, optionally of one integration and one action. */
static int list_audit_log(casb_http_req *req)
{
    const char *limit = NULL;
    const char *cursor = NULL;
    const char *integration_id = NULL;
    const char *action = NULL;
    const char *param = NULL;
    const casb_query_param params[] = {{"limit", &limit},
                                       {"cursor", &cursor},
                                       {"integration_id", &integration_id},
                                       {"action", &action},
                                       {NULL, NULL}};
    casb_query_text text;
    im_seq_page page;
    json_t *items = NULL;
    char *next = NULL;
    casb_db *db = NULL;
    char err[512];
    int status;
    int rc;

    status = casb_query_read(req, params, &text);
    if (status != 0)
        return status;
    if (im_seq_page_parse(&page, limit, cursor, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(req, param, err);
    if (integration_id && !casb_uuid_valid(integration_id))
        return casb_query_reply_invalid(req, "integration_id", "integration_id: expected a UUID");
    if (action && !im_audit_action_valid(action))
        return casb_query_reply_invalid(req, "action",
                                        "action: expected one of create, update, pause, "
                                        "resume, delete, reauthorize, scan_now");
    db = acquire(req);
    if (!db)
        return 503;
    rc = im_audit_list(db, account_of(req), &page, integration_id, action, &items, &next, err,
                       sizeof(err));
    release(req, db);
    if (rc != 0)
        return reply_internal(req, "list audit log", err);
    return casb_query_reply_list(req, "entries", items, next);
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
    m_updated = casb_metrics_counter("casb_integrations_updated_total",
                                     "Integrations changed by PATCH or reauthorize.", NULL);
    m_audit_failed = casb_metrics_counter("casb_audit_entries_failed_total",
                                          "Audit entries of refused requests not written.",
                                          NULL);
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
        {"PATCH", "/v1/integrations/{id}", update_integration},
        {"DELETE", "/v1/integrations/{id}", delete_integration},
        {"POST", "/v1/integrations/{id}/reauthorize", reauthorize_integration},
        {"POST", "/v1/integrations/{id}/pause", pause_integration},
        {"POST", "/v1/integrations/{id}/resume", resume_integration},
        {"POST", "/v1/integrations/{id}/scans", request_scan},
        {"GET", "/v1/integrations/{id}/scans", list_scans},
        {"GET", "/v1/audit-log", list_audit_log},
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
