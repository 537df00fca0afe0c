#ifndef FA_REQUEST_H
#define FA_REQUEST_H

#include <libpq-fe.h>

#include "casb/db.h"
#include "casb/http_server.h"
#include "casb/query.h"
#include "fa_routes.h"

/* What the findings-api handlers share (fa_routes.c, fa_triage.c, fa_export.c). Functions
 * that answer return the status they sent, like casb_http_reply_*. */

const char *fa_account_of(casb_http_req *r);
int fa_reply_internal(casb_http_req *r, const char *operation, const char *err); /* logs */
int fa_reply_not_found(casb_http_req *r); /* 404 "finding not found" */

/* A pooled connection, or NULL with *status the 503 already answered. */
casb_db *fa_acquire(casb_http_req *r, int *status);
void fa_release(casb_http_req *r, casb_db *db);

/* The start of the /v1/findings/{id} handlers: the query (params) and the path's id. An id
 * that is not a UUID names no finding: 404 like an unknown one, before any SQL. Returns 0
 * with *id set, or the status already answered. */
int fa_finding_request(casb_http_req *r, const casb_query_param *params,
                       casb_query_text *text, const char **id);

/* Loads the caller's finding: 0 with *res (one row, the caller clears it), or the status
 * already answered (404 when the account has no such finding). */
int fa_load_finding(casb_http_req *r, casb_db *db, const char *id, PGresult **res);
/* fa_load_finding for a handler that only needs the finding to exist: 0, or the status. */
int fa_check_finding(casb_http_req *r, casb_db *db, const char *id);

#endif
