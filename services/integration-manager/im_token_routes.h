#ifndef IM_TOKEN_ROUTES_H
#define IM_TOKEN_ROUTES_H

#include "casb/http_server.h"

/* The account's API tokens (POST/GET /v1/tokens, GET/DELETE /v1/tokens/{id}, admins only)
 * and the caller's own identity (GET /v1/me, any role). */
int im_token_routes_register(casb_http_server *s);

#endif
