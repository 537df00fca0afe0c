#include "im_token_routes.h"

#include <stdio.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/query.h"
#include "im_request.h"
#include "im_tokens.h"
#include "im_validate.h"

static int token_not_found(casb_http_req *req, im_audit_ctx *a)
{
    return a ? im_refuse(req, a, 404, "token not found", NULL)
             : casb_http_reply_problem(req, 404, "token not found", NULL);
}

/* The path's token id after an empty query, and a pooled connection; NULL with *status the
 * answer already sent (a malformed id is an unknown one: 404). */
static casb_db *open_token(casb_http_req *req, im_audit_ctx *a, const char **id, int *status)
{
    casb_db *db;

    *id = casb_http_param(req, "id");
    if ((*status = im_req_read_query(req, NULL)) != 0)
        return NULL;
    if (!*id || !casb_uuid_valid(*id)) {
        *status = token_not_found(req, a);
        return NULL;
    }
    if (!(db = im_req_acquire(req)))
        *status = 503;
    return db;
}

static int create_token_audited(casb_http_req *req, im_audit_ctx *a)
{
    const casb_principal *who = casb_http_principal(req);
    casb_token_spec spec;
    json_t *body = NULL;
    json_t *view = NULL;
    casb_db *db = NULL;
    im_audit_note note;
    char location[64];
    char field[128];
    char err[512];
    int status;
    int rc;

    if ((status = im_req_read_query(req, NULL)) != 0)
        return status;
    if (!(body = casb_http_body_json(req)))
        return casb_http_status(req);
    if (im_validate_token(&spec, body, field, sizeof(field), err, sizeof(err)) != 0) {
        status = im_refuse(req, a, 422, err, im_field_member(field));
        goto out;
    }
    spec.account_id = who->account_id;
    spec.created_by = who->token_name;
    if (!(db = im_req_acquire(req))) {
        status = 503;
        goto out;
    }
    note = im_note_for(req, "token_create", 201, NULL);
    rc = im_tokens_issue(db, &spec, &note, &view, err, sizeof(err));
    im_req_release(req, db);
    if (rc == CASB_EINVALID) {
        /* The values casb_auth_issue checks: a name or an expiry it refused. */
        status = im_refuse(req, a, 422, err,
                           im_field_member(strncmp(err, "expires_at", 10) == 0 ? "expires_at"
                                                                              : "name"));
        goto out;
    }
    if (rc != 0) {
        status = im_reply_internal(req, "issue token", err);
        goto out;
    }
    a->recorded = 1;
    snprintf(location, sizeof(location), "/v1/tokens/%s", casb_json_str(view, "id"));
    casb_http_add_header(req, "Location", location);
    casb_log_info("API token issued", "account_id", who->account_id, "token_id",
                  casb_json_str(view, "id"), "role", casb_json_str(view, "role"));
    status = casb_http_reply_json(req, 201, view);
out:
    json_decref(body);
    return status;
}

static int create_token(casb_http_req *req)
{
    return im_run_audited(req, "token_create", create_token_audited);
}

static int list_tokens(casb_http_req *req)
{
    json_t *items = NULL;
    char *next = NULL;
    im_page page;
    casb_db *db;
    char err[512];
    int status;
    int rc;

    if (!(db = im_req_open(req, &page, NULL, &status)))
        return status;
    rc = im_tokens_list(db, im_req_account(req), &page, &items, &next, err, sizeof(err));
    im_req_release(req, db);
    if (rc != 0)
        return im_reply_internal(req, "list tokens", err);
    return casb_query_reply_list(req, "tokens", items, next);
}

static int get_token(casb_http_req *req)
{
    const char *id;
    json_t *view = NULL;
    casb_db *db;
    char err[512];
    int status;
    int rc;

    if (!(db = open_token(req, NULL, &id, &status)))
        return status;
    rc = im_tokens_get(db, im_req_account(req), id, &view, err, sizeof(err));
    im_req_release(req, db);
    if (rc == CASB_ENOTFOUND)
        return token_not_found(req, NULL);
    if (rc != 0)
        return im_reply_internal(req, "get token", err);
    return casb_http_reply_json(req, 200, view);
}

static int revoke_token_audited(casb_http_req *req, im_audit_ctx *a)
{
    const char *id;
    im_audit_note note;
    casb_db *db;
    char err[512];
    int status;
    int rc;

    if (!(db = open_token(req, a, &id, &status)))
        return status;
    note = im_note_for(req, "token_revoke", 204, NULL);
    rc = im_tokens_revoke(db, im_req_account(req), id, &note, err, sizeof(err));
    im_req_release(req, db);
    if (rc == CASB_ENOTFOUND)
        return token_not_found(req, a);
    if (rc != 0)
        return im_reply_internal(req, "revoke token", err);
    /* This replica refuses it from the next request on; the others when notified. */
    casb_auth_forget_tokens(im_req_app(req)->auth);
    a->recorded = 1;
    casb_log_info("API token revoked", "account_id", im_req_account(req), "token_id", id);
    return casb_http_reply_json(req, 204, NULL);
}

static int revoke_token(casb_http_req *req)
{
    return im_run_audited(req, "token_revoke", revoke_token_audited);
}

/* Who the caller is: lets a client (the dashboard) offer only what its role may do. */
static int get_me(casb_http_req *req)
{
    const casb_principal *who = casb_http_principal(req);
    int status;

    if ((status = im_req_read_query(req, NULL)) != 0)
        return status;
    return casb_http_reply_json(req, 200,
                                json_pack("{ss s{ss ss ss}}", "account_id", who->account_id,
                                          "token", "id", who->token_id, "name",
                                          who->token_name, "role",
                                          casb_role_name(who->role)));
}

int im_token_routes_register(casb_http_server *s)
{
    static const casb_http_route_def routes[] = {
        {"POST", "/v1/tokens", create_token, CASB_ROUTE_ADMIN},
        {"GET", "/v1/tokens", list_tokens, CASB_ROUTE_ADMIN},
        {"GET", "/v1/tokens/{id}", get_token, CASB_ROUTE_ADMIN},
        {"DELETE", "/v1/tokens/{id}", revoke_token, CASB_ROUTE_ADMIN},
        {"GET", "/v1/me", get_me, 0},
    };

    return casb_http_routes(s, routes, sizeof(routes) / sizeof(routes[0]), NULL, 0);
}
