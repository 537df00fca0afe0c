#include "casb/integration.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/error.h"
#include "casb/json.h"

/* Stored config is written by integration-manager after validation; the depth bound only
 * keeps a damaged row from costing more than it should. */
#define CONFIG_MAX_DEPTH 16
/* Credentials another process renewed are used while they stay valid this long. */
#define RENEWED_MIN_VALID_S 60

int casb_integration_load(casb_integration_stored *out, casb_db *db, const char *account_id,
                          const char *id, char *err, size_t errlen)
{
    const char *params[2] = {id, account_id};
    const char *config = NULL;
    PGresult *res = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    res = casb_db_query(db,
                        "SELECT provider, config::text AS config, credentials_sealed, paused "
                        "FROM integrations WHERE id = $1::uuid AND account_id = $2::uuid",
                        2, params, err, errlen);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = CASB_ENOTFOUND;
        goto out;
    }
    snprintf(out->provider, sizeof(out->provider), "%s", casb_db_get(res, 0, "provider"));
    out->paused = casb_db_get_bool(res, 0, "paused");
    config = casb_db_get(res, 0, "config");
    out->config = casb_json_parse(config, strlen(config), CONFIG_MAX_DEPTH, NULL, 0);
    out->credentials_sealed = strdup(casb_db_get(res, 0, "credentials_sealed"));
    if (!json_is_object(out->config) || !out->credentials_sealed) {
        casb_integration_stored_clear(out);
        rc = casb_fail(err, errlen, CASB_EINVALID, "stored integration %s is unreadable", id);
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    return rc;
}

void casb_integration_stored_clear(casb_integration_stored *s)
{
    json_decref(s->config);
    free(s->credentials_sealed);
    memset(s, 0, sizeof(*s));
}

int casb_integration_credentials_open(const casb_keyring *keys, const char *sealed, json_t **out,
                                      char *err, size_t errlen)
{
    char *plain = NULL;
    size_t n = 0;

    *out = NULL;
    if (casb_secret_open(keys, sealed, &plain, &n, err, errlen) != 0)
        return -1;
    /* No parse error text: it may quote the plaintext. */
    *out = casb_json_parse(plain, n, CONFIG_MAX_DEPTH, NULL, 0);
    casb_secret_wipe(plain, n);
    free(plain);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return casb_fail(err, errlen, CASB_ERROR, "decrypted credentials are not a JSON object");
    }
    return 0;
}

void casb_integration_credentials_free(json_t *credentials)
{
    if (!credentials)
        return;
    /* Only the last reference wipes: another holder still reads the values. */
    if (credentials->refcount == 1)
        casb_json_wipe(credentials);
    json_decref(credentials);
}

/* Replaces every member of dst with those of src (the opened object the caller holds stays
 * the same object, so borrowed pointers to it stay valid). */
static int credentials_replace(json_t *dst, const json_t *src)
{
    /* A deep copy: src is wiped when freed, and its strings must not be dst's. */
    json_t *copy = json_deep_copy(src);
    int rc;

    if (!copy)
        return -1;
    casb_json_wipe(dst);
    json_object_clear(dst);
    rc = json_object_update(dst, copy);
    json_decref(copy);
    return rc;
}

/* Seals fresh tokens and stores them in the row locked by the caller's transaction. */
static int store_renewed(casb_db *db, const casb_keyring *keys, const char *id,
                         const json_t *renewed, char *err, size_t errlen)
{
    char *plain = casb_json_dump(renewed);
    char *sealed = NULL;
    const char *params[3];
    int rc;

    if (!plain)
        return casb_fail(err, errlen, CASB_ERROR, "cannot serialise credentials");
    rc = casb_secret_seal(keys, plain, strlen(plain), &sealed, err, errlen);
    casb_secret_wipe(plain, strlen(plain));
    free(plain);
    if (rc != 0)
        return -1;
    params[0] = id;
    params[1] = sealed;
    params[2] = casb_keyring_current_id(keys);
    rc = casb_db_exec(db,
                      "UPDATE integrations SET credentials_sealed = $2, credentials_key_id = $3 "
                      "WHERE id = $1::uuid",
                      3, params, NULL, err, errlen);
    free(sealed);
    return rc;
}

/* Inside the caller's transaction, with the row locked: takes stored credentials that another
 * process renewed already, or spends the refresh token. *renewed is new on 0. */
static int renew_locked(casb_db *db, const casb_keyring *keys, casb_http_client *http,
                        const casb_oauth_client *client, const char *id,
                        const json_t *credentials, json_t **renewed, char *err, size_t errlen)
{
    const char *params[1] = {id};
    long long now = (long long)time(NULL);
    json_t *stored = NULL;
    PGresult *res;
    casb_oauth_tokens tokens = {0};
    const char *refresh;
    long long expires;
    int rc;

    *renewed = NULL;
    res = casb_db_query(db, "SELECT credentials_sealed FROM integrations WHERE id = $1::uuid "
                            "FOR UPDATE",
                        1, params, err, errlen);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return casb_fail(err, errlen, CASB_ENOTFOUND, "integration %s was deleted", id);
    }
    rc = casb_integration_credentials_open(keys, casb_db_get(res, 0, "credentials_sealed"),
                                           &stored, err, errlen);
    PQclear(res);
    if (rc != 0)
        return -1;
    if (!casb_oauth_is_credentials(stored)) {
        casb_integration_credentials_free(stored);
        return casb_fail(err, errlen, CASB_EAUTH,
                         "the integration's credentials were replaced by ones without OAuth "
                         "tokens");
    }
    expires = casb_oauth_expires_at(stored);
    if (!json_equal(json_object_get(stored, "access_token"),
                    json_object_get(credentials, "access_token")) &&
        (expires == 0 || expires > now + RENEWED_MIN_VALID_S)) {
        *renewed = stored;
        return 0;
    }
    refresh = casb_json_str(stored, "refresh_token");
    if (!refresh || !refresh[0]) {
        casb_integration_credentials_free(stored);
        return casb_fail(err, errlen, CASB_EAUTH,
                         "the OAuth access token expired and the provider issued no refresh "
                         "token: reauthorize the integration");
    }
    rc = casb_oauth_refresh(http, client, refresh, now, &tokens, err, errlen);
    casb_integration_credentials_free(stored);
    if (rc != 0)
        return rc;
    *renewed = casb_oauth_credentials(&tokens);
    casb_oauth_tokens_clear(&tokens);
    if (!*renewed)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    rc = store_renewed(db, keys, id, *renewed, err, errlen);
    if (rc != 0) {
        casb_integration_credentials_free(*renewed);
        *renewed = NULL;
    }
    return rc;
}

int casb_integration_renew_oauth(casb_db *db, const casb_keyring *keys, casb_http_client *http,
                                 const casb_oauth_client *client, const char *id,
                                 json_t *credentials, char *err, size_t errlen)
{
    json_t *renewed = NULL;
    int rc;

    /* The row stays locked across the token request, so a second renewal waits for this one
     * and then finds the new tokens (one call with the client's timeout, every few hours). */
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    rc = renew_locked(db, keys, http, client, id, credentials, &renewed, err, errlen);
    if (rc == 0 && casb_db_commit(db, err, errlen) != 0) {
        /* The provider may have rotated the refresh token already; the stored one is then
         * spent and the next renewal asks for reauthorization. */
        rc = -1;
    }
    if (rc != 0) {
        casb_db_rollback(db);
        casb_integration_credentials_free(renewed);
        return rc;
    }
    rc = credentials_replace(credentials, renewed);
    casb_integration_credentials_free(renewed);
    return rc == 0 ? 0 : casb_fail(err, errlen, CASB_ERROR, "out of memory");
}
