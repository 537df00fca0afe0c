#include "fa_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/log.h"
#include "fa_store.h"
#include "fa_views.h"

#define FA_POOL_WAIT_MS 5000
#define FA_DEFAULT_LIMIT 100
#define FA_MAX_LIMIT 500

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

static int bad_param(casb_http_req *r, const char *field, const char *detail)
{
    return casb_http_reply_problem(r, 400, detail, json_pack("{s:s}", "field", field));
}

static int db_unavailable(casb_http_req *r, const char *err)
{
    casb_log_error("database query failed", "path", casb_http_path(r), "error", err);
    return casb_http_reply_problem(r, 503, "database unavailable", NULL);
}

/* Reads an optional query parameter: 1 present (in buf), 0 absent, -1 answered 400. */
static int query_param(casb_http_req *r, const char *name, char *buf, size_t buflen)
{
    int rc = casb_http_query(r, name, buf, buflen);

    if (rc < 0) {
        bad_param(r, name, "query parameter too long");
        return -1;
    }
    if (rc == 1 && buf[0] == '\0')
        return 0; /* "?severity=" means no filter */
    return rc;
}

static int parse_limit(casb_http_req *r, int *limit)
{
    char buf[16];
    int rc = query_param(r, "limit", buf, sizeof(buf));
    char *end;
    long v;

    *limit = FA_DEFAULT_LIMIT;
    if (rc <= 0)
        return rc;
    v = strtol(buf, &end, 10);
    if (*end || v < 1 || v > FA_MAX_LIMIT) {
        bad_param(r, "limit", "limit: expected an integer from 1 to 500");
        return -1;
    }
    *limit = (int)v;
    return 0;
}

static int handle_finding_types(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    char provider[64];
    json_t *list = json_array();
    int rc = query_param(r, "provider", provider, sizeof(provider));

    if (rc < 0) {
        json_decref(list);
        return 400;
    }
    for (size_t i = 0; i < fa_catalogue_count(a->catalogue); i++) {
        const fa_finding_type *t = fa_catalogue_at(a->catalogue, i);
        if (rc == 1 && strcmp(t->provider, provider) != 0)
            continue;
        json_array_append(list, t->doc);
    }
    return casb_http_reply_json(r, 200,
                                json_pack("{s:o, s:n}", "finding_types", list, "next_cursor"));
}

static int handle_list_findings(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const casb_principal *who = casb_http_principal(r);
    fa_findings_query q = {.account_id = who->account_id};
    char integration_id[64], provider[64], severity[16], status[16], category[32];
    char finding_type[160], include_resolved[8], cursor[128], err[256];
    json_t *types = NULL, *list = NULL, *body = NULL;
    char *types_s = NULL, *next = NULL;
    PGresult *res = NULL;
    casb_db *db = NULL;
    int rc, n, status_code = 400;

    if ((rc = query_param(r, "integration_id", integration_id, sizeof(integration_id))) < 0)
        goto out;
    if (rc == 1) {
        if (!casb_uuid_valid(integration_id)) {
            status_code = bad_param(r, "integration_id", "integration_id: not a UUID");
            goto out;
        }
        q.integration_id = integration_id;
    }
    if ((rc = query_param(r, "provider", provider, sizeof(provider))) < 0)
        goto out;
    q.provider = rc == 1 ? provider : NULL;
    if ((rc = query_param(r, "severity", severity, sizeof(severity))) < 0)
        goto out;
    if (rc == 1) {
        if (fa_severity_rank(severity) < 0) {
            status_code = bad_param(r, "severity",
                                    "severity: expected critical, high, medium or low");
            goto out;
        }
        q.severity = severity;
    }
    if ((rc = query_param(r, "status", status, sizeof(status))) < 0)
        goto out;
    if (rc == 1) {
        if (strcmp(status, "active") != 0 && strcmp(status, "ignored") != 0) {
            status_code = bad_param(r, "status", "status: expected active or ignored");
            goto out;
        }
        q.status = status;
    }
    if ((rc = query_param(r, "category", category, sizeof(category))) < 0)
        goto out;
    if (rc == 1) {
        if (!fa_category_valid(category)) {
            status_code = bad_param(r, "category",
                                    "category: expected misconfiguration, user_activity, "
                                    "data_exposure or shadow_it");
            goto out;
        }
        types = fa_catalogue_ids_in_category(a->catalogue, category);
        types_s = types ? json_dumps(types, JSON_COMPACT) : NULL;
        if (!types_s) {
            status_code = casb_http_reply_problem(r, 500, "out of memory", NULL);
            goto out;
        }
        q.types_json = types_s;
    }
    if ((rc = query_param(r, "finding_type", finding_type, sizeof(finding_type))) < 0)
        goto out;
    q.finding_type = rc == 1 ? finding_type : NULL;
    if ((rc = query_param(r, "include_resolved", include_resolved, sizeof(include_resolved))) < 0)
        goto out;
    if (rc == 1) {
        if (strcmp(include_resolved, "true") == 0 || strcmp(include_resolved, "1") == 0) {
            q.include_resolved = 1;
        } else if (strcmp(include_resolved, "false") != 0 && strcmp(include_resolved, "0") != 0) {
            status_code = bad_param(r, "include_resolved", "include_resolved: expected true or false");
            goto out;
        }
    }
    if (parse_limit(r, &q.limit) < 0)
        goto out;
    if ((rc = query_param(r, "cursor", cursor, sizeof(cursor))) < 0)
        goto out;
    if (rc == 1) {
        if (fa_cursor_findings_decode(cursor, &q.cursor_rank, &q.cursor_count, q.cursor_id) != 0) {
            status_code = bad_param(r, "cursor", "cursor: not a cursor of this list");
            goto out;
        }
        q.has_cursor = 1;
    }
    /* One row more than the page tells whether there is a next page. */
    q.limit += 1;

    db = casb_db_pool_acquire(a->pool, FA_POOL_WAIT_MS);
    if (!db) {
        status_code = db_unavailable(r, "no pooled connection");
        goto out;
    }
    res = fa_store_list_findings(db, &q, err, sizeof(err));
    if (!res) {
        status_code = db_unavailable(r, err);
        goto out;
    }
    list = json_array();
    n = PQntuples(res);
    for (int i = 0; i < n && i < q.limit - 1; i++)
        json_array_append_new(list, fa_view_finding(res, i, a->catalogue, 0));
    if (n >= q.limit) {
        int last = q.limit - 2;
        next = fa_cursor_findings_encode((int)casb_db_get_int(res, last, "severity_rank", 3),
                                         (long)casb_db_get_int(res, last, "instance_count", 0),
                                         casb_db_get(res, last, "id"));
    }
    body = json_pack("{s:o, s:s?}", "findings", list, "next_cursor", next);
    list = NULL;
    status_code = casb_http_reply_json(r, 200, body);
out:
    PQclear(res);
    if (db)
        casb_db_pool_release(a->pool, db);
    json_decref(types);
    json_decref(list);
    free(types_s);
    free(next);
    return status_code;
}

static int handle_get_finding(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const casb_principal *who = casb_http_principal(r);
    const char *id = casb_http_param(r, "id");
    char err[256];
    PGresult *res = NULL;
    casb_db *db = NULL;
    int status_code;

    if (!id || !casb_uuid_valid(id))
        return casb_http_reply_problem(r, 404, "no such finding", NULL);
    db = casb_db_pool_acquire(a->pool, FA_POOL_WAIT_MS);
    if (!db)
        return db_unavailable(r, "no pooled connection");
    res = fa_store_get_finding(db, who->account_id, id, err, sizeof(err));
    if (!res)
        status_code = db_unavailable(r, err);
    else if (PQntuples(res) == 0)
        status_code = casb_http_reply_problem(r, 404, "no such finding", NULL);
    else
        status_code = casb_http_reply_json(r, 200, fa_view_finding(res, 0, a->catalogue, 1));
    PQclear(res);
    casb_db_pool_release(a->pool, db);
    return status_code;
}

static int handle_list_instances(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const casb_principal *who = casb_http_principal(r);
    const char *id = casb_http_param(r, "id");
    char state[16], cursor[4096], err[256];
    const char *state_filter = "active";
    char *after = NULL, *next = NULL;
    PGresult *res = NULL;
    casb_db *db = NULL;
    json_t *list = NULL;
    int limit, rc, n, status_code = 400;

    if (!id || !casb_uuid_valid(id))
        return casb_http_reply_problem(r, 404, "no such finding", NULL);
    if ((rc = query_param(r, "state", state, sizeof(state))) < 0)
        goto out;
    if (rc == 1) {
        if (strcmp(state, "all") == 0) {
            state_filter = NULL;
        } else if (strcmp(state, "active") == 0 || strcmp(state, "hidden") == 0 ||
                   strcmp(state, "resolved") == 0) {
            state_filter = state;
        } else {
            status_code = bad_param(r, "state", "state: expected active, hidden, resolved or all");
            goto out;
        }
    }
    if (parse_limit(r, &limit) < 0)
        goto out;
    if ((rc = query_param(r, "cursor", cursor, sizeof(cursor))) < 0)
        goto out;
    if (rc == 1) {
        after = fa_cursor_instances_decode(cursor);
        if (!after) {
            status_code = bad_param(r, "cursor", "cursor: not a cursor of this list");
            goto out;
        }
    }

    db = casb_db_pool_acquire(a->pool, FA_POOL_WAIT_MS);
    if (!db) {
        status_code = db_unavailable(r, "no pooled connection");
        goto out;
    }
    /* The finding must exist in the caller's account: an empty list would hide a typo. */
    res = fa_store_get_finding(db, who->account_id, id, err, sizeof(err));
    if (!res) {
        status_code = db_unavailable(r, err);
        goto out;
    }
    if (PQntuples(res) == 0) {
        status_code = casb_http_reply_problem(r, 404, "no such finding", NULL);
        goto out;
    }
    PQclear(res);
    res = fa_store_list_instances(db, who->account_id, id, state_filter, after, limit + 1, err,
                                  sizeof(err));
    if (!res) {
        status_code = db_unavailable(r, err);
        goto out;
    }
    list = json_array();
    n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(list, fa_view_instance(res, i));
    if (n > limit)
        next = fa_cursor_instances_encode(casb_db_get(res, limit - 1, "asset_id"));
    json_t *body = json_pack("{s:o, s:s?}", "instances", list, "next_cursor", next);
    list = NULL;
    status_code = casb_http_reply_json(r, 200, body);
out:
    PQclear(res);
    if (db)
        casb_db_pool_release(a->pool, db);
    json_decref(list);
    free(after);
    free(next);
    return status_code;
}

static int handle_summary(casb_http_req *r)
{
    fa_app *a = casb_http_app(r);
    const casb_principal *who = casb_http_principal(r);
    PGresult *by_type = NULL, *by_integration = NULL;
    char err[256];
    casb_db *db;
    int status_code;

    db = casb_db_pool_acquire(a->pool, FA_POOL_WAIT_MS);
    if (!db)
        return db_unavailable(r, "no pooled connection");
    by_type = fa_store_summary_by_type(db, who->account_id, err, sizeof(err));
    if (by_type)
        by_integration = fa_store_summary_by_integration(db, who->account_id, err, sizeof(err));
    if (!by_type || !by_integration)
        status_code = db_unavailable(r, err);
    else
        status_code = casb_http_reply_json(r, 200,
                                           fa_view_summary(by_type, by_integration, a->catalogue));
    PQclear(by_type);
    PQclear(by_integration);
    casb_db_pool_release(a->pool, db);
    return status_code;
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
