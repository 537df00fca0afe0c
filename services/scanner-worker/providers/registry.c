/* The compiled-in providers. Adding a provider means adding its descriptor here. */

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "casb/endpoint.h"
#include "casb/error.h"
#include "casb/integration.h"
#include "provider.h"

extern const casb_provider casb_provider_github;           /* github.c */
extern const casb_provider casb_provider_google_workspace; /* google.c */

static const casb_provider *const providers[] = {
    &casb_provider_github,
    &casb_provider_google_workspace,
    NULL,
};

const casb_provider *casb_provider_find(const char *id)
{
    if (!id)
        return NULL;
    for (size_t i = 0; providers[i]; i++)
        if (strcmp(providers[i]->id, id) == 0)
            return providers[i];
    return NULL;
}

const casb_provider *const *casb_provider_all(void)
{
    return providers;
}

/* base (without trailing slashes) + path into out; -1 when it does not fit. */
static int join_url(char *out, size_t outlen, const char *base, size_t baselen,
                    const char *path)
{
    return (size_t)snprintf(out, outlen, "%.*s%s", (int)baselen, base, path) < outlen ? 0 : -1;
}

int casb_provider_oauth_endpoints(const casb_provider *provider,
                                  const casb_oauth_registration *regs, size_t n,
                                  const char *allowed_endpoints, casb_oauth_endpoints *out,
                                  char *err, size_t errlen)
{
    const casb_oauth_registration *reg = NULL;
    const casb_provider_oauth *o = provider ? provider->oauth : NULL;
    const char *web;
    char install_path[256] = "";
    char why[256] = "";
    size_t len;

    memset(out, 0, sizeof(*out));
    if (!o)
        return casb_fail(err, errlen, CASB_ENOTFOUND, "provider %s has no OAuth consent flow",
                         provider ? provider->id : "(none)");
    for (size_t i = 0; i < n && !reg; i++)
        if (regs[i].provider && strcmp(regs[i].provider, provider->id) == 0)
            reg = &regs[i];
    if (!reg || !reg->client_id || !reg->client_id[0] || !reg->client_secret ||
        !reg->client_secret[0])
        return casb_fail(err, errlen, CASB_ECONFLICT,
                         "OAuth is not configured for %s: the operator must register an OAuth "
                         "client and set its client id and secret (%s)",
                         provider->id, o->setup_help);
    web = reg->web_url && reg->web_url[0] ? reg->web_url : o->default_web_url;
    /* The token request carries the client secret: it goes only where the operator allows. */
    if (casb_endpoint_allowed(web, o->default_web_url, allowed_endpoints, why, sizeof(why)) != 1)
        return casb_fail(err, errlen, CASB_EINVALID, "OAuth web URL of %s: %s", provider->id,
                         why[0] ? why : "not allowed (CASB_ALLOWED_ENDPOINTS)");
    len = strlen(web);
    while (len > 0 && web[len - 1] == '/')
        len--;
    if (o->install_path_prefix && reg->app_slug && reg->app_slug[0]) {
        /* The slug goes into a URL path as it is. */
        if (strspn(reg->app_slug, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789-_") != strlen(reg->app_slug) ||
            strlen(reg->app_slug) > 100)
            return casb_fail(err, errlen, CASB_EINVALID,
                             "the app name of %s may hold letters, digits, - and _ only",
                             provider->id);
        snprintf(install_path, sizeof(install_path), "%s%s%s", o->install_path_prefix,
                 reg->app_slug, o->install_path_suffix ? o->install_path_suffix : "");
    }
    if (join_url(out->authorize_url, sizeof(out->authorize_url), web, len, o->authorize_path) ||
        join_url(out->token_url, sizeof(out->token_url), web, len, o->token_path) ||
        (install_path[0] &&
         join_url(out->install_url, sizeof(out->install_url), web, len, install_path)))
        return casb_fail(err, errlen, CASB_EINVALID, "OAuth web URL of %s is too long",
                         provider->id);
    out->client.token_url = out->token_url;
    out->client.client_id = reg->client_id;
    out->client.client_secret = reg->client_secret;
    return 0;
}

int casb_provider_oauth_renew(const casb_provider *provider,
                              const casb_oauth_registration *regs, size_t n,
                              const char *allowed_endpoints, casb_db *db,
                              const casb_keyring *keys, casb_http_client *http,
                              const char *integration_id, json_t *credentials, char *err,
                              size_t errlen)
{
    casb_oauth_endpoints ep;
    char why[512];
    int rc;

    rc = casb_provider_oauth_endpoints(provider, regs, n, allowed_endpoints, &ep, why,
                                       sizeof(why));
    if (rc == CASB_ECONFLICT || rc == CASB_ENOTFOUND)
        return casb_fail(err, errlen, CASB_EAUTH,
                         "the OAuth access token cannot be renewed here: %s", why);
    if (rc != 0)
        return casb_fail(err, errlen, rc, "%s", why);
    return casb_integration_renew_oauth(db, keys, http, &ep.client, integration_id,
                                        credentials, err, errlen);
}
