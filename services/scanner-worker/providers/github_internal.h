#ifndef CASB_GITHUB_INTERNAL_H
#define CASB_GITHUB_INTERNAL_H

/* Shared by the GitHub provider's files, not part of the provider interface:
 *  - github.c          the descriptor, validate, check_connection and the scan driver;
 *  - github_auth.c     tokens: a static token, or GitHub App JWT -> installation token;
 *  - github_api.c      one GET, error classification, Link pagination;
 *  - github_collect.c  collectors: API pages -> normalized assets -> checks;
 *  - github_checks.c   checks: pure predicates over one normalized asset.
 * Tests include this header to run the checks on recorded snapshots. */

#include <jansson.h>
#include <stddef.h>

#include "coverage.h"
#include "provider.h"

#define CASB_GITHUB_DEFAULT_API_URL "https://api.github.com"

/* An installation token is renewed this long before its expires_at. */
#define CASB_GITHUB_TOKEN_REFRESH_S 300

/* Return codes beyond CASB_*: a call GitHub refused for a reason that only removes one
 * check from this scan (a permission missing), not the whole scan. */
#define CASB_GITHUB_EFORBIDDEN -100 /* 403 that is not a rate limit */
#define CASB_GITHUB_EREJECTED -101  /* another 4xx (422, 400, 410) */

/* The finding types, in catalogue order; casb_github_finding_types[] holds their ids. */
enum {
    GH_T_DEFAULT_BRANCH_UNPROTECTED,
    GH_T_BP_NO_PR_REVIEW,
    GH_T_BP_FORCE_PUSH_ALLOWED,
    GH_T_BP_STALE_APPROVALS_KEPT,
    GH_T_BP_ADMINS_NOT_ENFORCED,
    GH_T_BP_NO_STATUS_CHECKS,
    GH_T_ORG_DEFAULT_WRITE_PERMISSION,
    GH_T_REPO_STALE,
    GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED,
    GH_T_ORG_MEMBER_2FA_DISABLED,
    GH_T_REPO_PUBLIC,
    GH_T_ORG_MEMBERS_CAN_CREATE_PUBLIC_REPOS,
    GH_T_REPO_OUTSIDE_COLLABORATOR_ADMIN,
    GH_T_WEBHOOK_NO_SECRET,
    GH_T_WEBHOOK_INSECURE_SSL,
    GH_T_REPO_DEPLOY_KEY_WRITE,
    GH_T_ORG_APP_BROAD_PERMISSIONS,
    GH_T_REPO_SECRET_SCANNING_DISABLED,
    GH_T_REPO_PUSH_PROTECTION_DISABLED,
    GH_T_COUNT
};

extern const char *const casb_github_finding_types[GH_T_COUNT + 1]; /* NULL-terminated */
extern const casb_provider casb_provider_github;

/* Repositories not pushed to for this long are stale. */
#define CASB_GITHUB_STALE_AFTER_S (365LL * 24 * 3600)

/* ---- evaluation (github_checks.c) ----------------------------------------------------- */

/* The state of one evaluation: where findings go and which checks could not evaluate every
 * asset they cover (cov: a type with a skip reason is reported skipped at the end and
 * resolves nothing; every other type is reported ran), and the scan's clock. */
typedef struct {
    casb_coverage cov;
    long long now_s;
} casb_github_eval;

void casb_github_eval_init(casb_github_eval *ev, casb_scan_sink *sink, long long now_s);
void casb_github_eval_cleanup(casb_github_eval *ev);
/* Marks a check incomplete for this scan. The first reason is kept (it is the most specific:
 * collectors give theirs before the checks meet the missing input). */
void casb_github_eval_skip(casb_github_eval *ev, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports check_ran / check_skipped for every type to the sink. */
void casb_github_eval_report(casb_github_eval *ev);

/* The checks. Each takes one normalized asset (borrowed), emits its findings through the sink
 * and returns 0, or -1 when the sink refused a finding. None does I/O.
 *
 * Normalized assets are GitHub's own objects, with these members added by the collectors:
 *  org          GET /orgs/{org} as is.
 *  member       {"login","id","html_url","role":"admin"|"member"|null,
 *                "two_factor_disabled":true|false}  (two_factor_disabled absent: unknown)
 *  repository   an item of GET /orgs/{org}/repos, plus
 *                "branch_protection": object (protected) | null ("Branch not protected");
 *                absent when not collected, then "branch_protection_error" may say why;
 *                "default_branch_missing": true for an empty repository.
 *  webhook      an item of GET /orgs/{org}/hooks or /repos/{o}/{r}/hooks, plus
 *                "scope":"organization"|"repository", "repository": full_name (repository
 *                scope), "target": org login or full_name, "asset_url".
 *  deploy_key   an item of GET /repos/{o}/{r}/keys, plus "repository", "asset_url".
 *  installation an item of GET /orgs/{org}/installations as is.
 *  collaborator an item of GET /repos/{o}/{r}/collaborators, plus "repository", "asset_url",
 *                "outside": true when listed with affiliation=outside. */
int casb_github_check_org(casb_github_eval *ev, const json_t *org);
int casb_github_check_member(casb_github_eval *ev, const json_t *member);
int casb_github_check_repo(casb_github_eval *ev, const json_t *repo);
int casb_github_check_hook(casb_github_eval *ev, const json_t *hook);
int casb_github_check_deploy_key(casb_github_eval *ev, const json_t *key);
int casb_github_check_installation(casb_github_eval *ev, const json_t *installation);
int casb_github_check_collaborator(casb_github_eval *ev, const json_t *collaborator);

/* ---- client: auth and API (github_auth.c, github_api.c) -------------------------------- */

/* A positive id given as a JSON integer or a string of digits ("1001"). 0 ok, -1 not one. */
int casb_github_parse_id(const json_t *v, long long *out);
/* 1 when s can be a GitHub organization login: 1-39 letters, digits or hyphens, not starting
 * or ending with a hyphen. It is put into URL paths unescaped, so this matters. */
int casb_github_login_valid(const char *s);

typedef struct {
    casb_http_client *http;     /* borrowed */
    char *base_url;             /* API base URL without a trailing slash */
    char *org;                  /* organization login */
    volatile int *cancel;       /* borrowed, may be NULL */
    int app;                    /* 1: GitHub App, 0: static token or OAuth */
    int oauth;                  /* 1: a user access token from the consent flow (oauth.h) */
    casb_scan_ctx *ctx;         /* borrowed: renews OAuth credentials */
    char *token;                /* the static, installation or OAuth access token */
    long long token_expires_s;  /* installation or OAuth token expiry (epoch s); 0: never */
    long long renew_window_s;   /* OAuth: renew this long before expiry (0: the default) */
    long long app_id;
    char *private_key_pem;
    long long installation_id;  /* 0: looked up with GET /orgs/{org}/installation */
    long token_issues;          /* installation tokens issued (for tests and logs) */
    casb_page_cache *cache;     /* borrowed, may be NULL: GETs are then unconditional */
} casb_github_client;

/* Reads config and credentials (validated shapes are assumed but re-checked cheaply) and
 * applies the SSRF guard to the API base URL. Returns 0, or CASB_EINVALID with err. */
int casb_github_client_init(casb_github_client *c, casb_scan_ctx *ctx, char *err,
                            size_t errlen);
/* Frees and wipes the secrets. Safe on a zeroed or half-initialized client. */
void casb_github_client_cleanup(casb_github_client *c);

/* Builds the GitHub App JWT (RS256; iat = now - 60, exp = now + 540, iss = app_id). */
int casb_github_app_jwt(char **out, long long app_id, const char *private_key_pem,
                        long long now_s, char *err, size_t errlen);
/* Makes sure c->token is usable: for an App, issues an installation token when there is
 * none or it expires within CASB_GITHUB_TOKEN_REFRESH_S; for OAuth, has the service renew
 * the access token (ctx->renew_credentials) in that window. Returns 0, CASB_EAUTH,
 * CASB_EUNAVAILABLE or CASB_ERROR with err. */
int casb_github_auth_ensure(casb_github_client *c, char *err, size_t errlen);
/* Forgets the installation token, or marks the OAuth token for renewal (after a 401), so
 * the next call gets a new one. */
void casb_github_auth_invalidate(casb_github_client *c);

typedef struct {
    long status;
    json_t *body;      /* the parsed JSON body, or NULL (empty body, or an unparsable error) */
    char *next_url;    /* Link rel="next", or NULL */
    char message[256]; /* GitHub's "message" on an error status */
    int rate_limited;  /* a 403/429 that GitHub sent because of a rate limit */
    /* On an error status, the permission GitHub says the call needs: the
     * X-Accepted-GitHub-Permissions header (Apps, fine-grained tokens) or
     * X-Accepted-OAuth-Scopes (classic tokens); "" when GitHub did not say. */
    char needed_permission[128];
    /* GETs through a cache: the answer's ETag ("" when none), and the raw 2xx body to store
     * (raw_len bytes; NULL when not kept). not_modified: the body came from the cache. */
    char etag[160];
    char *raw;
    size_t raw_len;
    int not_modified;
} casb_github_resp;

void casb_github_resp_clear(casb_github_resp *r);

/* One request with GitHub's headers and the given bearer (not the client's token), used by
 * the App token flow and by casb_github_get. path_or_url is a path below the base URL or an
 * absolute URL that must lie below it. A 2xx body must be JSON (one retry on a malformed
 * body, then CASB_ERROR). Returns 0 with *out filled for any status, CASB_EUNAVAILABLE when
 * no response came, CASB_ERROR (cancelled, malformed). */
int casb_github_request(casb_github_client *c, const char *method, const char *path_or_url,
                        const char *bearer, const char *body, casb_github_resp *out,
                        char *err, size_t errlen);
/* GET with the client's token (issued or refreshed as needed; a 401 on an installation
 * token is retried once with a new token). Same returns as casb_github_request. With a page
 * cache, the GET is conditional: it sends the ETag stored for the URL, and a 304 is answered
 * as the stored 200 (body and next link, not_modified set); a 2xx with an ETag is stored. A
 * cache that fails is logged and not used for the rest of the scan: it only saves requests. */
int casb_github_get(casb_github_client *c, const char *path_or_url, casb_github_resp *out,
                    char *err, size_t errlen);
/* Maps a non-2xx response to a code and a message a user can act on (it becomes the
 * integration's health reason): 401 CASB_EAUTH ("GitHub rejected the credentials:
 * <message>"); rate-limited 403/429 CASB_EUNAVAILABLE ("GitHub's rate limit stayed exhausted
 * ..."); 5xx CASB_EUNAVAILABLE ("GitHub answered 500 repeatedly (<what>: <message>)");
 * 403 CASB_GITHUB_EFORBIDDEN, 404 CASB_ENOTFOUND, other CASB_GITHUB_EREJECTED
 * ("<what>: <status> <message>"). */
int casb_github_status_error(const casb_github_resp *r, const char *what, char *err,
                             size_t errlen);

/* The organization itself (GET /orgs/{org}) answered 403 or 404 (not a rate limit): the
 * credentials cannot see what the integration is for, which is CASB_EAUTH. err names the
 * missing permission when GitHub told it ("the credentials lack the permission
 * members=read needed to read organization acme (GitHub: ...)"). */
int casb_github_org_refused(const casb_github_resp *r, const char *org, char *err,
                            size_t errlen);

/* Called with each page's items (a borrowed array). Returns 0 to go on, negative to stop
 * (that value is returned by casb_github_paginate). */
typedef int (*casb_github_page_fn)(void *ud, json_t *items, char *err, size_t errlen);

/* GETs path (which should carry per_page=100) and every Link rel="next" after it, handing
 * each page to fn as it arrives. list_key names the array inside an object body
 * ("installations"); NULL when the body is the array. Returns 0, a code of
 * casb_github_status_error / casb_github_get, or fn's code. */
int casb_github_paginate(casb_github_client *c, const char *path, const char *list_key,
                         casb_github_page_fn fn, void *ud, char *err, size_t errlen);

/* ---- collection (github_collect.c) ----------------------------------------------------- */

/* Runs every collector and check over the organization, streaming findings to ev's sink.
 * Returns 0 when the scan completed (ev holds the coverage), or a negative code with err
 * when it failed (CASB_EAUTH for rejected credentials). */
int casb_github_collect_all(casb_github_client *c, casb_github_eval *ev, char *err,
                            size_t errlen);

#endif
