/* The GitHub provider: its descriptor (what GET /v1/providers shows), the validation of an
 * integration's config and credentials, the connection test, and the scan driver. The work
 * itself is in github_auth.c, github_api.c, github_collect.c and github_checks.c. */

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/oauth.h"
#include "github_internal.h"

static const char *const auth_methods[] = {"github_app", "token", "oauth", NULL};

static const casb_provider_field config_fields[] = {
    {"organization", "string", 0, 1, NULL,
     "Login of the GitHub organization to scan, as in https://github.com/<login>."},
    {"api_base_url", "string", 0, 0, NULL,
     "GitHub REST API base URL. Default https://api.github.com; GitHub Enterprise Server: "
     "https://<host>/api/v3. Any other URL than the default must be listed by the operator in "
     "CASB_ALLOWED_ENDPOINTS."},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const casb_provider_field credential_fields[] = {
    {"app_id", "string", 1, 1, "github_app",
     "Numeric App ID of the GitHub App (its settings page, About section)."},
    {"private_key", "pem", 1, 1, "github_app",
     "The GitHub App's private key, the whole PEM file (-----BEGIN RSA PRIVATE KEY-----)."},
    {"installation_id", "string", 1, 0, "github_app",
     "Numeric id of the App's installation on the organization; found with "
     "GET /orgs/{org}/installation when left out."},
    {"token", "string", 1, 1, "token",
     "A fine-grained personal access token with the read permissions listed below, or a "
     "classic token with read:org, repo, admin:org_hook and read:repo_hook, of an "
     "organization owner (some settings are shown to owners only)."},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const casb_provider_permission permissions[] = {
    {"Organization Administration: read",
     "organization settings (2FA requirement, base permission, repository creation) and the "
     "list of installed GitHub Apps"},
    {"Organization Members: read",
     "members, owners and outside collaborators, and which members have two-factor "
     "authentication disabled"},
    {"Organization Webhooks: read", "organization webhooks (secret, SSL verification)"},
    {"Repository Metadata: read",
     "repositories (visibility, activity) and their outside collaborators"},
    {"Repository Administration: read",
     "default branch protection, deploy keys, and secret scanning settings"},
    {"Repository Webhooks: read", "repository webhooks (secret, SSL verification)"},
    {NULL, NULL},
};

/* Consent install: a GitHub App's user authorization (web application flow) with PKCE. The
 * user access token acts as the user within the App's permissions on the organizations the
 * App is installed on; it expires after eight hours and the worker renews it with the refresh
 * token (valid six months) before it does. */
static const casb_provider_oauth consent = {
    .default_web_url = "https://github.com",
    .authorize_path = "/login/oauth/authorize",
    .token_path = "/login/oauth/access_token",
    /* With "Request user authorization (OAuth) during installation" on, installing the App
     * sends the user on to the callback with a code, as authorizing does. */
    .install_path_prefix = "/apps/",
    .install_path_suffix = "/installations/new",
    .scope = NULL,
    .pkce = 1,
    .setup_help = "create a GitHub App with the read permissions listed here and \"Expire user "
                  "authorization tokens\" on, set its callback URL to "
                  "<public URL of integration-manager>/v1/integrations/oauth/github/callback "
                  "and turn on \"Request user authorization (OAuth) during installation\", "
                  "then set CASB_GITHUB_OAUTH_CLIENT_ID, CASB_GITHUB_OAUTH_CLIENT_SECRET and "
                  "CASB_GITHUB_APP_SLUG (its name in https://github.com/apps/<name>)",
};

/* ---- validate -------------------------------------------------------------------------- */

static int invalid(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
                   const char *msg)
{
    if (field && fieldlen)
        snprintf(field, fieldlen, "%s", name);
    return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", name, msg);
}

/* Encrypted keys must not make OpenSSL prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int pem_is_rsa_private_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = NULL;
    int ok;

    if (!bio)
        return 0;
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    ok = key && EVP_PKEY_base_id(key) == EVP_PKEY_RSA;
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return ok;
}

/* http(s)://host[:port][/path], without userinfo, query, fragment or spaces. The SSRF guard
 * (CASB_ALLOWED_ENDPOINTS) is applied when the URL is used. */
static int base_url_ok(const char *url)
{
    const char *host;

    if (strncasecmp(url, "https://", 8) == 0)
        host = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        host = url + 7;
    else
        return 0;
    if (host[0] == '\0' || host[0] == '/' || strlen(url) > 512)
        return 0;
    for (const char *p = url; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '@' || *p == '?' || *p == '#' || *p == '\\')
            return 0;
    return 1;
}

/* Credentials stored by the consent flow (oauth.h): written by integration-manager, never
 * typed by a user, but a damaged row must still not reach a header line. */
static int validate_oauth(const json_t *credentials, char *field, size_t fieldlen, char *err,
                          size_t errlen)
{
    static const char *const keys[] = {"oauth", "access_token", "refresh_token", "expires_at",
                                       "refresh_token_expires_at", "scope", NULL};
    const char *key, *t;
    json_t *v;
    char name[160];

    json_object_foreach((json_t *)credentials, key, v) {
        size_t i;

        for (i = 0; keys[i] && strcmp(keys[i], key) != 0; i++)
            ;
        if (!keys[i] || (!json_is_string(v) && strcmp(key, "oauth") != 0)) {
            snprintf(name, sizeof(name), "credentials.%.120s", key);
            return invalid(field, fieldlen, name, err, errlen,
                           keys[i] ? "must be a string" : "unknown field");
        }
    }
    t = casb_json_str(credentials, "access_token");
    if (!t || !t[0] || strlen(t) > 4096 || strpbrk(t, " \t\r\n"))
        return invalid(field, fieldlen, "credentials.access_token", err, errlen,
                       "must be a token without spaces");
    return 0;
}

static int github_validate(const json_t *config, const json_t *credentials, char *field,
                           size_t fieldlen, char *err, size_t errlen)
{
    static const char *const config_keys[] = {"organization", "api_base_url", NULL};
    static const char *const cred_keys[] = {"token", "app_id", "private_key", "installation_id",
                                            "auth_method", NULL};
    const char *key, *org, *url, *method, *pem;
    json_t *v;
    int has_token, has_app, oauth;
    long long id;
    char name[160];

    if (field && fieldlen)
        field[0] = '\0';
    if (!json_is_object(config))
        return invalid(field, fieldlen, "config", err, errlen, "must be an object");
    if (!json_is_object(credentials))
        return invalid(field, fieldlen, "credentials", err, errlen, "must be an object");
    oauth = casb_oauth_is_credentials(credentials);

    json_object_foreach((json_t *)config, key, v) {
        size_t i;

        for (i = 0; config_keys[i] && strcmp(config_keys[i], key) != 0; i++)
            ;
        if (!config_keys[i]) {
            snprintf(name, sizeof(name), "config.%.120s", key);
            return invalid(field, fieldlen, name, err, errlen, "unknown field");
        }
    }
    v = json_object_get(config, "organization");
    org = json_string_value(v);
    if (!v || json_is_null(v))
        return invalid(field, fieldlen, "config.organization", err, errlen, "required");
    if (!org || !casb_github_login_valid(org))
        return invalid(field, fieldlen, "config.organization", err, errlen,
                       "not a valid GitHub organization login (1-39 letters, digits or "
                       "hyphens)");
    v = json_object_get(config, "api_base_url");
    if (v && !json_is_null(v)) {
        url = json_string_value(v);
        if (!url || !base_url_ok(url))
            return invalid(field, fieldlen, "config.api_base_url", err, errlen,
                           "must be an http(s) URL without credentials, query or fragment");
    }

    /* Consent-flow tokens have members of their own. */
    if (oauth)
        return validate_oauth(credentials, field, fieldlen, err, errlen);
    json_object_foreach((json_t *)credentials, key, v) {
        size_t i;

        for (i = 0; cred_keys[i] && strcmp(cred_keys[i], key) != 0; i++)
            ;
        if (!cred_keys[i]) {
            snprintf(name, sizeof(name), "credentials.%.120s", key);
            return invalid(field, fieldlen, name, err, errlen, "unknown field");
        }
    }

    has_token = json_object_get(credentials, "token") != NULL;
    has_app = json_object_get(credentials, "app_id") ||
              json_object_get(credentials, "private_key") ||
              json_object_get(credentials, "installation_id");
    if (has_token && has_app)
        return invalid(field, fieldlen, "credentials", err, errlen,
                       "give either token, or app_id and private_key (GitHub App), not both");
    if (!has_token && !has_app)
        return invalid(field, fieldlen, "credentials.token", err, errlen,
                       "required (or app_id and private_key for a GitHub App)");
    v = json_object_get(credentials, "auth_method");
    if (v) {
        method = json_string_value(v);
        if (!method || strcmp(method, has_token ? "token" : "github_app") != 0)
            return invalid(field, fieldlen, "credentials.auth_method", err, errlen,
                           has_token ? "must be \"token\" with a token"
                                     : "must be \"github_app\" with app_id and private_key");
    }

    if (has_token) {
        const char *t = json_string_value(json_object_get(credentials, "token"));
        size_t n = t ? strlen(t) : 0;

        if (n == 0)
            return invalid(field, fieldlen, "credentials.token", err, errlen,
                           "must be a non-empty string");
        if (n > 4096)
            return invalid(field, fieldlen, "credentials.token", err, errlen, "too long");
        for (size_t i = 0; i < n; i++)
            if (t[i] <= 0x20 || t[i] >= 0x7f)
                return invalid(field, fieldlen, "credentials.token", err, errlen,
                               "must not contain spaces or control characters");
        return 0;
    }

    v = json_object_get(credentials, "app_id");
    if (!v)
        return invalid(field, fieldlen, "credentials.app_id", err, errlen, "required");
    if (casb_github_parse_id(v, &id) != 0)
        return invalid(field, fieldlen, "credentials.app_id", err, errlen,
                       "must be a positive number");
    v = json_object_get(credentials, "private_key");
    if (!v)
        return invalid(field, fieldlen, "credentials.private_key", err, errlen, "required");
    pem = json_string_value(v);
    if (!pem || !pem_is_rsa_private_key(pem))
        return invalid(field, fieldlen, "credentials.private_key", err, errlen,
                       "not a PEM RSA private key");
    v = json_object_get(credentials, "installation_id");
    if (v && !json_is_null(v) && casb_github_parse_id(v, &id) != 0)
        return invalid(field, fieldlen, "credentials.installation_id", err, errlen,
                       "must be a positive number");
    return 0;
}

/* ---- check_connection ------------------------------------------------------------------ */

static int github_check_connection(casb_scan_ctx *ctx, char *err, size_t errlen)
{
    casb_github_client c;
    casb_github_resp r;
    char path[128];
    int rc;

    memset(&r, 0, sizeof(r));
    rc = casb_github_client_init(&c, ctx, err, errlen);
    if (rc != 0)
        goto out;
    snprintf(path, sizeof(path), "/orgs/%s", c.org);
    rc = casb_github_get(&c, path, &r, err, errlen);
    if (rc != 0)
        goto out;
    if (r.status >= 200 && r.status < 300) {
        rc = 0;
    } else if (r.status == 401) {
        rc = casb_fail(err, errlen, CASB_EAUTH, "GitHub rejected the credentials: %s",
                       r.message[0] ? r.message : "401");
    } else if ((r.status == 403 || r.status == 404) && !r.rate_limited) {
        rc = casb_github_org_refused(&r, c.org, err, errlen);
    } else {
        rc = casb_github_status_error(&r, "GET /orgs/{org}", err, errlen);
        if (rc != CASB_EUNAVAILABLE)
            rc = CASB_ERROR;
    }
out:
    casb_github_resp_clear(&r);
    casb_github_client_cleanup(&c);
    return rc;
}

/* ---- scan ------------------------------------------------------------------------------ */

static int github_scan(casb_scan_ctx *ctx, char *err, size_t errlen)
{
    casb_github_client c;
    casb_github_eval ev;
    char findings[32];
    int rc;

    casb_github_eval_init(&ev, ctx->sink, ctx->now_s);
    rc = casb_github_client_init(&c, ctx, err, errlen);
    if (rc == 0)
        rc = casb_github_collect_all(&c, &ev, err, errlen);
    if (rc == 0) {
        casb_github_eval_report(&ev);
        snprintf(findings, sizeof(findings), "%ld", ev.cov.findings);
        casb_log_info("github scan collected", "organization", c.org, "findings", findings);
    }
    casb_github_client_cleanup(&c);
    casb_github_eval_cleanup(&ev);
    /* The worker tells rejected credentials (needs reauthorization) and an unavailable
     * GitHub (5xx, network, rate limit exhausted) from the rest. */
    if (rc != 0 && rc != CASB_EAUTH && rc != CASB_EUNAVAILABLE)
        rc = CASB_ERROR;
    return rc;
}

const casb_provider casb_provider_github = {
    .id = "github",
    .display_name = "GitHub",
    .default_api_base_url = CASB_GITHUB_DEFAULT_API_URL,
    /* Daily: posture settings change rarely, and a daily full pass costs a large organization
     * a few calls per repository out of its 5,000+/h budget. Users may go down to 1 h. */
    .default_scan_interval_s = 86400,
    .auth_methods = auth_methods,
    .config_fields = config_fields,
    .credential_fields = credential_fields,
    .permissions = permissions,
    .finding_types = casb_github_finding_types,
    .oauth = &consent,
    .validate = github_validate,
    .check_connection = github_check_connection,
    .scan = github_scan,
};
