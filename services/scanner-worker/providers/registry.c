/* The compiled-in providers. Adding a provider means adding its descriptor here. */

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "casb/endpoint.h"
#include "casb/error.h"
#include "provider.h"

extern const casb_provider casb_provider_github; /* github.c */

static const casb_provider *const providers[] = {
    &casb_provider_github,
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

int casb_provider_oauth_endpoints(const casb_provider *provider,
                                  const casb_oauth_registration *regs, size_t n,
                                  const char *allowed_endpoints, char *authorize_url,
                                  size_t authorize_len, char *token_url, size_t token_len,
                                  casb_oauth_client *client, char *err, size_t errlen)
{
    const casb_oauth_registration *reg = NULL;
    const casb_provider_oauth *o = provider ? provider->oauth : NULL;
    const char *web;
    char why[256] = "";
    size_t len;

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
    if ((size_t)snprintf(authorize_url, authorize_len, "%.*s%s", (int)len, web,
                         o->authorize_path) >= authorize_len ||
        (size_t)snprintf(token_url, token_len, "%.*s%s", (int)len, web, o->token_path) >=
            token_len)
        return casb_fail(err, errlen, CASB_EINVALID, "OAuth web URL of %s is too long",
                         provider->id);
    client->token_url = token_url;
    client->client_id = reg->client_id;
    client->client_secret = reg->client_secret;
    return 0;
}
