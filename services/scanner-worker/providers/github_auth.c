/* The GitHub client's identity: a static token (personal, fine-grained or installation-like);
 * a GitHub App, which signs a short JWT with its private key, finds its installation on the
 * organization and exchanges the JWT for an installation access token (valid one hour,
 * renewed five minutes before it expires); or a user access token from the OAuth consent
 * flow (valid eight hours; the service renews it with its refresh token five minutes before
 * it expires). Tokens and keys are wiped when freed and never logged. */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/endpoint.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"
#include "casb/oauth.h"
#include "casb/timeutil.h"
#include "github_internal.h"

int casb_github_parse_id(const json_t *v, long long *out)
{
    const char *s;
    char *end;
    long long n;

    if (json_is_integer(v)) {
        n = (long long)json_integer_value(v);
    } else if (json_is_string(v)) {
        s = json_string_value(v);
        if (!isdigit((unsigned char)s[0]) || strlen(s) > 18)
            return -1;
        n = strtoll(s, &end, 10);
        if (*end != '\0')
            return -1;
    } else {
        return -1;
    }
    if (n <= 0)
        return -1;
    *out = n;
    return 0;
}

int casb_github_login_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 39 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* A token goes into a header line: printable ASCII without spaces only. */
static int token_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;

    if (n == 0 || n > 4096)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= 0x20 || t[i] >= 0x7f)
            return 0;
    return 1;
}

static void free_secret(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

/* The OAuth access token and its expiry, read again after each renewal. */
static int take_oauth_token(casb_github_client *c, char *err, size_t errlen)
{
    const char *token = casb_json_str(c->ctx->credentials, "access_token");

    if (!token_ok(token))
        return casb_fail(err, errlen, CASB_EINVALID, "credentials.access_token: malformed");
    free_secret(&c->token);
    c->token = strdup(token);
    if (!c->token)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    c->token_expires_s = casb_oauth_expires_at(c->ctx->credentials);
    return 0;
}

int casb_github_client_init(casb_github_client *c, casb_scan_ctx *ctx, char *err,
                            size_t errlen)
{
    const char *org = casb_json_str(ctx->config, "organization");
    const char *base = casb_json_str(ctx->config, "api_base_url");
    const char *token = casb_json_str(ctx->credentials, "token");
    const char *pem = casb_json_str(ctx->credentials, "private_key");
    json_t *inst = json_object_get(ctx->credentials, "installation_id");
    char why[256];
    size_t n;

    memset(c, 0, sizeof(*c));
    c->http = ctx->http;
    c->cancel = ctx->cancel;
    c->cache = ctx->page_cache;
    c->ctx = ctx;
    if (!casb_github_login_valid(org))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "config.organization: not a valid GitHub organization login");
    if (!base || !base[0])
        base = CASB_GITHUB_DEFAULT_API_URL;
    c->org = strdup(org);
    c->base_url = strdup(base);
    if (!c->org || !c->base_url)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    why[0] = '\0';
    if (casb_endpoint_allowed(c->base_url, CASB_GITHUB_DEFAULT_API_URL, ctx->allowed_endpoints,
                              why, sizeof(why)) != 1)
        return casb_fail(err, errlen, CASB_EINVALID, "config.api_base_url: %s",
                         why[0] ? why : "endpoint not allowed (CASB_ALLOWED_ENDPOINTS)");

    if (casb_oauth_is_credentials(ctx->credentials)) {
        c->oauth = 1;
        return take_oauth_token(c, err, errlen);
    }
    if (token && token[0]) {
        if (!token_ok(token))
            return casb_fail(err, errlen, CASB_EINVALID, "credentials.token: malformed");
        c->token = strdup(token);
        if (!c->token)
            return casb_fail(err, errlen, CASB_ERROR, "out of memory");
        return 0;
    }
    c->app = 1;
    if (casb_github_parse_id(json_object_get(ctx->credentials, "app_id"), &c->app_id) != 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "credentials.token or credentials.app_id: required");
    if (!pem || !pem[0])
        return casb_fail(err, errlen, CASB_EINVALID, "credentials.private_key: required");
    if (inst && !json_is_null(inst) && casb_github_parse_id(inst, &c->installation_id) != 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "credentials.installation_id: not a positive number");
    c->private_key_pem = strdup(pem);
    if (!c->private_key_pem)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    return 0;
}

void casb_github_client_cleanup(casb_github_client *c)
{
    if (!c)
        return;
    free_secret(&c->token);
    free_secret(&c->private_key_pem);
    free(c->base_url);
    free(c->org);
    memset(c, 0, sizeof(*c));
}

int casb_github_app_jwt(char **out, long long app_id, const char *private_key_pem,
                        long long now_s, char *err, size_t errlen)
{
    json_t *claims;
    char why[256];
    int rc;

    /* iat 60 s in the past absorbs clock drift; GitHub refuses exp more than 10 minutes
     * ahead, so 9 minutes leaves room for our own drift. */
    claims = json_pack("{s:I,s:I,s:I}", "iat", (json_int_t)(now_s - 60), "exp",
                       (json_int_t)(now_s + 540), "iss", (json_int_t)app_id);
    if (!claims)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    why[0] = '\0';
    rc = casb_jwt_sign_rs256(out, claims, private_key_pem, why, sizeof(why));
    json_decref(claims);
    if (rc != 0)
        return casb_fail(err, errlen, CASB_EAUTH,
                         "credentials.private_key: cannot sign the GitHub App JWT: %s", why);
    return 0;
}

void casb_github_auth_invalidate(casb_github_client *c)
{
    if (c->app)
        free_secret(&c->token);
    /* An OAuth token is renewed by the next auth_ensure: it counts as expiring. */
    c->token_expires_s = c->oauth ? 1 : 0;
}

/* Renews the OAuth access token through the service when it expires within the refresh
 * window. A token without expiry (GitHub Apps with expiring user tokens turned off) never
 * needs it. */
static int oauth_ensure(casb_github_client *c, long long now, char *err, size_t errlen)
{
    int rc;

    long long window = c->renew_window_s ? c->renew_window_s : CASB_GITHUB_TOKEN_REFRESH_S;

    if (c->token && (c->token_expires_s == 0 || now < c->token_expires_s - window))
        return 0;
    if (!c->ctx->renew_credentials) {
        /* Fresh from the consent flow (nothing to renew with): good until it expires. */
        if (c->token && now < c->token_expires_s)
            return 0;
        return casb_fail(err, errlen, CASB_EAUTH,
                         "the GitHub OAuth access token expired and cannot be renewed here: "
                         "reauthorize the integration");
    }
    rc = c->ctx->renew_credentials(c->ctx, err, errlen);
    if (rc != 0)
        return rc;
    rc = take_oauth_token(c, err, errlen);
    if (rc == 0) {
        /* A token that lives shorter than twice the window would be renewed at every call:
         * use it for half its life instead. */
        if (c->token_expires_s > now && (c->token_expires_s - now) / 2 < window)
            c->renew_window_s = (c->token_expires_s - now) / 2;
        c->token_issues++;
        casb_log_debug("github oauth access token renewed", "organization", c->org);
    }
    return rc;
}

/* GET /orgs/{org}/installation with the App JWT: the installation of this App on the org. */
static int find_installation(casb_github_client *c, const char *jwt, char *err, size_t errlen)
{
    casb_github_resp r;
    char path[128];
    int rc;

    snprintf(path, sizeof(path), "/orgs/%s/installation", c->org);
    rc = casb_github_request(c, "GET", path, jwt, NULL, &r, err, errlen);
    if (rc != 0)
        return rc;
    if (r.status == 401)
        rc = casb_fail(err, errlen, CASB_EAUTH, "GitHub rejected the GitHub App credentials: %s",
                       r.message[0] ? r.message : "401");
    else if (r.status == 404)
        rc = casb_fail(err, errlen, CASB_EAUTH,
                       "the GitHub App %lld is not installed on organization %s (%s)", c->app_id,
                       c->org, r.message[0] ? r.message : "404");
    else if (r.status < 200 || r.status >= 300)
        rc = casb_github_status_error(&r, "GET /orgs/{org}/installation", err, errlen);
    else if (casb_github_parse_id(json_object_get(r.body, "id"), &c->installation_id) != 0)
        rc = casb_fail(err, errlen, CASB_ERROR,
                       "GET /orgs/{org}/installation: no installation id in the response");
    casb_github_resp_clear(&r);
    return rc;
}

/* POST /app/installations/{id}/access_tokens with the App JWT. */
static int issue_token(casb_github_client *c, const char *jwt, long long now, char *err,
                       size_t errlen)
{
    casb_github_resp r;
    char path[128];
    const char *token, *expires;
    time_t exp_t;
    int rc;

    snprintf(path, sizeof(path), "/app/installations/%lld/access_tokens", c->installation_id);
    rc = casb_github_request(c, "POST", path, jwt, "{}", &r, err, errlen);
    if (rc != 0)
        return rc;
    if (r.status == 401) {
        rc = casb_fail(err, errlen, CASB_EAUTH,
                       "GitHub rejected the GitHub App credentials: %s",
                       r.message[0] ? r.message : "401");
        goto out;
    }
    if ((r.status == 403 && !r.rate_limited) || r.status == 404) {
        /* 403: installation suspended; 404: uninstalled or not this App's. */
        rc = casb_fail(err, errlen, CASB_EAUTH,
                       "the GitHub App installation %lld was suspended or removed (GitHub: %s)",
                       c->installation_id, r.message[0] ? r.message : "no message");
        goto out;
    }
    if (r.status < 200 || r.status >= 300) {
        rc = casb_github_status_error(&r, "POST /app/installations/{id}/access_tokens", err,
                                      errlen);
        goto out;
    }
    token = casb_json_str(r.body, "token");
    if (!token_ok(token)) {
        rc = casb_fail(err, errlen, CASB_ERROR, "GitHub returned no usable installation token");
        goto out;
    }
    expires = casb_json_str(r.body, "expires_at");
    /* GitHub documents one hour; assume a little less when the field is unreadable. */
    if (!expires || casb_time_parse(expires, &exp_t) != 0)
        exp_t = (time_t)(now + 3300);
    free_secret(&c->token);
    c->token = strdup(token);
    if (!c->token) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    c->token_expires_s = (long long)exp_t;
    c->token_issues++;
    rc = 0;
out:
    /* The token sits in the parsed body too: wipe it there before freeing. */
    if (r.body && json_is_string(json_object_get(r.body, "token"))) {
        char *t = (char *)json_string_value(json_object_get(r.body, "token"));

        explicit_bzero(t, strlen(t));
    }
    casb_github_resp_clear(&r);
    return rc;
}

int casb_github_auth_ensure(casb_github_client *c, char *err, size_t errlen)
{
    long long now = casb_now_ms() / 1000;
    char *jwt = NULL;
    int rc;

    if (c->oauth)
        return oauth_ensure(c, now, err, errlen);
    if (!c->app) {
        if (!c->token)
            return casb_fail(err, errlen, CASB_EINVALID, "credentials.token: required");
        return 0;
    }
    if (c->token && now < c->token_expires_s - CASB_GITHUB_TOKEN_REFRESH_S)
        return 0;
    rc = casb_github_app_jwt(&jwt, c->app_id, c->private_key_pem, now, err, errlen);
    if (rc != 0)
        return rc;
    if (c->installation_id <= 0) {
        rc = find_installation(c, jwt, err, errlen);
        if (rc != 0)
            goto out;
    }
    rc = issue_token(c, jwt, now, err, errlen);
    if (rc == 0)
        casb_log_debug("github installation token issued", "organization", c->org);
out:
    free_secret(&jwt);
    return rc;
}
