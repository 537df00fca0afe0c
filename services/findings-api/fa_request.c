/* What the findings-api handlers share: the caller's account, answers, pooled connections,
 * and the start of the /v1/findings/{id} routes. */
#include "fa_request.h"

#include <stdio.h>

#include "casb/crypto.h"
#include "casb/log.h"
#include "fa_store.h"

#define FA_POOL_WAIT_MS 5000

const char *fa_account_of(casb_http_req *r)
{
    return casb_http_principal(r)->account_id;
}

int fa_reply_internal(casb_http_req *r, const char *operation, const char *err)
{
    casb_log_error("request failed", "operation", operation, "error", err);
    return casb_http_reply_problem(r, 500, "internal error", NULL);
}

int fa_reply_not_found(casb_http_req *r)
{
    return casb_http_reply_problem(r, 404, "finding not found", NULL);
}

/* A pooled connection, or NULL with *status the 503 already answered: the one the request's
 * token was checked on when the server kept it (share_auth_db), else one from the pool. */
casb_db *fa_acquire(casb_http_req *r, int *status)
{
    fa_app *a = casb_http_app(r);
    casb_db *db = casb_http_take_db(r);

    if (!db)
        db = casb_db_pool_acquire(a->pool, FA_POOL_WAIT_MS);

    if (!db) {
        casb_log_warn("no database connection available");
        *status = casb_http_reply_problem(r, 503, "database unavailable, retry later", NULL);
    }
    return db;
}

void fa_release(casb_http_req *r, casb_db *db)
{
    fa_app *a = casb_http_app(r);

    casb_db_pool_release(a->pool, db);
}

/* The start of the /v1/findings/{id} handlers: the query (params) and the path's id. An id
 * that is not a UUID names no finding: 404 like an unknown one, before any SQL. Returns 0
 * with *id set, or the status already answered. */
int fa_finding_request(casb_http_req *r, const casb_query_param *params,
                       casb_query_text *text, const char **id)
{
    int status = casb_query_read(r, params, text);

    *id = casb_http_param(r, "id");
    if (status != 0)
        return status;
    if (!*id || !casb_uuid_valid(*id))
        return fa_reply_not_found(r);
    return 0;
}

/* Loads the caller's finding: 0 with *res (one row, the caller clears it), or the status
 * already answered (404 when the account has no such finding). */
int fa_load_finding(casb_http_req *r, casb_db *db, const char *id, PGresult **res)
{
    char err[256];

    *res = fa_store_get_finding(db, fa_account_of(r), id, err, sizeof(err));
    if (!*res)
        return fa_reply_internal(r, "get finding", err);
    if (PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        return fa_reply_not_found(r);
    }
    return 0;
}


int fa_check_finding(casb_http_req *r, casb_db *db, const char *id)
{
    PGresult *res = NULL;
    int status = fa_load_finding(r, db, id, &res);

    PQclear(res);
    return status;
}
