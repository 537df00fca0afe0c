#include "im_tokens.h"

#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "im_integrations.h"
#include "im_views.h"

/* What im_view_token reads; secret_sha256 is deliberately absent. */
#define TOKEN_COLUMNS                                                                        \
    "id::text AS id, name, role, created_by, " IM_SQL_TS("created_at") " AS created_at, "   \
    IM_SQL_TS("expires_at") " AS expires_at, " IM_SQL_TS("last_used_at") " AS last_used_at, " \
    IM_SQL_TS("revoked_at") " AS revoked_at, "                                              \
    "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "                                      \
    "WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired' "                   \
    "ELSE 'active' END AS status, " IM_SQL_TS_US("created_at") " AS cursor_at"

static int load(casb_db *db, const char *account_id, const char *id, json_t **view, char *err,
                size_t errlen)
{
    const char *params[2] = {account_id, id};
    PGresult *res = casb_db_query(db,
                                  "SELECT " TOKEN_COLUMNS " FROM api_tokens "
                                  "WHERE account_id = $1::uuid AND id = $2::uuid",
                                  2, params, err, errlen);
    int rc = CASB_ENOTFOUND;

    if (!res)
        return -1;
    if (PQntuples(res) == 1) {
        *view = im_view_token(res, 0);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int im_tokens_issue(casb_db *db, const casb_token_spec *spec, const im_audit_note *note,
                    json_t **view, char *err, size_t errlen)
{
    char token[CASB_TOKEN_SIZE];
    char id[37];
    int rc;

    *view = NULL;
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    rc = casb_auth_issue(db, spec, token, id, err, errlen);
    if (rc == 0)
        rc = im_audit_write_note(db, note, NULL,
                                 json_pack("{ss ss ss}", "token_id", id, "name", spec->name,
                                           "role", casb_role_name(spec->role)),
                                 err, errlen);
    if (rc == 0)
        rc = load(db, spec->account_id, id, view, err, errlen);
    if (rc == 0)
        rc = casb_db_commit(db, err, errlen);
    if (rc == 0)
        rc = json_object_set_new(*view, "token", json_string(token)) == 0 ? 0 : -1;
    casb_secret_wipe(token, sizeof(token));
    if (rc != 0) {
        casb_db_rollback(db);
        json_decref(*view);
        *view = NULL;
    }
    return rc;
}

int im_tokens_list(casb_db *db, const char *account_id, const im_page *page, json_t **items,
                   char **next_cursor, char *err, size_t errlen)
{
    const char *params[4];

    params[0] = account_id;
    params[1] = page->has_cursor ? page->cursor.at : NULL;
    params[2] = page->has_cursor ? page->cursor.id : NULL;
    return im_query_page(db,
                         "SELECT " TOKEN_COLUMNS " FROM api_tokens "
                         "WHERE account_id = $1::uuid AND ($2::timestamptz IS NULL "
                         "OR (created_at, id) > ($2::timestamptz, $3::uuid)) "
                         "ORDER BY created_at, id LIMIT $4::integer",
                         4, params, page, im_view_token, items, next_cursor, err, errlen);
}

int im_tokens_get(casb_db *db, const char *account_id, const char *id, json_t **view,
                  char *err, size_t errlen)
{
    *view = NULL;
    return load(db, account_id, id, view, err, errlen);
}

int im_tokens_revoke(casb_db *db, const char *account_id, const char *id,
                     const im_audit_note *note, char *err, size_t errlen)
{
    const char *params[2] = {account_id, id};
    PGresult *res = NULL;
    int rc = -1;

    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    /* The row is locked so that two revocations of one token record one revocation time. */
    res = casb_db_query(db,
                        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
                        "WHERE account_id = $1::uuid AND id = $2::uuid RETURNING name, role",
                        2, params, err, errlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = CASB_ENOTFOUND;
        goto out;
    }
    if (im_audit_write_note(db, note, NULL,
                            json_pack("{ss ss ss}", "token_id", id, "name",
                                      casb_db_get(res, 0, "name"), "role",
                                      casb_db_get(res, 0, "role")),
                            err, errlen) != 0)
        goto out;
    rc = casb_db_commit(db, err, errlen);
out:
    PQclear(res);
    if (rc != 0)
        casb_db_rollback(db);
    return rc;
}
