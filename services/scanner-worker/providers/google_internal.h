#ifndef CASB_GOOGLE_INTERNAL_H
#define CASB_GOOGLE_INTERNAL_H

/* Shared by the Google Workspace provider's files, not part of the provider interface:
 *  - google.c          the descriptor, validate, check_connection and the scan driver;
 *  - google_auth.c     service-account key -> RS256 JWT assertion -> access token, cached
 *                      per impersonated subject and renewed before expiry;
 *  - google_api.c      one GET with a fields mask, Google's error body, quota backoff,
 *                      nextPageToken paging, the request pacing (token bucket);
 *  - google_collect.c  collectors: Directory users/tokens/domains, Drive files and shared
 *                      drives, Calendar ACLs, Gmail delegates, DNS; per-user work runs
 *                      concurrently on a few threads;
 *  - google_checks.c   checks: pure predicates over one normalized asset.
 * Tests include this header to run the checks on snapshots. */

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#include "casb/jwt.h"
#include "coverage.h"
#include "provider.h"

#define CASB_GOOGLE_PROVIDER_ID "google_workspace"
/* One host serves every API used here: admin/directory/v1, drive/v3, calendar/v3, gmail/v1. */
#define CASB_GOOGLE_DEFAULT_API_URL "https://www.googleapis.com"
#define CASB_GOOGLE_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
/* An access token is renewed this long before it expires (Google's last an hour). */
#define CASB_GOOGLE_TOKEN_REFRESH_S 300
/* Users who have not logged in for this long are inactive (Cloudflare: 30 days). */
#define CASB_GOOGLE_INACTIVE_AFTER_S (30LL * 24 * 3600)
/* A super admin who logged in this recently and has a mailbox is used for daily work. */
#define CASB_GOOGLE_DAILY_USE_WITHIN_S (7LL * 24 * 3600)
/* Super admins: more than this many is too many, fewer than the minimum too few. */
#define CASB_GOOGLE_SUPER_ADMINS_MAX 4
#define CASB_GOOGLE_SUPER_ADMINS_MIN 2

/* The OAuth scopes, each with why (google.c lists them as the provider's permissions). The
 * admin token (sub = the admin) carries the directory ones; a user's token (sub = the user)
 * the per-user ones. */
#define CASB_GOOGLE_SCOPE_USERS "https://www.googleapis.com/auth/admin.directory.user.readonly"
#define CASB_GOOGLE_SCOPE_TOKENS "https://www.googleapis.com/auth/admin.directory.user.security"
#define CASB_GOOGLE_SCOPE_DOMAINS "https://www.googleapis.com/auth/admin.directory.domain.readonly"
#define CASB_GOOGLE_SCOPE_DRIVE "https://www.googleapis.com/auth/drive.metadata.readonly"
#define CASB_GOOGLE_SCOPE_CALENDAR "https://www.googleapis.com/auth/calendar.readonly"
#define CASB_GOOGLE_SCOPE_GMAIL "https://www.googleapis.com/auth/gmail.settings.basic"

/* The finding types, in catalogue order (proto/findings/google_workspace.json);
 * casb_google_finding_types[] holds their ids. */
enum {
    GW_T_ADMIN_2SV_DISABLED,         /* google_workspace.admin.two_step_disabled */
    GW_T_USER_2SV_DISABLED,          /* google_workspace.user.two_step_disabled */
    GW_T_USER_NO_RECOVERY_EMAIL,     /* google_workspace.user.no_recovery_email */
    GW_T_USER_NO_RECOVERY_PHONE,     /* google_workspace.user.no_recovery_phone */
    GW_T_ADMIN_INACTIVE,             /* google_workspace.admin.inactive */
    GW_T_ADMIN_SUSPENDED,            /* google_workspace.admin.suspended */
    GW_T_USER_INACTIVE,              /* google_workspace.user.inactive */
    GW_T_USER_SUSPENDED,             /* google_workspace.user.suspended */
    GW_T_FILE_PUBLIC_EDIT,           /* google_workspace.file.public_edit */
    GW_T_FILE_PUBLIC_VIEW,           /* google_workspace.file.public_view */
    GW_T_FILE_EXTERNAL_EDIT,         /* google_workspace.file.external_edit */
    GW_T_FILE_EXTERNAL_VIEW,         /* google_workspace.file.external_view */
    GW_T_FILE_DOMAIN_EDIT,           /* google_workspace.file.domain_edit */
    GW_T_FILE_DOMAIN_VIEW,           /* google_workspace.file.domain_view */
    GW_T_CALENDAR_PUBLIC,            /* google_workspace.calendar.public */
    GW_T_APP_DRIVE,                  /* google_workspace.app.drive_access */
    GW_T_APP_GMAIL,                  /* google_workspace.app.gmail_access */
    GW_T_APP_DOCS,                   /* google_workspace.app.docs_access */
    GW_T_APP_CALENDAR,               /* google_workspace.app.calendar_access */
    GW_T_APP_SLIDES,                 /* google_workspace.app.slides_access */
    GW_T_APP_SHEETS,                 /* google_workspace.app.sheets_access */
    GW_T_APP_SIGN_IN,                /* google_workspace.app.sign_in_access */
    GW_T_USER_DELEGATES_EMAIL,       /* google_workspace.user.delegates_email */
    GW_T_SPF_ALLOWS_ANY,             /* google_workspace.domain.spf_allows_any */
    GW_T_SPF_MISSING,                /* google_workspace.domain.spf_missing */
    GW_T_DMARC_MISSING,              /* google_workspace.domain.dmarc_missing */
    GW_T_DMARC_NOT_ENFORCED,         /* google_workspace.domain.dmarc_not_enforced */
    GW_T_DMARC_SUBDOMAINS_NOT_ENFORCED, /* google_workspace.domain.dmarc_subdomains_not_enforced */
    GW_T_DMARC_PARTIAL,              /* google_workspace.domain.dmarc_partial */
    /* Beyond Cloudflare's catalogue. */
    GW_T_TOO_MANY_SUPER_ADMINS,      /* google_workspace.tenant.too_many_super_admins */
    GW_T_TOO_FEW_SUPER_ADMINS,       /* google_workspace.tenant.too_few_super_admins */
    GW_T_SUPER_ADMIN_DAILY_USE,      /* google_workspace.admin.super_admin_daily_use */
    GW_T_SHARED_DRIVE_EXTERNAL_EDITOR, /* google_workspace.shared_drive.external_editor */
    GW_T_APP_UNVERIFIED_HIGH_RISK,   /* google_workspace.app.unverified_high_risk */
    GW_T_COUNT
};

extern const char *const casb_google_finding_types[GW_T_COUNT + 1]; /* NULL-terminated */
extern const casb_provider casb_provider_google_workspace;

/* ---- evaluation (google_checks.c) ----------------------------------------------------- */

/* One third-party app seen in users' token grants, accumulated over the scan: the checks on
 * apps run once every user was seen, one instance per app (not per user and app). */
typedef struct casb_google_app {
    char *client_id;
    char *name;          /* displayText */
    int anonymous;       /* an unregistered client: Google has not verified it */
    json_t *scopes;      /* the union of the scopes granted, an array of strings */
    long users;          /* how many users granted it */
    json_t *sample_users;/* the first CASB_GOOGLE_APP_SAMPLE_USERS users' emails */
    struct casb_google_app *next;
} casb_google_app;

#define CASB_GOOGLE_APP_SAMPLE_USERS 20
/* Distinct apps kept; more are counted in apps_dropped and their checks skipped. */
#define CASB_GOOGLE_APPS_MAX 20000

/* The state of one evaluation. Not thread-safe: the collector serializes every call. */
typedef struct {
    casb_coverage cov;   /* the sink, the findings count, the skipped types */
    long long now_s;
    json_t *domains;     /* the customer's domains and aliases, lower case: who is internal */
    long super_admins;   /* counted by check_user */
    json_t *super_admin_sample; /* their first CASB_GOOGLE_APP_SAMPLE_USERS emails */
    casb_google_app *apps;
    json_t *app_index;   /* client_id -> the app's address (an integer): O(1) lookups */
    long apps_count, apps_dropped;
    char customer[128];  /* the customer id, for tenant-level instances */
} casb_google_eval;

void casb_google_eval_init(casb_google_eval *ev, casb_scan_sink *sink, long long now_s,
                           const char *customer);
void casb_google_eval_cleanup(casb_google_eval *ev);
void casb_google_eval_skip(casb_google_eval *ev, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports check_ran / check_skipped for every type to the sink. */
void casb_google_eval_report(casb_google_eval *ev);
/* Adds a domain (any case) to the internal ones; 0 or -1 (out of memory). */
int casb_google_eval_add_domain(casb_google_eval *ev, const char *domain);
/* 1 when email's domain, or domain itself, is one of the customer's. */
int casb_google_is_internal(const casb_google_eval *ev, const char *email_or_domain);

/* The checks. Each takes one normalized asset (borrowed), emits findings through the sink
 * and returns 0, or -1 when the sink refused a finding. None does I/O.
 *
 * Normalized assets are Google's own objects (with the fields the collectors request), with
 * these members added:
 *  user          a Directory users.list item: id, primaryEmail, name.fullName, isAdmin,
 *                isDelegatedAdmin, isEnrolledIn2Sv, isEnforcedIn2Sv, suspended,
 *                suspensionReason, archived, lastLoginTime (the epoch means never),
 *                creationTime, recoveryEmail, recoveryPhone, isMailboxSetup. Asset id: id;
 *                name: primaryEmail.
 *  file          a Drive files.list item: id, name, mimeType, webViewLink,
 *                owners[].emailAddress, permissions[] (id, type user|group|domain|anyone,
 *                role owner|organizer|fileOrganizer|writer|commenter|reader, emailAddress,
 *                domain, allowFileDiscovery); plus "shared_drive": {"id","name"} for a file
 *                of a shared drive. Edit = writer and above (owner, organizer,
 *                fileOrganizer, writer); view = commenter or reader. Public = type anyone
 *                (with the link or discoverable); external = user/group whose email domain
 *                is not internal, or type domain for another domain; company-wide = type
 *                domain for an internal domain. A file gets one instance per type it meets.
 *  shared_drive  {"id","name","permissions":[...]} (drives.list + permissions.list).
 *  calendar      {"id" (the calendar id, the user's email for a primary calendar),
 *                 "owner": email, "acl": [Calendar ACL rules: scope.type
 *                 default|domain|group|user, scope.value, role none|freeBusyReader|reader|
 *                 writer|owner]}: public = a rule with scope.type "default" and a role
 *                 other than "none".
 *  delegates     {"user": primaryEmail, "user_id", "delegates": [Gmail delegates:
 *                 delegateEmail, verificationStatus accepted|pending|...]}: one instance
 *                 when any delegate is accepted (details: the accepted delegates).
 *  domain        a domains.list item (domainName, verified, isPrimary) or an alias
 *                (domainAliasName as domainName, verified), plus "spf": [TXT strings at
 *                the domain], "dmarc": [TXT strings at _dmarc.<domain>], or "dns_error":
 *                why the records could not be read (the DNS checks of that domain are then
 *                skipped, never guessed). Only verified domains are checked. */
int casb_google_check_user(casb_google_eval *ev, const json_t *user);
int casb_google_check_file(casb_google_eval *ev, const json_t *file);
int casb_google_check_shared_drive(casb_google_eval *ev, const json_t *drive);
int casb_google_check_calendar(casb_google_eval *ev, const json_t *calendar);
int casb_google_check_delegates(casb_google_eval *ev, const json_t *delegates);
int casb_google_check_domain(casb_google_eval *ev, const json_t *domain);
/* A tokens.list item of the user (borrowed): accumulated into ev->apps; 0 or -1 (memory). */
int casb_google_add_token(casb_google_eval *ev, const json_t *token, const char *user_email);
/* After every user: the app checks over ev->apps and the super-admin counts. */
int casb_google_check_tenant(casb_google_eval *ev);

/* ---- client: auth and API (google_auth.c, google_api.c) -------------------------------- */

/* A service-account key as Google issues it (the JSON file): type "service_account",
 * client_email, private_key (PEM), token_uri; private_key_id and client_id kept when
 * present. */
typedef struct {
    char *client_email;
    char *private_key_pem;
    char *private_key_id;
    char *token_uri;
    char *client_id;     /* NULL when absent; named in messages about delegation */
    /* private_key_pem parsed once: every impersonated user costs a signature, and parsing
     * the PEM per signature cost more than the signature. NULL when it did not load (the
     * signing then fails with the reason). */
    casb_jwt_key *signer;
} casb_google_key;

/* Parses credentials.service_account_key (an object, or a string holding the JSON).
 * Returns 0, or CASB_EINVALID with field ("credentials.service_account_key.private_key")
 * and err. */
int casb_google_key_parse(casb_google_key *k, const json_t *credentials, char *field,
                          size_t fieldlen, char *err, size_t errlen);
void casb_google_key_clear(casb_google_key *k); /* wipes the private key */

/* The RS256 assertion: iss = client_email, scope (space-separated), aud = token_uri, sub,
 * iat = now, exp = now + 3600; kid = private_key_id in the header when present. */
int casb_google_assertion(char **out, const casb_google_key *k, const char *scope,
                          const char *sub, long long now_s, char *err, size_t errlen);

typedef struct casb_google_client casb_google_client;

/* The scan's client: the key, the API base URL (config.api_base_url, default
 * CASB_GOOGLE_DEFAULT_API_URL) and the token URI, both through the SSRF guard
 * (ctx->allowed_endpoints), the admin to impersonate (config.admin_email), and a token
 * cache per subject. Thread-safe: the per-user workers share it, each with its own
 * casb_http_client. Returns 0, or CASB_EINVALID with err. */
int casb_google_client_new(casb_google_client **out, casb_scan_ctx *ctx, char *err,
                           size_t errlen);
void casb_google_client_free(casb_google_client *c);

typedef struct {
    long status;
    json_t *body;        /* parsed JSON body, or NULL */
    char reason[64];     /* error.errors[0].reason ("userRateLimitExceeded"), or "" */
    char message[256];   /* error.message, or the token endpoint's error_description */
} casb_google_resp;

void casb_google_resp_clear(casb_google_resp *r);

/* GET path (below the API base URL, with its query, which must carry the fields mask) as
 * subject (the admin's email or a user's) with the scope set, on http (the calling
 * thread's). Tokens are exchanged and renewed as needed. 403 with reason
 * rateLimitExceeded/userRateLimitExceeded/quotaExceeded and 429 are waited out with
 * backoff (they are Google pacing us, like GitHub's rate limits). Returns 0 with *out for
 * any final status, CASB_EAUTH when the token exchange is refused (invalid key, delegation
 * revoked or not granted for the scope: err says which and what to do), CASB_EUNAVAILABLE,
 * or CASB_ERROR (cancelled). */
int casb_google_get(casb_google_client *c, casb_http_client *http, const char *subject,
                    const char *scope, const char *path, casb_google_resp *out, char *err,
                    size_t errlen);

typedef int (*casb_google_page_fn)(void *ud, json_t *items, char *err, size_t errlen);

/* GETs path and every nextPageToken page after it (path must not carry pageToken), handing
 * the array list_key of each page to fn. Returns 0, a code of casb_google_get or of
 * casb_google_status_error, or fn's code. */
int casb_google_paginate(casb_google_client *c, casb_http_client *http, const char *subject,
                         const char *scope, const char *path, const char *list_key,
                         casb_google_page_fn fn, void *ud, char *err, size_t errlen);

/* Maps a final non-2xx response to a code and a message a user can act on: 401 CASB_EAUTH;
 * 403 (not quota) CASB_GOOGLE_EFORBIDDEN; 404 CASB_ENOTFOUND; 5xx and quota
 * CASB_EUNAVAILABLE; other 4xx CASB_GOOGLE_EREJECTED. */
#define CASB_GOOGLE_EFORBIDDEN -110
#define CASB_GOOGLE_EREJECTED -111
int casb_google_status_error(const casb_google_resp *r, const char *what, char *err,
                             size_t errlen);

/* Requests issued, token exchanges included (for stats and the benchmark). */
long casb_google_client_requests(const casb_google_client *c);

/* ---- collection (google_collect.c) ----------------------------------------------------- */

/* Runs every collector and check over the customer, streaming findings to ev's sink.
 * Returns 0 when the scan completed (ev holds the coverage), or a negative code with err. */
int casb_google_collect_all(casb_google_client *c, casb_scan_ctx *ctx, casb_google_eval *ev,
                            char *err, size_t errlen);

#endif
