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
#include "im_request.h"
#include "im_integrations.h"
#include "im_oauth_routes.h"
#include "im_token_routes.h"
#include "im_validate.h"
#include "im_views.h"
#include "provider.h"


static casb_metric *m_created;
static casb_metric *m_deleted;
static casb_metric *m_scans_requested;
static casb_metric *m_updated;

/* The health values of integrations (the CHECK of the integrations table). */
static const char *const health_values[] = {"initializing", "healthy", "unhealthy",
                                            "needs_reauthorization", "paused", NULL};


/* Whether the operator registered the OAuth client that the provider's consent flow needs. */
static int oauth_configured(const im_app *app, const casb_provider *p)
{
    casb_oauth_endpoints ep;
    char err[256];

    return im_oauth_endpoints(app, p, &ep, err, sizeof(err)) == 0;
}

static int list_providers(casb_http_req *req)
{
    const casb_provider *const *all = casb_provider_all();
    json_t *view, *list, *oauth;
    int status = im_req_read_query(req, NULL);

    if (status != 0)
        return status;
    view = im_view_providers(all);
    list = json_object_get(view, "providers");
    for (size_t i = 0; all[i]; i++) {
        oauth = json_object_get(json_array_get(list, i), "oauth");
        if (json_is_object(oauth))
            json_object_set_new(oauth, "configured",
                                json_boolean(oauth_configured(im_req_app(req), all[i])));
    }
    return casb_http_reply_json(req, 200, view);
}


static int create_integration_audited(casb_http_req *req, im_audit_ctx *a)
{
    im_app *app = im_req_app(req);
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

    status = im_req_read_query(req, NULL);
    if (status != 0)
        return status;
    body = casb_http_body_json(req);
    if (!body)
        return casb_http_status(req);
    if (im_validate_create(&cr, body, casb_provider_all(), im_req_allowed_endpoints(app),
                           field, sizeof(field), err, sizeof(err)) != 0) {
        status = im_refuse(req, a, 422, err, im_field_member(field));
        goto out;
    }

    status = im_checked_connection(req, a, cr.provider, cr.config, cr.credentials, NULL);
    if (status != 0)
        goto out;

    config_json = casb_json_dump(cr.config);
    if (!config_json || im_seal_credentials(app, cr.credentials, &sealed, err, sizeof(err)) != 0) {
        status = im_reply_internal(req, "seal credentials", err);
        goto out;
    }
    casb_uuid_v4(id);
    memset(&row, 0, sizeof(row));
    row.id = id;
    row.account_id = im_req_account(req);
    row.provider = cr.provider->id;
    row.name = cr.name;
    row.config_json = config_json;
    row.credentials_sealed = sealed;
    row.credentials_key_id = casb_keyring_current_id(app->keys);
    row.scan_interval_s = cr.scan_interval_s;

    db = im_req_acquire(req);
    if (!db) {
        status = 503;
        goto out;
    }
    note = im_note_for(req, "create", 201, NULL);
    rc = im_integrations_create(db, &row, &note, &integration, scan_id, err, sizeof(err));
    im_req_release(req, db);
    if (rc != 0) {
        status = im_reply_internal(req, "create integration", err);
        goto out;
    }
    casb_metric_add(m_created, 1);
    casb_log_info("integration created", "integration_id", id, "account_id", row.account_id,
                  "provider", row.provider, "scan_id", scan_id[0] ? scan_id : NULL);
    im_publish_event(req, "created", id, row.provider);
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
    return im_run_audited(req, "create", create_integration_audited);
}

/* PATCH and reauthorize: validates the change against what is stored, checks the
 * connection when config or credentials change, then applies it (sealing new credentials).
 * Answers 200 with the integration. */
static int change_integration(casb_http_req *req, im_audit_ctx *a, int reauthorize)
{
    im_app *app = im_req_app(req);
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
    status = im_req_read_query(req, NULL);
    if (status != 0)
        return status;
    id = im_audited_id(req, a, &status);
    if (!id)
        return status;
    body = casb_http_body_json(req);
    if (!body) {
        im_audit_detail(a, "body is not a JSON object");
        return casb_http_status(req);
    }
    rc = reauthorize ? im_validate_reauthorize(&ur, body, field, sizeof(field), err, sizeof(err))
                     : im_validate_update(&ur, body, field, sizeof(field), err, sizeof(err));
    if (rc != 0) {
        status = im_refuse(req, a, 422, err, im_field_member(field));
        goto out;
    }

    db = im_req_acquire(req);
    if (!db) {
        status = 503;
        goto out;
    }
    rc = casb_integration_load(&stored, db, im_req_account(req), id, err, sizeof(err));
    im_req_release(req, db);
    db = NULL;
    if (rc == CASB_ENOTFOUND) {
        status = im_refuse(req, a, 404, "integration not found", NULL);
        goto out;
    }
    if (rc != 0) {
        status = im_reply_internal(req, "load integration", err);
        goto out;
    }
    if (reauthorize && !ur.credentials) {
        /* No credentials: the user repairs the integration by consenting again. */
        status = im_oauth_reauthorize_start(req, a, id, stored.provider,
                                            ur.config ? ur.config : stored.config);
        goto out;
    }

    if (ur.config || ur.credentials) {
        const json_t *config = ur.config ? ur.config : stored.config;
        const json_t *credentials = ur.credentials;

        provider = casb_provider_find(stored.provider);
        if (!provider) {
            status = im_reply_internal(req, "change integration", "stored provider is unknown");
            goto out;
        }
        if (!credentials) {
            if (casb_integration_credentials_open(app->keys, stored.credentials_sealed,
                                                  &stored_credentials, err, sizeof(err)) != 0) {
                status = im_reply_internal(req, "open credentials", err);
                goto out;
            }
            credentials = stored_credentials;
        }
        if (im_validate_settings(provider, config, credentials, im_req_allowed_endpoints(app),
                                 field, sizeof(field), err, sizeof(err)) != 0) {
            status = im_refuse(req, a, 422, err, im_field_member(field));
            goto out;
        }
        status = im_checked_connection(req, a, provider, config, credentials,
                                       ur.credentials ? NULL : id);
        if (status != 0)
            goto out;
    }
    if (ur.config) {
        config_json = casb_json_dump(ur.config);
        if (!config_json) {
            status = im_reply_internal(req, "change integration", "cannot serialise config");
            goto out;
        }
    }
    if (ur.credentials &&
        im_seal_credentials(app, ur.credentials, &sealed, err, sizeof(err)) != 0) {
        status = im_reply_internal(req, "seal credentials", err);
        goto out;
    }

    memset(&ch, 0, sizeof(ch));
    ch.id = id;
    ch.account_id = im_req_account(req);
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

    db = im_req_acquire(req);
    if (!db) {
        status = 503;
        goto out;
    }
    note = im_note_for(req, reauthorize ? "reauthorize" : "update", 200, details);
    rc = im_integrations_update(db, &ch, &note, &integration, scan_id, err, sizeof(err));
    im_req_release(req, db);
    if (rc == CASB_ENOTFOUND) {
        status = im_refuse(req, a, 404, "integration not found", NULL);
        goto out;
    }
    if (rc != 0) {
        status = im_reply_internal(req, reauthorize ? "reauthorize integration"
                                                    : "update integration", err);
        goto out;
    }
    casb_metric_add(m_updated, 1);
    casb_log_info(reauthorize ? "integration reauthorized" : "integration updated",
                  "integration_id", id, "account_id", im_req_account(req), "scan_id",
                  scan_id[0] ? scan_id : NULL);
    im_publish_event(req, "updated", id,
                     json_string_value(json_object_get(integration, "provider")));
    status = casb_http_reply_json(req, 200, integration);
    integration = NULL;
out:
    json_decref(integration);
    json_decref(body);
    json_decref(details);
    casb_integration_credentials_free(stored_credentials);
    casb_integration_stored_clear(&stored);
    free(config_json);
    free(sealed);
    return status;
}

static int update_integration_audited(casb_http_req *req, im_audit_ctx *a)
{
    return change_integration(req, a, 0);
}

static int reauthorize_integration_audited(casb_http_req *req, im_audit_ctx *a)
{
    return change_integration(req, a, 1);
}

static int update_integration(casb_http_req *req)
{
    return im_run_audited(req, "update", update_integration_audited);
}

static int reauthorize_integration(casb_http_req *req)
{
    return im_run_audited(req, "reauthorize", reauthorize_integration_audited);
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
    if (filter.provider && !casb_provider_find(filter.provider))
        return casb_query_reply_invalid(req, "provider",
                                        "provider: not a provider of GET /v1/providers");
    db = im_req_acquire(req);
    if (!db)
        return 503;
    rc = im_integrations_list(db, im_req_account(req), &page, &filter, &items, &next, err,
                              sizeof(err));
    im_req_release(req, db);
    if (rc != 0)
        return im_reply_failure(req, rc, "list integrations", err);
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

    db = im_req_open(req, &page, &id, &status);
    if (!db)
        return status;
    rc = im_integrations_scans(db, im_req_account(req), id, &page, &items, &next, err, sizeof(err));
    im_req_release(req, db);
    if (rc != 0)
        return im_reply_failure(req, rc, "list scans", err);
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

    db = im_req_open(req, NULL, &id, &status);
    if (!db)
        return status;
    rc = im_integrations_get(db, im_req_account(req), id, &integration, err, sizeof(err));
    im_req_release(req, db);
    if (rc != 0)
        return im_reply_failure(req, rc, "get integration", err);
    return casb_http_reply_json(req, 200, integration);
}

/* Idempotent: deleting what is not there (never was, already deleted, another account's)
 * answers 204 as well, and says nothing about which it was. An id that is not a UUID is no
 * id at all: 404 like GET, so that a malformed path is not mistaken for a done deletion. */
static int delete_integration_audited(casb_http_req *req, im_audit_ctx *a)
{
    const char *id = NULL;
    casb_db *db = NULL;
    im_audit_note note;
    char provider[64];
    char err[512];
    int status;
    int rc;

    status = im_req_read_query(req, NULL);
    if (status != 0)
        return status;
    id = casb_http_param(req, "id");
    if (!id || !casb_uuid_valid(id))
        return im_reply_not_found(req);
    a->id = id;
    db = im_req_acquire(req);
    if (!db)
        return 503;
    note = im_note_for(req, "delete", 204, NULL);
    rc = im_integrations_delete(db, im_req_account(req), id, &note, provider, sizeof(provider), err,
                                sizeof(err));
    im_req_release(req, db);
    if (rc == CASB_ENOTFOUND) {
        im_audit_outside(req, "delete", id, 204, json_pack("{s:b}", "existed", 0));
        return casb_http_reply_json(req, 204, NULL);
    }
    if (rc != 0)
        return im_reply_failure(req, rc, "delete integration", err);
    casb_metric_add(m_deleted, 1);
    casb_log_info("integration deleted", "integration_id", id, "account_id", im_req_account(req),
                  "provider", provider);
    im_publish_event(req, "deleted", id, provider);
    return casb_http_reply_json(req, 204, NULL);
}

static int delete_integration(casb_http_req *req)
{
    return im_run_audited(req, "delete", delete_integration_audited);
}

/* pause, resume and scan now: one action on the integration, audited as action with the
 * status of its success. Returns 0 with *out (owned by the caller) and *changed, or the
 * status already answered. */
static int run_action(casb_http_req *req, im_audit_ctx *a, im_integration_action action,
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
    status = im_req_read_query(req, NULL);
    if (status != 0)
        return status;
    *id = im_audited_id(req, a, &status);
    if (!*id)
        return status;
    db = im_req_acquire(req);
    if (!db)
        return 503;
    note = im_note_for(req, a->action, success_status, NULL);
    rc = action(db, im_req_account(req), *id, &note, out, changed, err, sizeof(err));
    im_req_release(req, db);
    if (rc == CASB_ENOTFOUND || rc == CASB_ECONFLICT)
        im_audit_detail(a, rc == CASB_ENOTFOUND ? "integration not found" : err);
    if (rc != 0)
        return im_reply_failure(req, rc, operation, err);
    return 0;
}

/* pause and resume: the same shape, a different change and event. */
static int change_state(casb_http_req *req, im_audit_ctx *a, im_integration_action change,
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
                      "account_id", im_req_account(req));
        im_publish_event(req, event, id,
                         json_string_value(json_object_get(integration, "provider")));
    }
    return casb_http_reply_json(req, 200, integration);
}

static int pause_audited(casb_http_req *req, im_audit_ctx *a)
{
    return change_state(req, a, im_integrations_pause, "paused");
}

static int resume_audited(casb_http_req *req, im_audit_ctx *a)
{
    return change_state(req, a, im_integrations_resume, "resumed");
}

static int pause_integration(casb_http_req *req)
{
    return im_run_audited(req, "pause", pause_audited);
}

static int resume_integration(casb_http_req *req)
{
    return im_run_audited(req, "resume", resume_audited);
}

static int request_scan_audited(casb_http_req *req, im_audit_ctx *a)
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
        casb_log_info("scan requested", "integration_id", id, "account_id", im_req_account(req),
                      "scan_id", json_string_value(json_object_get(scan, "id")));
    }
    return casb_http_reply_json(req, 202, scan);
}

static int request_scan(casb_http_req *req)
{
    return im_run_audited(req, "scan_now", request_scan_audited);
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
                                        "resume, delete, reauthorize, scan_now, oauth_start, "
                                        "token_create, token_revoke");
    db = im_req_acquire(req);
    if (!db)
        return 503;
    rc = im_audit_list(db, im_req_account(req), &page, integration_id, action, &items, &next, err,
                       sizeof(err));
    im_req_release(req, db);
    if (rc != 0)
        return im_reply_internal(req, "list audit log", err);
    return casb_query_reply_list(req, "entries", items, next);
}

static void register_metrics(void)
{
    im_request_metrics_init();
    im_oauth_metrics_init();
    m_created = casb_metrics_counter("casb_integrations_created_total",
                                     "Integrations created.", NULL);
    m_deleted = casb_metrics_counter("casb_integrations_deleted_total",
                                     "Integrations deleted.", NULL);
    m_scans_requested = casb_metrics_counter("casb_manual_scans_requested_total",
                                             "Scans queued by the scan-now endpoint.", NULL);
    m_updated = casb_metrics_counter("casb_integrations_updated_total",
                                     "Integrations changed by PATCH or reauthorize.", NULL);
}

int im_server_start(casb_http_server **out, im_app *app, char *err, size_t errlen)
{
    static const casb_http_route_def routes[] = {
        {"GET", "/v1/providers", list_providers, 0},
        {"POST", "/v1/integrations", create_integration, CASB_ROUTE_ADMIN},
        {"GET", "/v1/integrations", list_integrations, 0},
        {"GET", "/v1/integrations/{id}", get_integration, 0},
        {"PATCH", "/v1/integrations/{id}", update_integration, CASB_ROUTE_ADMIN},
        {"DELETE", "/v1/integrations/{id}", delete_integration, CASB_ROUTE_ADMIN},
        {"POST", "/v1/integrations/{id}/reauthorize", reauthorize_integration, CASB_ROUTE_ADMIN},
        {"POST", "/v1/integrations/{id}/pause", pause_integration, CASB_ROUTE_ADMIN},
        {"POST", "/v1/integrations/{id}/resume", resume_integration, CASB_ROUTE_ADMIN},
        {"POST", "/v1/integrations/{id}/scans", request_scan, CASB_ROUTE_ADMIN},
        {"GET", "/v1/integrations/{id}/scans", list_scans, 0},
        {"GET", "/v1/audit-log", list_audit_log, 0},
        {"POST", "/v1/integrations/oauth/{provider}/start", im_oauth_start, CASB_ROUTE_ADMIN},
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
    opts.cors_origins = app->settings->cors_origins;
    opts.rate_per_second = (double)app->settings->api_rate_per_second;
    opts.rate_burst = (int)app->settings->api_rate_burst;
    if (casb_http_server_new(&s, &opts, err, errlen) != 0)
        return -1;
    if (casb_http_routes(s, routes, sizeof(routes) / sizeof(routes[0]), err, errlen) != 0)
        goto fail;
    if (im_token_routes_register(s) != 0) {
        casb_fail(err, errlen, CASB_ERROR, "cannot register the token routes");
        goto fail;
    }
    /* The browser comes back from the provider without our token: the state authenticates. */
    if (casb_http_route(s, "GET", "/v1/integrations/oauth/{provider}/callback",
                        im_oauth_callback, CASB_ROUTE_PUBLIC) != 0) {
        casb_fail(err, errlen, CASB_ERROR, "cannot register the OAuth callback");
        goto fail;
    }
    if (casb_http_server_start(s, err, errlen) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    casb_http_server_free(s);
    return -1;
}
