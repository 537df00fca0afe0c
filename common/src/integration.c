#include "casb/integration.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"

/* Stored config is written by integration-manager after validation; the depth bound only
 * keeps a damaged row from costing more than it should. */
#define CONFIG_MAX_DEPTH 16

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
