#ifndef FA_WEBHOOK_ROUTES_H
#define FA_WEBHOOK_ROUTES_H

#include "casb/http_server.h"

/* /v1/webhooks (proto/openapi/findings-api.yaml); the server's app must be an fa_app with
 * its webhooks environment. 0 or -1. */
int fa_webhook_routes_register(casb_http_server *s);

#endif
