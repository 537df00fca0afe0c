#include "fa_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/log.h"
#include "casb/query.h"
#include "fa_query.h"
#include "fa_store.h"
#include "fa_views.h"

#define FA_POOL_WAIT_MS 5000

int fa_ready(void *app, char *reason, size_t reasonlen)
{
    fa_app *a = app;
    casb_db *db = casb_db_pool_acquire(a->pool, 2000);
    int ok;

    if (!db) {
        snprintf(reason, reasonlen, "no database connection available");
        return 0;
    }
    ok = casb_db_ping(db);
    casb_db_pool_release(a->pool, db);
    if (!ok) {
        snprintf(reason, reasonlen, "database unreachable");
        return 0;
    }
    if (!casb_kafka_reachable(a->producer, 2000)) {
        snprintf(reason, reasonlen, "kafka unreachable");
        return 0;
    }
    if (!fa_ingest_alive(a->ingest)) {
        snprintf(reason, reasonlen, "result ingest stopped");
        return 0;
    }
    return 1;
}

static const char *account_of(casb_http_req *r)
{
    return casb_http_principal(r)->account_id;
}

static int reply_internal(casb_http_req *r, const char *operation, const char *err)
{
    casb_log_error("request failed", "operation", operation, "error", err);
    return casb_http_reply_problem(r, 500, "internal error", NULL);
}

static int reply_not_found(casb_http_req *r)
{
    return casb_http_reply_problem(r, 404, "finding not found", NULL);
}

/* A pooled connection, or NULL with *status the 503 already answered. */
static casb_db *acquire(casb_http_req *r, int *status)
{
    fa_app *a = casb_http_app(r);
    casb_db *db = casb_db_pool_acquire(a->pool, FA_POOL_WAIT_MS);

    if (!db) {
        casb_log_warn("no database connection available");
        *status = casb_http_reply_problem(r, 503, "database unavailable, retry later", NULL);
    }
    return db;
}

static void release(casb_http_req *r, casb_db *db)
{
    fa_app *a = casb_http_app(r);

    casb_db_pool_release(a->pool, db);
}

/* The start of the /v1/findings/{id} handlers: the query (params) and the path's id. An id
 * that is not a UUID names no finding: 404 like an unknown one, before any SQL. Returns 0
 * with *id set, or the status already answered. */
static int finding_request(casb_http_req *r, const casb_query_param *params,
                           casb_query_text *text, const char **id)
{
    int status = casb_query_read(r, params, text);

    *id = casb_http_param(r, "id");
    if (status != 0)
        return status;
    if (!*id || !casb_uuid_valid(*id))
        return reply_not_found(r);
    return 0;
}

/* Loads the caller's finding: 0 with *res (one row, the caller clears it), or the status
 * already answered (404 when the account has no such finding). */
static int load_finding(casb_http_req *r, casb_db *db, const char *id, PGresult **res)
{
    char err[256];

    *res = fa_store_get_finding(db, account_of(r), id, err, sizeof(err));
    if (!*res)
        return reply_internal(r, "get finding", err);
    if (PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        return reply_not_found(r);
    }
    return 0;
}

static int handle_finding_types(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const char *provider = NULL;
    const casb_query_param params[] = {{"provider", &provider}, {NULL, NULL}};
    casb_query_text text;
    const char *param = NULL;
    char err[256];
    json_t *list = NULL;
    int status;

    status = casb_query_read(r, params, &text);
    if (status != 0)
        return status;
    if (fa_query_provider(provider, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    list = json_array();
    for (size_t i = 0; i < fa_catalogue_count(a->catalogue); i++) {
        const fa_finding_type *t = fa_catalogue_at(a->catalogue, i);

        if (provider && strcmp(t->provider, provider) != 0)
            continue;
        json_array_append(list, t->doc);
    }
    return casb_query_reply_list(r, "finding_types", list, NULL);
}

static int handle_list_findings(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    fa_findings_params p;
    const casb_query_param params[] = {
        {"integration_id", &p.integration_id},
        {"provider", &p.provider},
        {"severity", &p.severity},
        {"status", &p.status},
        {"category", &p.category},
        {"finding_type", &p.finding_type},
        {"include_resolved", &p.include_resolved},
        {"limit", &p.limit},
        {"cursor", &p.cursor},
        {NULL, NULL},
    };
    casb_query_text text;
    fa_findings_query q = {.account_id = account_of(r)};
    const char *param = NULL;
    json_t *types = NULL, *list = NULL;
    char *types_s = NULL, *next = NULL;
    PGresult *res = NULL;
    casb_db *db = NULL;
    char err[256];
    int status, n;

    status = casb_query_read(r, params, &text);
    if (status != 0)
        return status;
    if (fa_query_findings(&q, &p, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    if (p.category) {
        types = fa_catalogue_ids_in_category(a->catalogue, p.category);
        types_s = types ? json_dumps(types, JSON_COMPACT) : NULL;
        if (!types_s) {
            status = reply_internal(r, "list findings", "out of memory");
            goto out;
        }
        q.types_json = types_s;
    }

    db = acquire(r, &status);
    if (!db)
        goto out;
    res = fa_store_list_findings(db, &q, err, sizeof(err));
    release(r, db);
    if (!res) {
        status = reply_internal(r, "list findings", err);
        goto out;
    }
    list = json_array();
    n = PQntuples(res);
    for (int i = 0; i < n && i < q.limit; i++)
        json_array_append_new(list, fa_view_finding(res, i, a->catalogue, 0));
    if (n > q.limit) {
        int last = q.limit - 1;

        next = fa_cursor_findings_encode((int)casb_db_get_int(res, last, "severity_rank", 3),
                                         (long)casb_db_get_int(res, last, "instance_count", 0),
                                         casb_db_get(res, last, "id"));
    }
    status = casb_query_reply_list(r, "findings", list, next);
out:
    PQclear(res);
    json_decref(types);
    free(types_s);
    return status;
}

static int handle_get_finding(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const casb_query_param none[] = {{NULL, NULL}};
    const char *id = NULL;
    PGresult *res = NULL;
    casb_db *db = NULL;
    int status;

    status = finding_request(r, none, NULL, &id);
    if (status != 0)
        return status;
    db = acquire(r, &status);
    if (!db)
        return status;
    status = load_finding(r, db, id, &res);
    release(r, db);
    if (status != 0)
        return status;
    status = casb_http_reply_json(r, 200, fa_view_finding(res, 0, a->catalogue, 1));
    PQclear(res);
    return status;
}

static int handle_list_instances(casb_http_req *r)
{
    fa_instances_params p;
    const casb_query_param params[] = {
        {"state", &p.state}, {"limit", &p.limit}, {"cursor", &p.cursor}, {NULL, NULL}};
    casb_query_text text;
    fa_instances_page page;
    const char *id = NULL;
    const char *param = NULL;
    char *next = NULL;
    PGresult *res = NULL;
    casb_db *db = NULL;
    json_t *list = NULL;
    char err[256];
    int status, n;

    status = finding_request(r, params, &text, &id);
    if (status != 0)
        return status;
    if (fa_query_instances(&page, &p, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    db = acquire(r, &status);
    if (!db)
        return status;
    /* The finding must exist in the caller's account: an empty list would hide a typo. */
    status = load_finding(r, db, id, &res);
    PQclear(res);
    res = NULL;
    if (status == 0) {
        res = fa_store_list_instances(db, account_of(r), id, page.state,
                                      page.after_asset_id[0] ? page.after_asset_id : NULL,
                                      page.limit, err, sizeof(err));
        if (!res)
            status = reply_internal(r, "list instances", err);
    }
    release(r, db);
    if (status != 0)
        return status;
    list = json_array();
    n = PQntuples(res);
    for (int i = 0; i < n && i < page.limit; i++)
        json_array_append_new(list, fa_view_instance(res, i));
    if (n > page.limit)
        next = fa_cursor_instances_encode(casb_db_get(res, page.limit - 1, "asset_id"));
    PQclear(res);
    return casb_query_reply_list(r, "instances", list, next);
}

static int handle_summary(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const casb_query_param none[] = {{NULL, NULL}};
    PGresult *by_type = NULL, *by_integration = NULL;
    char err[256];
    casb_db *db;
    int status;

    status = casb_query_read(r, none, NULL);
    if (status != 0)
        return status;
    db = acquire(r, &status);
    if (!db)
        return status;
    by_type = fa_store_summary_by_type(db, account_of(r), err, sizeof(err));
    if (by_type)
        by_integration = fa_store_summary_by_integration(db, account_of(r), err, sizeof(err));
    release(r, db);
    if (!by_type || !by_integration)
        status = reply_internal(r, "summary", err);
    else
        status = casb_http_reply_json(r, 200,
                                      fa_view_summary(by_type, by_integration, a->catalogue));
    PQclear(by_type);
    PQclear(by_integration);
    return status;
}

int fa_routes_register(casb_http_server *s)
{
    if (casb_http_route(s, "GET", "/v1/finding-types", handle_finding_types, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/findings", handle_list_findings, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/findings/{id}", handle_get_finding, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/findings/{id}/instances", handle_list_instances, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/summary", handle_summary, 0) != 0)
        return -1;
    return 0;
}
