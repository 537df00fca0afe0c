#include "fa_dashboard.h"

#include <jansson.h>

/* Set once before the server starts and only read afterwards, so handlers need no lock. The
 * route API has no per-route data, and fa_app belongs to the findings routes. */
static const char *dashboard_integrations_url;

static int handle_config(casb_http_req *r)
{
    json_t *body = json_pack("{s:s}", "integrations_url", dashboard_integrations_url);

    if (!body)
        return casb_http_reply_problem(r, 500, "out of memory", NULL);
    return casb_http_reply_json(r, 200, body);
}

int fa_dashboard_register(casb_http_server *s, const char *integrations_url)
{
    if (!integrations_url)
        return -1;
    dashboard_integrations_url = integrations_url;
    return casb_http_route(s, "GET", "/v1/dashboard-config", handle_config, CASB_ROUTE_PUBLIC);
}
