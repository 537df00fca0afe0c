#ifndef CASB_SAAS_SIM_H
#define CASB_SAAS_SIM_H

/* The SaaS simulator: a real HTTP server that serves GitHub's REST API for the organizations
 * described in tenant documents, with GitHub's auth, pagination, rate-limit headers and
 * injectable faults, GitHub's OAuth web flow and App install page for App user tokens, plus
 * a loopback admin API under /_sim. Google Workspace tenants (sim_google.h) share the server,
 * the locks and the fault/stats machinery, and add a UDP DNS responder. See tenants/README.md.
 *
 * Locking: `lock` (rwlock) guards the org table and every org's document; `mu` guards the
 * mutable counters (stats, rate limit, faults, PRNGs), the issued installation tokens and
 * the OAuth codes and user tokens.
 * Lock order is lock, then mu. An org struct is only touched while `lock` is held, so a
 * DELETE (write lock) never frees an org under a request. */

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "casb/http_server.h"

#define SIM_MAX_HOLD_MS 120000   /* upper bound of any slow/timeout hold */
#define SIM_TIMEOUT_HOLD_MS 90000 /* default hold of a "timeout" fault: past a 60 s client timeout */
#define SIM_SLOW_DELAY_MS 200
#define SIM_MAX_LATENCY_MS 10000 /* upper bound of PUT /_sim/latency */

typedef enum {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_429,
    SIM_FAULT_500,
    SIM_FAULT_503,
    SIM_FAULT_SLOW,
    SIM_FAULT_MALFORMED,
    SIM_FAULT_TIMEOUT,
    SIM_FAULT_QUOTA,     /* Google: 403 userRateLimitExceeded (GitHub paths ignore it) */
} sim_fault_mode;

typedef struct sim_fault {
    long long id;
    sim_fault_mode mode;
    double rate;          /* 0..1 */
    long long remaining;  /* responses left to fault; -1 = until cleared */
    long retry_after_s;
    long delay_ms;
    char *path_contains;  /* NULL: every path */
    long long injected;
    struct sim_fault *next;
} sim_fault;

/* What a request drew from the fault list (a copy: the fault itself may be gone later). */
typedef struct {
    sim_fault_mode mode;
    long retry_after_s;
    long delay_ms;
} sim_fault_hit;

/* Rate-limit numbers as sent in the x-ratelimit-* headers. */
typedef struct {
    long long limit;
    long long remaining;
    long long used;
    long long reset_s; /* epoch seconds */
} sim_rate;

typedef struct sim_org {
    char *login;
    json_t *doc; /* the tenant document; guarded by sim.lock */
    /* Everything below is guarded by sim.mu. */
    long long requests;
    long long faults_injected;
    long long not_modified; /* 304s answered to conditional GETs (GitHub) */
    json_t *by_endpoint; /* {"GET /orgs/{org}/repos": n} */
    long long rl_used;
    long long rl_reset_s;
    sim_fault *faults;
    long long next_fault_id;
    uint64_t prng;
    /* OAuth web flow counters (GET /_sim/orgs/{org}/oauth). */
    long long oauth_codes_issued;
    long long oauth_codes_redeemed;
    long long oauth_tokens_issued; /* access tokens, from codes and from refreshes */
    long long oauth_refreshes;
    int oauth_last_s256;           /* 1 when the last authorize request carried an S256 challenge */
} sim_org;

typedef struct {
    char token[48];
    char *login;
    long long installation_id;
    time_t expires_at;
} sim_issued_token;

/* An authorization code of the OAuth web flow: single use, bound to what the authorize
 * request named. */
typedef struct {
    char code[24];      /* 20 hex characters, like GitHub's */
    char *login;
    char *client_id;
    char *redirect_uri;
    char challenge[48]; /* PKCE S256 challenge; "" when the authorize request had none */
    time_t expires_at;
} sim_oauth_code;

/* A user access token (ghu_) or refresh token (ghr_). The two tokens of one grant share
 * grant_id, so that a refresh retires both. */
typedef struct {
    char token[84];
    int is_refresh;
    char *login;
    char *client_id;
    long long grant_id;
    time_t expires_at;
} sim_user_token;

typedef struct {
    const char *addr;               /* "127.0.0.1:8090" */
    const char *app_public_key_pem; /* for orgs whose auth.app has no public_key_pem; may be NULL */
    uint64_t seed;
    int num_threads;                /* 0: 32 */
    /* Google Workspace (sim_google*.c): the service-account key verifying JWT assertions of
     * tenants whose service_account has no public_key_pem (may be NULL), and the address of
     * the DNS responder (sim_dns.c; NULL: none). */
    const char *google_sa_public_key_pem;
    const char *dns_addr;
} sim_opts;

typedef struct sim {
    char *addr;
    char *default_base_url; /* "http://127.0.0.1:8090" when no Host header can be trusted */
    char *app_public_key_pem;
    uint64_t seed;
    int num_threads;

    pthread_rwlock_t lock;
    sim_org **orgs;
    size_t norgs;
    size_t orgs_cap;

    pthread_mutex_t mu;
    sim_issued_token *tokens;
    size_t ntokens;
    size_t tokens_cap;
    uint64_t token_prng;
    sim_oauth_code *codes;
    size_t ncodes;
    size_t codes_cap;
    sim_user_token *user_tokens;
    size_t nuser_tokens;
    size_t user_tokens_cap;
    long long next_grant_id;

    /* Google Workspace tenants, by customer_id: guarded like orgs (lock, then mu). */
    char *google_sa_public_key_pem;
    struct sim_gtenant **gtenants;
    size_t ngtenants;
    size_t gtenants_cap;
    char *dns_addr;
    struct sim_dns *dns;

    atomic_int stopping;
    atomic_llong request_seq;
    /* Simulated network latency: every provider request (GitHub, OAuth, Google, not /_sim)
     * is held this long before its answer is sent (PUT /_sim/latency). */
    atomic_long latency_ms;
    casb_http_server *http;
} sim;

/* --- sim_server.c: lifecycle --- */
/* Creates an empty simulator (no orgs, not listening). *out belongs to the caller (sim_free). */
int sim_new(sim **out, const sim_opts *opts, char *err, size_t errlen);
/* Registers every route and starts listening on opts->addr. */
int sim_start(sim *s, char *err, size_t errlen);
/* Stops serving (holding requests are released first), frees every org. NULL-safe. */
void sim_free(sim *s);
/* Sleeps ms in short steps, returning early when the simulator is stopping. */
void sim_hold_ms(sim *s, long ms);
/* Holds a provider request for the simulated latency (locks released), plus extra_ms (a
 * slow/timeout fault's delay; 0 for none). */
void sim_latency_hold(sim *s, long extra_ms);

/* --- sim_tenant.c: org store and merge patch --- */
/* RFC 7386 JSON merge patch: returns a new reference to target patched by patch (neither
 * argument is modified; a NULL target counts as absent). Arrays replace; null deletes. */
json_t *sim_merge_patch(const json_t *target, const json_t *patch);
/* Checks the shape of an org tenant document for the org named login. */
int sim_tenant_validate(const json_t *doc, const char *login, char *err, size_t errlen);
/* Loads a tenant file (one document or an array of documents) into the store. */
int sim_tenant_load_file(sim *s, const char *path, char *err, size_t errlen);
/* Creates or replaces an org. Steals doc. *created is set to 1 for a new org. */
int sim_org_put(sim *s, const char *login, json_t *doc, int *created, char *err, size_t errlen);
/* Applies a merge patch to an org document (or to one of its repos when repo != NULL).
 * On success *result is a new reference to the patched object. CASB_ENOTFOUND when absent. */
int sim_org_patch(sim *s, const char *login, const char *repo, const json_t *patch,
                  json_t **result, char *err, size_t errlen);
int sim_org_delete(sim *s, const char *login);
/* Lookups; the caller holds s->lock. */
sim_org *sim_org_find(sim *s, const char *login);
sim_org *sim_org_by_installation(sim *s, long long installation_id);
json_t *sim_org_repo(const sim_org *o, const char *name); /* borrowed or NULL */
long long sim_org_id(const sim_org *o);
/* Stable numeric id for a login that carries none. */
long long sim_fallback_id(const char *s, long long base);

/* --- sim_faults.c --- */
uint64_t sim_prng_next(uint64_t *state);
uint64_t sim_prng_seed_for(uint64_t seed, const char *login);
/* Parses a fault request body. *out is new (free with sim_fault_free). */
int sim_fault_parse(sim_fault **out, const json_t *body, char *err, size_t errlen);
void sim_fault_free(sim_fault *f);
void sim_faults_clear(sim_org *o);
/* Appends f (taken over) to the org's list and gives it an id. Caller holds mu. */
void sim_faults_add(sim_org *o, sim_fault *f);
/* Draws a fault for a request on path; returns 1 and fills hit when one applies. Caller holds mu. */
int sim_faults_pick(sim_org *o, const char *path, sim_fault_hit *hit);
json_t *sim_fault_json(const sim_fault *f);
const char *sim_fault_mode_name(sim_fault_mode m);

/* --- sim_stats.c: per-org counters and the primary rate limit; caller holds mu --- */
void sim_stats_count(sim_org *o, const char *endpoint);
void sim_stats_reset(sim_org *o);
json_t *sim_stats_json(const sim_org *o);
/* Takes one request from the org's budget. Returns 1 when allowed, 0 when exhausted; *out
 * gets the header numbers either way. consume = 0 only reads them. */
int sim_rate_take(sim_org *o, int consume, sim_rate *out);
void sim_rate_reset(sim_org *o);
/* Gives back the request sim_rate_take consumed (a 304 costs nothing); updates *rate. */
void sim_rate_refund(sim_org *o, sim_rate *rate);

/* --- sim_auth.c --- */
typedef enum {
    SIM_AUTH_NONE = 0,  /* no Authorization header */
    SIM_AUTH_OK,
    SIM_AUTH_BAD,       /* unknown/expired token or an unverifiable JWT: 401 */
    SIM_AUTH_OTHER_ORG, /* a valid token of another org: 404 */
} sim_auth_result;

typedef struct {
    int is_jwt;
    const char *value; /* points into the header */
    size_t len;
} sim_credential;

/* Splits "Bearer x" / "token x". Returns 0 for a well-formed header, -1 otherwise. */
int sim_credential_parse(const char *header, sim_credential *out);
/* The org a token (not a JWT) belongs to, or NULL; caller holds lock. */
sim_org *sim_auth_find_org(sim *s, const sim_credential *c, int *is_installation);
/* A token (not a JWT) against an org; caller holds lock (takes mu itself). *is_installation
 * tells which rate-limit message applies. */
sim_auth_result sim_auth_token(sim *s, sim_org *o, const sim_credential *c, int *is_installation);
/* Verifies an App JWT for the org's app (RS256 with its public key, iss = app_id, exp at most
 * 10 minutes ahead). On failure msg gets GitHub's message. */
sim_auth_result sim_auth_jwt(sim *s, const sim_org *o, const sim_credential *c, char *msg,
                             size_t msglen);
/* Issues an installation token for the org's app; caller holds lock (takes mu itself). */
int sim_token_issue(sim *s, const sim_org *o, char *token, size_t tokenlen, time_t *expires_at);

/* --- sim_oauth.c: GitHub's OAuth web flow (authorize, access_token) for GitHub App user
 * tokens, and the App's install page (apps/{slug}/installations/new) that hands out a code
 * with the installation. Orgs take part through auth.oauth in their tenant document. --- */
/* Checks the shape of a tenant's auth.oauth object (callback_url and install included). */
int sim_oauth_validate(const json_t *oauth, char *err, size_t errlen);
/* CASB_EINVALID when another org than login already uses doc's auth.oauth.client_id (a
 * client id names one app registration, so it picks one org). Caller holds lock. */
int sim_oauth_client_conflict(sim *s, const char *login, const json_t *doc, char *err,
                              size_t errlen);
/* The org an unexpired, unrevoked user access token belongs to, or NULL. Caller holds lock
 * and mu. */
sim_org *sim_oauth_token_owner(sim *s, const sim_credential *c);
/* Revokes every user access and refresh token of the org; counts what was revoked. Caller
 * holds mu. */
void sim_oauth_revoke(sim *s, const char *login, long long *access, long long *refresh);
/* Drops every code and token of the org (it was deleted). Caller holds mu. */
void sim_oauth_forget(sim *s, const char *login);
/* {"codes_issued", ..., "last_code_challenge_method"}. Caller holds mu. */
json_t *sim_oauth_stats_json(sim *s, const sim_org *o);
/* Frees every code and token (the simulator is going away). */
void sim_oauth_free_all(sim *s);
int sim_oauth_routes(sim *s, casb_http_server *http);

/* --- sim_google*.c, sim_dns.c: Google Workspace (see sim_google.h) --- */
/* Loads one tenant document of kind "google_workspace" (a new reference is taken). */
int sim_google_load(sim *s, json_t *doc, char *err, size_t errlen);
void sim_google_free_all(sim *s);
int sim_google_routes(sim *s, casb_http_server *http);
int sim_google_admin_routes(sim *s, casb_http_server *http);
/* The UDP TXT responder on s->dns_addr; stop joins its thread (s->stopping must be set). */
int sim_dns_start(sim *s, char *err, size_t errlen);
void sim_dns_stop(sim *s);

/* --- sim_admin.c: helpers shared with sim_google_admin.c --- */
/* The body as JSON whatever its Content-Type; on failure the 400 is sent and NULL returned. */
json_t *sim_admin_body_json(casb_http_req *r);
/* Answers a store error: CASB_ENOTFOUND 404, CASB_EINVALID 400, else 500. */
int sim_admin_reply_rc(casb_http_req *r, int rc, const char *err);

/* --- sim_server.c: what the GitHub and Google parts share --- */
/* Tenant times may be relative ("now", "now-400d", "now-6h", "now-90m", "now-30s"),
 * resolved whenever they are served so that a demo's stale and fresh assets stay so. 1 with
 * *at when in is one, 0 when it is not (it is then served as written). */
int sim_time_relative(const char *in, time_t *at);
/* Whether path matches a route pattern: literal segments equal, each {name} one non-empty
 * segment. */
int sim_path_matches(const char *pattern, const char *path);
/* A route table of public (loopback admin or simulated API) routes. */
typedef struct {
    const char *method;
    const char *pattern;
    casb_http_handler handler;
} sim_route;
int sim_routes_register(casb_http_server *http, const sim_route *routes, size_t n);

/* --- sim_github.c / sim_admin.c: routes --- */
int sim_github_routes(sim *s, casb_http_server *http);
int sim_admin_routes(sim *s, casb_http_server *http);

#endif
