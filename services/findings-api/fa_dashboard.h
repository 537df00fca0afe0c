#ifndef FA_DASHBOARD_H
#define FA_DASHBOARD_H

#include "casb/http_server.h"

/* The dashboard's own route: GET /v1/dashboard-config, public (the page reads it before the
 * analyst has entered a token) and free of secrets: {"integrations_url": "<url>"}, where the
 * page sends integration actions (integration-manager, which must allow this service's origin
 * through CASB_CORS_ORIGINS). The dashboard's files themselves are the server's static_dir.
 * integrations_url is borrowed and must outlive the server. Returns 0 or -1. */
int fa_dashboard_register(casb_http_server *s, const char *integrations_url);

#endif
