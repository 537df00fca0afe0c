#ifndef CASB_PROVIDER_H
#define CASB_PROVIDER_H

#include <jansson.h>
#include <stddef.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/http_client.h"
#include "casb/oauth.h"

/* The interface every SaaS provider implements. A provider is split in two:
 *  - collectors call the vendor API page by page and turn each page into normalized assets;
 *  - checks are predicates over one asset (plus tenant context) that report findings.
 * Both run while streaming: nothing holds the whole tenant in memory. The scanner-worker
 * drives scan(); integration-manager uses describe() and check_connection(). */

/* Where findings and coverage go; implemented by the scanner-worker (batches to Kafka) and
 * by tests (collects in memory). */
typedef struct casb_scan_sink {
    /* One finding instance. details is stolen (may be NULL). Returns 0, or -1 to abort the
     * scan (the sink could not deliver). */
    int (*finding)(struct casb_scan_sink *sink, const char *finding_type, const char *asset_kind,
                   const char *asset_id, const char *asset_name, const char *asset_url,
                   json_t *details);
    /* The check behind finding_type evaluated every asset it covers in this scan. Only checks
     * reported here may resolve earlier instances. */
    void (*check_ran)(struct casb_scan_sink *sink, const char *finding_type);
    /* The check could not run (missing permission, feature not available); reason is shown to
     * the user. A skipped check never resolves anything. */
    void (*check_skipped)(struct casb_scan_sink *sink, const char *finding_type,
                          const char *reason);
    /* Progress: one more asset seen (for stats and lease heartbeats). */
    void (*asset_seen)(struct casb_scan_sink *sink, const char *asset_kind);
    void *ctx;
} casb_scan_sink;

/* The bodies of an integration's earlier answers, for conditional requests (ETag /
 * If-None-Match): a provider sends the stored ETag of a URL and, on 304 Not Modified,
 * evaluates the stored body. Entries belong to the integration (shared by every worker,
 * deleted with it). Called from the scan's thread only. */
typedef struct casb_page_cache {
    /* The entry of url: 1 with *etag, *body (body_len bytes, NUL-terminated) and *next_url
     * (NULL when the page had none), all malloc'ed and the caller's to free; 0 when there is
     * none; -1 on error (err set). */
    int (*get)(struct casb_page_cache *pc, const char *url, char **etag, char **body,
               size_t *body_len, char **next_url, char *err, size_t errlen);
    /* Stores (replaces) the entry of url. next_url may be NULL. 0, or -1 with err. */
    int (*put)(struct casb_page_cache *pc, const char *url, const char *etag, const char *body,
               size_t body_len, const char *next_url, char *err, size_t errlen);
    void *ud;
    /* Counted by the provider: answers taken from the cache on 304. */
    long hits;
} casb_page_cache;

typedef struct casb_scan_ctx {
    const json_t *config;      /* non-secret settings (organization, api_base_url), borrowed */
    const json_t *credentials; /* decrypted secrets, borrowed; never logged */
    casb_http_client *http;    /* the scan's HTTP client (retries, rate limits, stats) */
    const char *allowed_endpoints; /* CASB_ALLOWED_ENDPOINTS, for the SSRF guard */
    casb_scan_sink *sink;
    volatile int *cancel;      /* becomes non-zero when the worker shuts down */
    long long now_s;           /* scan start, epoch seconds: checks compare ages to it */
    /* OAuth credentials (casb_oauth_is_credentials) expire: the provider calls this shortly
     * before they do. The service renews them with their refresh token, stores the new ones
     * and updates ctx->credentials in place. NULL when the service cannot renew. Returns 0,
     * CASB_EAUTH (refused: the integration needs reauthorization; err says why),
     * CASB_EUNAVAILABLE or CASB_ERROR. */
    int (*renew_credentials)(struct casb_scan_ctx *ctx, char *err, size_t errlen);
    void *renew_ud;
    /* How http was made, for a provider that works on several threads and needs a client
     * per thread; NULL: the defaults. Its wait_check is not thread-safe: a provider calls it
     * under a lock of its own. */
    const casb_http_client_opts *http_opts;
    /* A provider with clients of its own adds their statistics here (NULL: nobody counts). */
    casb_http_stats *extra_stats;
    /* CASB_DNS_RESOLVER: "ip:port" of the DNS resolver for the DNS checks; NULL or "": the
     * system's. */
    const char *dns_resolver;
    /* Conditional requests' cache of this integration; NULL: unconditional requests. */
    casb_page_cache *page_cache;
} casb_scan_ctx;

/* A credential or configuration field as shown by GET /v1/providers. */
typedef struct {
    const char *name;     /* "private_key" */
    const char *type;     /* "string", "integer", "pem" */
    int secret;           /* goes to the encrypted credentials, never returned */
    int required;         /* required within its auth method */
    const char *auth_method; /* NULL: all methods */
    const char *help;
} casb_provider_field;

typedef struct {
    const char *name;   /* "Members: read" */
    const char *reason; /* why the scan needs it */
} casb_provider_permission;

/* How a provider installs by consent (OAuth 2.0 authorization code, oauth.h). The operator
 * registers an OAuth client with the provider and configures its id and secret; the web URL
 * the paths are relative to is the provider's by default and configurable (GitHub Enterprise
 * Server, the simulator). */
typedef struct {
    const char *default_web_url; /* "https://github.com" */
    const char *authorize_path;  /* "/login/oauth/authorize" */
    const char *token_path;      /* "/login/oauth/access_token" */
    /* The page that installs the provider's app and then consents: prefix, the app's name,
     * suffix ("/apps/" "<name>" "/installations/new", GitHub); prefix NULL when none. */
    const char *install_path_prefix;
    const char *install_path_suffix;
    const char *scope;           /* NULL: the provider's app registration fixes the grants */
    int pkce;                    /* sends an S256 code challenge (not on the install page) */
    const char *setup_help;      /* how the operator registers the client (for the catalogue) */
} casb_provider_oauth;

typedef struct casb_provider {
    const char *id;           /* "github" */
    const char *display_name; /* "GitHub" */
    const char *default_api_base_url;
    long default_scan_interval_s;
    const char *const *auth_methods; /* NULL-terminated: "github_app", "token" */
    const casb_provider_field *config_fields; /* terminated by a {NULL} entry */
    const casb_provider_field *credential_fields;
    const casb_provider_permission *permissions;
    const char *const *finding_types; /* NULL-terminated ids of every check */
    const casb_provider_oauth *oauth; /* NULL: no consent flow; auth method "oauth" otherwise */

    /* Validates shapes only (no network): missing or malformed fields give CASB_EINVALID with
     * err naming the field ("credentials.private_key: not a PEM RSA private key"). */
    int (*validate)(const json_t *config, const json_t *credentials, char *field, size_t fieldlen,
                    char *err, size_t errlen);
    /* One cheap authenticated call. Returns 0, CASB_EAUTH (err carries the provider's reason),
     * or CASB_EUNAVAILABLE (unreachable / 5xx). */
    int (*check_connection)(casb_scan_ctx *ctx, char *err, size_t errlen);
    /* Collects and evaluates everything. Returns 0 when the scan completed (coverage tells
     * what ran), or -1 with err when it failed and must resolve nothing. */
    int (*scan)(casb_scan_ctx *ctx, char *err, size_t errlen);
} casb_provider;

/* The registry of compiled-in providers. */
const casb_provider *casb_provider_find(const char *id);
const casb_provider *const *casb_provider_all(void); /* NULL-terminated */

/* The operator's OAuth client registrations, one per provider that has a consent flow
 * (CASB_<PROVIDER>_OAUTH_CLIENT_ID, ..._CLIENT_SECRET, ..._WEB_URL, ..._APP_SLUG). Borrowed
 * strings; a registration without a client id and secret is "not configured". */
typedef struct {
    const char *provider;
    const char *client_id;
    const char *client_secret;
    const char *web_url;  /* NULL: the provider's default_web_url */
    const char *app_slug; /* the app's name in its install page; NULL: no install page */
} casb_oauth_registration;

/* The provider's OAuth endpoints as the operator configured them. */
typedef struct {
    char authorize_url[512];
    char token_url[512];
    char install_url[512];    /* "" when the provider or the registration has none */
    casb_oauth_client client; /* token_url points into this struct */
} casb_oauth_endpoints;

/* Fills *out from the registration of provider among regs (n entries). Returns 0,
 * CASB_ENOTFOUND when the provider has no consent flow, CASB_ECONFLICT when the operator did
 * not configure a client for it, or CASB_EINVALID when the web URL is refused by the SSRF
 * guard (allowed_endpoints) or too long; err says which. */
int casb_provider_oauth_endpoints(const casb_provider *provider,
                                  const casb_oauth_registration *regs, size_t n,
                                  const char *allowed_endpoints, casb_oauth_endpoints *out,
                                  char *err, size_t errlen);

/* Renews the stored OAuth credentials of integration id (casb_integration_renew_oauth,
 * under the row lock) at the provider's token endpoint of the registration among regs; the
 * renewal of ctx->renew_credentials in every service. A provider or registration that
 * cannot renew is CASB_EAUTH (the integration needs reauthorization) saying why. Returns as
 * casb_integration_renew_oauth otherwise. */
int casb_provider_oauth_renew(const casb_provider *provider,
                              const casb_oauth_registration *regs, size_t n,
                              const char *allowed_endpoints, casb_db *db,
                              const casb_keyring *keys, casb_http_client *http,
                              const char *integration_id, json_t *credentials, char *err,
                              size_t errlen);

#endif
