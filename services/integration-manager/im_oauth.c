#include "im_oauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* The request of a flow was validated before it was saved; the bound only keeps a damaged
 * row from costing more than it should. */
#define REQUEST_MAX_DEPTH 16

int im_oauth_flow_save(casb_db *db, const im_oauth_flow_new *f, char expires_at[32], char *err,
                       size_t errlen)
{
    char ttl[32];
    const char *params[9];
    PGresult *res;
    int rc = -1;

    expires_at[0] = '\0';
    snprintf(ttl, sizeof(ttl), "%ld", f->ttl_s);
    params[0] = f->state_sha256;
    params[1] = f->account_id;
    params[2] = f->actor;
    params[3] = f->provider;
    params[4] = f->integration_id;
    params[5] = f->request_json;
    params[6] = f->redirect_uri;
    params[7] = f->verifier_sealed;
    params[8] = ttl;
    /* Housekeeping first: a long-expired flow is of no use, even to explain a refusal. */
    if (casb_db_exec(db, "DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'",
                     0, NULL, NULL, err, errlen) != 0)
        return -1;
    /* The SELECT ... WHERE makes a reauthorization of an integration that is gone (or of
     * another account) insert nothing. */
    res = casb_db_query(db,
                        "INSERT INTO oauth_states (state_sha256, account_id, actor, provider, "
                        "integration_id, request, redirect_uri, verifier_sealed, expires_at) "
                        "SELECT $1, $2::uuid, $3, $4, $5::uuid, $6::jsonb, $7, $8, "
                        "now() + make_interval(secs => $9::integer) "
                        "WHERE $5::uuid IS NULL OR EXISTS (SELECT 1 FROM integrations "
                        "WHERE id = $5::uuid AND account_id = $2::uuid) "
                        "RETURNING " TS("expires_at") " AS expires_at",
                        9, params, err, errlen);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        rc = casb_fail(err, errlen, CASB_ENOTFOUND, "integration not found");
    } else {
        snprintf(expires_at, 32, "%s", casb_db_get(res, 0, "expires_at"));
        rc = 0;
    }
    PQclear(res);
    return rc;
}

static int read_flow(const PGresult *res, im_oauth_flow *out, char *err, size_t errlen)
{
    const char *request = casb_db_get(res, 0, "request");
    const char *verifier = casb_db_get(res, 0, "verifier_sealed");
    const char *integration = casb_db_get(res, 0, "integration_id");

    snprintf(out->account_id, sizeof(out->account_id), "%s", casb_db_get(res, 0, "account_id"));
    snprintf(out->actor, sizeof(out->actor), "%s", casb_db_get(res, 0, "actor"));
    snprintf(out->provider, sizeof(out->provider), "%s", casb_db_get(res, 0, "provider"));
    snprintf(out->integration_id, sizeof(out->integration_id), "%s",
             integration ? integration : "");
    out->request = casb_json_parse(request, strlen(request), REQUEST_MAX_DEPTH, NULL, 0);
    out->redirect_uri = strdup(casb_db_get(res, 0, "redirect_uri"));
    out->verifier_sealed = verifier ? strdup(verifier) : NULL;
    if (!json_is_object(out->request) || !out->redirect_uri || (verifier && !out->verifier_sealed))
        return casb_fail(err, errlen, CASB_ERROR, "stored OAuth flow is unreadable");
    return 0;
}

int im_oauth_flow_take(casb_db *db, const char *state_sha256, const char *provider,
                       im_oauth_flow *out, char *err, size_t errlen)
{
    const char *params[2] = {state_sha256, provider};
    PGresult *res = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    res = casb_db_query(db,
                        "SELECT account_id::text AS account_id, actor, provider, "
                        "integration_id::text AS integration_id, request::text AS request, "
                        "redirect_uri, verifier_sealed, used_at IS NOT NULL AS used, "
                        "expires_at <= now() AS expired "
                        "FROM oauth_states WHERE state_sha256 = $1 AND provider = $2 FOR UPDATE",
                        2, params, err, errlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = casb_fail(err, errlen, CASB_ENOTFOUND, "unknown state");
        goto out;
    }
    if (casb_db_get_bool(res, 0, "used")) {
        rc = casb_fail(err, errlen, CASB_ECONFLICT, "state already used");
        goto out;
    }
    if (casb_db_get_bool(res, 0, "expired")) {
        rc = casb_fail(err, errlen, CASB_EINVALID, "state expired");
        goto out;
    }
    if (casb_db_exec(db, "UPDATE oauth_states SET used_at = now() WHERE state_sha256 = $1", 1,
                     params, NULL, err, errlen) != 0)
        goto out;
    rc = read_flow(res, out, err, errlen);
out:
    PQclear(res);
    if (rc == 0 && casb_db_commit(db, err, errlen) != 0)
        rc = -1;
    if (rc != 0) {
        casb_db_rollback(db);
        im_oauth_flow_clear(out);
    }
    return rc;
}

void im_oauth_flow_clear(im_oauth_flow *f)
{
    if (!f)
        return;
    json_decref(f->request);
    free(f->redirect_uri);
    free(f->verifier_sealed);
    memset(f, 0, sizeof(*f));
}
