/* /v1/webhooks: destinations (admin to change, anyone to read), their deliveries, a test
 * delivery and redelivery. Secrets go in, sealed, and never come out; the one exception is a
 * signing secret made for the caller, answered once by the request that made it. */
#include "fa_webhook_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/query.h"
#include "fa_request.h"
#include "fa_views.h"
#include "fa_webhook.h"
#include "fa_webhook_send.h"
#include "fa_webhook_sender.h"
#include "fa_webhook_store.h"

#define ALLOWED_NETWORKS_VAR "CASB_WEBHOOK_ALLOWED_NETWORKS"

static int not_found(casb_http_req *r)
{
    return casb_http_reply_problem(r, 404, "webhook not found", NULL);
}

static int invalid(casb_http_req *r, const char *field, const char *detail)
{
    return casb_http_reply_problem(r, 422, detail, json_pack("{ss}", "field", field));
}

/* Who changes a webhook (the routes that change one need the admin role: a webhook sends
 * the account's findings elsewhere). */
static const char *admin_actor(casb_http_req *r)
{
    const casb_principal *who = casb_http_principal(r);

    return who->token_name[0] ? who->token_name : "unknown";
}

/* The path's {id} (and {name} when given) after an empty query: 404 before any SQL when
 * it is not a UUID. */
static int path_ids(casb_http_req *r, const char **id, const char *name, const char **other)
{
    int status = casb_query_read(r, (const casb_query_param[]){{NULL, NULL}}, NULL);

    if (status != 0)
        return status;
    *id = casb_http_param(r, "id");
    if (!*id || !casb_uuid_valid(*id))
        return not_found(r);
    if (name) {
        *other = casb_http_param(r, name);
        if (!*other || !casb_uuid_valid(*other))
            return casb_http_reply_problem(r, 404, "delivery not found", NULL);
    }
    return 0;
}

static int reply_webhook(casb_http_req *r, casb_db *db, const char *id, int ok_status,
                         const json_t *signing_secret)
{
    char err[256];
    PGresult *res = fa_webhook_store_get(db, fa_account_of(r), id, err, sizeof(err));
    json_t *view;
    int status;

    if (!res)
        return fa_reply_internal(r, "get webhook", err);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return not_found(r);
    }
    view = fa_webhook_view(res, 0);
    PQclear(res);
    if (signing_secret)
        json_object_set(view, "signing_secret", (json_t *)signing_secret);
    status = casb_http_reply_json(r, ok_status, view);
    return status;
}

/* ---- checks that need the network or the database ---- */

/* Where the URL leads: refused (422) when it resolves to an address that is not public and
 * not in an allowed network, or does not resolve. Returns 0 or the status answered. */
static int check_destination(casb_http_req *r, const char *url)
{
    fa_app *a = casb_http_app(r);
    char pin[300], why[256] = "", detail[400];
    int rc = casb_netguard_check_url(a->webhooks->guard, url, pin, sizeof(pin), why,
                                     sizeof(why));

    if (rc == 1)
        return 0;
    if (rc == 0)
        snprintf(detail, sizeof(detail),
                 "url refused: %s (the operator may allow its network in " ALLOWED_NETWORKS_VAR
                 ")",
                 why);
    else
        snprintf(detail, sizeof(detail), "url refused: %s", why);
    return invalid(r, "url", detail);
}

static int check_integrations(casb_http_req *r, casb_db *db, const json_t *ids)
{
    char unknown[37], err[256], detail[128];
    int rc;

    if (!ids || json_array_size(ids) == 0)
        return 0;
    rc = fa_webhook_store_unknown_integration(db, fa_account_of(r), ids, unknown, err,
                                              sizeof(err));
    if (rc < 0)
        return fa_reply_internal(r, "check integrations", err);
    if (rc == 0)
        return 0;
    snprintf(detail, sizeof(detail), "integration_ids: %s is not an integration", unknown);
    return invalid(r, "integration_ids", detail);
}

/* Seals in's secrets: *sealed NULL for auth none. Returns 0 or the status answered. */
static int seal_auth(casb_http_req *r, const fa_webhook_input *in, char **sealed,
                     const char **key_id)
{
    fa_app *a = casb_http_app(r);
    char err[256];
    char *plain;
    int rc;

    *sealed = NULL;
    *key_id = NULL;
    if (!in->auth_secret)
        return 0;
    plain = casb_json_dump(in->auth_secret);
    if (!plain)
        return fa_reply_internal(r, "seal webhook secrets", "out of memory");
    rc = casb_secret_seal(a->webhooks->keys, plain, strlen(plain), sealed, err, sizeof(err));
    casb_secret_wipe(plain, strlen(plain));
    free(plain);
    if (rc != 0)
        return fa_reply_internal(r, "seal webhook secrets", err);
    *key_id = casb_keyring_current_id(a->webhooks->keys);
    return 0;
}

/* The body of a POST or PATCH, checked down to its destination. Returns 0 with *in filled
 * (the caller clears it), or the status answered. */
static int read_input(casb_http_req *r, fa_webhook_input *in, int partial)
{
    fa_app *a = casb_http_app(r);
    char field[96], err[256];
    json_t *body = casb_http_body_json(r);
    int status = 0;

    memset(in, 0, sizeof(*in));
    if (!body)
        return casb_http_status(r);
    if (fa_webhook_parse(in, body, partial, a->catalogue, field, sizeof(field), err,
                         sizeof(err)) != 0)
        status = invalid(r, field, err);
    else if (in->url)
        status = check_destination(r, in->url);
    /* in borrows its strings from the body: keep it alive with in (released at clear). */
    if (status == 0)
        in->body = body;
    else
        json_decref(body);
    return status;
}

/* The answer's signing secret: the one made for this request, if any. */
static const json_t *made_secret(const fa_webhook_input *in)
{
    return in->secret_generated ? json_object_get(in->auth_secret, "secret") : NULL;
}

/* What POST and PATCH share: the checked body, a connection, the integrations checked and
 * the secrets sealed. */
typedef struct {
    fa_webhook_input in;
    casb_db *db;
    char *sealed;       /* NULL for auth none or an unchanged auth */
    const char *key_id;
} write_ctx;

/* Returns 0 with w ready, or the status answered; write_end releases w either way. */
static int write_begin(casb_http_req *r, write_ctx *w, int partial)
{
    int status;

    if ((status = read_input(r, &w->in, partial)) != 0)
        return status;
    if (!(w->db = fa_acquire(r, &status)))
        return status;
    if ((status = check_integrations(r, w->db, w->in.integration_ids)) != 0)
        return status;
    return seal_auth(r, &w->in, &w->sealed, &w->key_id);
}

static int write_end(casb_http_req *r, write_ctx *w, int status)
{
    fa_release(r, w->db);
    free(w->sealed);
    fa_webhook_input_clear(&w->in);
    return status;
}

/* ---- webhooks ---- */

static int h_create(casb_http_req *r)
{
    write_ctx w = {0};
    char id[37], err[256], location[64];
    const char *actor;
    int status;

    status = casb_query_read(r, (const casb_query_param[]){{NULL, NULL}}, NULL);
    if (status != 0)
        return status;
    actor = admin_actor(r);
    if ((status = write_begin(r, &w, 0)) != 0)
        return write_end(r, &w, status);
    casb_uuid_v4(id);
    if (fa_webhook_store_insert(w.db, fa_account_of(r), id, &w.in, w.sealed, w.key_id, actor,
                                err, sizeof(err)) != 0)
        return write_end(r, &w, fa_reply_internal(r, "create webhook", err));
    casb_log_info("webhook created", "webhook_id", id, "actor", actor);
    snprintf(location, sizeof(location), "/v1/webhooks/%s", id);
    casb_http_add_header(r, "Location", location);
    return write_end(r, &w, reply_webhook(r, w.db, id, 201, made_secret(&w.in)));
}

static int h_list(casb_http_req *r)
{
    const char *limit_s = NULL, *cursor = NULL;
    const casb_query_param params[] = {{"limit", &limit_s}, {"cursor", &cursor}, {NULL, NULL}};
    casb_query_text text;
    PGresult *res;
    json_t *list;
    char *next = NULL;
    char err[256];
    long limit;
    casb_db *db;
    int status, n;

    if ((status = casb_query_read(r, params, &text)) != 0)
        return status;
    if (casb_query_limit(limit_s, &limit, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, "limit", err);
    if (cursor && !casb_uuid_valid(cursor))
        return casb_query_reply_invalid(r, "cursor", "not a cursor of this list");
    if (!(db = fa_acquire(r, &status)))
        return status;
    res = fa_webhook_store_list(db, fa_account_of(r), cursor, (int)limit, err, sizeof(err));
    fa_release(r, db);
    if (!res)
        return fa_reply_internal(r, "list webhooks", err);
    list = json_array();
    n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(list, fa_webhook_view(res, i));
    if (n > limit)
        next = strdup(casb_db_get(res, (int)limit - 1, "id"));
    PQclear(res);
    return casb_query_reply_list(r, "webhooks", list, next);
}

static int h_get(casb_http_req *r)
{
    const char *id;
    casb_db *db;
    int status;

    if ((status = path_ids(r, &id, NULL, NULL)) != 0)
        return status;
    if (!(db = fa_acquire(r, &status)))
        return status;
    status = reply_webhook(r, db, id, 200, NULL);
    fa_release(r, db);
    return status;
}

static int h_update(casb_http_req *r)
{
    write_ctx w = {0};
    const char *id;
    char err[256];
    int status, found = 0;

    if ((status = path_ids(r, &id, NULL, NULL)) != 0)
        return status;
    if ((status = write_begin(r, &w, 1)) != 0)
        return write_end(r, &w, status);
    if (fa_webhook_store_update(w.db, fa_account_of(r), id, &w.in, w.sealed, w.key_id, &found,
                                err, sizeof(err)) != 0)
        status = fa_reply_internal(r, "update webhook", err);
    else if (!found)
        status = not_found(r);
    else
        status = reply_webhook(r, w.db, id, 200, made_secret(&w.in));
    return write_end(r, &w, status);
}

static int h_delete(casb_http_req *r)
{
    const char *id;
    char err[256];
    casb_db *db;
    int status, found = 0;

    if ((status = path_ids(r, &id, NULL, NULL)) != 0)
        return status;
    if (!(db = fa_acquire(r, &status)))
        return status;
    if (fa_webhook_store_delete(db, fa_account_of(r), id, &found, err, sizeof(err)) != 0)
        status = fa_reply_internal(r, "delete webhook", err);
    else if (!found)
        status = not_found(r);
    else
        status = casb_http_reply_json(r, 204, NULL);
    fa_release(r, db);
    return status;
}

/* ---- deliveries ---- */

static int reply_delivery(casb_http_req *r, casb_db *db, const char *webhook_id,
                          const char *delivery_id, int ok_status)
{
    char err[256];
    PGresult *res = fa_webhook_store_delivery(db, fa_account_of(r), webhook_id, delivery_id,
                                              err, sizeof(err));
    int status;

    if (!res)
        return fa_reply_internal(r, "get delivery", err);
    if (PQntuples(res) == 0)
        status = casb_http_reply_problem(r, 404, "delivery not found", NULL);
    else
        status = casb_http_reply_json(r, ok_status, fa_webhook_delivery_view(res, 0));
    PQclear(res);
    return status;
}

/* The webhook's row, for routes under it: 0 with *res, or the status answered. */
static int load_webhook(casb_http_req *r, casb_db *db, const char *id, PGresult **res)
{
    char err[256];

    *res = fa_webhook_store_get(db, fa_account_of(r), id, err, sizeof(err));
    if (!*res)
        return fa_reply_internal(r, "get webhook", err);
    if (PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        return not_found(r);
    }
    return 0;
}

static int h_deliveries(casb_http_req *r)
{
    const char *id, *state = NULL, *limit_s = NULL, *cursor = NULL;
    const casb_query_param params[] = {
        {"status", &state}, {"limit", &limit_s}, {"cursor", &cursor}, {NULL, NULL}};
    casb_query_text text;
    PGresult *res = NULL;
    long long before = 0;
    json_t *list;
    char *next = NULL;
    char err[256];
    long limit;
    casb_db *db;
    int status, n;

    if ((status = casb_query_read(r, params, &text)) != 0)
        return status;
    id = casb_http_param(r, "id");
    if (!id || !casb_uuid_valid(id))
        return not_found(r);
    if (state && strcmp(state, "pending") != 0 && strcmp(state, "succeeded") != 0 &&
        strcmp(state, "failed") != 0)
        return casb_query_reply_invalid(r, "status", "must be pending, succeeded or failed");
    if (casb_query_limit(limit_s, &limit, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, "limit", err);
    /* Deliveries page by their sequence number, as the timeline pages by event id. */
    if (cursor && (before = fa_cursor_events_decode(cursor)) <= 0)
        return casb_query_reply_invalid(r, "cursor", "not a cursor of this list");
    if (!(db = fa_acquire(r, &status)))
        return status;
    if ((status = load_webhook(r, db, id, &res)) == 0) {
        PQclear(res);
        res = fa_webhook_store_deliveries(db, fa_account_of(r), id, state, before, (int)limit,
                                          err, sizeof(err));
        if (!res)
            status = fa_reply_internal(r, "list deliveries", err);
    }
    fa_release(r, db);
    if (status != 0)
        return status;
    list = json_array();
    n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(list, fa_webhook_delivery_view(res, i));
    if (n > limit)
        next = fa_cursor_events_encode(casb_db_get_int(res, (int)limit - 1, "seq", 0));
    PQclear(res);
    return casb_query_reply_list(r, "deliveries", list, next);
}

static int h_redeliver(casb_http_req *r)
{
    const char *id, *delivery_id;
    PGresult *res;
    char err[256];
    casb_db *db;
    int status;

    if ((status = path_ids(r, &id, "delivery_id", &delivery_id)) != 0)
        return status;
    if (!(db = fa_acquire(r, &status)))
        return status;
    res = fa_webhook_store_redeliver(db, fa_account_of(r), id, delivery_id, err, sizeof(err));
    if (!res)
        status = fa_reply_internal(r, "redeliver", err);
    else if (PQntuples(res) == 1)
        status = casb_http_reply_json(r, 202, fa_webhook_delivery_view(res, 0));
    else {
        /* Nothing was requeued: unknown (404), or pending / a test (409). */
        status = reply_delivery(r, db, id, delivery_id, 409);
        if (status == 409)
            casb_log_info("redelivery refused", "delivery_id", delivery_id);
    }
    PQclear(res);
    fa_release(r, db);
    return status;
}

/* ---- test delivery ---- */

/* One attempt to the webhook's destination, with the secrets of its row (the view does not
 * carry them). Returns 0 with *res, or -1 with err. */
static int send_now(casb_db *db, const char *account_id, const char *id,
                    const fa_webhook_env *env, casb_http_client *http, const char *delivery_id,
                    const char *body, fa_webhook_result *res, char *err, size_t errlen)
{
    PGresult *row = fa_webhook_store_target(db, account_id, id, err, errlen);

    if (!row)
        return -1;
    if (PQntuples(row) == 0) {
        PQclear(row);
        snprintf(err, errlen, "the webhook was deleted during its test");
        return -1;
    }
    fa_webhook_target t = {
        .delivery_id = delivery_id,
        .event_type = "webhook.test",
        .url = casb_db_get(row, 0, "url"),
        .auth_type = casb_db_get(row, 0, "auth_type"),
        .auth_sealed = casb_db_get(row, 0, "auth_sealed"),
    };
    fa_webhook_send(env, http, &t, body, res);
    PQclear(row);
    return 0;
}

/* Sends a webhook.test event now, records it as a delivery of one attempt (no retries) and
 * answers the delivery: the caller sees at once whether the destination accepts it. */
static int h_test(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const char *id;
    PGresult *hook = NULL;
    casb_http_client *http = NULL;
    fa_webhook_result res;
    fa_webhook_outcome out = {0};
    char delivery_id[37], err[256];
    char *body = NULL;
    casb_db *db;
    int status;

    if ((status = path_ids(r, &id, NULL, NULL)) != 0)
        return status;
    if (!(db = fa_acquire(r, &status)))
        return status;
    if ((status = load_webhook(r, db, id, &hook)) != 0)
        goto out;
    casb_uuid_v4(delivery_id);
    body = fa_webhook_test_body(delivery_id, fa_account_of(r), id, casb_db_get(hook, 0, "name"));
    if (!body || fa_webhook_client_new(&http, a->webhooks, err, sizeof(err)) != 0 ||
        fa_webhook_store_insert_test(db, fa_account_of(r), id, delivery_id,
                                     a->webhooks->timeout_ms / 1000 + 30, err,
                                     sizeof(err)) != 0) {
        status = fa_reply_internal(r, "test webhook", body ? err : "out of memory");
        goto out;
    }
    if (send_now(db, fa_account_of(r), id, a->webhooks, http, delivery_id, body, &res, err,
                 sizeof(err)) != 0) {
        status = fa_reply_internal(r, "test webhook", err);
        goto out;
    }
    out.ok = res.ok;
    out.status_code = res.status_code;
    out.error = res.ok ? NULL : res.error;
    out.retry_in_ms = -1;
    fa_webhook_metrics_count(res.ok ? "succeeded" : "failed");
    if (fa_webhook_store_record(db, delivery_id, &out, err, sizeof(err)) != 0)
        status = fa_reply_internal(r, "test webhook", err);
    else
        status = reply_delivery(r, db, id, delivery_id, 200);
out:
    PQclear(hook);
    casb_http_client_free(http);
    free(body);
    fa_release(r, db);
    return status;
}

int fa_webhook_routes_register(casb_http_server *s)
{
    static const casb_http_route_def routes[] = {
        {"POST", "/v1/webhooks", h_create, CASB_ROUTE_ADMIN},
        {"GET", "/v1/webhooks", h_list, 0},
        {"GET", "/v1/webhooks/{id}", h_get, 0},
        {"PATCH", "/v1/webhooks/{id}", h_update, CASB_ROUTE_ADMIN},
        {"DELETE", "/v1/webhooks/{id}", h_delete, CASB_ROUTE_ADMIN},
        {"POST", "/v1/webhooks/{id}/test", h_test, CASB_ROUTE_ADMIN},
        {"GET", "/v1/webhooks/{id}/deliveries", h_deliveries, 0},
        {"POST", "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", h_redeliver,
         CASB_ROUTE_ADMIN},
    };

    return casb_http_routes(s, routes, sizeof(routes) / sizeof(routes[0]), NULL, 0);
}
