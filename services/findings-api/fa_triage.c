/* Triage (ignore and unignore findings, hide and unhide instances, tune and reset severity)
 * and the timeline it leaves: GET /v1/findings/{id}/history and GET /v1/trend. Changes need
 * the analyst role; each records who made it. */
#include "fa_triage.h"

#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/log.h"
#include "casb/query.h"
#include "fa_query.h"
#include "fa_request.h"
#include "fa_store.h"
#include "fa_triage_store.h"
#include "fa_views.h"

/* Who acts: the token's name, for the timeline (the routes that triage need the analyst
 * role). */
static const char *actor_of(casb_http_req *r)
{
    const casb_principal *who = casb_http_principal(r);

    return who->token_name[0] ? who->token_name : "unknown";
}

/* "{id}" for one path id. */
static void one_id(char out[40], const char *id)
{
    snprintf(out, 40, "{%s}", id);
}

/* Answers the caller's finding as it is now. */
static int reply_finding(casb_http_req *r, casb_db *db, const char *id, int status_ok)
{
    fa_app *a = casb_http_app(r);
    PGresult *res = NULL;
    int status = fa_load_finding(r, db, id, &res);

    if (status != 0)
        return status;
    status = casb_http_reply_json(r, status_ok, fa_view_finding(res, 0, a->catalogue, 1));
    PQclear(res);
    return status;
}

static int reply_instance(casb_http_req *r, casb_db *db, const char *id)
{
    char err[256];
    PGresult *res = fa_store_get_instance(db, fa_account_of(r), id, err, sizeof(err));
    int status;

    if (!res)
        return fa_reply_internal(r, "get instance", err);
    if (PQntuples(res) == 0)
        status = casb_http_reply_problem(r, 404, "instance not found", NULL);
    else
        status = casb_http_reply_json(r, 200, fa_view_instance(res, 0));
    PQclear(res);
    return status;
}

/* The path's instance id: 404 before any SQL when it is not a UUID. */
static int instance_request(casb_http_req *r, const char **id)
{
    int status = casb_query_read(r, (const casb_query_param[]){{NULL, NULL}}, NULL);

    *id = casb_http_param(r, "id");
    if (status != 0)
        return status;
    if (!*id || !casb_uuid_valid(*id))
        return casb_http_reply_problem(r, 404, "instance not found", NULL);
    return 0;
}

/* ---- findings: ignore / unignore ---- */

typedef enum { ON_FINDINGS, ON_INSTANCES } target;

/* One change applied to ids (an array literal); *changed and *known as the store says. */
static int apply(casb_db *db, casb_http_req *r, target on, int on_flag, const char *ids,
                 const char *actor, long *changed, long *known, char *err, size_t errlen)
{
    if (on == ON_FINDINGS)
        return fa_triage_finding_status(db, fa_account_of(r), ids,
                                        on_flag ? "ignored" : "active",
                                        on_flag ? "ignored" : "unignored", actor, changed,
                                        known, err, errlen);
    return fa_triage_instance_visibility(db, fa_account_of(r), ids, on_flag, actor, changed,
                                         known, err, errlen);
}

/* POST /v1/findings/{id}/ignore and friends: the change, then the resource as it is. */
static int single(casb_http_req *r, target on, int on_flag)
{
    const char *id = NULL, *actor;
    long changed = 0, known = 0;
    char ids[40], err[256];
    casb_db *db;
    int status;

    status = on == ON_FINDINGS ? fa_finding_request(r, (const casb_query_param[]){{NULL, NULL}},
                                                    NULL, &id)
                               : instance_request(r, &id);
    if (status != 0)
        return status;
    actor = actor_of(r);
    db = fa_acquire(r, &status);
    if (!db)
        return status;
    one_id(ids, id);
    if (apply(db, r, on, on_flag, ids, actor, &changed, &known, err, sizeof(err)) != 0)
        status = fa_reply_internal(r, "triage", err);
    else if (known == 0)
        status = on == ON_FINDINGS ? fa_reply_not_found(r)
                                   : casb_http_reply_problem(r, 404, "instance not found", NULL);
    else
        status = on == ON_FINDINGS ? reply_finding(r, db, id, 200) : reply_instance(r, db, id);
    fa_release(r, db);
    return status;
}

/* POST /v1/findings/ignore {"ids": [...]} and friends: one transaction for all of them. */
static int bulk(casb_http_req *r, target on, int on_flag)
{
    const char *actor;
    json_t *body;
    char *ids = NULL;
    long changed = 0, known = 0, requested;
    char err[256];
    casb_db *db;
    int status;

    status = casb_query_read(r, (const casb_query_param[]){{NULL, NULL}}, NULL);
    if (status != 0)
        return status;
    actor = actor_of(r);
    body = casb_http_body_json(r);
    if (!body)
        return casb_http_status(r);
    ids = fa_query_ids(body, &requested, err, sizeof(err));
    json_decref(body);
    if (!ids)
        return casb_http_reply_problem(r, 422, err, json_pack("{s:s}", "field", "ids"));
    db = fa_acquire(r, &status);
    if (db) {
        if (apply(db, r, on, on_flag, ids, actor, &changed, &known, err, sizeof(err)) != 0)
            status = fa_reply_internal(r, "bulk triage", err);
        else
            /* Unknown ids (another account's, or none) are counted, never named back. */
            status = casb_http_reply_json(r, 200, json_pack("{s:I, s:I}", "changed",
                                                            (json_int_t)changed, "not_found",
                                                            (json_int_t)(requested - known)));
        fa_release(r, db);
    }
    free(ids);
    return status;
}

static int h_ignore(casb_http_req *r) { return single(r, ON_FINDINGS, 1); }
static int h_unignore(casb_http_req *r) { return single(r, ON_FINDINGS, 0); }
static int h_ignore_bulk(casb_http_req *r) { return bulk(r, ON_FINDINGS, 1); }
static int h_unignore_bulk(casb_http_req *r) { return bulk(r, ON_FINDINGS, 0); }
static int h_hide(casb_http_req *r) { return single(r, ON_INSTANCES, 1); }
static int h_unhide(casb_http_req *r) { return single(r, ON_INSTANCES, 0); }
static int h_hide_bulk(casb_http_req *r) { return bulk(r, ON_INSTANCES, 1); }
static int h_unhide_bulk(casb_http_req *r) { return bulk(r, ON_INSTANCES, 0); }

static int h_get_instance(casb_http_req *r)
{
    const char *id = NULL;
    casb_db *db;
    int status = instance_request(r, &id);

    if (status != 0)
        return status;
    db = fa_acquire(r, &status);
    if (!db)
        return status;
    status = reply_instance(r, db, id);
    fa_release(r, db);
    return status;
}

/* ---- severity ---- */

/* PUT sets {"severity": ...}; DELETE puts back the catalogue's. */
static int severity(casb_http_req *r, int tune)
{
    fa_app *a = casb_http_app(r);
    const char *id = NULL, *actor, *value = NULL;
    const fa_finding_type *t;
    PGresult *res = NULL;
    json_t *body = NULL;
    char err[256];
    casb_db *db;
    int status, found = 0;

    status = fa_finding_request(r, (const casb_query_param[]){{NULL, NULL}}, NULL, &id);
    if (status != 0)
        return status;
    actor = actor_of(r);
    if (tune) {
        body = casb_http_body_json(r);
        if (!body)
            return casb_http_status(r);
        value = json_string_value(json_object_get(body, "severity"));
        if (json_object_size(body) != 1 || !value || fa_severity_rank(value) < 0) {
            json_decref(body);
            return casb_http_reply_problem(r, 422,
                                           "severity: expected critical, high, medium or low "
                                           "(and nothing else in the body)",
                                           json_pack("{s:s}", "field", "severity"));
        }
    }
    db = fa_acquire(r, &status);
    if (!db)
        goto out;
    status = fa_load_finding(r, db, id, &res);
    if (status == 0 && !tune) {
        t = fa_catalogue_find(a->catalogue, casb_db_get(res, 0, "finding_type"));
        value = t ? t->severity : casb_db_get(res, 0, "severity");
    }
    if (status == 0 && fa_triage_severity(db, fa_account_of(r), id, value, tune, actor, &found,
                                          err, sizeof(err)) != 0)
        status = fa_reply_internal(r, "tune severity", err);
    if (status == 0)
        status = found ? reply_finding(r, db, id, 200) : fa_reply_not_found(r);
    fa_release(r, db);
out:
    PQclear(res);
    json_decref(body);
    return status;
}

static int h_tune_severity(casb_http_req *r) { return severity(r, 1); }
static int h_reset_severity(casb_http_req *r) { return severity(r, 0); }

/* ---- timeline ---- */

static int h_history(casb_http_req *r)
{
    const char *limit = NULL, *cursor = NULL, *param = NULL, *id = NULL;
    const casb_query_param params[] = {{"limit", &limit}, {"cursor", &cursor}, {NULL, NULL}};
    casb_query_text text;
    fa_history_page page;
    PGresult *res = NULL;
    json_t *list;
    char *next = NULL;
    char err[256];
    casb_db *db;
    int status, n;

    status = fa_finding_request(r, params, &text, &id);
    if (status != 0)
        return status;
    if (fa_query_history(&page, limit, cursor, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    db = fa_acquire(r, &status);
    if (!db)
        return status;
    status = fa_check_finding(r, db, id);
    if (status == 0) {
        res = fa_store_history(db, fa_account_of(r), id, page.before_id, page.limit, err,
                               sizeof(err));
        if (!res)
            status = fa_reply_internal(r, "history", err);
    }
    fa_release(r, db);
    if (status != 0)
        return status;
    list = json_array();
    n = PQntuples(res);
    for (int i = 0; i < n && i < page.limit; i++)
        json_array_append_new(list, fa_view_event(res, i));
    if (n > page.limit)
        next = fa_cursor_events_encode(casb_db_get_int(res, page.limit - 1, "id", 0));
    PQclear(res);
    return casb_query_reply_list(r, "events", list, next);
}

static int h_trend(casb_http_req *r)
{
    const char *integration_id = NULL, *days = NULL, *param = NULL;
    const casb_query_param params[] = {
        {"integration_id", &integration_id}, {"days", &days}, {NULL, NULL}};
    casb_query_text text;
    fa_trend_params q;
    PGresult *res;
    char err[256];
    casb_db *db;
    int status;

    status = casb_query_read(r, params, &text);
    if (status != 0)
        return status;
    if (fa_query_trend(&q, integration_id, days, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    db = fa_acquire(r, &status);
    if (!db)
        return status;
    res = fa_store_trend(db, fa_account_of(r), q.integration_id, q.days, err, sizeof(err));
    fa_release(r, db);
    if (!res)
        return fa_reply_internal(r, "trend", err);
    status = casb_http_reply_json(r, 200, fa_view_trend(res));
    PQclear(res);
    return status;
}

int fa_triage_register(casb_http_server *s)
{
    static const casb_http_route_def routes[] = {
        {"POST", "/v1/findings/{id}/ignore", h_ignore, CASB_ROUTE_ANALYST},
        {"POST", "/v1/findings/{id}/unignore", h_unignore, CASB_ROUTE_ANALYST},
        {"POST", "/v1/findings/ignore", h_ignore_bulk, CASB_ROUTE_ANALYST},
        {"POST", "/v1/findings/unignore", h_unignore_bulk, CASB_ROUTE_ANALYST},
        {"PUT", "/v1/findings/{id}/severity", h_tune_severity, CASB_ROUTE_ANALYST},
        {"DELETE", "/v1/findings/{id}/severity", h_reset_severity, CASB_ROUTE_ANALYST},
        {"GET", "/v1/findings/{id}/history", h_history, 0},
        {"GET", "/v1/instances/{id}", h_get_instance, 0},
        {"POST", "/v1/instances/{id}/hide", h_hide, CASB_ROUTE_ANALYST},
        {"POST", "/v1/instances/{id}/unhide", h_unhide, CASB_ROUTE_ANALYST},
        {"POST", "/v1/instances/hide", h_hide_bulk, CASB_ROUTE_ANALYST},
        {"POST", "/v1/instances/unhide", h_unhide_bulk, CASB_ROUTE_ANALYST},
        {"GET", "/v1/trend", h_trend, 0},
    };

    return casb_http_routes(s, routes, sizeof(routes) / sizeof(routes[0]), NULL, 0);
}
