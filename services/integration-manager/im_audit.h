#ifndef IM_AUDIT_H
#define IM_AUDIT_H

#include <jansson.h>
#include <stddef.h>

#include "casb/auth.h"
#include "casb/db.h"
#include "im_cursor.h"

/* The audit log (table audit_log): every create, update, pause, resume, delete,
 * reauthorize and scan-now, successful or refused, with who asked (the token's name), the
 * answer's status and details that never hold a secret (which fields changed, the refusal's
 * detail, a scan id). Entries are the account's and outlive the integration they name. */

/* An action about to succeed, for the functions of im_integrations.h that write its entry in
 * the transaction of the change itself. details is borrowed (copied when written). */
typedef struct {
    const casb_principal *who;
    const char *action;
    int status_code; /* the answer it gets when it succeeds */
    const json_t *details;
} im_audit_note;

/* 1 when action is one of create, update, pause, resume, delete, reauthorize, scan_now,
 * oauth_start, token_create, token_revoke. */
int im_audit_action_valid(const char *action);

/* Writes one entry: outcome 'success' for a status below 400, else 'failure'.
 * integration_id may be NULL (a create refused before an id existed); details is stolen
 * and may be NULL. Runs on db as it is: inside the caller's transaction when one is open.
 * Returns 0, CASB_EINVALID for an unknown action, or -1 with err set. */
int im_audit_record(casb_db *db, const casb_principal *who, const char *action,
                    const char *integration_id, int status_code, json_t *details, char *err,
                    size_t errlen);

/* im_audit_record for a note, with extra members (stolen, may be NULL) merged into a copy of
 * its details. A NULL note records nothing. */
int im_audit_write_note(casb_db *db, const im_audit_note *note, const char *integration_id,
                        json_t *extra, char *err, size_t errlen);

/* One page of the account's entries, newest first, optionally of one integration and/or
 * one action (NULL: any). *items is an array of im_view_audit_entry objects; *next_cursor
 * is malloc'ed, or NULL on the last page. */
int im_audit_list(casb_db *db, const char *account_id, const im_seq_page *page,
                  const char *integration_id, const char *action, json_t **items,
                  char **next_cursor, char *err, size_t errlen);

#endif
