#include "im_audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "im_views.h"

static const char *const actions[] = {"create",       "update",       "pause",
                                      "resume",       "delete",       "reauthorize",
                                      "scan_now",     "oauth_start",  "token_create",
                                      "token_revoke", NULL};

int im_audit_action_valid(const char *action)
{
    for (size_t i = 0; action && actions[i]; i++) {
        if (strcmp(actions[i], action) == 0)
            return 1;
    }
    return 0;
}

int im_audit_record(casb_db *db, const casb_principal *who, const char *action,
                    const char *integration_id, int status_code, json_t *details, char *err,
                    size_t errlen)
{
    const char *params[7];
    char status[16];
    char *details_json = NULL;
    int rc = -1;

    if (!im_audit_action_valid(action)) {
        rc = casb_fail(err, errlen, CASB_EINVALID, "unknown audit action");
        goto out;
    }
    if (details) {
        details_json = casb_json_dump(details);
        if (!details_json) {
            casb_fail(err, errlen, CASB_ERROR, "cannot serialise audit details");
            goto out;
        }
    }
    snprintf(status, sizeof(status), "%d", status_code);
    params[0] = who->account_id;
    params[1] = who->token_name[0] ? who->token_name : "unknown";
    params[2] = action;
    params[3] = integration_id;
    params[4] = status_code < 400 ? "success" : "failure";
    params[5] = status;
    params[6] = details_json;
    rc = casb_db_exec(db,
                      "INSERT INTO audit_log (account_id, actor, action, integration_id, "
                      "outcome, status_code, details) VALUES ($1::uuid, $2, $3, $4::uuid, $5, "
                      "$6::integer, $7::jsonb)",
                      7, params, NULL, err, errlen);
out:
    free(details_json);
    json_decref(details);
    return rc;
}

int im_audit_write_note(casb_db *db, const im_audit_note *note, const char *integration_id,
                        json_t *extra, char *err, size_t errlen)
{
    json_t *details = NULL;

    if (!note) {
        json_decref(extra);
        return 0;
    }
    details = note->details ? json_deep_copy(note->details) : json_object();
    if (extra) {
        json_object_update(details, extra);
        json_decref(extra);
    }
    return im_audit_record(db, note->who, note->action, integration_id, note->status_code,
                           details, err, errlen);
}

int im_audit_list(casb_db *db, const char *account_id, const im_seq_page *page,
                  const char *integration_id, const char *action, json_t **items,
                  char **next_cursor, char *err, size_t errlen)
{
    const char *params[5];
    char before[32];
    char fetch[32];
    PGresult *res = NULL;
    int rows;
    int shown;
    int rc = -1;

    *items = NULL;
    *next_cursor = NULL;
    snprintf(before, sizeof(before), "%lld", page->before_id);
    /* One row more than the page: when it comes, another page exists. */
    snprintf(fetch, sizeof(fetch), "%ld", page->limit + 1);
    params[0] = account_id;
    params[1] = page->has_cursor ? before : NULL;
    params[2] = integration_id;
    params[3] = action;
    params[4] = fetch;
    res = casb_db_query(db,
                        "SELECT id, to_char(at AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS at, actor, action, "
                        "integration_id::text AS integration_id, outcome, status_code, "
                        "details::text AS details FROM audit_log "
                        "WHERE account_id = $1::uuid AND ($2::bigint IS NULL OR id < $2::bigint) "
                        "AND ($3::uuid IS NULL OR integration_id = $3::uuid) "
                        "AND ($4::text IS NULL OR action = $4) "
                        "ORDER BY id DESC LIMIT $5::integer",
                        5, params, err, errlen);
    if (!res)
        goto out;
    rows = PQntuples(res);
    shown = rows > page->limit ? (int)page->limit : rows;
    *items = json_array();
    for (int i = 0; i < shown; i++)
        json_array_append_new(*items, im_view_audit_entry(res, i));
    if (rows > page->limit && shown > 0) {
        *next_cursor = im_cursor_encode_seq(casb_db_get_int(res, shown - 1, "id", 0));
        if (!*next_cursor) {
            casb_fail(err, errlen, CASB_ERROR, "cannot encode page cursor");
            json_decref(*items);
            *items = NULL;
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    return rc;
}
