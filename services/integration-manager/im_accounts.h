#ifndef IM_ACCOUNTS_H
#define IM_ACCOUNTS_H

#include <stddef.h>

#include "casb/auth.h"
#include "casb/db.h"

/* Accounts are created by the operator, not through the API: an account is a tenant, and
 * no token of one may make another. `create-account` makes one with a first admin token;
 * `create-token` issues a token of any account (the way back in when every admin token of
 * an account is lost). Each prints one JSON line {"account_id","token_id","token"}. */

#define IM_ACCOUNT_COMMAND "create-account"
#define IM_TOKEN_COMMAND "create-token"
#define IM_ACCOUNT_NAME_MAX 200

/* Creates the account and its first admin token in one transaction; account_id and
 * token_id receive the new ids, token the secret. CASB_EINVALID for a bad name. */
int im_account_create(casb_db *db, const char *name, char account_id[37],
                      char token[CASB_TOKEN_SIZE], char token_id[37], char *err,
                      size_t errlen);

/* argv[0] is the subcommand. Return the process exit status. */
int im_account_main(int argc, char **argv);
int im_token_main(int argc, char **argv);

#endif
