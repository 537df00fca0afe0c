#ifndef IM_VALIDATE_H
#define IM_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "casb/auth.h"
#include "provider.h"

/* Validation of request bodies, without network or database: everything a 422 can be
 * decided on before the provider is contacted. */

#define IM_NAME_MAX_CHARS 200
#define IM_SCAN_INTERVAL_MIN_S 3600L
#define IM_SCAN_INTERVAL_MAX_S 86400L

/* A POST /v1/integrations body that passed validation. Pointers borrow from the body. */
typedef struct {
    const casb_provider *provider;
    const char *name;
    const json_t *config;
    const json_t *credentials;
    long scan_interval_s;
} im_create_request;

/* Validates body against the registry providers (NULL-terminated, e.g. casb_provider_all()):
 * provider known; name a string of 1..200 characters without control characters; config
 * and credentials objects; scan_interval_s an integer in [3600, 86400] (default: the
 * provider's); config carrying only the provider's declared config fields; the provider's
 * own validate(); and the SSRF guard on config.api_base_url against allowed_endpoints.
 * Returns 0 with *out filled, or CASB_EINVALID with field naming the offending member
 * ("scan_interval_s", "credentials.private_key") and err a message for the problem detail. */
int im_validate_create(im_create_request *out, const json_t *body,
                       const casb_provider *const *providers, const char *allowed_endpoints,
                       char *field, size_t fieldlen, char *err, size_t errlen);

/* A PATCH /v1/integrations/{id} or POST /v1/integrations/{id}/reauthorize body that passed
 * the checks that need no stored state. A member left NULL (or 0) is unchanged. config and
 * credentials replace the stored objects whole. Pointers borrow from the body. */
typedef struct {
    const char *name;
    long scan_interval_s;
    const json_t *config;
    const json_t *credentials;
} im_update_request;

/* PATCH: the body carries at least one of name, scan_interval_s, config, credentials and
 * nothing else; each is checked like on create (name 1..200 characters, interval in
 * [3600, 86400], config and credentials objects). Returns 0, or CASB_EINVALID with field
 * naming the member ("body" for an empty one) and err the detail. */
int im_validate_update(im_update_request *out, const json_t *body, char *field,
                       size_t fieldlen, char *err, size_t errlen);

/* Reauthorize: credentials and config (both optional), nothing else. Without credentials,
 * the route reauthorizes by consent (OAuth) when the provider has a consent flow. Same
 * returns. Submitted credentials never carry "oauth" (tokens come from the consent flow). */
int im_validate_reauthorize(im_update_request *out, const json_t *body, char *field,
                            size_t fieldlen, char *err, size_t errlen);

/* POST /v1/integrations/oauth/{provider}/start: name (required), config (required),
 * scan_interval_s (default: the provider's) and install (a boolean, default false: *install),
 * nothing else, checked like on create; the credentials come later from the provider.
 * *out's credentials stay NULL. Same returns. */
int im_validate_oauth_start(im_create_request *out, int *install, const json_t *body,
                            const casb_provider *provider, const char *allowed_endpoints,
                            char *field, size_t fieldlen, char *err, size_t errlen);

/* The provider-specific checks of a config and credentials pair, shared by create, PATCH
 * and reauthorize: config carries only the provider's declared fields, the provider's own
 * validate() accepts both, and config.api_base_url passes the SSRF guard. Same returns. */
int im_validate_settings(const casb_provider *provider, const json_t *config,
                         const json_t *credentials, const char *allowed_endpoints, char *field,
                         size_t fieldlen, char *err, size_t errlen);

/* The body of POST /v1/tokens: name and role (required), expires_at (optional, a string or
 * null), nothing else. Fills *out's name, role and expires_at, borrowed from body; their
 * values are checked by casb_auth_issue. Same returns. */
int im_validate_token(casb_token_spec *out, const json_t *body, char *field, size_t fieldlen,
                      char *err, size_t errlen);

#endif
