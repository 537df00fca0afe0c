#ifndef IM_ROUTES_H
#define IM_ROUTES_H

#include <stddef.h>

#include "casb/http_server.h"
#include "im_app.h"

/* Creates the HTTP server on the app's address, registers every /v1 route (all behind the
 * bearer token, answers scoped to the caller's account) and starts it. app must outlive the
 * server. */
int im_server_start(casb_http_server **out, im_app *app, char *err, size_t errlen);

#endif
