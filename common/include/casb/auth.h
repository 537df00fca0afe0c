#ifndef CASB_AUTH_H
#define CASB_AUTH_H

#include <stddef.h>

/* Bearer-token authentication of API callers. The foundation knows one bootstrap admin token
 * (CASB_ADMIN_TOKEN), kept only as its SHA-256 and compared in constant time; accounts and
 * stored tokens with roles extend this module, not the handlers. */

#define CASB_DEFAULT_ACCOUNT_ID "00000000-0000-0000-0000-000000000001"

typedef enum { CASB_ROLE_READ_ONLY = 0, CASB_ROLE_ANALYST = 1, CASB_ROLE_ADMIN = 2 } casb_role;

typedef struct {
    char account_id[37];
    char token_name[64];
    casb_role role;
} casb_principal;

typedef struct casb_auth casb_auth;

int casb_auth_new(casb_auth **out, const char *admin_token, char *err, size_t errlen);
void casb_auth_free(casb_auth *a);

/* Authenticates an Authorization header value ("Bearer <token>"). Returns 0 and fills *who,
 * or CASB_EAUTH for a missing, malformed or unknown token. */
int casb_auth_check(const casb_auth *a, const char *authorization_header, casb_principal *who);

#endif
