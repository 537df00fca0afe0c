#ifndef IM_TOKENS_H
#define IM_TOKENS_H

#include <jansson.h>
#include <stddef.h>

#include "casb/auth.h"
#include "casb/db.h"
#include "im_audit.h"
#include "im_cursor.h"

/* The account's API tokens (table api_tokens; issuing is casb_auth_issue's). Every statement
 * is scoped to the caller's account: another account's token is CASB_ENOTFOUND. Views are
 * im_view_token's and never hold a secret or its digest. Functions return 0,
 * CASB_ENOTFOUND, or -1 with err set. */

/* Issues a token and writes the note's audit entry in one transaction. *view gets the
 * token's view with its secret as "token" (the only time it is shown). */
int im_tokens_issue(casb_db *db, const casb_token_spec *spec, const im_audit_note *note,
                    json_t **view, char *err, size_t errlen);
/* Oldest first. */
int im_tokens_list(casb_db *db, const char *account_id, const im_page *page, json_t **items,
                   char **next_cursor, char *err, size_t errlen);
int im_tokens_get(casb_db *db, const char *account_id, const char *id, json_t **view,
                  char *err, size_t errlen);
/* Revokes at once (a revoked token stays revoked; revoking again changes nothing) and
 * writes the note's entry in the same transaction. */
int im_tokens_revoke(casb_db *db, const char *account_id, const char *id,
                     const im_audit_note *note, char *err, size_t errlen);

#endif
