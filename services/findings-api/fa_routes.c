#include "fa_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/log.h"
#include "casb/query.h"
#include "fa_export.h"
#include "fa_query.h"
#include "fa_request.h"
#include "fa_store.h"
#include "fa_triage.h"
#include "fa_views.h"

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
        FA_FINDINGS_FILTER_PARAMS(p),
        {"include_resolved", &p.include_resolved},
        {"sort", &p.sort},
        {"limit", &p.limit},
        {"cursor", &p.cursor},
        {NULL, NULL},
    };
    casb_query_text text;
    fa_findings_query q = {.account_id = fa_account_of(r)};
    const char *param = NULL;
    casb_text list = {0};
    char *next = NULL;
    PGresult *res = NULL;
    casb_db *db = NULL;
    char err[256];
    int status, n;

    status = casb_query_read(r, params, &text);
    if (status != 0)
        return status;
    if (fa_query_findings(&q, &p, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    if (fa_query_resolve(&q, &p, a->catalogue) != 0) {
        status = fa_reply_internal(r, "list findings", "out of memory");
        goto out;
    }

    db = fa_acquire(r, &status);
    if (!db)
        goto out;
    res = fa_store_list_findings(db, &q, err, sizeof(err));
    fa_release(r, db);
    if (!res) {
        status = fa_reply_internal(r, "list findings", err);
        goto out;
    }
    n = PQntuples(res);
    fa_view_findings_append(&list, res, n < q.limit ? n : q.limit, a->catalogue);
    if (n > q.limit) {
        int last = q.limit - 1;

        fa_findings_cursor c = {q.sort, casb_db_get_int(res, last, "k1", 0),
                                casb_db_get_int(res, last, "k2", 0), ""};

        casb_db_get_uuid(res, last, "id", c.id);
        next = fa_cursor_findings_encode(&c);
    }
    status = casb_query_reply_list_text(r, "findings", &list, next);
out:
    PQclear(res);
    fa_findings_query_clear(&q);
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

    status = fa_finding_request(r, none, NULL, &id);
    if (status != 0)
        return status;
    db = fa_acquire(r, &status);
    if (!db)
        return status;
    status = fa_load_finding(r, db, id, &res);
    fa_release(r, db);
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
    casb_text list = {0};
    char err[256];
    int status, n;

    status = fa_finding_request(r, params, &text, &id);
    if (status != 0)
        return status;
    if (fa_query_instances(&page, &p, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    db = fa_acquire(r, &status);
    if (!db)
        return status;
    res = fa_store_list_instances(db, fa_account_of(r), id, page.state,
                                  page.after_asset_id[0] ? page.after_asset_id : NULL,
                                  page.limit, err, sizeof(err));
    fa_release(r, db);
    if (!res)
        return fa_reply_internal(r, "list instances", err);
    /* Without the finding's row the account has no such finding: an empty list would
     * hide a typo. */
    if (PQntuples(res) == 0 || !casb_db_get(res, 0, "finding_id")) {
        status = PQntuples(res) == 0
                     ? fa_reply_not_found(r)
                     : fa_reply_internal(r, "list instances", "the finding's row is not first");
        PQclear(res);
        return status;
    }
    n = PQntuples(res) - 1; /* instances: rows 1 to n */
    fa_view_instances_append(&list, res, n < page.limit ? n : page.limit);
    if (n > page.limit)
        next = fa_cursor_instances_encode(casb_db_get(res, page.limit, "asset_id"));
    PQclear(res);
    return casb_query_reply_list_text(r, "instances", &list, next);
}

/* GET /v1/instances: the instances of every finding the filters select, across findings. */
static int handle_all_instances(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    fa_findings_params p = {0};
    const char *state = NULL, *cursor = NULL;
    const casb_query_param params[] = {
        FA_FINDINGS_FILTER_PARAMS(p), {"state", &state}, {"limit", &p.limit},
        {"cursor", &cursor},          {NULL, NULL},
    };
    casb_query_text text;
    fa_findings_query q = {.account_id = fa_account_of(r)};
    fa_all_instances_page page;
    const char *filters[10];
    const char *param = NULL;
    PGresult *res = NULL;
    casb_text list = {0};
    char *next = NULL;
    char err[256];
    casb_db *db;
    int status, n;

    status = casb_query_read(r, params, &text);
    if (status != 0)
        return status;
    if (fa_query_findings(&q, &p, &param, err, sizeof(err)) != 0 ||
        fa_query_all_instances(&page, state, cursor, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    if (fa_query_resolve(&q, &p, a->catalogue) != 0) {
        status = fa_reply_internal(r, "list instances", "out of memory");
        goto out;
    }
    fa_query_filter_params(&q, page.state, filters);
    db = fa_acquire(r, &status);
    if (!db)
        goto out;
    res = fa_store_list_all_instances(db, filters, page.after_finding[0] ? page.after_finding
                                                                         : NULL,
                                      page.after_asset, q.limit, err, sizeof(err));
    fa_release(r, db);
    if (!res) {
        status = fa_reply_internal(r, "list instances", err);
        goto out;
    }
    n = PQntuples(res);
    fa_view_instances_of_append(&list, res, n < q.limit ? n : q.limit, a->catalogue);
    if (n > q.limit) {
        char finding_id[37];

        next = fa_cursor_all_instances_encode(
            casb_db_get_uuid(res, q.limit - 1, "finding_id", finding_id),
            casb_db_get(res, q.limit - 1, "asset_id"));
    }
    status = casb_query_reply_list_text(r, "instances", &list, next);
out:
    PQclear(res);
    fa_findings_query_clear(&q);
    return status;
}

static int handle_summary(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const casb_query_param none[] = {{NULL, NULL}};
    fa_summary *summary;
    const char *json;
    char err[256];
    casb_db *db;
    size_t len;
    int status;

    status = casb_query_read(r, none, NULL);
    if (status != 0)
        return status;
    db = fa_acquire(r, &status);
    if (!db)
        return status;
    summary = fa_summary_get(a->summaries, db, fa_account_of(r), a->catalogue, err,
                             sizeof(err));
    fa_release(r, db);
    if (!summary)
        return fa_reply_internal(r, "summary", err);
    json = fa_summary_json(summary, &len);
    status = casb_http_reply_text(r, 200, "application/json", json, len);
    fa_summary_release(summary);
    return status;
}

int fa_routes_register(casb_http_server *s)
{
    if (casb_http_route(s, "GET", "/v1/finding-types", handle_finding_types, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/findings", handle_list_findings, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/findings/{id}", handle_get_finding, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/findings/{id}/instances", handle_list_instances, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/summary", handle_summary, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/instances", handle_all_instances, 0) != 0 ||
        fa_triage_register(s) != 0 || fa_export_register(s) != 0)
        return -1;
    return 0;
}
