#include "im_oauth_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/integration.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/query.h"
#include "im_events.h"
#include "im_integrations.h"
#include "im_oauth.h"
#include "im_validate.h"

#define POOL_WAIT_MS 5000
#define EVENT_FLUSH_TIMEOUT_MS 5000
/* Longer states than ours (43 characters) were not issued here; refuse before hashing. */
#define STATE_MAX_LEN 128
#define URL_MAX 512

static casb_metric *m_started;
static casb_metric *m_completed;
static casb_metric *m_refused;

void im_oauth_metrics_init(void)
{
    m_started = casb_metrics_counter("casb_oauth_flows_total",
                                     "OAuth consent flows, by stage.", "stage=\"started\"");
    m_completed = casb_metrics_counter("casb_oauth_flows_total",
                                       "OAuth consent flows, by stage.", "stage=\"completed\"");
    m_refused = casb_metrics_counter("casb_oauth_flows_total", "OAuth consent flows, by stage.",
                                     "stage=\"refused\"");
}

/* The provider of the path when it installs by consent; NULL after answering 404. */
static const casb_provider *path_provider(casb_http_req *req, im_audit_ctx *a, int *status)
{
    const casb_provider *p = casb_provider_find(casb_http_param(req, "provider"));
    char detail[160];

    if (p && p->oauth)
        return p;
    snprintf(detail, sizeof(detail), "provider %.64s has no OAuth consent flow%s",
             casb_http_param(req, "provider"), p ? "" : " (unknown provider)");
    *status = a ? im_refuse(req, a, 404, detail, NULL)
                : casb_http_reply_problem(req, 404, detail, NULL);
    return NULL;
}

/* Where the provider sends the browser back: registered with the provider by the operator. */
static int redirect_uri_of(const im_app *app, const casb_provider *p, char *out, size_t outlen)
{
    const char *base = app->settings->public_url;
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/')
        n--;
    return (size_t)snprintf(out, outlen, "%.*s/v1/integrations/oauth/%s/callback", (int)n, base,
                            p->id) < outlen ? 0 : -1;
}

/* The flow's secrets: the state (hashed for storage) and the PKCE verifier (sealed). */
typedef struct {
    char state[CASB_OAUTH_RANDOM_LEN + 1];
    char state_sha256[65];
    char verifier[CASB_OAUTH_RANDOM_LEN + 1];
    char challenge[CASB_OAUTH_RANDOM_LEN + 1];
    char *verifier_sealed;
} flow_secrets;

static int make_secrets(const im_app *app, int pkce, flow_secrets *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (casb_oauth_random(s->state) != 0)
        return casb_fail(err, errlen, CASB_ERROR, "no randomness for the state");
    casb_sha256_hex(s->state, strlen(s->state), s->state_sha256);
    if (!pkce)
        return 0;
    if (casb_oauth_random(s->verifier) != 0)
        return casb_fail(err, errlen, CASB_ERROR, "no randomness for the PKCE verifier");
    casb_oauth_pkce_challenge(s->verifier, s->challenge);
    return casb_secret_seal(app->keys, s->verifier, strlen(s->verifier), &s->verifier_sealed,
                            err, errlen);
}

static void clear_secrets(flow_secrets *s)
{
    free(s->verifier_sealed);
    casb_secret_wipe(s, sizeof(*s));
}

/* Where the browser goes: the provider's consent page, or its app's installation page
 * (which consents on the way; it takes no PKCE). malloc'ed; NULL when out of memory. */
static char *browser_url(const casb_provider *p, const casb_oauth_endpoints *ep, int install,
                         const char *redirect_uri, const flow_secrets *secrets)
{
    char *url;
    size_t n;

    if (!install)
        return casb_oauth_authorize_url(ep->authorize_url, ep->client.client_id, redirect_uri,
                                        secrets->state, p->oauth->scope,
                                        p->oauth->pkce ? secrets->challenge : NULL, NULL);
    /* The state is base64url: nothing in it needs escaping. */
    n = strlen(ep->install_url) + sizeof("?state=") + strlen(secrets->state);
    url = malloc(n);
    if (url)
        snprintf(url, n, "%s?state=%s", ep->install_url, secrets->state);
    return url;
}

/* Saves the flow and answers 200 with where to send the browser. request is borrowed.
 * install: start on the installation page of the provider's app. */
static int begin_flow(casb_http_req *req, im_audit_ctx *a, const casb_provider *p,
                      const char *integration_id, const json_t *request, int install)
{
    im_app *app = im_req_app(req);
    char redirect_uri[URL_MAX];
    char expires_at[32];
    char err[512];
    casb_oauth_endpoints ep;
    int pkce = p->oauth->pkce && !install;
    flow_secrets secrets;
    im_oauth_flow_new f;
    char *request_json = NULL;
    char *url = NULL;
    casb_db *db;
    int status;
    int rc;

    memset(&secrets, 0, sizeof(secrets));
    rc = im_oauth_endpoints(app, p, &ep, err, sizeof(err));
    if (rc != 0)
        return im_refuse(req, a, 409, err, NULL);
    if (install && !ep.install_url[0])
        return im_refuse(req, a, 409,
                         "install: this provider has no installation page, or the operator "
                         "did not name the app (CASB_GITHUB_APP_SLUG)",
                         im_field_member("install"));
    if (redirect_uri_of(app, p, redirect_uri, sizeof(redirect_uri)) != 0)
        return im_reply_internal(req, "oauth start", "CASB_PUBLIC_URL is too long");
    if (make_secrets(app, pkce, &secrets, err, sizeof(err)) != 0) {
        status = im_reply_internal(req, "oauth start", err);
        goto out;
    }
    request_json = casb_json_dump(request);
    if (!request_json) {
        status = im_reply_internal(req, "oauth start", "cannot serialise the request");
        goto out;
    }
    f.state_sha256 = secrets.state_sha256;
    f.account_id = im_req_account(req);
    f.actor = casb_http_principal(req)->token_name;
    f.provider = p->id;
    f.integration_id = integration_id;
    f.request_json = request_json;
    f.redirect_uri = redirect_uri;
    f.verifier_sealed = secrets.verifier_sealed;
    f.ttl_s = app->settings->oauth_state_ttl_s;
    db = im_req_acquire(req);
    if (!db) {
        status = 503;
        goto out;
    }
    rc = im_oauth_flow_save(db, &f, expires_at, err, sizeof(err));
    im_req_release(req, db);
    if (rc == CASB_ENOTFOUND) {
        status = im_refuse(req, a, 404, "integration not found", NULL);
        goto out;
    }
    if (rc != 0) {
        status = im_reply_internal(req, "save oauth flow", err);
        goto out;
    }
    url = browser_url(p, &ep, install, redirect_uri, &secrets);
    if (!url) {
        status = im_reply_internal(req, "oauth start", "out of memory");
        goto out;
    }
    casb_metric_add(m_started, 1);
    im_audit_outside(req, "oauth_start", integration_id, 200,
                     json_pack("{s:s, s:s, s:b, s:b}", "provider", p->id, "expires_at",
                               expires_at, "reauthorize", integration_id != NULL, "install",
                               install));
    status = casb_http_reply_json(req, 200,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "provider",
                                            p->id, "authorize_url", url, "state", secrets.state,
                                            "expires_at", expires_at, "redirect_uri",
                                            redirect_uri, "pkce", pkce, "install", install));
out:
    free(url);
    free(request_json);
    clear_secrets(&secrets);
    return status;
}

static int start_audited(casb_http_req *req, im_audit_ctx *a)
{
    const casb_provider *p;
    im_create_request cr;
    int install = 0;
    json_t *body = NULL;
    json_t *request = NULL;
    char field[128];
    char err[512];
    int status;

    status = im_req_read_query(req, NULL);
    if (status != 0)
        return status;
    p = path_provider(req, a, &status);
    if (!p)
        return status;
    body = casb_http_body_json(req);
    if (!body) {
        im_audit_detail(a, "body is not a JSON object");
        return casb_http_status(req);
    }
    if (im_validate_oauth_start(&cr, &install, body, p,
                                im_req_allowed_endpoints(im_req_app(req)), field, sizeof(field),
                                err, sizeof(err)) != 0) {
        status = im_refuse(req, a, 422, err, im_field_member(field));
        goto out;
    }
    request = json_pack("{s:s, s:O, s:I}", "name", cr.name, "config", cr.config,
                        "scan_interval_s", (json_int_t)cr.scan_interval_s);
    if (!request) {
        status = im_reply_internal(req, "oauth start", "out of memory");
        goto out;
    }
    status = begin_flow(req, a, p, NULL, request, install);
out:
    json_decref(request);
    json_decref(body);
    return status;
}

int im_oauth_start(casb_http_req *req)
{
    return im_run_audited(req, "oauth_start", start_audited);
}

int im_oauth_reauthorize_start(casb_http_req *req, im_audit_ctx *a, const char *id,
                               const char *provider, const json_t *config)
{
    const casb_provider *p = casb_provider_find(provider);
    json_t *request;
    int status;

    if (!p || !p->oauth)
        return im_refuse(req, a, 422,
                         "credentials: is required (an object); this provider has no consent "
                         "flow to reauthorize with",
                         im_field_member("credentials"));
    request = json_pack("{s:O}", "config", config);
    if (!request)
        return im_reply_internal(req, "reauthorize", "out of memory");
    status = begin_flow(req, a, p, id, request, 0);
    json_decref(request);
    return status;
}

/* ---- callback ---------------------------------------------------------------------------- */

/* What the callback knows once the state matched: the flow and on whose behalf it acts. */
typedef struct {
    casb_http_req *req;
    im_app *app;
    const casb_provider *provider;
    im_oauth_flow flow;
    casb_principal who;   /* the user who started the flow */
    const char *action;   /* "create" or "reauthorize" */
    const char *id;       /* the integration (reauthorization, or once created) */
} callback_ctx;

/* Records the refusal of a matched callback in the audit log, as its starter's. */
static void audit_refusal(callback_ctx *cb, int status, const char *detail)
{
    casb_db *db = casb_db_pool_acquire(cb->app->pool, POOL_WAIT_MS);
    char err[256] = "no database connection";

    casb_metric_add(m_refused, 1);
    if (!db || im_audit_record(db, &cb->who, cb->action, cb->id, status,
                               json_pack("{s:s, s:s}", "error", detail, "via", "oauth"), err,
                               sizeof(err)) != 0)
        casb_log_error("audit entry not written", "action", cb->action, "account_id",
                       cb->who.account_id, "error", err);
    if (db)
        casb_db_pool_release(cb->app->pool, db);
}

static int refuse_callback(callback_ctx *cb, int status, const char *detail, json_t *extra)
{
    audit_refusal(cb, status, detail);
    return casb_http_reply_problem(cb->req, status, detail, extra);
}

/* The authorization code for tokens, in the stored credentials form. */
static int exchange(callback_ctx *cb, const char *code, json_t **credentials)
{
    char detail[768];
    char err[512];
    casb_oauth_endpoints ep;
    casb_oauth_tokens tokens = {0};
    casb_http_client *http = NULL;
    char *verifier = NULL;
    size_t verifier_len = 0;
    int rc;

    *credentials = NULL;
    rc = im_oauth_endpoints(cb->app, cb->provider, &ep, err, sizeof(err));
    if (rc != 0)
        return refuse_callback(cb, 409, err, NULL);
    if (cb->flow.verifier_sealed &&
        casb_secret_open(cb->app->keys, cb->flow.verifier_sealed, &verifier, &verifier_len, err,
                         sizeof(err)) != 0) {
        rc = im_reply_internal(cb->req, "open PKCE verifier", err);
        goto out;
    }
    if (im_provider_http(cb->app, &http, err, sizeof(err)) != 0) {
        rc = im_reply_internal(cb->req, "oauth callback", err);
        goto out;
    }
    rc = casb_oauth_exchange_code(http, &ep.client, code, cb->flow.redirect_uri, verifier,
                                  (long long)time(NULL), &tokens, err, sizeof(err));
    if (rc == CASB_EAUTH) {
        snprintf(detail, sizeof(detail), "%s refused the authorization code: %s; start again",
                 cb->provider->display_name, err);
        rc = refuse_callback(cb, 422, detail, im_field_member("code"));
        goto out;
    }
    if (rc != 0) {
        snprintf(detail, sizeof(detail), "cannot exchange the authorization code with %s: %s",
                 cb->provider->display_name, err);
        rc = refuse_callback(cb, 502, detail, NULL);
        goto out;
    }
    *credentials = casb_oauth_credentials(&tokens);
    rc = *credentials ? 0 : im_reply_internal(cb->req, "oauth callback", "out of memory");
out:
    casb_oauth_tokens_clear(&tokens);
    if (verifier) {
        casb_secret_wipe(verifier, verifier_len);
        free(verifier);
    }
    casb_http_client_free(http);
    return rc;
}

/* Creates the integration, or replaces the credentials of the one being reauthorized, and
 * answers with it. */
static int store(callback_ctx *cb, const json_t *config, const char *sealed)
{
    const json_t *request = cb->flow.request;
    json_t *integration = NULL;
    json_t *details = json_pack("{s:s}", "via", "oauth");
    im_audit_note note = {&cb->who, cb->action, 0, details};
    char *config_json = casb_json_dump(config);
    char id[37];
    char scan_id[37];
    char location[128];
    char err[512];
    casb_db *db = NULL;
    int status;
    int rc;

    if (!config_json || !details) {
        status = im_reply_internal(cb->req, "oauth callback", "out of memory");
        goto out;
    }
    db = im_req_acquire(cb->req);
    if (!db) {
        status = 503;
        goto out;
    }
    if (!cb->id) {
        im_integration_new row = {
            .id = id,
            .account_id = cb->who.account_id,
            .provider = cb->provider->id,
            .name = casb_json_str(request, "name"),
            .config_json = config_json,
            .credentials_sealed = sealed,
            .credentials_key_id = casb_keyring_current_id(cb->app->keys),
            .scan_interval_s = (long)casb_json_int(request, "scan_interval_s",
                                                   cb->provider->default_scan_interval_s),
        };

        casb_uuid_v4(id);
        note.status_code = 201;
        rc = im_integrations_create(db, &row, &note, &integration, scan_id, err, sizeof(err));
        if (rc == 0)
            cb->id = id;
    } else {
        im_integration_change ch = {
            .id = cb->id,
            .account_id = cb->who.account_id,
            .config_json = config_json,
            .credentials_sealed = sealed,
            .credentials_key_id = casb_keyring_current_id(cb->app->keys),
            .reauthorize = 1,
        };

        note.status_code = 200;
        rc = im_integrations_update(db, &ch, &note, &integration, scan_id, err, sizeof(err));
    }
    im_req_release(cb->req, db);
    if (rc == CASB_ENOTFOUND) {
        status = refuse_callback(cb, 404, "integration not found (deleted meanwhile)", NULL);
        goto out;
    }
    if (rc != 0) {
        status = im_reply_internal(cb->req, "oauth callback", err);
        goto out;
    }
    casb_metric_add(m_completed, 1);
    casb_log_info(note.status_code == 201 ? "integration created by consent"
                                          : "integration reauthorized by consent",
                  "integration_id", cb->id, "account_id", cb->who.account_id, "provider",
                  cb->provider->id, "scan_id", scan_id[0] ? scan_id : NULL);
    if (im_event_publish(cb->app->producer, note.status_code == 201 ? "created" : "updated",
                         cb->id, cb->who.account_id, cb->provider->id, EVENT_FLUSH_TIMEOUT_MS,
                         err, sizeof(err)) != 0)
        casb_log_error("integration event not published", "integration_id", cb->id, "error",
                       err);
    if (note.status_code == 201) {
        snprintf(location, sizeof(location), "/v1/integrations/%s", cb->id);
        casb_http_add_header(cb->req, "Location", location);
    }
    status = casb_http_reply_json(cb->req, note.status_code, integration);
    integration = NULL;
out:
    json_decref(integration);
    json_decref(details);
    free(config_json);
    return status;
}

/* Everything after the state matched: the provider's answer, the code exchange, the
 * connection check, then the integration. */
static int complete(callback_ctx *cb, const char *code, const char *error,
                    const char *error_description, const char *setup_action)
{
    const json_t *config = json_object_get(cb->flow.request, "config");
    json_t *credentials = NULL;
    im_audit_ctx a;
    char *sealed = NULL;
    char detail[768];
    char field[128];
    char err[512];
    int status;

    if (error) {
        snprintf(detail, sizeof(detail), "%s did not grant access: %.64s%s%.300s",
                 cb->provider->display_name, error, error_description ? ": " : "",
                 error_description ? error_description : "");
        return refuse_callback(cb, 400, detail, json_pack("{s:s}", "parameter", "error"));
    }
    if (setup_action && strcmp(setup_action, "request") == 0)
        /* GitHub: a member asked an owner to install the App; nothing to connect yet. */
        return refuse_callback(cb, 409,
                               "the installation awaits approval by an owner of the "
                               "organization; once approved, start again",
                               json_pack("{s:s}", "parameter", "setup_action"));
    if (!code)
        return refuse_callback(cb, 400, "code: required (the provider's authorization code)",
                               json_pack("{s:s}", "parameter", "code"));
    status = exchange(cb, code, &credentials);
    if (status != 0)
        return status;
    if (im_validate_settings(cb->provider, config, credentials,
                             im_req_allowed_endpoints(cb->app), field, sizeof(field), err,
                             sizeof(err)) != 0) {
        status = refuse_callback(cb, 422, err, im_field_member(field));
        goto out;
    }
    memset(&a, 0, sizeof(a));
    status = im_checked_connection(cb->req, &a, cb->provider, config, credentials, NULL);
    if (status != 0) {
        audit_refusal(cb, status, a.detail[0] ? a.detail : "connection check failed");
        goto out;
    }
    if (im_seal_credentials(cb->app, credentials, &sealed, err, sizeof(err)) != 0) {
        status = im_reply_internal(cb->req, "seal credentials", err);
        goto out;
    }
    status = store(cb, config, sealed);
out:
    free(sealed);
    casb_integration_credentials_free(credentials);
    return status;
}

/* Takes the state's flow into cb->flow, once. Returns 0, or the status already answered
 * (400 for a missing, unknown, used or expired state). */
static int take_flow(callback_ctx *cb, const char *state)
{
    char state_sha256[65];
    char err[256];
    casb_db *db;
    int rc;

    if (!state)
        return casb_http_reply_problem(cb->req, 400,
                                       "state: required; start the flow with POST "
                                       "/v1/integrations/oauth/{provider}/start",
                                       json_pack("{s:s}", "parameter", "state"));
    if (strlen(state) <= STATE_MAX_LEN) {
        casb_sha256_hex(state, strlen(state), state_sha256);
        db = im_req_acquire(cb->req);
        if (!db)
            return 503;
        rc = im_oauth_flow_take(db, state_sha256, cb->provider->id, &cb->flow, err,
                                sizeof(err));
        im_req_release(cb->req, db);
    } else {
        rc = CASB_ENOTFOUND;
    }
    if (rc == 0)
        return 0;
    if (rc == -1)
        return im_reply_internal(cb->req, "take oauth flow", err);
    casb_metric_add(m_refused, 1);
    return casb_http_reply_problem(
        cb->req, 400,
        rc == CASB_ECONFLICT ? "state: already used; start the flow again"
        : rc == CASB_EINVALID ? "state: expired; start the flow again"
                              : "state: unknown (not issued by this server for this provider); "
                                "start the flow again",
        json_pack("{s:s}", "parameter", "state"));
}

int im_oauth_callback(casb_http_req *req)
{
    const char *code = NULL, *state = NULL, *error = NULL, *error_description = NULL;
    const char *error_uri = NULL, *installation_id = NULL, *setup_action = NULL;
    /* GitHub adds installation_id and setup_action when the App was installed on the way. */
    const casb_query_param params[] = {{"code", &code},
                                       {"state", &state},
                                       {"error", &error},
                                       {"error_description", &error_description},
                                       {"error_uri", &error_uri},
                                       {"installation_id", &installation_id},
                                       {"setup_action", &setup_action},
                                       {NULL, NULL}};
    casb_query_text text;
    callback_ctx cb;
    int status;

    memset(&cb, 0, sizeof(cb));
    cb.req = req;
    cb.app = im_req_app(req);
    status = casb_query_read(req, params, &text);
    if (status != 0)
        return status;
    cb.provider = path_provider(req, NULL, &status);
    if (!cb.provider)
        return status;
    status = take_flow(&cb, state);
    if (status != 0)
        return status;
    snprintf(cb.who.account_id, sizeof(cb.who.account_id), "%s", cb.flow.account_id);
    snprintf(cb.who.token_name, sizeof(cb.who.token_name), "%s", cb.flow.actor);
    cb.action = cb.flow.integration_id[0] ? "reauthorize" : "create";
    cb.id = cb.flow.integration_id[0] ? cb.flow.integration_id : NULL;
    status = complete(&cb, code, error, error_description, setup_action);
    im_oauth_flow_clear(&cb.flow);
    return status;
}
