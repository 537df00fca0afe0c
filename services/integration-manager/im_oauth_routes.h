#ifndef IM_OAUTH_ROUTES_H
#define IM_OAUTH_ROUTES_H

#include <jansson.h>

#include "casb/http_server.h"
#include "im_request.h"

/* Installing an integration by consent (OAuth 2.0 authorization code with PKCE, oauth.h):
 *
 *   POST /v1/integrations/oauth/{provider}/start   {name, config, scan_interval_s}
 *     -> 200 {authorize_url, state, expires_at, redirect_uri}: send the user's browser there.
 *   GET  /v1/integrations/oauth/{provider}/callback?code&state   (the provider redirects here)
 *     -> the code is exchanged for tokens, the connection checked, the tokens stored sealed
 *        and the integration created (201) with its first scan queued, or, for a
 *        reauthorization, its credentials replaced and a scan queued (200).
 *
 * The callback is a public route: the browser does not carry our bearer token. The state
 * authenticates it instead: unguessable, bound to the account and the user who started the
 * flow, single use and short-lived; PKCE binds the code to the flow too. */

void im_oauth_metrics_init(void); /* once, before the server starts */

int im_oauth_start(casb_http_req *req);
int im_oauth_callback(casb_http_req *req);

/* POST /v1/integrations/{id}/reauthorize without credentials: starts a consent flow that
 * repairs integration id (of the stored provider) and answers like start. config (borrowed)
 * is applied when it completes: the stored one, unless the body gave one. Answers 422
 * when the provider has no consent flow (credentials are then required). Returns the status
 * sent. */
int im_oauth_reauthorize_start(casb_http_req *req, im_audit_ctx *a, const char *id,
                               const char *provider, const json_t *config);

#endif
